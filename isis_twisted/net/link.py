"""
Reliable FIFO links between members, over any stream endpoint.

Each member dials every other member (redialling with
L{twisted.application.internet.ClientService}) and sends its own frames on
the connection it dialed; it receives each peer's frames on the connection
that peer dialed.  So between two members there are two connections, each
carrying DATA one way and acknowledgements back, and no race over which of
two simultaneous connections wins.

A L{PeerLink} is the state of one pair of members that outlives
connections: the sequence numbers of DATA frames each way, the frames sent
but not yet acknowledged (resent after a reconnect), and which of the other
side's frames are already held (so a resent frame is dropped, not delivered
twice).  A L{PeerProtocol} is one connection: it does the handshake, checks
every frame and hands the link what passed.

Everything a peer can get wrong (bytes that are no frame, another group, a
name that is no member, a restarted member, a handshake that never comes)
ends in a log line that says who, from where and what, a counted rejection
and a closed connection; the node goes on serving its other peers.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from twisted.application.internet import ClientService
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger, LogLevel
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from isis_twisted.core.control import ControlFrame, encode_control
from isis_twisted.core.engine import Frame, ProtocolError
from isis_twisted.core.views import Control, View
from isis_twisted.core.wire import (
    FATAL_REFUSALS,
    REFUSE,
    REFUSED_GROUP,
    REFUSED_MEMBERS,
    REFUSED_NAME,
    REFUSED_OTHER,
    REFUSED_SECRET,
    Ack,
    Auth,
    Data,
    Hello,
    Here,
    Refuse,
    Who,
    WireError,
    data_head,
    decode_any,
    encode_ack,
    encode_auth,
    encode_hello,
    encode_here,
    encode_refuse,
)
from isis_twisted.net.certs import peer_name

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

HANDSHAKE_MAX_FRAME = 65536
"""
The largest frame accepted before the handshake completes, so that a
stranger cannot make a node buffer a large frame.  A HELLO carries the
sender's member list, so this bounds the group too: a node whose HELLO would
not fit refuses to start (L{PeerLink}).
"""

_LENGTH = struct.Struct(">I")

CLOSE_GRACE = 5.0
"""
Seconds a closing connection has to send what it still holds (a REFUSE, the
last frames) before it is aborted.
"""

NONCE_SIZE = 32
"""
How many random bytes each side of a handshake contributes in a group with
a secret.
"""

REPEAT_INTERVAL = 60.0
"""
Seconds during which a refusal like one already logged (same peer, host and
reason) is only counted; the next one after that is logged with the count.
"""

REFUSAL_FIRST_DELAY = 0.1
"""
Seconds before the redial that follows a first refused dial; each further
refusal in a row doubles it, up to the node's longest redial wait (see
L{PeerLink.retry_policy}).
"""

WRONG_PORT_CODE = b"ISIS_PEER_PORT"
"""
The AMP error code a peer port answers a client's first command with: the
client dialed a member's peer port instead of its client port.
"""


def looks_like_amp(data: bytes) -> bool:
    """
    Whether C{data}, the first bytes of a connection, begin an AMP box (what
    a client of the client API sends) rather than a frame.

    An AMP box starts with a key: a 2-byte length below 256 and the key
    itself, and every key AMP sends first (C{_ask}, C{_command}) starts with
    an underscore.  A frame starts with a 4-byte length, which before the
    handshake is at most L{HANDSHAKE_MAX_FRAME} (65,536), so its second byte
    is 0 or its third is.
    """
    return len(data) >= 3 and data[0] == 0 and data[1] != 0 and data[2:3] == b"_"


def _amp_tag(data: bytes) -> bytes | None:
    """
    The C{_ask} tag of the AMP box at the start of C{data}, if the box has
    one and it is all there.
    """
    offset = 0
    while offset + 2 <= len(data):
        size = int.from_bytes(data[offset : offset + 2], "big")
        if size == 0:
            return None  # the end of the box
        key = data[offset + 2 : offset + 2 + size]
        offset += 2 + size
        if offset + 2 > len(data):
            return None
        length = int.from_bytes(data[offset : offset + 2], "big")
        value = data[offset + 2 : offset + 2 + length]
        offset += 2 + length
        if offset > len(data):
            return None
        if key == b"_ask":
            return value
    return None


def _amp_box(fields: dict[bytes, bytes]) -> bytes:
    """
    Encode one AMP box (keys and values below 64 KiB).
    """
    parts = []
    for key, value in fields.items():
        parts += [
            len(key).to_bytes(2, "big"),
            key,
            len(value).to_bytes(2, "big"),
            value,
        ]
    return b"".join([*parts, b"\x00\x00"])


class RepeatFilter:
    """
    Decides which of many alike log lines to write: the first of each kind,
    then, for as long as they keep coming, one every L{REPEAT_INTERVAL}
    seconds with how many were left out.  A peer that redials every second
    with the wrong group's name makes one line a minute, not sixty; every
    one of them is still counted in the node's status.

    @ivar interval: The seconds between two lines of one kind.
    """

    def __init__(self, clock: IReactorTime, interval: float = REPEAT_INTERVAL) -> None:
        self._clock = clock
        self.interval = interval
        # kind -> (when it was last logged, how many since were not)
        self._kinds: dict[tuple[str, ...], tuple[float, int]] = {}

    def admit(self, *kind: str) -> int | None:
        """
        Note one more event of C{kind}.

        @return: L{None} if it is not to be logged, else how many events of
            that kind were left out since the last line (0 for the first).
        """
        now = self._clock.seconds()
        last = self._kinds.get(kind)
        if last is None:
            self._kinds[kind] = (now, 0)
            return 0
        logged, skipped = last
        if now - logged < self.interval:
            self._kinds[kind] = (logged, skipped + 1)
            return None
        self._kinds[kind] = (now, 0)
        return skipped


def _host(address: str) -> str:
    """
    The host part of a L{describe_address} result: the port of an accepted
    connection changes with every dial, so repeats are told by host.
    """
    head, colon, port = address.rpartition(":")
    return head if colon and port.isdecimal() else address


class PeerDialer(ClientService):
    """
    A L{ClientService} that keeps its retries to itself: it would log
    "Scheduling retry N to connect <...Endpoint object at 0x...> in S
    seconds" at level info for every redial, which for a member that is
    down is a line every few seconds for as long as it is down (and twistd
    writes every level).  Those lines are left out; the node says itself
    which members it has not heard from, and for how long.
    """

    class _RetryLogger(Logger):
        def emit(
            self, level: LogLevel, format: str | None = None, **kwargs: object
        ) -> None:
            if level == LogLevel.info and "attempt" in kwargs:
                return
            super().emit(level, format, **kwargs)

    _log = _RetryLogger()


def describe_address(address: IAddress | None) -> str:
    """
    A short, readable form of a connection's address, for log lines.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"{host}:{port}"
    name = getattr(address, "name", None)
    if name:
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return f"unix:{name}"
    return str(address) if address is not None else "an unknown address"


