"""
Hostile bytes: fuzz the handshake and the link protocol of
L{isis_twisted.net.link} with hypothesis.

Random frames, truncated frames, wrong types, absurd lengths and counts,
valid frames in the wrong state: whatever a peer sends, it must end in the
typed "log, count, drop the connection" path (or wait for more bytes), never
in an exception escaping into the reactor, a hang or a buffer that grows
without bound.

Each connection runs on a L{StringTransport} fed by hand, next to L{Model},
a small reference of what the link protocol promises: the outcome of each
frame, what the owner is handed, the state of every link and what is
written back.  The bytes fed are compared with what the model expects after
every chunk, and the final state after the last one.
"""

from __future__ import annotations

import contextlib
import datetime
import struct
from collections.abc import Iterable, Sized
from itertools import pairwise
from typing import Literal

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from OpenSSL import SSL
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import Logger, LogLevel
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from isis_twisted.core.engine import Engine, Frame, ProtocolError
from isis_twisted.core.handshake import HANDSHAKE_MAX_FRAME
from isis_twisted.core.wire import (
    DATA,
    HELLO,
    MAC_SIZE,
    MAX_NONCE,
    MAX_U64,
    REFUSE,
    VERSION,
    Ack,
    Auth,
    Data,
    Hello,
    Here,
    Refuse,
    Who,
    WireError,
    WireFrame,
    decode,
    encode,
)
from isis_twisted.net.connection import PeerFactory, PeerProtocol
from isis_twisted.net.link import PeerLink
from tests.test_link import (
    GROUP,
    MEMBERS,
    PEER,
    PEER_ADDRESS,
    FakeOwner,
    accepted,
    dialed,
    engine_frame,
    open_inbound,
    open_outbound,
    prefixed,
    reach,
    send,
    split,
)

_LENGTH = struct.Struct(">I")
_U16 = struct.Struct(">H")
_DATA_HEAD = struct.Struct(">BBQQIQI")
_MESSAGE_HEAD = struct.Struct(">QI")
MAX_U32 = (1 << 32) - 1
SECRET = b"sixteen or more bytes of group secret"

Side = Literal["accept", "dial"]
State = Literal[
    "waiting",
    "authenticating",
    "held",
    "open",
    "aborted",
    "refused",
    "turned",
    "answered",
]
"""
What a connection is doing:

  - C{waiting}: in the handshake, waiting for the peer's HELLO;
  - C{authenticating}: in a group with a secret, waiting for the peer's AUTH;
  - C{held}: accepted, its HELLO answered, waiting for this node's dial to
    the member's address to say whether it comes from the process there;
  - C{open}: past the handshake;
  - C{aborted}: dropped for breaking the protocol, counted, no REFUSE sent;
  - C{refused}: dropped for breaking the protocol, counted, REFUSE sent;
  - C{turned}: the peer sent REFUSE; closed, logged, not counted.
"""

fuzz = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class EngineOwner(FakeOwner):
    """
    A L{FakeOwner} whose frames go through a real L{Engine}, which raises
    L{ProtocolError} for a frame of another view, a clock that goes back or a
    message stamped out of order, as a node's engine does.
    """

    def __init__(self, *, secret: bytes | None = None) -> None:
        super().__init__("alice", secret=secret)
        self.engine = Engine(self.me, self.members)
        # A member not started with the group is refused as one too many.
        self.take_strangers = False

    def frame_received(self, peer: str, frame: Frame) -> None:
        self.engine.receive(peer, frame)
        super().frame_received(peer, frame)


# -- the reference model ------------------------------------------------------


class LinkModel:
    """
    What L{Model} expects of one L{PeerLink}.
    """

    @classmethod
    def stranger(cls) -> LinkModel:
        """
        The model of a link not made yet: a member added at run time.
        """
        return cls(PeerLink(FakeOwner(), "bob", 1, 0.05))

    def __init__(self, link: PeerLink) -> None:
        self.next_seq = link.next_seq
        self.received = link.received
        self.incarnation = link.incarnation
        self.reached = link.reached
        self.unacked = [seq for seq, _, _ in link.unacked]
        self.frames_in = link.frames_in
        self.duplicates = link.duplicates

    def state(self) -> tuple[object, ...]:
        return (
            self.next_seq,
            self.received,
            self.incarnation,
            self.reached,
            self.unacked,
            self.frames_in,
            self.duplicates,
        )


def link_state(link: PeerLink) -> tuple[object, ...]:
    """
    The part of a link's state that L{LinkModel} follows.
    """
    return (
        link.next_seq,
        link.received,
        link.incarnation,
        link.reached,
        [seq for seq, _, _ in link.unacked],
        link.frames_in,
        link.duplicates,
    )


def sketch(frame: WireFrame) -> object:
    """
    A written frame with what the model cannot know blanked out: nonces and
    MACs are random, a DATA frame is named by its sequence number, a REFUSE's
    reason is checked against the rejection instead.
    """
    if isinstance(frame, Hello):
        return attrs.evolve(frame, nonce=bytes(len(frame.nonce)))
    if isinstance(frame, Auth):
        return Auth(bytes(len(frame.mac)))
    if isinstance(frame, Data):
        return ("DATA", frame.seq)
    if isinstance(frame, Refuse):
        return Refuse("")
    return frame


