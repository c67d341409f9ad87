"""
Tests for L{isis_twisted.app.cli}: the C{isis} command.

The node commands run in the test's reactor against a L{FakeNode} served on
a loopback port; a few tests run the command as a process to see what a user
sees.  Each command's own tests are in the module named after the command's
(C{test_send}, C{test_tail}, C{test_statusview}, C{test_forcing}); they
share the helpers here.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from isis_twisted.app.cli import main, parse, run
from isis_twisted.app.clibase import DEFAULT_NODE, Console
from isis_twisted.app.send import DEFAULT_WINDOW
from isis_twisted.core import checker
from isis_twisted.core.engine import Delivery
from isis_twisted.tools.testing import wait_until
from tests.test_client import FakeNode, listen

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
