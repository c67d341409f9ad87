"""
Members out of step with one member's view, on either side: the decisions it
keeps to answer members still in a view it closed, and what came to it from
members already in a view it has not installed yet.

A L{Laggards} is a part of one L{isis_twisted.core.membership.Membership}
and works through it: it queues its messages in the membership's outbox and
hands what it held back to the membership's inputs.  Pure and sans-IO like
the membership: times come in as arguments.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from isis_twisted.core.coordinator import stamps
from isis_twisted.core.engine import Delivery, Frame, Message
from isis_twisted.core.views import Ballot, Control, Decide, Inquire, Proposal

if TYPE_CHECKING:
    from isis_twisted.core.membership import Membership

DECISIONS_KEPT = 8
"""
How many past decisions a member keeps to answer members that missed them.
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


class Laggards:
    """
    What one member keeps and asks for while other members are in other
    views than its own.

    @ivar held: Frames and control messages of a later view (or, while this
        member is joining, of the view it is being added to), each with its
        sender, kept until this member installs that view.
    """

    def __init__(self, member: Membership) -> None:
        """
        @param member: The membership this is a part of.
        """
        self._member = member
        self.held: list[tuple[str, Frame | Control]] = []
        self._inquired: set[tuple[str, int]] = set()
        self._decisions: deque[_Decision] = deque(maxlen=DECISIONS_KEPT)

    def hold(self, sender: str, item: Frame | Control) -> None:
        """
        Keep C{item}, from C{sender}, until this member installs its view.
        """
        self.held.append((sender, item))

    def take_held(self, now: float) -> None:
        """
        A view was installed: take in what arrived for it before it was.
        """
        m = self._member
        waiting, self.held = self.held, []
        for sender, item in waiting:
            if isinstance(item, Frame):
                m.receive_data(sender, item, now)
            else:
                m.receive_control(sender, item, now)

    def inquire(self, sender: str) -> None:
        """
        Ask C{sender}, once per view, what was decided: it is in a later view
        than this member.
        """
        m = self._member
        key = (sender, m.view.id)
        if key not in self._inquired:
            self._inquired.add(key)
            m.send(sender, Inquire(m.view.id, stamps(m.engine.held())))

    def keep(
        self, view: int, ballot: Ballot, proposal: Proposal, closed: Sequence[Delivery]
    ) -> None:
        """
        Keep the decision that closed view C{view}, with the messages of its
        ragged edge (those of C{closed}, the deliveries it closed with, above
        the floor of C{proposal}).
        """
        floor = dict(proposal.floor)
        self._decisions.append(
            _Decision(
                view,
                ballot,
                proposal,
                tuple(
                    Message(d.sender, d.clock, d.payload)
                    for d in closed
                    if d.clock > floor.get(d.sender, 0)
                ),
            )
        )

    def answer(self, sender: str, view: int, held: dict[str, int]) -> None:
        """
        C{sender} is still in view C{view}, which this member has closed:
        send it the decision with the messages it lacks, or tell it that it
        is out.
        """
        member = self._member
        if view >= member.view.id:
            return
        for decision in self._decisions:
            if decision.view == view:
                lacking = tuple(
                    m for m in decision.ragged if m.clock > held.get(m.sender, 0)
                )
                member.send(
                    sender, Decide(view, decision.ballot, decision.proposal, lacking)
                )
                return
        # Without the decision (this member was added by a later view, or
        # it is forgotten), say where the group is: a laggard that is a
        # member of it asks the others, one that is not is out.
        member.send(sender, member.gone(view))