class Model:
    """
    A reference of what a L{PeerProtocol} promises to do with the bytes a
    peer sends: split them into frames under the length limit of the moment,
    and take each frame in turn until one ends the connection.

    @ivar state: See L{State}.
    @ivar buffer: The bytes of an incomplete frame, waiting for the rest.
    @ivar peer: Whom a rejection is to name.
    @ivar hint: A part of the reason a rejection is to give.
    @ivar exact: The whole reason, when the model knows it.
    @ivar delivered: What the owner is to be handed, in order.
    @ivar written: L{sketch}es of what is to be written, ACKs left out.
    """

    def __init__(self, owner: FakeOwner, side: Side, state: State = "waiting") -> None:
        self.me = owner.me
        self.group = owner.group
        self.secret = owner.secret is not None
        self.max_frame = owner.max_frame
        self.incarnation = owner.incarnation
        self.members = tuple(sorted(owner.members))
        self.paused = False
        self.dial = "bob" if side == "dial" else None
        self.links = {name: LinkModel(link) for name, link in owner.links.items()}
        self.engine = Engine(owner.me, owner.members)
        self.state: State = state
        self.peer: str | None = self.dial
        self.member: str | None = None
        if state == "open":
            self.peer = self.member = "bob"
        self.buffer = b""
        self.hint = ""
        self.exact: str | None = None
        self.delivered: list[tuple[str, Frame]] = []
        self.written: list[object] = []

    @property
    def ended(self) -> bool:
        return self.state in ("aborted", "refused", "turned", "answered")

    @property
    def held(self) -> bool:
        return self.state == "held"

    @property
    def limit(self) -> int:
        return self.max_frame if self.state == "open" else HANDSHAKE_MAX_FRAME

    def feed(self, data: bytes) -> None:
        """
        Bytes arrived.
        """
        if self.ended:
            return
        self.buffer += data
        if self.state == "held":
            self._held()
            return
        while not self.ended and not self.held and len(self.buffer) >= 4:
            (size,) = _LENGTH.unpack_from(self.buffer)
            if size > self.limit:
                self._end("aborted", "over the limit")
                return
            if len(self.buffer) < 4 + size:
                return
            raw, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
            self._frame(raw)
        if self.held and self.buffer:
            self._held()

    def _held(self) -> None:
        """
        Bytes on a held connection wait unread, but for a REFUSE as the
        first frame; past the handshake limit the transport is paused.
        """
        buffer = self.buffer
        if len(buffer) >= 4:
            (size,) = _LENGTH.unpack_from(buffer)
            if (
                size <= HANDSHAKE_MAX_FRAME
                and len(buffer) >= 4 + size
                and buffer[5:6] == bytes([REFUSE])
            ):
                self._frame(buffer[4 : 4 + size])
                return
        if len(buffer) > HANDSHAKE_MAX_FRAME:
            self.paused = True

    def _end(self, state: State, hint: str, exact: str | None = None) -> None:
        self.state = state
        self.hint = hint
        self.exact = exact
        if state == "refused":
            self.written.append(Refuse(""))

    def _frame(self, raw: bytes) -> None:
        try:
            frame = decode(raw)
        except WireError:
            self._end("aborted", "malformed frame")
            return
        if isinstance(frame, Refuse):
            self.state = "turned"
        elif self.state == "waiting":
            self._handshake(frame)
        elif self.state == "authenticating":
            if isinstance(frame, Auth):
                # A MAC drawn at random is right once in 2 ** 256 tries.
                self._end("refused", "secret")
            else:
                self._end("refused", "AUTH")
        elif isinstance(frame, Hello | Auth | Who | Here):
            self._end("aborted", "on an open connection")
        elif isinstance(frame, Ack):
            assert self.member is not None
            self._ack(self.links[self.member], frame.ack)
        else:
            self._data(frame)

    def _handshake(self, frame: Hello | Data | Ack | Auth | Who | Here) -> None:
        if isinstance(frame, Who) and self.dial is None:
            if frame.group != self.group:
                self._end("refused", "group")
            else:
                here = Here("alice", 0, self.members, (("bob", "bob:1"),))
                self.written.append(sketch(here))
                self._end("answered", "")
            return
        if not isinstance(frame, Hello):
            self._end("refused", "not a HELLO")
            return
        if frame.group != self.group:
            self._end("refused", "group")
            return
        if self.dial is not None and frame.member != self.dial:
            self._end("refused", repr(frame.member))
            return
        if frame.peer != self.me:
            self._end("refused", "meant to reach")
            return
        if frame.members and frame.members != self.members:
            self._end("refused", "lists members")
            return
        link = self.links.get(frame.member)
        stranger = (
            link is None
            and self.dial is None
            and bool(frame.address)
            and frame.member != self.me
            and frame.member not in self.members
        )
        if link is None and not stranger:
            self._end("refused", repr(frame.member))
            return
        if frame.members != self.members:
            self._end("refused", "lists members")
            return
        self.peer = frame.member
        if bool(frame.nonce) != self.secret:
            self._end("refused", "secret")
            return
        if link is None:
            if self.secret:
                self.state = "authenticating"
                self.written.append(
                    self._answer(LinkModel.stranger(), frame, bytes(32))
                )
            else:
                self._end("refused", "no more members")
            return
        if self.secret:
            # The acceptor answers with its own HELLO and nonce, the dialer
            # with its proof; both then wait for the other's proof.
            self.state = "authenticating"
            if self.dial is None:
                self.written.append(self._answer(link, frame, bytes(32)))
            else:
                self.written.append(Auth(bytes(MAC_SIZE)))
            return
        if self.dial is not None:
            link.reached = frame.incarnation
        elif link.reached != frame.incarnation:
            # No dialed connection is open in these runs: held, answered.
            self.written.append(self._answer(link, frame))
            self.state = "held"
            return
        known = link.incarnation
        if not (
            known is None
            or known == frame.incarnation
            or (link.next_seq == 1 and link.received == 0)
        ):
            self._end("refused", "incarnation")
            return
        link.incarnation = frame.incarnation
        self.state = "open"
        self.member = frame.member
        if self.dial is not None:
            if self._ack(link, frame.received):
                self.written.extend(("DATA", seq) for seq in link.unacked)
        else:
            self.written.append(self._answer(link, frame))

    def _answer(self, link: LinkModel, frame: Hello, nonce: bytes = b"") -> Hello:
        """
        The acceptor's HELLO answer: it tells what it holds only to the
        incarnation those frames came from.
        """
        received = link.received if frame.incarnation == link.incarnation else 0
        return Hello(
            self.group,
            self.me,
            frame.member,
            self.incarnation,
            received,
            nonce,
            0,
            self.members,
        )

    def _ack(self, link: LinkModel, ack: int) -> bool:
        if ack >= link.next_seq:
            self._end("aborted", "acknowledges")
            return False
        link.unacked = [seq for seq in link.unacked if seq > ack]
        return True

    def _data(self, data: Data) -> None:
        if self.dial is not None:
            self._end("aborted", "dialed")
            return
        assert self.member is not None
        link = self.links[self.member]
        link.frames_in += 1
        if not self._ack(link, data.ack):
            return
        if data.seq <= link.received:
            link.duplicates += 1
            return
        if data.seq != link.received + 1:
            self._end("aborted", "next expected")
            return
        try:
            self.engine.receive(self.member, data.frame)
        except ProtocolError as e:
            self._end("aborted", str(e), exact=str(e))
            return
        self.delivered.append((self.member, data.frame))
        link.received = data.seq


