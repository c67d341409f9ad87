"""
Views in the delivery stream, end to end in one process: a group of three
on loopback TCP loses a member, and every tool that reads the stream sees
the view change where it falls.  Each member writes a C{jsonl:} log
(L{JsonLinesHandler}), a client subscribes over the client API, and
C{isis tail}, C{isis status} and C{isis check} run against the real nodes
and files.
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTCP
from twisted.trial.unittest import TestCase

from isis_twisted.api.client import ClientProtocol, connect
from isis_twisted.app.cli import parse, run
from isis_twisted.app.handlers import JsonLinesHandler
from isis_twisted.core import checker
from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.core.membership import NORMAL
from isis_twisted.net.node import MulticastNode
from isis_twisted.tools.testing import LocalGroup
from tests.test_cli import console, err, out
from tests.test_client import listen
from tests.test_node import deferred
from tests.test_node_membership import FAST


class ViewStreamTests(TestCase):
    """
    A group of three loses c; a and b install view 1 and go on.
    """

    timeout = 120

    async def lose_c(self) -> tuple[LocalGroup, Path, list[Record], list[Delivery]]:
        """
        Run the group: 20 messages from each member, c stops, 10 more from
        a and b while the view changes and 10 after it.

        @return: The group, the directory of the members' logs, what a
            client subscribed to a with views saw, and what one subscribed
            without views saw (both once they have caught up with a).
        """
        logs = Path(self.mktemp())
        logs.mkdir()
        timing: dict[str, Any] = dict(FAST)
        group = LocalGroup(reactor, ["a", "b", "c"], **timing)
        for name, node in group.nodes.items():
            node.add_handler(JsonLinesHandler(logs / f"{name}.jsonl"))
        await group.start()
        self.addCleanup(lambda: deferred(group.stop()))
        a, b, c = (group.nodes[n] for n in "abc")
        self.port, _ = listen(self, a)
        with_views = await self.client()
        plain = await self.client()
        seen: list[Record] = []
        seen_plain: list[Delivery] = []
        self.assertEqual(await with_views.subscribe(1, seen.append, views=True), 1)
        self.assertEqual(await plain.subscribe(1, seen_plain.append), 1)
        await self.send([a, b, c], 20)
        await c.stopService()
        waiting = Deferred.fromCoroutine(self.send([a, b], 10))
        await group.wait_until(
            lambda: all(
                n.view.id == 1 and n.membership.state == NORMAL for n in (a, b)
            ),
            what="a and b settling in view 1",
        )
        await waiting
        await self.send([a, b], 10)
        stream = group.recorders["a"].stream
        await group.wait_until(
            lambda: (
                len(seen) == len(stream)
                and len(seen_plain) == len(group.recorders["a"].records)
            ),
            what="the subscribers catching up with a",
        )
        return group, logs, seen, seen_plain

    async def client(self) -> ClientProtocol:
        proto = await connect(IReactorTCP(reactor), str(self.port))
        self.addCleanup(proto.close)
        return proto

    async def send(self, nodes: list[MulticastNode], each: int) -> None:
        await gatherResults(
            [
                node.multicast(f"{node.me}:{i}".encode())
                for node in nodes
                for i in range(each)
            ]
        )

    def check(self, *paths: Path) -> tuple[int, str, str]:
        """
        Run C{isis check} over C{paths}.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = checker.main([str(p) for p in paths])
        return code, stdout.getvalue(), stderr.getvalue()

    def test_everything_sees_the_view(self) -> Deferred[None]:
        """
        a's and b's logs hold the view line at the same place, the one their
        handlers saw; c's has none.  The client that asked for views saw
        a's stream exactly, the one that did not saw its deliveries only.
        C{isis check} passes the three logs, though c's lacks the last
        messages.
        """

        async def run_test() -> None:
            group, logs, seen, seen_plain = await self.lose_c()
            view = ViewChange(1, ("a", "b"), 81)
            for name in "ab":
                records = checker.load_records(logs / f"{name}.jsonl")
                self.assertEqual(records, group.recorders[name].stream)
                self.assertEqual(records[80], view)
                self.assertEqual(
                    [r for r in records if isinstance(r, ViewChange)], [view]
                )
            text = (logs / "a.jsonl").read_text().splitlines()
            self.assertEqual(
                text[80], '{"view": 1, "members": ["a", "b"], "index": 81}'
            )
            c_records = checker.load_records(logs / "c.jsonl")
            self.assertFalse(any(isinstance(r, ViewChange) for r in c_records))
            self.assertEqual(seen, group.recorders["a"].stream)
            self.assertEqual(seen_plain, group.recorders["a"].records)
            code, stdout, stderr = self.check(*(logs / f"{n}.jsonl" for n in "abc"))
            self.assertEqual(code, 0, stdout + stderr)
            self.assertIn("3 nodes, 2 views (final 1), 100 messages", stdout)

        return deferred(run_test())

    def test_broken_logs_fail(self) -> Deferred[None]:
        """
        The same logs, broken two ways, fail C{isis check}: b's without its
        view line (it delivered in view 0 what a delivered in view 1: same
        view), and
        c's with a delivery the others did not make at that index.
        """

        async def run_test() -> None:
            _, logs, _, _ = await self.lose_c()
            broken = Path(self.mktemp())
            shutil.copytree(logs, broken)
            b_log = broken / "b.jsonl"
            lines = b_log.read_text().splitlines(keepends=True)
            b_log.write_text("".join(line for line in lines if '"sender"' in line))
            code, stdout, _ = self.check(*(broken / f"{n}.jsonl" for n in "abc"))
            self.assertEqual(code, 1, stdout)
            self.assertIn("same view at b: delivered a@", stdout)

            shutil.copy(logs / "b.jsonl", b_log)
            c_log = broken / "c.jsonl"
            count = len(checker.load_jsonl(c_log))
            with c_log.open("a") as f:
                f.write(
                    checker.record_to_json(Delivery(count + 1, "c", 999, b"mine"))
                    + "\n"
                )
            code, stdout, _ = self.check(*(broken / f"{n}.jsonl" for n in "abc"))
            self.assertEqual(code, 1, stdout)
            self.assertIn("uniformity at c", stdout)

        return deferred(run_test())

    def test_isis_commands(self) -> Deferred[None]:
        """
        Against the real node a: C{isis tail --json} prints a's log line for
        line, view line included; C{isis tail} prints the view as one plain
        line; C{isis status} shows view 1 and the view change, and
        C{--json} gives the new fields.
        """

        async def run_test() -> None:
            _, logs, _, _ = await self.lose_c()
            node = ["--node", str(self.port)]
            lines = (logs / "a.jsonl").read_text().splitlines()
            deliveries = sum('"sender"' in line for line in lines)
            c = console()
            argv = [*node, "tail", "--since", "1", "--count", str(deliveries), "--json"]
            self.assertEqual(await run(reactor, parse(argv), c), 0, err(c))
            self.assertEqual(out(c), lines)

            c = console()
            argv = [*node, "tail", "--since", "80", "--count", "2"]
            self.assertEqual(await run(reactor, parse(argv), c), 0, err(c))
            self.assertEqual(out(c)[1], "-- view 1: a, b (from index 81)")
            self.assertEqual(len(out(c)), 3)

            c = console()
            self.assertEqual(await run(reactor, parse([*node, "status"]), c), 0)
            shown = out(c)
            self.assertEqual(
                shown[:3],
                ["blocked: no", "view: 1 of a, b (normal)", "suspects: (none)"],
            )
            self.assertTrue(shown[3].startswith("view changes: 1, the last took "))

            c = console()
            self.assertEqual(
                await run(reactor, parse([*node, "status", "--json"]), c), 0
            )
            status: dict[str, Any] = json.loads("\n".join(out(c)))
            self.assertEqual(status["view"], 1)
            self.assertEqual(status["view_members"], ["a", "b"])
            self.assertEqual(status["state"], "normal")
            self.assertEqual(status["suspects"], {})
            self.assertEqual(status["view_changes"], 1)
            self.assertIsInstance(status["last_view_change_s"], float)

        return deferred(run_test())
