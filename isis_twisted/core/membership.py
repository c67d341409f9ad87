"""
The membership state machine: one member's views, suspicions and view
changes, around its ordering engine.  Pure and sans-IO like the engine.

Calls go in (L{Membership.multicast}, L{Membership.receive_data},
L{Membership.receive_control}, L{Membership.suspect}, L{Membership.trust},
L{Membership.tick}) with the current time where timing matters; out come
data frames (L{Membership.flush}), control messages with their destination
(L{Membership.take_control}), the delivery stream with view changes in it
(L{Membership.take_deliveries}) and the next time to call L{tick}
(L{Membership.deadline}).  Nothing here reads a clock or schedules a timer.

A view change is one consensus decision per view (DESIGN.md, Membership):
the coordinator (the lowest-ranked member it does not suspect) runs a
ballot.  Members that promise it I{wedge} (stop sending and delivering in
the view, so what they reported holding is final) and report what they
hold; with every next member's report the coordinator computes the cut (per
sender the most any report holds: every delivery anyone made lies inside
it, since a message is delivered only once every member holds it), sends it
with the messages each member lacks, and decides once a majority of the
view accepted.  A proposal already accepted by anyone is proposed again
unchanged, so a coordinator crash at any step is safe.  Only a next view
holding a majority of the current one is ever proposed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from isis_twisted.core.addresses import AddressBook
from isis_twisted.core.coordinator import Coordinator, RunningBallot, stamps
from isis_twisted.core.engine import Engine, Frame, Message, Record, ViewChange
from isis_twisted.core.views import (
    NO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    Control,
    Decide,
    Gone,
    Inquire,
    Join,
    Leave,
    Promise,
    Proposal,
    Propose,
    Reject,
    Suspect,
    View,
    Welcome,
)

EngineFactory = Callable[..., Engine]
"""
Makes a view's engine: C{factory(me, members, view=, clock=, delivered=)}.
"""

NORMAL, FLUSHING, BLOCKED, REMOVED, JOINING = (
    "normal",
    "flushing",
    "blocked",
    "removed",
    "joining",
)
"""
The states of a member: delivering in its view; closing it; unable to close
it without a majority; out of the group; asking to be added to it.
"""

DECISIONS_KEPT = 8
"""
How many past decisions a member keeps to answer members that missed them.
"""


GROUP_LIMIT = 64
"""
The most members a group can be added up to at run time (a group started
with more may not grow): links and frames are sized for it.
"""


class NotDeliveringError(Exception):
    """
    The member cannot take a multicast now: it is closing its view (wait
    for the next one) or out of the group.
    """


class CannotForceError(Exception):
    """
    A forced view change (L{Membership.force}) was asked for when it cannot
    or need not be made; the message says why in one sentence.
    """


@attrs.frozen
class _Decision:
    """
    A past decision, kept to answer members that missed it.
    """

    view: int
    ballot: Ballot
    proposal: Proposal
    ragged: tuple[Message, ...]


class Membership:
    """
    One member of a group whose membership changes.

    @ivar me: This member's name.
    @ivar view: The view this member is in.
    @ivar engine: The ordering engine of the current view.
    @ivar state: L{NORMAL}, L{FLUSHING}, L{BLOCKED} or L{REMOVED}.
    @ivar suspects: The members of the view this member suspects, its own
        suspicions and those it heard of.
    @ivar reason: Why this member is out of the group, once it is.
    @ivar joiners: The members not in the view that asked to be added, each
        with the incarnation that asked.
    @ivar joined_as: The members added to the group since it started, each
        with the incarnation that was added: the process under that name
        that links let in.
    @ivar leaving: The members of the view that said they are stopping.
    @ivar welcome: Once a joining member is added: who told it, and how.
    @ivar waived: The members an operator declared lost for good
        (L{force}): until the next view is installed, a majority is counted
        without them, and this member runs the view change.
    @ivar forced: The ids of the views this member installed by force.
    @ivar addresses: Where members listen, as far as this member knows:
        what control messages carry to members added at run time.
    @ivar turned_away: Requests to join refused because the group has
        L{GROUP_LIMIT} members.
    """

    def __init__(
        self,
        me: str,
        members: Iterable[str],
        engine_factory: EngineFactory = Engine,
        flush_timeout: float = 1.0,
        joining: bool = False,
        incarnation: int = 0,
        addresses: Mapping[str, str] = {},
        address: str = "",
    ) -> None:
        """
        @param me: This member's name.
        @param members: Every member of the group as started (view 0).
        @param engine_factory: Makes each view's engine.
        @param flush_timeout: Seconds a ballot may take before its
            coordinator gives up on the members that did not answer, and
            a wedged member waits before it gives up on its coordinator.
        @param joining: Start by asking the others to be added (the member
            restarted and holds records of the group's stream) rather than
            as a member of view 0; see L{join}.
        @param incarnation: This member's incarnation, which its requests
            to join carry.
        @param addresses: Where the members it was given listen.
        @param address: Where this member listens, which its requests to
            join carry, or C{""} if every member was given it.
        """
        self.me = me
        self.incarnation = incarnation
        self._factory = engine_factory
        self.engine = engine_factory(me, list(members))
        self.view = View(0, self.engine.members)
        self.flush_timeout = flush_timeout
        self.state = NORMAL
        self.suspects: set[str] = set()
        self.reason: str | None = None
        self.view_changes = 0
        self._promised: Ballot = NO_BALLOT
        self._accepted: tuple[Ballot, Proposal] | None = None
        self._store: dict[tuple[str, int], bytes] = {}
        self._ballots = Coordinator(self)
        self._wait_until: float | None = None
        self._control: list[tuple[str, Control]] = []
        self._records: list[Record] = []
        self._future: list[tuple[str, Frame | Control]] = []
        self._inquired: set[tuple[str, int]] = set()
        self._decisions: deque[_Decision] = deque(maxlen=DECISIONS_KEPT)
        self.joiners: dict[str, int] = {}
        self.joined_as: dict[str, int] = {}
        self.leaving: set[str] = set()
        self.welcome: tuple[str, Welcome] | None = None
        self._first = 1
        self._join_at: float | None = None
        self.waived: frozenset[str] = frozenset()
        self.forced: list[int] = []
        self.turned_away = 0
        self.addresses = AddressBook(me, self.view.members, addresses, address)
        if joining:
            self.state = JOINING

    @property
    def ballot_running(self) -> RunningBallot | None:
        """
        The ballot this member runs as coordinator, if one is under way.
        """
        return self._ballots.running

    # -- the application's side --------------------------------------------

    @property
    def delivering(self) -> bool:
        """
        Whether a multicast is taken now (the view is not being closed and
        this member is in the group).
        """
        return self.state in (NORMAL, BLOCKED) and not self.engine.wedged

    def multicast(self, payload: bytes) -> tuple[int, str]:
        """
        Multicast C{payload} in the current view.

        @raise NotDeliveringError: If the view is being closed or this
            member is out of the group (L{delivering} is false).
        """
        if not self.delivering:
            raise NotDeliveringError(
                f"{self.me!r} is out of the group: {self.reason}"
                if self.state == REMOVED
                else f"{self.me!r} is closing view {self.view.id}"
            )
        return self.engine.multicast(payload)

    def flush(self, limit: int | None = None, overhead: int = 0) -> list[Frame]:
        """
        The data frames to send to every other member of the view.
        """
        if self.state in (REMOVED, JOINING):
            return []
        return self.engine.flush(limit, overhead)

    @property
    def peers(self) -> tuple[str, ...]:
        """
        The other members of the current view: where L{flush}'s frames go.
        """
        return self.engine.peers

    def take_deliveries(self) -> list[Record]:
        """
        The delivery stream since the last call: deliveries and view changes,
        in order.
        """
        if self.state not in (REMOVED, JOINING):
            self._records.extend(self.engine.take_deliveries())
        out, self._records = self._records, []
        return out

    def take_control(self) -> list[tuple[str, Control]]:
        """
        The control messages to send, each with the member it goes to.
        """
        out, self._control = self._control, []
        return out

    @property
    def has_output(self) -> bool:
        """
        Whether L{flush} or L{take_control} would give something now.
        """
        if self._control:
            return True
        engine = self.engine
        return (
            self.state not in (REMOVED, JOINING)
            and not engine.wedged
            and bool(engine.unsent or engine.ack_due)
        )

    @property
    def deadline(self) -> float | None:
        """
        When to call L{tick} next, or L{None}.
        """
        times = [t for t in (self._wait_until, self._join_at) if t is not None]
        running = self._ballots.running
        if running is not None:
            times.append(running.deadline)
        return min(times) if times else None

    # -- inputs --------------------------------------------------------------

    def receive_data(self, sender: str, frame: Frame, now: float) -> None:
        """
        Take in a data frame from C{sender}.

        A frame of the current view goes to the engine (which may raise
        L{isis_twisted.core.engine.ProtocolError}); one of a later view waits
        until this member installs that view, and makes it ask C{sender}
        what was decided; one of an earlier view is dropped.
        """
        if self.state == REMOVED or frame.view < self.view.id:
            return
        if self.state == JOINING:
            # Frames of the view it is being added to can come before the
            # welcome does.
            self._future.append((sender, frame))
            return
        if frame.view > self.view.id:
            self._future.append((sender, frame))
            self._inquire(sender)
            return
        self.engine.receive(sender, frame)

    def suspect(self, *names: str, now: float) -> None:
        """
        This member's failure detector suspects C{names}.

        Give every member suspected at one time at once: suspected one by
        one, the first would start a view change without it alone.
        """
        if self.state == JOINING:
            return
        self._add_suspects(names)
        self._consider(now)

    def trust(self, *names: str, now: float) -> None:
        """
        C{names} are heard from again: drop the suspicions.

        Suspicions only choose who runs a view change and whom it leaves
        out; safety never rests on them, so one may be dropped at any time.
        A view change already under way still runs to its end (with the
        member back in, if it is not decided yet).  Give every member heard
        from again at once: trusted one by one, the first one back could
        make a majority that leaves the others out.
        """
        back = self.suspects.intersection(names) - self.leaving
        if not back:
            return
        self.suspects -= back
        if self.state == BLOCKED and not self.suspects and not self.engine.wedged:
            self.state = NORMAL
            self._wait_until = None
        self._consider(now)

    def tick(self, now: float) -> None:
        """
        The L{deadline} has come: a ballot that did not finish is run again
        without the members that did not answer, and a member that waited
        in vain for its coordinator gives up on it.
        """
        if self.state == REMOVED:
            return
        if self._join_at is not None and now >= self._join_at:
            self._ask_to_join(now)
            return
        running = self._ballots.running
        if running is not None and now >= running.deadline:
            self._add_suspects(running.silent())
            self._ballots.running = None
            self._consider(now, force=True)
        if self._wait_until is not None and now >= self._wait_until:
            self._wait_until = None
            # The member expected to run the view change has not finished
            # it: give up on it.  And ask everyone whether the group went on
            # without this member, which is how a member cut off from the
            # rest learns it was removed.
            waited_for = self._promised[1] or self._coordinator()
            if waited_for:
                self._add_suspects([waited_for])
            held = stamps(self.engine.held())
            for name in self.view.members:
                if name != self.me:
                    self._control.append((name, Inquire(self.view.id, held)))
            self._consider(now, force=True)

    def receive_control(self, sender: str, message: Control, now: float) -> None:
        """
        Take in a control message from C{sender}.
        """
        if self.state == REMOVED:
            return
        if self.state == JOINING:
            self._while_joining(sender, message, now)
            return
        if isinstance(message, Join):
            if message.address:
                self.addresses.learn([(sender, message.address)], settled=True)
            self._joined_by(sender, message.incarnation, now)
            return
        if isinstance(message, Inquire):
            if (
                message.view == self.view.id
                and sender in self.view.members
                and self._coordinator() == self.me
            ):
                # The asker promised a view change of this view and waited
                # for it in vain; if it is this member's to run, it runs one
                # now, even if this member suspects nobody (else members
                # that hear each other again could stay wedged for ever).
                self._consider(now, asked=True)
            self._answer_laggard(sender, message.view, dict(message.held))
            return
        if isinstance(message, Gone):
            if message.view >= self.view.id:
                if self.fresh:
                    # Nothing was delivered here yet: there is nothing this
                    # member could disagree on, so it asks to be added.
                    self.join(now, message.latest)
                elif self.me in message.latest.members and self.state != JOINING:
                    # The group went on to a view with this member in it:
                    # it missed the decision, and the sender (added by that
                    # view, say) does not hold it.  Those that installed
                    # the view by deciding do: ask them.
                    for name in message.latest.members:
                        if name not in (self.me, sender):
                            self._inquire(name)
                else:
                    self._removed(
                        f"the group went on to view {message.latest.id} without it"
                    )
            return
        if message.view < self.view.id:
            if isinstance(message, Propose):
                self._answer_laggard(sender, message.view, dict(message.held))
            elif isinstance(message, Leave):
                # Sent while a view change was under way that kept it: it
                # stopped all the same (links are FIFO, so nothing it sent
                # after stopping can come before this).
                self.gone_for_good(sender, now)
            return
        if message.view > self.view.id:
            self._future.append((sender, message))
            self._inquire(sender)
            return
        if isinstance(message, Leave):
            self.gone_for_good(sender, now)
        elif isinstance(message, Suspect):
            fresh = {n for n in message.names if n != self.me} - self.suspects
            self.suspects |= fresh & set(self.view.members)
            self._consider(now)
        elif isinstance(message, Propose):
            self.on_propose(sender, message, now)
        elif isinstance(message, Promise):
            self._ballots.promise(sender, message, now)
        elif isinstance(message, Reject):
            self._ballots.reject(message, now)
        elif isinstance(message, Accept):
            self.on_accept(sender, message, now)
        elif isinstance(message, Accepted):
            self._ballots.accepted(sender, message, now)
        elif isinstance(message, Decide):
            self.install(message.proposal, message.messages, message.ballot, now)

    # -- joining and leaving ---------------------------------------------------

    @property
    def fresh(self) -> bool:
        """
        Whether this member has delivered nothing and installed no view: a
        member in that state cannot disagree with the group on anything.
        """
        return self.view.id == 0 and self.engine.delivered == 0 and not self._records

    def join(self, now: float, latest: View | None = None) -> None:
        """
        Ask to be added to the group: this member is not in the view the
        others are in (it restarted, or was left out before it delivered
        anything).  Multicasts wait until it is added (L{welcome}).

        @param latest: The newest view it has heard of, whose members it
            asks too.
        """
        self.state = JOINING
        self.reason = None
        self.welcome = None
        self._ballots.running = None
        self._wait_until = None
        self.suspects = set()
        # What it promised, accepted or was sent in a view it is not in
        # now belongs to that view's ballots, never to the next one's.
        self._promised = NO_BALLOT
        self._accepted = None
        self._store = {}
        if latest is not None and latest.id >= self.view.id:
            self.view = latest
        self._ask_to_join(now)

    def _ask_to_join(self, now: float) -> None:
        # Asked again now and then: the member it asked may have crashed, or
        # become coordinator only after it forgot the request.
        self._join_at = now + 4 * self.flush_timeout
        join = Join(self.view.id, self.incarnation, self.addresses.own)
        for name in self.view.members:
            if name != self.me:
                self._control.append((name, join))

    def _while_joining(self, sender: str, message: Control, now: float) -> None:
        """
        A control message for a member that asked to be added: only its
        welcome and news of later views concern it; messages of the view it
        is being added to are kept for once it is.
        """
        if isinstance(message, Welcome):
            # Only to a view after every one it knows of: a welcome sent to
            # an earlier request (answered twice, or before a restart in the
            # same process) would put it back in a view the group closed.
            if self.me in message.latest.members and message.latest.id > self.view.id:
                self.addresses.learn(message.addresses)
                self._welcomed(sender, message, now)
        elif isinstance(message, Gone):
            latest = message.latest
            self.addresses.learn(message.addresses)
            # A view of the same id with other members: this member knew
            # only whom it was told to ask (it joins a running group), and
            # asks the members of the view they are in.  Only when the
            # members differ, so that two answers do not ask twice.
            later = latest.id > self.view.id or (
                latest.id == self.view.id and latest.members != self.view.members
            )
            if later and self.me not in latest.members:
                self.view = latest
                self._ask_to_join(now)
        elif not isinstance(message, Join | Inquire | Leave):
            self._future.append((sender, message))

    def _welcomed(self, sender: str, welcome: Welcome, now: float) -> None:
        """
        Start in the view this member was added to, at its first index.
        """
        self.welcome = (sender, welcome)
        self.view = welcome.latest
        self.engine = self._factory(
            self.me,
            list(welcome.latest.members),
            view=welcome.latest.id,
            clock=welcome.clock,
            delivered=welcome.first - 1,
        )
        self._first = welcome.first
        self._records.append(
            ViewChange(welcome.latest.id, welcome.latest.members, welcome.first)
        )
        self.view_changes += 1
        self.state = NORMAL
        self._join_at = None
        self._take_held(now)

    def _joined_by(self, sender: str, incarnation: int, now: float) -> None:
        """
        C{sender}'s C{incarnation} asks to be added.
        """
        if sender in self.view.members:
            # It was added, but missed its welcome (the member that sent it
            # crashed first).  Nothing of this view can have been delivered
            # without it, so the view still starts where it started.
            if self.view.id > 0 and self.state == NORMAL:
                self._welcome(sender)
            return
        limit = max(GROUP_LIMIT, len(self.addresses.founders))
        if (
            sender not in self.joiners
            and len(self.view.members) + len(self.joiners) >= limit
        ):
            self.turned_away += 1
            return
        self.joiners[sender] = incarnation
        if self._coordinator() != self.me:
            # Tell it the view: it asks every member of it, the coordinator
            # included (it may know only an older view's members).
            self._control.append((sender, self.gone(self.view.id)))
        self._consider(now)

    def gone(self, view: int) -> Gone:
        """
        The L{Gone} that tells a member of view C{view} where the group is
        now, and where its members listen.
        """
        return Gone(view, self.view, self.addresses.of(self.view.members))

    def _welcome(self, name: str) -> None:
        view = self.view
        addresses = self.addresses.of(view.members)
        self._control.append(
            (name, Welcome(view.id, view, self._first, self.engine.clock, addresses))
        )

    def gone_for_good(self, name: str, now: float) -> None:
        """
        Member C{name} is known to be gone (it said it is stopping, or it
        restarted as a new incarnation): suspect it, and never trust it
        again in this view.
        """
        if name in self.view.members and name != self.me:
            self.leaving.add(name)
            self._add_suspects([name])
            self._consider(now)

    def stop(self, why: str) -> None:
        """
        Take this member out of the group on its own account: it delivers
        nothing more.
        """
        self._removed(why)

    def leave(self) -> None:
        """
        This member is stopping: tell the others, so that they go on without
        it at once rather than once they find it silent.
        """
        if self.state in (NORMAL, FLUSHING, BLOCKED):
            self._send_all(Leave(self.view.id))

    def force(
        self, now: float, without: Iterable[str] | None = None
    ) -> tuple[str, ...]:
        """
        An operator's way out when most of the view is gone for good and the
        rest are blocked: close the view without C{without}, counting a
        majority of the members left rather than of the whole view, with
        this member running the view change.

        Safe only if the members left out are really gone: if they are alive
        on the other side of a partition and a majority of the view, they
        may go on too, and there are two groups.  Nothing any member
        delivered is lost (a message is delivered only once every member
        holds it, so the members left hold it too); a message multicast but
        held only by members left out is.

        @param now: The time.
        @param without: The members to leave out; by default every member
            this one suspects.
        @return: The members of the view it proposes.
        @raise CannotForceError: If this member is not blocked, or
            C{without} is empty, names itself or a member not in the view.
        """
        if self.state != BLOCKED:
            raise CannotForceError(
                f"member {self.me!r} is {self.state}, not blocked: a view change"
                " needs no force"
                + (
                    " (it waits for its own to finish)"
                    if self.state == FLUSHING
                    else ""
                )
            )
        lost = set(self.suspects if without is None else without)
        unknown = sorted(lost - set(self.view.members))
        if unknown:
            verb = "is" if len(unknown) == 1 else "are"
            raise CannotForceError(
                f"{', '.join(map(repr, unknown))} {verb} not in view {self.view.id}"
                f" ({', '.join(self.view.members)})"
            )
        if self.me in lost:
            raise CannotForceError(
                f"member {self.me!r} cannot force a view without itself"
            )
        if not lost:
            raise CannotForceError(
                f"member {self.me!r} suspects no member: name the members that are gone"
            )
        self.waived = frozenset(lost)
        self._add_suspects(lost)
        self._consider(now, force=True)
        return tuple(
            sorted(
                [m for m in self.view.members if m not in self.suspects]
                + [j for j in self.joiners if j not in self.view.members]
            )
        )

    # -- the coordinator -------------------------------------------------------

    def _coordinator(self) -> str | None:
        if self.waived:
            # The operator chose this member to close the view.
            return self.me
        for name in self.view.members:
            if name not in self.suspects:
                return name
        return None

    def _consider(self, now: float, force: bool = False, asked: bool = False) -> None:
        """
        Start (or restart) a ballot if this member is the one to run it;
        otherwise wait for the one who is (see L{tick}).

        @param force: Start a new ballot even if one is running.
        @param asked: Another member waits for a view change: consider one
            even if this member suspects nobody and is not wedged.
        """
        if self.state in (REMOVED, JOINING):
            return
        joiners = set(self.joiners) - set(self.view.members)
        # Joiners alone start a view change only at its coordinator: a
        # member that waited for one on their account would give up on a
        # coordinator that never heard of them.
        if not (asked or self.suspects or self.engine.wedged) and (
            not joiners or self._coordinator() != self.me
        ):
            return
        members = tuple(
            sorted(
                [m for m in self.view.members if m not in self.suspects] + list(joiners)
            )
        )
        ballots = self._ballots
        if not self._majority(members):
            self.state = BLOCKED
            ballots.running = None
            self._wait(now)
            return
        self.state = FLUSHING if self.engine.wedged else NORMAL
        if self._coordinator() != self.me:
            ballots.running = None
            self._wait(now)
            return
        running = ballots.running
        if (
            running is not None
            and not force
            and not self.suspects.intersection(running.members)
        ):
            # A member heard from again does not restart a ballot: that
            # would let a flapping failure detector keep the view change
            # from ever ending.  It is left out, and can join again later.
            return
        ballots.start(members, self._promised, now)

    def reconsider(self, now: float) -> None:
        """
        Start a ballot again if this member is the one to run it (its last
        one was refused by a member that promised a later one).
        """
        self._consider(now, force=True)

    def wait_for_coordinator(self, now: float) -> None:
        """
        Give the member running a ballot time to finish it before taking
        over.
        """
        self._wait_until = now + 2 * self.flush_timeout

    def send(self, name: str, message: Control) -> None:
        """
        Queue C{message} for member C{name} (see L{take_control}).
        """
        self._control.append((name, message))

    def _wait(self, now: float) -> None:
        if self._wait_until is None:
            self.wait_for_coordinator(now)

    def _choose(self, members: tuple[str, ...], promises: list[Promise]) -> Proposal:
        """
        What to propose, given every next member's promise: the proposal
        accepted under the highest ballot, if any member accepted one (it
        may have been decided), or else the cut of what the promises hold.
        """
        earlier = [p.accepted for p in promises if p.accepted is not None]
        if earlier:
            return max(earlier, key=lambda a: a[0])[1]
        cut: dict[str, int] = {}
        floor: dict[str, int] = {}
        for p in promises:
            for name, stamp in p.held:
                # The union of what survivors hold: every delivery anyone
                # made lies inside it (a message is delivered only once
                # every member holds it).
                cut[name] = max(cut.get(name, 0), stamp)
                floor[name] = min(floor.get(name, stamp), stamp)
        joined = tuple(
            sorted((n, self.joiners[n]) for n in members if n in self.joiners)
        )
        addresses = self.addresses.of(n for n, _ in joined)
        return Proposal(members, stamps(cut), stamps(floor), joined, addresses)

    def _majority(self, names: Iterable[str]) -> bool:
        """
        Whether C{names} are a majority of the current view (of its members
        not L{waived}).
        """
        if self.waived:
            base = [m for m in self.view.members if m not in self.waived]
            return 2 * len(set(names).intersection(base)) > len(base)
        return self.view.majority(frozenset(names))

    # -- every member ----------------------------------------------------------

    def _wedge(self) -> None:
        if not self.engine.wedged:
            self._records.extend(self.engine.take_deliveries())
            self.engine.wedge()
        self.state = FLUSHING

    def _holdings(self) -> tuple[Message, ...]:
        mine = {(m.sender, m.clock): m for m in self.engine.undelivered()}
        for (sender, clock), payload in self._store.items():
            mine.setdefault((sender, clock), Message(sender, clock, payload))
        return tuple(mine[k] for k in sorted(mine, key=lambda k: (k[1], k[0])))

    def _reject(self, sender: str, ballot: Ballot, now: float) -> None:
        reject = Reject(self.view.id, ballot, self._promised)
        if sender == self.me:
            self._ballots.reject(reject, now)
        else:
            self._control.append((sender, reject))

    def on_propose(self, sender: str, propose: Propose, now: float) -> None:
        """
        Answer a ballot's first phase: promise it (wedging the engine and
        reporting what this member holds) unless a later one was promised.
        """
        if propose.ballot < self._promised:
            self._reject(sender, propose.ballot, now)
            return
        self._promised = propose.ballot
        self._wedge()
        self.wait_for_coordinator(now)
        holdings = self._holdings()
        if sender != self.me:
            # What the coordinator already holds (its receipt horizons, in
            # the proposal: FIFO links make each one a prefix) it does not
            # need again.  Under a heavy load that is nearly everything,
            # and a promise of every undelivered message could outgrow a
            # frame.
            theirs = dict(propose.held)
            holdings = tuple(m for m in holdings if m.clock > theirs.get(m.sender, 0))
        promise = Promise(
            self.view.id,
            propose.ballot,
            stamps(self.engine.held()),
            holdings,
            self._accepted,
        )
        if sender == self.me:
            self._ballots.promise(self.me, promise, now)
        else:
            self._control.append((sender, promise))

    def on_accept(self, sender: str, accept: Accept, now: float) -> None:
        """
        Answer a ballot's second phase: accept its proposal (keeping the
        messages it carries) unless a later ballot was promised.
        """
        for m in accept.messages:
            # Messages of the view are worth keeping whatever the ballot.
            self._store[(m.sender, m.clock)] = m.payload
        if accept.ballot < self._promised:
            self._reject(sender, accept.ballot, now)
            return
        self._promised = accept.ballot
        self._accepted = (accept.ballot, accept.proposal)
        self._wedge()
        self.wait_for_coordinator(now)
        if sender == self.me:
            self._ballots.accepted(self.me, Accepted(self.view.id, accept.ballot), now)
        else:
            self._control.append((sender, Accepted(self.view.id, accept.ballot)))

    def install(
        self,
        proposal: Proposal,
        messages: Sequence[Message],
        ballot: Ballot,
        now: float,
    ) -> None:
        """
        Install the next view as decided: deliver the cut, then start the
        next view's engine (or stop, if this member is not in it).
        """
        for m in messages:
            self._store[(m.sender, m.clock)] = m.payload
        closing = self.view
        if self.me not in proposal.members:
            self._removed(f"view {closing.id + 1} was decided without it")
            return
        if not self.engine.wedged:
            self._records.extend(self.engine.take_deliveries())
        extra = [Message(s, c, p) for (s, c), p in self._store.items()]
        closed = self.engine.close(dict(proposal.cut), extra)
        self._records.extend(closed)
        floor = dict(proposal.floor)
        self._decisions.append(
            _Decision(
                closing.id,
                ballot,
                proposal,
                tuple(
                    Message(d.sender, d.clock, d.payload)
                    for d in closed
                    if d.clock > floor.get(d.sender, 0)
                ),
            )
        )
        self.view = View(closing.id + 1, proposal.members)
        self.addresses.learn(proposal.addresses, settled=True)
        if self.waived:
            self.forced.append(self.view.id)
            self.waived = frozenset()
        self.engine = self._factory(
            self.me,
            list(proposal.members),
            view=self.view.id,
            clock=self.engine.clock,
            delivered=self.engine.delivered,
        )
        self._records.append(
            ViewChange(self.view.id, self.view.members, self.engine.delivered + 1)
        )
        self.view_changes += 1
        self.state = NORMAL
        self._first = self.engine.delivered + 1
        for name in closing.members:
            if name not in proposal.members and name != self.me:
                # Frames go to the view's members only, so a member left out
                # (paused, cut off) would otherwise never hear of it and
                # think itself in the old view for ever.
                self._control.append((name, self.gone(closing.id)))
        for name in proposal.members:
            if name not in closing.members:
                # Every member welcomes it, so that it is welcomed even if
                # the coordinator crashes now; it takes the first welcome.
                self._welcome(name)
        self.joined_as = {
            n: i for n, i in self.joined_as.items() if n in proposal.members
        }
        self.joined_as.update(proposal.joined)
        for name in proposal.members:
            self.joiners.pop(name, None)
        self.leaving &= set(proposal.members)
        self.suspects &= set(proposal.members)
        self._promised = NO_BALLOT
        self._accepted = None
        self._store = {}
        self._ballots.running = None
        self._wait_until = None
        self._take_held(now)
        if self.suspects:
            self._send_all(Suspect(self.view.id, tuple(sorted(self.suspects))))
        if self.joiners:
            self._consider(now)

    def _take_held(self, now: float) -> None:
        """
        A view was installed: take in what arrived for it before it was.
        """
        waiting, self._future = self._future, []
        for sender, item in waiting:
            if isinstance(item, Frame):
                self.receive_data(sender, item, now)
            else:
                self.receive_control(sender, item, now)

    def _removed(self, why: str) -> None:
        self._join_at = None
        self.state = REMOVED
        self.reason = why
        self._ballots.running = None
        self._wait_until = None
        self._future = []

    def _inquire(self, sender: str) -> None:
        key = (sender, self.view.id)
        if key not in self._inquired:
            self._inquired.add(key)
            self._control.append(
                (sender, Inquire(self.view.id, stamps(self.engine.held())))
            )

    def _answer_laggard(self, sender: str, view: int, held: dict[str, int]) -> None:
        """
        C{sender} is still in view C{view}, which this member has closed:
        send it the decision with the messages it lacks, or tell it that it
        is out.
        """
        if view >= self.view.id:
            return
        for decision in self._decisions:
            if decision.view == view:
                lacking = tuple(
                    m for m in decision.ragged if m.clock > held.get(m.sender, 0)
                )
                self._control.append(
                    (sender, Decide(view, decision.ballot, decision.proposal, lacking))
                )
                return
        # Without the decision (this member was added by a later view, or
        # it is forgotten), say where the group is: a laggard that is a
        # member of it asks the others, one that is not is out.
        self._control.append((sender, self.gone(view)))

    def _add_suspects(self, names: Iterable[str]) -> None:
        """
        Suspect C{names} and tell the others, so that the one to run the
        view change learns of it.
        """
        fresh = tuple(
            sorted(
                n
                for n in set(names)
                if n != self.me and n in self.view.members and n not in self.suspects
            )
        )
        if fresh:
            self.suspects.update(fresh)
            self._send_all(Suspect(self.view.id, fresh))

    def _send_all(self, message: Control) -> None:
        for name in self.view.members:
            if name != self.me and name not in self.suspects:
                self._control.append((name, message))
