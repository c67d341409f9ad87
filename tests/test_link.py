"""
Tests for L{isis_twisted.net.link}: reliable FIFO links between members.

No real sockets: single connections run on L{StringTransport}s fed by hand,
whole flows between two or three fake nodes run on L{iosim} transports
pumped by an L{iosim.IOPump}, and every timer runs on a L{Clock}.
"""

from __future__ import annotations

import struct
from typing import Any

import attrs
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import Frame, ProtocolError
from isis_twisted.core.handshake import HANDSHAKE_MAX_FRAME
from isis_twisted.core.linkrules import LinkError
from isis_twisted.core.views import Control, View
from isis_twisted.core.wire import (
    REFUSED_GROUP,
    REFUSED_MEMBERS,
    REFUSED_NAME,
    REFUSED_OTHER,
    Ack,
    Auth,
    Data,
    Hello,
    Here,
    Refuse,
    Who,
    WireFrame,
    data_head,
    decode,
    encode,
    encode_body,
)
from isis_twisted.net.connection import PeerFactory, PeerProtocol, describe_address
from isis_twisted.net.link import LinkOwner, PeerLink

_LENGTH = struct.Struct(">I")

GROUP = "chat"
MEMBERS = ("alice", "bob", "carol")
PEER_ADDRESS = IPv4Address("TCP", "10.0.0.2", 40000)
PEER = "10.0.0.2:40000"
PEER_CONFIGURED = "10.0.0.2:9001"


class FakeOwner:
    """
    A L{LinkOwner} that records what its links tell it.

    @ivar time: The clock, to advance.
    @ivar frames: Every engine frame handed over, with its peer.
    @ivar controls: Every control message handed over, with its peer.
    @ivar refuse: If set, L{frame_received} raises it instead of recording.
    @ivar room: How many times L{link_has_room} was called.
    @ivar rejections: Every L{rejected} call, as (address, peer, reason).
    """

    def __init__(
        self,
        me: str = "alice",
        *,
        members: tuple[str, ...] = MEMBERS,
        group: str = GROUP,
        incarnation: int = 1,
        max_frame: int = 64 * 1024,
        handshake_timeout: float = 10.0,
        max_buffer: int = 1 << 20,
        ack_delay: float = 0.05,
        ack_every: int = 4,
        secret: bytes | None = None,
    ) -> None:
        self.group = group
        self.secret = secret
        self.require_certificate = False
        self.me = me
        self.incarnation = incarnation
        self.members = members
        self.view = View(0, members)
        self.time = Clock()
        self.clock: IReactorTime = self.time
        self.max_frame = max_frame
        self.handshake_timeout = handshake_timeout
        self.advertise = ""
        self.links = {
            name: PeerLink(self, name, max_buffer, ack_delay, ack_every)
            for name in members
            if name != me
        }
        self.frames: list[tuple[str, Frame]] = []
        self.controls: list[tuple[str, Control]] = []
        self.refuse: ProtocolError | None = None
        self.room = 0
        self.rejections: list[tuple[str, str | None, str]] = []
        self.restarted: list[tuple[str, bool]] = []
        self.max_buffer = max_buffer
        self.ack_delay = ack_delay
        self.added: list[tuple[str, str]] = []
        self.take_strangers = True

    def link_for(self, name: str) -> PeerLink | None:
        return self.links.get(name)

    def here(self) -> Here:
        return Here(self.me, self.view.id, self.members, (("bob", "bob:1"),))

    def add_peer(self, name: str, address: str) -> PeerLink | None:
        self.added.append((name, address))
        if not self.take_strangers:
            return None
        link = PeerLink(self, name, self.max_buffer, self.ack_delay)
        self.links[name] = link
        return link

    def frame_received(self, peer: str, frame: Frame) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.frames.append((peer, frame))

    def control_received(self, peer: str, message: Control) -> None:
        self.controls.append((peer, message))

    def link_has_room(self) -> None:
        self.room += 1

    def rejected(self, address: str, peer: str | None, reason: str) -> None:
        self.rejections.append((address, peer, reason))

    def new_incarnation(
        self, name: str, incarnation: int, untouched: bool
    ) -> str | None:
        # As a member that still counts the old incarnation in its view.
        self.restarted.append((name, untouched))
        if untouched:
            return None
        return f"member {name!r} restarted as a new incarnation"

    @property
    def reasons(self) -> list[str]:
        """
        The reasons of every rejection so far.
        """
        return [reason for _, _, reason in self.rejections]


def _owner_is_a_link_owner(owner: FakeOwner) -> LinkOwner:
    # mypy checks here that FakeOwner matches the protocol.
    return owner


# -- frames -------------------------------------------------------------------


def engine_frame(n: int) -> Frame:
    """
    An engine frame with one message, different for every C{n}.
    """
    return Frame(0, n, ((n, f"m{n}".encode()),))


def data(seq: int, ack: int = 0, clock: int | None = None) -> Data:
    """
    A DATA frame numbered C{seq} carrying L{engine_frame}.
    """
    return Data(seq, ack, engine_frame(seq if clock is None else clock))


def hello(
    member: str = "bob",
    incarnation: int = 2,
    received: int = 0,
    group: str = GROUP,
    to: str = "alice",
    members: tuple[str, ...] = MEMBERS,
    view: int = 0,
) -> Hello:
    """
    A HELLO from C{member} meant for member C{to} (its C{peer} field),
    listing C{members}.
    """
    return Hello(group, member, to, incarnation, received, b"", view, members)


def prefixed(*frames: WireFrame) -> bytes:
    """
    Frames as they travel: each behind its 4-byte length prefix.
    """
    return b"".join(_LENGTH.pack(len(raw)) + raw for raw in map(encode, frames))


def split(raw: bytes) -> list[bytes]:
    """
    Split bytes written to a connection into the frames inside their
    length prefixes; fail on a partial frame.
    """
    frames = []
    at = 0
    while at < len(raw):
        assert at + 4 <= len(raw), f"partial length prefix: {raw[at:]!r}"
        (size,) = _LENGTH.unpack_from(raw, at)
        at += 4
        assert at + size <= len(raw), f"partial frame: {raw[at - 4 :]!r}"
        frames.append(raw[at : at + size])
        at += size
    return frames


def parse(raw: bytes) -> list[WireFrame]:
    return [decode(frame) for frame in split(raw)]


def written(transport: StringTransport) -> list[WireFrame]:
    """
    The frames written to C{transport} since the last call, decoded.
    """
    frames = parse(transport.value())
    transport.clear()
    return frames


def seqs(frames: list[WireFrame]) -> list[int]:
    """
    The sequence numbers of the DATA frames among C{frames}.
    """
    return [frame.seq for frame in frames if isinstance(frame, Data)]


def send(link: PeerLink, n: int) -> Frame:
    """
    Send L{engine_frame}C{(n)} on C{link}.
    """
    frame = engine_frame(n)
    link.send(frame, encode_body(frame))
    return frame


def frame_size(link: PeerLink, n: int) -> int:
    """
    The bytes L{send}C{(link, n)} adds to the link's resend buffer.
    """
    frame = engine_frame(n)
    return len(data_head(1, 0, frame)) + len(encode_body(frame))


# -- single connections on StringTransports -----------------------------------


def connect(proto: PeerProtocol) -> StringTransport:
    transport = StringTransport(peerAddress=PEER_ADDRESS)
    proto.makeConnection(transport)
    return transport


def accepted(owner: FakeOwner) -> tuple[PeerProtocol, StringTransport]:
    """
    A connection a peer dialed to C{owner}, before any byte arrived.
    """
    proto = PeerFactory(owner).buildProtocol(PEER_ADDRESS)
    return proto, connect(proto)


def dialed(owner: FakeOwner, peer: str = "bob") -> tuple[PeerProtocol, StringTransport]:
    """
    A connection C{owner} dialed to C{peer}, its HELLO already written.
    """
    proto = PeerFactory(owner, owner.links[peer]).buildProtocol(PEER_ADDRESS)
    return proto, connect(proto)


def reach(owner: FakeOwner, peer: str = "bob", incarnation: int = 2) -> None:
    """
    C{owner}'s dial to C{peer}'s configured address reached C{incarnation}:
    accepted connections from that process are served at once.
    """
    owner.links[peer].reached_process(incarnation, PEER_CONFIGURED)


def open_inbound(
    owner: FakeOwner, peer: str = "bob", incarnation: int = 2, received: int = 0
) -> tuple[PeerProtocol, StringTransport]:
    """
    An accepted connection from C{peer} past its handshake, with the HELLO
    answer cleared from its transport.  Unless a dial already did, C{owner}
    is told that C{incarnation} is the process at C{peer}'s address.
    """
    if owner.links[peer].reached is None:
        reach(owner, peer, incarnation)
    proto, transport = accepted(owner)
    proto.dataReceived(prefixed(hello(peer, incarnation, received, to=owner.me)))
    assert proto.link is not None and proto.link.inbound is proto, owner.rejections
    transport.clear()
    return proto, transport


def open_outbound(
    owner: FakeOwner, peer: str = "bob", incarnation: int = 2, received: int = 0
) -> tuple[PeerProtocol, StringTransport]:
    """
    A connection C{owner} dialed to C{peer} past its handshake, with the
    HELLO cleared from its transport (resent frames stay).
    """
    proto, transport = dialed(owner, peer)
    written(transport)
    proto.dataReceived(prefixed(hello(peer, incarnation, received, to=owner.me)))
    assert proto.link is not None and proto.link.outbound is proto, owner.rejections
    return proto, transport


def observe(case: SynchronousTestCase) -> EventLoggingObserver:
    """
    Record every log event for the rest of the test.
    """
    events = EventLoggingObserver()
    globalLogPublisher.addObserver(events)
    case.addCleanup(globalLogPublisher.removeObserver, events)
    return events


def refusals(events: EventLoggingObserver) -> list[Any]:
    """
    The log events of REFUSE frames received ("... refused this node: ...").
    """
    return [e for e in events if "refused this node" in e.get("log_format", "")]


def drops(events: EventLoggingObserver) -> list[Any]:
    """
    The log events of connections this node dropped ("dropped ...").
    """
    return [e for e in events if e.get("log_format", "").startswith("dropped ")]


def lose(proto: PeerProtocol) -> None:
    """
    The connection under C{proto} closed.
    """
    proto.connectionLost()


def aborted(transport: StringTransport) -> bool:
    return transport.disconnected


def closing(transport: StringTransport) -> bool:
    """
    Whether the connection is being closed gently (after what was written).
    """
    return transport.disconnecting and not transport.disconnected


# -- whole flows on iosim ---------------------------------------------------


class Connection:
    """
    One connection between two fake nodes on iosim transports.

    @ivar client: The dialer's protocol.
    @ivar server: The acceptor's protocol.
    @ivar client_io: The dialer's transport.
    @ivar server_io: The acceptor's transport.
    @ivar pump: Moves bytes both ways.
    """

    def __init__(
        self, dialer: FakeOwner, acceptor: FakeOwner, peer: str | None = None
    ) -> None:
        """
        Connect C{dialer}'s dial of C{peer} (default: the acceptor's name) to
        C{acceptor}'s listening side and pump until both are quiet.
        """
        link = dialer.links[peer or acceptor.me]
        self.client_io = iosim.FakeTransport(
            None, False, peerAddress=IPv4Address("TCP", "10.0.0.9", 9000)
        )
        self.server_io = iosim.FakeTransport(
            None, True, peerAddress=IPv4Address("TCP", "10.0.0.8", 50000)
        )
        self.client = PeerFactory(dialer, link).buildProtocol(None)
        self.server = PeerFactory(acceptor).buildProtocol(None)
        self.client_io.protocol = self.client
        self.server_io.protocol = self.server
        self.pump = iosim.connect(
            self.server, self.server_io, self.client, self.client_io
        )

    def flush(self) -> None:
        self.pump.flush()

    def close(self) -> None:
        """
        The dialer closes the connection; both sides see it closed.
        """
        self.client_io.loseConnection()
        self.flush()


