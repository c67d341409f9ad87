"""
Tests for L{isis_twisted.app.cli}: the C{isis} command.

The node commands run in the test's reactor against a L{FakeNode} served on
a loopback port; a few tests run the command as a process to see what a user
sees.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from isis_twisted.app import cli
from isis_twisted.app.cli import (
    DEFAULT_NODE,
    DEFAULT_WINDOW,
    EXIT_TIMEOUT,
    Console,
    format_status,
    main,
    parse,
    run,
    tail_line,
)
from isis_twisted.core import checker
from isis_twisted.core.engine import Delivery, ViewChange
from isis_twisted.core.membership import CannotForceError
from isis_twisted.tools.testing import wait_until
from tests.test_client import FakeNode, OldNode, listen

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def console(stdin: bytes = b"") -> Console:
    """
    A console over in-memory streams.
    """
    return Console(io.BytesIO(stdin), io.StringIO(), io.StringIO())


def out(c: Console) -> list[str]:
    """
    The lines written to C{c}'s standard output.
    """
    assert isinstance(c.stdout, io.StringIO)
    return c.stdout.getvalue().splitlines()


def err(c: Console) -> list[str]:
    """
    The lines written to C{c}'s standard error.
    """
    assert isinstance(c.stderr, io.StringIO)
    return c.stderr.getvalue().splitlines()


def free_port() -> int:
    """
    A loopback port nobody listens on (it was free a moment ago).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_isis(
    args: list[str], stdin: bytes = b""
) -> Deferred[subprocess.CompletedProcess[bytes]]:
    """
    Run C{python -m isis_twisted.app.cli ARGS} in a thread, leaving the reactor
    free to serve it.
    """
    return deferToThread(
        subprocess.run,
        [sys.executable, "-m", "isis_twisted.app.cli", *args],
        input=stdin,
        capture_output=True,
        env=ENV,
        cwd=str(ROOT),
        timeout=120,
    )


class OptionsTests(SynchronousTestCase):
    """
    Parsing the command line.
    """

    def assertUsageError(self, argv: list[str], *fragments: str) -> None:
        error = self.assertRaises(usage.UsageError, parse, argv)
        for fragment in fragments:
            self.assertIn(fragment, str(error))

    def test_defaults(self) -> None:
        options = parse(["send", "x"])
        self.assertEqual(options["node"], DEFAULT_NODE)
        self.assertEqual(options.subCommand, "send")
        self.assertEqual(options.subOptions["payloads"], ["x"])
        self.assertEqual(options.subOptions["window"], DEFAULT_WINDOW)
        self.assertFalse(options.subOptions["quiet"])

    def test_bare_port(self) -> None:
        """
        A bare port number means that port on 127.0.0.1.
        """
        for argv in (["--node", "9200", "status"], ["-n", "9200", "status"]):
            self.assertEqual(parse(argv)["node"], "tcp:host=127.0.0.1:port=9200")
        self.assertEqual(
            parse(["-n", "unix:path=/s", "status"])["node"], "unix:path=/s"
        )

    def test_tail(self) -> None:
        options = parse(["tail", "--since", "5", "-c", "2", "--json"]).subOptions
        self.assertEqual(
            (options["since"], options["count"], options["json"]), (5, 2, True)
        )
        options = parse(["tail"]).subOptions
        self.assertEqual((options["since"], options["count"]), (None, None))

    def test_send(self) -> None:
        options = parse(["send", "-q", "--window", "3", "--", "-a", "b"]).subOptions
        self.assertEqual(options["payloads"], ["-a", "b"])
        self.assertEqual(options["window"], 3)
        self.assertTrue(options["quiet"])

    def test_global_options_after_the_command(self) -> None:
        """
        The global options may follow the command; there they win.
        """
        options = parse(["--node", "1", "status", "--node", "9200", "-t", "/dev/null"])
        self.assertEqual(options["node"], "tcp:host=127.0.0.1:port=9200")
        self.assertEqual(options["token"], b"")
        options = parse(["tail", "--answer-timeout", "2.5"])
        self.assertEqual(options["answer-timeout"], 2.5)
        self.assertEqual(options["node"], DEFAULT_NODE)

    def test_send_input_options(self) -> None:
        options = parse(["send", "-0", "--timeout", "1.5"]).subOptions
        self.assertTrue(options["null"])
        self.assertEqual(options["timeout"], 1.5)
        self.assertEqual(options["file_payloads"], [])
        self.assertUsageError(["send", "--timeout", "0"], "more than 0 seconds")
        self.assertUsageError(["send", "--timeout", "x"], "a number of seconds")
        self.assertUsageError(
            ["send", "--file", "/nonexistent/x"], "'/nonexistent/x' cannot be read"
        )

    def test_mistakes(self) -> None:
        """
        Mistakes are usage errors that say what is wrong and where help is.
        """
        self.assertUsageError(
            [], "no command given", "send, tail, status, force-view, check"
        )
        self.assertUsageError(["--bogus", "status"], "--bogus", "'isis --help'")
        self.assertUsageError(["frob"], "Unknown command: frob")
        self.assertUsageError(["tail", "--since", "x"], "--since", "'isis tail --help'")
        self.assertUsageError(["tail", "--since", "0"], "--since must be 1 or more")
        self.assertUsageError(["tail", "--count", "0"], "--count must be 1 or more")
        self.assertUsageError(["send", "--window", "0"], "--window must be 1 or more")
        self.assertUsageError(["status", "extra"], "Wrong number of arguments")
        self.assertUsageError(["check"], "at least one delivery log")


