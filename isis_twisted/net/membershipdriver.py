"""
The reactor's side of a member's L{Membership}: L{MembershipDriver} keeps
the membership's timer at its deadline, tells it whom the failure detector
suspects and what control messages arrived, takes up a peer's new
incarnation, forces a view on an operator's word, and times and says every
view change.

The rules are the membership's, in L{isis_twisted.core.membership}, and the
failure detector's, in L{isis_twisted.core.detector}; this module reads the
clock, schedules and logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from isis_twisted.core.engine import ViewChange
from isis_twisted.core.membership import JOINING, NORMAL, REMOVED
from isis_twisted.core.views import Control, Leave, Suspect

if TYPE_CHECKING:
    from isis_twisted.net.node import MulticastNode


class MembershipDriver:
    """
    Runs one member's membership on the reactor.

    @ivar closing_since: When the view being closed began to close (a
        member was suspected or a view change began), while it is.
    @ivar last_flush: How long the last view change took, in seconds.
    """

    def __init__(self, node: MulticastNode, log: Logger) -> None:
        """
        @param node: The member.
        @param log: The member's logger: what is said here is the member's.
        """
        self._node = node
        self._log = log
        self._call: IDelayedCall | None = None
        self._deadline: float | None = None
        self.closing_since: float | None = None
        self.last_flush: float | None = None
        self._view_members = node.members

    def watch(self) -> None:
        """
        Follow the membership's state: time a view change, say once that
        this member is out, and keep its timer at its deadline.
        """
        node = self._node
        membership = node.membership
        now = node.clock.seconds()
        if membership.state in (REMOVED, JOINING):
            node.standing.watch()
        elif membership.state != NORMAL or membership.suspects:
            if self.closing_since is None:
                self.closing_since = now
        elif not membership.engine.wedged:
            # The suspicions were dropped before any view change began: the
            # next one is timed from its own start.
            self.closing_since = None
        node.catchup.watch(membership.view)
        deadline = membership.deadline
        call = self._call
        if call is not None and call.active():
            if deadline == self._deadline:
                return
            call.cancel()
        self._call = None
        self._deadline = deadline
        if deadline is not None and not node.stopped:
            self._call = node.clock.callLater(max(0.0, deadline - now), self._tick)

    def _tick(self) -> None:
        self._call = None
        self._deadline = None
        self._node.membership.tick(self._node.clock.seconds())
        self._node.schedule_turn()

    def stop(self) -> None:
        """
        The member stops: the membership's timer with it.
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def control_received(self, peer: str, message: Control) -> None:
        """
        Feed a membership control message from C{peer} to the membership
        (see L{MulticastNode.control_received}).
        """
        node = self._node
        now = node.clock.seconds()
        if isinstance(message, Leave) and message.view == node.view.id:
            self._log.warn(
                "member {peer!r} is stopping; the group goes on without it",
                peer=peer,
            )
        if isinstance(message, Suspect):
            # A suspicion of a member this node hears from is not taken up:
            # it may be old (sent while links were down, delivered once
            # they came back), and taking it up would remove a member that
            # is there.  If the member is gone, this node's own detector
            # will say so.
            names = tuple(n for n in message.names if not node.peers.hears(n, now))
            if not names:
                return
            message = Suspect(message.view, names)
        node.membership.receive_control(peer, message, now)
        node.schedule_turn()

    def new_incarnation(
        self, name: str, incarnation: int, untouched: bool
    ) -> str | None:
        """
        Member C{name} restarted as C{incarnation}: whether to take its
        connection now (see L{MulticastNode.new_incarnation}).
        """
        node = self._node
        membership = node.membership
        if membership.joined_as.get(name) == incarnation:
            return None
        if membership.state in (REMOVED, JOINING):
            return None
        if name not in membership.view.members:
            membership.send(name, membership.gone(membership.view.id))
            node.schedule_turn()
            return None
        if membership.view.id == 0 and untouched:
            return None
        if name not in membership.leaving:
            self._log.warn(
                "member {peer!r} restarted (a new incarnation): its old one is"
                " gone, so the group goes on without it and then adds it back",
                peer=name,
            )
            membership.gone_for_good(name, node.clock.seconds())
            node.schedule_turn()
        return (
            f"member {name!r} restarted as a new incarnation; it is let in once"
            " the group has gone on without its old one"
        )

    def force_view(self, without: Iterable[str] | None = None) -> tuple[str, ...]:
        """
        Close a view that lost its majority for good, without the members
        that are gone (see L{MulticastNode.force_view}).
        """
        node = self._node
        membership = node.membership
        closing = membership.view
        members = membership.force(node.clock.seconds(), without)
        self._log.warn(
            "member {me!r} forces a view change to {members}, without {lost}, on"
            " an operator's word that they are gone for good: a majority of view"
            " {view} is not needed for it",
            me=node.me,
            members=", ".join(members),
            lost=", ".join(n for n in closing.members if n not in members),
            view=closing.id,
        )
        node.schedule_turn()
        return members

    def view_installed(self, change: ViewChange, installed: float) -> None:
        """
        The records handed out reached view change C{change}, which the
        membership installed at C{installed}: time it, drop what the members
        that left still hold here, and say so.
        """
        node = self._node
        # Timed to when the membership installed it, not to when the
        # messages the view closed with were handed out: those waited for
        # the member that left, and handing them out is the handlers' work.
        took = installed - self.closing_since if self.closing_since is not None else 0.0
        self.closing_since = None
        self.last_flush = took
        left = [n for n in self._view_members if n not in change.members]
        self._view_members = change.members
        if left:
            # What the members that left sent beyond the cut is dropped.
            gone = set(left)
            arrived = node.admission.arrived
            for key in [k for k in arrived if k[1] in gone]:
                del arrived[key]
        node.detector.keep_only(change.members)
        node.peers.forget(change.members)
        self._log.warn(
            "member {me!r} installed view {view} of {members}{left}, starting at"
            " index {index}; the view change took {ms:.0f} ms",
            me=node.me,
            view=change.view,
            members=", ".join(change.members),
            left=f" (without {', '.join(left)})" if left else "",
            index=change.index,
            ms=took * 1000,
            flush_s=took,
        )

    def detect(self, now: float) -> None:
        """
        Ask the failure detector (L{isis_twisted.core.detector}) whom to suspect
        and whom to trust again, say so, and tell the membership.
        """
        node = self._node
        membership = node.membership
        if membership.state == REMOVED:
            return
        links = node.links
        verdict = node.detector.look(
            now,
            [
                (name, link.last_heard if (link := links.get(name)) else None)
                for name in membership.peers
            ],
            membership.suspects,
        )
        for name, quiet in verdict.silent:
            self._log.warn(
                "member {me!r} suspects {peer!r}: silent for {seconds:.1f} s;"
                " starting a view change without it",
                me=node.me,
                peer=name,
                seconds=quiet,
            )
        silent = [name for name, _ in verdict.silent]
        back = verdict.back
        if silent:
            # All at once too: one by one, the first would start a view
            # change without that one alone.
            membership.suspect(*silent, now=now)
        if back:
            self._log.info(
                "member {me!r} hears from {peers} again and trusts them",
                me=node.me,
                peers=", ".join(repr(n) for n in back),
            )
            # All at once: trusted one by one, the first one back could make
            # a majority that leaves the others out.
            membership.trust(*back, now=now)
        node.schedule_turn()
