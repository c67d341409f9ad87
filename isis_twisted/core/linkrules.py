"""
The peer link's rules, as explicit state and no I/O.

A link between two members outlives its connections.  What it must hold
across them is its L{LinkSequence}: the sequence numbers of the frames each
way, the frames sent but not yet acknowledged (resent after a reconnect),
what the peer was last told it holds, and which incarnation of the peer the
numbers belong to.  How soon to redial a peer that keeps refusing is its
L{RedialBackoff}.  Each connection goes through the L{Phase}s of a
handshake, kept by a L{ConnectionState}, which also says what a frame that
arrives in each phase means (L{ConnectionState.route}).

The Twisted side (L{isis_twisted.net.link}) owns the sockets and timers and
asks these objects what to do; they read no clock and send nothing, so the
rules can be driven and tested on their own.
"""

from __future__ import annotations

import enum
from collections import deque

import attrs

from isis_twisted.core.control import ControlFrame, encode_control
from isis_twisted.core.engine import Frame
from isis_twisted.core.views import Control
from isis_twisted.core.wire import (
    FATAL_REFUSALS,
    Ack,
    Auth,
    Data,
    Hello,
    Here,
    Refuse,
    Who,
    data_head,
)

__all__ = [
    "REFUSAL_FIRST_DELAY",
    "ConnectionState",
    "LinkError",
    "LinkSequence",
    "Phase",
    "RedialBackoff",
    "Route",
    "Wrong",
]

REFUSAL_FIRST_DELAY = 0.1
"""
Seconds before the redial that follows a first refused dial; each further
refusal in a row doubles it, up to the node's longest redial wait (see
L{RedialBackoff.delay}).
"""

AnyFrame = Data | Hello | Ack | Auth | Who | Here | Refuse | ControlFrame
"""
Every frame a link's connection can carry.
"""


class LinkError(Exception):
    """
    A peer broke the link protocol (a sequence gap, an acknowledgement of a
    frame never sent, a frame on the wrong connection).
    """