# -- running a connection -----------------------------------------------------


def chunked(raw: bytes, cuts: list[int] | int) -> list[bytes]:
    """
    Split C{raw} as a transport might deliver it: at the positions C{cuts}
    (taken modulo the length), or in pieces of C{cuts} bytes.
    """
    if isinstance(cuts, int):
        return [raw[at : at + cuts] for at in range(0, len(raw), cuts)]
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    bounds = [0, *points, len(raw)]
    return [raw[a:b] for a, b in pairwise(bounds) if b > a]


def pump(
    a: PeerProtocol, a_io: StringTransport, b: PeerProtocol, b_io: StringTransport
) -> None:
    """
    Carry bytes between two connected protocols until both are quiet.
    """
    for _ in range(10):
        a_out, b_out = a_io.value(), b_io.value()
        if not a_out and not b_out:
            return
        a_io.clear()
        b_io.clear()
        if a_out and not b_io.disconnecting:
            b.dataReceived(a_out)
        if b_out and not a_io.disconnecting:
            a.dataReceived(b_out)
    raise AssertionError("the handshake did not settle")


class Run:
    """
    One connection of an owner, fed hostile bytes next to its L{Model}.

    @ivar events: What the protocol logged.
    """

    def __init__(
        self,
        case: SynchronousTestCase,
        owner: FakeOwner,
        side: Side,
        handshake: bool = False,
    ) -> None:
        """
        @param handshake: Open the connection first with a genuine
            handshake, against a real L{PeerProtocol} of member C{bob} (with
            the same secret, if any).
        """
        self.case = case
        self.owner = owner
        self.side = side
        if side == "accept":
            self.proto, self.transport = accepted(owner)
        else:
            self.proto, self.transport = dialed(owner, "bob")
        # Each protocol logs to its own observer, so that examples do not
        # see each other's events and nothing global is touched.
        self.events = EventLoggingObserver()
        self.proto._log = Logger(observer=self.events)
        state: State = "waiting"
        if handshake:
            bob = FakeOwner("bob", incarnation=2, secret=owner.secret)
            if side == "accept":
                reach(owner, "bob", 2)
                other, other_io = dialed(bob, "alice")
            else:
                other, other_io = accepted(bob)
            pump(self.proto, self.transport, other, other_io)
            case.assertTrue(self.proto.is_open, owner.rejections + bob.rejections)
            state = "open"
        self.transport.clear()
        self.model = Model(owner, side, state)

    @property
    def pending(self) -> bytes:
        """
        The bytes the protocol holds of an incomplete frame, compared with
        what the model holds after every chunk.
        """
        return self.proto.unframed

    def feed(self, chunks: Iterable[bytes]) -> None:
        """
        Feed C{chunks} one by one, as a TCP transport would: it stops
        reading once the protocol closes it (C{loseConnection} and
        C{abortConnection} both stop reading at once), so nothing is fed to
        a closing connection.  (Over TLS a gently closed connection goes on
        reading: see L{TLSTests}.)
        """
        case, model = self.case, self.model
        for chunk in chunks:
            if self.transport.disconnecting:
                break
            case.assertEqual(self.transport.producerState == "paused", model.paused)
            if model.paused:
                # A paused transport reads nothing more.
                break
            try:
                self.proto.dataReceived(chunk)
            except Exception as e:
                raise case.failureException(
                    f"{e!r} escaped dataReceived (after {chunk!r})"
                ) from e
            model.feed(chunk)
            if not model.ended:
                # Before the handshake, at most one frame under the handshake
                # limit, and its prefix, is ever held; after it, one frame
                # under the owner's limit; on hold, the handshake limit and
                # one read more.
                case.assertEqual(self.pending, model.buffer)
                if model.state == "held":
                    case.assertLess(len(self.pending), model.limit + len(chunk) + 1)
                else:
                    case.assertLess(len(self.pending), model.limit + 4)

    def check(self) -> None:
        """
        Compare the connection with the model, then let time pass and close
        it: nothing may hang, and nothing may stay scheduled.
        """
        case, model, owner, transport = (
            self.case,
            self.model,
            self.owner,
            self.transport,
        )
        # For --hypothesis-show-statistics: how examples end, and how many
        # got frames through.
        why = "engine rejected" if model.exact else model.hint
        event(f"{self.side}: {model.state}" + (f" ({why})" if why else ""))
        if model.delivered:
            event(f"{self.side}: frames delivered")
        if any(link.duplicates for link in model.links.values()):
            event(f"{self.side}: duplicates dropped")
        drops = [
            e for e in self.events if e.get("log_format", "").startswith("dropped ")
        ]
        refusals = [
            e for e in self.events if "refused this node" in e.get("log_format", "")
        ]
        if model.state in ("waiting", "authenticating", "held", "open"):
            case.assertFalse(transport.disconnecting, owner.rejections)
            case.assertEqual(owner.rejections, [])
            case.assertEqual(drops, [])
            case.assertEqual(self.proto.is_open, model.state == "open")
        elif model.state == "answered":
            # A WHO is answered (HERE) and the connection closed gently.
            case.assertTrue(transport.disconnecting)
            case.assertFalse(transport.disconnected)
            case.assertEqual(owner.rejections, [])
            case.assertEqual(drops, [])
            case.assertFalse(self.proto.is_open)
        elif model.state == "turned":
            case.assertTrue(transport.disconnecting)
            case.assertFalse(transport.disconnected)
            case.assertEqual(owner.rejections, [])
            case.assertEqual(len(refusals), 1)
            case.assertFalse(self.proto.is_open)
        else:
            case.assertTrue(transport.disconnecting)
            # A REFUSE goes out before a gentle close; otherwise the
            # connection is aborted at once.
            case.assertEqual(transport.disconnected, model.state == "aborted")
            case.assertEqual(len(owner.rejections), 1, owner.rejections)
            [(address, peer, reason)] = owner.rejections
            case.assertEqual((address, peer), (PEER, model.peer))
            case.assertIsInstance(reason, str)
            if model.exact is not None:
                case.assertEqual(reason, model.exact)
            else:
                case.assertIn(model.hint, reason)
            [logged] = drops
            case.assertEqual(logged["log_level"], LogLevel.warn)
            case.assertEqual(logged["reason"], reason)
            case.assertFalse(self.proto.is_open)
            if model.state == "refused":
                refusal = decode(split(transport.value())[-1])
                case.assertIsInstance(refusal, Refuse)
                assert isinstance(refusal, Refuse)
                case.assertEqual(refusal.reason, reason)
        case.assertEqual(owner.frames, model.delivered)
        for name, expected in model.links.items():
            case.assertEqual(link_state(owner.links[name]), expected.state(), name)
        written = [decode(raw) for raw in split(transport.value())]
        case.assertEqual(
            [sketch(f) for f in written if not isinstance(f, Ack)], model.written
        )
        acks = [f.ack for f in written if isinstance(f, Ack)]
        case.assertEqual(acks, sorted(acks))
        if acks:
            assert model.member is not None
            case.assertLessEqual(acks[-1], model.links[model.member].received)

        # Time passes: a connection still in the handshake is dropped at its
        # timeout (so a peer that sends half a frame and stops hangs
        # nothing); any other keeps its state.
        before = len(owner.rejections)
        owner.time.advance(owner.handshake_timeout)
        if model.state in ("waiting", "authenticating", "held"):
            case.assertTrue(transport.disconnected)
            case.assertEqual(len(owner.rejections), before + 1)
            case.assertIn("no handshake", owner.reasons[-1])
            if model.state == "held":
                case.assertIn("configured address", owner.reasons[-1])
                case.assertEqual(owner.links["bob"].held, set())
        else:
            case.assertEqual(len(owner.rejections), before)
            case.assertEqual(self.proto.is_open, model.state == "open")
        self.proto.connectionLost()
        owner.time.advance(owner.handshake_timeout)
        case.assertEqual(owner.time.getDelayedCalls(), [])
        for link in owner.links.values():
            case.assertIsNot(link.inbound, self.proto)
            case.assertIsNot(link.outbound, self.proto)


