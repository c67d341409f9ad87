"""
The ordering engine: a pure, sans-IO state machine for one member of a group.

It knows nothing of sockets, reactors or time.  Calls go in (L{Engine.multicast},
L{Engine.receive}) and the engine hands back what to send (L{Engine.flush}) and
what is now deliverable, in the agreed order (L{Engine.take_deliveries}).

The algorithm is the one in DESIGN.md: every member keeps a Lamport clock, a
priority queue of undelivered messages ordered by timestamp C{(clock, member)},
for every other member the clock of the newest frame received from it (its
I{horizon}), and for every other member what that member reports holding of
each sender's messages (its I{receipts}).  The head of the queue is delivered
once every other member's horizon has passed it (nothing earlier can still
come) and every member holds it (so delivery is I{uniform}: no crash can take
away a message that any member delivered).  Acknowledgements are cumulative:
every frame carries the sender's clock and its receipt horizons, and one frame
per peer per flush acknowledges everything the sender has seen.

The engine assumes reliable FIFO links between members; making broken
connections invisible is the link layer's job.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

import attrs

Timestamp = tuple[int, str]
"""
A message's position in the total order: C{(clock, member)}, compared
lexicographically.  No two messages share one.
"""


@attrs.frozen
class Frame:
    """
    What one member sends to every other member at the end of a turn.

    A frame is at once data and acknowledgement: C{clock} is the sender's
    Lamport clock when it sent the frame and promises that every message the
    sender will multicast later has a larger timestamp.  A frame with no
    messages is a pure acknowledgement (or heartbeat).

    @ivar view: The id of the membership view the frame belongs to.
    @ivar clock: The sender's clock; never less than any stamp in C{messages}.
    @ivar messages: The sender's own new messages as C{(stamp clock, payload)}
        pairs, in increasing stamp order.  The sender's name is implied by the
        link the frame arrives on.
    @ivar received: The sender's receipt horizons: for every member other
        than the sender, in the order of the engine's C{members}, the stamp
        clock of the newest message from that member the sender holds (0 for
        none).  Links are FIFO, so it holds every earlier one too.  An empty
        tuple reports nothing (the receiver keeps what it knew).
    """

    view: int
    clock: int
    messages: tuple[tuple[int, bytes], ...] = ()
    received: tuple[int, ...] = ()


@attrs.frozen
class Delivery:
    """
    One delivered message: the record handed to delivery handlers.

    @ivar index: The message's position in the agreed order, counting from 1;
        the same message has the same index on every member.
    @ivar sender: The member that multicast the message.
    @ivar clock: The clock part of the message's timestamp.
    @ivar payload: The bytes the sender multicast.
    @ivar after: For a message this member multicast itself, how many messages
        it had delivered when it did so (what the message causally follows);
        L{None} for other members' messages.
    """

    index: int
    sender: str
    clock: int
    payload: bytes
    after: int | None = None

    @property
    def timestamp(self) -> Timestamp:
        """
        The message's timestamp, C{(clock, sender)}.
        """
        return (self.clock, self.sender)


@attrs.frozen
class ViewChange:
    """
    A record in the delivery stream: from here on the group is another view.

    It comes after every delivery of the view before and before every
    delivery of this one, at the same place on every member that installs
    the view.

    @ivar view: The new view's id; ids grow by one with each view change.
    @ivar members: The new view's members, in rank order.
    @ivar index: The index the view's first delivery will carry (one more
        than the last delivery of the view before).
    """

    view: int
    members: tuple[str, ...]
    index: int


Record = Delivery | ViewChange
"""
What a delivery stream holds: deliveries, and view changes between them.
"""


@attrs.frozen
class StreamPosition:
    """
    How far into a group's delivery stream a durable handler got: where a
    member that restarts resumes.

    A view change comes before the delivery whose index it carries, so the
    last delivery's index alone does not say whether the view change after
    it was recorded too; the last view id does.

    @ivar index: The index of the last delivery recorded (0: none).
    @ivar view: The id of the last view change recorded (0: none; view 0
        is never a record of its own).
    @ivar last: The sender and clock of the delivery at C{index}, which
        tells a file of this group's stream from one of another group or
        of an earlier life of this one; L{None} if C{index} is 0.
    """

    index: int = 0
    view: int = 0
    last: tuple[str, int] | None = None

    def advanced(self, records: Sequence[Record]) -> StreamPosition:
        """
        The position once C{records}, the next of the stream, are kept too.
        """
        position = self
        for record in reversed(records):
            if isinstance(record, Delivery):
                position = attrs.evolve(
                    position,
                    index=record.index,
                    last=(record.sender, record.clock),
                )
                break
        for record in reversed(records):
            if isinstance(record, ViewChange):
                position = attrs.evolve(position, view=max(position.view, record.view))
                break
        return position

    def after(self, record: Record) -> bool:
        """
        Whether C{record} comes after this position in the stream (it has
        not been recorded yet).
        """
        if isinstance(record, Delivery):
            return record.index > self.index
        return record.index > self.index and record.view > self.view


@attrs.frozen
class Message:
    """
    A message held by the engine and not yet delivered.

    @ivar sender: The member that multicast it.
    @ivar clock: The clock part of its timestamp.
    @ivar payload: Its bytes.
    """

    sender: str
    clock: int
    payload: bytes


class ProtocolError(Exception):
    """
    A frame broke the protocol.  The engine's state is unchanged by it.

    @ivar member: The member the frame came from (as the caller named it).
    @ivar problem: What was wrong, in plain words.
    """

    def __init__(self, member: str, problem: str) -> None:
        super().__init__(f"frame from {member!r}: {problem}")
        self.member = member
        self.problem = problem


class UnknownMemberError(ProtocolError):
    """
    The frame came from a name that is not another member of this group.
    """


class WrongViewError(ProtocolError):
    """
    The frame belongs to another membership view than the engine's.
    """


class ClockRegressionError(ProtocolError):
    """
    The frame's clock is below one already received from the same member, or a
    message is stamped at or below what the member had already promised.
    """


class MalformedFrameError(ProtocolError):
    """
    A field of the frame has the wrong type or an impossible value.
    """


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"member names must be non-empty strings, not {name!r}")
    return name


class Engine:
    """
    The ordering state machine of one member of a fixed group.

    Typical use, once per turn of an event loop::

        stamp = engine.multicast(b"payload")       # any number of times
        engine.receive("b", frame_from_b)           # for every frame that came
        for frame in engine.flush():                # send to every peer
            ...
        for record in engine.take_deliveries():     # hand to the application
            ...

    Everything the engine holds can be read through its properties and
    methods; none of them changes state.

    @ivar me: This member's name.
    @ivar members: Every member's name, this one included, sorted.
    @ivar peers: Every other member's name, sorted.
    @ivar view: The id of the membership view this engine runs in.
    """

    def __init__(
        self,
        me: str,
        members: Iterable[str],
        view: int = 0,
        clock: int = 0,
        delivered: int = 0,
    ) -> None:
        """
        @param me: This member's name; must be one of C{members}.
        @param members: The names of every member of the group.
        @param view: The id of the membership view, carried in every frame.
        @param clock: The clock to start from (a view's engine carries on
            from the one before it).
        @param delivered: How many messages were delivered before this
            engine's first one (its first delivery has the index after it).

        @raise ValueError: If a name is not a non-empty string, a name appears
            twice, or C{me} is not a member.
        """
        names = [_check_name(m) for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names must be unique: {sorted(names)}")
        if _check_name(me) not in names:
            raise ValueError(f"{me!r} is not one of the members {sorted(names)}")
        for what, value in (("view", view), ("clock", clock), ("delivered", delivered)):
            if type(value) is not int or value < 0:
                raise ValueError(f"{what} must be a non-negative integer: {value!r}")
        self.me = me
        self.members: tuple[str, ...] = tuple(sorted(names))
        self.peers: tuple[str, ...] = tuple(m for m in self.members if m != me)
        self.view = view
        self._clock = clock
        self._wedged = False
        # Heap entries: (clock, sender, payload, after).  Timestamps are
        # unique, so comparison never reaches the payload.
        self._queue: list[tuple[int, str, bytes, int | None]] = []
        # Horizon clock per peer: the clock of the newest frame from it.  The
        # horizon timestamp is (clock, peer); 0 means nothing received yet.
        self._horizon: dict[str, int] = dict.fromkeys(self.peers, 0)
        # Cached minimum horizon timestamp; None when it must be recomputed.
        self._bound: Timestamp | None = None
        # The newest stamp this member holds from each member (itself
        # included): what its frames report as receipt horizons.
        self._held: dict[str, int] = dict.fromkeys(self.members, 0)
        # What each peer reported holding: reporter -> the members other than
        # the reporter, in rank order, as the reporter's frames list them.
        self._others: dict[str, tuple[str, ...]] = {
            peer: tuple(m for m in self.members if m != peer) for peer in self.peers
        }
        self._receipts: dict[str, dict[str, int]] = {
            peer: dict.fromkeys(self._others[peer], 0) for peer in self.peers
        }
        # Per sender, the least stamp every member other than this one and
        # the sender reports holding: the most of its messages that are
        # held everywhere.  None when it must be recomputed.
        self._everywhere: dict[str, int] | None = None
        self._outbox: list[tuple[int, bytes]] = []
        self._ack_due = False
        self._delivered = delivered

    # -- inputs -----------------------------------------------------------

    def multicast(self, payload: bytes) -> Timestamp:
        """
        Stamp C{payload} and queue it for every member, this one included.

        The message goes out with the next L{flush}.

        @param payload: The bytes to multicast (any length, including 0).
        @return: The message's timestamp.
        @raise TypeError: If C{payload} is not L{bytes}.
        """
        if type(payload) is not bytes:
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        self._clock += 1
        clock = self._clock
        heapq.heappush(self._queue, (clock, self.me, payload, self._delivered))
        self._outbox.append((clock, payload))
        self._held[self.me] = clock
        return (clock, self.me)

    def receive(self, sender: str, frame: Frame) -> None:
        """
        Take in a frame that arrived from C{sender}.

        The whole frame is checked before anything changes, so a frame that
        raises leaves the engine exactly as it was.

        @param sender: The member the frame came from (known from the link).
        @param frame: The frame.
        @raise UnknownMemberError: If C{sender} is not another member.
        @raise WrongViewError: If the frame belongs to another view.
        @raise ClockRegressionError: If the frame's clock, or a message's stamp, is
            at or below what C{sender} already promised.
        @raise MalformedFrameError: If a field has the wrong type or value.
        """
        horizon = self._horizon.get(sender)
        if horizon is None:
            if sender == self.me:
                raise UnknownMemberError(sender, "a frame from this member itself")
            raise UnknownMemberError(sender, f"not a member of {list(self.members)}")
        if frame.view != self.view:
            raise WrongViewError(
                sender, f"frame is for view {frame.view!r}, this is view {self.view}"
            )
        clock = frame.clock
        if type(clock) is not int:
            raise MalformedFrameError(sender, f"clock {clock!r} is not an integer")
        if clock > MAX_CLOCK:
            raise MalformedFrameError(
                sender, f"clock {clock} is beyond the largest allowed, {MAX_CLOCK}"
            )
        if clock < horizon:
            raise ClockRegressionError(
                sender, f"clock went back from {horizon} to {clock}"
            )
        messages = frame.messages
        if messages:
            self._check_messages(sender, horizon, clock, messages)
        received = frame.received
        if received:
            self._check_receipts(sender, received)
        if messages:
            push = heapq.heappush
            queue = self._queue
            for stamp, payload in messages:
                push(queue, (stamp, sender, payload, None))
            self._held[sender] = messages[-1][0]
            self._ack_due = True
        if received:
            reported = self._receipts[sender]
            for member, stamp in zip(self._others[sender], received, strict=True):
                if stamp != reported[member]:
                    reported[member] = stamp
                    self._everywhere = None
        if clock > self._clock:
            self._clock = clock
        self._clock += 1
        if clock > horizon:
            self._horizon[sender] = clock
            self._bound = None

    def _check_messages(
        self,
        sender: str,
        horizon: int,
        clock: int,
        messages: tuple[tuple[int, bytes], ...],
    ) -> None:
        if type(messages) is not tuple:
            raise MalformedFrameError(sender, "messages must be a tuple")
        last = horizon
        for entry in messages:
            if type(entry) is not tuple or len(entry) != 2:
                raise MalformedFrameError(
                    sender, f"message entry {entry!r} is malformed"
                )
            stamp, payload = entry
            if type(stamp) is not int or type(payload) is not bytes:
                raise MalformedFrameError(
                    sender, f"message stamp {stamp!r} or its payload has a wrong type"
                )
            if stamp <= last:
                raise ClockRegressionError(
                    sender,
                    f"message stamped {stamp} is not above {last}, which the member"
                    " had already passed",
                )
            if stamp > clock:
                raise MalformedFrameError(
                    sender, f"message stamped {stamp} is above the frame clock {clock}"
                )
            last = stamp

    def _check_receipts(self, sender: str, received: tuple[int, ...]) -> None:
        others = self._others[sender]
        if type(received) is not tuple or len(received) != len(others):
            raise MalformedFrameError(
                sender,
                f"receipt horizons {received!r} do not list the {len(others)}"
                f" other members {list(others)}",
            )
        reported = self._receipts[sender]
        for member, stamp in zip(others, received, strict=True):
            if type(stamp) is not int or not 0 <= stamp <= MAX_CLOCK:
                raise MalformedFrameError(
                    sender, f"receipt horizon {stamp!r} of {member!r} is not a clock"
                )
            if stamp < reported[member]:
                raise ClockRegressionError(
                    sender,
                    f"receipt horizon of {member!r} went back from"
                    f" {reported[member]} to {stamp}",
                )

    # -- outputs ----------------------------------------------------------

    def flush(self, limit: int | None = None, overhead: int = 0) -> list[Frame]:
        """
        End a turn: the frames to send, in order, to every member in L{peers}.

        There is a frame when this member multicast something since the last
        flush, or received new messages that it has not yet acknowledged;
        otherwise the list is empty.  Every frame goes to every peer, so a
        caller can encode each one once.

        @param limit: If given, split the messages over several frames so that
            each frame's messages take at most C{limit} bytes, counting each
            payload plus C{overhead} (a single larger message gets a frame of
            its own).
        @param overhead: What each message costs besides its payload, for
            C{limit}: the encoding's per-message bytes.
        @return: The frames, possibly none.
        """
        outbox = self._outbox
        if self._wedged or (not outbox and not self._ack_due):
            return []
        self._outbox = []
        self._ack_due = False
        if not self.peers:
            return []
        held = self._held
        received = tuple(held[m] for m in self.members if m != self.me)
        if limit is None or not outbox:
            return [Frame(self.view, self._clock, tuple(outbox), received)]
        frames: list[Frame] = []
        batch: list[tuple[int, bytes]] = []
        size = 0
        for entry in outbox:
            cost = len(entry[1]) + overhead
            if batch and size + cost > limit:
                # A frame cut from a batch promises only up to its own last
                # stamp, so the next frame's messages are still above it.
                frames.append(Frame(self.view, batch[-1][0], tuple(batch), received))
                batch = []
                size = 0
            batch.append(entry)
            size += cost
        frames.append(Frame(self.view, self._clock, tuple(batch), received))
        return frames

    def take_deliveries(self) -> list[Delivery]:
        """
        Pop every message that is now deliverable, in the agreed order.

        A message is deliverable when it is at the head of the queue, every
        other member's horizon is at or past its timestamp (no message that
        sorts before it can still arrive), and every member reports holding
        it (uniform agreement).

        @return: The delivery records, possibly none, indexed from where the
            previous call stopped.
        """
        queue = self._queue
        if not queue or self._wedged:
            return []
        bound = self._bound
        if bound is None:
            bound = self._bound = self._delivery_bound()
        bound_clock, bound_member = bound
        everywhere = self._everywhere
        if everywhere is None:
            everywhere = self._everywhere = self._held_everywhere()
        out: list[Delivery] = []
        pop = heapq.heappop
        index = self._delivered
        while queue:
            head = queue[0]
            head_clock = head[0]
            if head_clock > bound_clock or (
                head_clock == bound_clock and head[1] > bound_member
            ):
                break
            if head_clock > everywhere[head[1]]:
                break
            pop(queue)
            index += 1
            out.append(Delivery(index, head[1], head_clock, head[2], head[3]))
        self._delivered = index
        return out

    def _delivery_bound(self) -> Timestamp:
        """
        The largest timestamp that is safe to deliver: the least horizon.
        """
        if not self._horizon:
            return (_NO_LIMIT, "")
        return min((clock, peer) for peer, clock in self._horizon.items())

    def _held_everywhere(self) -> dict[str, int]:
        """
        Per sender, the newest stamp that every other member reports holding
        (the sender itself holds all of its own).
        """
        receipts = self._receipts
        return {
            sender: min(
                (receipts[peer][sender] for peer in self.peers if peer != sender),
                default=_NO_LIMIT,
            )
            for sender in self.members
        }

    # -- closing a view ---------------------------------------------------

    def wedge(self) -> None:
        """
        Stop sending frames and delivering: the view is being closed.

        What this member has reported holding (in the frames it sent) is
        then final, so no other member can deliver past it; frames that
        still come are taken in, and only L{close} delivers from here on.
        """
        self._wedged = True

    @property
    def wedged(self) -> bool:
        """
        Whether L{wedge} was called.
        """
        return self._wedged

    def close(
        self, cut: Mapping[str, int], extra: Iterable[Message] = ()
    ) -> list[Delivery]:
        """
        Deliver what the view closes with: every message held here or in
        C{extra} whose stamp is at or below its sender's entry in C{cut},
        in timestamp order, and drop the rest.

        @param cut: Per sender, the stamp of its last message in the view;
            a sender not in it closes with nothing more.
        @param extra: Messages this member lacked, from the other members.
        @return: The deliveries, indexed on from the last one.
        """
        # A view closes with thousands of messages under load: one pass to
        # keep, one sort, one pass to make the deliveries.
        kept = [entry for entry in self._queue if entry[0] <= cut.get(entry[1], 0)]
        extra = [m for m in extra if m.clock <= cut.get(m.sender, 0)]
        if extra:
            held = {(clock, sender) for clock, sender, _, _ in kept}
            for m in extra:
                if (m.clock, m.sender) not in held:
                    held.add((m.clock, m.sender))
                    kept.append((m.clock, m.sender, m.payload, None))
        # Stamps are unique, so the sort never compares payloads.
        kept.sort()
        self._queue = []
        self._outbox = []
        self._wedged = True
        first = self._delivered + 1
        out = [
            Delivery(index, sender, clock, payload, after)
            for index, (clock, sender, payload, after) in enumerate(kept, first)
        ]
        self._delivered += len(out)
        if kept:
            self._clock = max(self._clock, kept[-1][0])
        return out

    # -- inspection -------------------------------------------------------

    @property
    def clock(self) -> int:
        """
        This member's Lamport clock.
        """
        return self._clock

    @property
    def delivered(self) -> int:
        """
        How many messages this member has delivered.
        """
        return self._delivered

    @property
    def queue_length(self) -> int:
        """
        How many messages are held but not yet delivered.
        """
        return len(self._queue)

    @property
    def unsent(self) -> int:
        """
        How many of this member's own messages wait for the next L{flush}.
        """
        return len(self._outbox)

    @property
    def ack_due(self) -> bool:
        """
        Whether the next L{flush} owes the peers an acknowledgement.
        """
        return self._ack_due

    def horizons(self) -> dict[str, Timestamp]:
        """
        Every other member's horizon: the timestamp of its newest frame.

        @return: A new dict from member name to timestamp; C{(0, name)} means
            nothing has been received from that member yet.
        """
        return {peer: (clock, peer) for peer, clock in self._horizon.items()}

    def head(self) -> Timestamp | None:
        """
        The timestamp of the oldest undelivered message, or L{None}.
        """
        if not self._queue:
            return None
        return (self._queue[0][0], self._queue[0][1])

    def waiting_for(self) -> tuple[str, ...]:
        """
        The members whose acknowledgement the oldest undelivered message still
        needs (their clock has not passed it, or they have not reported
        holding it), sorted; empty when nothing is held (or it is
        deliverable now).
        """
        head = self.head()
        if head is None:
            return ()
        clock, sender = head
        return tuple(
            peer
            for peer in self.peers
            if (self._horizon[peer], peer) < head
            or (peer != sender and self._receipts[peer][sender] < clock)
        )

    def receipts(self) -> dict[str, dict[str, int]]:
        """
        What every other member last reported holding: reporter -> sender ->
        the stamp clock of the newest of the sender's messages it holds.

        @return: A new dict of new dicts.
        """
        return {peer: dict(held) for peer, held in self._receipts.items()}

    def held(self) -> dict[str, int]:
        """
        This member's own receipt horizons: per member (this one included),
        the stamp clock of the newest of its messages held here.

        @return: A new dict.
        """
        return dict(self._held)

    def undelivered(
        self, above: Mapping[str, int] | None = None
    ) -> tuple[Message, ...]:
        """
        Every message held but not yet delivered, in timestamp order.

        @param above: If given, only the messages whose clock is above their
            sender's entry in it (a sender not in it: above 0).  Left out
            before sorting: a view change's promise leaves out nearly every
            message under load, and sorting them all was most of its cost.
        """
        queue = self._queue
        if above is not None:
            queue = [e for e in queue if e[0] > above.get(e[1], 0)]
        return tuple(
            Message(sender, clock, payload)
            for clock, sender, payload, _ in sorted(queue)
        )


MAX_CLOCK = (1 << 62) - 1
"""
The largest clock a frame may carry.  Far beyond any real count, it keeps a
peer from pushing this member's clock past what the wire can encode.
"""

_NO_LIMIT = 1 << 62
"""
A clock no member reaches: the bound of a group of one.
"""