@attrs.define
class LinkSequence:
    """
    The numbers of one link, both ways.

    @ivar incarnation: The peer's incarnation, once a handshake told it; the
        numbers below are of frames exchanged with that incarnation.
    @ivar next_seq: The sequence number the next DATA or CONTROL frame to
        the peer gets.
    @ivar unacked: The frames sent and not yet acknowledged, oldest first,
        as (sequence number, link head, shared body).
    @ivar unacked_bytes: Their size.
    @ivar received: The highest sequence number, without gaps, held of the
        peer's frames.
    @ivar told: The highest one the peer was told is held (by an ACK, or a
        frame that carried the acknowledgement, or a HELLO answer).
    @ivar duplicates: The peer's frames that arrived again and were dropped.
    """

    incarnation: int | None = None
    next_seq: int = 1
    unacked: deque[tuple[int, bytes, bytes]] = attrs.field(factory=deque)
    unacked_bytes: int = 0
    received: int = 0
    told: int = 0
    duplicates: int = 0

    def number_data(self, frame: Frame, body: bytes) -> bytes:
        """
        Number an engine frame and keep it until it is acknowledged.

        @param body: Its messages, encoded once for all links.
        @return: The frame's link head, to send before C{body}.
        """
        seq = self.next_seq
        self.next_seq = seq + 1
        head = data_head(seq, self.received, frame)
        self.unacked.append((seq, head, body))
        self.unacked_bytes += len(head) + len(body)
        return head

    def number_control(self, message: Control) -> bytes:
        """
        Number a membership control message on the sequence DATA frames
        take (so that the peer takes both in the order they were sent) and
        keep it until it is acknowledged.

        @return: The encoded CONTROL frame.
        """
        seq = self.next_seq
        self.next_seq = seq + 1
        raw = encode_control(ControlFrame(seq, self.received, message))
        self.unacked.append((seq, raw, b""))
        self.unacked_bytes += len(raw)
        return raw

    def carried(self) -> None:
        """
        A frame just sent carried the acknowledgement of what is held.
        """
        self.told = self.received

    def acknowledged(self, ack: int) -> bool:
        """
        The peer holds every frame up to C{ack}: forget them.

        Acknowledgements come over both connections and may arrive out of
        order; an older one changes nothing.

        @return: Whether any frame was forgotten.
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
        return freed

    def in_order(self, seq: int) -> bool:
        """
        Take the number of a DATA or CONTROL frame that arrived (its
        acknowledgement is for L{acknowledged}).

        @return: Whether it is the next frame in order (else it is a
            duplicate already held, and counted).
        @raise LinkError: If frames are missing before it.
        """
        if seq <= self.received:
            self.duplicates += 1
            return False
        if seq != self.received + 1:
            raise LinkError(
                f"frame {seq} arrived, but the next expected is {self.received + 1}"
            )
        return True

    def accepted(self, seq: int, ack_every: int) -> bool:
        """
        The frame C{seq} was taken: it is held.

        @param ack_every: How many frames held and not yet told warrant an
            acknowledgement of their own at once.
        @return: Whether to acknowledge now (else soon, unless a frame the
            other way carries it first).
        """
        self.received = seq
        return self.received - self.told >= ack_every

    def ack_due(self) -> int | None:
        """
        The acknowledgement to send on its own, if the peer was not told yet
        of everything held; it counts as told.
        """
        if self.received > self.told:
            self.told = self.received
            return self.received
        return None

    def keepalive(self) -> int:
        """
        The acknowledgement a keep-alive carries (whatever was told); it
        counts as told.
        """
        self.told = self.received
        return self.received

    def answer(self, incarnation: int) -> int:
        """
        What a HELLO answer to C{incarnation} says is held: the frames held
        are of the recorded incarnation, and another one (a restarted
        member, a second claimant) is told it holds none of them.
        """
        return self.received if incarnation == self.incarnation else 0

    def is_another(self, incarnation: int) -> bool:
        """
        Whether C{incarnation} is another one than the peer's recorded one;
        the first one a handshake tells is recorded.
        """
        if self.incarnation is None or self.incarnation == incarnation:
            self.incarnation = incarnation
            return False
        return True

    @property
    def untouched(self) -> bool:
        """
        Whether nothing was ever exchanged with the recorded incarnation.
        """
        return self.next_seq == 1 and self.received == 0

    def restart(self, incarnation: int) -> None:
        """
        Start afresh with another incarnation of the peer: what was
        numbered, sent or held for the one before is for a process that is
        gone.
        """
        self.incarnation = incarnation
        self.next_seq = 1
        self.unacked.clear()
        self.unacked_bytes = 0
        self.received = 0
        self.told = 0


@attrs.define
class RedialBackoff:
    """
    How soon to redial a peer that refuses this member.

    @ivar refusals: Dials refused in a row (a REFUSE received, or the
        connection closed before its handshake completed); back to 0 once
        the peer serves a dial.
    @ivar refused: Every REFUSE the peer answered a dial with.
    @ivar fatal: The code and reason of the peer's last refusal that no
        retry can change (wrong group or secret, see L{FATAL_REFUSALS}),
        until it serves a dial.
    """

    refusals: int = 0
    refused: int = 0
    fatal: tuple[int, str] | None = None

    def delay(self, wait: float, longest: float) -> float:
        """
        The wait before the next redial: C{wait} (what the redial policy
        for dials that fail to connect says), but after refusals at least
        L{REFUSAL_FIRST_DELAY} doubled for each refusal in a row after the
        first, up to C{longest}.
        """
        if self.refusals:
            backoff = REFUSAL_FIRST_DELAY * 2.0 ** min(self.refusals - 1, 60)
            wait = max(wait, min(backoff, longest))
        return wait

    def refused_with(self, code: int, reason: str) -> bool:
        """
        The peer answered a dial with REFUSE.

        @return: Whether it is a refusal no retry can change.
        """
        self.refusals += 1
        self.refused += 1
        if code not in FATAL_REFUSALS:
            return False
        self.fatal = (code, reason)
        return True

    def failed(self) -> None:
        """
        A dial closed before its handshake completed, without a REFUSE.
        """
        self.refusals += 1

    def served(self) -> None:
        """
        The peer served a dial: it answered after the handshake with
        something other than a REFUSE.
        """
        self.refusals = 0
        self.fatal = None


class Phase(enum.Enum):
    """
    Where a connection is in its life.
    """

    GREETING = "greeting"
    """
    Waiting for the peer's HELLO: the first frame on an accepted
    connection, the answer to this side's HELLO on a dialed one.
    """

    PROVING = "proving"
    """
    HELLOs exchanged in a group with a secret; waiting for the peer's AUTH.
    """

    HELD = "held"
    """
    An accepted connection that claims a member's name, waiting for this
    member's dial to that member's configured address to say whether it
    comes from the process that holds the name.  Nothing it sends is read
    meanwhile, but a REFUSE.
    """

    OPEN = "open"
    """
    The handshake is done: DATA and CONTROL go one way, ACK the other.
    """

    CLOSED = "closed"
    """
    Closing or closed: nothing more is read.
    """


class Route(enum.Enum):
    """
    What a frame that arrived on a connection is, in its phase.
    """

    REFUSED = "refused"
    HELLO = "hello"
    WHO = "who"
    AUTH = "auth"
    DATA = "data"
    CONTROL = "control"
    ACK = "ack"


@attrs.frozen
class Wrong:
    """
    A frame that breaks the protocol in the connection's phase.

    @ivar reason: What is wrong, in plain words.
    @ivar refuse: Whether to tell the peer (REFUSE) before closing.
    """

    reason: str
    refuse: bool


@attrs.define
class ConnectionState:
    """
    The handshake state of one connection.

    @ivar dialed: Whether this member dialed it (it then sends DATA and
        CONTROL on it and takes ACKs) or accepted it (the other way round).
    @ivar phase: Where it is (see L{Phase}).
    @ivar opened: Whether it was ever open (a dial that closes without
        having opened counts against the peer's L{RedialBackoff}).
    @ivar hello: The peer's HELLO, once one passed the checks: kept for the
        secret's proof, or while the connection is held.
    @ivar told: What this side's HELLO answer told the peer is held, once it
        answered (accepted connections).
    """

    dialed: bool
    phase: Phase = Phase.GREETING
    opened: bool = False
    hello: Hello | None = None
    told: int | None = None

    @property
    def is_open(self) -> bool:
        """
        Whether the handshake is done and the connection not closing.
        """
        return self.phase is Phase.OPEN

    @property
    def closed(self) -> bool:
        """
        Whether nothing more is to be read or written.
        """
        return self.phase is Phase.CLOSED

    @property
    def held(self) -> bool:
        """
        Whether the connection waits to learn which process holds the name
        it claims.
        """
        return self.phase is Phase.HELD

    def route(self, frame: AnyFrame) -> Route | Wrong:
        """
        What C{frame}, arriving now, is: a step to take, or a breach of the
        protocol.  A REFUSE is taken in every phase.
        """
        # An open connection's frames first: they are nearly all of them.
        kind = type(frame)
        phase = self.phase
        if phase is Phase.OPEN:
            if kind is Data or kind is ControlFrame:
                if self.dialed:
                    name = "DATA" if kind is Data else "CONTROL"
                    return Wrong(f"{name} on a connection this node dialed", False)
                return Route.DATA if kind is Data else Route.CONTROL
            if kind is Ack:
                return Route.ACK
            if kind is Refuse:
                return Route.REFUSED
            again = "second " if kind is Hello or kind is Auth else ""
            return Wrong(
                f"a {again}{kind.__name__.upper()} on an open connection", False
            )
        if kind is Refuse:
            return Route.REFUSED
        if phase is Phase.PROVING:
            if kind is Auth:
                return Route.AUTH
            return Wrong("expected the group-secret proof (AUTH)", refuse=True)
        if kind is Who and not self.dialed:
            return Route.WHO
        if kind is Hello:
            return Route.HELLO
        return Wrong("the first frame was not a HELLO", refuse=True)

    def prove(self, hello: Hello) -> None:
        """
        The peer's HELLO passed the checks in a group with a secret: wait
        for its proof.
        """
        self.hello = hello
        self.phase = Phase.PROVING

    def hold(self, hello: Hello) -> None:
        """
        Hold the connection until the process holding C{hello}'s name is
        known.
        """
        self.hello = hello
        self.phase = Phase.HELD

    def release(self) -> None:
        """
        The wait of a held connection is over: it is served or refused next.
        """
        self.phase = Phase.GREETING

    def open(self) -> None:
        """
        The handshake is done (a connection already closing stays closed).
        """
        self.opened = True
        if self.phase is not Phase.CLOSED:
            self.phase = Phase.OPEN

    def close(self) -> None:
        """
        The connection is closing.
        """
        self.phase = Phase.CLOSED