# -- strategies -----------------------------------------------------------------


def framed(body: bytes) -> bytes:
    """
    C{body} behind its (true) length prefix.
    """
    return _LENGTH.pack(len(body)) + body


def flip(raw: bytes, flips: list[tuple[int, int]]) -> bytes:
    """
    C{raw} with some bits flipped: C{(where, mask)}, C{where} taken modulo
    the length.
    """
    buf = bytearray(raw)
    for where, mask in flips:
        buf[where % len(buf)] ^= mask
    return bytes(buf)


u32s = st.integers(0, MAX_U32)
u64s = st.integers(0, MAX_U64)
# Small numbers meet the link's counters; any u64 mostly does not.
small = st.integers(0, 6)
counters = st.one_of(small, small, small, u64s)
# At most 63 characters is at most 252 bytes of UTF-8: always a valid name.
names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=63)
nonces = st.one_of(st.just(b""), st.binary(min_size=1, max_size=MAX_NONCE))
# HELLOs close to what a member sends, that pass or fail one check or two.
plausible_hellos = st.builds(
    Hello,
    st.sampled_from([GROUP, GROUP, GROUP, "another group"]),
    st.sampled_from(["bob", "bob", "carol", "alice", "mallory"]),
    st.sampled_from(["alice", "alice", "alice", "bob"]),
    st.sampled_from([1, 2, 2, 3]),
    small,
    st.one_of(st.just(b""), st.binary(min_size=32, max_size=32)),
    st.sampled_from([0, 0, 1, MAX_U32]),
    st.sampled_from([MEMBERS, MEMBERS, MEMBERS, ("alice", "bob"), ()]),
)
hellos = st.one_of(
    plausible_hellos,
    st.builds(Hello, names, names, names, u64s, u64s, nonces),
)
stamps = st.integers(0, 12)
engine_frames = st.builds(
    Frame,
    st.sampled_from([0, 0, 0, 1]),
    stamps,
    st.lists(st.tuples(stamps, st.binary(max_size=8)), max_size=2).map(tuple),
)
datas = st.builds(Data, counters, counters, engine_frames)
acks = st.builds(Ack, counters)
auths = st.builds(Auth, st.binary(min_size=MAC_SIZE, max_size=MAC_SIZE))
refuses = st.builds(Refuse, st.text(max_size=20))
wire_frames: st.SearchStrategy[WireFrame] = st.one_of(
    hellos, datas, datas, acks, auths, refuses
)

