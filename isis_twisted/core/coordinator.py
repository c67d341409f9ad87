"""
The coordinator's side of a view change: the ballot a member runs when it
is the lowest-ranked member of its view that it does not suspect.

A L{Coordinator} belongs to one L{isis_twisted.core.membership.Membership} and
works through it: it sends its messages through the membership's outbox,
answers its own messages as the member it runs on (a coordinator promises
and accepts its own ballot like everyone else), and asks it what to propose
(L{Membership._choose}) and what counts as a majority
(L{Membership._majority}), the two points the mutation tests break.  Pure
and sans-IO like the membership: times come in as arguments.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

import attrs

from isis_twisted.core.engine import Message
from isis_twisted.core.views import (
    Accept,
    Accepted,
    Ballot,
    Decide,
    Promise,
    Proposal,
    Propose,
    Reject,
    Stamps,
)

if TYPE_CHECKING:
    from isis_twisted.core.membership import Membership


def stamps(mapping: dict[str, int]) -> Stamps:
    """
    Receipt horizons as the wire carries them: sorted (name, stamp) pairs.
    """
    return tuple(sorted(mapping.items()))


@attrs.define
class RunningBallot:
    """
    A ballot this member runs as coordinator.

    @ivar ballot: Its number and this member's name.
    @ivar members: The next view's members.
    @ivar voters: Those of them in the current view: the ones it was
        proposed to (the others are joining).
    @ivar deadline: When the step it is in times out.
    @ivar promises: The promises so far, by member.
    @ivar proposal: What it proposed, once every member promised.
    @ivar accepted: The members that accepted the proposal.
    @ivar lacking: The messages of the cut each member lacks.
    """

    ballot: Ballot
    members: tuple[str, ...]
    voters: tuple[str, ...]
    deadline: float
    promises: dict[str, Promise] = attrs.Factory(dict)
    proposal: Proposal | None = None
    accepted: set[str] = attrs.Factory(set)
    lacking: dict[str, tuple[Message, ...]] = attrs.Factory(dict)

    def silent(self) -> list[str]:
        """
        The members that did not answer the step the ballot is in.
        """
        answered = set(self.promises) if self.proposal is None else self.accepted
        return [n for n in self.voters if n not in answered]


def lacking(
    promises: dict[str, Promise], proposal: Proposal
) -> dict[str, tuple[Message, ...]]:
    """
    For every member that promised, the messages inside the cut of
    C{proposal} that it does not hold, in timestamp order.
    """
    known: dict[tuple[str, int], Message] = {}
    for p in promises.values():
        for m in p.messages:
            known[(m.sender, m.clock)] = m
    # Per sender, in clock order: what a member lacks of a sender is one
    # slice (above its horizon, up to the cut), found by bisection rather
    # than by reading every message again for every member.
    by_sender: dict[str, list[Message]] = {}
    for key in sorted(known, key=lambda k: (k[1], k[0])):
        by_sender.setdefault(key[0], []).append(known[key])
    clocks = {s: [m.clock for m in ms] for s, ms in by_sender.items()}
    cut_of = dict(proposal.cut)
    out: dict[str, tuple[Message, ...]] = {}
    for name, p in promises.items():
        held = dict(p.held)
        own = {(m.sender, m.clock) for m in p.messages}
        picked: list[Message] = []
        for sender, messages in by_sender.items():
            sender_clocks = clocks[sender]
            low = bisect_right(sender_clocks, held.get(sender, 0))
            high = bisect_right(sender_clocks, cut_of.get(sender, 0))
            picked.extend(
                m for m in messages[low:high] if (m.sender, m.clock) not in own
            )
        picked.sort(key=lambda m: (m.clock, m.sender))
        out[name] = tuple(picked)
    return out


class Coordinator:
    """
    The ballots one member runs as coordinator, one at a time.

    @ivar running: The ballot under way, or L{None}.
    @ivar last_number: The highest ballot number this member has used or
        seen refused.
    """

    def __init__(self, member: Membership) -> None:
        """
        @param member: The membership this coordinator works for.
        """
        self._member = member
        self.running: RunningBallot | None = None
        self.last_number = 0

    def start(self, members: tuple[str, ...], promised: Ballot, now: float) -> None:
        """
        Run a new ballot for a next view of C{members}, numbered above
        every ballot this member has used or promised.
        """
        m = self._member
        self.last_number = max(self.last_number, promised[0]) + 1
        ballot = (self.last_number, m.me)
        voters = tuple(n for n in members if n in m.view.members)
        self.running = RunningBallot(ballot, members, voters, now + m.flush_timeout)
        propose = Propose(m.view.id, ballot, members, stamps(m.engine.held()))
        for name in voters:
            if name != m.me:
                m.send(name, propose)
        m.on_propose(m.me, propose, now)

    def promise(self, sender: str, promise: Promise, now: float) -> None:
        """
        A member promised: with every next member's promise, propose.
        """
        running = self.running
        if (
            running is None
            or promise.ballot != running.ballot
            or running.proposal is not None
            or sender not in running.voters
        ):
            return
        running.promises[sender] = promise
        if len(running.promises) < len(running.voters):
            return
        m = self._member
        proposal = m._choose(running.members, list(running.promises.values()))
        running.proposal = proposal
        running.deadline = now + m.flush_timeout
        running.lacking = lacking(running.promises, proposal)
        for name in running.promises:
            accept = Accept(m.view.id, running.ballot, proposal, running.lacking[name])
            if name == m.me:
                m.on_accept(m.me, accept, now)
            else:
                m.send(name, accept)

    def reject(self, reject: Reject, now: float) -> None:
        """
        A member had promised a later ballot: give this one up.
        """
        running = self.running
        if running is None or reject.ballot != running.ballot:
            return
        m = self._member
        self.last_number = max(self.last_number, reject.promised[0])
        self.running = None
        if reject.promised[1] < m.me:
            # A lower-ranked member is running a ballot: let it finish, and
            # take over only if it does not.
            m.wait_for_coordinator(now)
        else:
            m.reconsider(now)

    def accepted(self, sender: str, accepted: Accepted, now: float) -> None:
        """
        A member accepted: once a majority of the view has, decide.
        """
        running = self.running
        if (
            running is None
            or running.proposal is None
            or accepted.ballot != running.ballot
        ):
            return
        running.accepted.add(sender)
        m = self._member
        if not m._majority(running.accepted):
            return
        for name in running.voters:
            if name != m.me:
                # With what the member lacks again: it may have refused the
                # Accept that carried it, having promised a later ballot.
                m.send(
                    name,
                    Decide(
                        m.view.id,
                        running.ballot,
                        running.proposal,
                        running.lacking.get(name, ()),
                    ),
                )
        m.install(running.proposal, (), running.ballot, now)
