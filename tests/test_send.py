"""
Tests for L{isis_twisted.app.send} and L{isis_twisted.app.sendinput}:
C{isis send}.
"""

from __future__ import annotations

import io
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.task import deferLater

from isis_twisted.app import send
from isis_twisted.app.cli import parse, run
from isis_twisted.app.clibase import EXIT_TIMEOUT, Console
from isis_twisted.tools.testing import wait_until
from tests.test_cli import NodeCommandTests, console, err, out
from tests.test_client import FakeNode


class SendTests(NodeCommandTests):
    """
    C{isis send}.
    """

    async def test_arguments(self) -> None:
        node = FakeNode()
        c = console()
        self.assertEqual(
            await self.run_command(node, ["send", "one", "two", "é"], c), 0
        )
        self.assertEqual(node.received, [b"one", b"two", "é".encode()])
        self.assertEqual(out(c), ["1 a@1", "2 a@2", "3 a@3"])
        self.assertEqual(err(c), [])

    async def test_stdin(self) -> None:
        """
        Without arguments, or with C{-}, every line of standard input is a
        message; the C{\\n} ending it is not part of it (a C{\\r} before it
        is), and a last line needs none.
        """
        for argv in (["send"], ["send", "-"]):
            node = FakeNode()
            c = console(b"first\r\n\nthird\nlast")
            self.assertEqual(await self.run_command(node, argv, c), 0)
            self.assertEqual(node.received, [b"first\r", b"", b"third", b"last"])
            self.assertEqual(len(out(c)), 4)

    async def test_lines_across_reads(self) -> None:
        """
        Lines are found however the input arrives in pieces.
        """

        class Trickle(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                return super().read(3)

        node = FakeNode()
        c = Console(
            Trickle(b"abcdefgh\r\n\n12\n" + b"x" * 10), io.StringIO(), io.StringIO()
        )
        self.assertEqual(await self.run_command(node, ["send"], c), 0)
        self.assertEqual(node.received, [b"abcdefgh\r", b"", b"12", b"x" * 10])

    async def test_pipelined(self) -> None:
        """
        Messages are sent without waiting for earlier ones to be delivered:
        the node has all of them at once before it delivers any.
        """
        node = FakeNode(hold=True)
        lines = b"".join(b"message %d\n" % i for i in range(300))
        c = console(lines)
        running = self.run_command(node, ["send"], c)
        await node.when_pending(300)
        self.assertEqual(node.history, [])
        node.release()
        self.assertEqual(await running, 0)
        self.assertEqual(node.received, lines.splitlines())
        self.assertEqual(out(c), [f"{i} a@{i}" for i in range(1, 301)])

    async def test_window(self) -> None:
        """
        No more than C{--window} messages await delivery at once.
        """
        node = FakeNode(hold=True)
        c = console(b"".join(b"%d\n" % i for i in range(20)))
        running = self.run_command(node, ["send", "--window", "4"], c)
        for _ in range(5):
            await node.when_pending(4)
            node.release()
        self.assertEqual(await running, 0)
        self.assertEqual(node.most_pending, 4)
        self.assertEqual(len(node.received), 20)

    async def test_quiet(self) -> None:
        node = FakeNode()
        c = console()
        self.assertEqual(await self.run_command(node, ["send", "-q", "x", "y"], c), 0)
        self.assertEqual(out(c), [])
        self.assertEqual(len(node.received), 2)

    async def test_refused_payload(self) -> None:
        """
        A refused message is reported by number; the others still go, and the
        exit status is 1.
        """
        node = FakeNode(limit=3)
        c = console(b"ok\ntoo long\nyes\n")
        self.assertEqual(await self.run_command(node, ["send"], c), 1)
        self.assertEqual(node.received, [b"ok", b"yes"])
        self.assertEqual(out(c), ["1 a@1", "2 a@2"])
        self.assertEqual(
            err(c), ["isis send: message 2: payload of 8 bytes is over the limit of 3"]
        )

    async def test_connection_lost(self) -> None:
        """
        When the node goes away mid-way, the command says so and exits 1.
        """
        node = FakeNode(hold=True)
        c = console(b"a\nb\nc\n")
        running = self.run_command(node, ["send"], c)
        await node.when_pending(3)
        self.drop_connection()
        self.assertEqual(await running, 1)
        self.assertEqual(out(c), [])
        (line,) = err(c)
        self.assertTrue(
            line.startswith("isis send: lost the connection to the node at")
        )


class SendInputTests(NodeCommandTests):
    """
    C{isis send}: files, NUL-separated input, timeouts and failures.
    """

    async def test_files_and_nul(self) -> None:
        """
        Each C{--file} is one message, whatever bytes it holds (empty, and
        10 MiB); C{-0} splits standard input at NUL bytes only.
        """
        paths = []
        contents = [b"", bytes(range(256)) * (40 * 1024) + b"\r\n", b"\x00\n\r"]
        for data in contents:
            path = Path(self.mktemp())
            path.write_bytes(data)
            paths.append(str(path))
        node = FakeNode()
        c = console()
        argv = ["send", "-f", paths[0], "--file", paths[1], "--file", paths[2]]
        self.assertEqual(await self.run_command(node, argv, c), 0)
        self.assertEqual(node.received, contents)
        self.assertEqual(len(out(c)), 3)
        node = FakeNode()
        c = console(b"a\nb\r\x00\x00\xff\x00last")
        self.assertEqual(await self.run_command(node, ["send", "-0"], c), 0)
        self.assertEqual(node.received, [b"a\nb\r", b"", b"\xff", b"last"])

    async def test_timeout(self) -> None:
        """
        With C{--timeout}, a group that cannot deliver ends the command with
        status 3 and one line naming whom the node waits for.
        """
        node = FakeNode(hold=True)
        node.extra_status = {"oldest_undelivered": {"waiting_for": ["c"]}}
        c = console(b"a\nb\n")
        argv = ["send", "--timeout", "0.5"]
        self.assertEqual(await self.run_command(node, argv, c), EXIT_TIMEOUT)
        self.assertEqual(
            err(c),
            [
                "isis send: no delivery confirmed for 1 s; the node waits for c;"
                " 0 confirmed, 2 unconfirmed"
            ],
        )
        self.assertEqual(out(c), [])

    async def test_waiting_line(self) -> None:
        """
        Without C{--timeout}, a stall is told once, and the command goes on
        to deliver when the group does.
        """
        self.patch(send, "WAIT_NOTICE", 0.5)
        node = FakeNode(hold=True)
        node.extra_status = {"oldest_undelivered": {"waiting_for": ["b"]}}
        c = console(b"a\nb\n")
        running = self.run_command(node, ["send"], c)
        await node.when_pending(2)
        await wait_until(reactor, lambda: bool(err(c)), 10, "the waiting line")
        # Another check or two: the same line is not told again.
        await deferLater(reactor, 2.2, lambda: None)
        node.release()
        self.assertEqual(await running, 0)
        self.assertEqual(len(out(c)), 2)
        (line,) = err(c)
        self.assertTrue(line.startswith("isis send: no delivery confirmed for "))
        self.assertTrue(
            line.endswith(
                "the node waits for b; 0 confirmed, 2 unconfirmed; still waiting"
            ),
            line,
        )

    async def test_mass_failure_is_one_line(self) -> None:
        """
        Many messages failing for one reason are told in one line, with the
        count.
        """
        node = FakeNode()
        node.fail_with = RuntimeError("no room")
        c = console(b"x\n" * 2000)
        self.assertEqual(await self.run_command(node, ["send"], c), 1)
        self.assertEqual(
            err(c),
            [
                "isis send: 2000 messages failed (the first: message 1): the node"
                " failed to multicast: no room"
            ],
        )

    async def test_options_after_the_command(self) -> None:
        """
        C{isis send --node X} works as C{isis --node X send}.
        """
        node = FakeNode()
        number = self.serve(node)
        c = console()
        options = parse(["send", "--node", number, "x"])
        self.assertEqual(await run(reactor, options, c), 0)
        self.assertEqual(node.received, [b"x"])