# Hostile tokens, each a piece of a byte stream.
garbage = st.binary(min_size=1, max_size=24)
random_bodies = st.builds(
    lambda version, kind, body: framed(bytes([version, kind]) + body),
    st.sampled_from([VERSION, VERSION, 0, 2, 255]),
    st.integers(0, 7),
    st.binary(max_size=48),
)
huge_prefixes = st.integers(HANDSHAKE_MAX_FRAME + 1, MAX_U32).map(_LENGTH.pack)
# A frame of about the handshake limit, whole or one or two bytes short.
near_limit = st.builds(
    lambda size, short: _LENGTH.pack(size) + bytes(max(size - short, 0)),
    st.integers(HANDSHAKE_MAX_FRAME - 2, HANDSHAKE_MAX_FRAME + 2),
    st.integers(0, 2),
)
# A prefix that promises more than follows.
lying_prefixes = st.builds(
    lambda size, body: _LENGTH.pack(size) + body,
    st.integers(0, HANDSHAKE_MAX_FRAME),
    st.binary(max_size=16),
)
absurd_counts = st.builds(
    lambda seq, ack, view, clock, count, messages: framed(
        _DATA_HEAD.pack(VERSION, DATA, seq, ack, view, clock, count) + messages
    ),
    counters,
    counters,
    u32s,
    u64s,
    u32s,
    st.lists(
        st.builds(
            lambda stamp, size, payload: _MESSAGE_HEAD.pack(stamp, size) + payload,
            u64s,
            st.one_of(st.integers(0, 8), u32s),
            st.binary(max_size=8),
        ),
        max_size=3,
    ).map(b"".join),
)
absurd_names = st.builds(
    lambda kind, size, body: framed(bytes([VERSION, kind]) + _U16.pack(size) + body),
    st.sampled_from([HELLO, REFUSE]),
    st.integers(0, 0xFFFF),
    st.binary(max_size=32),
)
valid_frames = wire_frames.map(lambda frame: framed(encode(frame)))
mutated_frames = st.builds(
    lambda frame, flips: flip(framed(encode(frame)), flips),
    wire_frames,
    st.lists(
        st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1, max_size=3
    ),
)
hostile_tokens = st.one_of(
    garbage,
    random_bodies,
    huge_prefixes,
    near_limit,
    lying_prefixes,
    absurd_counts,
    absurd_names,
    valid_frames,
    mutated_frames,
)


def joined(tokens: list[bytes], cut: int | None) -> bytes:
    """
    C{tokens} as one stream, cut short at C{cut} (modulo its length) if given.
    """
    raw = b"".join(tokens)
    return raw if cut is None else raw[: cut % (len(raw) + 1)]


streams = st.builds(
    joined,
    st.lists(hostile_tokens, min_size=1, max_size=5),
    st.one_of(st.none(), st.integers(0, 1 << 16)),
)
# Where the transport splits a stream: at random places, or in small pieces.
cuts = st.one_of(st.lists(st.integers(0, 1 << 16), max_size=8), st.integers(1, 7))


@attrs.frozen
class Next:
    """
    The DATA frame that comes next in order on the link, as a well-behaved
    peer sends it; C{regress} makes its clock go back, which the engine
    rejects.
    """

    regress: bool
    payload: bytes


@attrs.frozen
class Copy:
    """
    A copy of a DATA frame the peer sent already, C{back} frames back (taken
    modulo how many there are), with other contents.
    """

    back: int


Item = Next | Copy | WireFrame

next_frames = st.builds(
    Next, st.sampled_from([False, False, False, True]), st.binary(max_size=8)
)
copies = st.builds(Copy, st.integers(0, 100))
# Frames of a peer that mostly behaves, and sometimes does anything at all.
items: st.SearchStrategy[list[Item]] = st.lists(
    st.integers(0, 9).flatmap(
        lambda k: next_frames if k < 6 else copies if k < 7 else wire_frames
    ),
    max_size=12,
)

# How a connection starts: with a genuine handshake, a HELLO that is right,
# a HELLO with one flaw (see greeting), or straight with the items.
OPENINGS = ["handshake", "hello"]
FLAWS = [
    None,
    "group",
    "member",
    "stranger",
    "peer",
    "incarnation",
    "received",
    "nonce",
    "members",
    "no members",
]


def greeting(opening: str, secret: bool) -> Hello:
    """
    The HELLO member C{bob} sends C{alice}, with the flaw C{opening} names.
    """
    hello = Hello(
        GROUP, "bob", "alice", 2, 0, bytes(range(32)) if secret else b"", 0, MEMBERS
    )
    evolve = attrs.evolve
    if opening == "group":
        return evolve(hello, group="another group")
    if opening == "member":
        return evolve(hello, member="carol")
    if opening == "stranger":
        return evolve(hello, member="mallory")
    if opening == "peer":
        return evolve(hello, peer="bob")
    if opening == "incarnation":
        # Refused only by a link that exchanged frames with incarnation 2.
        return evolve(hello, incarnation=3)
    if opening == "received":
        # Acknowledges frames never sent, when fewer were.
        return evolve(hello, received=3)
    if opening == "nonce":
        return evolve(hello, nonce=b"" if secret else bytes(32))
    if opening == "members":
        return evolve(hello, members=("alice", "bob"))
    if opening == "no members":
        return evolve(hello, members=())
    return hello


