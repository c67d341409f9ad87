"""
A member's multicasts from the call to their outcome: L{Admission} stamps
each payload through the membership, or keeps it, unstamped, while a peer's
resend buffer is full or a view change is under way (back-pressure), and
fires what waits for each message once this member delivered it, or fails
it when the member stops or leaves the group.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred

from isis_twisted.core.engine import Delivery, Record, Timestamp
from isis_twisted.core.membership import REMOVED
from isis_twisted.core.wire import MESSAGE_OVERHEAD

if TYPE_CHECKING:
    from isis_twisted.net.node import MulticastNode

# The errors that callers catch are defined in isis_twisted.net.node, which
# imports this module: each is imported where it is raised.


class _Waiter(Protocol):
    """
    What waits for one multicast's outcome: a L{Deferred}, or a L{_Slot} of
    a batch.
    """

    def callback(self, result: Delivery, /) -> None: ...

    def errback(self, fail: BaseException, /) -> None: ...


class _Batch:
    """
    The outcomes of a batch of multicasts, gathered into one L{Deferred}.

    @ivar done: Fires with every outcome, in order, once the last settles.
    """

    __slots__ = ("_left", "_outcomes", "done")

    def __init__(self, size: int) -> None:
        self._outcomes: list[Delivery | BaseException | None] = [None] * size
        self._left = size
        self.done: Deferred[list[Delivery | BaseException]] = Deferred()
        if not size:
            self.done.callback([])

    def settle(self, position: int, outcome: Delivery | BaseException) -> None:
        """
        Message C{position} was delivered, or failed with C{outcome}.
        """
        self._outcomes[position] = outcome
        self._left -= 1
        if not self._left:
            self.done.callback([o for o in self._outcomes if o is not None])


class _Slot:
    """
    One message of a L{_Batch}: takes its outcome as a L{Deferred} would,
    for a fraction of a Deferred's cost.
    """

    __slots__ = ("_batch", "_position")

    def __init__(self, batch: _Batch, position: int) -> None:
        self._batch = batch
        self._position = position

    def callback(self, result: Delivery, /) -> None:
        self._batch.settle(self._position, result)

    def errback(self, fail: BaseException, /) -> None:
        self._batch.settle(self._position, fail)


class Admission:
    """
    One member's multicasts, from the call to their outcome.

    @ivar waiting: The payloads that wait for room in the resend buffers
        (or for the view change to end), unstamped, each with what waits
        for its outcome, in order.
    @ivar waiting_bytes: Their payload bytes, in all.
    @ivar pending: What waits for each message this member multicast and
        has not delivered yet, by the message's clock.
    @ivar arrived: When each message of the view not delivered yet arrived
        here (this member's own: when it was stamped), for the age of the
        oldest.
    @ivar unflushed: The bytes admitted this turn, in no resend buffer yet.
    @ivar multicasts: How many messages this member multicast, in all.
    """

    def __init__(self, node: MulticastNode) -> None:
        """
        @param node: The member: its membership stamps the messages, its
            links hold the resend buffers.
        """
        self._node = node
        self.unflushed = 0
        self.waiting_bytes = 0
        self.pending: dict[int, _Waiter] = {}
        self.waiting: deque[tuple[bytes, _Waiter]] = deque()
        self.arrived: dict[Timestamp, float] = {}
        self.multicasts = 0

    def take_all(
        self, payloads: Sequence[bytes]
    ) -> Deferred[list[Delivery | BaseException]]:
        """
        Take every payload of C{payloads}, in this order, as L{take} does,
        with one L{Deferred} for all of them (see
        L{MulticastNode.multicast_all}).
        """
        batch = _Batch(len(payloads))
        for position, payload in enumerate(payloads):
            try:
                self.take(payload, _Slot(batch, position))
            except (TypeError, ValueError) as e:
                batch.settle(position, e)
        return batch.done

    def take(self, payload: bytes, waiter: _Waiter) -> None:
        """
        Multicast C{payload} now, or keep it until there is room; fail
        C{waiter} at once if it cannot be taken (see
        L{MulticastNode.multicast}).

        @raise TypeError: If C{payload} is not L{bytes}.
        @raise ValueError: If C{payload} is larger than one frame can carry.
        """
        node = self._node
        if type(payload) is not bytes:
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        if len(payload) > node.max_payload:
            raise ValueError(
                f"payload of {len(payload)} bytes is over the limit of"
                f" {node.max_payload} bytes (raise --max-frame)"
            )
        if node.stopped:
            from isis_twisted.net.node import NodeStoppedError

            waiter.errback(NodeStoppedError("the node is stopped"))
            return
        if node.membership.state == REMOVED:
            waiter.errback(node.standing.removed_error())
            return
        if self.waiting or self.full() or not node.membership.delivering:
            if self.waiting_bytes + len(payload) > node.max_buffer:
                from isis_twisted.net.node import BackPressureError

                held = [n for n in node.membership.peers if node.peers.links[n].full]
                waiter.errback(
                    BackPressureError(
                        f"{self.waiting_bytes} bytes already wait for room in the"
                        f" resend buffer of {', '.join(held) or 'a peer'}; try"
                        " again once it is back"
                    )
                )
                return
            self.waiting.append((payload, waiter))
            self.waiting_bytes += len(payload)
        else:
            self._admit(payload, waiter)

    def _admit(self, payload: bytes, d: _Waiter) -> None:
        node = self._node
        self.unflushed += len(payload) + MESSAGE_OVERHEAD
        stamp = node.membership.multicast(payload)
        self.pending[stamp[0]] = d
        self.arrived[stamp] = node.clock.seconds()
        self.multicasts += 1
        node.schedule_turn()

    def full(self) -> bool:
        """
        Whether a peer of the view has no room for another message in its
        resend buffer, counting what this turn admitted.
        """
        # What this turn admitted is not in any buffer yet but will be in
        # all of them at its end: count it, so no turn overshoots the bound.
        # Only the view's members: a member that left keeps what it was
        # not sent, but it no longer holds anyone back.
        unflushed = self.unflushed
        links = self._node.peers.links
        return any(
            links[name].unacked_bytes + unflushed >= links[name].max_buffer
            for name in self._node.membership.peers
        )

    def let_in(self) -> None:
        """
        Admit the multicasts that waited, while there is room for them and
        the view takes them.
        """
        membership = self._node.membership
        while self.waiting and membership.delivering and not self.full():
            payload, d = self.waiting.popleft()
            self.waiting_bytes -= len(payload)
            self._admit(payload, d)

    def delivered(self, records: list[Record]) -> None:
        """
        Every handler took C{records}: fire what waits for those of them
        that this member multicast.
        """
        pending = self.pending
        if pending:
            me = self._node.me
            for record in records:
                if type(record) is Delivery and record.sender == me:
                    d = pending.pop(record.clock, None)
                    if d is not None:
                        d.callback(record)

    def fail_sent(self, why: str) -> None:
        """
        Fail every message multicast and not delivered yet with a
        L{DeliveryUnknownError<isis_twisted.net.node.DeliveryUnknownError>}
        saying C{why}.
        """
        from isis_twisted.net.node import DeliveryUnknownError

        sent = list(self.pending.values())
        self.pending.clear()
        for d in sent:
            d.errback(DeliveryUnknownError(why))

    def fail_unsent(self, error: Exception) -> None:
        """
        Fail every payload still waiting, never sent, with C{error}.
        """
        unsent = [d for _, d in self.waiting]
        self.waiting.clear()
        self.waiting_bytes = 0
        for d in unsent:
            d.errback(error)

    def stop(self) -> None:
        """
        The member stops: fail every message not delivered yet, those sent
        with L{DeliveryUnknownError<isis_twisted.net.node.DeliveryUnknownError>}
        (they may still be delivered), those never sent with
        L{NodeStoppedError<isis_twisted.net.node.NodeStoppedError>}.
        """
        from isis_twisted.net.node import NodeStoppedError

        me = self._node.me
        self.fail_sent(
            f"{me!r} stopped after multicasting the message but before"
            " delivering it; the other members may still deliver it"
        )
        self.fail_unsent(NodeStoppedError(f"{me!r} stopped before sending the message"))
