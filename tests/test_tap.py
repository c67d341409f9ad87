"""
Tests for L{isis_twisted.app.tap}: the options and service of C{twistd isis},
and the plugin that makes twistd find them.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from twisted.application.service import IServiceMaker
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import (
    EventLoggingObserver,
    MemoryReactorClock,
    StringTransport,
)
from twisted.logger import eventsFromJSONLogFile, formatEvent, globalLogPublisher
from twisted.plugin import getPlugins
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.api.commands import Status
from isis_twisted.app import tap
from isis_twisted.app.handlers import JsonLinesHandler, LogHandler
from isis_twisted.core.handshake import WRONG_PORT_CODE
from isis_twisted.core.wire import Hello, encode_hello
from isis_twisted.net.node import MulticastNode


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


BASE = ("--id", "a", "--port", "9001", "--peers", "b=127.0.0.1:9002,c=localhost:9003")


class OptionsTests(SynchronousTestCase):
    def test_short_forms(self) -> None:
        options = parse(*BASE, "--client-port", "9101")
        self.assertEqual(options["listen"], "tcp:9001:interface=127.0.0.1")
        self.assertEqual(options["client_listen"], "tcp:9101:interface=127.0.0.1")
        self.assertEqual(
            options["peer_map"],
            {"b": "tcp:host=127.0.0.1:port=9002", "c": "tcp:host=localhost:port=9003"},
        )
        self.assertEqual(options["group"], "isis")
        self.assertEqual(options["handler_objects"], [])

    def test_endpoint_descriptions(self) -> None:
        options = parse(
            "--id",
            "a",
            "--port",
            "tcp:9001:interface=0.0.0.0",
            "--peer",
            "b=unix:/tmp/b.sock",
            "--peers",
            "c=tcp:host=10.0.0.3:port=9003",
        )
        self.assertEqual(options["listen"], "tcp:9001:interface=0.0.0.0")
        self.assertEqual(
            options["peer_map"],
            {"b": "unix:/tmp/b.sock", "c": "tcp:host=10.0.0.3:port=9003"},
        )
        self.assertIsNone(options["client_listen"])

    def test_group_of_one(self) -> None:
        self.assertEqual(parse("--id", "solo", "--port", "0")["peer_map"], {})

    def test_handlers_stack(self) -> None:
        path = self.mktemp()
        options = parse(*BASE, "--handler", "log", "--handler", f"jsonl:{path}")
        log, jsonl = options["handler_objects"]
        self.assertIsInstance(log, LogHandler)
        self.assertIsInstance(jsonl, JsonLinesHandler)
        jsonl.close()

    def test_mistakes_are_one_plain_sentence(self) -> None:
        cases: list[tuple[tuple[str, ...], str]] = [
            ((), "--id is required"),
            (("--id", "a"), "--port is required"),
            (("--id", "a b", "--port", "1"), "without spaces"),
            (("--id", "a", "--port", "70000"), "not a TCP port"),
            (("--id", "a", "--port", "nope:1"), "neither a port number"),
            (("--id", "a", "--port", "1", "--peers", "b"), "not NAME=ADDRESS"),
            (("--id", "a", "--port", "1", "--peers", "a=h:2"), "own --id"),
            (("--id", "a", "--port", "1", "--peers", "b=h:2,b=h:3"), "given twice"),
            (("--id", "a", "--port", "1", "--peers", "b=h:0"), "not a TCP port"),
            (("--id", "a", "--port", "1", "--peers", "b=what"), "neither HOST:PORT"),
            (("--id", "a", "--port", "1", "--handler", "nope"), "Unknown handler"),
            (("--id", "a", "--port", "1", "--max-frame", "10"), "1024 or more"),
            (("--id", "a", "--port", "1", "--handshake-timeout", "0"), "above 0"),
            (("--id", "a", "--port", "1", "--buffer", "x"), "buffer"),
            (("--id", "a", "--port", "1", "--heartbeat", "3"), "more than twice"),
            (("--id", "a", "--port", "1", "--silence", "soon"), "seconds"),
        ]
        for args, words in cases:
            with self.assertRaises(UsageError, msg=repr(args)) as caught:
                parse(*args)
            message = str(caught.exception)
            self.assertIn(words, message, args)
            self.assertNotIn("Traceback", message)
            self.assertEqual(len(message.splitlines()), 1, message)

    def test_join(self) -> None:
        """
        C{--join} takes addresses as C{--peers} does; C{--advertise}
        defaults to C{--port} when that names one interface.
        """
        options = parse("--id", "d", "--port", "9004", "--join", "9001,h:9002")
        self.assertEqual(
            options["join_list"],
            ["tcp:host=127.0.0.1:port=9001", "tcp:host=h:port=9002"],
        )
        self.assertEqual(options["advertise"], "tcp:host=127.0.0.1:port=9004")
        self.assertEqual(options["peer_map"], {})
        wide = ("--id", "d", "--port", "tcp:9004:interface=0.0.0.0")
        options = parse(*wide, "--join", "h:9001", "--advertise", "10.0.0.4:9004")
        self.assertEqual(options["advertise"], "tcp:host=10.0.0.4:port=9004")
        self.assertEqual(parse(*wide)["advertise"], "")
        self.assertEqual(parse(*BASE)["advertise"], "tcp:host=127.0.0.1:port=9001")
        self.assertEqual(parse(*BASE)["join_list"], [])
        node = tap.makeService(
            parse("--id", "d", "--port", "9004", "--join", "9001")
        ).node  # type: ignore[attr-defined]
        self.assertEqual(node.discovery.addresses, ["tcp:host=127.0.0.1:port=9001"])
        self.assertEqual(node.advertise, "tcp:host=127.0.0.1:port=9004")

    def test_join_mistakes(self) -> None:
        wide = ("--id", "d", "--port", "tcp:9004:interface=0.0.0.0")
        cases: list[tuple[tuple[str, ...], str]] = [
            ((*BASE, "--join", "h:1"), "give --join or --peers, not both"),
            ((*wide, "--join", "h:1"), "give --advertise HOST:PORT"),
            (("--id", "d", "--port", "1", "--join", ","), "--join needs HOST:PORT"),
            (("--id", "d", "--port", "1", "--join", "h:0"), "not a TCP port"),
            (("--id", "d", "--port", "1", "--advertise", "what"), "--advertise"),
            (
                ("--id", "d", "--port", "1", "--join", "h:1", "--tls-dir", "/x"),
                "--join does not work with --tls-dir",
            ),
        ]
        for args, words in cases:
            with self.assertRaises(UsageError, msg=repr(args)) as caught:
                parse(*args)
            message = str(caught.exception)
            self.assertIn(words, message, args)
            self.assertEqual(len(message.splitlines()), 1, message)

    def test_secret_file(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("  0123456789abcdef0123\n")
        self.assertEqual(
            parse(*BASE, "--secret-file", path)["secret"], b"0123456789abcdef0123"
        )
        self.assertIsNone(parse(*BASE)["secret"])
        with open(path, "w") as f:
            f.write("short\n")
        with self.assertRaises(UsageError) as caught:
            parse(*BASE, "--secret-file", path)
        self.assertIn("holds 5 bytes", str(caught.exception))
        with self.assertRaises(UsageError) as caught:
            parse(*BASE, "--secret-file", "/nonexistent/secret")
        self.assertIn("cannot be read: No such file", str(caught.exception))

    def test_client_token_file(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("a client token, long enough\n")
        options = parse(*BASE, "--client-port", "9101", "--client-token-file", path)
        self.assertEqual(options["client_token"], b"a client token, long enough")
        reactor = MemoryReactorClock()
        service = tap.makeService(options, reactor)
        assert isinstance(service, tap.NodeService)
        listener = next(c for c in service if isinstance(c, tap.Listener))
        self.assertEqual(listener._factory.token, b"a client token, long enough")  # type: ignore[attr-defined]

    def test_tls_dir(self) -> None:
        from isis_twisted.net.certs import write_group_certs

        where = self.mktemp()
        write_group_certs(where, ["a", "b", "c"])
        options = parse(*BASE, "--tls-dir", where)
        self.assertEqual(options["tls"].name, "a")
        with self.assertRaises(UsageError) as caught:
            parse("--id", "z", "--port", "1", "--tls-dir", where)
        self.assertIn("--tls-dir: cannot read", str(caught.exception))
        with self.assertRaises(UsageError) as caught:
            parse(
                "--id",
                "a",
                "--port",
                "1",
                "--peers",
                "b=tls:b.example:9002",
                "--tls-dir",
                where,
            )
        self.assertIn("give plain addresses", str(caught.exception))
        node = tap.makeService(options, MemoryReactorClock())
        assert isinstance(node, tap.NodeService)
        self.assertTrue(node.node.require_certificate)

    def test_metrics_port(self) -> None:
        options = parse(*BASE, "--metrics-port", "9201")
        self.assertEqual(options["metrics_listen"], "tcp:9201:interface=127.0.0.1")
        reactor = MemoryReactorClock()
        service = tap.makeService(options, reactor)
        service.privilegedStartService()
        self.assertIn(9201, [p[0] for p in reactor.tcpServers])

    def test_http_port(self) -> None:
        """
        C{--http-port} listens on 127.0.0.1 with the HTTP API's site, which
        gets the client token.
        """
        from isis_twisted.api.webapi import ApiSite

        where = self.mktemp()
        Path(where).write_bytes(b"t" * 20)
        options = parse(*BASE, "--http-port", "9301", "--client-token-file", where)
        self.assertEqual(options["http_listen"], "tcp:9301:interface=127.0.0.1")
        reactor = MemoryReactorClock()
        service = tap.makeService(options, reactor)
        service.privilegedStartService()
        [site] = [p[1] for p in reactor.tcpServers if p[0] == 9301]
        assert isinstance(site, ApiSite)
        self.assertEqual(site.api.token, b"t" * 20)
        with self.assertRaises(UsageError) as caught:
            parse(*BASE, "--http-port", "nonsense:1")
        self.assertIn("--http-port", str(caught.exception))

    def test_unwritable_jsonl(self) -> None:
        with self.assertRaises(UsageError) as caught:
            parse(*BASE, "--handler", "jsonl:/nonexistent-dir/x.jsonl")
        self.assertIn("/nonexistent-dir/x.jsonl", str(caught.exception))


class ServiceTests(SynchronousTestCase):
    def make(self, *args: str) -> tuple[MemoryReactorClock, tap.NodeService]:
        reactor = MemoryReactorClock()
        service = tap.makeService(parse(*args), reactor)
        assert isinstance(service, tap.NodeService)
        return reactor, service

    def test_node_and_client_api(self) -> None:
        reactor, service = self.make(*BASE, "--client-port", "9101", "--group", "g")
        node = service.node
        self.assertIsInstance(node, MulticastNode)
        self.assertEqual(
            (node.me, node.group, node.members), ("a", "g", ("a", "b", "c"))
        )
        service.privilegedStartService()
        service.startService()
        ports = sorted((p[0], p[3]) for p in reactor.tcpServers)
        self.assertEqual(ports, [(9001, "127.0.0.1"), (9101, "127.0.0.1")])
        dialed = sorted((c[0], c[1]) for c in reactor.tcpClients)
        self.assertEqual(dialed, [("127.0.0.1", 9002), ("localhost", 9003)])
        service.stopService()

    def test_cannot_listen_is_a_plain_exit(self) -> None:
        reactor, service = self.make(*BASE)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            from twisted.internet.error import CannotListenError

            raise CannotListenError("127.0.0.1", 9001, OSError(98, "in use"))

        reactor.listenTCP = refuse  # type: ignore[method-assign]
        service.stderr = io.StringIO()
        with self.assertRaises(SystemExit) as caught:
            service.privilegedStartService()
        self.assertEqual(caught.exception.code, tap.EX_CANNOT_LISTEN)
        message = service.stderr.getvalue()
        self.assertEqual(len(message.splitlines()), 1, message)
        self.assertIn(
            "isis: cannot listen for peers on tcp:9001:interface=127.0.0.1", message
        )
        self.assertIn("in use", message)
        self.flushLoggedErrors()


class PluginTests(SynchronousTestCase):
    def test_twistd_finds_isis(self) -> None:
        makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
        self.assertIn("isis", makers)
        options = makers["isis"].options()
        self.assertIsInstance(options, tap.Options)


ROOT = Path(__file__).resolve().parent.parent


def runner(name: str) -> list[str]:
    """
    The command line of C{twistd} or C{twist} for this interpreter: the
    script installed beside it, as an operator runs it.
    """
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    module = (
        "twisted.scripts.twistd"
        if name == "twistd"
        else "twisted.application.twist._twist"
    )
    entry = "run()" if name == "twistd" else "Twist.main()"
    return [sys.executable, "-c", f"from {module} import *; {entry}"]


def free_port() -> int:
    """
    A TCP port on 127.0.0.1 that nothing listens on (for this instant).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """
    Poll C{check} until it holds, failing after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def has_listened(process: subprocess.Popen[bytes], log: Path) -> bool:
    """
    Whether a member has said that it listens and runs (before its reactor
    runs, a SIGTERM kills it outright, leaving its pidfile), or has already
    ended.
    """
    said = log.read_bytes()
    return (b"listening on" in said and b"is running" in said) or (
        process.poll() is not None
    )


class RunnerTests(SynchronousTestCase):
    """
    C{twistd isis} and C{twist isis} as real processes: every startup
    mistake is one sentence on stderr with a non-zero exit status and no
    usage text.
    """

    def setUp(self) -> None:
        self.where = Path(self.mktemp()).resolve()
        self.where.mkdir()
        self.env = dict(os.environ, PYTHONPATH=str(self.where))

    def run_runner(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = runner(name) + (["-n"] if name == "twistd" else []) + ["isis", *args]
        return subprocess.run(
            command,
            cwd=self.where,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def assertOneSentence(
        self, result: subprocess.CompletedProcess[str], status: int, *words: str
    ) -> str:
        """
        Assert that a run failed with C{status} and exactly one line on
        stderr, starting C{isis:} and holding every word, and no usage text
        or traceback anywhere.
        """
        both = result.stdout + result.stderr
        self.assertEqual(result.returncode, status, both)
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, both)
        self.assertTrue(lines[0].startswith("isis: "), lines[0])
        for word in words:
            self.assertIn(word, lines[0])
        for noise in ("Usage:", "--help-reactors", "Traceback", "Unhandled error"):
            self.assertNotIn(noise, both)
        return lines[0]

    def test_option_mistakes(self) -> None:
        """
        Missing, malformed and unknown options, under both runners.
        """
        cases: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
            ((), ("--id is required",)),
            (("--id", "a", "--port", "abc"), ("'abc' is neither a port number",)),
            (
                ("--id", "a", "--port", "0", "--bogus"),
                ("option --bogus not recognized", "--help"),
            ),
        ]
        for name in ("twistd", "twist"):
            for args, words in cases:
                result = self.run_runner(name, *args)
                self.assertOneSentence(result, tap.EX_USAGE, *words)
        result = self.run_runner(
            "twist", "--id", "a", "--port", "0", "--log-format=json"
        )
        self.assertOneSentence(
            result,
            tap.EX_USAGE,
            "--log-format is an option of twist, not of isis",
            "give it before 'isis'",
        )
        for option in ("--nodaemon", "-n"):
            result = self.run_runner("twistd", "--id", "a", "--port", "0", option)
            self.assertOneSentence(
                result, tap.EX_USAGE, f"{option} is an option of twistd, not of isis"
            )

    def test_handler_mistakes(self) -> None:
        """
        Handlers that cannot be built: a module not on the path, a module
        that raises when imported, a factory that raises, a class where a
        factory belongs, and a result that is not a handler.
        """
        (self.where / "broken_at_import.py").write_text(
            "raise RuntimeError('settings.ini is missing')\n"
        )
        (self.where / "myhandlers.py").write_text(
            textwrap.dedent(
                """
                class Plain:
                    def __init__(self):
                        pass

                    def deliver(self, record):
                        pass

                    def close(self):
                        pass

                def crash(argument):
                    raise KeyError("no such table")

                def undeclared(argument):
                    return Plain()
                """
            )
        )
        cases = [
            ("not_on_path:make", ("not_on_path", "PYTHONPATH")),
            ("broken_at_import:make", ("RuntimeError: settings.ini is missing",)),
            ("myhandlers:crash", ("its factory raised KeyError: 'no such table'",)),
            ("myhandlers:Plain", ("Plain is a class whose constructor",)),
            ("myhandlers:undeclared", ("@implementer(IDeliveryHandler)",)),
        ]
        for spec, words in cases:
            result = self.run_runner(
                "twistd", "--id", "a", "--port", "0", "--handler", spec
            )
            self.assertOneSentence(result, tap.EX_USAGE, spec, *words)

    def test_help_shows_usage(self) -> None:
        """
        Usage text is for C{--help}, which exits 0.
        """
        result = self.run_runner("twistd", "--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--peers", result.stdout)

    def test_port_in_use(self) -> None:
        """
        A port in use is one sentence and exit status 1, with no "Unhandled
        error in Deferred" after it and no pidfile left behind.
        """
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = str(taken.getsockname()[1])
            for name in ("twistd", "twist"):
                result = self.run_runner(name, "--id", "a", "--port", port)
                self.assertOneSentence(
                    result,
                    tap.EX_CANNOT_LISTEN,
                    f"cannot listen for peers on tcp:{port}:interface=127.0.0.1",
                    "Address already in use",
                )
            result = self.run_runner(
                "twist", "--id", "a", "--port", "0", "--client-port", port
            )
            self.assertOneSentence(
                result, tap.EX_CANNOT_LISTEN, "cannot listen for the client API"
            )
        self.assertEqual(list(self.where.glob("*.pid")), [])

    def start(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        """
        Start a long-running member writing its output to C{log}, and stop
        it when the test ends.
        """
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=self.where, env=self.env, stdout=out, stderr=out
            )

        def stop() -> None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)

        self.addCleanup(stop)
        return process

    def test_two_members_in_one_directory(self) -> None:
        """
        Two members started by C{twistd} from one directory each get their
        own pidfile, so the second does not fail with "Another twistd
        server is running".
        """
        a, b = free_port(), free_port()
        members = {
            "a": ["--id", "a", "--port", str(a), "--peers", f"b=127.0.0.1:{b}"],
            "b": ["--id", "b", "--port", str(b), "--peers", f"a=127.0.0.1:{a}"],
        }
        processes = {}
        for me, args in members.items():
            log = self.where / f"{me}.out"
            processes[me] = (
                self.start([*runner("twistd"), "-n", "isis", *args], log),
                log,
            )
        for me, (process, log) in processes.items():
            wait_for(partial(has_listened, process, log), f"{me} to listen")
            self.assertIsNone(process.poll(), log.read_text())
            pid = (self.where / f"isis-{me}.pid").read_text().strip()
            self.assertEqual(pid, str(process.pid))
        for me, (process, log) in processes.items():
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            self.assertNotIn("Another twistd server", log.read_text())
            self.assertFalse((self.where / f"isis-{me}.pid").exists())

    def test_json_logs(self) -> None:
        """
        C{twist --log-format=json isis} writes one JSON object per line,
        each saying which member and what happened.
        """
        log = self.where / "a.out"
        process = self.start(
            [*runner("twist"), "--log-format=json", "isis", "--id", "a", "--port", "0"],
            log,
        )
        wait_for(partial(has_listened, process, log), "a to listen")
        self.assertIsNone(process.poll(), log.read_text())
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        with log.open() as f:
            events = list(eventsFromJSONLogFile(f))
        # Every line was read back as an event: nothing else was written.
        self.assertEqual(len(events), log.read_text().count("\x1e"))
        self.assertGreater(len(events), 2)
        lines = [formatEvent(e) for e in events]
        listening = [line for line in lines if "listening on" in line]
        self.assertEqual(len(listening), 1, lines)
        self.assertIn(
            "member 'a' of group 'isis' listening on IPv4Address", listening[0]
        )


PEER = IPv4Address("TCP", "10.0.0.9", 40001)


class WrongPortError(Exception):
    """
    What a client's command may map L{WRONG_PORT_CODE} to.
    """


class StatusOrWrongPort(Status):
    """
    L{Status}, declaring the peer port's answer as an error of its own.
    """

    commandName = b"Status"
    errors: ClassVar[dict[type[Exception], bytes]] = {WrongPortError: WRONG_PORT_CODE}


class QuietLogTests(SynchronousTestCase):
    """
    A running member's log: nothing per redial or per client call, repeated
    refusals once and then counted, and a client on the peer port told so.
    """

    def setUp(self) -> None:
        self.events = EventLoggingObserver()
        globalLogPublisher.addObserver(self.events)
        self.addCleanup(globalLogPublisher.removeObserver, self.events)
        self.reactor = MemoryReactorClock()
        service = tap.makeService(parse(*BASE, "--client-port", "9101"), self.reactor)
        assert isinstance(service, tap.NodeService)
        self.service = service
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)

    def formatted(self) -> list[str]:
        return [formatEvent(e) for e in self.events]

    def accept(self) -> tuple[Any, StringTransport]:
        """
        A connection accepted on the peer port, from L{PEER}'s host.
        """
        port = next(p for p in self.reactor.tcpServers if p[0] == 9001)
        proto = port[1].buildProtocol(PEER)
        assert proto is not None
        transport = StringTransport(peerAddress=PEER)
        proto.makeConnection(transport)
        return proto, transport

    def test_redials_are_quiet(self) -> None:
        """
        A peer that refuses every dial is redialled without a "Starting
        factory", "Stopping factory" or "Scheduling retry" line.
        """
        dials = 0
        for _ in range(6):
            factory = self.reactor.tcpClients[-1][2]
            connector = self.reactor.connectors[-1]
            # What a reactor's connector does with a refused connection.
            factory.doStart()
            factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
            factory.doStop()
            dials += 1
            self.reactor.advance(120)
        self.assertGreaterEqual(len(self.reactor.tcpClients), dials)
        for line in self.formatted():
            for noise in ("Starting factory", "Stopping factory", "Scheduling retry"):
                self.assertNotIn(noise, line)

    def test_client_calls_are_quiet(self) -> None:
        """
        A client connection (one per isis command) logs nothing.
        """
        port = next(p for p in self.reactor.tcpServers if p[0] == 9101)
        before = len(self.events)
        for _ in range(3):
            proto = port[1].buildProtocol(PEER)
            assert proto is not None
            proto.makeConnection(StringTransport(peerAddress=PEER))
            proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.formatted()[before:], [])

    def test_client_on_peer_port(self) -> None:
        """
        An AMP client on the peer port gets an error it can show, saying
        so, and the member logs one line for it and counts it; later ones
        from the same host are counted, and logged with the count once a
        minute has passed.
        """
        for attempt in range(4):
            proto, transport = self.accept()
            client = amp.AMP()
            client_transport = StringTransport()
            client.makeConnection(client_transport)
            errors: list[Failure] = []
            # A plain client sees the sentence; one whose command declares
            # WRONG_PORT_CODE (as the isis client may) gets its own error.
            command = Status if attempt % 2 else StatusOrWrongPort
            client.callRemote(command).addErrback(errors.append)
            proto.dataReceived(client_transport.value())
            client.dataReceived(transport.value())
            [failure] = errors
            if command is StatusOrWrongPort:
                failure.trap(WrongPortError)
            else:
                failure.trap(amp.UnknownRemoteError)
            message = str(failure.value)
            self.assertIn("connected to the peer port of member 'a'", message)
            self.assertIn("--client-port", message)
            self.assertTrue(transport.disconnecting)
            if attempt == 2:
                self.reactor.advance(61)
        lines = [line for line in self.formatted() if "peer port" in line]
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("member 'a' refused a connection from 10.0.0.9:40001", lines[0])
        self.assertIn("(and 2 more like it", lines[1])
        self.assertNotIn("over the limit", " ".join(self.formatted()))
        self.assertEqual(self.service.node.status().rejected_connections, 4)

    def test_repeated_refusals_are_counted(self) -> None:
        """
        A peer of another group that keeps dialling is logged once, then
        once a minute with how many were left out; each is counted.
        """
        hello = encode_hello(Hello("other", "b", "a", 1, 0, b""))
        for _ in range(10):
            proto, _ = self.accept()
            proto.dataReceived(len(hello).to_bytes(4, "big") + hello)
        self.reactor.advance(61)
        proto, _ = self.accept()
        proto.dataReceived(len(hello).to_bytes(4, "big") + hello)
        lines = [line for line in self.formatted() if "group 'other'" in line]
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(
            lines[0].startswith("dropped a connection from 10.0.0.9"), lines
        )
        self.assertIn("(and 9 more like it in the last 60 s)", lines[1])
        self.assertEqual(self.service.node.status().rejected_connections, 11)
