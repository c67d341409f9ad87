"""
The deliveries a node's client API sends one subscribed connection, on
their way: gathered per turn into one L{Deliver}, held back while the client
is not reading, and given up once the client falls too far behind.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols import amp

from isis_twisted.api.commands import (
    BATCH_BYTES,
    Deliver,
    SubscriptionDropped,
)
from isis_twisted.core.engine import Record, ViewChange
from isis_twisted.core.records import pack_records

__all__ = ["SubscriberFeed"]


class SubscriberFeed:
    """
    What the node's end of one client connection holds for the connection's
    subscription, and sends on as L{Deliver} commands.

    Records are gathered until L{flush} (called at the end of each of the
    node's turns) or until about L{BATCH_BYTES} of them are, then sent as
    one L{Deliver}.  Between L{pause} and L{resume} (the connection's write
    buffer is full) they wait in a backlog of at most C{limit} bytes; past
    that the subscription is cancelled, the client is sent a
    L{SubscriptionDropped} notice saying from which index to resubscribe,
    and the connection is closed.
    """

    _log = Logger()

    def __init__(
        self,
        connection: amp.AMP,
        clock: IReactorTime,
        limit: int,
        cancel: Callable[[], None],
    ) -> None:
        """
        @param connection: The node's end of the client connection, which
            the commands go out on.
        @param clock: For the grace period of a dropped subscriber.
        @param limit: The most bytes of deliveries held for a subscriber
            that is not reading.
        @param cancel: Cancels the node's subscription, when the subscriber
            is dropped.
        """
        self._connection = connection
        self._clock = clock
        self._limit = limit
        self._cancel = cancel
        self._blocked = False
        self._backlog: deque[Record] = deque()
        self._backlog_bytes = 0
        self._dropped = False
        self._closed = False
        # Records gathered in this turn, sent by flush.
        self._batch: list[Record] = []
        self._batch_bytes = 0

    def push(self, record: Record) -> None:
        """
        Take the next record of the subscription: send it with the others
        of this turn, or hold it back while the client is not reading.
        """
        if self._dropped:
            return
        if self._blocked or self._backlog:
            self._backlog.append(record)
            self._backlog_bytes += _cost(record)
            if self._backlog_bytes > self._limit:
                self._drop_subscriber()
            return
        self._send(record)

    def _send(self, record: Record) -> None:
        self._batch.append(record)
        self._batch_bytes += _cost(record)
        if self._batch_bytes >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """
        Send the records gathered since the last flush as one L{Deliver}.
        """
        if not self._batch or self._closed:
            return
        batch, self._batch = self._batch, []
        self._batch_bytes = 0
        self._connection.callRemote(  # type: ignore[no-untyped-call]
            Deliver, records=pack_records(batch)
        )

    def pause(self) -> None:
        """
        The connection's write buffer is full: hold deliveries back.
        """
        self._blocked = True

    def resume(self) -> None:
        """
        The client read: send what was held back.
        """
        self._blocked = False
        while self._backlog and not self._blocked:
            record = self._backlog.popleft()
            self._backlog_bytes -= _cost(record)
            self._send(record)
        self.flush()

    def close(self) -> None:
        """
        The connection is lost: forget what was held, and send nothing more.
        """
        self._closed = True
        self._backlog.clear()
        self._batch.clear()

    def _drop_subscriber(self) -> None:
        # What was gathered precedes the backlog: the client gets it first.
        self.flush()
        resume_from = self._backlog[0].index
        self._dropped = True
        self._backlog.clear()
        self._backlog_bytes = 0
        self._cancel()
        transport = self._connection.transport
        peer = transport.getPeer() if transport is not None else None
        self._log.warn(
            "dropped the subscription of the client at {peer}: it read too"
            " slowly; it can resubscribe from index {index}",
            peer=peer,
            index=resume_from,
        )
        self._connection.callRemote(  # type: ignore[no-untyped-call]
            SubscriptionDropped,
            resume_from=resume_from,
            reason=(
                f"the node dropped this subscription because the client read"
                f" too slowly; resubscribe from index {resume_from}"
            ),
        )
        assert self._connection.transport is not None
        self._connection.transport.loseConnection()
        # A client that reads nothing would hold the connection open
        # forever; give it a while to take the notice, then cut it.
        self._clock.callLater(30, self._abort)

    def _abort(self) -> None:
        transport = self._connection.transport
        if transport is not None and not self._closed:
            transport.abortConnection()  # type: ignore[attr-defined]


_RECORD_COST = 64
"""
What a delivery costs in the backlog besides its payload (a rough figure).
"""


def _cost(record: Record) -> int:
    if isinstance(record, ViewChange):
        return _RECORD_COST + sum(len(m) + 4 for m in record.members)
    return len(record.payload) + _RECORD_COST