class Pair:
    """
    Two fake nodes, each having dialed the other: C{a}'s DATA to C{b} goes
    on C{ab} (C{a} dialed), C{b}'s on C{ba}.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.a = FakeOwner("alice", incarnation=1, **kwargs)
        self.b = FakeOwner("bob", incarnation=2, **kwargs)
        self.ab = Connection(self.a, self.b)
        self.ba = Connection(self.b, self.a)

    @property
    def ab_link(self) -> PeerLink:
        return self.a.links["bob"]

    @property
    def ba_link(self) -> PeerLink:
        return self.b.links["alice"]

    def flush(self) -> None:
        self.ab.flush()
        self.ba.flush()

    def advance(self, seconds: float) -> None:
        self.a.time.advance(seconds)
        self.b.time.advance(seconds)
        self.flush()


# -- tests ----------------------------------------------------------------


class DescribeAddressTests(SynchronousTestCase):
    def test_ip(self) -> None:
        self.assertEqual(describe_address(PEER_ADDRESS), PEER)

    def test_unix(self) -> None:
        """
        A UNIX socket's path is shown decoded, after C{unix:}.
        """
        self.assertEqual(
            describe_address(UNIXAddress("/run/x.sock")), "unix:/run/x.sock"
        )
        self.assertEqual(
            describe_address(UNIXAddress(b"/run/x.sock")), "unix:/run/x.sock"
        )

    def test_unix_non_ascii(self) -> None:
        """
        A path in UTF-8 is shown as its characters; bytes that are not UTF-8
        become U+FFFD instead of failing.
        """
        self.assertEqual(
            describe_address(UNIXAddress("/run/grüße.sock".encode())),
            "unix:/run/grüße.sock",
        )
        self.assertEqual(
            describe_address(UNIXAddress(b"/run/\xff.sock")), "unix:/run/\ufffd.sock"
        )

    def test_unix_connection_logged(self) -> None:
        """
        A connection over a UNIX socket is named by its path in log lines and
        rejections.
        """
        events = observe(self)
        owner = FakeOwner(handshake_timeout=1.0)
        proto = PeerFactory(owner).buildProtocol(None)
        proto.makeConnection(
            StringTransport(peerAddress=UNIXAddress(b"/run/isis/bob.sock"))
        )
        owner.time.advance(1)
        self.assertEqual(
            owner.rejections,
            [("unix:/run/isis/bob.sock", None, "no handshake within 1 s")],
        )
        [event] = drops(events)
        self.assertEqual(event["address"], "unix:/run/isis/bob.sock")

    def test_unnamed_unix(self) -> None:
        self.assertEqual(describe_address(UNIXAddress(None)), "UNIXAddress(None)")

    def test_none(self) -> None:
        self.assertEqual(describe_address(None), "an unknown address")


class FactoryTests(SynchronousTestCase):
    def test_accepting(self) -> None:
        """
        Without C{dial}, the factory builds accepting protocols that know no
        peer yet.
        """
        owner = FakeOwner()
        factory = PeerFactory(owner)
        address: IAddress = PEER_ADDRESS
        proto = factory.buildProtocol(address)
        self.assertIsInstance(proto, PeerProtocol)
        self.assertIs(proto.factory, factory)
        self.assertIsNone(proto.peer)
        self.assertIsNone(proto.link)

    def test_dialing(self) -> None:
        """
        With C{dial}, the protocol is named after the link's peer.
        """
        owner = FakeOwner()
        proto = PeerFactory(owner, owner.links["carol"]).buildProtocol(None)
        self.assertEqual(proto.peer, "carol")
        self.assertIsNone(proto.link)


class HandshakeTests(SynchronousTestCase):
    def test_dialer_sends_hello(self) -> None:
        """
        A dialed connection sends HELLO at once: group, name, the member it
        dialed, incarnation and how many of that member's DATA frames this
        node holds.
        """
        owner = FakeOwner(incarnation=77)
        owner.links["bob"].received = 5
        owner.links["carol"].received = 8
        _, transport = dialed(owner)
        self.assertEqual(written(transport), [hello("alice", 77, 5, to="bob")])
        self.assertFalse(transport.disconnecting)
        _, transport = dialed(owner, "carol")
        self.assertEqual(written(transport), [hello("alice", 77, 8, to="carol")])

    def test_acceptor_waits(self) -> None:
        """
        An accepted connection sends nothing until the peer's HELLO.
        """
        _, transport = accepted(FakeOwner())
        self.assertEqual(transport.value(), b"")

    def test_acceptor_answers(self) -> None:
        """
        The acceptor answers a good HELLO with its own, carrying what it
        holds of the dialer's frames, and the link's inbound connection is
        set.
        """
        owner = FakeOwner(incarnation=9)
        link = owner.links["bob"]
        link.received = 3
        reach(owner)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", 2, 0)))
        self.assertEqual(written(transport), [hello("alice", 9, 3, to="bob")])
        self.assertIs(link.inbound, proto)
        self.assertIs(proto.link, link)
        self.assertEqual(proto.peer, "bob")
        self.assertEqual(link.incarnation, 2)
        self.assertIsNone(link.outbound)
        self.assertEqual(owner.rejections, [])
        self.assertEqual(link.last_heard, 0.0)

    def test_acceptor_ignores_received(self) -> None:
        """
        The acceptor does not take the dialer's HELLO C{received} as an
        acknowledgement of its own frames, nor check it: only its own dialed
        connection's handshake, which checks whom it reached, does that.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        for n in (1, 2, 3):
            send(link, n)
        reach(owner)
        proto, _ = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", received=2)))
        self.assertIs(link.inbound, proto)
        self.assertEqual([seq for seq, _, _ in link.unacked], [1, 2, 3])
        # A count above what was sent is not the acceptor's to judge either.
        proto, _ = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", received=9)))
        self.assertIs(link.inbound, proto)
        self.assertEqual([seq for seq, _, _ in link.unacked], [1, 2, 3])
        self.assertEqual(owner.rejections, [])
        # The answer on this node's own dialed connection trims the buffer.
        _, transport = open_outbound(owner, received=2)
        self.assertEqual(seqs(written(transport)), [3])
        self.assertEqual([seq for seq, _, _ in link.unacked], [3])

    def test_dialer_opens(self) -> None:
        """
        The dialer's connection opens on the acceptor's HELLO and becomes the
        link's outbound connection; it answers nothing.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        proto, transport = dialed(owner)
        written(transport)
        proto.dataReceived(prefixed(hello("bob", 2, 0)))
        self.assertIs(link.outbound, proto)
        self.assertIsNone(link.inbound)
        self.assertEqual(link.incarnation, 2)
        self.assertEqual(link.connects, 1)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(owner.rejections, [])

    def test_timer_cancelled(self) -> None:
        """
        Once the handshake is done, the handshake timeout no longer applies
        to either side.
        """
        owner = FakeOwner()
        inbound, in_transport = open_inbound(owner, "bob")
        outbound, out_transport = open_outbound(owner, "carol")
        self.assertEqual(owner.time.getDelayedCalls(), [])
        owner.time.advance(owner.handshake_timeout * 10)
        self.assertFalse(in_transport.disconnecting)
        self.assertFalse(out_transport.disconnecting)
        self.assertEqual(owner.rejections, [])
        self.assertIs(owner.links["bob"].inbound, inbound)
        self.assertIs(owner.links["carol"].outbound, outbound)

    def test_whole_flow(self) -> None:
        """
        Two nodes dialing each other end with both connections open on both
        sides, each link's outbound on the connection it dialed.
        """
        pair = Pair()
        self.assertIs(pair.ab_link.outbound, pair.ab.client)
        self.assertIs(pair.ab_link.inbound, pair.ba.server)
        self.assertIs(pair.ba_link.outbound, pair.ba.client)
        self.assertIs(pair.ba_link.inbound, pair.ab.server)
        self.assertEqual(pair.ab_link.incarnation, 2)
        self.assertEqual(pair.ba_link.incarnation, 1)
        pair.advance(100)
        self.assertIs(pair.ab_link.outbound, pair.ab.client)
        self.assertIs(pair.ba_link.inbound, pair.ab.server)
        self.assertEqual(pair.a.rejections + pair.b.rejections, [])

    def test_hello_in_pieces(self) -> None:
        """
        A HELLO that arrives a byte at a time is a HELLO.
        """
        owner = FakeOwner()
        reach(owner)
        proto, _ = accepted(owner)
        for byte in prefixed(hello("bob")):
            proto.dataReceived(bytes([byte]))
        self.assertIs(owner.links["bob"].inbound, proto)

    def test_connection_lost(self) -> None:
        """
        When a connection closes, the link forgets it, and its timer stops.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        inbound, _ = open_inbound(owner)
        outbound, _ = open_outbound(owner)
        lose(inbound)
        self.assertIsNone(link.inbound)
        self.assertIs(link.outbound, outbound)
        lose(outbound)
        self.assertIsNone(link.outbound)
        pending, _ = accepted(owner)
        lose(pending)
        self.assertEqual(owner.time.getDelayedCalls(), [])
        self.assertEqual(owner.rejections, [])


class HandshakeTimeoutTests(SynchronousTestCase):
    def test_silent_acceptor_side(self) -> None:
        """
        A connection that sends nothing is dropped after the handshake
        timeout, and the drop is counted.
        """
        owner = FakeOwner(handshake_timeout=3.0)
        _, transport = accepted(owner)
        owner.time.advance(2.999)
        self.assertFalse(transport.disconnecting)
        owner.time.advance(0.001)
        self.assertTrue(aborted(transport))
        self.assertEqual(owner.rejections, [(PEER, None, "no handshake within 3 s")])
        self.assertEqual(transport.value(), b"")

    def test_partial_hello(self) -> None:
        """
        Half a HELLO does not stop the timer.
        """
        owner = FakeOwner(handshake_timeout=3.0)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob"))[:10])
        owner.time.advance(3)
        self.assertTrue(aborted(transport))
        self.assertEqual(owner.reasons, ["no handshake within 3 s"])
        self.assertIsNone(owner.links["bob"].inbound)

    def test_unanswered_dialer(self) -> None:
        """
        A dialed connection whose HELLO is never answered is dropped too,
        named after the member it dialed.
        """
        owner = FakeOwner(handshake_timeout=0.5)
        _, transport = dialed(owner, "carol")
        owner.time.advance(0.5)
        self.assertTrue(aborted(transport))
        self.assertEqual(
            owner.rejections, [(PEER, "carol", "no handshake within 0.5 s")]
        )
        self.assertIsNone(owner.links["carol"].outbound)

    def test_timeout_logged(self) -> None:
        """
        The drop is logged with who, where and why.
        """
        events = observe(self)
        owner = FakeOwner()
        dialed(owner, "carol")
        owner.time.advance(10)
        [event] = [e for e in events if e.get("reason")]
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(event["peer"], "carol")
        self.assertEqual(event["address"], PEER)
        self.assertEqual(event["reason"], "no handshake within 10 s")


