"""
Tests for L{isis_twisted.api.server}: the node's end of the client API,
its bounded backlog for slow subscribers, its client token, and what it
tells a member that dialed it as a peer.
"""

from __future__ import annotations

import struct

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import globalLogPublisher
from twisted.test.iosim import IOPump, connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.api.client import ClientProtocol, SubscriptionDroppedError
from isis_twisted.api.commands import NotAuthenticatedError
from isis_twisted.api.server import ClientAPIFactory
from isis_twisted.core.wire import Hello, Refuse, decode, encode_hello
from tests.test_client import FakeNode, connected, framed, result_of


class SlowSubscriberTests(SynchronousTestCase):
    """
    A subscriber that stops reading is held to a bounded backlog, then
    dropped with a notice saying where to resume; the node is unaffected.
    """

    def setUp(self) -> None:
        self.node = FakeNode()
        self.clock = Clock()
        self.client, self.server, self.pump = connectedServerAndClient(
            lambda: ClientAPIFactory(self.node, self.clock, backlog=1000).buildProtocol(
                None
            ),
            ClientProtocol,
        )
        self.seen: list[int] = []
        first = result_of(
            self,
            self.pump,
            self.client.subscribe(None, lambda r: self.seen.append(r.index)),
        )
        self.assertEqual(first, 1)

    def test_backlog_sent_when_reading_resumes(self) -> None:
        self.server.pauseProducing()
        for i in range(3):
            self.node.multicast(b"%d" % i)
        self.pump.flush()
        self.assertEqual(self.seen, [])
        self.server.resumeProducing()
        self.pump.flush()
        self.assertEqual(self.seen, [1, 2, 3])
        self.node.multicast(b"later")
        self.pump.flush()
        self.assertEqual(self.seen, [1, 2, 3, 4])

    def test_too_slow_is_dropped_with_resume_index(self) -> None:
        self.node.multicast(b"read in time")
        self.pump.flush()
        self.assertEqual(self.seen, [1])
        self.server.pauseProducing()
        for _ in range(5):
            self.node.multicast(b"x" * 300)
        self.pump.flush()
        lost = self.successResultOf(self.client.when_lost())
        self.assertIsInstance(lost, SubscriptionDroppedError)
        assert isinstance(lost, SubscriptionDroppedError)
        self.assertEqual(lost.resume_from, 2)
        self.assertIn("resubscribe from index 2", str(lost))
        self.assertEqual(self.seen, [1])
        # The node no longer feeds this connection, and still works.
        self.assertEqual(self.node.subscriptions, [])
        self.assertEqual(self.node.history[-1].index, 6)

    def test_client_that_never_reads_is_cut_after_a_while(self) -> None:
        transport = StringTransport()
        server = ClientAPIFactory(self.node, self.clock, backlog=100).buildProtocol(
            None
        )
        server.makeConnection(transport)
        server.subscribe(None)
        server.pauseProducing()
        self.node.multicast(b"y" * 200)
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"SubscriptionDropped", transport.value())
        self.clock.advance(31)
        self.assertTrue(transport.disconnected)


class WrongPortTests(SynchronousTestCase):
    """
    A member dialing the client API port is told so in plain words.
    """

    def test_member_at_the_client_port(self) -> None:
        """
        A peer HELLO on the client API port is answered with a REFUSE saying
        which port to use, and closed; it is logged once, then counted.
        """
        observer = EventLoggingObserver()
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        factory = ClientAPIFactory(FakeNode())
        hello = framed(encode_hello(Hello("g", "b", "a", 7, 0)))
        for _ in range(3):
            server = factory.buildProtocol(None)
            transport = StringTransport()
            server.makeConnection(transport)
            server.dataReceived(hello)
            self.assertTrue(transport.disconnecting)
            sent = transport.value()
            (length,) = struct.unpack(">I", sent[:4])
            refusal = decode(sent[4 : 4 + length])
            assert isinstance(refusal, Refuse)
            self.assertIn("client API port of member 'a'", refusal.reason)
            self.assertIn("--peers must name the peer port", refusal.reason)
        self.assertEqual(factory.wrong_protocol, 3)
        warnings = [e for e in observer if "dialed the client API port" in str(e)]
        self.assertEqual(len(warnings), 1)

    def test_tls_at_the_client_port(self) -> None:
        """
        A TLS handshake is closed without an answer it could not read.
        """
        factory = ClientAPIFactory(FakeNode())
        server = factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        server.dataReceived(b"\x16\x03\x01\x02\x00")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(factory.wrong_protocol, 1)

    def test_amp_still_served(self) -> None:
        """
        An ordinary client is not mistaken for a member.
        """
        client, _, pump = connected(FakeNode())
        self.assertEqual(result_of(self, pump, client.status())["me"], "a")


class TokenTests(SynchronousTestCase):
    """
    A node with a client token serves nothing until a connection gives it.
    """

    def connect(self, node: FakeNode) -> tuple[ClientProtocol, IOPump]:
        client, _, pump = connectedServerAndClient(
            lambda: ClientAPIFactory(node, token=b"0123456789abcdef").buildProtocol(
                None
            ),
            ClientProtocol,
        )
        return client, pump

    def test_nothing_without_the_token(self) -> None:
        node = FakeNode()
        client, pump = self.connect(node)
        for call in (client.status(), client.multicast(b"x")):
            pump.flush()
            error = self.failureResultOf(call, NotAuthenticatedError)
            self.assertIn("requires a client token", error.getErrorMessage())
        subscribed = client.subscribe(None, lambda r: None)
        pump.flush()
        self.failureResultOf(subscribed, NotAuthenticatedError)
        self.assertEqual(node.received, [])

    def test_wrong_token_refused(self) -> None:
        node = FakeNode()
        client, pump = self.connect(node)
        attempt = client.authenticate(b"guess")
        pump.flush()
        self.assertIn(
            "wrong client token",
            self.failureResultOf(attempt, NotAuthenticatedError).getErrorMessage(),
        )
        status = client.status()
        pump.flush()
        self.failureResultOf(status, NotAuthenticatedError)

    def test_right_token_serves(self) -> None:
        node = FakeNode()
        client, pump = self.connect(node)
        done = client.authenticate(b"0123456789abcdef")
        pump.flush()
        self.assertIsNone(self.successResultOf(done))
        record = result_of(self, pump, client.multicast(b"hello"))
        self.assertEqual(record.payload, b"hello")
        self.assertEqual(node.received, [b"hello"])
