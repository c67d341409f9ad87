"""
Tests for refused dials: the back-off after refusals (no redial storm), the
REFUSE codes that say why, and a member that gives up once most of its
group refused it for its group name or secret (L{isis_twisted.net.link},
L{isis_twisted.net.node}, L{isis_twisted.app.tap}).

Everything runs on fake transports and clocks, but for one check of how
the process's exit status is set, which needs a process.
"""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.app import tap
from isis_twisted.app.statusview import status_lines
from isis_twisted.core.linkrules import REFUSAL_FIRST_DELAY
from isis_twisted.core.wire import (
    REFUSED_GROUP,
    REFUSED_MEMBERS,
    REFUSED_NAME,
    REFUSED_OTHER,
    REFUSED_SECRET,
    Ack,
    Refuse,
)
from isis_twisted.net.connection import PeerFactory
from isis_twisted.net.link import PeerDialer, locked_out
from isis_twisted.net.node import MulticastNode
from tests.test_link import (
    PEER_ADDRESS,
    Connection,
    FakeOwner,
    dialed,
    hello,
    lose,
    observe,
    open_outbound,
    prefixed,
    refusals,
    written,
)

SECRET = b"a group secret of enough bytes"
WRONG_GROUP = "group 'other' is not this node's group 'chat'"


def constant(seconds: float) -> Any:
    """
    A retry policy that always waits C{seconds} (the node's own has jitter).
    """
    return lambda attempt: seconds


class RetryPolicyTests(SynchronousTestCase):
    """
    L{PeerLink.retry_policy}: the wait before a redial.
    """

    def test_no_refusal(self) -> None:
        """
        Without refusals, the base policy decides.
        """
        link = FakeOwner().links["bob"]
        policy = link.retry_policy(lambda attempt: attempt / 100, 2.0)
        self.assertEqual([policy(n) for n in (1, 2, 3)], [0.01, 0.02, 0.03])

    def test_doubles_to_the_cap(self) -> None:
        """
        After each refusal in a row the wait doubles from 0.1 s, up to the
        longest wait, and stays there.
        """
        link = FakeOwner().links["bob"]
        policy = link.retry_policy(constant(0.05), 2.0)
        waits = []
        for _ in range(8):
            link.dial_refused(REFUSED_OTHER, "no")
            waits.append(policy(1))
        self.assertEqual(waits, [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])
        self.assertEqual(REFUSAL_FIRST_DELAY, 0.1)

    def test_base_longer(self) -> None:
        """
        A base wait longer than the refusals' (a peer that is also down) is
        kept.
        """
        link = FakeOwner().links["bob"]
        link.dial_refused(REFUSED_OTHER, "no")
        self.assertEqual(link.retry_policy(constant(1.5), 2.0)(7), 1.5)

    def test_many_refusals(self) -> None:
        """
        However many refusals, the wait is the cap (no overflow).
        """
        link = FakeOwner().links["bob"]
        link.redial.refusals = 10_000
        self.assertEqual(link.retry_policy(constant(0.05), 3.0)(1), 3.0)

    def test_reset_when_served(self) -> None:
        link = FakeOwner().links["bob"]
        policy = link.retry_policy(constant(0.05), 2.0)
        for _ in range(3):
            link.dial_refused(REFUSED_OTHER, "no")
        link.dial_served()
        self.assertEqual(policy(1), 0.05)
        self.assertEqual(link.refused, 3)