@attrs.frozen
class Scenario:
    """
    One connection to fuzz.

    @ivar secret: Whether the group has a secret.
    @ivar opening: How the connection starts; see L{OPENINGS}.
    @ivar sent: How many frames this side sent on the link before.
    @ivar received: How many of the peer's frames the link holds before.
    @ivar incarnation: The peer's incarnation the link knows before.
    @ivar reached: The incarnation this node's last dial found at the
        peer's address before, if any.
    @ivar items: The peer's frames, as L{build} makes them.
    @ivar tail: Hostile bytes after them, if any.
    @ivar cut: How the transport splits the bytes; see L{chunked}.
    """

    secret: bool
    opening: str | None
    sent: int
    received: int
    incarnation: int | None
    items: list[Item]
    tail: bytes
    cut: list[int] | int
    reached: int | None


scenarios = st.builds(
    Scenario,
    st.booleans(),
    st.one_of(st.sampled_from(OPENINGS), st.sampled_from(FLAWS)),
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from([None, 2]),
    items,
    st.one_of(st.just(b""), st.just(b""), hostile_tokens),
    cuts,
    st.sampled_from([None, 2, 2, 2, 3]),
)


def build(items: list[Item], received: int) -> list[WireFrame]:
    """
    The frames C{items} stand for, on a link that holds the peer's frames up
    to C{received}.
    """
    frames: list[WireFrame] = []
    seq = received
    for item in items:
        if isinstance(item, Next):
            seq += 1
            clock = max(10 * seq - (15 if item.regress else 0), 0)
            messages = ((clock, item.payload),) if clock else ()
            frames.append(Data(seq, 0, Frame(0, clock, messages)))
        elif isinstance(item, Copy):
            old = seq - item.back % (seq + 1)
            frames.append(Data(old, 0, Frame(1, 0, ((0, b"copy"),))))
        else:
            frames.append(item)
    return frames


# -- tests ----------------------------------------------------------------------


class HostileBytesTests(SynchronousTestCase):
    """
    Arbitrary byte streams before the handshake: the connection waits for
    more bytes (nothing undecodable seen yet) or is dropped with a logged,
    counted reason; it never holds more than one handshake frame.
    """

    def _exercise(
        self, side: Side, secret: bool, stream: bytes, cut: list[int] | int
    ) -> None:
        owner = EngineOwner(secret=SECRET if secret else None)
        run = Run(self, owner, side)
        run.feed(chunked(stream, cut))
        if run.model.state in ("waiting", "authenticating"):
            self.assertLess(len(run.pending), HANDSHAKE_MAX_FRAME + 4)
        run.check()

    @fuzz
    @given(st.booleans(), streams, cuts)
    def test_acceptor(self, secret: bool, stream: bytes, cut: list[int] | int) -> None:
        self._exercise("accept", secret, stream, cut)

    @fuzz
    @given(st.booleans(), streams, cuts)
    def test_dialer(self, secret: bool, stream: bytes, cut: list[int] | int) -> None:
        self._exercise("dial", secret, stream, cut)

    @settings(max_examples=100, deadline=None)
    @given(st.sampled_from(["accept", "dial"]), streams, streams)
    def test_nothing_after_drop(self, side: Side, stream: bytes, more: bytes) -> None:
        """
        Should a transport deliver bytes after the protocol closed it, they
        change nothing: no second rejection, nothing handed over or written.
        """
        owner = EngineOwner()
        run = Run(self, owner, side)
        run.feed(chunked(stream, []))
        if not run.model.ended:
            return
        rejections = list(owner.rejections)
        written = run.transport.value()
        run.proto.dataReceived(more)
        run.proto.dataReceived(stream)
        self.assertEqual(owner.rejections, rejections)
        self.assertEqual(run.transport.value(), written)
        self.assertEqual(owner.frames, [])


class FrameSequenceTests(SynchronousTestCase):
    """
    Valid frames of every type in any order, with or without a handshake
    first: each is taken, dropped as a duplicate, or ends the connection
    with a logged, counted reason, as L{Model} says.
    """

    def _exercise(self, side: Side, scenario: Scenario) -> None:
        owner = EngineOwner(secret=SECRET if scenario.secret else None)
        link = owner.links["bob"]
        for n in range(scenario.sent):
            send(link, n + 1)
        link.received = scenario.received
        link.incarnation = scenario.incarnation
        if scenario.reached is not None:
            reach(owner, "bob", scenario.reached)
        run = Run(self, owner, side, handshake=scenario.opening == "handshake")
        frames = build(scenario.items, link.received)
        if scenario.opening not in (None, "handshake"):
            frames.insert(0, greeting(scenario.opening, scenario.secret))
        run.feed(chunked(prefixed(*frames) + scenario.tail, scenario.cut))
        run.check()

    @fuzz
    @given(scenarios)
    def test_acceptor(self, scenario: Scenario) -> None:
        self._exercise("accept", scenario)

    @fuzz
    @given(scenarios)
    def test_dialer(self, scenario: Scenario) -> None:
        self._exercise("dial", scenario)


class DuplicateTests(SynchronousTestCase):
    @fuzz
    @given(st.lists(st.one_of(st.none(), st.integers(0, 1000)), max_size=40), cuts)
    def test_in_order_with_duplicates(
        self, ops: list[int | None], cut: list[int] | int
    ) -> None:
        """
        In-order DATA frames mixed with copies of frames already held: the
        owner gets each new frame once, in order, and the copies (with other
        contents) are dropped silently, never reaching the engine.
        """
        owner = EngineOwner()
        link = owner.links["bob"]
        proto, transport = open_inbound(owner)
        frames: list[Data] = []
        n = duplicates = 0
        for op in ops:
            if op is None:
                n += 1
                frames.append(Data(n, 0, engine_frame(n)))
            else:
                seq = op % (n + 1)
                duplicates += 1
                frames.append(Data(seq, 0, Frame(0, seq, ((seq, b"copy"),))))
        for chunk in chunked(prefixed(*frames), cut):
            proto.dataReceived(chunk)
        self.assertEqual(owner.rejections, [])
        self.assertFalse(transport.disconnecting)
        self.assertEqual(
            owner.frames, [("bob", engine_frame(seq)) for seq in range(1, n + 1)]
        )
        self.assertEqual(link.received, n)
        self.assertEqual(link.duplicates, duplicates)
        self.assertEqual(link.frames_in, len(frames))
        owner.time.advance(1)
        written = [decode(raw) for raw in split(transport.value())]
        self.assertEqual(written[-1:], [Ack(n)] if n else [])


