"""
A small client of the W3C WebDriver protocol, enough for the browser tests
to drive a headless Chromium through C{chromedriver} without selenium:
start the driver, open a session, load a page, run a script, take a
screenshot, quit.

The protocol is JSON over HTTP.  Every request is a blocking L{urllib} call
run in the reactor's thread pool (L{deferToThread}): the browser may take
seconds to answer, and meanwhile the reactor must go on serving the members
the page is talking to.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import ProxyHandler, Request, build_opener

from twisted.internet.threads import deferToThread

from isis_twisted.tools.localcluster import poll
from isis_twisted.tools.testing import free_ports

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "ChromeDriver",
    "Session",
    "WebDriverError",
    "browser_missing",
]

CHROMIUM = "/usr/bin/chromium"
"""
The browser (Debian's C{chromium} package).
"""

CHROMEDRIVER = "/usr/bin/chromedriver"
"""
Its driver (Debian's C{chromium-driver} package).
"""

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""
Chromium's arguments: headless, and without the background requests (updates,
sync, safe browsing) that would otherwise flood a machine without a network
with refused connections.  No crash handler either: it leaves the driver's
process group, where L{ChromeDriver.stop} would not find it.  A fresh
C{--user-data-dir} goes with them.
"""

# No proxy from the environment: the driver and the pages are on loopback.
_OPENER = build_opener(ProxyHandler({}))


def browser_missing() -> str | None:
    """
    Why the browser tests cannot run here (one line), or L{None} if they
    can.
    """
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (apt-get install {package})"
    return None


class WebDriverError(Exception):
    """
    The driver answered a command with an error.

    @ivar error: The protocol's error code (C{"no such element"}, ...), or
        C{"http"} when the answer was not the protocol's.
    """

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error


def _call(url: str, method: str, body: object, timeout: float) -> Any:
    """
    One command, blocking: its answer's C{value}.
    """
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            raw = answer.read()
    except HTTPError as e:
        raw = e.read()
        try:
            value = json.loads(raw)["value"]
            error, message = value["error"], value.get("message", "")
        except (ValueError, KeyError, TypeError):
            error, message = "http", f"{e.code} {raw[:200]!r}"
        raise WebDriverError(error, message) from None
    return json.loads(raw)["value"]


class ChromeDriver:
    """
    A C{chromedriver} process on a free port of loopback, in a process
    group of its own, so that L{stop} ends the browsers it started too.

    @ivar port: The port it listens on, once L{start} returned.
    """

    def __init__(self, reactor: Any, log: Path, binary: str = CHROMEDRIVER) -> None:
        """
        @param log: Where the driver's output goes (for a failing test).
        """
        self.reactor = reactor
        self.log = log
        self.binary = binary
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 20.0) -> None:
        """
        Start the driver and wait until it says it is ready.

        @raise RuntimeError: If it exits first.
        @raise TimeoutError: If it is not ready within C{timeout} seconds.
        """
        [self.port] = free_ports(1)
        with self.log.open("wb") as out:
            self._process = subprocess.Popen(
                [self.binary, f"--port={self.port}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self._process

        async def ready() -> bool:
            if process.poll() is not None:
                said = self.log.read_text(errors="replace")
                raise RuntimeError(f"chromedriver exited at start:\n{said}")
            try:
                status = await self.call("GET", "/status", timeout=2.0)
            except (OSError, WebDriverError):
                return False
            return bool(status.get("ready"))

        await poll(self.reactor, ready, timeout, "chromedriver to be ready")

    async def call(
        self, method: str, path: str, body: object = None, timeout: float = 60.0
    ) -> Any:
        """
        Send one command and wait for its answer's C{value}, off the
        reactor's thread.

        @raise WebDriverError: If the driver answers with an error.
        @raise OSError: If it cannot be reached.
        """
        url = f"http://127.0.0.1:{self.port}{path}"
        return await deferToThread(_call, url, method, body, timeout)

    async def session(self, args: Sequence[str], binary: str = CHROMIUM) -> Session:
        """
        Start a browser and open a session with it.

        @param args: The browser's command line arguments (L{CHROMIUM_ARGS}
            and a C{--user-data-dir} of its own, say).
        """
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": list(args)},
        }
        value = await self.call(
            "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}
        )
        return Session(self, value["sessionId"])

    async def stop(self) -> None:
        """
        End the driver and whatever it started (SIGTERM to its process
        group, SIGKILL to what is left of it 5 s later) and wait for it.
        Once is enough.
        """
        process, self._process = self._process, None
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await deferToThread(process.wait, 5)
        # A browser the driver left behind, or the driver itself if it did
        # not stop: they are of its group.
        _signal_group(process.pid, signal.SIGKILL)
        await deferToThread(process.wait)


def _signal_group(group: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, number)


class Session:
    """
    One WebDriver session: one browser.

    @ivar id: The session's id.
    """

    def __init__(self, driver: ChromeDriver, id: str) -> None:
        self.driver = driver
        self.id = id
        self._ended = False

    async def _command(self, method: str, path: str, body: object = None) -> Any:
        return await self.driver.call(method, f"/session/{self.id}{path}", body)

    async def navigate(self, url: str) -> None:
        """
        Load C{url} and wait until it has loaded.
        """
        await self._command("POST", "/url", {"url": url})

    async def execute(self, script: str, *args: object) -> Any:
        """
        Run C{script} (a function's body: it C{return}s its answer) in the
        page, with C{arguments} bound to C{args}.

        @return: What it returned, as JSON.
        """
        return await self._command(
            "POST", "/execute/sync", {"script": script, "args": list(args)}
        )

    async def set_window_size(self, width: int, height: int) -> None:
        """
        Resize the browser's window (its viewport, headless).
        """
        await self._command("POST", "/window/rect", {"width": width, "height": height})

    async def screenshot(self) -> bytes:
        """
        The viewport, as a PNG.
        """
        return base64.b64decode(await self._command("GET", "/screenshot"))

    async def quit(self) -> None:
        """
        End the session, and with it the browser.  Once is enough.
        """
        if self._ended:
            return
        self._ended = True
        await self.driver.call("DELETE", f"/session/{self.id}")