class FrameLimitTests(SynchronousTestCase):
    def test_prefix_over_handshake_limit(self) -> None:
        """
        Before the handshake, a length prefix above L{HANDSHAKE_MAX_FRAME}
        drops the connection as soon as the prefix is read.
        """
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(_LENGTH.pack(HANDSHAKE_MAX_FRAME + 1))
        self.assertTrue(aborted(transport))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(
            owner.reasons,
            [
                f"frame of {HANDSHAKE_MAX_FRAME + 1} bytes is over the limit"
                f" of {HANDSHAKE_MAX_FRAME} bytes"
            ],
        )
        # More bytes change nothing.
        proto.dataReceived(b"\x00" * 100)
        self.assertEqual(len(owner.rejections), 1)

    def test_prefix_at_handshake_limit(self) -> None:
        """
        A prefix of exactly L{HANDSHAKE_MAX_FRAME} waits for its body.
        """
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(_LENGTH.pack(HANDSHAKE_MAX_FRAME))
        self.assertFalse(transport.disconnecting)
        self.assertEqual(owner.rejections, [])

    def test_dialer_before_answer(self) -> None:
        """
        The dialer applies the same limit to the answer it waits for.
        """
        owner = FakeOwner()
        proto, transport = dialed(owner)
        proto.dataReceived(_LENGTH.pack(HANDSHAKE_MAX_FRAME + 1))
        self.assertTrue(aborted(transport))
        self.assertEqual(owner.rejections[0][1], "bob")

    def test_max_frame_after_handshake(self) -> None:
        """
        After the handshake, frames up to C{max_frame} pass, even above the
        handshake limit, and a prefix above C{max_frame} drops the
        connection.
        """
        owner = FakeOwner(max_frame=HANDSHAKE_MAX_FRAME * 4)
        proto, transport = open_inbound(owner)
        big = Data(1, 0, Frame(0, 1, ((1, b"x" * HANDSHAKE_MAX_FRAME * 2),)))
        proto.dataReceived(prefixed(big))
        self.assertEqual(owner.frames, [("bob", big.frame)])
        proto.dataReceived(_LENGTH.pack(owner.max_frame))
        self.assertFalse(transport.disconnecting)
        proto.dataReceived(b"\x00" * 10)
        self.assertEqual(owner.rejections, [])

        proto, transport = open_inbound(owner, "carol")
        proto.dataReceived(_LENGTH.pack(owner.max_frame + 1))
        self.assertTrue(aborted(transport))
        self.assertEqual(
            owner.rejections,
            [
                (
                    PEER,
                    "carol",
                    f"frame of {owner.max_frame + 1} bytes is over the limit"
                    f" of {owner.max_frame} bytes",
                )
            ],
        )

    def test_limit_rises_mid_chunk(self) -> None:
        """
        A HELLO and a frame above the handshake limit in one read: the frame
        is read under the limit that holds once the HELLO is taken.
        """
        owner = FakeOwner(max_frame=HANDSHAKE_MAX_FRAME * 4)
        reach(owner)
        proto, _ = accepted(owner)
        big = Data(1, 0, Frame(0, 1, ((1, b"y" * HANDSHAKE_MAX_FRAME * 2),)))
        proto.dataReceived(prefixed(hello("bob"), big))
        self.assertEqual(owner.rejections, [])
        self.assertEqual(owner.frames, [("bob", big.frame)])

    def test_limit_rises_once_held_connection_served(self) -> None:
        """
        A HELLO held until this node reaches its member, and a frame above
        the handshake limit in the same read: the frame waits, unread, and
        is read under the raised limit once the connection is served.
        """
        owner = FakeOwner(max_frame=HANDSHAKE_MAX_FRAME * 4)
        proto, _ = accepted(owner)
        big = Data(1, 0, Frame(0, 1, ((1, b"y" * HANDSHAKE_MAX_FRAME * 2),)))
        proto.dataReceived(prefixed(hello("bob"), big))
        self.assertEqual(owner.frames, [])
        open_outbound(owner)
        self.assertEqual(owner.rejections, [])
        self.assertEqual(owner.frames, [("bob", big.frame)])


class MalformedFrameTests(SynchronousTestCase):
    def test_garbage_before_handshake(self) -> None:
        """
        Bytes that are no frame: the connection is aborted (no REFUSE), the
        drop counted as a malformed frame, and no exception escapes.
        """
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(b"\x00\x00\x00\x05GET /")
        self.assertTrue(aborted(transport))
        self.assertEqual(transport.value(), b"")
        [(address, peer, reason)] = owner.rejections
        self.assertEqual((address, peer), (PEER, None))
        self.assertTrue(reason.startswith("malformed frame: "), reason)
        self.assertIn("version 71", reason)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_short_frame(self) -> None:
        """
        A frame of one byte is malformed.
        """
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(b"\x00\x00\x00\x01\x01")
        self.assertTrue(aborted(transport))
        self.assertIn("malformed frame", owner.reasons[0])

    def test_undecodable_after_handshake(self) -> None:
        """
        After the handshake, a malformed frame drops the connection, named
        after its member; the frames behind it in the same read are ignored.
        """
        owner = FakeOwner()
        proto, transport = open_inbound(owner)
        bad = encode(data(1))[:-1]
        proto.dataReceived(_LENGTH.pack(len(bad)) + bad + prefixed(data(1)))
        self.assertTrue(aborted(transport))
        self.assertEqual(owner.frames, [])
        [(_, peer, reason)] = owner.rejections
        self.assertEqual(peer, "bob")
        self.assertIn("malformed frame: ", reason)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(owner.links["bob"].received, 0)

    def test_unknown_type(self) -> None:
        owner = FakeOwner()
        proto, transport = open_outbound(owner)
        proto.dataReceived(b"\x00\x00\x00\x02\x02\x09")
        self.assertTrue(aborted(transport))
        self.assertEqual(owner.reasons, ["malformed frame: unknown frame type 9"])

    def test_nothing_after_drop(self) -> None:
        """
        Once dropped, a connection takes no frame, however well formed.
        """
        owner = FakeOwner()
        proto, _ = accepted(owner)
        proto.dataReceived(b"\x00\x00\x00\x02\x07\x07")
        proto.dataReceived(prefixed(hello("bob")))
        self.assertIsNone(owner.links["bob"].inbound)
        self.assertEqual(len(owner.rejections), 1)


class RefuseTests(SynchronousTestCase):
    def assertRefused(
        self,
        owner: FakeOwner,
        transport: StringTransport,
        reason: str,
        peer: str | None = None,
        code: int = REFUSED_OTHER,
    ) -> None:
        """
        The connection was answered with REFUSE(C{reason}, C{code}) and is
        closing after it; the rejection was counted.
        """
        self.assertEqual(written(transport), [Refuse(reason, code)])
        self.assertTrue(closing(transport))
        self.assertEqual(owner.rejections, [(PEER, peer, reason)])

    def test_wrong_group(self) -> None:
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", group="other")))
        self.assertRefused(
            owner,
            transport,
            "group 'other' is not this node's group 'chat'",
            code=REFUSED_GROUP,
        )
        self.assertIsNone(owner.links["bob"].inbound)
        self.assertIsNone(owner.links["bob"].incarnation)

    def test_unknown_member(self) -> None:
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("mallory")))
        self.assertRefused(
            owner,
            transport,
            "'mallory' is not a member (members: alice, bob, carol)",
            code=REFUSED_NAME,
        )

    def test_own_name(self) -> None:
        """
        A HELLO meant for this node that names this node as its sender (a
        second node configured with the same name).
        """
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("alice", to="alice")))
        self.assertRefused(
            owner, transport, "'alice' is this node's own name", code=REFUSED_NAME
        )

    def test_meant_for_another_member(self) -> None:
        """
        An acceptor refuses a HELLO meant for another member, naming the
        dialer, the member it meant and itself, before looking at anything
        else about the dialer's link.
        """
        owner = FakeOwner("carol")
        link = owner.links["alice"]
        send(link, 1)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("alice", received=1, to="bob")))
        self.assertRefused(
            owner,
            transport,
            "'alice' meant to reach member 'bob', but this is 'carol': check the"
            " peer addresses of 'alice'",
            code=REFUSED_NAME,
        )
        self.assertIsNone(proto.peer)
        self.assertIsNone(link.inbound)
        self.assertIsNone(link.incarnation)
        self.assertEqual([seq for seq, _, _ in link.unacked], [1])

    def test_meant_for_another_checked_before_member(self) -> None:
        """
        The intended member is checked before the sender's name: a stranger
        that meant another member is told it reached the wrong one.
        """
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("mallory", to="bob")))
        self.assertRefused(
            owner,
            transport,
            "'mallory' meant to reach member 'bob', but this is 'alice': check the"
            " peer addresses of 'mallory'",
            code=REFUSED_NAME,
        )

    def test_answer_meant_for_another_member(self) -> None:
        """
        The dialer checks the answer's C{peer} the same way.
        """
        owner = FakeOwner()
        proto, transport = dialed(owner, "bob")
        written(transport)
        proto.dataReceived(prefixed(hello("bob", to="carol")))
        self.assertRefused(
            owner,
            transport,
            "'bob' meant to reach member 'carol', but this is 'alice': check the"
            " peer addresses of 'bob'",
            peer="bob",
            code=REFUSED_NAME,
        )
        self.assertIsNone(owner.links["bob"].outbound)
        self.assertIsNone(owner.links["bob"].incarnation)

    def test_wrong_member_answers(self) -> None:
        """
        A dialer answered by another member than the one it dialed refuses
        it and names both.
        """
        owner = FakeOwner()
        proto, transport = dialed(owner, "bob")
        written(transport)
        proto.dataReceived(prefixed(hello("carol")))
        self.assertRefused(
            owner,
            transport,
            "dialed member 'bob' but 'carol' answered: check the peer addresses",
            peer="bob",
            code=REFUSED_NAME,
        )
        self.assertIsNone(owner.links["bob"].outbound)
        self.assertIsNone(owner.links["carol"].incarnation)
        self.assertIsNone(owner.links["carol"].outbound)

    def test_answer_of_wrong_group(self) -> None:
        owner = FakeOwner()
        proto, transport = dialed(owner, "bob")
        written(transport)
        proto.dataReceived(prefixed(hello("bob", group="chat2")))
        self.assertRefused(
            owner,
            transport,
            "group 'chat2' is not this node's group 'chat'",
            peer="bob",
            code=REFUSED_GROUP,
        )

    def test_first_frame_not_hello(self) -> None:
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(data(1)))
        self.assertRefused(owner, transport, "the first frame was not a HELLO")
        self.assertEqual(owner.frames, [])

    def test_first_answer_not_hello(self) -> None:
        owner = FakeOwner()
        proto, transport = dialed(owner)
        written(transport)
        proto.dataReceived(prefixed(Ack(0)))
        self.assertRefused(
            owner, transport, "the first frame was not a HELLO", peer="bob"
        )
        self.assertIsNone(owner.links["bob"].outbound)

    def test_refuse_logged(self) -> None:
        """
        The refusal is logged with who, where and why.
        """
        events = observe(self)
        owner = FakeOwner()
        proto, _ = accepted(owner)
        proto.dataReceived(prefixed(hello("mallory")))
        [event] = [e for e in events if e.get("reason")]
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(event["address"], PEER)
        self.assertIn("mallory", event["reason"])

    def test_refuse_received(self) -> None:
        """
        A REFUSE received by the dialer closes the connection and is logged
        as a warning with the reason; it is not a rejection of the peer.
        """
        events = observe(self)
        owner = FakeOwner()
        proto, transport = dialed(owner, "bob")
        written(transport)
        proto.dataReceived(prefixed(Refuse("go away"), hello("bob")))
        self.assertTrue(closing(transport))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(owner.rejections, [])
        self.assertIsNone(owner.links["bob"].outbound)
        [event] = [e for e in events if e.get("reason")]
        self.assertEqual(event, refusals(events)[0])
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(event["reason"], "go away")
        self.assertEqual(event["who"], "member 'bob'")
        self.assertEqual(event["address"], PEER)

    def test_refuse_on_open_connection(self) -> None:
        """
        A REFUSE after the handshake also closes the connection.
        """
        owner = FakeOwner()
        proto, transport = open_outbound(owner)
        proto.dataReceived(prefixed(Refuse("shutting down")))
        self.assertTrue(closing(transport))
        self.assertEqual(owner.rejections, [])
        lose(proto)
        self.assertIsNone(owner.links["bob"].outbound)

    def test_refused_flow(self) -> None:
        """
        Whole flow: a dialer of another group is refused; the acceptor
        counts it, the dialer logs the REFUSE, and both connections close.
        """
        events = observe(self)
        a = FakeOwner("alice")
        b = FakeOwner("bob", group="other")
        conn = Connection(a, b)
        self.assertEqual(
            b.rejections,
            [("10.0.0.8:50000", None, "group 'chat' is not this node's group 'other'")],
        )
        self.assertEqual(a.rejections, [])
        self.assertIsNone(a.links["bob"].outbound)
        self.assertIsNone(b.links["alice"].inbound)
        self.assertTrue(conn.client_io.disconnected)
        self.assertTrue(conn.server_io.disconnected)
        self.assertEqual(
            [(e["log_level"], e["who"], e["reason"]) for e in refusals(events)],
            [
                (
                    LogLevel.warn,
                    "member 'bob'",
                    "group 'chat' is not this node's group 'other'",
                )
            ],
        )

    def test_dialing_itself(self) -> None:
        """
        Whole flow: a node whose peer address leads back to itself is
        refused by itself, as having reached the wrong member.
        """
        a = FakeOwner("alice")
        Connection(a, a, peer="bob")
        self.assertEqual(
            a.rejections,
            [
                (
                    "10.0.0.8:50000",
                    None,
                    "'alice' meant to reach member 'bob', but this is 'alice':"
                    " check the peer addresses of 'alice'",
                )
            ],
        )
        self.assertIsNone(a.links["bob"].outbound)
        self.assertIsNone(a.links["bob"].inbound)
        self.assertIsNone(a.links["bob"].incarnation)


