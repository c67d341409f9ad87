"""
A member's side of a view change's ballot (the coordinator's is
L{isis_twisted.core.coordinator}): promising a ballot and wedging, accepting
its proposal, and installing the next view once it is decided.

An L{Acceptor} is a part of one L{isis_twisted.core.membership.Membership}
and works through it: it wedges and replaces the membership's engine, adds
to its delivery stream, queues its answers in its outbox, hands its answers
to its own ballot to the membership's coordinator, and has the membership's
other parts take their share of a view change.  Pure and sans-IO like the
membership: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from isis_twisted.core.coordinator import stamps
from isis_twisted.core.engine import Message, ViewChange
from isis_twisted.core.memberstates import FLUSHING, NORMAL
from isis_twisted.core.views import (
    NO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    Promise,
    Proposal,
    Propose,
    Reject,
    Suspect,
    View,
)

if TYPE_CHECKING:
    from isis_twisted.core.membership import Membership


class Acceptor:
    """
    What one member promised and accepted in its view's ballots.

    @ivar promised: The highest ballot this member promised in its view.
    @ivar accepted: The last proposal it accepted in its view, with the
        ballot it accepted it under, if any.
    @ivar store: Messages of the view that ballots carried to this member,
        by sender and stamp: kept for the view's end, whichever ballot it
        comes from.
    """

    def __init__(self, member: Membership) -> None:
        """
        @param member: The membership this is a part of.
        """
        self._member = member
        self.promised: Ballot = NO_BALLOT
        self.accepted: tuple[Ballot, Proposal] | None = None
        self.store: dict[tuple[str, int], bytes] = {}

    def forget(self) -> None:
        """
        Drop what belongs to the ballots of the view this member was in.
        """
        self.promised = NO_BALLOT
        self.accepted = None
        self.store = {}

    def keep(self, messages: Iterable[Message]) -> None:
        """
        Keep C{messages} of the view for its end.
        """
        for m in messages:
            self.store[(m.sender, m.clock)] = m.payload

    def _wedge(self) -> None:
        member = self._member
        if not member.engine.wedged:
            member._records.extend(member.engine.take_deliveries())
            member.engine.wedge()
        member.state = FLUSHING

    def _holdings(self, above: Mapping[str, int] | None = None) -> tuple[Message, ...]:
        """
        Every message this member holds undelivered, its engine's and those
        the closing view's ballots gave it, in stamp order; with C{above},
        only those above their sender's entry in it.
        """
        engine = self._member.engine
        mine = {(m.sender, m.clock): m for m in engine.undelivered(above)}
        for (sender, clock), payload in self.store.items():
            if above is None or clock > above.get(sender, 0):
                mine.setdefault((sender, clock), Message(sender, clock, payload))
        return tuple(mine[k] for k in sorted(mine, key=lambda k: (k[1], k[0])))

    def _reject(self, sender: str, ballot: Ballot, now: float) -> None:
        member = self._member
        reject = Reject(member.view.id, ballot, self.promised)
        if sender == member.me:
            member._ballots.reject(reject, now)
        else:
            member.send(sender, reject)

    def on_propose(self, sender: str, propose: Propose, now: float) -> None:
        """
        Answer a ballot's first phase: promise it (wedging the engine and
        reporting what this member holds) unless a later one was promised.
        """
        member = self._member
        if propose.ballot < self.promised:
            self._reject(sender, propose.ballot, now)
            return
        self.promised = propose.ballot
        self._wedge()
        member.wait_for_coordinator(now)
        # What the coordinator already holds (its receipt horizons, in the
        # proposal: FIFO links make each one a prefix) it does not need
        # again.  Under a heavy load that is nearly everything, and a
        # promise of every undelivered message could outgrow a frame.
        holdings = self._holdings(None if sender == member.me else dict(propose.held))
        promise = Promise(
            member.view.id,
            propose.ballot,
            stamps(member.engine.held()),
            holdings,
            self.accepted,
        )
        if sender == member.me:
            member._ballots.promise(member.me, promise, now)
        else:
            member.send(sender, promise)

    def on_accept(self, sender: str, accept: Accept, now: float) -> None:
        """
        Answer a ballot's second phase: accept its proposal (keeping the
        messages it carries) unless a later ballot was promised.
        """
        member = self._member
        # Messages of the view are worth keeping whatever the ballot.
        self.keep(accept.messages)
        if accept.ballot < self.promised:
            self._reject(sender, accept.ballot, now)
            return
        self.promised = accept.ballot
        self.accepted = (accept.ballot, accept.proposal)
        self._wedge()
        member.wait_for_coordinator(now)
        if sender == member.me:
            member._ballots.accepted(
                member.me, Accepted(member.view.id, accept.ballot), now
            )
        else:
            member.send(sender, Accepted(member.view.id, accept.ballot))

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
        member = self._member
        self.keep(messages)
        closing = member.view
        if member.me not in proposal.members:
            member._removed(f"view {closing.id + 1} was decided without it")
            return
        if not member.engine.wedged:
            member._records.extend(member.engine.take_deliveries())
        extra = [Message(s, c, p) for (s, c), p in self.store.items()]
        closed = member.engine.close(dict(proposal.cut), extra)
        member._records.extend(closed)
        member._laggards.keep(closing.id, ballot, proposal, closed)
        member.view = View(closing.id + 1, proposal.members)
        member.addresses.learn(proposal.addresses, settled=True)
        if member.waived:
            member.forced.append(member.view.id)
            member.waived = frozenset()
        member.engine = member._factory(
            member.me,
            list(proposal.members),
            view=member.view.id,
            clock=member.engine.clock,
            delivered=member.engine.delivered,
        )
        member._records.append(
            ViewChange(member.view.id, member.view.members, member.engine.delivered + 1)
        )
        member.view_changes += 1
        member.state = NORMAL
        member._joins.installed(closing, proposal)
        member.suspects &= set(proposal.members)
        self.forget()
        member._ballots.running = None
        member._election.wait_until = None
        member._laggards.take_held(now)
        if member.suspects:
            member._send_all(Suspect(member.view.id, tuple(sorted(member.suspects))))
        if member.joiners:
            member._election.consider(now)