class LinkOwner(Protocol):
    """
    What links need from the node that owns them.
    """

    group: str
    me: str
    incarnation: int
    members: tuple[str, ...]
    clock: IReactorTime
    max_frame: int
    handshake_timeout: float
    secret: bytes | None
    require_certificate: bool
    advertise: str

    @property
    def view(self) -> View:
        """
        The membership view this node is in.
        """

    def here(self) -> Here:
        """
        The answer to a member that asks who listens here (L{Who}).
        """

    def add_peer(self, name: str, address: str) -> PeerLink | None:
        """
        A link to a member the group was not started with, which says it
        listens at C{address}; L{None} if this node takes no more members.
        """

    def link_for(self, name: str) -> PeerLink | None:
        """
        The link to member C{name}, or L{None} if it is no peer.
        """

    def frame_received(self, peer: str, frame: Frame) -> None:
        """
        An engine frame arrived, in order and once, from C{peer}.

        @raise ProtocolError: If the engine rejects it.
        """

    def control_received(self, peer: str, message: Control) -> None:
        """
        A membership control message arrived, in order and once, from
        C{peer}.
        """

    def link_has_room(self) -> None:
        """
        A link's resend buffer went below its bound.
        """

    def rejected(self, address: str, peer: str | None, reason: str) -> None:
        """
        A connection was refused or dropped for breaking the protocol.
        """

    def new_incarnation(
        self, name: str, incarnation: int, untouched: bool
    ) -> str | None:
        """
        Member C{name} came back as another incarnation, C{incarnation} (it
        restarted and lost its state): whether to take its connection now.

        @param untouched: Nothing was ever exchanged with the incarnation
            before it.
        @return: L{None} to take it (the link then starts afresh with it),
            or the reason to refuse it for now.
        """


class LinkError(Exception):
    """
    A peer broke the link protocol (a sequence gap, an acknowledgement of a
    frame never sent, a frame on the wrong connection).
    """


