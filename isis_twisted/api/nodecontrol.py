"""
What a node offers the client APIs (AMP and HTTP) and all they use of it:
L{NodeControl}, its L{Subscription}s, and the bound both hold a subscriber
to.  The APIs reach the node only through these, so that they do not
depend on how the node is built (tests give them doubles).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from twisted.internet.defer import Deferred, gatherResults
from twisted.python.failure import Failure

from isis_twisted.core.engine import Delivery
from isis_twisted.core.status import NodeStatus

__all__ = ["DEFAULT_BACKLOG", "NodeControl", "Subscription", "multicast_each"]


class Subscription(Protocol):
    """
    A running subscription to a node's deliveries, as returned by
    L{NodeControl.subscribe}.
    """

    @property
    def first(self) -> int:
        """
        The index of the first delivery the subscription passes to its
        callback.
        """

    def cancel(self) -> None:
        """
        Stop the subscription: its callback is not called again.
        """


class NodeControl(Protocol):
    """
    What the client API needs from a node, and all it uses.
    """

    @property
    def me(self) -> str:
        """
        This member's name.
        """

    def multicast(self, payload: bytes) -> Deferred[Delivery]:
        """
        Multicast C{payload} to the group.

        @param payload: The message's bytes.
        @return: A L{Deferred} that fires with the delivery record once this
            member has delivered the message.  It may instead fail with
            L{TypeError} or L{ValueError} (for example, a payload larger than
            the node accepts).
        @raise TypeError: If the payload is unacceptable (also allowed as a
            failure of the returned L{Deferred}).
        @raise ValueError: Likewise.
        """

    def multicast_all(
        self, payloads: Sequence[bytes]
    ) -> Deferred[list[Delivery | BaseException]]:
        """
        Multicast every payload, in order, with one L{Deferred} for all.

        @return: Fires once every message is delivered or has failed, with
            each one's delivery record or exception, in order.
        """

    def subscribe(
        self,
        since: int | None,
        callback: Callable[[Any], None],
        flush: Callable[[], None] | None = None,
        views: bool = False,
    ) -> Subscription:
        """
        Call C{callback} with deliveries, in order.

        @param since: Replay the held deliveries with index C{since} or more
            before going on with new ones; L{None} for new ones only.
        @param callback: Called with every delivery record, in order (and,
            with C{views}, every
            L{ViewChange<isis_twisted.core.engine.ViewChange>} among them).
        @param flush: Called after the replay and after each group of
            records the node delivered together (each turn), so that the
            subscriber can send them on together.
        @param views: Pass view changes too.  The client API gives this
            argument only when a client asks for view changes.
        @return: The subscription, telling the first index it passes on.
        @raise HistoryGoneError: If C{since} is below the oldest index the
            node still holds; the message says from which index it can
            resume.
        """

    def status(self) -> NodeStatus | Mapping[str, object]:
        """
        The node's state, for people and monitoring: a L{NodeStatus}, or
        (for test doubles) its JSON form or a part of it.
        """


def multicast_each(
    multicast: Callable[[bytes], Deferred[Delivery]], payloads: Sequence[bytes]
) -> Deferred[list[Delivery | BaseException]]:
    """
    L{NodeControl.multicast_all} made of one C{multicast} per payload, for a
    node (or a test double) without a batch path of its own.
    """
    calls: list[Deferred[Delivery | BaseException]] = []
    for payload in payloads:
        try:
            d = multicast(payload)
        except (TypeError, ValueError) as e:
            calls.append(Deferred())
            calls[-1].callback(e)
            continue
        calls.append(d.addErrback(_exception))
    return gatherResults(calls)


def _exception(failure: Failure) -> BaseException:
    value = failure.value
    return value if value is not None else RuntimeError("failed")


DEFAULT_BACKLOG = 8 * 1024 * 1024
"""
How many bytes of deliveries a subscriber may fall behind by before the
node drops its subscription.
"""
