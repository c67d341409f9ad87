"""
Tests for L{isis_twisted.tap}: the options and service of C{twistd isis},
and the plugin that makes twistd find them.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted import tap
from isis_twisted.handlers import JsonLinesHandler, LogHandler
from isis_twisted.node import MulticastNode


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
        from isis_twisted.certs import write_group_certs

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
        with self.assertRaises(SystemExit) as caught:
            service.privilegedStartService()
        message = str(caught.exception.code)
        self.assertIn(
            "cannot listen for peers on tcp:9001:interface=127.0.0.1", message
        )
        self.assertIn("in use", message)
        self.flushLoggedErrors()


class PluginTests(SynchronousTestCase):
    def test_twistd_finds_isis(self) -> None:
        makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
        self.assertIn("isis", makers)
        options = makers["isis"].options()
        self.assertIsInstance(options, tap.Options)