class PeerLink:
    """
    The lasting state of the link to one peer.

    @ivar name: The peer's member name.
    @ivar incarnation: The peer's incarnation, once a handshake told it.
    @ivar next_seq: The sequence number the next DATA frame to it gets.
    @ivar received: The highest sequence number, without gaps, held of its
        DATA frames.
    @ivar outbound: The connection this member dialed to it, once its
        handshake is done.
    @ivar inbound: The connection it dialed to this member, once its
        handshake is done.
    @ivar reached: The incarnation of the process that answered this
        member's last dial to the peer's configured address: the process that
        holds the peer's name.  An accepted connection that claims the name
        is served only if it comes from that incarnation.
    @ivar reached_at: Where that process answered, for log lines.
    @ivar held: Accepted connections whose HELLO claims the peer's name and
        that wait for a dial to the peer's configured address to say whether
        they come from the process there.
    @ivar refusals: This member's dials to the peer refused in a row (a
        REFUSE received, or the connection closed before its handshake
        completed); the next redial waits the longer for them (see
        L{retry_policy}).  Back to 0 once the peer serves a dial.
    @ivar refused: Every REFUSE the peer answered this member's dials with.
    @ivar fatal: The code and reason of the peer's last refusal of a dial
        that no retry can change (wrong group or secret, see
        L{FATAL_REFUSALS}), until it serves one.
    @ivar on_locked_out: Called with the sentence that says so whenever a
        refusal finds most of the configured members refusing this member
        for such a reason (see L{locked_out}); the node acts on the first.
    """

    def __init__(
        self,
        owner: LinkOwner,
        name: str,
        max_buffer: int,
        ack_delay: float = 0.05,
        ack_every: int = 64,
    ) -> None:
        """
        @param owner: The node.
        @param name: The peer's name.
        @param max_buffer: The bound, in bytes, of frames sent but not yet
            acknowledged; L{full} says when it is reached.
        @param ack_delay: How long to wait, with nothing else to carry an
            acknowledgement, before sending one on its own (seconds).
        @param ack_every: Acknowledge on its own at once after this many
            unacknowledged DATA frames.
        """
        self.owner = owner
        self.name = name
        self.max_buffer = max_buffer
        self.ack_delay = ack_delay
        self.ack_every = ack_every
        self.incarnation: int | None = None
        self.next_seq = 1
        self.unacked: deque[tuple[int, bytes, bytes]] = deque()
        self.unacked_bytes = 0
        self.received = 0
        self._told = 0
        self._ack_call: IDelayedCall | None = None
        # Set while the node is stopped: a frame that still arrives on a
        # closing connection must not start a timer that outlives it.
        self.closed = False
        self.outbound: PeerProtocol | None = None
        self.inbound: PeerProtocol | None = None
        self.reached: int | None = None
        self.reached_at: str | None = None
        self.held: set[PeerProtocol] = set()
        self.frames_out = 0
        self.frames_in = 0
        self.bytes_out = 0
        self.bytes_in = 0
        self.duplicates = 0
        self.resent = 0
        self.connects = 0
        self.last_heard: float | None = None
        self.last_progress = owner.clock.seconds()
        self.refusals = 0
        self.refused = 0
        self.fatal: tuple[int, str] | None = None
        self.on_locked_out: Callable[[str], None] | None = None
        size = len(encode_hello(_hello_of(owner, name, 0, b"n" * NONCE_SIZE)))
        if size > HANDSHAKE_MAX_FRAME:
            raise ValueError(
                f"a HELLO listing this group's {len(owner.members)} members takes"
                f" {size} bytes, over the limit of {HANDSHAKE_MAX_FRAME}: use"
                " fewer members or shorter names"
            )

    # -- sending ------------------------------------------------------------

    @property
    def full(self) -> bool:
        """
        Whether the resend buffer has reached its bound.
        """
        return self.unacked_bytes >= self.max_buffer

    def send(self, frame: Frame, body: bytes) -> None:
        """
        Number an engine frame for this link, keep it until acknowledged and
        send it now if the peer is connected.

        @param frame: The engine frame.
        @param body: Its messages, encoded once for all links.
        """
        seq = self.next_seq
        self.next_seq = seq + 1
        head = data_head(seq, self.received, frame)
        self.unacked.append((seq, head, body))
        self.unacked_bytes += len(head) + len(body)
        if self.outbound is not None and self.outbound.send_data(head, body):
            # The frame carries the acknowledgement too.
            self._told = self.received
            self._cancel_ack()

    def send_control(self, message: Control) -> None:
        """
        Number a control message for this link (on the sequence DATA frames
        take, so that the peer takes both in the order they were sent), keep
        it until acknowledged and send it now if the peer is connected.
        """
        seq = self.next_seq
        self.next_seq = seq + 1
        raw = encode_control(ControlFrame(seq, self.received, message))
        self.unacked.append((seq, raw, b""))
        self.unacked_bytes += len(raw)
        if self.outbound is not None and self.outbound.send_data(raw, b""):
            self._told = self.received
            self._cancel_ack()

    def acknowledged(self, ack: int) -> None:
        """
        The peer holds every DATA frame up to C{ack}: forget them.

        Acknowledgements come over both connections and may arrive out of
        order; an older one changes nothing.

        @raise LinkError: If C{ack} is of a frame never sent.
        """
        if ack >= self.next_seq:
            raise LinkError(
                f"acknowledges frame {ack}, but only {self.next_seq - 1} were sent"
            )
        unacked = self.unacked
        freed = False
        while unacked and unacked[0][0] <= ack:
            _, head, body = unacked.popleft()
            self.unacked_bytes -= len(head) + len(body)
            freed = True
        if freed:
            self.last_progress = self.owner.clock.seconds()
            # The node decides whether that makes room: what it admitted
            # this turn counts too, so "was full" here is not enough.
            self.owner.link_has_room()

    def outbound_ready(self, proto: PeerProtocol, received: int) -> None:
        """
        A dialed connection finished its handshake: the peer holds our frames
        up to C{received}; send it everything after that, then new frames.
        """
        self.acknowledged(received)
        self.outbound = proto
        self.connects += 1
        for _, head, body in self.unacked:
            proto.send_data(head, body)
            self.resent += 1

    # -- receiving ----------------------------------------------------------

    def data_received(self, data: Data) -> Frame | None:
        """
        Take a DATA frame that arrived on the inbound connection.

        @return: The engine frame if it is the next one in order, or L{None}
            if it is a duplicate already held.
        @raise LinkError: If frames are missing before it, or it acknowledges
            a frame never sent.
        """
        return data.frame if self.in_order(data.seq, data.ack) else None

    def in_order(self, seq: int, ack: int) -> bool:
        """
        Take the numbers of a DATA or CONTROL frame that arrived on the
        inbound connection.

        @return: Whether it is the next frame in order (else it is a
            duplicate already held).
        @raise LinkError: If frames are missing before it, or it acknowledges
            a frame never sent.
        """
        self.acknowledged(ack)
        if seq <= self.received:
            self.duplicates += 1
            return False
        if seq != self.received + 1:
            raise LinkError(
                f"frame {seq} arrived, but the next expected is {self.received + 1}"
            )
        return True

    def accepted(self, seq: int) -> None:
        """
        The engine took DATA frame C{seq}: it is held.
        """
        self.received = seq
        if self.closed:
            return
        if self.received - self._told >= self.ack_every:
            self.send_ack()
        elif self._ack_call is None:
            self._ack_call = self.owner.clock.callLater(self.ack_delay, self.send_ack)

    def send_ack(self) -> None:
        """
        Tell the peer which of its DATA frames are held, on the connection
        it dialed, if nothing has told it yet.
        """
        self._cancel_ack()
        if self.received > self._told and self.inbound is not None:
            self._told = self.received
            self.inbound.send_raw(encode_ack(Ack(self.received)))

    def _cancel_ack(self) -> None:
        if self._ack_call is not None:
            if self._ack_call.active():
                self._ack_call.cancel()
            self._ack_call = None

    # -- connections --------------------------------------------------------

    def check_incarnation(self, incarnation: int) -> str | None:
        """
        Whether a handshake from the peer's incarnation can be served.

        A peer that restarted without its state is a new incarnation; taking
        it back would break FIFO and total order, unless nothing was ever
        exchanged with the old one.

        @return: L{None} if it can, else the reason in plain words.
        """
        if self.incarnation is None or self.incarnation == incarnation:
            self.incarnation = incarnation
            return None
        untouched = self.next_seq == 1 and self.received == 0
        problem = self.owner.new_incarnation(self.name, incarnation, untouched)
        if problem is None:
            self.restart(incarnation)
        return problem

    def restart(self, incarnation: int) -> None:
        """
        Start the link afresh with another incarnation of the peer: what
        was numbered, sent or held for the one before is for a process that
        is gone.
        """
        self.incarnation = incarnation
        self.next_seq = 1
        self.unacked.clear()
        self.unacked_bytes = 0
        self.received = 0
        self._told = 0
        self._cancel_ack()
        for proto in (self.outbound, self.inbound):
            if proto is not None:
                proto.close()
        self.outbound = self.inbound = None

    def claimant(self, incarnation: int) -> str:
        """
        The reason to refuse a connection that claims the peer's name for
        C{incarnation}, which is not the one L{reached} at its address.
        """
        return (
            f"another process holds the name {self.name!r}: {self.owner.me!r}"
            f" reaches {self.name!r} at {self.reached_at} (incarnation"
            f" {self.reached:016x}), and this connection comes from a second"
            f" process started as {self.name!r} (incarnation {incarnation:016x});"
            " stop the second one or give it a name of its own"
        )

    def reached_process(self, incarnation: int, address: str) -> None:
        """
        A dial to the peer's configured address was answered by
        C{incarnation} at C{address}: that process holds the name.  The
        accepted connections held for this learn whether they come from it.
        """
        self.reached = incarnation
        self.reached_at = address
        for proto in sorted(self.held, key=id):
            proto.release()

    def inbound_ready(self, proto: PeerProtocol, told: int) -> PeerProtocol | None:
        """
        An accepted connection finished its handshake and replaces any
        previous one from the same peer.

        @param told: The count of held frames its HELLO answer told the peer.
        @return: The connection it replaced, for the caller to close.
        """
        old, self.inbound = self.inbound, proto
        self._told = told
        return old if old is not proto else None

    def connection_lost(self, proto: PeerProtocol) -> None:
        """
        A connection of this link closed.
        """
        if self.outbound is proto:
            self.outbound = None
        if self.inbound is proto:
            self.inbound = None

    def heartbeat(self, now: float, interval: float, idle_limit: float) -> None:
        """
        Keep both connections to the peer alive and check that they are.

        A connection on which nothing was sent for C{interval} seconds gets
        an ACK frame, so the peer hears from this member on both connections
        even when there is nothing to say.  A connection on which nothing
        arrived for C{idle_limit} seconds is dropped, so that a connection
        whose peer vanished without closing it is redialled rather than
        trusted.
        """
        for proto in (self.outbound, self.inbound):
            if proto is None or not proto.is_open:
                continue
            if now - proto.last_received > idle_limit:
                proto.drop(
                    f"nothing received for {now - proto.last_received:.1f} s",
                    count=False,
                )
            elif (
                proto.blocked_since is not None
                and now - proto.blocked_since > idle_limit
                and now - self.last_progress > idle_limit
            ):
                proto.drop(
                    f"it has read nothing for {now - proto.blocked_since:.1f} s"
                    " (its receive buffer is full)",
                    count=False,
                )
            elif now - proto.last_sent >= interval:
                proto.send_raw(encode_ack(Ack(self.received)))
                self._told = self.received

    def close(self) -> None:
        """
        Stop timers; the node is stopping.
        """
        self.closed = True
        self._cancel_ack()

    # -- refused dials ------------------------------------------------------

    def retry_policy(
        self, base: Callable[[int], float], longest: float
    ) -> Callable[[int], float]:
        """
        The redial policy of this link's L{PeerDialer}.

        L{ClientService} counts failed attempts only until a TCP connection
        is made, so a dial that connects and is then refused would be
        redialled after C{base(1)} (a twentieth of a second) for ever: a
        refusal storm.  This policy also waits L{REFUSAL_FIRST_DELAY}
        seconds after the first refusal in a row, twice that after the
        second, and so on up to C{longest}.

        @param base: The policy for dials that fail to connect.
        @param longest: The longest wait after refusals (seconds).
        """

        def delay(attempt: int) -> float:
            wait = base(attempt)
            if self.refusals:
                backoff = REFUSAL_FIRST_DELAY * 2.0 ** min(self.refusals - 1, 60)
                wait = max(wait, min(backoff, longest))
            return wait

        return delay

    def dial_refused(self, code: int, reason: str) -> None:
        """
        The peer answered a dial of this member's with REFUSE.
        """
        self.refusals += 1
        self.refused += 1
        if code not in FATAL_REFUSALS:
            return
        self.fatal = (code, reason)
        sentence = locked_out(self.owner)
        if sentence is not None and self.on_locked_out is not None:
            self.on_locked_out(sentence)

    def dial_failed(self) -> None:
        """
        A dial of this member's closed before its handshake completed,
        without a REFUSE (this side refused the answer, or the handshake
        broke or timed out): redial later, as after a refusal.
        """
        self.refusals += 1

    def dial_served(self) -> None:
        """
        The peer served a dial of this member's: it answered after the
        handshake with something other than a REFUSE.  (Completing the
        handshake is not enough: an acceptor may answer it and then refuse
        the connection, once it knows which process holds the name.)
        """
        self.refusals = 0
        self.fatal = None


