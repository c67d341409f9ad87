"""
Tests for L{isis_twisted.app.tail}: C{isis tail}.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import reactor
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.protocol import ServerFactory
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.app.cli import parse, run
from isis_twisted.app.tail import tail_line
from isis_twisted.core import checker
from isis_twisted.core.engine import Delivery, ViewChange
from isis_twisted.tools.testing import wait_until
from tests.test_cli import NodeCommandTests, console, err, out
from tests.test_client import FakeNode, OldNode


class TailLineTests(SynchronousTestCase):
    """
    How deliveries are printed.
    """

    def test_tail_line(self) -> None:
        self.assertEqual(
            tail_line(Delivery(3, "b", 7, "héllo".encode())), "3 b@7 héllo"
        )
        self.assertEqual(tail_line(Delivery(1, "a", 1, b"")), "1 a@1 ")

    def test_tail_line_view(self) -> None:
        """
        A view change is one plain line: its id, members and first index.
        """
        self.assertEqual(
            tail_line(ViewChange(1, ("a", "b"), 81)), "-- view 1: a, b (from index 81)"
        )
        self.assertEqual(
            tail_line(ViewChange(4, (), 9)), "-- view 4: (none) (from index 9)"
        )

    def test_tail_line_not_text(self) -> None:
        """
        Payloads that are not UTF-8, or would break the line, print as bytes
        literals.
        """
        self.assertEqual(
            tail_line(Delivery(1, "a", 1, b"\xff\x00")), "1 a@1 b'\\xff\\x00'"
        )
        self.assertEqual(
            tail_line(Delivery(1, "a", 1, b"two\nlines")), "1 a@1 b'two\\nlines'"
        )


class TailTests(NodeCommandTests):
    """
    C{isis tail}.
    """

    async def test_from(self) -> None:
        """
        C{--from} is C{--since}.
        """
        node = FakeNode()
        for payload in [b"p1", b"p2", b"p3"]:
            node.deliver("b", payload)
        c = console()
        argv = ["tail", "--from", "3", "--count", "1"]
        self.assertEqual(await self.run_command(node, argv, c), 0)
        self.assertEqual(out(c), ["3 b@3 p3"])

    async def test_since_and_count(self) -> None:
        node = FakeNode()
        for payload in [b"p1", b"p2", b"p3", b"p4"]:
            node.deliver("b", payload)
        c = console()
        self.assertEqual(
            await self.run_command(node, ["tail", "--since", "2", "--count", "2"], c), 0
        )
        self.assertEqual(out(c), ["2 b@2 p2", "3 b@3 p3"])

    async def test_streams_new_deliveries(self) -> None:
        """
        After the replay, tail prints new deliveries as they come.
        """
        node = FakeNode()
        node.deliver("b", b"old")
        c = console()
        running = self.run_command(node, ["tail", "--since", "1", "--count", "3"], c)
        await node.when_subscribed()
        node.deliver("c", b"new")
        node.deliver("b", b"\xfe")
        node.deliver("b", b"not printed")
        self.assertEqual(await running, 0)
        self.assertEqual(out(c), ["1 b@1 old", "2 c@2 new", "3 b@3 b'\\xfe'"])

    async def test_json(self) -> None:
        """
        With C{--json}, tail writes the delivery log that C{isis check}
        reads.
        """
        node = FakeNode()
        records = [
            node.deliver("b", b"text"),
            node.deliver("a", b"\x00\xff", after=1),
        ]
        c = console()
        self.assertEqual(
            await self.run_command(node, ["tail", "--since", "1", "-c", "2", "-j"], c),
            0,
        )
        self.assertEqual(out(c), [checker.record_to_json(r) for r in records])
        log = Path(self.mktemp())
        log.write_text("\n".join(out(c)) + "\n")
        self.assertEqual(checker.load_jsonl(log), records)

    async def test_views(self) -> None:
        """
        Tail asks for view changes and prints each where it falls, as one
        plain line that C{--count} does not count.
        """
        node = FakeNode()
        node.deliver("b", b"p1")
        node.install(1, ("a", "b"))
        node.deliver("b", b"p2")
        c = console()
        running = self.run_command(node, ["tail", "--since", "1", "--count", "3"], c)
        await node.when_subscribed()
        self.assertTrue(node.subscriptions[0].views)
        node.install(2, ("b",))
        node.deliver("b", b"p3")
        self.assertEqual(await running, 0)
        self.assertEqual(
            out(c),
            [
                "1 b@1 p1",
                "-- view 1: a, b (from index 2)",
                "2 b@2 p2",
                "-- view 2: b (from index 3)",
                "3 b@3 p3",
            ],
        )

    async def test_views_json(self) -> None:
        """
        With C{--json}, a view change is a line without C{sender}, the shape
        C{jsonl:} writes, and C{isis check} reads the lot back in place.
        """
        node = FakeNode()
        records = [
            node.deliver("b", b"p1"),
            node.install(1, ("a", "b")),
            node.deliver("a", b"p2", after=1),
        ]
        c = console()
        argv = ["tail", "--since", "1", "-c", "2", "--json"]
        self.assertEqual(await self.run_command(node, argv, c), 0)
        self.assertEqual(out(c)[1], '{"view": 1, "members": ["a", "b"], "index": 2}')
        log = Path(self.mktemp())
        log.write_text("\n".join(out(c)) + "\n")
        self.assertEqual(checker.load_records(log), records)

    async def test_older_node(self) -> None:
        """
        A node that predates views is told of in one line on standard
        error; its deliveries are printed all the same.
        """
        servers: list[OldNode] = []

        class Factory(ServerFactory):
            def buildProtocol(self, addr: object) -> OldNode:
                servers.append(OldNode())
                return servers[-1]

        factory = Factory()
        port = IReactorTCP(reactor).listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        number = port.getHost().port  # type: ignore[attr-defined]
        c = console()
        running = run(reactor, parse(["--node", str(number), "tail"]), c)
        # The delivery is pushed before the subscription is answered: wait
        # for both, then hang up.
        await wait_until(reactor, lambda: bool(out(c) and err(c)), what="tail")
        assert servers[0].transport is not None
        servers[0].transport.loseConnection()
        self.assertEqual(await running, 1)
        self.assertEqual(out(c), ["1 b@1 x"])
        self.assertEqual(
            err(c)[0],
            "isis tail: the node does not pass view changes (it predates"
            " them); only its deliveries follow",
        )

    async def test_history_gone(self) -> None:
        """
        Asking for forgotten history is refused with the node's message.
        """
        node = FakeNode()
        for i in range(8):
            node.deliver("b", b"%d" % i)
        node.forget(before=5)
        c = console()
        self.assertEqual(await self.run_command(node, ["tail", "--since", "2"], c), 2)
        self.assertEqual(
            err(c),
            [
                "isis tail: deliveries before index 5 are no longer held;"
                " resubscribe from 5"
            ],
        )

    async def test_node_goes_away(self) -> None:
        node = FakeNode()
        c = console()
        running = self.run_command(node, ["tail"], c)
        await node.when_subscribed()
        node.deliver("b", b"x")
        self.drop_connection()
        self.assertEqual(await running, 1)
        self.assertEqual(out(c), ["1 b@1 x"])
        self.assertIn("lost the connection", err(c)[0])
