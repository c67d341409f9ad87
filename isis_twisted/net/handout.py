"""
Where a member's records go once its membership delivers them: L{HandOut}
gives them to the delivery handlers, through the node's L{HandlerFeed}, and
once every handler took them, to the history and its subscribers and to
what waits for the member's own multicasts.  It knows where the handlers
stopped, so that a member added back catches up from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from isis_twisted.core.engine import Delivery, Record, StreamPosition
from isis_twisted.interfaces import IDeliveryHandler, IDurableHandler

if TYPE_CHECKING:
    from isis_twisted.net.node import MulticastNode


def _order(position: StreamPosition) -> tuple[int, int]:
    return (position.index, position.view)


class HandOut:
    """
    One member's records, on their way to its handlers and on.

    @ivar durable: The handlers that keep their own log of the stream
        (L{IDurableHandler}), in order.
    @ivar started_from: The earliest of their positions when the member was
        made, L{None} without durable handlers: a member whose handlers hold
        records of the group's stream was in the group before.
    @ivar handed: The last records handed out in this life.
    """

    def __init__(self, node: MulticastNode, log: Logger) -> None:
        """
        @param node: The member: its pump holds the handlers.
        @param log: The member's logger: what is said here is the member's.
        """
        self._node = node
        self._log = log
        self.durable = [h for h in node.pump.handlers if IDurableHandler.providedBy(h)]
        positions = [h.position() for h in self.durable]
        self.started_from = min(positions, key=_order) if positions else None
        self.handed = StreamPosition()

    def hand_out(self, records: list[Record], replayed: bool = False) -> None:
        """
        Give a turn's records to the handlers (see
        L{MulticastNode.hand_out}).
        """
        node = self._node
        if not replayed:
            driver = node.driver
            taken = node.clock.seconds() if driver.closing_since is not None else 0.0
            arrived = node.admission.arrived
            for record in records:
                if isinstance(record, Delivery):
                    if arrived:
                        arrived.pop((record.clock, record.sender), None)
                else:
                    driver.view_installed(record, taken)
        self.handed = self.handed.advanced(records)
        node.feed.put(records)

    def pass_on(self, records: list[Record]) -> None:
        """
        Every handler took these records: pass them to the history and its
        subscribers, then fire the multicasts' Deferreds.
        """
        node = self._node
        history = node.history
        history.extend(records)
        if history.has_subscribers:
            history.turn_done()
        # Last: a caller resumed by its multicast's Deferred finds the
        # record already in the history and taken by every handler.
        node.admission.delivered(records)

    def add(self, handler: IDeliveryHandler) -> None:
        """
        Give every record from now on to C{handler} too, after the others.
        """
        self._node.pump.add(handler)
        if IDurableHandler.providedBy(handler):
            self.durable.append(handler)

    def resume_point(self) -> StreamPosition | None:
        """
        Where this member's handlers stopped (see
        L{MulticastNode.resume_point}).
        """
        handed = self.handed
        if handed.index or handed.view:
            return handed
        positions = [h.position() for h in self.durable]
        if not positions:
            return None
        return min(positions, key=_order)

    def close(self) -> None:
        """
        The member stops: close every handler, and say which could not be.
        """
        for handler in self._node.pump.handlers:
            try:
                handler.close()
            except Exception:
                self._log.failure(
                    "delivery handler {handler!r} failed to close", handler=handler
                )