class OpenConnectionTests(SynchronousTestCase):
    def test_second_hello(self) -> None:
        """
        A second HELLO on an open connection drops it, without REFUSE.
        """
        owner = FakeOwner()
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(hello("bob")))
        self.assertTrue(aborted(transport))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(
            owner.rejections, [(PEER, "bob", "a second HELLO on an open connection")]
        )

    def test_data_on_dialed_connection(self) -> None:
        """
        The acceptor of a connection sends no DATA on it: if it does, the
        dialer drops the connection and takes nothing.
        """
        owner = FakeOwner()
        proto, transport = open_outbound(owner)
        proto.dataReceived(prefixed(data(1)))
        self.assertTrue(aborted(transport))
        self.assertEqual(owner.frames, [])
        self.assertEqual(owner.links["bob"].received, 0)
        self.assertEqual(
            owner.rejections, [(PEER, "bob", "DATA on a connection this node dialed")]
        )

    def test_ack_of_unsent_frame(self) -> None:
        """
        An ACK of a frame never sent drops the connection.
        """
        owner = FakeOwner()
        proto, transport = open_outbound(owner)
        send(owner.links["bob"], 1)
        proto.dataReceived(prefixed(Ack(2)))
        self.assertTrue(aborted(transport))
        self.assertEqual(owner.reasons, ["acknowledges frame 2, but only 1 were sent"])
        self.assertEqual(len(owner.links["bob"].unacked), 1)

    def test_hello_acknowledging_unsent(self) -> None:
        """
        A HELLO claiming to hold frames never sent is dropped.
        """
        owner = FakeOwner()
        proto, transport = dialed(owner)
        proto.dataReceived(prefixed(hello("bob", received=1)))
        self.assertTrue(aborted(transport))
        self.assertEqual(owner.reasons, ["acknowledges frame 1, but only 0 were sent"])
        self.assertIsNone(owner.links["bob"].outbound)

    def test_counters(self) -> None:
        """
        Frames and bytes are counted per link, both ways, and what goes out
        on either connection counts (DATA, and frames such as ACKs).
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        inbound, in_transport = open_inbound(owner)
        _, out_transport = open_outbound(owner)
        frames, sent = link.frames_out, link.bytes_out
        written = len(out_transport.value()) + len(in_transport.value())
        send(link, 1)
        inbound.send_raw(b"abc")
        self.assertEqual(link.frames_out, frames + 2)
        self.assertEqual(
            link.bytes_out - sent,
            len(out_transport.value()) + len(in_transport.value()) - written,
        )
        raw = prefixed(data(1))
        inbound.dataReceived(raw)
        self.assertEqual(link.frames_in, 1)
        self.assertEqual(link.bytes_in, len(raw))


class SequenceTests(SynchronousTestCase):
    def test_numbers(self) -> None:
        """
        Frames are numbered 1, 2, 3 and kept, with the link's received as
        their ack, until acknowledged.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        link.received = 7
        frames = [send(link, n) for n in (1, 2, 3)]
        self.assertEqual(link.next_seq, 4)
        kept = [decode(head + body) for _, head, body in link.unacked]
        self.assertEqual(kept, [Data(n, 7, f) for n, f in enumerate(frames, 1)])
        self.assertEqual([seq for seq, _, _ in link.unacked], [1, 2, 3])
        self.assertEqual(
            link.unacked_bytes, sum(frame_size(link, n) for n in (1, 2, 3))
        )

    def test_sent_when_connected(self) -> None:
        """
        With the outbound connection open, each frame is written at once,
        numbered, with its length prefix.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        _, transport = open_outbound(owner)
        frames = [send(link, n) for n in (1, 2, 3)]
        self.assertEqual(
            written(transport), [Data(n, 0, f) for n, f in enumerate(frames, 1)]
        )
        self.assertEqual(len(link.unacked), 3)

    def test_acknowledged(self) -> None:
        """
        An ack trims every frame up to it; older acks change nothing; an ack
        of a frame never sent is a L{LinkError}.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        for n in (1, 2, 3):
            send(link, n)
        link.acknowledged(2)
        self.assertEqual([seq for seq, _, _ in link.unacked], [3])
        self.assertEqual(link.unacked_bytes, frame_size(link, 3))
        link.acknowledged(1)
        link.acknowledged(0)
        link.acknowledged(2)
        self.assertEqual([seq for seq, _, _ in link.unacked], [3])
        error = self.assertRaises(LinkError, link.acknowledged, 4)
        self.assertEqual(str(error), "acknowledges frame 4, but only 3 were sent")
        self.assertEqual([seq for seq, _, _ in link.unacked], [3])
        link.acknowledged(3)
        self.assertEqual(list(link.unacked), [])
        self.assertEqual(link.unacked_bytes, 0)
        # The owner hears of every acknowledgement that freed something
        # (twice here: for 2 and for 3), and of none that freed nothing.
        self.assertEqual(owner.room, 2)

    def test_full(self) -> None:
        """
        The link is full once its unacknowledged bytes reach C{max_buffer};
        the owner is told whenever an acknowledgement frees something, and
        decides itself whether that is room enough.
        """
        size = frame_size(PeerLink(FakeOwner(), "x", 1), 1)
        owner = FakeOwner(max_buffer=2 * size)
        link = owner.links["bob"]
        send(link, 1)
        self.assertFalse(link.full)
        send(link, 2)
        self.assertTrue(link.full)
        send(link, 3)
        self.assertTrue(link.full)
        link.acknowledged(1)
        self.assertTrue(link.full)
        self.assertEqual(owner.room, 1)
        link.acknowledged(2)
        self.assertFalse(link.full)
        self.assertEqual(owner.room, 2)
        link.acknowledged(2)
        self.assertEqual(owner.room, 2)
        link.acknowledged(3)
        self.assertEqual(owner.room, 3)

    def test_room_from_peer_ack(self) -> None:
        """
        An ACK from the peer that frees the buffer tells the owner.
        """
        size = frame_size(PeerLink(FakeOwner(), "x", 1), 1)
        owner = FakeOwner(max_buffer=size)
        link = owner.links["bob"]
        proto, _ = open_outbound(owner)
        send(link, 1)
        self.assertTrue(link.full)
        proto.dataReceived(prefixed(Ack(1)))
        self.assertFalse(link.full)
        self.assertEqual(owner.room, 1)

    def test_room_from_handshake(self) -> None:
        """
        The HELLO answer of a reconnection acknowledges too.
        """
        size = frame_size(PeerLink(FakeOwner(), "x", 1), 1)
        owner = FakeOwner(max_buffer=size)
        link = owner.links["bob"]
        send(link, 1)
        self.assertTrue(link.full)
        _, transport = open_outbound(owner, received=1)
        self.assertEqual(owner.room, 1)
        self.assertEqual(transport.value(), b"")


