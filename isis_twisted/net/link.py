"""
Reliable FIFO links between members, over any stream endpoint: the state of
one pair of members that outlives connections.

Each member dials every other member (redialling with
L{twisted.application.internet.ClientService}) and sends its own frames on
the connection it dialed; it receives each peer's frames on the connection
that peer dialed.  So between two members there are two connections, each
carrying DATA one way and acknowledgements back, and no race over which of
two simultaneous connections wins.

A L{PeerLink} holds the link's numbers and redial state (the pure
L{LinkSequence} and L{RedialBackoff} of L{isis_twisted.core.linkrules}) and
does what they decide: sends on the connection, runs the acknowledgement
timer, tells the node.  One connection is a
L{isis_twisted.net.connection.PeerProtocol}.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from twisted.application.internet import ClientService
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel

from isis_twisted.core.engine import Frame
from isis_twisted.core.handshake import (
    HANDSHAKE_MAX_FRAME,
    NONCE_SIZE,
    locked_out_sentence,
)
from isis_twisted.core.linkrules import LinkSequence, RedialBackoff
from isis_twisted.core.views import Control, View
from isis_twisted.core.wire import Ack, Data, Hello, Here, encode_ack, encode_hello

if TYPE_CHECKING:
    from isis_twisted.net.connection import PeerProtocol

__all__ = [
    "LinkOwner",
    "PeerDialer",
    "PeerLink",
    "hello_of",
    "locked_out",
]


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


class PeerLink:
    """
    The lasting state of the link to one peer.

    @ivar name: The peer's member name.
    @ivar sequence: The link's numbers both ways (see L{LinkSequence}).
    @ivar redial: How soon to redial the peer after refusals (see
        L{RedialBackoff}).
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
        self.sequence = LinkSequence()
        self.redial = RedialBackoff()
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
        self.resent = 0
        self.connects = 0
        self.last_heard: float | None = None
        self.last_progress = owner.clock.seconds()
        self.on_locked_out: Callable[[str], None] | None = None
        size = len(encode_hello(hello_of(owner, name, 0, b"n" * NONCE_SIZE)))
        if size > HANDSHAKE_MAX_FRAME:
            raise ValueError(
                f"a HELLO listing this group's {len(owner.members)} members takes"
                f" {size} bytes, over the limit of {HANDSHAKE_MAX_FRAME}: use"
                " fewer members or shorter names"
            )

    # -- the numbers, as the node and tests read them -----------------------

    @property
    def incarnation(self) -> int | None:
        """
        The peer's incarnation, once a handshake told it.
        """
        return self.sequence.incarnation

    @incarnation.setter
    def incarnation(self, incarnation: int | None) -> None:
        self.sequence.incarnation = incarnation

    @property
    def received(self) -> int:
        """
        The highest sequence number, without gaps, held of the peer's frames.
        """
        return self.sequence.received

    @received.setter
    def received(self, seq: int) -> None:
        self.sequence.received = seq

    @property
    def next_seq(self) -> int:
        """
        The sequence number the next frame to the peer gets.
        """
        return self.sequence.next_seq

    @property
    def unacked(self) -> deque[tuple[int, bytes, bytes]]:
        """
        The frames sent and not yet acknowledged, oldest first.
        """
        return self.sequence.unacked

    @property
    def unacked_bytes(self) -> int:
        """
        The size of L{unacked}.
        """
        return self.sequence.unacked_bytes

    @property
    def duplicates(self) -> int:
        """
        The peer's frames that arrived again and were dropped.
        """
        return self.sequence.duplicates

    @property
    def refused(self) -> int:
        """
        Every REFUSE the peer answered this member's dials with.
        """
        return self.redial.refused

    @property
    def fatal(self) -> tuple[int, str] | None:
        """
        The code and reason of the peer's last refusal that no retry can
        change, until it serves a dial.
        """
        return self.redial.fatal

    # -- sending ------------------------------------------------------------

    @property
    def full(self) -> bool:
        """
        Whether the resend buffer has reached its bound.
        """
        return self.sequence.unacked_bytes >= self.max_buffer

    def send(self, frame: Frame, body: bytes) -> None:
        """
        Number an engine frame for this link, keep it until acknowledged and
        send it now if the peer is connected.

        @param frame: The engine frame.
        @param body: Its messages, encoded once for all links.
        """
        head = self.sequence.number_data(frame, body)
        if self.outbound is not None and self.outbound.send_data(head, body):
            # The frame carries the acknowledgement too.
            self.sequence.carried()
            self._cancel_ack()

    def send_control(self, message: Control) -> None:
        """
        Number a control message for this link (on the sequence DATA frames
        take, so that the peer takes both in the order they were sent), keep
        it until acknowledged and send it now if the peer is connected.
        """
        raw = self.sequence.number_control(message)
        if self.outbound is not None and self.outbound.send_data(raw, b""):
            self.sequence.carried()
            self._cancel_ack()

    def acknowledged(self, ack: int) -> None:
        """
        The peer holds every frame up to C{ack}: forget them.

        @raise LinkError: If C{ack} is of a frame never sent.
        """
        if self.sequence.acknowledged(ack):
            self._progress()

    def _progress(self) -> None:
        self.last_progress = self.owner.clock.seconds()
        # The node decides whether that makes room: what it admitted this
        # turn counts too, so "was full" here is not enough.
        self.owner.link_has_room()

    def outbound_ready(self, proto: PeerProtocol, received: int) -> None:
        """
        A dialed connection finished its handshake: the peer holds our frames
        up to C{received}; send it everything after that, then new frames.
        """
        self.acknowledged(received)
        self.outbound = proto
        self.connects += 1
        for _, head, body in self.sequence.unacked:
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
        sequence = self.sequence
        if sequence.acknowledged(ack):
            self._progress()
        return sequence.in_order(seq)

    def accepted(self, seq: int) -> None:
        """
        The node took frame C{seq}: it is held.
        """
        ack_now = self.sequence.accepted(seq, self.ack_every)
        if self.closed:
            return
        if ack_now:
            self.send_ack()
        elif self._ack_call is None:
            self._ack_call = self.owner.clock.callLater(self.ack_delay, self.send_ack)

    def send_ack(self) -> None:
        """
        Tell the peer which of its frames are held, on the connection it
        dialed, if nothing has told it yet.
        """
        self._cancel_ack()
        if self.inbound is not None:
            ack = self.sequence.ack_due()
            if ack is not None:
                self.inbound.send_raw(encode_ack(Ack(ack)))

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
        sequence = self.sequence
        if not sequence.is_another(incarnation):
            return None
        problem = self.owner.new_incarnation(self.name, incarnation, sequence.untouched)
        if problem is None:
            self.restart(incarnation)
        return problem

    def restart(self, incarnation: int) -> None:
        """
        Start the link afresh with another incarnation of the peer, and
        close the connections to the one before.
        """
        self.sequence.restart(incarnation)
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
        reached = self.reached if self.reached is not None else 0
        return (
            f"another process holds the name {self.name!r}: {self.owner.me!r}"
            f" reaches {self.name!r} at {self.reached_at} (incarnation"
            f" {reached:016x}), and this connection comes from a second"
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
        self.sequence.told = told
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
                proto.send_raw(encode_ack(Ack(self.sequence.keepalive())))

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
        refusal storm.  This policy waits longer after each refusal in a row
        (see L{RedialBackoff.delay}), up to C{longest}.

        @param base: The policy for dials that fail to connect.
        @param longest: The longest wait after refusals (seconds).
        """

        def delay(attempt: int) -> float:
            return self.redial.delay(base(attempt), longest)

        return delay

    def dial_refused(self, code: int, reason: str) -> None:
        """
        The peer answered a dial of this member's with REFUSE.
        """
        if not self.redial.refused_with(code, reason):
            return
        sentence = locked_out(self.owner)
        if sentence is not None and self.on_locked_out is not None:
            self.on_locked_out(sentence)

    def dial_failed(self) -> None:
        """
        A dial of this member's closed before its handshake completed,
        without a REFUSE (this side refused the answer, or the handshake
        broke or timed out): redial later, as after a refusal.
        """
        self.redial.failed()

    def dial_served(self) -> None:
        """
        The peer served a dial of this member's: it answered after the
        handshake with something other than a REFUSE.  (Completing the
        handshake is not enough: an acceptor may answer it and then refuse
        the connection, once it knows which process holds the name.)
        """
        self.redial.served()


def locked_out(owner: LinkOwner) -> str | None:
    """
    Whether C{owner} can never be let in as it was started, and why (see
    L{locked_out_sentence}), from the last refusals of its links.
    """
    refusing = [
        (name, fatal)
        for name in sorted(owner.members)
        if (link := owner.link_for(name)) is not None
        and (fatal := link.redial.fatal) is not None
    ]
    return locked_out_sentence(owner.me, owner.members, refusing)


def hello_of(owner: LinkOwner, peer: str, received: int, nonce: bytes) -> Hello:
    """
    The HELLO C{owner} sends C{peer}.

    @param received: What it says is held of the peer's frames.
    @param nonce: This side's nonce (empty in a group without a secret).
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
