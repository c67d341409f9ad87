"""
Members coming into a group and going out of it: a member's requests to be
added (L{Join}, asked again until it is welcomed), its start in the view it
was added to (L{Welcome}), the requests of others and the welcomes it sends
them, and what it makes of news that the group went on (L{Gone}).

A L{Joins} is a part of one L{isis_twisted.core.membership.Membership} and
works through it: the members asking to be added, the incarnations added,
the members leaving and the welcome are the membership's own attributes,
which the node reads; messages go to its outbox.  Pure and sans-IO like the
membership: times come in as arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from isis_twisted.core.engine import ViewChange
from isis_twisted.core.memberstates import JOINING, NORMAL
from isis_twisted.core.views import (
    Control,
    Gone,
    Inquire,
    Join,
    Leave,
    Proposal,
    View,
    Welcome,
)

if TYPE_CHECKING:
    from isis_twisted.core.membership import Membership

GROUP_LIMIT = 64
"""
The most members a group can be added up to at run time (a group started
with more may not grow): links and frames are sized for it.
"""


class Joins:
    """
    One member's side of members joining the group and leaving it.

    @ivar first: The index of the first delivery of this member's view,
        which its welcomes carry.
    @ivar join_at: When this member, asking to be added, asks again, or
        L{None}.
    """

    def __init__(self, member: Membership) -> None:
        """
        @param member: The membership this is a part of.
        """
        self._member = member
        self.first = 1
        self.join_at: float | None = None

    # -- this member joining ---------------------------------------------------

    def join(self, now: float, latest: View | None = None) -> None:
        """
        Ask to be added to the group (see L{Membership.join}).

        @param latest: The newest view it has heard of, whose members it
            asks too.
        """
        m = self._member
        m.state = JOINING
        m.reason = None
        m.welcome = None
        m._ballots.running = None
        m._election.wait_until = None
        m.suspects = set()
        # What it promised, accepted or was sent in a view it is not in
        # now belongs to that view's ballots, never to the next one's.
        m._acceptor.forget()
        if latest is not None and latest.id >= m.view.id:
            m.view = latest
        self.ask_to_join(now)

    def ask_to_join(self, now: float) -> None:
        """
        Ask every member of the view this member knows of to add it.
        """
        m = self._member
        # Asked again now and then: the member it asked may have crashed, or
        # become coordinator only after it forgot the request.
        self.join_at = now + 4 * m.flush_timeout
        join = Join(m.view.id, m.incarnation, m.addresses.own)
        for name in m.view.members:
            if name != m.me:
                m.send(name, join)

    def while_joining(self, sender: str, message: Control, now: float) -> None:
        """
        A control message for a member that asked to be added: only its
        welcome and news of later views concern it; messages of the view it
        is being added to are kept for once it is.
        """
        m = self._member
        if isinstance(message, Welcome):
            # Only to a view after every one it knows of: a welcome sent to
            # an earlier request (answered twice, or before a restart in the
            # same process) would put it back in a view the group closed.
            if m.me in message.latest.members and message.latest.id > m.view.id:
                m.addresses.learn(message.addresses)
                self._welcomed(sender, message, now)
        elif isinstance(message, Gone):
            latest = message.latest
            m.addresses.learn(message.addresses)
            # A view of the same id with other members: this member knew
            # only whom it was told to ask (it joins a running group), and
            # asks the members of the view they are in.  Only when the
            # members differ, so that two answers do not ask twice.
            later = latest.id > m.view.id or (
                latest.id == m.view.id and latest.members != m.view.members
            )
            if later and m.me not in latest.members:
                m.view = latest
                self.ask_to_join(now)
        elif not isinstance(message, Join | Inquire | Leave):
            m._laggards.hold(sender, message)

    def _welcomed(self, sender: str, welcome: Welcome, now: float) -> None:
        """
        Start in the view this member was added to, at its first index.
        """
        m = self._member
        m.welcome = (sender, welcome)
        m.view = welcome.latest
        m.engine = m._factory(
            m.me,
            list(welcome.latest.members),
            view=welcome.latest.id,
            clock=welcome.clock,
            delivered=welcome.first - 1,
        )
        self.first = welcome.first
        m._records.append(
            ViewChange(welcome.latest.id, welcome.latest.members, welcome.first)
        )
        m.view_changes += 1
        m.state = NORMAL
        self.join_at = None
        m._laggards.take_held(now)

    def on_gone(self, sender: str, gone: Gone, now: float) -> None:
        """
        C{sender} says where the group is now: if it went on past this
        member's view, ask to be added, ask what was decided, or stop.
        """
        m = self._member
        if gone.view >= m.view.id:
            if m.fresh:
                # Nothing was delivered here yet: there is nothing this
                # member could disagree on, so it asks to be added.
                m.join(now, gone.latest)
            elif m.me in gone.latest.members and m.state != JOINING:
                # The group went on to a view with this member in it:
                # it missed the decision, and the sender (added by that
                # view, say) does not hold it.  Those that installed
                # the view by deciding do: ask them.
                for name in gone.latest.members:
                    if name not in (m.me, sender):
                        m._laggards.inquire(name)
            else:
                m._removed(f"the group went on to view {gone.latest.id} without it")

    # -- others joining ----------------------------------------------------------

    def on_join(self, sender: str, join: Join, now: float) -> None:
        """
        C{sender} asks to be added: note where it listens, and add it.
        """
        if join.address:
            self._member.addresses.learn([(sender, join.address)], settled=True)
        self._joined_by(sender, join.incarnation, now)

    def _joined_by(self, sender: str, incarnation: int, now: float) -> None:
        """
        C{sender}'s C{incarnation} asks to be added.
        """
        m = self._member
        if sender in m.view.members:
            # It was added, but missed its welcome (the member that sent it
            # crashed first).  Nothing of this view can have been delivered
            # without it, so the view still starts where it started.
            if m.view.id > 0 and m.state == NORMAL:
                self._welcome(sender)
            return
        limit = max(GROUP_LIMIT, len(m.addresses.founders))
        if sender not in m.joiners and len(m.view.members) + len(m.joiners) >= limit:
            m.turned_away += 1
            return
        m.joiners[sender] = incarnation
        if m._election.coordinator() != m.me:
            # Tell it the view: it asks every member of it, the coordinator
            # included (it may know only an older view's members).
            m.send(sender, m.gone(m.view.id))
        m._election.consider(now)

    def _welcome(self, name: str) -> None:
        m = self._member
        view = m.view
        addresses = m.addresses.of(view.members)
        m.send(name, Welcome(view.id, view, self.first, m.engine.clock, addresses))

    def installed(self, closing: View, proposal: Proposal) -> None:
        """
        The view after C{closing} was installed as C{proposal} decided: tell
        the members it left out, welcome the ones it added, and forget the
        requests it answered.
        """
        m = self._member
        self.first = m.engine.delivered + 1
        for name in closing.members:
            if name not in proposal.members and name != m.me:
                # Frames go to the view's members only, so a member left out
                # (paused, cut off) would otherwise never hear of it and
                # think itself in the old view for ever.
                m.send(name, m.gone(closing.id))
        for name in proposal.members:
            if name not in closing.members:
                # Every member welcomes it, so that it is welcomed even if
                # the coordinator crashes now; it takes the first welcome.
                self._welcome(name)
        m.joined_as = {n: i for n, i in m.joined_as.items() if n in proposal.members}
        m.joined_as.update(proposal.joined)
        for name in proposal.members:
            m.joiners.pop(name, None)
        m.leaving &= set(proposal.members)
