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

L{Membership} is the one object a node or a simulation drives; its parts,
each in its own module, work through it:
L{isis_twisted.core.coordinator} runs its ballots as coordinator,
L{isis_twisted.core.acceptor} answers ballots and installs the views they
decide, L{isis_twisted.core.election} holds who closes the view and when
(suspicions, trust, forced views), L{isis_twisted.core.joins} adds members
and lets them go, and L{isis_twisted.core.laggards} answers members still in
a view this one closed and keeps what comes from members already in a later
one.  The member's states are in L{isis_twisted.core.memberstates}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from isis_twisted.core.acceptor import Acceptor
from isis_twisted.core.addresses import AddressBook
from isis_twisted.core.coordinator import Coordinator, RunningBallot, stamps
from isis_twisted.core.election import CannotForceError as CannotForceError
from isis_twisted.core.election import Election
from isis_twisted.core.engine import Engine, Frame, Message, Record
from isis_twisted.core.joins import GROUP_LIMIT as GROUP_LIMIT
from isis_twisted.core.joins import Joins
from isis_twisted.core.laggards import Laggards
from isis_twisted.core.memberstates import BLOCKED as BLOCKED
from isis_twisted.core.memberstates import FLUSHING as FLUSHING
from isis_twisted.core.memberstates import JOINING as JOINING
from isis_twisted.core.memberstates import NORMAL as NORMAL
from isis_twisted.core.memberstates import REMOVED as REMOVED
from isis_twisted.core.views import (
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


class NotDeliveringError(Exception):
    """
    The member cannot take a multicast now: it is closing its view (wait
    for the next one) or out of the group.
    """


class Membership:
    """
    One member of a group whose membership changes.

    @ivar me: This member's name.
    @ivar view: The view this member is in.
    @ivar engine: The ordering engine of the current view.
    @ivar state: L{NORMAL}, L{FLUSHING}, L{BLOCKED}, L{REMOVED} or
        L{JOINING}.
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
        self._acceptor = Acceptor(self)
        self._ballots = Coordinator(self)
        self._election = Election(self)
        self._joins = Joins(self)
        self._laggards = Laggards(self)
        self._control: list[tuple[str, Control]] = []
        self._records: list[Record] = []
        self.joiners: dict[str, int] = {}
        self.joined_as: dict[str, int] = {}
        self.leaving: set[str] = set()
        self.welcome: tuple[str, Welcome] | None = None
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

    def send(self, name: str, message: Control) -> None:
        """
        Queue C{message} for member C{name} (see L{take_control}).
        """
        self._control.append((name, message))

    def _send_all(self, message: Control) -> None:
        for name in self.view.members:
            if name != self.me and name not in self.suspects:
                self._control.append((name, message))

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
        times = [
            t for t in (self._election.wait_until, self._joins.join_at) if t is not None
        ]
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
            self._laggards.hold(sender, frame)
            return
        if frame.view > self.view.id:
            self._laggards.hold(sender, frame)
            self._laggards.inquire(sender)
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
        self._election.suspect(names)
        self._election.consider(now)

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
        self._election.trust(names, now)

    def tick(self, now: float) -> None:
        """
        The L{deadline} has come: a ballot that did not finish is run again
        without the members that did not answer, and a member that waited
        in vain for its coordinator gives up on it.
        """
        if self.state == REMOVED:
            return
        joins = self._joins
        if joins.join_at is not None and now >= joins.join_at:
            joins.ask_to_join(now)
            return
        self._election.tick(now)

    def receive_control(self, sender: str, message: Control, now: float) -> None:
        """
        Take in a control message from C{sender}.
        """
        if self.state == REMOVED:
            if isinstance(message, Join) and message.view < self.view.id:
                # Out of the group, but it knows a later view than the asker:
                # a member that restarted may know no one else to ask (every
                # member it knew of was replaced), and would ask for ever.
                self.send(sender, self.gone(message.view))
            return
        if self.state == JOINING:
            self._joins.while_joining(sender, message, now)
            return
        if isinstance(message, Join):
            self._joins.on_join(sender, message, now)
            return
        if isinstance(message, Inquire):
            if (
                message.view == self.view.id
                and sender in self.view.members
                and self._election.coordinator() == self.me
            ):
                # The asker promised a view change of this view and waited
                # for it in vain; if it is this member's to run, it runs one
                # now, even if this member suspects nobody (else members
                # that hear each other again could stay wedged for ever).
                self._election.consider(now, asked=True)
            self._laggards.answer(sender, message.view, dict(message.held))
            return
        if isinstance(message, Gone):
            self._joins.on_gone(sender, message, now)
            return
        if message.view < self.view.id:
            if isinstance(message, Propose):
                self._laggards.answer(sender, message.view, dict(message.held))
            elif isinstance(message, Leave):
                # Sent while a view change was under way that kept it: it
                # stopped all the same (links are FIFO, so nothing it sent
                # after stopping can come before this).
                self.gone_for_good(sender, now)
            return
        if message.view > self.view.id:
            self._laggards.hold(sender, message)
            self._laggards.inquire(sender)
            return
        if isinstance(message, Leave):
            self.gone_for_good(sender, now)
        elif isinstance(message, Suspect):
            self._election.heard(message, now)
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
        self._joins.join(now, latest)

    def gone(self, view: int) -> Gone:
        """
        The L{Gone} that tells a member of view C{view} where the group is
        now, and where its members listen.
        """
        return Gone(view, self.view, self.addresses.of(self.view.members))

    def gone_for_good(self, name: str, now: float) -> None:
        """
        Member C{name} is known to be gone (it said it is stopping, or it
        restarted as a new incarnation): suspect it, and never trust it
        again in this view.
        """
        if name in self.view.members and name != self.me:
            self.leaving.add(name)
            self._election.suspect([name])
            self._election.consider(now)

    def stop(self, why: str) -> None:
        """
        Take this member out of the group on its own account: it delivers
        nothing more.
        """
        self._removed(why)

    def _removed(self, why: str) -> None:
        self._joins.join_at = None
        self.state = REMOVED
        self.reason = why
        self._ballots.running = None
        self._election.wait_until = None
        self._laggards.held = []

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
        return self._election.force(now, without)

    # -- the ballots, for the coordinator and this member's acceptor ----------

    def reconsider(self, now: float) -> None:
        """
        Start a ballot again if this member is the one to run it (its last
        one was refused by a member that promised a later one).
        """
        self._election.consider(now, force=True)

    def wait_for_coordinator(self, now: float) -> None:
        """
        Give the member running a ballot time to finish it before taking
        over.
        """
        self._election.wait_until = now + 2 * self.flush_timeout

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

    def on_propose(self, sender: str, propose: Propose, now: float) -> None:
        """
        Answer a ballot's first phase: promise it (wedging the engine and
        reporting what this member holds) unless a later one was promised.
        """
        self._acceptor.on_propose(sender, propose, now)

    def on_accept(self, sender: str, accept: Accept, now: float) -> None:
        """
        Answer a ballot's second phase: accept its proposal (keeping the
        messages it carries) unless a later ballot was promised.
        """
        self._acceptor.on_accept(sender, accept, now)

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
        self._acceptor.install(proposal, messages, ballot, now)