def sizes(obj: object) -> dict[str, int]:
    """
    The size of every container an object holds.
    """
    return {
        name: len(value)
        for name, value in vars(obj).items()
        if isinstance(value, Sized) and not isinstance(value, str)
    }


class MemoryTests(SynchronousTestCase):
    """
    What a connection holds does not grow with what it is fed.
    """

    @fuzz
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["send", "data", "copy", "ack", "tick"]),
                st.integers(0, 1000),
            ),
            max_size=120,
        )
    )
    def test_buffers_follow_own_sends(self, ops: list[tuple[str, int]]) -> None:
        """
        Whatever mix of sending, the peer's DATA (with acknowledgements),
        copies, ACKs and passing time: the resend buffer holds exactly this
        side's frames not yet acknowledged, C{received} follows the peer's
        frames, no connection holds a partial frame, and at most one timer
        is scheduled.
        """
        owner = EngineOwner()
        link = owner.links["bob"]
        inbound, in_io = open_inbound(owner)
        outbound, out_io = open_outbound(owner)
        sent = acked = peer = 0
        for op, n in ops:
            if op == "send":
                sent += 1
                send(link, sent)
            elif op == "data":
                peer += 1
                ack = acked + n % (sent - acked + 1)
                inbound.dataReceived(prefixed(Data(peer, ack, engine_frame(peer))))
                acked = ack
            elif op == "copy":
                seq = n % (peer + 1)
                inbound.dataReceived(prefixed(Data(seq, 0, Frame(0, 0, ()))))
            elif op == "ack":
                ack = n % (sent + 1)
                outbound.dataReceived(prefixed(Ack(ack)))
                acked = max(acked, ack)
            else:
                owner.time.advance(0.05)
            in_io.clear()
            out_io.clear()
            self.assertEqual(owner.rejections, [])
            self.assertEqual(inbound.unframed, b"")
            self.assertEqual(outbound.unframed, b"")
            self.assertEqual(
                [seq for seq, _, _ in link.unacked], list(range(acked + 1, sent + 1))
            )
            self.assertEqual(
                link.unacked_bytes,
                sum(len(head) + len(body) for _, head, body in link.unacked),
            )
            self.assertEqual(link.received, peer)
            self.assertLessEqual(len(owner.time.getDelayedCalls()), 1)
        self.assertEqual(len(owner.frames), peer)

    def test_many_frames(self) -> None:
        """
        Ten thousand DATA frames, and as many copies, in reads that split
        frames anywhere: afterwards no container of the connection or its
        link holds more than before.
        """
        owner = EngineOwner()
        link = owner.links["bob"]
        proto, transport = open_inbound(owner)
        proto.dataReceived(prefixed(Data(1, 0, engine_frame(1))))
        transport.clear()
        owner.frames.clear()
        before = (sizes(proto), sizes(link))
        stream = b"".join(
            prefixed(Data(seq, 0, engine_frame(seq)), Data(seq - 1, 0, Frame(0, 0)))
            for seq in range(2, 10_002)
        )
        for chunk in chunked(stream, 997):
            proto.dataReceived(chunk)
            self.assertLess(len(proto.unframed), 64)
            transport.clear()
        self.assertEqual(owner.rejections, [])
        self.assertEqual(link.received, 10_001)
        self.assertEqual(len(owner.frames), 10_000)
        self.assertEqual((sizes(proto), sizes(link)), before)