class FormatTests(SynchronousTestCase):
    """
    How deliveries and the status are printed.
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

    def test_status(self) -> None:
        status = {
            "me": "a",
            "members": ["a", "b", "c"],
            "queue_length": 2,
            "ready": True,
            "leader": None,
            "load": 0.25,
            "peers": {"b": {"connected": True, "horizon": 4}, "c": {}},
            "links": [{"peer": "b", "up": False}, 3],
            "something_new": {"deep": {"deeper": []}},
        }
        self.assertEqual(
            format_status(status),
            [
                "me: a",
                "members: a, b, c",
                "queue length: 2",
                "ready: yes",
                "leader: -",
                "load: 0.25",
                "peers:",
                "  b:",
                "    connected: yes",
                "    horizon: 4",
                "  c: (none)",
                "links:",
                "  -",
                "    peer: b",
                "    up: no",
                "  - 3",
                "something new:",
                "  deep:",
                "    deeper: (none)",
            ],
        )

    def test_broken_pipe(self) -> None:
        """
        Once standard output is closed by its reader, output is dropped and
        L{Console.out} says so.
        """

        class Closed(io.StringIO):
            def write(self, text: str) -> int:
                raise BrokenPipeError()

        c = Console(io.BytesIO(), Closed(), io.StringIO())
        self.assertFalse(c.out("x"))
        self.assertTrue(c.stdout_closed)
        self.assertFalse(c.out("y"))


class NodeCommandTests(TestCase):
    """
    Helpers to run a node command against a L{FakeNode}.
    """

    def serve(self, node: FakeNode) -> str:
        """
        Serve C{node} for the test; return what C{--node} takes to reach it.
        """
        number, self.factory = listen(self, node)
        return str(number)

    def drop_connection(self) -> None:
        """
        Make the node's end of the (first) connection hang up.
        """
        transport = self.factory.protocols[0].transport
        assert transport is not None
        transport.loseConnection()

    def run_command(self, node: FakeNode, argv: list[str], c: Console) -> Deferred[int]:
        return run(reactor, parse(["--node", self.serve(node), *argv]), c)


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
        self.patch(cli, "WAIT_NOTICE", 0.5)
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


class StatusTests(NodeCommandTests):
    """
    C{isis status}.
    """

    async def test_human(self) -> None:
        node = FakeNode()
        node.extra_status = {"peers": {"b": {"connected": False}}}
        c = console()
        self.assertEqual(await self.run_command(node, ["status"], c), 0)
        self.assertEqual(
            out(c),
            [
                "blocked: the node is not connected to b",
                "me: a",
                "members: a, b, c",
                "delivered: 0",
                "pending: 0",
                "history:",
                "  oldest: 1",
                "  newest: 0",
                "peers:",
                "  b:",
                "    connected: no",
            ],
        )

    async def test_blocked_first(self) -> None:
        """
        The first line says which members the oldest message waits for.
        """
        node = FakeNode()
        node.extra_status = {
            "oldest_undelivered": {"age_s": 4.5, "waiting_for": ["b", "c"]},
            "silent_members": ["c"],
            "peers": {"b": {"connected_out": True}, "c": {"connected_in": True}},
        }
        c = console()
        self.assertEqual(await self.run_command(node, ["status"], c), 0)
        self.assertEqual(
            out(c)[0],
            "blocked: the node waits for b, c (silent: c), its oldest message"
            " for 4.5 s",
        )
        node.extra_status = {}
        c = console()
        self.assertEqual(await self.run_command(node, ["status"], c), 0)
        self.assertEqual(out(c)[0], "blocked: no")

    def membership(self, **fields: object) -> dict[str, object]:
        """
        A status with the membership fields a node reports, overridden by
        C{fields}.
        """
        return {
            "view": 2,
            "view_members": ["a", "b", "c"],
            "state": "normal",
            "removed_because": None,
            "suspects": {},
            "view_changes": 2,
            "last_view_change_s": 0.0123,
            **fields,
        }

    async def status_of(self, status: dict[str, object]) -> list[str]:
        node = FakeNode()
        node.extra_status = status
        c = console()
        self.assertEqual(await self.run_command(node, ["status"], c), 0)
        return out(c)

    async def test_view(self) -> None:
        """
        After the blocked line come the view (id, members, state), the
        suspects and the view changes with how long the last took; those
        fields are not repeated below.
        """
        lines = await self.status_of(self.membership())
        self.assertEqual(
            lines[:4],
            [
                "blocked: no",
                "view: 2 of a, b, c (normal)",
                "suspects: (none)",
                "view changes: 2, the last took 12 ms",
            ],
        )
        self.assertEqual(lines[4], "me: a")
        rest = "\n".join(lines[4:])
        for key in ["view members", "state", "suspects", "last view change"]:
            self.assertNotIn(f"{key}:", rest)

    async def test_peer_out_of_view(self) -> None:
        """
        A peer left out of the view holds nothing up: that it is not
        connected is no reason to say the node is blocked.  A member of the
        view that is not connected still is.
        """
        peers = {"b": {"connected_out": True}, "c": {"connected_out": False}}
        lines = await self.status_of(
            self.membership(view_members=["a", "b"], peers=peers)
        )
        self.assertEqual(lines[0], "blocked: no")
        lines = await self.status_of(self.membership(peers=peers))
        self.assertEqual(lines[0], "blocked: the node is not connected to c")

    async def test_suspects(self) -> None:
        """
        Each suspect is shown with how long this member has suspected it, or
        as suspected by others.
        """
        lines = await self.status_of(self.membership(suspects={"c": 1.5, "b": None}))
        self.assertIn("suspects: b (by others), c for 1.5 s", lines)

    async def test_removed_first(self) -> None:
        """
        A member that was removed says so first, with why, even when its
        oldest message waits for members too.
        """
        lines = await self.status_of(
            self.membership(
                state="removed",
                removed_because="view 3 was decided without it",
                oldest_undelivered={"age_s": 9.0, "waiting_for": ["b"]},
            )
        )
        self.assertEqual(
            lines[0],
            "blocked: this member is out of the group: view 3 was decided without it;"
            " it delivers nothing more (the others went on without it)",
        )
        self.assertEqual(lines[1], "view: 2 of a, b, c (removed)")

    async def test_stuck_handler_first(self) -> None:
        """
        A delivery handler that cannot keep a record holds up the member
        whatever the group does: it comes first, even before a removal.
        """
        stuck = {
            "handler": "<jsonl c.jsonl>",
            "index": 612,
            "reason": "OSError: [Errno 28] No space left on device",
            "stuck_s": 12.5,
            "attempts": 7,
        }
        lines = await self.status_of(
            self.membership(state="removed", stuck_handlers=[stuck, stuck])
        )
        self.assertEqual(
            lines[0],
            "blocked: delivery handler <jsonl c.jsonl> (and 1 more) cannot keep"
            " record 612 (OSError: [Errno 28] No space left on device) for 12.5 s;"
            " nothing from there is handed out",
        )

    async def test_blocked_without_majority(self) -> None:
        """
        A member without a majority says so first, naming the suspects and
        for how long.
        """
        lines = await self.status_of(
            self.membership(
                view_members=["a", "b", "c", "d", "e"],
                state="blocked",
                suspects={"c": 2.0, "d": 2.0, "e": 1.0},
                oldest_undelivered={"age_s": 2.5, "waiting_for": ["c", "d", "e"]},
            )
        )
        self.assertEqual(
            lines[0],
            "blocked: no majority of view 2 (a, b, c, d, e) is reachable;"
            " suspected: c for 2 s, d for 2 s, e for 1 s; nothing new is"
            " delivered until enough of them are back",
        )

    async def test_flushing(self) -> None:
        """
        A member closing its view says that delivery goes on in the next.
        """
        lines = await self.status_of(
            self.membership(state="flushing", suspects={"c": 0.75})
        )
        self.assertEqual(
            lines[0],
            "blocked: view 2 (a, b, c) is being closed (a view change without c"
            " for 0.75 s); delivery goes on in the next view",
        )
        lines = await self.status_of(self.membership(state="flushing"))
        self.assertEqual(
            lines[0],
            "blocked: view 2 (a, b, c) is being closed (a view change); delivery"
            " goes on in the next view",
        )

    async def test_node_that_does_not_answer(self) -> None:
        """
        A node that takes the connection and answers nothing (a stopped
        process) costs C{--answer-timeout} seconds, one line and status 3.
        """
        silent = ServerFactory.forProtocol(Protocol)
        port = IReactorTCP(reactor).listenTCP(
            0,
            silent,  # type: ignore[arg-type]
            interface="127.0.0.1",
        )
        self.addCleanup(port.stopListening)
        number = port.getHost().port  # type: ignore[attr-defined]
        c = console()
        argv = ["status", "--node", str(number), "--answer-timeout", "0.3"]
        self.assertEqual(await run(reactor, parse(argv), c), EXIT_TIMEOUT)
        self.assertEqual(
            err(c),
            [
                f"isis status: the node at tcp:host=127.0.0.1:port={number} did"
                " not answer within 0.3 s"
            ],
        )

    async def test_cut_before_any_answer(self) -> None:
        """
        A listener that cuts the connection on the first bytes (as a
        member's peer port does with AMP) is named as perhaps a peer port.
        """

        class Cutter(Protocol):
            def dataReceived(self, data: bytes) -> None:
                assert self.transport is not None
                self.transport.loseConnection()

        port = IReactorTCP(reactor).listenTCP(
            0,
            ServerFactory.forProtocol(Cutter),  # type: ignore[arg-type]
            interface="127.0.0.1",
        )
        self.addCleanup(port.stopListening)
        number = port.getHost().port  # type: ignore[attr-defined]
        c = console()
        self.assertEqual(await run(reactor, parse(["-n", str(number), "status"]), c), 1)
        self.assertEqual(
            err(c),
            [
                f"isis status: lost the connection to the node at"
                f" tcp:host=127.0.0.1:port={number} before it answered anything"
                " (is that its peer port?)"
            ],
        )

    async def test_json(self) -> None:
        node = FakeNode()
        c = console()
        self.assertEqual(await self.run_command(node, ["status", "--json"], c), 0)
        assert isinstance(c.stdout, io.StringIO)
        self.assertEqual(json.loads(c.stdout.getvalue()), node.status())


class UnreachableTests(TestCase):
    """
    A node that cannot be reached is one plain line and exit status 2.
    """

    async def test_connection_refused(self) -> None:
        port = free_port()
        for command in (["status"], ["tail"], ["send", "x"]):
            c = console()
            self.assertEqual(
                await run(reactor, parse(["-n", str(port), *command]), c), 2
            )
            self.assertEqual(
                err(c),
                [
                    f"isis: cannot reach the node at tcp:host=127.0.0.1:port={port}:"
                    " connection refused"
                ],
            )

    async def test_no_such_socket(self) -> None:
        path = self.mktemp()
        c = console()
        self.assertEqual(
            await run(reactor, parse(["-n", f"unix:path={path}", "status"]), c), 2
        )
        self.assertEqual(
            err(c),
            [
                f"isis: cannot reach the node at unix:path={path}:"
                " no such file or directory"
            ],
        )

    def test_bad_endpoint(self) -> None:
        """
        An address that is no endpoint is a usage error, found before any
        connection is tried.
        """
        with self.assertRaises(usage.UsageError) as caught:
            parse(["-n", "nonsense:x", "status"])
        self.assertIn("--node 'nonsense:x' is neither HOST:PORT", str(caught.exception))


class MainTests(SynchronousTestCase):
    """
    L{main}, in this process where no reactor is needed.
    """

    def main(self, argv: list[str]) -> tuple[Any, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", stdout)
        self.patch(sys, "stderr", stderr)
        exit = self.assertRaises(SystemExit, main, argv)
        return exit.code, stdout.getvalue(), stderr.getvalue()

    def test_usage_error(self) -> None:
        code, stdout, stderr = self.main(["tail", "--since", "soon"])
        self.assertEqual(code, 2)
        self.assertEqual(stdout, "")
        self.assertEqual(
            stderr,
            "isis: --since takes a whole number, not 'soon' (see 'isis tail --help')\n",
        )

    def test_help(self) -> None:
        code, stdout, _ = self.main(["--help"])
        self.assertEqual(code, 0)
        self.assertIn("Usage: isis [--node ENDPOINT] COMMAND", stdout)
        self.assertIn("status", stdout)

    def test_check(self) -> None:
        """
        C{isis check} runs the history checker and exits with its status.
        """
        logs = []
        for name in ("a", "b"):
            path = Path(self.mktemp())
            path.write_text(checker.record_to_json(Delivery(1, "a", 1, b"x")) + "\n")
            logs.append(f"{name}={path}")
        code, stdout, _ = self.main(["check", *logs])
        self.assertEqual(code, 0)
        self.assertIn("OK", stdout)
        code, _, stderr = self.main(["check", "missing.jsonl"])
        self.assertEqual(code, 2)
        self.assertIn("missing.jsonl", stderr)


class ProcessTests(TestCase):
    """
    The command as a user runs it: a process, its exit status and what it
    prints.
    """

    def isis_process(self, args: list[str], stdin: bytes) -> subprocess.Popen[bytes]:
        """
        Start C{isis ARGS} with its standard streams piped, give it C{stdin}
        and leave its input open (closed at cleanup).
        """
        process = subprocess.Popen(
            [sys.executable, "-m", "isis_twisted.app.cli", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            cwd=str(ROOT),
        )
        assert process.stdin is not None
        self.addCleanup(process.stdin.close)
        process.stdin.write(stdin)
        process.stdin.flush()
        return process

    def assertOneLine(
        self, result: subprocess.CompletedProcess[bytes], code: int
    ) -> str:
        """
        The process exited with C{code} and said one line on standard error,
        with no traceback.
        """
        stderr = result.stderr.decode()
        self.assertEqual(result.returncode, code, stderr)
        self.assertNotIn("Traceback", stderr)
        self.assertEqual(len(stderr.splitlines()), 1, stderr)
        return stderr.strip()

    async def test_unreachable(self) -> None:
        port = free_port()
        result = await run_isis(["--node", str(port), "status"])
        self.assertEqual(
            self.assertOneLine(result, 2),
            f"isis: cannot reach the node at tcp:host=127.0.0.1:port={port}:"
            " connection refused",
        )
        self.assertEqual(result.stdout, b"")

    async def test_bad_option(self) -> None:
        result = await run_isis(["send", "--frobnicate"])
        self.assertEqual(
            self.assertOneLine(result, 2),
            "isis: option --frobnicate not recognized (see 'isis send --help')",
        )

    async def test_send_pipelined_from_pipe(self) -> None:
        """
        C{isis send} reading a pipe sends many messages before the first is
        delivered, prints each delivery and exits 0.
        """
        node = FakeNode(hold=True)
        number, _ = listen(self, node)
        lines = b"".join(b"line %d\n" % i for i in range(1000))
        running = run_isis(["--node", str(number), "send"], stdin=lines)
        await node.when_pending(DEFAULT_WINDOW)
        self.assertEqual(node.history, [])
        node.hold = False
        node.release()
        result = await running
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(node.received, lines.splitlines())
        self.assertEqual(node.most_pending, DEFAULT_WINDOW)
        self.assertEqual(
            result.stdout.decode().splitlines(), [f"{i} a@{i}" for i in range(1, 1001)]
        )

    async def test_tail_json_then_check(self) -> None:
        """
        What C{isis tail --json} prints, C{isis check} accepts.
        """
        node = FakeNode()
        node.deliver("b", b"hello")
        node.deliver("a", b"\xff", after=1)
        number, _ = listen(self, node)
        result = await run_isis(
            ["-n", str(number), "tail", "--since", "1", "-c", "2", "--json"]
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        log = Path(self.mktemp()).resolve()
        log.write_bytes(result.stdout)
        checked = await run_isis(["check", f"a={log}"])
        self.assertEqual(checked.returncode, 0, checked.stderr)
        self.assertIn(b"OK", checked.stdout)

    async def test_interrupt_summary(self) -> None:
        """
        Ctrl-C while messages await delivery says how many were confirmed and
        how many not, and exits 130.
        """
        node = FakeNode(hold=True)
        number, _ = listen(self, node)
        process = self.isis_process(["send", "-n", str(number)], b"a\nb\nc\n")
        await node.when_pending(3)
        node.release(1)
        await wait_until(reactor, lambda: len(node.pending) == 2, 10, "a delivery")
        # The answer for the first may or may not have reached the client
        # by the interrupt: the summary must agree with what it printed.
        process.send_signal(signal.SIGINT)
        code = await deferToThread(process.wait, 120)
        stdout, stderr = process.communicate()
        self.assertEqual(code, 130, stderr)
        self.assertNotIn(b"Traceback", stderr)
        (line,) = stderr.decode().splitlines()
        self.assertRegex(
            line, r"^isis send: interrupted; [01] confirmed, [23] unconfirmed$"
        )
        confirmed = int(line.split("; ")[1].split()[0])
        self.assertEqual(len(stdout.splitlines()), confirmed)

    async def test_node_gone_while_reading(self) -> None:
        """
        When the node goes away while C{isis send} waits for more input, the
        command says so and exits 1 at once, its reading thread still
        blocked, and the interpreter exits cleanly all the same.
        """
        node = FakeNode()
        number, factory = listen(self, node)
        process = self.isis_process(["-n", str(number), "send"], b"first\n")
        await node.when_pending(1)
        transport = factory.protocols[0].transport
        assert transport is not None
        transport.loseConnection()
        code = await deferToThread(process.wait, 120)
        stdout, stderr = process.communicate()
        self.assertEqual(code, 1, stderr)
        self.assertEqual(stdout, b"1 a@1\n")
        self.assertEqual(
            stderr.decode(),
            f"isis send: lost the connection to the node at"
            f" tcp:host=127.0.0.1:port={number}\n",
        )


class ForcingNode(FakeNode):
    """
    A L{FakeNode} that can be asked to force a view change, and refuses
    when told to.
    """

    def __init__(self) -> None:
        super().__init__()
        self.forced: list[list[str] | None] = []
        self.refuse: str | None = None

    def force_view(self, without: list[str] | None) -> tuple[str, ...]:
        if self.refuse is not None:
            raise CannotForceError(self.refuse)
        self.forced.append(without)
        return ("a",)


class ForceViewTests(NodeCommandTests):
    """
    C{isis force-view}.
    """

    async def test_needs_confirmation(self) -> None:
        """
        Without C{--yes-i-know} it prints the warning, does nothing and
        exits 4.
        """
        node = ForcingNode()
        c = console()
        self.assertEqual(await self.run_command(node, ["force-view"], c), 4)
        self.assertEqual(node.forced, [])
        self.assertEqual(len(err(c)), 2)
        self.assertIn("two groups", err(c)[0])
        self.assertIn("--yes-i-know", err(c)[1])

    async def test_forces(self) -> None:
        node = ForcingNode()
        c = console()
        argv = ["force-view", "--yes-i-know", "--without", "b, c"]
        self.assertEqual(await self.run_command(node, argv, c), 0)
        self.assertEqual(node.forced, [["b", "c"]])
        self.assertEqual(out(c)[0].split(";")[0], "proposed a view of a")
        c = console()
        self.assertEqual(
            await self.run_command(node, ["force-view", "--yes-i-know"], c), 0
        )
        self.assertEqual(node.forced[-1], None)

    async def test_refused(self) -> None:
        """
        The node's refusal is one line, and a usage exit status.
        """
        node = ForcingNode()
        node.refuse = "member 'a' is normal, not blocked: a view change needs no force"
        c = console()
        argv = ["force-view", "--yes-i-know"]
        self.assertEqual(await self.run_command(node, argv, c), 2)
        self.assertEqual(err(c)[-1], f"isis force-view: {node.refuse}")

    async def test_node_without_views(self) -> None:
        c = console()
        argv = ["force-view", "--yes-i-know"]
        self.assertEqual(await self.run_command(FakeNode(), argv, c), 2)
        self.assertEqual(err(c)[-1], "isis force-view: this node has no views to force")

    def test_empty_without(self) -> None:
        with self.assertRaises(usage.UsageError) as caught:
            parse(["force-view", "--without", " , "])
        self.assertIn("at least one member", str(caught.exception))