def locked_out(owner: LinkOwner) -> str | None:
    """
    Whether C{owner} can never be let in as it was started, and why: most
    of its configured members (at least M{n // 2 + 1} distinct peers of a
    group of M{n}, itself counted in M{n}) refused it for a reason in
    L{FATAL_REFUSALS}.

    A majority, so that one mistaken peer cannot shut a healthy member out,
    and neither member of a pair can shut out the other.

    @return: One sentence that says what is wrong and what to do, or
        L{None}.
    """
    members = owner.members
    refusing = [
        link
        for name in sorted(members)
        if (link := owner.link_for(name)) is not None and link.fatal is not None
    ]
    if len(refusing) < len(members) // 2 + 1:
        return None
    codes = {link.fatal[0] for link in refusing if link.fatal is not None}
    advice = []
    if REFUSED_GROUP in codes:
        advice.append("start it with the --group of the other members")
    if REFUSED_SECRET in codes:
        advice.append("give it the same --secret-file as the other members")
    first = refusing[0]
    assert first.fatal is not None
    return (
        f"member {owner.me!r} can never be let in:"
        f" {_names([link.name for link in refusing])}"
        f" of its {len(members) - 1} peers refused it ({first.name}: {first.fatal[1]});"
        f" {' and '.join(advice)}"
    )


def _hello_of(owner: LinkOwner, peer: str, received: int, nonce: bytes) -> Hello:
    """
    The HELLO C{owner} sends C{peer}.
    """
    return Hello(
        owner.group,
        owner.me,
        peer,
        owner.incarnation,
        received,
        nonce,
        owner.view.id,
        tuple(sorted(owner.members)),
        "" if owner.me in owner.members else owner.advertise,
    )


def _names(names: tuple[str, ...] | list[str], most: int = 8) -> str:
    """
    Names for a sentence, the first C{most} of a long list.
    """
    if not names:
        return "none"
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} ... ({len(names)} in all)"


def members_differ(them: Hello, me: str, mine: tuple[str, ...]) -> str:
    """
    The reason to refuse a HELLO whose member list is not C{mine}: both
    lists, and what one has that the other has not.

    The views are left out: they change as members leave, and the reason
    is to stay the same for as long as the mistake does, so that it is
    logged once (see L{RepeatFilter}).

    @param them: The HELLO.
    @param me: This node's name.
    @param mine: This node's configured member list, sorted.
    """
    theirs = them.members
    who = repr(them.member)
    missing = [name for name in mine if name not in theirs]
    extra = [name for name in theirs if name not in mine]
    diff = [
        *([f"{who} omits {_names(missing)}"] if missing else []),
        *([f"only {who} lists {_names(extra)}"] if extra else []),
    ]
    return (
        f"{who} lists members {_names(theirs)}; {me!r} lists {_names(mine)}"
        f" ({'; '.join(diff)}): every member must be given the same members"
    )