class CountedTests(SynchronousTestCase):
    """
    Which dialed connections count as refused, and what serves a dial.
    """

    def test_refuse_received(self) -> None:
        owner = FakeOwner()
        proto, transport = dialed(owner)
        written(transport)
        proto.dataReceived(prefixed(Refuse("go away", REFUSED_NAME)))
        lose(proto)
        link = owner.links["bob"]
        self.assertEqual((link.redial.refusals, link.refused), (1, 1))

    def test_closed_before_handshake(self) -> None:
        """
        A dial closed before its handshake completed, with no REFUSE (a
        broken TLS handshake, a peer that aborts), counts for the back-off,
        not as a refusal by the peer.
        """
        owner = FakeOwner()
        proto, _ = dialed(owner)
        lose(proto)
        link = owner.links["bob"]
        self.assertEqual((link.redial.refusals, link.refused), (1, 0))

    def test_answer_refused_by_dialer(self) -> None:
        """
        A dialer that refuses the answer (another group) backs off too.
        """
        owner = FakeOwner()
        proto, transport = dialed(owner)
        written(transport)
        proto.dataReceived(prefixed(hello("bob", group="other")))
        self.assertEqual(written(transport), [Refuse(WRONG_GROUP, REFUSED_GROUP)])
        lose(proto)
        link = owner.links["bob"]
        self.assertEqual((link.redial.refusals, link.refused), (1, 0))
        self.assertIsNone(link.fatal)

    def test_once_per_connection(self) -> None:
        owner = FakeOwner()
        proto, _ = dialed(owner)
        proto.dataReceived(prefixed(Refuse("no"), Refuse("no")))
        lose(proto)
        self.assertEqual(owner.links["bob"].redial.refusals, 1)

    def test_open_and_lost_is_no_refusal(self) -> None:
        """
        A dial that completed its handshake and then closed is no refusal;
        it does not reset the count either (the peer never served it).
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        link.redial.refusals = 3
        proto, _ = open_outbound(owner)
        lose(proto)
        self.assertEqual(link.redial.refusals, 3)

    def test_served_resets(self) -> None:
        """
        The first ACK on an open dialed connection shows that the peer
        serves it: the count goes back to 0 and any fatal refusal is
        forgotten.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        link.dial_refused(REFUSED_GROUP, WRONG_GROUP)
        link.dial_refused(REFUSED_GROUP, WRONG_GROUP)
        proto, _ = open_outbound(owner)
        self.assertEqual(link.redial.refusals, 2)
        proto.dataReceived(prefixed(Ack(0)))
        self.assertEqual(link.redial.refusals, 0)
        self.assertIsNone(link.fatal)

    def test_refused_after_handshake(self) -> None:
        """
        A REFUSE after the handshake completed (an acceptor that answered,
        then learned the dial comes from a second process using the name)
        counts: completing a handshake is not being served.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        for expected in (1, 2, 3):
            proto, _ = open_outbound(owner)
            proto.dataReceived(prefixed(Refuse("another process holds the name")))
            lose(proto)
            self.assertEqual(link.redial.refusals, expected)

    def test_refuse_on_accepted_connection(self) -> None:
        """
        A REFUSE on a connection the peer dialed is the peer's refusal of
        this side's answer: it is the peer's dial that backs off.
        """
        owner = FakeOwner()
        proto = PeerFactory(owner).buildProtocol(PEER_ADDRESS)
        proto.makeConnection(StringTransport(peerAddress=PEER_ADDRESS))
        proto.dataReceived(prefixed(Refuse("no", REFUSED_GROUP)))
        lose(proto)
        for link in owner.links.values():
            self.assertEqual((link.redial.refusals, link.refused), (0, 0))
            self.assertIsNone(link.fatal)


class CodeTests(SynchronousTestCase):
    """
    Each kind of refusal goes out with its code, which the dialer logs
    with the reason.
    """

    def refused_with(
        self, dialer: FakeOwner, acceptor: FakeOwner, peer: str | None = None
    ) -> Refuse:
        events = observe(self)
        conn = Connection(dialer, acceptor, peer)
        self.assertTrue(conn.client_io.disconnected)
        self.assertEqual(dialer.links[peer or acceptor.me].refused, 1)
        [event] = refusals(events)
        self.assertEqual(acceptor.reasons, [event["reason"]])
        return Refuse(event["reason"], event["code"])

    def test_group(self) -> None:
        refusal = self.refused_with(FakeOwner("alice", group="other"), FakeOwner("bob"))
        self.assertEqual(refusal, Refuse(WRONG_GROUP, REFUSED_GROUP))

    def test_wrong_secret(self) -> None:
        refusal = self.refused_with(
            FakeOwner("alice", secret=b"another secret, also long"),
            FakeOwner("bob", secret=SECRET),
        )
        self.assertEqual(
            refusal, Refuse("failed the group secret check", REFUSED_SECRET)
        )

    def test_no_secret(self) -> None:
        refusal = self.refused_with(FakeOwner("alice"), FakeOwner("bob", secret=SECRET))
        self.assertEqual(refusal.code, REFUSED_SECRET)
        self.assertIn("requires the group secret", refusal.reason)

    def test_secret_where_none(self) -> None:
        refusal = self.refused_with(FakeOwner("alice", secret=SECRET), FakeOwner("bob"))
        self.assertEqual(refusal.code, REFUSED_SECRET)
        self.assertIn("this node has none", refusal.reason)

    def test_name(self) -> None:
        """
        A dial for carol that reached bob.
        """
        refusal = self.refused_with(FakeOwner("alice"), FakeOwner("bob"), "carol")
        self.assertEqual(refusal.code, REFUSED_NAME)
        self.assertIn("meant to reach member 'carol'", refusal.reason)

    def test_members(self) -> None:
        refusal = self.refused_with(
            FakeOwner("alice", members=("alice", "bob")), FakeOwner("bob")
        )
        self.assertEqual(refusal.code, REFUSED_MEMBERS)

    def test_fatal_recorded(self) -> None:
        """
        The dialer's link keeps a refusal for its group or secret (and no
        other) as fatal.
        """
        bad = FakeOwner("alice", group="other")
        Connection(bad, FakeOwner("bob"))
        self.assertEqual(bad.links["bob"].fatal, (REFUSED_GROUP, WRONG_GROUP))
        other = FakeOwner("alice", members=("alice", "bob"))
        Connection(other, FakeOwner("bob"))
        self.assertIsNone(other.links["bob"].fatal)


class LockedOutTests(SynchronousTestCase):
    """
    L{locked_out} and L{PeerLink.on_locked_out}: a member refused for its
    group or secret by most of its group.
    """

    def setUp(self) -> None:
        self.said: list[str] = []

    def owner(self, me: str, members: tuple[str, ...], **kwargs: Any) -> FakeOwner:
        owner = FakeOwner(me, members=members, **kwargs)
        for link in owner.links.values():
            link.on_locked_out = self.said.append
        return owner

    def test_majority(self) -> None:
        """
        In a group of three, one peer's refusal is not enough; two are.
        """
        owner = self.owner("alice", ("alice", "bob", "carol"))
        owner.links["bob"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        owner.links["bob"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        self.assertEqual(self.said, [])
        self.assertIsNone(locked_out(owner))
        owner.links["carol"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        self.assertEqual(
            self.said,
            [
                "member 'alice' can never be let in: bob, carol of its 2 peers"
                f" refused it (bob: {WRONG_GROUP}); start it with the --group of"
                " the other members"
            ],
        )

    def test_four_members_need_three(self) -> None:
        owner = self.owner("d", ("a", "b", "c", "d"))
        owner.links["a"].dial_refused(REFUSED_SECRET, "failed the group secret check")
        owner.links["b"].dial_refused(REFUSED_SECRET, "failed the group secret check")
        self.assertEqual(self.said, [])
        owner.links["c"].dial_refused(REFUSED_SECRET, "failed the group secret check")
        [sentence] = self.said
        self.assertTrue(
            sentence.endswith("give it the same --secret-file as the other members"),
            sentence,
        )
        self.assertIn("a, b, c of its 3 peers", sentence)

    def test_pair_never(self) -> None:
        """
        Of a pair, neither member can make the other give up.
        """
        owner = self.owner("alice", ("alice", "bob"))
        for _ in range(10):
            owner.links["bob"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        self.assertEqual(self.said, [])

    def test_other_codes_never(self) -> None:
        owner = self.owner("alice", ("alice", "bob", "carol"))
        for code in (REFUSED_OTHER, REFUSED_NAME, REFUSED_MEMBERS, 200):
            for link in owner.links.values():
                link.dial_refused(code, "no")
        self.assertEqual(self.said, [])

    def test_served_peer_not_counted(self) -> None:
        """
        A peer that refused and then served a dial no longer counts.
        """
        owner = self.owner("alice", ("alice", "bob", "carol"))
        owner.links["bob"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        owner.links["bob"].dial_served()
        owner.links["carol"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        self.assertEqual(self.said, [])

    def test_both_reasons(self) -> None:
        owner = self.owner("alice", ("alice", "bob", "carol"))
        owner.links["bob"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        owner.links["carol"].dial_refused(REFUSED_SECRET, "failed")
        [sentence] = self.said
        self.assertTrue(
            sentence.endswith(
                "start it with the --group of the other members and give it the"
                " same --secret-file as the other members"
            ),
            sentence,
        )

    def test_flow(self) -> None:
        """
        Whole flow: a member of another group dials the two others of its
        group and is refused by both: it is locked out, and they are not
        (they never dialed it here; their own refusals count nothing).
        """
        bad = self.owner("carol", ("alice", "bob", "carol"), group="other")
        alice = self.owner("alice", ("alice", "bob", "carol"))
        bob = self.owner("bob", ("alice", "bob", "carol"))
        Connection(bad, alice)
        self.assertEqual(self.said, [])
        Connection(bad, bob)
        self.assertEqual(len(self.said), 1)
        self.assertIn("member 'carol' can never be let in", self.said[0])
        self.assertEqual(len(alice.rejections), 1)
        self.assertEqual(len(bob.rejections), 1)


class Refuser:
    """
    An endpoint whose every connection is answered with a REFUSE (or, once
    C{serve} is set, served: the peer's HELLO answer and an ACK) and then
    closed.

    @ivar times: When each connection was made.
    @ivar answered: When each was answered and closed.
    """

    def __init__(self, clock: Clock, code: int = REFUSED_OTHER) -> None:
        self.clock = clock
        self.code = code
        self.serve = False
        self.times: list[float] = []
        self.answered: list[float] = []

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        self.times.append(self.clock.seconds())
        proto = factory.buildProtocol(PEER_ADDRESS)
        assert proto is not None
        transport = StringTransport(peerAddress=PEER_ADDRESS)
        proto.makeConnection(transport)
        # After the connection is handed over, as a real one would be.
        self.clock.callLater(0, self._answer, proto)
        return succeed(proto)

    def _answer(self, proto: IProtocol) -> None:
        self.answered.append(self.clock.seconds())
        if self.serve:
            proto.dataReceived(prefixed(hello("bob", to="alice"), Ack(0)))
        else:
            proto.dataReceived(prefixed(Refuse("go away", self.code)))
        proto.connectionLost(Failure(ConnectionDone()))


def run_until(clock: Clock, end: float) -> None:
    """
    Advance C{clock} from one timed call to the next (exactly, so that no
    step's rounding shifts them) until C{end}.
    """
    while True:
        due = [call.getTime() for call in clock.getDelayedCalls()]
        if not due or min(due) > end:
            break
        clock.advance(max(min(due) - clock.seconds(), 0))
    clock.advance(max(end - clock.seconds(), 0))


class RedialTests(SynchronousTestCase):
    """
    A L{PeerDialer} with the link's policy, on a clock: the redials after
    refusals are spaced exponentially and back to quick once served.
    """

    def test_spacing(self) -> None:
        events = observe(self)
        owner = FakeOwner()
        link = owner.links["bob"]
        endpoint = Refuser(owner.time)
        dialer = PeerDialer(
            endpoint,  # type: ignore[arg-type]
            PeerFactory(owner, link),
            retryPolicy=link.retry_policy(constant(0.05), 2.0),
            clock=owner.time,
        )
        dialer.startService()
        run_until(owner.time, 10.0)
        # From each refusal to the next dial.
        gaps = [
            round(dial - refused, 2)
            for refused, dial in zip(
                endpoint.answered, endpoint.times[1:], strict=False
            )
        ]
        self.assertEqual(gaps[:7], [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
        self.assertEqual(link.refused, len(endpoint.times))
        # Logged once; the rest only counted.
        self.assertEqual(len(refusals(events)), 1)
        endpoint.serve = True
        served = len(endpoint.times)
        while len(endpoint.answered) <= served:
            run_until(
                owner.time, min(c.getTime() for c in owner.time.getDelayedCalls())
            )
        self.assertEqual(link.redial.refusals, 0)
        # Served, then lost: the next redial comes after the base wait.
        answered = endpoint.answered[-1]
        run_until(owner.time, answered + 0.05)
        self.assertEqual(len(endpoint.times), served + 2)
        self.assertAlmostEqual(endpoint.times[-1], answered + 0.05)
        dialer.stopService()


class NodeTests(SynchronousTestCase):
    """
    The node's side: its status, log line and L{MulticastNode.refused_for_good}.
    """

    def node(self) -> MulticastNode:
        return MulticastNode(
            "c",
            {"a": "tcp:host=127.0.0.1:port=9001", "b": "tcp:host=127.0.0.1:port=9002"},
            None,
            MemoryReactorClock(),
        )

    def test_locked_out(self) -> None:
        events = observe(self)
        node = self.node()
        fired: list[str] = []
        node.refused_for_good.addCallback(fired.append)
        self.assertIsNone(node.status().refused_because)
        for _ in range(3):
            node.links["a"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        self.assertEqual(fired, [])
        self.assertEqual(node.status().peers["a"].refused, 3)
        node.links["b"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        node.links["b"].dial_refused(REFUSED_GROUP, WRONG_GROUP)
        [sentence] = fired
        self.assertIn("member 'c' can never be let in: a, b of its 2 peers", sentence)
        status = node.status()
        self.assertEqual(status.refused_because, sentence)
        self.assertEqual(status.to_json()["refused_because"], sentence)
        said = [e for e in events if e.get("sentence") == sentence]
        self.assertEqual(len(said), 1)
        self.assertEqual(said[0]["log_level"], LogLevel.error)
        lines = status_lines(status.to_json())
        self.assertIn(f"refused: {sentence}", lines)
        self.assertEqual(sum(sentence in line for line in lines), 1)

    def test_status_without(self) -> None:
        lines = status_lines(self.node().status().to_json())
        self.assertFalse([line for line in lines if line.startswith("refused")])


class ServiceTests(SynchronousTestCase):
    """
    C{twistd isis}'s side: one sentence on stderr, the reactor stopped and
    the exit status set.
    """

    def test_exit(self) -> None:
        reactor = MemoryReactorClock()
        options = tap.Options()
        options.parseOptions(
            [
                "--id",
                "c",
                "--port",
                "9003",
                "--peers",
                "a=127.0.0.1:9001,b=127.0.0.1:9002",
            ]
        )
        service = tap.makeService(options, reactor)
        assert isinstance(service, tap.NodeService)
        service.stderr = io.StringIO()
        statuses: list[int] = []
        service.exit = statuses.append
        service.startService()
        reactor.run()
        for name in ("a", "b"):
            service.node.links[name].dial_refused(REFUSED_SECRET, "failed")
        self.assertEqual(statuses, [tap.EX_REFUSED])
        self.assertTrue(reactor.hasStopped)
        message = service.stderr.getvalue()
        self.assertEqual(len(message.splitlines()), 1, message)
        self.assertTrue(
            message.startswith("isis: member 'c' can never be let in"), message
        )
        service.stopService()

    def test_exit_before_running(self) -> None:
        """
        Locked out before the reactor runs (it cannot be, in practice): the
        reactor stops as soon as it runs.
        """
        reactor = MemoryReactorClock()
        options = tap.Options()
        options.parseOptions(
            [
                "--id",
                "a",
                "--port",
                "9001",
                "--peers",
                "b=127.0.0.1:9002,c=127.0.0.1:9003",
            ]
        )
        service = tap.makeService(options, reactor)
        assert isinstance(service, tap.NodeService)
        service.stderr = io.StringIO()
        statuses: list[int] = []
        service.exit = statuses.append
        for link in service.node.links.values():
            link.dial_refused(REFUSED_GROUP, WRONG_GROUP)
        self.assertEqual(statuses, [tap.EX_REFUSED])
        self.assertFalse(reactor.hasStopped)
        reactor.run()
        self.assertTrue(reactor.hasStopped)

    def test_exit_when_done(self) -> None:
        """
        L{tap.exit_when_done} sets the status the process ends with once
        its main code is done, whatever that code exits with, and what was
        written still comes out.
        """
        code = (
            "import sys\n"
            "from isis_twisted.app.tap import exit_when_done\n"
            "exit_when_done(78)\n"
            "print('still written')\n"
            "sys.exit(0)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        self.assertEqual(result.returncode, 78, result.stderr)
        self.assertEqual(result.stdout, "still written\n")


class NodeRedialTests(SynchronousTestCase):
    """
    A started L{MulticastNode} redials a refusing peer through its link's
    policy, capped at its C{retry_max_delay}.
    """

    def test_node_backs_off(self) -> None:
        reactor = MemoryReactorClock()
        node = MulticastNode(
            "c",
            {"a": "tcp:host=127.0.0.1:port=9001", "b": "tcp:host=127.0.0.1:port=9002"},
            None,
            reactor,
            retry_max_delay=1.0,
        )
        node.startService()
        self.addCleanup(node.stopService)
        dials: list[float] = []
        refused: list[float] = []
        seen = 0
        while reactor.seconds() < 8.0:
            for _, port, factory, *_ in reactor.tcpClients[seen:]:
                if port != 9001:
                    continue
                dials.append(reactor.seconds())
                proto = factory.buildProtocol(PEER_ADDRESS)
                assert proto is not None
                proto.makeConnection(StringTransport(peerAddress=PEER_ADDRESS))
                proto.dataReceived(prefixed(Refuse("go away")))
                proto.connectionLost(Failure(ConnectionDone()))
                refused.append(reactor.seconds())
            seen = len(reactor.tcpClients)
            reactor.advance(0.001)
        gaps = [
            round(dial - gone, 2)
            for gone, dial in zip(refused, dials[1:], strict=False)
        ]
        # The node's own policy (0.075 s and up to 0.05 s of jitter) may be
        # the longer after the first refusal.
        self.assertTrue(0.1 <= gaps[0] <= 0.13, gaps)
        self.assertEqual(gaps[1:6], [0.2, 0.4, 0.8, 1.0, 1.0])
        self.assertEqual(node.status().peers["a"].refused, len(dials))