class ReconnectTests(SynchronousTestCase):
    def test_buffered_then_resent(self) -> None:
        """
        Frames sent while the peer is away are kept; the next dialed
        connection's HELLO answer says what the peer holds, and exactly the
        frames after that are resent, in order, before new ones.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        first, transport = open_outbound(owner)
        send(link, 1)
        send(link, 2)
        self.assertEqual(seqs(written(transport)), [1, 2])
        lose(first)
        self.assertIsNone(link.outbound)
        send(link, 3)
        send(link, 4)
        self.assertEqual(transport.value(), b"")

        proto, transport = dialed(owner)
        self.assertEqual(written(transport), [hello("alice", 1, 0, to="bob")])
        proto.dataReceived(prefixed(hello("bob", received=2)))
        resent = written(transport)
        self.assertEqual(resent, [Data(n, 0, engine_frame(n)) for n in (3, 4)])
        self.assertEqual([seq for seq, _, _ in link.unacked], [3, 4])
        self.assertEqual(link.resent, 2)
        self.assertEqual(link.connects, 2)
        send(link, 5)
        self.assertEqual(seqs(written(transport)), [5])

    def test_nothing_held(self) -> None:
        """
        A peer that holds none of the frames gets them all again.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        for n in (1, 2, 3):
            send(link, n)
        _, transport = open_outbound(owner, received=0)
        self.assertEqual(seqs(written(transport)), [1, 2, 3])

    def test_everything_held(self) -> None:
        """
        A peer that holds every frame gets none again.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        for n in (1, 2, 3):
            send(link, n)
        _, transport = open_outbound(owner, received=3)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(list(link.unacked), [])
        self.assertEqual(link.resent, 0)

    def test_duplicates_dropped(self) -> None:
        """
        A DATA frame already held is counted and dropped, not handed on; the
        connection stays.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(data(1), data(2)))
        self.assertEqual(link.received, 2)
        proto.dataReceived(prefixed(data(2), data(1), data(3)))
        self.assertEqual(link.duplicates, 2)
        self.assertEqual(owner.frames, [("bob", engine_frame(n)) for n in (1, 2, 3)])
        self.assertEqual(link.received, 3)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(owner.rejections, [])

    def test_gap(self) -> None:
        """
        A DATA frame beyond the next expected one drops the connection and
        is not handed on.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(data(1), data(2), data(4)))
        self.assertTrue(aborted(transport))
        self.assertEqual(link.received, 2)
        self.assertEqual(owner.frames, [("bob", engine_frame(n)) for n in (1, 2)])
        self.assertEqual(owner.reasons, ["frame 4 arrived, but the next expected is 3"])

    def test_data_received_unit(self) -> None:
        """
        L{PeerLink.data_received} itself: next frame, duplicate, gap.
        """
        link = FakeOwner().links["bob"]
        self.assertEqual(link.data_received(data(1)), engine_frame(1))
        link.accepted(1)
        self.assertIsNone(link.data_received(data(1)))
        self.assertEqual(link.duplicates, 1)
        self.assertRaises(LinkError, link.data_received, data(3))
        self.assertEqual(link.received, 1)

    def test_reconnect_flow(self) -> None:
        """
        Whole flow: frames sent while the connection is down reach the peer
        once the node redials, each exactly once and in order.
        """
        pair = Pair()
        send(pair.ab_link, 1)
        send(pair.ab_link, 2)
        pair.flush()
        pair.ab.close()
        self.assertIsNone(pair.ab_link.outbound)
        self.assertIsNone(pair.ba_link.inbound)
        send(pair.ab_link, 3)
        send(pair.ab_link, 4)
        pair.ab = Connection(pair.a, pair.b)
        self.assertEqual([seq for seq, _, _ in pair.ab_link.unacked], [3, 4])
        self.assertEqual(pair.ab_link.resent, 2)
        self.assertEqual(
            pair.b.frames, [("alice", engine_frame(n)) for n in (1, 2, 3, 4)]
        )
        self.assertEqual(pair.ba_link.duplicates, 0)
        pair.advance(1)
        self.assertEqual(list(pair.ab_link.unacked), [])
        self.assertEqual(pair.a.rejections + pair.b.rejections, [])

    def test_lost_in_flight(self) -> None:
        """
        Whole flow: frames written to a connection that died before they
        arrived are resent on the next one.
        """
        pair = Pair()
        send(pair.ab_link, 1)
        pair.flush()
        send(pair.ab_link, 2)
        send(pair.ab_link, 3)
        # The bytes are lost with the connection.
        pair.ab.client_io.stream = []
        pair.ab.close()
        pair.ab = Connection(pair.a, pair.b)
        self.assertEqual(pair.b.frames, [("alice", engine_frame(n)) for n in (1, 2, 3)])
        self.assertEqual(pair.ab_link.resent, 2)


class AckTests(SynchronousTestCase):
    def test_delayed_ack(self) -> None:
        """
        An accepted DATA frame is acknowledged on its own, on the connection
        it came on, after C{ack_delay}.
        """
        owner = FakeOwner(ack_delay=0.05)
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(data(1)))
        owner.time.advance(0.049)
        self.assertEqual(transport.value(), b"")
        proto.dataReceived(prefixed(data(2)))
        owner.time.advance(0.001)
        self.assertEqual(written(transport), [Ack(2)])
        owner.time.advance(1)
        self.assertEqual(transport.value(), b"")

    def test_ack_every(self) -> None:
        """
        After C{ack_every} unacknowledged frames, the ACK goes at once, and
        the delayed one is cancelled.
        """
        owner = FakeOwner(ack_every=3)
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(data(1), data(2)))
        self.assertEqual(transport.value(), b"")
        proto.dataReceived(prefixed(data(3)))
        self.assertEqual(written(transport), [Ack(3)])
        self.assertEqual(owner.time.getDelayedCalls(), [])
        proto.dataReceived(prefixed(data(4), data(5), data(6), data(7)))
        self.assertEqual(written(transport), [Ack(6)])
        owner.time.advance(1)
        self.assertEqual(written(transport), [Ack(7)])

    def test_duplicate_not_acked(self) -> None:
        """
        A duplicate starts no acknowledgement.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        link.received = 2
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(data(1)))
        owner.time.advance(1)
        self.assertEqual(transport.value(), b"")

    def test_piggybacked(self) -> None:
        """
        A DATA frame sent on the outbound connection carries the
        acknowledgement, and no ACK follows on the inbound one.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        inbound, in_transport = open_inbound(owner)
        _, out_transport = open_outbound(owner)
        inbound.dataReceived(prefixed(data(1), data(2)))
        send(link, 1)
        self.assertEqual(written(out_transport), [Data(1, 2, engine_frame(1))])
        owner.time.advance(1)
        self.assertEqual(in_transport.value(), b"")

    def test_not_piggybacked_when_away(self) -> None:
        """
        A frame kept while the outbound connection is down carries nothing
        now: the ACK still goes on the inbound connection.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        inbound, in_transport = open_inbound(owner)
        inbound.dataReceived(prefixed(data(1)))
        send(link, 1)
        owner.time.advance(1)
        self.assertEqual(written(in_transport), [Ack(1)])

    def test_ack_not_suppressed_by_unsent_frame(self) -> None:
        """
        A frame that was not written (its outbound connection was already
        dropped, its connectionLost not yet delivered) carried no
        acknowledgement: the ACK still goes on the inbound connection.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        inbound, in_transport = open_inbound(owner)
        outbound, out_transport = open_outbound(owner)
        # The peer breaks the dialed connection: this node aborts it; a
        # reactor delivers connectionLost on a later turn.
        outbound.dataReceived(b"\x00\x00\x00\x01\x00")
        self.assertTrue(aborted(out_transport))
        out_transport.clear()
        inbound.dataReceived(prefixed(data(1)))
        send(link, 1)
        self.assertEqual(out_transport.value(), b"")
        owner.time.advance(1)
        self.assertEqual(written(in_transport), [Ack(1)])

    def test_send_data_says_whether_written(self) -> None:
        """
        L{PeerProtocol.send_data} returns whether it wrote the frame: not
        once the connection is closing, dropped by this node, refused by
        the peer, or lost.
        """
        frame = engine_frame(1)
        head, body = data_head(1, 0, frame), encode_body(frame)
        owner = FakeOwner()
        link = owner.links["bob"]
        for close in [
            lambda proto: proto.drop("testing"),
            lambda proto: proto.dataReceived(prefixed(Refuse("no"))),
            lose,
        ]:
            proto, transport = open_outbound(owner)
            self.assertTrue(proto.send_data(head, body))
            self.assertEqual(written(transport), [Data(1, 0, frame)])
            close(proto)
            transport.clear()
            self.assertFalse(proto.send_data(head, body))
            self.assertEqual(transport.value(), b"")
        self.assertEqual(link.frames_out, 3)

    def test_no_inbound(self) -> None:
        """
        With the inbound connection gone, nothing is sent; the next HELLO
        answer tells the peer instead.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        inbound, in_transport = open_inbound(owner)
        inbound.dataReceived(prefixed(data(1)))
        lose(inbound)
        owner.time.advance(1)
        self.assertEqual(in_transport.value(), b"")
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob")))
        self.assertEqual(written(transport), [hello("alice", 1, 1, to="bob")])
        self.assertIs(link.inbound, proto)
        owner.time.advance(1)
        self.assertEqual(transport.value(), b"")

    def test_ack_trims_sender(self) -> None:
        """
        Acks reach the sender both ways: ACK frames on the connection it
        dialed and the ack field of DATA frames on the other; older ones
        change nothing.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        inbound, _ = open_inbound(owner)
        outbound, _ = open_outbound(owner)
        for n in (1, 2, 3):
            send(link, n)
        inbound.dataReceived(prefixed(data(1, ack=2)))
        self.assertEqual([seq for seq, _, _ in link.unacked], [3])
        outbound.dataReceived(prefixed(Ack(1)))
        self.assertEqual([seq for seq, _, _ in link.unacked], [3])
        outbound.dataReceived(prefixed(Ack(3)))
        self.assertEqual(list(link.unacked), [])
        self.assertEqual(owner.rejections, [])

    def test_ack_flow(self) -> None:
        """
        Whole flow: the receiver's ACK comes back on the connection the
        sender dialed, after the delay, and empties its buffer.
        """
        pair = Pair(ack_delay=0.05)
        send(pair.ab_link, 1)
        pair.flush()
        self.assertEqual(pair.b.frames, [("alice", engine_frame(1))])
        self.assertEqual(len(pair.ab_link.unacked), 1)
        pair.advance(0.05)
        self.assertEqual(list(pair.ab_link.unacked), [])

    def test_piggyback_flow(self) -> None:
        """
        Whole flow: the receiver's own DATA frame, on its own connection,
        acknowledges before any ACK is due.
        """
        pair = Pair()
        send(pair.ab_link, 1)
        pair.flush()
        send(pair.ba_link, 1)
        pair.flush()
        self.assertEqual(list(pair.ab_link.unacked), [])
        self.assertEqual(len(pair.ba_link.unacked), 1)
        self.assertEqual(pair.b.time.getDelayedCalls(), [])


class IncarnationTests(SynchronousTestCase):
    def test_restart_after_exchange(self) -> None:
        """
        A member that comes back as a new incarnation once frames were
        exchanged is refused, and its old connection stays the link's.  The
        new incarnation's connection is held until this node's dial reaches
        the member's address and finds the new incarnation there: then it
        is refused as a restart (not as a second process), and so is the
        dial.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        old, old_transport = open_inbound(owner, incarnation=2)
        old.dataReceived(prefixed(data(1)))
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=3)))
        # Answered, telling it that none of its frames are held: those of
        # incarnation 2 are not its own.
        self.assertEqual(written(transport), [hello("alice", 1, 0, to="bob")])
        self.assertIn(proto, link.held)
        self.assertEqual(owner.rejections, [])
        dial, dial_transport = dialed(owner)
        written(dial_transport)
        dial.dataReceived(prefixed(hello("bob", incarnation=3, to="alice")))
        [dial_refuse] = written(dial_transport)
        assert isinstance(dial_refuse, Refuse)
        self.assertIn("new incarnation", dial_refuse.reason)
        self.assertEqual(link.held, set())
        [refuse] = written(transport)
        assert isinstance(refuse, Refuse)
        self.assertEqual(refuse.reason, dial_refuse.reason)
        self.assertIn("new incarnation", refuse.reason)
        self.assertIn("restarted as a new incarnation", refuse.reason)
        self.assertTrue(closing(transport))
        self.assertEqual(owner.rejections, [(PEER, "bob", refuse.reason)] * 2)
        self.assertIs(link.inbound, old)
        self.assertEqual(link.incarnation, 2)
        self.assertFalse(old_transport.disconnecting)

    def test_restart_after_sending(self) -> None:
        """
        Frames sent to it count as exchanged, delivered or not.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        open_outbound(owner, incarnation=2)
        send(link, 1)
        proto, transport = dialed(owner)
        written(transport)
        proto.dataReceived(prefixed(hello("bob", incarnation=3, received=0)))
        [refuse] = written(transport)
        assert isinstance(refuse, Refuse)
        self.assertIn("new incarnation", refuse.reason)
        self.assertEqual(owner.rejections[0][1], "bob")

    def test_restart_before_exchange(self) -> None:
        """
        A new incarnation before anything was exchanged is served.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        open_inbound(owner, incarnation=2)
        dial, _ = open_outbound(owner, incarnation=2)
        lose(dial)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=3)))
        self.assertEqual(written(transport), [hello("alice", 1, 0, to="bob")])
        self.assertIsNot(link.inbound, proto)
        # The member's address answers as incarnation 3: it restarted.
        open_outbound(owner, incarnation=3)
        self.assertEqual(link.incarnation, 3)
        self.assertIs(link.inbound, proto)
        self.assertEqual(owner.rejections, [])

    def test_restart_flow(self) -> None:
        """
        Whole flow: the restarted member dials the survivor, which refuses
        it with the reason; the restarted member logs it.
        """
        events = observe(self)
        pair = Pair()
        send(pair.ab_link, 1)
        pair.flush()
        # The old bob is gone: its connections closed.
        pair.ab.close()
        pair.ba.close()
        reborn = FakeOwner("bob", incarnation=20)
        conn = Connection(reborn, pair.a)
        # Held until alice reaches bob's address, where the reborn answers.
        self.assertEqual(pair.a.rejections, [])
        Connection(pair.a, reborn)
        conn.flush()
        reasons = [(peer, reason) for _, peer, reason in pair.a.rejections]
        self.assertEqual(len(reasons), 2)
        self.assertEqual({peer for peer, _ in reasons}, {"bob"})
        self.assertTrue(all("new incarnation" in r for _, r in reasons), reasons)
        self.assertEqual(reborn.rejections, [])
        self.assertTrue(conn.client_io.disconnected)
        self.assertIsNone(reborn.links["alice"].outbound)
        # The reborn member is told why, on both connections.
        self.assertEqual(len(refusals(events)), 2)

    def test_survivor_dials_restarted(self) -> None:
        """
        Whole flow: the survivor dials the restarted member, which holds
        nothing of the old link; the survivor refuses it as a new
        incarnation, and the restarted member is told so by REFUSE (the
        C{received} of the survivor's HELLO, which counts frames of the old
        incarnation, is not held against the new one).
        """
        events = observe(self)
        pair = Pair()
        send(pair.ba_link, 1)
        pair.flush()
        self.assertEqual(pair.ab_link.received, 1)
        reborn = FakeOwner("bob", incarnation=20)
        Connection(pair.a, reborn)
        self.assertEqual(reborn.rejections, [])
        [(_, peer, reason)] = pair.a.rejections
        self.assertEqual(peer, "bob")
        self.assertIn("new incarnation", reason)
        self.assertEqual(
            [(e["log_level"], e["reason"]) for e in refusals(events)],
            [(LogLevel.warn, reason)],
        )
        # The refused connection replaced nothing of the old incarnation's.
        self.assertIs(pair.ab_link.outbound, pair.ab.client)
        self.assertEqual(pair.ab_link.incarnation, 2)


