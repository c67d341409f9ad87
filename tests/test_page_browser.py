"""
The status page in a real browser: three C{twistd -n isis} members with
their HTTP API, and a headless Chromium driven over the W3C WebDriver
protocol (L{tests.webdriver}) loading the first member's page.

The page must list the three members, connected, and the messages
multicast while it is open (through the members' clients and through
C{POST /messages}), as text, from its two event streams; its rate chart
must have seen them.  A screenshot is taken, and written where
C{ISIS_SCREENSHOT} says, if it says (docs/_static/status-page.png comes from
such a run).

Without Chromium and its driver the test is skipped, saying which is
missing, unless C{ISIS_REQUIRE_BROWSER=1} (as in CI) makes that a failure.
Nothing waits by sleeping: every wait polls the page with a deadline.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.request import ProxyHandler, Request, build_opener

from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from tests.test_node import deferred
from tests.test_processes_membership import FAST, ProcessGroup, poll_value, reactor
from tests.webdriver import CHROMIUM_ARGS, ChromeDriver, Session, browser_missing

MEMBERS = """
return Array.from(
  document.querySelectorAll("#members li[data-member]"),
  (li) => [li.dataset.member, li.dataset.connected, li.dataset.missing],
);
"""

PAGE = """
const text = (selector) => document.querySelector(selector).textContent;
return {
  member: text("#member"),
  group: text("#group"),
  state: document.querySelector("#state-box").dataset.state,
  delivered: Number(text("#delivered")),
  down: Array.from(
    document.querySelectorAll(".badge[data-stream]:not([hidden])"),
    (badge) => badge.dataset.stream,
  ),
  deliveries: Array.from(
    document.querySelectorAll("#deliveries li[data-index]"),
    (li) => ({
      index: Number(li.dataset.index),
      sender: li.dataset.sender,
      payload: li.querySelector(".payload").textContent,
    }),
  ),
  markup: document.querySelectorAll("#deliveries b").length,
  rate_max: Number(document.querySelector("#rate-chart").dataset.max),
};
"""

ROUNDS = (1, 3, 5, 2, 4, 1)
"""
Rounds of multicasts, how many from each of two members, each round seen by
the page (and a status tick) before the next: the rate chart gets a few
seconds of traffic.
"""

WIDTH = 1100
"""
The browser window's width, in CSS pixels (the screenshot's).
"""


def shows(sent: list[str]) -> Callable[[Any], bool]:
    """
    A probe of what L{PAGE} returns: whether every payload of C{sent} is
    listed, and a status newer than all of them came.
    """
    expected = set(sent)

    def probe(page: Any) -> bool:
        rows = page["deliveries"]
        return {d["payload"] for d in rows} >= expected and page["delivered"] >= max(
            d["index"] for d in rows
        )

    return probe


def post(port: int, payload: bytes) -> int:
    """
    Multicast C{payload} with C{POST /messages}, blocking until the member
    delivered it.

    @return: The HTTP status of the answer.
    """
    request = Request(
        f"http://127.0.0.1:{port}/messages",
        data=payload,
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    # No proxy from the environment: the member is on loopback.
    with build_opener(ProxyHandler({})).open(request, timeout=30) as answer:
        answer.read()
        return int(answer.status)


class StatusPageBrowserTests(TestCase):
    """
    The status page, loaded in headless Chromium from a running member.
    """

    timeout = 90

    async def browser(self, workdir: Path) -> Session:
        """
        A browser session, quit (and its driver ended) when the test ends.
        """
        driver = ChromeDriver(reactor, workdir / "chromedriver.log")
        self.addCleanup(lambda: deferred(driver.stop()))
        await driver.start()
        session = await driver.session(
            [
                *CHROMIUM_ARGS,
                f"--user-data-dir={workdir / 'profile'}",
                f"--window-size={WIDTH},900",
            ]
        )
        self.addCleanup(lambda: deferred(session.quit()))
        return session

    async def page_until(
        self,
        session: Session,
        script: str,
        probe: Callable[[Any], bool],
        what: str,
        timeout: float = 20.0,
    ) -> Any:
        """
        Run C{script} in the page until C{probe} holds for what it returns.

        @return: What it returned then.
        @raise AssertionError: If it does not within C{timeout} seconds;
            the message gives what the script last returned.
        """
        return await poll_value(
            lambda: session.execute(script),
            probe,
            timeout,
            what,
            lambda last: f"the page last said {last!r}",
        )

    def test_members_and_deliveries(self) -> Deferred[None]:
        """
        The page lists the three members, connected, and every message
        multicast while it is open, as text; its rate chart rises.
        """
        missing = browser_missing()
        if missing is not None:
            if os.environ.get("ISIS_REQUIRE_BROWSER") == "1":
                self.fail(missing)
            raise SkipTest(missing)

        async def run() -> None:
            workdir = Path(self.mktemp()).resolve()
            workdir.mkdir(parents=True)
            group = ProcessGroup(
                reactor, 3, workdir, FAST, group=self.id()[-40:], http=True
            )
            self.addCleanup(lambda: deferred(group.stop()))
            # Both take a second or two: side by side.
            starts: list[Deferred[Any]] = [
                Deferred.fromCoroutine(self.browser(workdir)),
                Deferred.fromCoroutine(group.start()),
            ]
            try:
                session: Session = (await gatherResults(starts, consumeErrors=True))[0]
            except FirstError as e:
                e.subFailure.raiseException()
            await session.navigate(f"http://127.0.0.1:{group.http_ports['a']}/")
            await self.page_until(
                session,
                MEMBERS,
                lambda m: (
                    m
                    == [
                        ["a", "self", "false"],
                        ["b", "both", "false"],
                        ["c", "both", "false"],
                    ]
                ),
                "the three members, connected, on the page",
            )

            page: Any = None
            for n, each in enumerate(ROUNDS):
                # Markup and non-ASCII in the payloads: shown as text.
                batch = [
                    (sender, f"round {n} from {sender} #{i}: <b>not bold</b> & ünïcode")
                    for sender in "ab"
                    for i in range(each)
                ]
                posted = f"round {n} posted to c: <b>not bold</b>"
                sends: list[Deferred[Any]] = [
                    *(group.clients[s].multicast(t.encode()) for s, t in batch),
                    deferToThread(post, group.http_ports["c"], posted.encode()),
                ]
                answers = await gatherResults(sends)
                self.assertEqual(answers[-1], 200)
                sent = [*(t for _, t in batch), posted]
                page = await self.page_until(
                    session,
                    PAGE,
                    shows(sent),
                    f"round {n}'s messages on the page, and a status after them",
                )

            self.assertEqual(
                (page["member"], page["state"], page["down"]), ("a", "normal", [])
            )
            self.assertEqual(page["group"], self.id()[-40:])
            self.assertEqual(page["markup"], 0)
            self.assertGreater(page["rate_max"], 0)
            rows = page["deliveries"]
            self.assertEqual(len(rows), 20)
            # Newest first, each once, none missing.
            indexes = [d["index"] for d in rows]
            self.assertEqual(indexes, list(range(indexes[0], indexes[0] - 20, -1)))
            senders = {d["payload"]: d["sender"] for d in rows}
            self.assertEqual(senders[sent[0]], "a")
            self.assertEqual(senders[sent[-1]], "c")

            # The whole page in the picture.
            height, chrome = await session.execute(
                "return [document.documentElement.scrollHeight,"
                " window.outerHeight - window.innerHeight];"
            )
            await session.set_window_size(WIDTH, height + chrome)
            png = await session.screenshot()
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
            target = os.environ.get("ISIS_SCREENSHOT")
            if target:
                Path(target).write_bytes(png)

        return deferred(run())
