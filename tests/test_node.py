"""
Tests for L{isis_twisted.net.node}: whole groups of nodes on loopback TCP in one
reactor, checked with the history checker.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from collections.abc import Coroutine
from typing import Any, cast

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from isis_twisted.core.checker import check
from isis_twisted.core.engine import Delivery, Frame, ProtocolError
from isis_twisted.core.membership import JOINING
from isis_twisted.core.wire import VERSION, Hello, encode_hello
from isis_twisted.interfaces import (
    HistoryGoneError,
    IDeliveryHandler,
    IOrderedMulticast,
)
from isis_twisted.net.node import (
    BackPressureError,
    DeliveryUnknownError,
    MulticastNode,
    NodeStoppedError,
)
from isis_twisted.tools.testing import (
    LateBoundEndpoint,
    LocalGroup,
    RecordingHandler,
    free_ports,
    wait_until,
)

reactor: Any = _reactor


def deferred(coro: Coroutine[Any, Any, None]) -> Deferred[None]:
    return Deferred.fromCoroutine(coro)


class LogCapture:
    """
    Collects the text of every log event while a test runs.
    """

    def __init__(self, test: TestCase) -> None:
        self.lines: list[str] = []
        observer = cast(ILogObserver, self._observe)
        globalLogPublisher.addObserver(observer)
        test.addCleanup(globalLogPublisher.removeObserver, observer)

    def _observe(self, event: LogEvent) -> None:
        self.lines.append(formatEvent(event))

    def matching(self, *words: str) -> list[str]:
        return [line for line in self.lines if all(w in line for w in words)]


class GroupTestCase(TestCase):
    timeout = 120

    async def group(self, names: str, **options: Any) -> LocalGroup:
        group = LocalGroup(reactor, list(names), **options)
        await group.start()
        self.addCleanup(lambda: deferred(group.stop()))
        return group

    async def start_all(
        self, nodes: dict[str, MulticastNode], ports: dict[str, int] | None = None
    ) -> None:
        """
        Start every node (stopped again at cleanup) and wait until each
        listens, noting its TCP port in C{ports} if given.
        """
        for name, node in nodes.items():
            node.startService()
            self.addCleanup(node.stopService)
            port = await node.listening
            if ports is not None:
                ports[name] = port.getHost().port  # type: ignore[attr-defined]

    async def exchange(self, nodes: dict[str, MulticastNode], each: int) -> None:
        """
        Every node multicasts C{each} messages; wait until every node (each
        with a L{RecordingHandler} first) delivered them all, and check.
        """
        records = await gatherResults(
            [
                node.multicast(name.encode())
                for name, node in nodes.items()
                for _ in range(each)
            ]
        )
        self.assertEqual(len(records), each * len(nodes))
        histories = {
            n: cast(RecordingHandler, node.handlers[0]).records
            for n, node in nodes.items()
        }
        await wait_until(
            reactor,
            lambda: all(len(h) == len(records) for h in histories.values()),
            what=f"every member delivering {len(records)} messages",
        )
        result = check(histories)
        self.assertTrue(result.ok, result.summary())

    async def traffic(
        self, group: LocalGroup, rounds: int, per_round: int, seed: int = 0
    ) -> list[Delivery]:
        """
        Every member multicasts C{per_round} messages per reactor turn, for
        C{rounds} turns; returns the records the multicasts fired with.
        """
        rng = random.Random(seed)
        pending: list[Deferred[Delivery]] = []
        for r in range(rounds):
            for name, node in group.nodes.items():
                for i in range(rng.randint(0, per_round)):
                    pending.append(node.multicast(f"{name}:{r}:{i}".encode()))
            turn: Deferred[None] = Deferred()
            reactor.callLater(0, turn.callback, None)
            await turn
        return list(await gatherResults(pending))


class ClusterTests(GroupTestCase):
    def test_interfaces(self) -> None:
        node = MulticastNode("a", {"b": "tcp:127.0.0.1:1"}, None, reactor)
        self.assertTrue(verifyObject(IOrderedMulticast, node))
        self.assertEqual(node.members, ("a", "b"))

    def test_three_nodes_concurrent(self) -> Deferred[None]:
        async def run() -> None:
            group = await self.group("abc")
            records = await self.traffic(group, rounds=40, per_round=20)
            await group.all_delivered(len(records))
            result = group.check()
            self.assertTrue(result.ok, result.summary())
            self.assertEqual(result.messages, len(records))
            # Each multicast fired with its own delivery record.
            by_index = {d.index: d for d in group.histories()["a"]}
            for rec in records:
                self.assertEqual(by_index[rec.index].payload, rec.payload)
                self.assertTrue(rec.payload.startswith(rec.sender.encode()))
            self.assertEqual(
                {r.sender for r in records}, {"a", "b", "c"}, "everyone talked"
            )

        return deferred(run())

    def test_five_nodes_concurrent(self) -> Deferred[None]:
        async def run() -> None:
            group = await self.group("abcde")
            records = await self.traffic(group, rounds=30, per_round=10, seed=5)
            await group.all_delivered(len(records))
            result = group.check()
            self.assertTrue(result.ok, result.summary())
            self.assertEqual(len(group.nodes), 5)
            # Acks are batched: far fewer frames than one per message.
            frames = sum(
                p.frames_out for n in group.nodes.values() for p in n.links.values()
            )
            self.assertLess(frames, 5 * 4 * len(records))

        return deferred(run())

    def test_group_of_one(self) -> Deferred[None]:
        async def run() -> None:
            group = await self.group("a")
            rec = await group.nodes["a"].multicast(b"alone")
            self.assertEqual((rec.index, rec.sender, rec.payload), (1, "a", b"alone"))

        return deferred(run())

    def test_large_and_empty_payloads(self) -> Deferred[None]:
        async def run() -> None:
            group = await self.group("abc", max_frame=3 * 1024 * 1024)
            big = bytes(range(256)) * 4096 * 2
            a, b = group.nodes["a"], group.nodes["b"]
            await gatherResults([a.multicast(big), b.multicast(b""), a.multicast(b"x")])
            await group.all_delivered(3)
            self.assertTrue(group.check().ok)
            self.assertIn(big, [d.payload for d in group.histories()["c"]])
            with self.assertRaises(ValueError):
                a.multicast(b"x" * (3 * 1024 * 1024))
            with self.assertRaises(TypeError):
                a.multicast("text")  # type: ignore[arg-type]

        return deferred(run())


class LinkFaultTests(GroupTestCase):
    def test_connections_cut_while_traffic_flows(self) -> Deferred[None]:
        """
        Connections between live nodes are aborted again and again while every
        node multicasts; afterwards every message is delivered exactly once
        everywhere, in one order.
        """

        async def run() -> None:
            group = await self.group("abcd")
            rng = random.Random(11)
            cuts = 0

            def cut() -> None:
                nonlocal cuts
                live = [
                    proto
                    for node in group.nodes.values()
                    for link in node.links.values()
                    for proto in (link.inbound, link.outbound)
                    if proto is not None
                ]
                if live:
                    proto = rng.choice(live)
                    proto.transport.abortConnection()  # type: ignore[attr-defined]
                    cuts += 1

            pending: list[Deferred[Delivery]] = []
            for r in range(150):
                for name, node in group.nodes.items():
                    for i in range(rng.randint(0, 6)):
                        pending.append(node.multicast(f"{name}:{r}:{i}".encode()))
                if r % 5 == 0:
                    cut()
                pause: Deferred[None] = Deferred()
                reactor.callLater(0.005, pause.callback, None)
                await pause
            records = await gatherResults(pending)
            await group.all_delivered(len(records), timeout=60)
            result = group.check()
            self.assertTrue(result.ok, result.summary())
            self.assertEqual(result.messages, len(records))
            self.assertGreater(cuts, 10)
            resent = sum(
                p.resent for n in group.nodes.values() for p in n.links.values()
            )
            reconnects = sum(
                p.connects for n in group.nodes.values() for p in n.links.values()
            )
            self.assertGreater(reconnects, 12, "connections were re-established")
            self.assertGreater(resent, 0, "unacknowledged frames were resent")

        return deferred(run())

    def test_backpressure_while_peer_away(self) -> Deferred[None]:
        """
        With a peer away, multicasts wait once its resend buffer is full, and
        all go through when it comes back.
        """

        async def run() -> None:
            group = LocalGroup(reactor, ["a", "b"], max_buffer=2000)
            a, b = group.nodes["a"], group.nodes["b"]
            a.startService()
            self.addCleanup(lambda: deferred(group.stop()))
            port = await a.listening
            group.ports["a"] = port.getHost().port  # type: ignore[attr-defined]
            sent: list[Deferred[Delivery]] = []
            refused: list[Deferred[Delivery]] = []
            for turn_number in range(10):
                for i in range(10):
                    d = a.multicast(b"m%d.%d" % (turn_number, i) + b"." * 100)
                    (refused if d.called else sent).append(d)
                turn: Deferred[None] = Deferred()
                reactor.callLater(0, turn.callback, None)
                await turn
            status = a.status()
            peer = status.peers["b"]
            # Bounded: at most one message over the bound in the buffer...
            self.assertGreaterEqual(peer.unacked_bytes, 2000 - 200)
            self.assertLess(peer.unacked_bytes, 2000 + 200)
            # ...then as much again waits, unstamped...
            waiting = status.waiting_multicasts
            self.assertGreater(waiting, 10)
            self.assertLessEqual(waiting * 104, 2000)
            self.assertFalse(any(d.called for d in sent))
            # ...and beyond that multicast fails at once, saying why.
            self.assertGreater(len(refused), 50)
            for d in refused:
                error = self.failureResultOf(d, BackPressureError)
                self.assertIn("resend buffer of b", error.getErrorMessage())
            b.startService()
            port = await b.listening
            group.ports["b"] = port.getHost().port  # type: ignore[attr-defined]
            records = await gatherResults(sent)
            self.assertEqual([r.payload[:5] for r in records][:2], [b"m0.0.", b"m0.1."])
            await group.all_delivered(len(sent))
            self.assertTrue(group.check().ok)

        return deferred(run())


class BadInputTests(GroupTestCase):
    """
    Strangers and broken peers are logged, counted and cut off; the group's
    own traffic goes on.
    """

    async def send_raw(self, port: int, data: bytes) -> Protocol:
        proto = Protocol()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        await connectProtocol(endpoint, proto)
        if data:
            proto.transport.write(data)  # type: ignore[union-attr]
        return proto

    def test_hostile_connections(self) -> Deferred[None]:
        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc", handshake_timeout=0.5)
            port = group.ports["a"]

            def framed(raw: bytes) -> bytes:
                return struct.pack(">I", len(raw)) + raw

            attacks = {
                "random bytes": framed(random.Random(3).randbytes(40)),
                "huge length": struct.pack(">I", 2**31) + b"x" * 10,
                "wrong group": framed(encode_hello(Hello("other", "b", "a", 1, 0))),
                "unknown member": framed(
                    encode_hello(Hello("isis", "mallory", "a", 1, 0))
                ),
                "own name": framed(encode_hello(Hello("isis", "a", "a", 1, 0))),
                "wrong version": framed(bytes([VERSION + 1, 1]) + b"\0" * 20),
                "silent": b"",
            }
            for data in attacks.values():
                await self.send_raw(port, data)
            records = await self.traffic(group, rounds=20, per_round=5, seed=2)
            await group.all_delivered(len(records))
            a = group.nodes["a"]
            await group.wait_until(
                lambda: a.rejections >= len(attacks), what="every attack rejected"
            )
            self.assertEqual(a.rejections, len(attacks))
            self.assertTrue(group.check().ok)
            for words in [
                ("malformed frame",),
                ("over the limit",),
                ("group 'other'",),
                ("'mallory'", "not a member"),
                ("'a'", "own name"),
                ("version",),
                ("no handshake within 0.5 s",),
            ]:
                self.assertTrue(logs.matching("dropped", *words), words)
            # The members themselves were never cut off.
            for node in group.nodes.values():
                self.assertEqual(
                    sum(p.connects for p in node.links.values()), len(node.links)
                )

        return deferred(run())

    def test_random_garbage_during_traffic(self) -> Deferred[None]:
        """
        Forty connections of seeded random bytes (some behind a plausible
        length prefix, some a HELLO in a member's name followed by junk) at
        every member of an authenticated group while it carries traffic:
        each is dropped, the members keep their links, and the traffic
        passes the checker.  (Without a secret or TLS, a stranger may claim
        a member's name: that is what authentication is for.)
        """

        async def run() -> None:
            group = await self.group(
                "abc", handshake_timeout=0.5, secret=b"sixteen bytes or more!"
            )
            rng = random.Random(2026)
            for i in range(40):
                target = group.ports["abc"[i % 3]]
                body = rng.randbytes(rng.randrange(0, 300))
                kind = i % 4
                if kind == 1:
                    body = struct.pack(">I", len(body)) + body
                elif kind == 2:
                    body = struct.pack(">I", rng.randrange(2**32)) + body
                elif kind == 3:
                    hello = encode_hello(
                        Hello("isis", "b", "a", rng.randrange(2**64), 0)
                    )
                    body = struct.pack(">I", len(hello)) + hello + body
                await self.send_raw(target, body)
            records = await self.traffic(group, rounds=30, per_round=5, seed=9)
            await group.all_delivered(len(records))
            self.assertTrue(group.check().ok)
            await group.wait_until(
                lambda: sum(n.rejections for n in group.nodes.values()) >= 40,
                what="every garbage connection dropped",
            )
            for node in group.nodes.values():
                for link in node.links.values():
                    self.assertIsNotNone(link.outbound)
                    self.assertIsNotNone(link.inbound)

        return deferred(run())

    def test_wrong_peer_address(self) -> Deferred[None]:
        """
        A connection that reaches the wrong member is refused, and both sides
        say so: here p dials "q" but reaches r.
        """

        async def run() -> None:
            logs = LogCapture(self)
            r = MulticastNode(
                "r", {"p": "tcp:127.0.0.1:1"}, "tcp:0:interface=127.0.0.1", reactor
            )
            r.startService()
            self.addCleanup(r.stopService)
            port = (await r.listening).getHost().port  # type: ignore[attr-defined]
            p = MulticastNode(
                "p",
                {"q": TCP4ClientEndpoint(reactor, "127.0.0.1", port)},
                None,
                reactor,
            )
            p.startService()
            self.addCleanup(p.stopService)
            await wait_until(
                reactor,
                lambda: bool(logs.matching("refused this node", "meant to reach")),
                what="p logging the refusal",
            )
            self.assertTrue(logs.matching("dropped", "check the peer addresses of 'p'"))
            self.assertGreater(r.rejections, 0)

        return deferred(run())


@implementer(IDeliveryHandler)
class FailingHandler:
    def deliver(self, record: Delivery) -> None:
        if record.index % 2:
            raise RuntimeError(f"boom {record.index}")

    def close(self) -> None:
        pass


class MulticastAllTests(GroupTestCase):
    def test_outcomes_in_order(self) -> Deferred[None]:
        """
        C{multicast_all} fires once with every message's outcome, in order:
        records for those delivered, the exception for those refused; a
        stopped node refuses them all.
        """

        async def run() -> None:
            node = MulticastNode("a", {}, None, reactor)
            node.startService()
            big = b"x" * (node.max_payload + 1)
            payloads = cast(list[bytes], [b"one", big, "not bytes", b"two"])
            results = await node.multicast_all(payloads)
            one, too_big, not_bytes, two = results
            assert isinstance(one, Delivery) and isinstance(two, Delivery)
            self.assertEqual((one.index, one.payload), (1, b"one"))
            self.assertEqual((two.index, two.payload), (2, b"two"))
            self.assertIsInstance(too_big, ValueError)
            self.assertIsInstance(not_bytes, TypeError)
            self.assertEqual(await node.multicast_all([]), [])
            await node.stopService()
            stopped = await node.multicast_all([b"late"])
            self.assertIsInstance(stopped[0], NodeStoppedError)

        return deferred(run())


class HandlerAndSubscriptionTests(GroupTestCase):
    def test_failing_handler_is_logged_and_skipped(self) -> Deferred[None]:
        async def run() -> None:
            logs = LogCapture(self)
            recorder = RecordingHandler()
            node = MulticastNode(
                "a", {}, None, reactor, handlers=[FailingHandler(), recorder]
            )
            node.startService()
            for i in range(4):
                await node.multicast(b"%d" % i)
            self.assertEqual([r.index for r in recorder.records], [1, 2, 3, 4])
            self.assertEqual(node.handler_errors, 2)
            # The first bug of a handler is logged, with its traceback; the
            # next ones are only counted, so that a broken handler cannot
            # flood the log.
            self.assertEqual(len(logs.matching("raised on record 1")), 1)
            self.assertEqual(logs.matching("raised on record 3"), [])
            await node.stopService()
            self.assertTrue(recorder.closed)
            self.flushLoggedErrors(RuntimeError)

        return deferred(run())

    def test_subscribe_replays_and_streams(self) -> Deferred[None]:
        async def run() -> None:
            node = MulticastNode("a", {}, None, reactor, history=3)
            node.startService()
            self.addCleanup(node.stopService)
            for i in range(5):
                await node.multicast(b"%d" % i)
            seen: list[int] = []
            sub = node.subscribe(3, lambda r: seen.append(r.index))
            self.assertEqual((sub.first, seen), (3, [3, 4, 5]))
            await node.multicast(b"new")
            self.assertEqual(seen, [3, 4, 5, 6])
            sub.cancel()
            await node.multicast(b"unseen")
            self.assertEqual(seen, [3, 4, 5, 6])
            err = self.assertRaises(
                HistoryGoneError, node.subscribe, 2, lambda r: seen.append(r.index)
            )
            self.assertIn("resubscribe from 5", str(err))
            fresh = node.subscribe(None, lambda r: seen.append(r.index))
            self.assertEqual(fresh.first, 8)

        return deferred(run())

    def test_history_bounded_by_bytes(self) -> Deferred[None]:
        async def run() -> None:
            node = MulticastNode("a", {}, None, reactor, history_bytes=250)
            node.startService()
            self.addCleanup(node.stopService)
            for i in range(10):
                await node.multicast(b"%d" % i + b"." * 99)
            seen: list[int] = []
            err = self.assertRaises(
                HistoryGoneError, node.subscribe, 8, lambda r: seen.append(r.index)
            )
            self.assertIn("resubscribe from 9", str(err))
            node.subscribe(9, lambda r: seen.append(r.index))
            self.assertEqual(seen, [9, 10])

        return deferred(run())

    def test_stop_fails_undelivered(self) -> Deferred[None]:
        async def run() -> None:
            node = MulticastNode("a", {"b": "tcp:127.0.0.1:1"}, None, reactor)
            node.startService()
            d = node.multicast(b"never")
            await node.stopService()
            # It was stamped and (as far as this node knows) sent: it may
            # still be delivered, so it must not be reported as safe to retry.
            with self.assertRaises(DeliveryUnknownError):
                await d
            with self.assertRaises(NodeStoppedError):
                await node.multicast(b"late")

        return deferred(run())

    def test_status_names_the_member_holding_delivery(self) -> Deferred[None]:
        async def run() -> None:
            group = LocalGroup(reactor, ["a", "b", "c"])
            self.addCleanup(lambda: deferred(group.stop()))
            a, b = group.nodes["a"], group.nodes["b"]
            a.startService()
            b.startService()
            for name in "ab":
                port = await group.nodes[name].listening
                group.ports[name] = port.getHost().port  # type: ignore[attr-defined]
            stuck = a.multicast(b"stuck")
            stuck.addErrback(lambda f: f.trap(DeliveryUnknownError))
            await wait_until(
                reactor, lambda: b.engine.queue_length == 1, what="b holding it"
            )
            oldest = b.status().oldest_undelivered
            assert oldest is not None
            self.assertEqual(oldest.sender, "a")
            self.assertEqual(oldest.waiting_for, ("c",))
            self.assertIsInstance(oldest.age_s, float)

        return deferred(run())


class EndpointTests(GroupTestCase):
    def test_unix_sockets(self) -> Deferred[None]:
        """
        Addresses are endpoint descriptions, so a group runs over UNIX
        sockets exactly as over TCP.
        """

        async def run() -> None:
            where = self.mktemp()
            os.makedirs(where)
            names = ["a", "b", "c"]
            nodes = {
                name: MulticastNode(
                    name,
                    {
                        peer: f"unix:path={where}/{peer}.sock"
                        for peer in names
                        if peer != name
                    },
                    f"unix:{where}/{name}.sock",
                    reactor,
                    handlers=[RecordingHandler()],
                )
                for name in names
            }
            await self.start_all(nodes)
            await self.exchange(nodes, 5)

        return deferred(run())


class TLSTests(GroupTestCase):
    def test_tls_endpoints(self) -> Deferred[None]:
        """
        With ssl: server and tls: client descriptions, a group runs over TLS
        (the server endpoint presents the certificate, the client verifies
        it against its trust roots and the host name).
        """

        async def run() -> None:
            from isis_twisted.net.certs import write_group_certs

            # A certificate for "localhost" signed by a CA, and a directory
            # that trusts that CA alone.
            where = os.path.abspath(self.mktemp())
            write_group_certs(where, ["localhost"])
            pem = os.path.join(where, "localhost.pem")
            trusted = os.path.join(where, "trusted")
            os.makedirs(trusted)
            shutil.copy(os.path.join(where, "ca.pem"), trusted)
            names = ["a", "b", "c"]
            ports = dict(zip(names, free_ports(len(names)), strict=True))
            nodes = {
                name: MulticastNode(
                    name,
                    {
                        peer: f"tls:localhost:{ports[peer]}:trustRoots={trusted}"
                        for peer in names
                        if peer != name
                    },
                    f"ssl:{ports[name]}:privateKey={pem}:certKey={pem}"
                    ":interface=127.0.0.1",
                    reactor,
                    handlers=[RecordingHandler()],
                )
                for name in names
            }
            await self.start_all(nodes)
            await self.exchange(nodes, 4)
            link = nodes["a"].links["b"]
            assert link.outbound is not None
            from twisted.internet.interfaces import ISSLTransport

            self.assertTrue(ISSLTransport.providedBy(link.outbound.transport))

        return deferred(run())


class SilenceTests(GroupTestCase):
    """
    Heartbeats keep idle links alive; a member that falls silent is named in
    a warning and in the status; delivery resumes when it is back.
    """

    def test_silent_member_is_named_and_delivery_resumes(self) -> Deferred[None]:
        async def run() -> None:
            logs = LogCapture(self)
            # Generous margins: a busy machine must not make an idle link
            # look silent.
            group = await self.group("abc", proxied=True, heartbeat=0.1, silence=1.0)
            a = group.nodes["a"]
            await gatherResults([n.multicast(b"warm-up") for n in group.nodes.values()])
            await group.all_delivered(3)
            # Idle, but heartbeats flow: nobody is reported silent.
            idle: Deferred[None] = Deferred()
            reactor.callLater(1.5, idle.callback, None)
            await idle
            self.assertEqual(a.status().silent_members, ())
            self.assertFalse(logs.matching("silent for"))

            group.isolate("c")
            sent_at = reactor.seconds()
            held = a.multicast(b"needs c")
            await group.wait_until(
                lambda: bool(logs.matching("member 'c' has been silent for")),
                what="a warning about c",
            )
            warning = logs.matching("member 'c' has been silent for")[0]
            self.assertIn("held messages waits for it", warning)
            status = a.status()
            waited = reactor.seconds() - sent_at
            self.assertEqual(status.silent_members, ("c",))
            oldest = status.oldest_undelivered
            assert oldest is not None and oldest.age_s is not None
            self.assertEqual(oldest.waiting_for, ("c",))
            # The age is the time since the multicast (c was last heard up
            # to a heartbeat or so before it, hence the slack below 1.0).
            self.assertLess(abs(oldest.age_s - waited), 0.01)
            self.assertGreater(oldest.age_s, 0.5)
            self.assertFalse(held.called)

            group.heal()
            record = await held
            self.assertEqual(record.payload, b"needs c")
            await group.all_delivered(4)
            self.assertTrue(group.check().ok)
            await group.wait_until(
                lambda: bool(logs.matching("member 'c' is heard from again")),
                what="c heard again",
            )

        return deferred(run())

    def test_stalled_connection_is_dropped_and_redialled(self) -> Deferred[None]:
        """
        A connection over which nothing arrives (the peer vanished without
        closing it) is dropped after the silence limit and redialled; bytes
        held meanwhile are resent or arrive late, and nothing is lost.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("ab", proxied=True, heartbeat=0.05, silence=0.3)
            a = group.nodes["a"]
            await a.multicast(b"before")
            proxy = group.proxies[("a", "b")]
            proxy.stall()
            pending = [a.multicast(b"during %d" % i) for i in range(5)]
            await group.wait_until(
                lambda: bool(logs.matching("nothing received for")),
                what="a quiet connection being dropped",
            )
            self.assertEqual(a.rejections, 0, "a quiet link is not a rejection")
            proxy.heal()
            await gatherResults(pending)
            await group.all_delivered(6)
            self.assertTrue(group.check().ok)
            self.assertGreater(a.links["b"].connects, 1)

        return deferred(run())


class SecretTests(GroupTestCase):
    def test_group_with_secret_and_an_outsider(self) -> Deferred[None]:
        """
        A group sharing a secret runs as usual; a node holding another
        secret is refused by every member, saying why, and changes nothing.
        """

        async def run() -> None:
            logs = LogCapture(self)
            secret = b"the secret of this group, 32 b."
            group = await self.group("abc", secret=secret)
            outsider = MulticastNode(
                "c",
                {
                    "a": TCP4ClientEndpoint(reactor, "127.0.0.1", group.ports["a"]),
                    "b": TCP4ClientEndpoint(reactor, "127.0.0.1", group.ports["b"]),
                },
                None,
                reactor,
                secret=b"not the secret of this group!!",
            )
            outsider.startService()
            self.addCleanup(outsider.stopService)
            records = await self.traffic(group, rounds=10, per_round=5)
            await group.all_delivered(len(records))
            self.assertTrue(group.check().ok)
            await group.wait_until(
                lambda: (
                    group.nodes["a"].rejections > 0 and group.nodes["b"].rejections > 0
                ),
                what="both members refusing the outsider",
            )
            self.assertTrue(logs.matching("failed the group secret check"))
            # The real c's link state was never touched by the outsider.
            self.assertEqual(
                group.nodes["a"].links["c"].incarnation, group.nodes["c"].incarnation
            )

        return deferred(run())


class ReviewRegressionTests(SynchronousTestCase):
    """
    Cases found in review, on a node driven by hand (no sockets).
    """

    def node(self, **options: Any) -> tuple[MulticastNode, MemoryReactorClock]:
        clock = MemoryReactorClock()
        node = MulticastNode("a", {"b": "tcp:127.0.0.1:1"}, None, clock, **options)
        return node, clock

    def test_two_acks_in_one_turn_admit_waiting_multicasts(self) -> None:
        """
        Room made by an acknowledgement that came when the link did not look
        full (this turn's admissions made it so) still admits what waits.
        """
        node, clock = self.node(max_buffer=250)
        link = node.links["b"]
        node.multicast(b"1" * 100)
        clock.advance(0)
        node.multicast(b"2" * 100)
        node.multicast(b"3" * 100)
        clock.advance(0)
        self.assertEqual(node.status().waiting_multicasts, 1)
        # Two acknowledgements in one turn, as from one read.
        link.acknowledged(1)
        node.multicast(b"4" * 100)
        link.acknowledged(2)
        clock.advance(0)
        self.assertEqual(node.status().waiting_multicasts, 0)
        self.assertEqual(node.engine.clock, 4)

    def test_restart_sends_what_the_stop_cut_short(self) -> None:
        node, clock = self.node()
        node.startService()
        node.frame_received("b", Frame(0, 1, ((1, b"x"),)))
        self.assertTrue(node.engine.ack_due)
        # The stop sends what the turn owed (the acknowledgement, and the
        # LEAVE that tells the others it is going) before it closes.
        node.stopService()
        self.assertFalse(node.engine.ack_due)
        self.assertEqual(len(node.links["b"].unacked), 2)
        node.startService()
        clock.advance(0)
        # Started again, it asks to be added back.
        self.assertEqual(len(node.links["b"].unacked), 3)
        self.assertEqual(node.membership.state, JOINING)
        node.stopService()

    def test_stopped_node_takes_no_frames(self) -> None:
        node, _ = self.node()
        node.startService()
        node.stopService()
        self.assertRaises(
            ProtocolError, node.frame_received, "b", Frame(0, 1, ((1, b"x"),))
        )
        self.assertEqual(node.engine.queue_length, 0)

    def test_subscription_from_a_future_index(self) -> None:
        node = MulticastNode("solo", {}, None, MemoryReactorClock())
        node.startService()
        seen: list[int] = []
        sub = node.subscribe(3, lambda r: seen.append(r.index))
        self.assertEqual(sub.first, 3)
        for i in range(4):
            node.multicast(b"%d" % i)
            node.clock.advance(0)  # type: ignore[attr-defined]
        self.assertEqual(seen, [3, 4])

    def test_subscription_flushed_per_turn(self) -> None:
        """
        A subscriber's flush is called after the replay and once after the
        records of each turn, after all of them.
        """
        node = MulticastNode("solo", {}, None, MemoryReactorClock())
        node.startService()
        node.multicast(b"old")
        node.clock.advance(0)  # type: ignore[attr-defined]
        events: list[object] = []
        node.subscribe(1, lambda r: events.append(r.index), lambda: events.append("-"))
        self.assertEqual(events, [1, "-"])
        for i in range(3):
            node.multicast(b"%d" % i)
        node.clock.advance(0)  # type: ignore[attr-defined]
        self.assertEqual(events, [1, "-", 2, 3, 4, "-"])
        node.clock.advance(0)  # type: ignore[attr-defined]
        self.assertEqual(events, [1, "-", 2, 3, 4, "-"])

    def test_silence_must_exceed_two_heartbeats(self) -> None:
        self.assertRaises(ValueError, self.node, heartbeat=3, silence=5)


class MutualTLSTests(GroupTestCase):
    def test_members_authenticate_each_other(self) -> Deferred[None]:
        """
        With certificates from 'isis certs', a group runs over mutual TLS;
        a node holding b's certificate cannot pass itself off as c, and one
        with another CA's certificate cannot connect at all.
        """

        async def run() -> None:
            from isis_twisted.net.certs import (
                TLSIdentity,
                load_identity,
                write_group_certs,
            )

            logs = LogCapture(self)
            where = os.path.abspath(self.mktemp())
            write_group_certs(where, ["a", "b", "c"])
            names = ["a", "b", "c"]
            ports: dict[str, int] = {}
            nodes = {
                n: MulticastNode(
                    n,
                    {p: LateBoundEndpoint(reactor, ports, p) for p in names if p != n},
                    "tcp:0:interface=127.0.0.1",
                    reactor,
                    handlers=[RecordingHandler()],
                    tls=load_identity(where, n),
                )
                for n in names
            }
            await self.start_all(nodes, ports)
            await self.exchange(nodes, 3)

            b = load_identity(where, "b")
            impostor = MulticastNode(
                "c",
                # The same members as the group, or it is refused for that.
                {
                    "a": TCP4ClientEndpoint(reactor, "127.0.0.1", ports["a"]),
                    "b": "tcp:127.0.0.1:1",
                },
                None,
                reactor,
                tls=TLSIdentity("c", b.ca, b.own),
            )
            impostor.startService()
            self.addCleanup(impostor.stopService)
            await wait_until(
                reactor,
                lambda: bool(logs.matching("presented the certificate of 'b'")),
                what="a refusing the impostor",
            )
            other = os.path.abspath(self.mktemp())
            write_group_certs(other, ["c"])
            stranger = MulticastNode(
                "c",
                {"a": TCP4ClientEndpoint(reactor, "127.0.0.1", ports["a"])},
                None,
                reactor,
                tls=load_identity(other, "c"),
            )
            stranger.startService()
            self.addCleanup(stranger.stopService)
            before = nodes["a"].links["c"].connects
            pause: Deferred[None] = Deferred()
            reactor.callLater(0.5, pause.callback, None)
            await pause
            self.assertEqual(stranger.links["a"].connects, 0)
            self.assertEqual(impostor.links["a"].connects, 0)
            # The real c's links were never disturbed.
            self.assertEqual(nodes["a"].links["c"].connects, before)
            self.assertEqual(nodes["a"].links["c"].incarnation, nodes["c"].incarnation)

        return deferred(run())