MISDIALED = (
    "'alice' meant to reach member 'bob', but this is 'carol': check the peer"
    " addresses of 'alice'"
)


class MisdialTests(SynchronousTestCase):
    """
    A dialer whose address for one peer leads to another member: its HELLO
    names the member it meant, and the acceptor refuses it before anything
    else.
    """

    def test_misdial_refused(self) -> None:
        """
        Whole flow: the acceptor refuses the HELLO, logs and counts the drop;
        the dialer, whose configuration is wrong, logs the REFUSE; both
        connections close and neither side records anything of the other.
        """
        events = observe(self)
        alice = FakeOwner("alice")
        carol = FakeOwner("carol", incarnation=3)
        conn = Connection(alice, carol, peer="bob")
        self.assertEqual(carol.rejections, [("10.0.0.8:50000", None, MISDIALED)])
        self.assertEqual(alice.rejections, [])
        self.assertTrue(conn.client_io.disconnected)
        self.assertTrue(conn.server_io.disconnected)
        self.assertIsNone(alice.links["bob"].outbound)
        self.assertIsNone(alice.links["bob"].incarnation)
        self.assertIsNone(carol.links["alice"].inbound)
        self.assertIsNone(carol.links["alice"].incarnation)
        self.assertEqual(
            [
                (e["log_level"], e["who"], e["address"], e["reason"])
                for e in drops(events)
            ],
            [(LogLevel.warn, "a connection", "10.0.0.8:50000", MISDIALED)],
        )
        self.assertEqual(
            [
                (e["log_level"], e["who"], e["address"], e["reason"])
                for e in refusals(events)
            ],
            [(LogLevel.warn, "member 'bob'", "10.0.0.9:9000", MISDIALED)],
        )

    def test_misdial_keeps_acceptor_buffer(self) -> None:
        """
        The HELLO of a dialer that meant another member does not acknowledge
        the acceptor's frames to it: they are all resent on the acceptor's
        own connection to that member, without a gap.
        """
        alice = FakeOwner("alice")
        carol = FakeOwner("carol")
        alice.links["bob"].received = 2
        for n in (1, 2, 3):
            send(carol.links["alice"], n)
        Connection(alice, carol, peer="bob")
        self.assertEqual(carol.reasons, [MISDIALED])
        self.assertEqual([seq for seq, _, _ in carol.links["alice"].unacked], [1, 2, 3])
        reach(alice, "carol", carol.incarnation)
        Connection(carol, alice)
        self.assertEqual(alice.frames, [("carol", engine_frame(n)) for n in (1, 2, 3)])
        self.assertEqual(alice.links["carol"].received, 3)
        self.assertEqual(alice.links["bob"].received, 2)
        self.assertEqual(alice.rejections, [])
        self.assertEqual(carol.reasons, [MISDIALED])

    def test_misdial_keeps_real_inbound(self) -> None:
        """
        A misdialed connection from a member does not replace the acceptor's
        real inbound connection from that member, which goes on carrying its
        frames.
        """
        alice = FakeOwner("alice")
        carol = FakeOwner("carol")
        reach(carol, "alice", alice.incarnation)
        real = Connection(alice, carol)
        link = carol.links["alice"]
        self.assertIs(link.inbound, real.server)
        Connection(alice, carol, peer="bob")
        self.assertEqual(carol.reasons, [MISDIALED])
        self.assertIs(link.inbound, real.server)
        self.assertFalse(real.server_io.disconnected)
        self.assertFalse(real.client_io.disconnected)
        self.assertIs(alice.links["carol"].outbound, real.client)
        send(alice.links["carol"], 1)
        real.flush()
        self.assertEqual(carol.frames, [("alice", engine_frame(1))])
        self.assertEqual(alice.rejections, [])

    def test_misdial_reported(self) -> None:
        """
        However many frames the dialer holds of the member it meant, even
        more than the acceptor ever sent it, the acceptor refuses with the
        reason (it does not drop the connection silently over the count),
        so the dialer finds out about its wrong address.
        """
        events = observe(self)
        alice = FakeOwner("alice")
        carol = FakeOwner("carol")
        alice.links["bob"].received = 5
        Connection(alice, carol, peer="bob")
        self.assertEqual(carol.reasons, [MISDIALED])
        self.assertEqual(alice.rejections, [])
        self.assertEqual([e["reason"] for e in refusals(events)], [MISDIALED])


DIFFERENT = (
    "'bob' lists members alice, bob; 'alice' lists alice, bob, carol ('bob'"
    " omits carol): every member must be given the same members"
)


class MemberListTests(SynchronousTestCase):
    """
    Members exchange nothing unless they were started with the same member
    list, which every HELLO carries.
    """

    def test_acceptor_refuses_other_list(self) -> None:
        """
        A HELLO listing other members is refused with both lists and the
        difference; nothing of the link is recorded.
        """
        owner = FakeOwner()
        reach(owner)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", members=("alice", "bob"))))
        self.assertEqual(written(transport), [Refuse(DIFFERENT, REFUSED_MEMBERS)])
        self.assertTrue(closing(transport))
        self.assertEqual(owner.rejections, [(PEER, None, DIFFERENT)])
        link = owner.links["bob"]
        self.assertIsNone(link.inbound)
        self.assertIsNone(link.incarnation)

    def test_difference_both_ways(self) -> None:
        """
        Members only one side lists, and members only the other lists, are
        both named.
        """
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", members=("bob", "dave", "erin"))))
        [refuse] = written(transport)
        assert isinstance(refuse, Refuse)
        self.assertEqual(
            refuse.reason,
            "'bob' lists members bob, dave, erin; 'alice' lists alice, bob, carol"
            " ('bob' omits alice, carol; only 'bob' lists dave, erin): every"
            " member must be given the same members",
        )

    def test_long_lists_shortened(self) -> None:
        """
        A long list is shown by its first eight names and its length, so
        the reason stays a sentence.
        """
        many = tuple(sorted(["alice", "bob", *(f"m{i:02}" for i in range(30))]))
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", members=many)))
        [refuse] = written(transport)
        assert isinstance(refuse, Refuse)
        self.assertIn("m05 ... (32 in all)", refuse.reason)
        self.assertIn("only 'bob' lists m00, m01", refuse.reason)
        self.assertIn("... (30 in all)", refuse.reason)
        self.assertLess(len(refuse.reason), 400)

    def test_unknown_member_told_the_difference(self) -> None:
        """
        A member this node does not list, listing itself, hears how the
        lists differ, not only that it is no member.
        """
        owner = FakeOwner(members=("alice", "bob"))
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("carol", members=MEMBERS)))
        [refuse] = written(transport)
        assert isinstance(refuse, Refuse)
        self.assertEqual(
            refuse.reason,
            "'carol' lists members alice, bob, carol; 'alice' lists alice, bob"
            " (only 'carol' lists carol): every member must be given the same"
            " members",
        )

    def test_empty_list_refused(self) -> None:
        """
        A HELLO of a known member with no list at all is refused too (no node
        sends one); an unknown name with none is refused as no member.
        """
        owner = FakeOwner()
        reach(owner)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", members=())))
        [refuse] = written(transport)
        assert isinstance(refuse, Refuse)
        self.assertIn("'bob' lists members none; 'alice' lists", refuse.reason)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("mallory", members=())))
        [refuse] = written(transport)
        assert isinstance(refuse, Refuse)
        self.assertIn("'mallory' is not a member", refuse.reason)

    def test_dialer_refuses_other_list(self) -> None:
        """
        The dialer checks the answer's list too, and records nothing of it.
        """
        owner = FakeOwner()
        proto, transport = dialed(owner)
        written(transport)
        proto.dataReceived(prefixed(hello("bob", to="alice", members=("alice", "bob"))))
        self.assertEqual(written(transport), [Refuse(DIFFERENT, REFUSED_MEMBERS)])
        link = owner.links["bob"]
        self.assertIsNone(link.outbound)
        self.assertIsNone(link.incarnation)
        self.assertIsNone(link.reached)

    def test_sends_configured_list_and_view(self) -> None:
        """
        A HELLO lists the members the node was started with, sorted, and
        the id of the view it is in.
        """
        owner = FakeOwner(members=("carol", "alice", "bob"))
        owner.view = View(4, ("alice", "bob"))
        _, transport = dialed(owner)
        [sent] = written(transport)
        assert isinstance(sent, Hello)
        self.assertEqual((sent.view, sent.members), (4, MEMBERS))

    def test_views_not_compared(self) -> None:
        """
        After a view change the view's members differ from the configured
        list: a member in view 1 is served, by a node in view 1 or one still
        in view 0; what must match is the configured list, so a HELLO that
        lists only the view's members is refused.
        """
        owner = FakeOwner()
        owner.view = View(1, ("alice", "bob"))
        for view in (0, 1, 7):
            proto, _ = open_inbound(owner)
            self.assertIs(owner.links["bob"].inbound, proto)
            proto, _ = accepted(owner)
            proto.dataReceived(prefixed(hello("bob", view=view)))
            self.assertIs(owner.links["bob"].inbound, proto)
        self.assertEqual(owner.rejections, [])
        proto, _ = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", view=1, members=("alice", "bob"))))
        self.assertEqual(owner.reasons, [DIFFERENT])

    def test_view_reported_on_connect(self) -> None:
        """
        The dialer's "connected" line says when the two are in different
        views.
        """
        events = observe(self)
        owner = FakeOwner()
        proto, transport = dialed(owner)
        written(transport)
        proto.dataReceived(prefixed(hello("bob", to="alice", view=2)))
        [line] = [e for e in events if "connected to member" in e["log_format"]]
        self.assertIn("(it is in view 2, this node in view 0)", formatEvent(line))

    def test_both_sides_refuse(self) -> None:
        """
        Whole flow: a member started with fewer members and one started
        with all refuse each other's connections, each logging the other's
        REFUSE; neither records anything of the other.
        """
        events = observe(self)
        short = FakeOwner("alice", members=("alice", "bob"))
        full = FakeOwner("bob", incarnation=2)
        Connection(short, full)
        Connection(full, short)
        self.assertEqual(len(short.rejections), 1)
        self.assertEqual(len(full.rejections), 1)
        self.assertIn("'alice' lists members alice, bob;", full.reasons[0])
        self.assertIn("'bob' lists members alice, bob, carol;", short.reasons[0])
        self.assertEqual(
            sorted(e["reason"] for e in refusals(events)),
            sorted(short.reasons + full.reasons),
        )
        self.assertIsNone(short.links["bob"].incarnation)
        self.assertIsNone(full.links["alice"].incarnation)


def claimant_reason(holder: int, claimant: int, at: str = PEER) -> str:
    return (
        f"another process holds the name 'bob': 'alice' reaches 'bob' at {at}"
        f" (incarnation {holder:016x}), and this connection comes from a second"
        f" process started as 'bob' (incarnation {claimant:016x}); stop the"
        " second one or give it a name of its own"
    )