@implementer(IPushProducer)
class PeerProtocol(Int32StringReceiver):
    """
    One connection between two members.

    The dialing side sends HELLO at once; the accepting side checks it and
    answers with its own HELLO (or REFUSE).  After that, the dialer sends
    DATA and the acceptor sends ACK.

    @ivar peer: The peer's name once the handshake named it.
    """

    transport: ITransport
    _log = Logger()

    def __init__(self, owner: LinkOwner, dial: PeerLink | None = None) -> None:
        """
        @param owner: The node.
        @param dial: The link this connection was dialed for, or L{None} for
            an accepted connection.
        """
        self.owner = owner
        self._dialed = dial
        self.link: PeerLink | None = None
        self.peer: str | None = dial.name if dial is not None else None
        self._open = False
        self._closed = False
        self._timeout: IDelayedCall | None = None
        self.MAX_LENGTH = HANDSHAKE_MAX_FRAME
        now = owner.clock.seconds()
        self.last_sent = now
        self.last_received = now
        self.blocked_since: float | None = None
        self._nonce = b""
        self._hello: Hello | None = None
        # An accepted connection's HELLO while it waits for this node's dial
        # to the claimed member's address (see PeerLink.held).
        self._claim: Hello | None = None
        # What this side's HELLO answer told the peer it holds.
        self._told: int | None = None
        # Whether this side paused its transport's reading (while held).
        self._paused = False
        self._grace: IDelayedCall | None = None
        # Bytes received but not yet a whole frame, and how many bytes the
        # frame they begin needs (prefix included).
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._wanted = _LENGTH.size
        # For a dialed connection: whether its link has counted it as
        # refused, and whether the peer has served it (see PeerLink.refusals).
        self._refusal_counted = False
        self._served = False

    @property
    def address(self) -> str:
        """
        The other end's address, for log lines.
        """
        return describe_address(self.transport.getPeer())

    def connectionMade(self) -> None:
        # As a producer, the transport tells this protocol when its write
        # buffer is full (the peer reads nothing) and when it drains.
        self.transport.registerProducer(self, True)  # type: ignore[attr-defined]
        # Frames are already batched per turn; Nagle's algorithm would only
        # hold small ones (acknowledgements) back and add latency.
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)
        self._timeout = self.owner.clock.callLater(
            self.owner.handshake_timeout, self._handshake_timed_out
        )
        if self._dialed is not None:
            if self.owner.secret is not None:
                self._nonce = os.urandom(NONCE_SIZE)
            self._send_hello(self._dialed)

    def _send_hello(self, link: PeerLink, answering: int | None = None) -> None:
        """
        Send this side's HELLO to the member of C{link} (with this side's
        nonce, empty in a group without a secret).

        @param answering: For an answer, the incarnation the peer's HELLO
            gave.  The frames held are those of the incarnation the link
            recorded; another one is told it holds none of them, since they
            are not its frames (a restarted member, a second claimant).
        """
        received = link.received
        if answering is not None:
            if answering != link.incarnation:
                received = 0
            self._told = received
        self.send_raw(
            encode_hello(_hello_of(self.owner, link.name, received, self._nonce))
        )

    def _handshake_timed_out(self) -> None:
        self._timeout = None
        timeout = self.owner.handshake_timeout
        claim = self._claim
        if claim is None:
            self.drop(f"no handshake within {timeout:g} s")
            return
        self._unhold()
        self.drop(
            f"no handshake within {timeout:g} s: this node has not reached"
            f" {claim.member!r} at its configured address, so it cannot tell"
            " whether this connection comes from the process that holds the name"
        )

    def _unhold(self) -> None:
        claim = self._claim
        if claim is not None:
            self._claim = None
            link = self.owner.link_for(claim.member)
            if link is not None:
                link.held.discard(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closed = True
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        self._grace = None
        factory = getattr(self, "factory", None)
        if isinstance(factory, PeerFactory):
            factory.live.discard(self)
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        self._unhold()
        if self.link is not None:
            self.link.connection_lost(self)
        dialed = self._dialed
        if dialed is not None and not self._open and not self._refusal_counted:
            self._refusal_counted = True
            dialed.dial_failed()

    # -- sending ------------------------------------------------------------

    def send_raw(self, frame: bytes) -> None:
        """
        Send one encoded frame.
        """
        if not self._closed:
            self.transport.writeSequence([_LENGTH.pack(len(frame)), frame])
            self.last_sent = self.owner.clock.seconds()
            link = self.link
            if link is not None:
                link.frames_out += 1
                link.bytes_out += len(frame) + 4

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full: the peer is not reading.
        """
        if self.blocked_since is None:
            self.blocked_since = self.owner.clock.seconds()

    def resumeProducing(self) -> None:
        """
        The transport's write buffer drained.
        """
        self.blocked_since = None

    def stopProducing(self) -> None:
        """
        The transport is going away; L{connectionLost} follows.
        """

    @property
    def is_open(self) -> bool:
        """
        Whether the handshake is done and the connection not closing.
        """
        return self._open and not self._closed

    def send_data(self, head: bytes, body: bytes) -> bool:
        """
        Send one DATA frame given as its link head and shared body.

        @return: Whether it was written (not if the connection is closing).
        """
        if self._closed:
            return False
        self.transport.writeSequence([_LENGTH.pack(len(head) + len(body)), head, body])
        self.last_sent = self.owner.clock.seconds()
        link = self.link
        if link is not None:
            link.frames_out += 1
            link.bytes_out += len(head) + len(body) + 4
        return True

    def drop(
        self,
        reason: str,
        refuse: bool = False,
        count: bool = True,
        code: int = REFUSED_OTHER,
    ) -> None:
        """
        Log why this connection is dropped, count it and close it.

        @param reason: What was wrong, in plain words.
        @param refuse: Tell the peer why (REFUSE) before closing; otherwise
            abort at once, reading nothing more.
        @param count: Count it as a rejected connection (not for a
            connection that merely went quiet).
        @param code: The REFUSE's code (C{REFUSED_*} in L{isis_twisted.core.wire}).
        """
        if self._closed:
            return
        self._unhold()
        self._closed = True
        who = f"member {self.peer!r}" if self.peer else "a connection"
        skipped = self._repeats.admit("drop", who, _host(self.address), reason)
        if skipped is not None:
            self._log.warn(
                "dropped {who} from {address}: {reason}{more}",
                me=self.owner.me,
                who=who,
                address=self.address,
                reason=reason,
                peer=self.peer,
                more=_more(skipped),
                repeats=skipped,
            )
        if count:
            self.owner.rejected(self.address, self.peer, reason)
        if refuse:
            refusal = encode_refuse(Refuse(reason, code))
            self.transport.writeSequence([_LENGTH.pack(len(refusal)), refusal])
            self.close()
        else:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    # -- receiving ----------------------------------------------------------

    @property
    def unframed(self) -> bytes:
        """
        The bytes received of a frame that is not yet whole.
        """
        return b"".join(self._chunks)

    def dataReceived(self, data: bytes) -> None:
        """
        Split what arrived into frames, as L{Int32StringReceiver} does, but
        gather the pieces of a frame in a list and join them once it is
        whole: Twisted's version concatenates its whole buffer with every
        read, which for a 2 MiB frame arriving in 64 KiB reads copied 32 MiB
        (the benchmark's 64 KiB payloads spent most of their time there).
        """
        if self._closed:
            # Closing: nothing more is read, and nothing is buffered.
            return
        # Any bytes are a sign of life: a large frame on a slow link takes
        # a while to arrive whole.
        self.last_received = self.owner.clock.seconds()
        self._chunks.append(data)
        self._buffered += len(data)
        if self._claim is not None:
            self._held_data()
            return
        if self._buffered < self._wanted:
            return
        chunks = self._chunks
        buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        size = len(buffer)
        offset = 0
        while not self._closed and self._claim is None:
            if size - offset < _LENGTH.size:
                self._wanted = _LENGTH.size
                break
            (length,) = _LENGTH.unpack_from(buffer, offset)
            if length > self.MAX_LENGTH:
                self._buffered = 0
                if (
                    offset == 0
                    and self._dialed is None
                    and self._hello is None
                    and not self._open
                    and looks_like_amp(buffer)
                ):
                    self._client_on_peer_port(buffer)
                else:
                    self.lengthLimitExceeded(length)
                return
            end = offset + _LENGTH.size + length
            if end > size:
                self._wanted = end - offset
                break
            # The limit may change with a frame (HELLO raises it), so each
            # frame is taken in before the next one's length is checked.
            self.stringReceived(buffer[offset + _LENGTH.size : end])
            offset = end
        if self._closed:
            self._buffered = 0
            return
        rest = buffer[offset:] if offset else buffer
        if rest:
            chunks.append(rest)
        self._buffered = len(rest)
        if self._claim is not None and rest:
            # The HELLO just read put this connection on hold.
            self._held_data()

    def _held_data(self) -> None:
        """
        Bytes arrived on a held connection.  They wait, unread, until it is
        served, except a REFUSE as the first frame (the dialer refused this
        side's answer), which is taken at once.  Past
        L{HANDSHAKE_MAX_FRAME} bytes the transport is paused, so a held
        connection buffers little.
        """
        buffer = b"".join(self._chunks)
        self._chunks[:] = [buffer]
        if len(buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer)
            end = _LENGTH.size + length
            if (
                length <= HANDSHAKE_MAX_FRAME
                and len(buffer) >= end
                and buffer[_LENGTH.size + 1 : _LENGTH.size + 2] == bytes([REFUSE])
            ):
                self.stringReceived(buffer[_LENGTH.size : end])
                return
        if self._buffered > HANDSHAKE_MAX_FRAME and not self._paused:
            self._paused = True
            self.transport.pauseProducing()  # type: ignore[attr-defined]

    def close(self) -> None:
        """
        Close the connection once what was written is sent, and abort it if
        that has not happened within L{CLOSE_GRACE} seconds.
        """
        self._unhold()
        self._closed = True
        # A transport (TLS in particular) does not start closing while a
        # producer is registered with it.
        # Test transports raise when no producer is registered; that is fine.
        with contextlib.suppress(RuntimeError):
            self.transport.unregisterProducer()  # type: ignore[attr-defined]
        self.transport.loseConnection()
        if self._grace is None:
            self._grace = self.owner.clock.callLater(CLOSE_GRACE, self._abort)

    def _abort(self) -> None:
        self._grace = None
        self.transport.abortConnection()  # type: ignore[attr-defined]

    def lengthLimitExceeded(self, length: int) -> None:
        self.drop(
            f"frame of {length} bytes is over the limit of {self.MAX_LENGTH} bytes"
        )

    def stringReceived(self, string: bytes) -> None:
        if self._closed:
            return
        if self.link is not None:
            self.link.bytes_in += len(string) + 4
            # dataReceived noted the time these bytes came.
            self.link.last_heard = self.last_received
        try:
            frame = decode_any(string)
        except WireError as e:
            self.drop(f"malformed frame: {e}")
            return
        try:
            if isinstance(frame, Refuse):
                self._refused(frame)
            elif not self._open:
                self._handshake(frame)
            elif isinstance(frame, Data):
                self._data(frame)
            elif isinstance(frame, ControlFrame):
                self._control(frame)
            elif isinstance(frame, Ack):
                assert self.link is not None
                self.link.acknowledged(frame.ack)
                if not self._served and self._dialed is not None:
                    self._served = True
                    self._dialed.dial_served()
            else:
                kind = type(frame).__name__.upper()
                again = "second " if isinstance(frame, Hello | Auth) else ""
                self.drop(f"a {again}{kind} on an open connection")
        except (LinkError, ProtocolError) as e:
            self.drop(str(e))

    def _refused(self, frame: Refuse) -> None:
        reason = frame.reason
        self.close()
        dialed = self._dialed
        if dialed is not None and not self._refusal_counted:
            self._refusal_counted = True
            dialed.dial_refused(frame.code, reason)
        who = f"member {self.peer!r}" if self.peer else "a peer"
        skipped = self._repeats.admit("refused", who, _host(self.address), reason)
        if skipped is not None:
            self._log.warn(
                "{who} at {address} refused this node: {reason}{more}",
                me=self.owner.me,
                who=who,
                address=self.address,
                reason=reason,
                code=frame.code,
                more=_more(skipped),
                repeats=skipped,
            )

    @property
    def _repeats(self) -> RepeatFilter:
        """
        The filter for this connection's log lines: its factory's, so that
        it outlives the connection (a redial is a new connection).
        """
        factory = getattr(self, "factory", None)
        if isinstance(factory, PeerFactory):
            return factory.repeats
        return RepeatFilter(self.owner.clock)

    def _client_on_peer_port(self, data: bytes) -> None:
        """
        A client of the client API (AMP: the C{isis} command, an
        application) dialed the peer port.  Say so, in the log and to the
        client: its first command fails with L{WRONG_PORT_CODE} and a
        sentence it can show, instead of a connection lost for no reason.
        """
        reason = (
            f"a client (AMP, such as the isis command) connected to the peer port"
            f" of member {self.owner.me!r}; clients connect to its --client-port"
        )
        tag = _amp_tag(data)
        if tag is not None:
            self.transport.write(
                _amp_box(
                    {
                        b"_error": tag,
                        b"_error_code": WRONG_PORT_CODE,
                        b"_error_description": reason.encode("utf-8"),
                    }
                )
            )
        self._closed = True
        skipped = self._repeats.admit("client", _host(self.address))
        if skipped is not None:
            self._log.warn(
                "member {me!r} refused a connection from {address}: {reason}{more}",
                me=self.owner.me,
                address=self.address,
                reason=reason,
                more=_more(skipped),
                repeats=skipped,
            )
        self.owner.rejected(self.address, None, reason)
        self.close()

    def _handshake(
        self, frame: Data | Hello | Ack | Auth | Who | Here | ControlFrame
    ) -> None:
        if self._hello is not None:
            self._authenticate(frame)
            return
        if isinstance(frame, Who) and self._dialed is None:
            self._who(frame)
            return
        if not isinstance(frame, Hello):
            self.drop("the first frame was not a HELLO", refuse=True)
            return
        owner = self.owner
        if self._other_group(frame.group):
            return
        if self._dialed is not None and frame.member != self._dialed.name:
            self.drop(
                f"dialed member {self._dialed.name!r} but {frame.member!r}"
                " answered: check the peer addresses",
                refuse=True,
                code=REFUSED_NAME,
            )
            return
        if frame.peer != owner.me:
            self.drop(
                f"{frame.member!r} meant to reach member {frame.peer!r}, but this"
                f" is {owner.me!r}: check the peer addresses of {frame.member!r}",
                refuse=True,
                code=REFUSED_NAME,
            )
            return
        # Members exchange nothing unless they were given the same members:
        # the configured lists, not the views, which change as members leave
        # (a member still in an older view must reach the others to catch
        # up).
        mine = tuple(sorted(owner.members))
        if frame.members and frame.members != mine:
            self._differ(frame, mine)
            return
        link = owner.link_for(frame.member)
        # A member added at run time (or asking to be) gives its address:
        # a link is made for it once it passed every check below.
        stranger = (
            link is None
            and self._dialed is None
            and bool(frame.address)
            and frame.member != owner.me
            and frame.member not in owner.members
        )
        if link is None and not stranger:
            what = (
                "this node's own name"
                if frame.member == owner.me
                else f"not a member (members: {', '.join(owner.members)})"
            )
            self.drop(f"{frame.member!r} is {what}", refuse=True, code=REFUSED_NAME)
            return
        if frame.members != mine:
            self._differ(frame, mine)
            return
        self.peer = frame.member
        if owner.require_certificate:
            presented = peer_name(self.transport)
            if presented != frame.member:
                what = (
                    "no certificate"
                    if presented is None
                    else f"the certificate of {presented!r}"
                )
                self.drop(
                    f"{frame.member!r} presented {what}: a member's certificate"
                    " must name it",
                    refuse=True,
                    code=REFUSED_NAME,
                )
                return
        if owner.secret is None:
            if frame.nonce:
                self.drop(
                    "the peer uses a group secret but this node has none"
                    " (give every member the same --secret-file)",
                    refuse=True,
                    code=REFUSED_SECRET,
                )
                return
            self._open_stranger(link, frame)
            return
        if not frame.nonce:
            self.drop(
                "this group requires the group secret, and the peer has none"
                " (give every member the same --secret-file)",
                refuse=True,
                code=REFUSED_SECRET,
            )
            return
        # Nothing of the link is touched until the peer has proved it holds
        # the secret: a stranger must not even record an incarnation.
        self._hello = frame
        if self._dialed is None:
            self._nonce = os.urandom(NONCE_SIZE)
            if link is None:
                self._told = 0
                hello = _hello_of(owner, frame.member, 0, self._nonce)
                self.send_raw(encode_hello(hello))
            else:
                self._send_hello(link, frame.incarnation)
        else:
            self.send_raw(encode_auth(Auth(self._mac(b"dialer"))))

    def _differ(self, frame: Hello, mine: tuple[str, ...]) -> None:
        self.drop(
            members_differ(frame, self.owner.me, mine),
            refuse=True,
            code=REFUSED_MEMBERS,
        )

    def _mac(self, role: bytes) -> bytes:
        """
        The MAC that the side in C{role} sends: over both HELLOs' names,
        incarnations and nonces and the member list, so that it proves the
        secret for this connection only and a recorded handshake cannot be
        replayed.
        """
        hello = self._hello
        secret = self.owner.secret
        assert hello is not None and secret is not None
        if self._dialed is not None:
            dialer, acceptor = self.owner.me, hello.member
            nonces = self._nonce + hello.nonce
            incarnations = (self.owner.incarnation, hello.incarnation)
        else:
            dialer, acceptor = hello.member, self.owner.me
            nonces = hello.nonce + self._nonce
            incarnations = (hello.incarnation, self.owner.incarnation)
        # The member list too: both sides checked that the HELLOs' lists are
        # their own, and the MAC proves that neither HELLO's was changed on
        # the way.
        members = b"".join(
            len(raw).to_bytes(2, "big") + raw
            for raw in (name.encode() for name in sorted(self.owner.members))
        )
        transcript = b"".join(
            [
                b"isis-twisted auth 2\0",
                role,
                b"\0",
                *(
                    len(part).to_bytes(2, "big") + part
                    for part in (
                        self.owner.group.encode(),
                        dialer.encode(),
                        acceptor.encode(),
                        nonces,
                    )
                ),
                incarnations[0].to_bytes(8, "big"),
                incarnations[1].to_bytes(8, "big"),
                len(self.owner.members).to_bytes(2, "big"),
                members,
            ]
        )
        return hmac.new(secret, transcript, hashlib.sha256).digest()

    def _authenticate(
        self, frame: Data | Hello | Ack | Auth | Who | Here | ControlFrame
    ) -> None:
        hello = self._hello
        assert hello is not None
        if not isinstance(frame, Auth):
            self.drop("expected the group-secret proof (AUTH)", refuse=True)
            return
        theirs = b"acceptor" if self._dialed is not None else b"dialer"
        if not hmac.compare_digest(frame.mac, self._mac(theirs)):
            self.drop("failed the group secret check", refuse=True, code=REFUSED_SECRET)
            return
        link = self.owner.link_for(hello.member)
        if self._dialed is None:
            self.send_raw(encode_auth(Auth(self._mac(b"acceptor"))))
        self._open_stranger(link, hello)

    def _open_stranger(self, link: PeerLink | None, frame: Hello) -> None:
        """
        Open C{link}, or, for a member the group was not started with, a
        new link to it: held until this node's dial to the address it gave
        reaches the same process.
        """
        if link is None:
            link = self.owner.add_peer(frame.member, frame.address)
            if link is None:
                self.drop(
                    f"{frame.member!r} is not a member, and this group takes"
                    " no more members",
                    refuse=True,
                )
                return
        self._open_link(link, frame)

    def _other_group(self, group: str) -> bool:
        """
        Refuse a connection whose first frame names another group.
        """
        mine = self.owner.group
        if group == mine:
            return False
        self.drop(
            f"group {group!r} is not this node's group {mine!r}",
            refuse=True,
            code=REFUSED_GROUP,
        )
        return True

    def _who(self, frame: Who) -> None:
        """
        A member about to join asks who listens here: answer, and close.
        """
        if self._other_group(frame.group):
            return
        self.send_raw(encode_here(self.owner.here()))
        self._closed = True
        self.transport.loseConnection()

    def _open_link(self, link: PeerLink, frame: Hello) -> None:
        if self._dialed is not None:
            self._open_outbound(link, frame)
            return
        if link.reached == frame.incarnation:
            self._open_inbound(link, frame)
        elif link.reached is not None and (
            link.outbound is not None and link.outbound.is_open
        ):
            # The process at the member's address is connected right now and
            # is another one: this is a second process using the name.
            self.drop(link.claimant(frame.incarnation), refuse=True)
        else:
            self._hold(link, frame)

    def _open_outbound(self, link: PeerLink, frame: Hello) -> None:
        """
        The process at the peer's configured address answered: it holds the
        peer's name, whatever else happens to this connection.
        """
        link.reached_process(frame.incarnation, self.address)
        problem = link.check_incarnation(frame.incarnation)
        if problem is not None:
            self.drop(problem, refuse=True)
            return
        self._opened(link)
        link.outbound_ready(self, frame.received)
        view = self.owner.view.id
        self._log.info(
            "connected to member {peer!r} at {address}{views}",
            peer=link.name,
            address=self.address,
            views=(
                f" (it is in view {frame.view}, this node in view {view})"
                if frame.view != view
                else ""
            ),
            view=frame.view,
        )

    def _hold(self, link: PeerLink, frame: Hello) -> None:
        """
        Hold an accepted connection that claims C{link}'s member until this
        node's dial to the member's configured address says which process
        holds the name.

        It is answered now: the peer's own dial to this node waits for the
        answer, and this node's dial to the peer may be held just so on the
        other side; holding the answer too would hold both for ever.  What
        the peer sends after the answer stays unread until the connection is
        served or refused (see L{_held_data}).
        """
        if self.owner.secret is None:
            self._send_hello(link, frame.incarnation)
        self._claim = frame
        link.held.add(self)

    def release(self) -> None:
        """
        This node's dial reached the member this held connection claims:
        serve it if it comes from the same process, else refuse it.
        """
        frame = self._claim
        if frame is None or self._closed:
            return
        link = self.owner.link_for(frame.member)
        assert link is not None
        self._unhold()
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()  # type: ignore[attr-defined]
        if link.reached == frame.incarnation:
            self._open_inbound(link, frame)
        else:
            self.drop(link.claimant(frame.incarnation), refuse=True)
        if not self._closed:
            # What arrived while it was held.
            self._wanted = _LENGTH.size
            self.dataReceived(b"")

    def _open_inbound(self, link: PeerLink, frame: Hello) -> None:
        problem = link.check_incarnation(frame.incarnation)
        if problem is not None:
            self.drop(problem, refuse=True)
            return
        if self._told is None:
            # Not answered yet (no secret, not held): the answer says what is
            # held, now that the incarnation is the recorded one.
            self._send_hello(link, frame.incarnation)
        assert self._told is not None
        self._opened(link)
        # The dialer's `received` is not applied here: this side's own dialed
        # connection reports what the peer holds, once it has checked that it
        # reached the right member.
        old = link.inbound_ready(self, self._told)
        if old is not None:
            old._closed = True
            old.transport.abortConnection()  # type: ignore[attr-defined]
            self._log.info(
                "member {peer!r} reconnected from {address}; dropped its previous"
                " connection",
                peer=link.name,
                address=self.address,
            )

    def _opened(self, link: PeerLink) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        self.link = link
        self._open = True
        self.MAX_LENGTH = self.owner.max_frame
        link.last_heard = self.owner.clock.seconds()

    def _data(self, data: Data) -> None:
        link = self.link
        assert link is not None
        if self._dialed is not None:
            raise LinkError("DATA on a connection this node dialed")
        if link.inbound is not self:
            return
        link.frames_in += 1
        link.last_heard = self.owner.clock.seconds()
        frame = link.data_received(data)
        if frame is not None:
            self.owner.frame_received(link.name, frame)
            link.accepted(data.seq)

    def _control(self, frame: ControlFrame) -> None:
        link = self.link
        assert link is not None
        if self._dialed is not None:
            raise LinkError("CONTROL on a connection this node dialed")
        if link.inbound is not self:
            return
        link.frames_in += 1
        link.last_heard = self.owner.clock.seconds()
        if link.in_order(frame.seq, frame.ack):
            self.owner.control_received(link.name, frame.message)
            link.accepted(frame.seq)


def _more(skipped: int) -> str:
    """
    The tail of a repeated log line: how many like it were left out.
    """
    if not skipped:
        return ""
    return f" (and {skipped} more like it in the last {REPEAT_INTERVAL:g} s)"


class PeerFactory(Factory):
    """
    Builds L{PeerProtocol}s: for accepted connections when C{dial} is
    L{None}, else for the connections dialed to that link's peer.

    Not noisy: a dialing factory starts and stops with every redial, and
    Twisted's "Starting factory <...>" lines said neither who nor why.

    @ivar repeats: Keeps its connections' repeated refusals out of the log.
    """

    noisy = False

    def __init__(self, owner: LinkOwner, dial: PeerLink | None = None) -> None:
        self.owner = owner
        self.dial = dial
        self.live: set[PeerProtocol] = set()
        self.repeats = RepeatFilter(owner.clock)

    def logPrefix(self) -> str:
        """
        How Twisted names this factory in its own lines ("... starting on
        9001"): by member, not by class.
        """
        if self.dial is not None:
            return f"member {self.owner.me!r} dialing {self.dial.name!r}"
        return f"member {self.owner.me!r} peer port"

    def buildProtocol(self, addr: IAddress | None) -> PeerProtocol:
        proto = PeerProtocol(self.owner, self.dial)
        proto.factory = self
        self.live.add(proto)
        return proto