# -- over TLS -------------------------------------------------------------------


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """
    TLS server connections with a fresh self-signed certificate.
    """

    def __init__(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        self._context = SSL.Context(SSL.TLS_METHOD)
        self._context.use_certificate(cert)
        self._context.use_privatekey(key)

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        return SSL.Connection(self._context, None)


@implementer(IOpenSSLClientConnectionCreator)
class ClientTLS:
    """
    TLS client connections that trust anything (certificates are not what
    these tests are about).
    """

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
        connection.set_connect_state()
        return connection


def over_tls(
    owner: FakeOwner, dial: str | None = None
) -> tuple[TLSMemoryBIOProtocol, StringTransport, PeerProtocol]:
    """
    A connection of C{owner} (accepted, or dialed to C{dial}) behind
    Twisted's TLS layer, as the C{ssl:} and C{tls:} endpoints build it, on a
    TCP transport that is a L{StringTransport}.  The TLS layer gathers small
    writes for a moment of C{owner}'s clock: advance it by 0 to send them.
    """
    if dial is None:
        factory = TLSMemoryBIOFactory(
            ServerTLS(), False, PeerFactory(owner), clock=owner.time
        )
    else:
        factory = TLSMemoryBIOFactory(
            ClientTLS(), True, PeerFactory(owner, owner.links[dial]), clock=owner.time
        )
    tls = factory.buildProtocol(PEER_ADDRESS)
    assert isinstance(tls, TLSMemoryBIOProtocol)
    wire = StringTransport(peerAddress=PEER_ADDRESS)
    tls.makeConnection(wire)
    peer = tls.wrappedProtocol
    assert isinstance(peer, PeerProtocol)
    return tls, wire, peer


class TLSPair:
    """
    Member C{alice} dialing member C{bob}, both over TLS.
    """

    def __init__(self, bob_group: str = GROUP) -> None:
        self.alice = FakeOwner("alice", incarnation=1)
        self.bob = FakeOwner("bob", incarnation=2, group=bob_group)
        # Bob's own dial found alice (incarnation 1) at her address.
        reach(self.bob, "alice", 1)
        self.client, self.client_wire, self.dialer = over_tls(self.alice, "bob")
        self.server, self.server_wire, self.acceptor = over_tls(self.bob)
        self.pump()

    def pump(self) -> None:
        for _ in range(100):
            self.alice.time.advance(0)
            self.bob.time.advance(0)
            up, down = self.client_wire.value(), self.server_wire.value()
            self.client_wire.clear()
            self.server_wire.clear()
            if up and not self.server_wire.disconnecting:
                self.server.dataReceived(up)
            if down and not self.client_wire.disconnecting:
                self.client.dataReceived(down)
            if not up and not down:
                return
        raise AssertionError("the connection did not settle")


class HostileTLSPeer:
    """
    A node's accepted connection over TLS, and at the other end a TLS client
    driven by hand, which never answers the node's TLS close alert.
    """

    def __init__(self, owner: FakeOwner) -> None:
        self.owner = owner
        self.server, self.wire, self.peer = over_tls(owner)
        self.client = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
        self.client.set_connect_state()
        self.pump()

    def pump(self) -> None:
        for _ in range(100):
            self.owner.time.advance(0)
            with contextlib.suppress(SSL.WantReadError):
                self.client.do_handshake()
            try:
                up = self.client.bio_read(1 << 20)
            except SSL.WantReadError:
                up = b""
            down = self.wire.value()
            self.wire.clear()
            if up and not self.wire.disconnecting:
                self.server.dataReceived(up)
            if down:
                self.client.bio_write(down)
            if not up and not down:
                return
        raise AssertionError("the connection did not settle")

    def send(self, data: bytes) -> None:
        self.client.sendall(data)
        self.pump()


class TLSTests(SynchronousTestCase):
    """
    Over TLS (the C{ssl:} and C{tls:} endpoints), a refused connection must
    close as it does over TCP.

    A refusal closes gently: C{drop(refuse=True)} writes REFUSE and calls
    C{loseConnection}, as does C{_refused} when the peer sent REFUSE.  Over
    TCP that stops reading and closes once REFUSE is written.  Twisted's TLS
    layer (L{TLSMemoryBIOProtocol.loseConnection}) instead sends its close
    alert only once no producer is registered, and every L{PeerProtocol}
    registers itself as the transport's producer in C{connectionMade} and
    never unregisters; then the TCP connection closes only when the peer's
    close alert arrives.  So neither side of a refused connection ever
    closes it, and the handshake timeout cannot help: C{drop} does nothing
    on a connection already closing.  Meanwhile the TLS layer goes on
    handing the protocol whatever the peer sends, and
    L{Int32StringReceiver} keeps all of it after an over-limit length
    prefix.
    """

    def test_opens(self) -> None:
        """
        Two members in one group connect over TLS (the harness works).
        """
        pair = TLSPair()
        self.assertTrue(pair.dialer.is_open)
        self.assertTrue(pair.acceptor.is_open)
        self.assertIs(pair.alice.links["bob"].outbound, pair.dialer)
        self.assertIs(pair.bob.links["alice"].inbound, pair.acceptor)

    def test_refused_connection_closes(self) -> None:
        """
        When C{bob} refuses C{alice} (another group), the connection closes
        on both sides, as it does over TCP, so that C{alice} sees it lost
        and dials again later.
        """
        pair = TLSPair(bob_group="another group")
        self.assertEqual(len(pair.bob.rejections), 1)
        self.assertTrue(pair.server.disconnecting)
        self.assertTrue(pair.client.disconnecting)
        for _ in range(3):
            pair.alice.time.advance(pair.alice.handshake_timeout)
            pair.bob.time.advance(pair.bob.handshake_timeout)
            pair.pump()
        self.assertTrue(pair.server_wire.disconnecting, "bob's end stays open")
        self.assertTrue(pair.client_wire.disconnecting, "alice's end stays open")

    def refuse(self, hostile: HostileTLSPeer) -> None:
        hostile.send(prefixed(Hello("another group", "bob", "alice", 2, 0)))
        self.assertEqual(len(hostile.owner.rejections), 1)
        self.assertTrue(hostile.server.disconnecting)

    def test_refused_peer_is_cut_off(self) -> None:
        """
        A refused peer cannot keep the connection open by never answering
        the close alert: the handshake timeout closes it at the latest.
        """
        owner = FakeOwner()
        hostile = HostileTLSPeer(owner)
        self.refuse(hostile)
        owner.time.advance(owner.handshake_timeout)
        self.assertTrue(hostile.wire.disconnecting)

    def test_refusing_peer_is_cut_off(self) -> None:
        """
        Likewise a peer that sent REFUSE itself.
        """
        owner = FakeOwner()
        hostile = HostileTLSPeer(owner)
        hostile.send(prefixed(Refuse("no")))
        self.assertTrue(hostile.server.disconnecting)
        owner.time.advance(owner.handshake_timeout)
        self.assertTrue(hostile.wire.disconnecting)

    def test_refused_peer_is_not_buffered(self) -> None:
        """
        While a refused connection lingers, what the peer sends is not held:
        after an over-limit length prefix and 256 KiB more, the protocol
        holds no more than one handshake frame.
        """
        owner = FakeOwner()
        hostile = HostileTLSPeer(owner)
        self.refuse(hostile)
        hostile.send(_LENGTH.pack(MAX_U32))
        for _ in range(16):
            hostile.send(bytes(16 * 1024))
        self.assertLessEqual(len(hostile.peer.unframed), HANDSHAKE_MAX_FRAME + 4)