class ClaimantTests(SynchronousTestCase):
    """
    A name is bound to the process this node reaches at the member's
    configured address: an accepted connection claiming the member is served
    only if it comes from that process's incarnation.
    """

    def test_refused_while_holder_connected(self) -> None:
        """
        While the dialed connection to bob is open, a HELLO claiming bob with
        another incarnation is a second process: refused at once, saying
        where the name's holder is; the link and its connections stay as
        they were.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        outbound, out_io = open_outbound(owner, incarnation=2)
        inbound, in_io = open_inbound(owner, incarnation=2)
        inbound.dataReceived(prefixed(data(1)))
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=3), data(1)))
        reason = claimant_reason(2, 3)
        self.assertEqual(written(transport), [Refuse(reason)])
        self.assertTrue(closing(transport))
        self.assertEqual(owner.rejections, [(PEER, "bob", reason)])
        self.assertIs(link.inbound, inbound)
        self.assertIs(link.outbound, outbound)
        self.assertEqual((link.incarnation, link.received), (2, 1))
        self.assertEqual(owner.frames, [("bob", engine_frame(1))])
        self.assertEqual(link.held, set())
        self.assertFalse(in_io.disconnecting or out_io.disconnecting)

    def test_refused_before_any_exchange(self) -> None:
        """
        Even when nothing was exchanged yet (so a new incarnation would be
        taken), another incarnation than the one at bob's address is not.
        """
        owner = FakeOwner()
        open_outbound(owner, incarnation=2)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=3)))
        self.assertEqual(written(transport), [Refuse(claimant_reason(2, 3))])
        self.assertIsNone(owner.links["bob"].inbound)

    def test_held_until_reached(self) -> None:
        """
        Before this node's dial reached bob, a HELLO claiming bob is answered
        but held: what follows is not read, and nothing of the link is
        touched.  Once the dial is answered by the same incarnation, the
        connection is served and what it sent is taken.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        link.received = 4
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=2)))
        # Told 0: nothing held is known to be this incarnation's.
        self.assertEqual(written(transport), [hello("alice", 1, 0, to="bob")])
        self.assertEqual(link.held, {proto})
        proto.dataReceived(prefixed(data(5)))
        self.assertEqual(owner.frames, [])
        self.assertIsNone(link.inbound)
        self.assertIsNone(link.incarnation)
        self.assertFalse(proto.is_open)
        open_outbound(owner, incarnation=2)
        self.assertIs(link.inbound, proto)
        self.assertEqual(link.held, set())
        self.assertEqual(owner.frames, [("bob", engine_frame(5))])
        self.assertEqual(link.received, 5)
        self.assertEqual(owner.rejections, [])
        # The held connection's timer was stopped: it stays.
        owner.time.advance(100)
        self.assertTrue(proto.is_open)

    def test_held_then_refused(self) -> None:
        """
        A held connection whose incarnation is not the one the dial finds
        at bob's address is refused with the sentence, after its answer.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=3), data(1)))
        written(transport)
        dial, dial_io = dialed(owner)
        dial_io.clear()
        dial.dataReceived(prefixed(hello("bob", incarnation=2, to="alice")))
        self.assertIs(link.outbound, dial)
        reason = claimant_reason(2, 3)
        self.assertEqual(written(transport), [Refuse(reason)])
        self.assertEqual(owner.rejections, [(PEER, "bob", reason)])
        self.assertEqual(owner.frames, [])
        self.assertEqual(link.incarnation, 2)
        self.assertIsNone(link.inbound)
        self.assertEqual(link.held, set())

    def test_held_times_out(self) -> None:
        """
        A held connection not settled within the handshake timeout is
        dropped, saying why it was held.
        """
        owner = FakeOwner(handshake_timeout=3.0)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=3)))
        owner.time.advance(3)
        self.assertTrue(aborted(transport))
        self.assertEqual(
            owner.reasons,
            [
                "no handshake within 3 s: this node has not reached 'bob' at its"
                " configured address, so it cannot tell whether this connection"
                " comes from the process that holds the name"
            ],
        )
        self.assertEqual(owner.links["bob"].held, set())
        self.assertEqual(owner.time.getDelayedCalls(), [])

    def test_held_connection_lost(self) -> None:
        """
        A held connection that closes is forgotten; a later dial serves
        nothing of it.
        """
        owner = FakeOwner()
        proto, _ = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=2)))
        lose(proto)
        self.assertEqual(owner.links["bob"].held, set())
        open_outbound(owner, incarnation=2)
        self.assertIsNone(owner.links["bob"].inbound)

    def test_held_takes_refuse(self) -> None:
        """
        A REFUSE as the first frame after the HELLO (the dialer refused this
        side's answer) is taken at once, logged, not counted.
        """
        events = observe(self)
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", incarnation=3)))
        proto.dataReceived(prefixed(Refuse("not you")))
        self.assertTrue(closing(transport))
        self.assertEqual(owner.rejections, [])
        self.assertEqual([e["reason"] for e in refusals(events)], ["not you"])
        self.assertEqual(owner.links["bob"].held, set())

    def test_held_pauses_reading(self) -> None:
        """
        A held connection stops its transport once it holds more than the
        handshake limit, and resumes it when served.
        """
        owner = FakeOwner(max_frame=HANDSHAKE_MAX_FRAME * 4)
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob")))
        self.assertEqual(transport.producerState, "producing")
        big = Data(1, 0, Frame(0, 1, ((1, b"z" * HANDSHAKE_MAX_FRAME),)))
        proto.dataReceived(prefixed(big))
        self.assertEqual(transport.producerState, "paused")
        self.assertEqual(owner.frames, [])
        open_outbound(owner)
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(owner.frames, [("bob", big.frame)])

    def test_startup_both_held(self) -> None:
        """
        Whole flow at start-up: each side's first inbound connection is held
        until its own dial is answered, and since answers are not held, both
        are served.
        """
        a = FakeOwner("alice", incarnation=1)
        b = FakeOwner("bob", incarnation=2)
        ab = Connection(a, b)
        self.assertEqual(len(b.links["alice"].held), 1)
        self.assertIs(a.links["bob"].outbound, ab.client)
        ba = Connection(b, a)
        ab.flush()
        self.assertIs(b.links["alice"].inbound, ab.server)
        self.assertIs(a.links["bob"].inbound, ba.server)
        self.assertEqual(a.rejections + b.rejections, [])
        send(a.links["bob"], 1)
        ab.flush()
        self.assertEqual(b.frames, [("alice", engine_frame(1))])

    def test_second_process_flow(self) -> None:
        """
        Whole flow: bob and alice are connected; a second process started as
        bob dials alice again and again.  Each time it is refused and
        counted, the second process is told why, and nothing of it reaches
        alice's engine.  (That alice logs it once a minute, not once per
        dial, is her listening factory's L{RepeatFilter}: see
        tests/test_node_mistakes.py.)
        """
        events = observe(self)
        pair = Pair()
        second = FakeOwner("bob", incarnation=99)
        for _ in range(5):
            conn = Connection(second, pair.a)
            self.assertTrue(conn.client_io.disconnected)
        reason = claimant_reason(2, 99, at="10.0.0.9:9000")
        self.assertEqual(pair.a.reasons, [reason] * 5)
        self.assertEqual([e["reason"] for e in refusals(events)], [reason] * 5)
        self.assertEqual(second.rejections, [])
        self.assertEqual(pair.a.frames, [])
        self.assertIs(pair.ab_link.inbound, pair.ba.server)
        send(pair.ba_link, 1)
        pair.flush()
        self.assertEqual(pair.a.frames, [("bob", engine_frame(1))])

    def test_hello_too_large_for_the_limit(self) -> None:
        """
        A node whose HELLO, with its member list, would not fit the
        handshake limit refuses to start, saying so.
        """
        names = tuple(sorted(["alice", *(f"{i:03}" + "x" * 250 for i in range(300))]))
        with self.assertRaises(ValueError) as caught:
            FakeOwner(members=names)
        self.assertIn("over the limit of 65536", str(caught.exception))


class ReplaceTests(SynchronousTestCase):
    def test_second_inbound_replaces_first(self) -> None:
        """
        A new connection from the same member (same incarnation) replaces
        the first, which is aborted without counting a rejection; the first
        one's late frames and close change nothing.
        """
        events = observe(self)
        owner = FakeOwner()
        link = owner.links["bob"]
        old, old_transport = open_inbound(owner)
        old.dataReceived(prefixed(data(1)))
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob", received=0)))
        self.assertEqual(written(transport), [hello("alice", 1, 1, to="bob")])
        self.assertIs(link.inbound, proto)
        self.assertTrue(aborted(old_transport))
        self.assertEqual(owner.rejections, [])
        old.dataReceived(prefixed(data(2)))
        self.assertEqual(link.received, 1)
        lose(old)
        self.assertIs(link.inbound, proto)
        proto.dataReceived(prefixed(data(2)))
        self.assertEqual(link.received, 2)
        self.assertTrue(
            any("reconnected" in e["log_format"] for e in events), list(events)
        )

    def test_replaced_connection_gets_no_ack(self) -> None:
        """
        The HELLO answer on the new connection told the peer what is held:
        the old connection's pending ACK is not sent anywhere.
        """
        owner = FakeOwner()
        old, old_transport = open_inbound(owner)
        old.dataReceived(prefixed(data(1)))
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(hello("bob")))
        written(transport)
        old_transport.clear()
        owner.time.advance(1)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(old_transport.value(), b"")


class EngineRejectionTests(SynchronousTestCase):
    def test_protocol_error(self) -> None:
        """
        A frame the engine rejects drops the connection with the engine's
        message, and is not counted as held nor acknowledged.
        """
        owner = FakeOwner()
        link = owner.links["bob"]
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(data(1)))
        owner.refuse = ProtocolError("bob", "clock went backwards")
        proto.dataReceived(prefixed(data(2), data(3)))
        self.assertTrue(aborted(transport))
        self.assertEqual(
            owner.rejections,
            [(PEER, "bob", "frame from 'bob': clock went backwards")],
        )
        self.assertEqual(link.received, 1)
        owner.time.advance(1)
        self.assertEqual(transport.value(), b"")

    def test_first_frame_rejected(self) -> None:
        owner = FakeOwner()
        owner.refuse = ProtocolError("bob", "wrong view")
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(data(1)))
        self.assertEqual(owner.links["bob"].received, 0)
        owner.time.advance(1)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(owner.reasons, ["frame from 'bob': wrong view"])


class HeartbeatTests(SynchronousTestCase):
    """
    L{PeerLink.heartbeat}: idle connections get ACK frames; quiet and
    blocked ones are dropped, without counting as rejections.
    """

    def test_idle_connections_get_acks(self) -> None:
        owner = FakeOwner()
        out_proto, out_transport = open_outbound(owner)
        in_proto, in_transport = open_inbound(owner)
        written(out_transport)
        link = owner.links["bob"]
        owner.time.advance(1.0)
        in_proto.dataReceived(prefixed(Ack(0)))
        out_proto.dataReceived(prefixed(Ack(0)))
        link.heartbeat(owner.time.seconds(), 1.0, 5.0)
        self.assertEqual(written(out_transport), [Ack(0)])
        self.assertEqual(written(in_transport), [Ack(0)])
        # Sent just now: nothing more until another interval passes.
        link.heartbeat(owner.time.seconds(), 1.0, 5.0)
        self.assertEqual(written(out_transport), [])

    def test_quiet_connection_dropped(self) -> None:
        owner = FakeOwner()
        events = observe(self)
        _, transport = open_outbound(owner)
        owner.time.advance(5.5)
        owner.links["bob"].heartbeat(owner.time.seconds(), 1.0, 5.0)
        self.assertTrue(aborted(transport))
        self.assertIn("nothing received for 5.5 s", drops(events)[0]["reason"])
        self.assertEqual(owner.rejections, [])

    def test_peer_that_reads_nothing_is_dropped(self) -> None:
        owner = FakeOwner()
        events = observe(self)
        proto, transport = open_outbound(owner)
        link = owner.links["bob"]
        # The transport says its buffer is full; the peer still talks.
        proto.pauseProducing()
        for _ in range(3):
            owner.time.advance(2.0)
            proto.dataReceived(prefixed(Ack(0)))
            link.heartbeat(owner.time.seconds(), 1.0, 5.0)
        self.assertTrue(aborted(transport))
        self.assertIn("has read nothing for 6.0 s", drops(events)[0]["reason"])
        self.assertEqual(owner.rejections, [])

    def test_reading_again_clears_the_block(self) -> None:
        owner = FakeOwner()
        proto, transport = open_outbound(owner)
        link = owner.links["bob"]
        proto.pauseProducing()
        owner.time.advance(4.0)
        proto.resumeProducing()
        for _ in range(3):
            owner.time.advance(2.0)
            proto.dataReceived(prefixed(Ack(0)))
            link.heartbeat(owner.time.seconds(), 1.0, 5.0)
        self.assertFalse(aborted(transport))
        self.assertIs(link.outbound, proto)


SECRET = b"a group secret of enough bytes"


class GroupSecretTests(SynchronousTestCase):
    """
    With a pre-shared secret, a connection opens only after both sides
    proved they hold it, over fresh nonces from both.
    """

    def test_same_secret_opens_both_ways(self) -> None:
        pair = Pair(secret=SECRET)
        self.assertIs(pair.ab_link.outbound, pair.ab.client)
        self.assertIs(pair.ba_link.inbound, pair.ab.server)
        self.assertIs(pair.ba_link.outbound, pair.ba.client)
        send(pair.ab_link, 1)
        pair.flush()
        self.assertEqual([p for p, _ in pair.b.frames], ["alice"])
        self.assertEqual(pair.a.rejections + pair.b.rejections, [])

    def test_nonces_are_fresh(self) -> None:
        first, second = Pair(secret=SECRET), Pair(secret=SECRET)
        self.assertNotEqual(
            first.ab.client.handshake.nonce, second.ab.client.handshake.nonce
        )
        self.assertEqual(len(first.ab.client.handshake.nonce), 32)

    def test_wrong_secret_refused(self) -> None:
        events = observe(self)
        a = FakeOwner("alice", incarnation=1, secret=SECRET)
        b = FakeOwner("bob", incarnation=2, secret=b"another secret, also long")
        Connection(a, b)
        self.assertIn("failed the group secret check", b.reasons)
        self.assertIsNone(b.links["alice"].inbound)
        self.assertIsNone(a.links["bob"].outbound)
        # Nothing of the link was touched by the failed attempt.
        self.assertIsNone(b.links["alice"].incarnation)
        self.assertTrue(refusals(events))

    def test_secret_on_one_side_only(self) -> None:
        with_secret = FakeOwner("alice", incarnation=1, secret=SECRET)
        without = FakeOwner("bob", incarnation=2)
        Connection(with_secret, without)
        self.assertTrue(
            any(
                "uses a group secret but this node has none" in r
                for r in without.reasons
            )
        )
        Connection(without, with_secret)
        self.assertTrue(
            any("requires the group secret" in r for r in with_secret.reasons)
        )

    def test_recorded_handshake_cannot_be_replayed(self) -> None:
        a = FakeOwner("alice", incarnation=1, secret=SECRET)
        b = FakeOwner("bob", incarnation=2, secret=SECRET)
        reach(b, "alice", 1)
        proto, transport = dialed(a)
        hello_bytes = transport.value()
        transport.clear()
        acceptor, acceptor_io = accepted(b)
        acceptor.dataReceived(hello_bytes)
        proto.dataReceived(acceptor_io.value())
        acceptor_io.clear()
        recorded = hello_bytes + transport.value()
        acceptor.dataReceived(transport.value())
        self.assertIs(b.links["alice"].inbound, acceptor)
        # The same bytes, played to a new connection, meet a new nonce.
        replayed, _ = accepted(b)
        replayed.dataReceived(recorded)
        self.assertIn("failed the group secret check", b.reasons)
        self.assertIs(b.links["alice"].inbound, acceptor)

    def test_stranger_cannot_claim_an_incarnation(self) -> None:
        """
        A stranger that claims a member's name but fails the secret check
        changes nothing, so the real member is let in afterwards.
        """
        b = FakeOwner("bob", incarnation=2, secret=SECRET)
        mallory = FakeOwner("alice", incarnation=666, secret=b"guessed secret, wrong")
        Connection(mallory, b)
        self.assertIsNone(b.links["alice"].incarnation)
        alice = FakeOwner("alice", incarnation=1, secret=SECRET)
        Connection(alice, b)
        Connection(b, alice)
        self.assertEqual(b.links["alice"].incarnation, 1)
        self.assertIsNotNone(b.links["alice"].inbound)

    def test_member_list_covered(self) -> None:
        """
        A HELLO's member list changed on the way (here so that two members
        started with different lists seem to agree) fails the secret check:
        each side's MAC covers its own list.
        """
        a = FakeOwner("alice", incarnation=1, secret=SECRET, members=("alice", "bob"))
        b = FakeOwner("bob", incarnation=2, secret=SECRET)
        reach(b, "alice", 1)

        def forge(raw: bytes, members: tuple[str, ...]) -> bytes:
            frames = [decode(f) for f in split(raw)]
            return prefixed(
                *(
                    attrs.evolve(f, members=members) if isinstance(f, Hello) else f
                    for f in frames
                )
            )

        dialer, dialer_io = dialed(a)
        acceptor, acceptor_io = accepted(b)
        acceptor.dataReceived(forge(dialer_io.value(), MEMBERS))
        dialer_io.clear()
        dialer.dataReceived(forge(acceptor_io.value(), ("alice", "bob")))
        acceptor_io.clear()
        acceptor.dataReceived(dialer_io.value())
        self.assertEqual(b.reasons, ["failed the group secret check"])
        self.assertIsNone(b.links["alice"].inbound)
        self.assertEqual(a.rejections, [])

    def test_data_before_proof_refused(self) -> None:
        b = FakeOwner("bob", incarnation=2, secret=SECRET)
        acceptor, _ = accepted(b)
        acceptor.dataReceived(
            prefixed(
                attrs.evolve(hello("alice", 1, to="bob"), nonce=b"n" * 32), data(1)
            )
        )
        self.assertIn("expected the group-secret proof (AUTH)", b.reasons)
        self.assertEqual(b.frames, [])


class SlowLinkTests(SynchronousTestCase):
    """
    A slow link is not a dead one.
    """

    def test_frame_arriving_slowly_keeps_the_connection(self) -> None:
        owner = FakeOwner(max_frame=1 << 20)
        proto, transport = open_inbound(owner)
        raw = prefixed(data(1, clock=1))
        big = prefixed(Data(2, 0, Frame(0, 2, ((2, b"p" * 60000),))))
        proto.dataReceived(raw)
        link = owner.links["bob"]
        for start in range(0, len(big), 6000):
            owner.time.advance(1.0)
            proto.dataReceived(big[start : start + 6000])
            link.heartbeat(owner.time.seconds(), 0.5, 2.0)
        self.assertFalse(aborted(transport))
        self.assertEqual(len(owner.frames), 2)

    def test_blocked_writer_with_progress_keeps_the_connection(self) -> None:
        """
        A peer that reads more slowly than this side writes keeps the
        write buffer from ever draining, but its acknowledgements show it
        reads: that is no reason to drop it.
        """
        owner = FakeOwner()
        proto, transport = open_outbound(owner)
        link = owner.links["bob"]
        proto.pauseProducing()
        for n in range(1, 6):
            send(link, n)
            owner.time.advance(2.0)
            proto.dataReceived(prefixed(Ack(n)))
            link.heartbeat(owner.time.seconds(), 1.0, 5.0)
        self.assertFalse(aborted(transport))


class JoiningTests(SynchronousTestCase):
    """
    What links do for members added at run time: answer who listens here,
    make a link for a member that gives its address, and give their own.
    """

    def test_who_is_answered(self) -> None:
        """
        A WHO of this group is answered with HERE and the connection closed
        gently; nothing is counted as a rejection.
        """
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(Who(GROUP)))
        self.assertEqual(written(transport), [owner.here()])
        self.assertTrue(closing(transport))
        self.assertEqual(owner.rejections, [])
        self.assertFalse(proto.is_open)

    def test_who_of_another_group(self) -> None:
        owner = FakeOwner()
        proto, transport = accepted(owner)
        proto.dataReceived(prefixed(Who("other")))
        [refuse] = written(transport)
        self.assertEqual(refuse, Refuse(owner.reasons[0], REFUSED_GROUP))
        self.assertIn("'other' is not this node's group", owner.reasons[0])

    def test_who_on_a_dialed_connection(self) -> None:
        """
        Only an acceptor answers WHO: a dialed peer that sends one is not
        the member dialed.
        """
        owner = FakeOwner()
        proto, transport = dialed(owner)
        written(transport)
        proto.dataReceived(prefixed(Who(GROUP)))
        self.assertEqual(owner.reasons, ["the first frame was not a HELLO"])

    def test_stranger_with_an_address_gets_a_link(self) -> None:
        """
        A HELLO from a member the group was not started with, giving its
        address and the same founding list, gets a link, held until this
        node's dial to that address reaches the same process.
        """
        owner = FakeOwner()
        proto, _ = accepted(owner)
        frame = attrs.evolve(hello("dave"), address="tcp:host=d:port=4")
        proto.dataReceived(prefixed(frame))
        self.assertEqual(owner.added, [("dave", "tcp:host=d:port=4")])
        self.assertEqual(owner.links["dave"].held, {proto})
        self.assertEqual(owner.rejections, [])
        owner.links["dave"].reached_process(2, "d:4")
        self.assertIs(owner.links["dave"].inbound, proto)

    def test_stranger_without_an_address(self) -> None:
        owner = FakeOwner()
        proto, _transport = accepted(owner)
        proto.dataReceived(prefixed(hello("dave")))
        self.assertEqual(owner.added, [])
        self.assertIn("'dave' is not a member", owner.reasons[0])

    def test_stranger_with_other_founders(self) -> None:
        """
        A member that joins lists the founding members it was told of; a
        different list is refused before any link is made.
        """
        owner = FakeOwner()
        proto, _transport = accepted(owner)
        frame = attrs.evolve(hello("dave", members=("alice", "bob")), address="d:4")
        proto.dataReceived(prefixed(frame))
        self.assertEqual(owner.added, [])
        self.assertIn("every member must be given the same members", owner.reasons[0])

    def test_stranger_when_the_group_is_full(self) -> None:
        owner = FakeOwner()
        owner.take_strangers = False
        proto, _transport = accepted(owner)
        proto.dataReceived(prefixed(attrs.evolve(hello("dave"), address="d:4")))
        self.assertEqual(
            owner.reasons,
            ["'dave' is not a member, and this group takes no more members"],
        )
        self.assertNotIn("dave", owner.links)

    def test_stranger_with_a_secret(self) -> None:
        """
        With a group secret, nothing is made for a stranger until it proved
        the secret: a wrong proof leaves no link behind.
        """
        owner = FakeOwner(secret=b"s" * 32)
        proto, transport = accepted(owner)
        frame = attrs.evolve(hello("dave"), nonce=b"n" * 16, address="d:4")
        proto.dataReceived(prefixed(frame))
        [answer] = written(transport)
        assert isinstance(answer, Hello)
        self.assertEqual((answer.peer, answer.received), ("dave", 0))
        self.assertEqual(owner.added, [])
        proto.dataReceived(prefixed(Auth(bytes(32))))
        self.assertEqual(owner.added, [])
        self.assertIn("failed the group secret check", owner.reasons[0])

    def test_joined_member_gives_its_address(self) -> None:
        """
        A member not in the founding list says where it listens in every
        HELLO; a founding member does not.
        """
        owner = FakeOwner("dave")
        owner.advertise = "tcp:host=d:port=4"
        _, transport = dialed(owner, "bob")
        [mine] = written(transport)
        assert isinstance(mine, Hello)
        self.assertEqual(mine.address, "tcp:host=d:port=4")
        founder = FakeOwner()
        founder.advertise = "tcp:host=a:port=1"
        _, transport = dialed(founder, "bob")
        [theirs] = written(transport)
        assert isinstance(theirs, Hello)
        self.assertEqual(theirs.address, "")
