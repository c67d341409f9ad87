"""
A member's standing in its group: L{Standing} says once that the member is
out of the group or being added back, and fails the multicasts that can no
longer be delivered here; it has the member leave the group when it stops
or when a delivery handler has been stuck too long, and ask to be added
back when it starts again, once its handlers keep records again, or, for a
member that joins a running group, once a member of it answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from isis_twisted.core.addresses import AddressBook
from isis_twisted.core.engine import StreamPosition
from isis_twisted.core.membership import BLOCKED, JOINING, REMOVED
from isis_twisted.core.views import View
from isis_twisted.net.discovery import Found

if TYPE_CHECKING:
    from isis_twisted.net.node import MulticastNode, NodeRemovedError

# The errors that callers catch are defined in isis_twisted.net.node, which
# imports this module: each is imported where it is raised.


class Standing:
    """
    Whether one member is in its group, what it says of it, and its leaving
    and asking back in.

    @ivar discovered: A member of the group to join answered.
    @ivar gave_up: The member left the group because a handler could not
        keep a record; it asks to be added back once the handler keeps it.
    @ivar give_ups: How many times it left so.
    @ivar told_removed: It said it is out of the group (once per removal).
    @ivar told_joining: It said it is being added (or it was started so).
    @ivar left: It left the group when it was stopped: it asks to be added
        back when it is started again, from there.
    """

    def __init__(self, node: MulticastNode, log: Logger) -> None:
        """
        @param node: The member.
        @param log: The member's logger: what is said here is the member's.
        """
        self._node = node
        self._log = log
        self.discovered = False
        self.gave_up = False
        self.give_ups = 0
        self.told_removed = False
        self.told_joining = node.membership.state == JOINING
        self.left = False

    def removed_error(self) -> NodeRemovedError:
        """
        The error for a multicast of a member that is out of the group.
        """
        from isis_twisted.net.node import NodeRemovedError

        node = self._node
        return NodeRemovedError(
            f"{node.me!r} is out of the group: {node.membership.reason}; it"
            " delivers nothing more"
        )

    def cannot_deliver(self) -> tuple[str, str, tuple[str, ...]] | None:
        """
        Why a message multicast now would not be delivered (see
        L{MulticastNode.cannot_deliver}).
        """
        node = self._node
        membership = node.membership
        if node.stopped:
            return ("stopped", f"member {node.me!r} is stopped", ())
        if membership.state == REMOVED:
            return ("removed", str(self.removed_error()), ())
        if membership.state == JOINING:
            return (
                "joining",
                f"member {node.me!r} is not in the group yet (it is being added)",
                (),
            )
        if membership.state == BLOCKED:
            missing = tuple(sorted(membership.suspects))
            return (
                "blocked",
                f"member {node.me!r} cannot reach a majority of its view"
                f" ({', '.join(membership.view.members)}); it waits for"
                f" {', '.join(missing) or 'a majority'} to come back",
                missing,
            )
        return None

    def watch(self) -> None:
        """
        The member is out of the group or being added: say so once, fail the
        multicasts it can no longer deliver, and ask to be added back if it
        left for its handlers and they keep records again.
        """
        node = self._node
        membership = node.membership
        admission = node.admission
        if membership.state == REMOVED:
            if not self.told_removed:
                self.told_removed = True
                if self.gave_up:
                    self._log.warn(
                        "member {me!r} is out of the group until its delivery"
                        " handlers keep what they hold: {reason}",
                        me=node.me,
                        reason=membership.reason,
                    )
                    how = "left the group, its delivery handler stuck,"
                else:
                    self._log.error(
                        "member {me!r} is out of the group: {reason}; it delivers"
                        " nothing more (the others went on without it)",
                        me=node.me,
                        reason=membership.reason,
                    )
                    how = "was removed from the group"
                admission.fail_unsent(self.removed_error())
                admission.fail_sent(
                    f"{node.me!r} {how} after multicasting the message but before"
                    " delivering it; the other members may still deliver it"
                )
            if self.gave_up:
                self._rejoin_after_handlers()
        elif membership.state == JOINING:
            if not self.told_joining:
                self.told_joining = True
                self._log.warn(
                    "member {me!r} was left out of view {view} before it"
                    " delivered anything (it was paused, cut off or started"
                    " late); it asks to be added back",
                    me=node.me,
                    view=membership.view.id,
                )
            if admission.pending:
                admission.fail_sent(
                    f"{node.me!r} was left out of the group after multicasting the"
                    " message but before delivering it, and asks to be added"
                    " back; the other members may still deliver it"
                )

    def found(self, found: Found) -> None:
        """
        A member of the group to join answered: take the group's founding
        list and addresses, and ask the members of its view to be added.
        """
        node = self._node
        here = found.here
        self.discovered = True
        node.members = tuple(sorted(here.members))
        membership = node.membership
        addresses = dict(here.addresses)
        addresses.setdefault(here.member, found.address)
        membership.addresses = AddressBook(
            node.me, node.members, addresses, node.advertise
        )
        node.peers.recheck()
        asking = {*node.members, *addresses, here.member, node.me}
        membership.join(node.clock.seconds(), View(0, tuple(sorted(asking))))
        self.told_joining = True
        node.schedule_turn()

    def start(self) -> None:
        """
        The member starts: ask to be added to the group if it must be (it
        joins a running group, its handlers hold records of the group's
        stream, or it left when it was stopped), and say so.
        """
        node = self._node
        membership = node.membership
        started_from = node.handout.started_from
        if node.discovery is not None and not self.discovered:
            self._log.info(
                "member {me!r} asks {addresses} to join group {group!r}, from"
                " index {index}",
                me=node.me,
                addresses=", ".join(node.discovery.addresses),
                group=node.group,
                index=(started_from or StreamPosition()).index + 1,
            )
        elif membership.state == JOINING:
            self._log.warn(
                "member {me!r} holds records of the group up to index {index}"
                " and asks to be added back",
                me=node.me,
                index=(started_from or StreamPosition()).index,
            )
            membership.join(node.clock.seconds())
        elif self.left:
            self.left = False
            self._log.warn(
                "member {me!r} left the group when it stopped; it asks to be"
                " added back, from index {index}",
                me=node.me,
                index=node.handout.handed.index,
            )
            node.catchup.forget()
            membership.join(node.clock.seconds())
            self.told_joining = True

    def leave(self) -> None:
        """
        The member stops: leave the group, and remember to ask back in if it
        was in it.
        """
        membership = self._node.membership
        self.left = membership.state not in (REMOVED, JOINING) and bool(
            membership.peers
        )
        membership.leave()

    def watch_handlers(self, now: float) -> None:
        """
        After each run of the pump: leave the group if a handler has been
        stuck too long, and ask to be added back once none is.
        """
        node = self._node
        pump = node.pump
        if self.gave_up:
            self._rejoin_after_handlers()
            return
        stuck = pump.stuck
        if stuck is None:
            return
        membership = node.membership
        if membership.state in (REMOVED, JOINING) or not membership.peers:
            return
        if not (pump.given_up(now) or pump.pending > self._most_pending):
            return
        self.gave_up = True
        self.give_ups += 1
        self._log.error(
            "member {me!r} leaves the group: delivery handler {handler} has not"
            " kept record {index} for {seconds:.0f} s ({reason}) and {pending}"
            " records wait for it; it asks to be added back, and catches up,"
            " once the handler keeps it",
            me=node.me,
            handler=stuck.handler,
            index=stuck.index,
            seconds=now - stuck.since,
            reason=stuck.reason,
            pending=pump.pending,
        )
        membership.leave()
        node.schedule_turn()

    @property
    def _most_pending(self) -> int:
        # As many records as the history keeps, so that a member that left
        # can still be given what it lacks when it rejoins.
        return max(self._node.history.size, 10_000)

    def _rejoin_after_handlers(self) -> None:
        """
        This member left because a handler was stuck: once none is and the
        group went on without it, ask to be added back.
        """
        node = self._node
        pump = node.pump
        membership = node.membership
        if (
            pump.stuck is not None
            or pump.pending
            or membership.state != REMOVED
            or node.stopped
        ):
            return
        self.gave_up = False
        self.told_removed = False
        self._log.warn(
            "member {me!r}: its delivery handlers keep records again; it asks"
            " to be added back, from index {index}",
            me=node.me,
            index=node.handout.handed.index,
        )
        node.catchup.forget()
        self.told_joining = True
        membership.join(node.clock.seconds())
        node.schedule_turn()
