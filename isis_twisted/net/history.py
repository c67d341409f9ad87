"""
L{DeliveryHistory}: a node's recent delivery stream, and the subscribers
that follow it.

The node keeps its last deliveries (bounded in count and in payload bytes)
so that a subscriber, such as a client of the client API that lost its
connection, can resume from an index; then it passes every new record on as
it happens.  View changes are in the stream too, for the subscribers that
asked for them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.logger import Logger

from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.interfaces import HistoryGoneError

VIEWS_KEPT = 1024
"""
How many of the latest view changes L{DeliveryHistory.view_at} knows of.
"""

# Above every view id, for searching (index, view) pairs by index alone.
MAX_VIEW_ID = 1 << 64


@attrs.define(eq=False)
class Subscription:
    """
    A running subscription to a node's delivery stream.

    @ivar first: The index of the first record passed to the callback.
    """

    first: int
    _history: DeliveryHistory
    _callback: Callable[[Any], None]
    _flush: Callable[[], None] | None = None
    _views: bool = False

    def cancel(self) -> None:
        """
        Stop passing records to the callback.
        """
        self._history._subscribers.pop(id(self), None)


class DeliveryHistory:
    """
    The recent records of a node's delivery stream, and its subscribers.

    @ivar member: The member's name, for messages.
    @ivar size: How many recent deliveries it keeps.
    @ivar start_view: The view of the deliveries before the first view
        change in the stream (the view the member started in).
    """

    _log = Logger()

    def __init__(self, member: str, size: int, limit: int, start_view: int = 0) -> None:
        """
        @param member: The member's name.
        @param size: How many recent deliveries to keep (0: none).
        @param limit: The most payload bytes those deliveries may hold;
            older ones are dropped first.
        @param start_view: The view the member starts in.
        """
        self.member = member
        self.start_view = start_view
        # Where each recent view starts, (index, view id), oldest first:
        # view changes are rare, so a bound on their count is enough.
        self._views: deque[tuple[int, int]] = deque(maxlen=VIEWS_KEPT)
        self.size = size
        self._limit = limit
        self._bytes = 0
        self._kept: deque[Record] = deque()
        self._subscribers: dict[int, Subscription] = {}

    def extend(self, records: Sequence[Record]) -> None:
        """
        Keep a turn's records of the stream and pass them, in order, to the
        subscribers that want them.

        One call per turn rather than per record: at saturation a node
        delivers a hundred thousand records a second.
        """
        added = 0
        for r in records:
            if type(r) is Delivery:
                added += len(r.payload)
            else:
                assert isinstance(r, ViewChange)
                self._views.append((r.index, r.view))
        if self.size:
            kept = self._kept
            kept.extend(records)
            self._bytes += added
            while len(kept) > self.size or self._bytes > self._limit:
                old = kept.popleft()
                if type(old) is Delivery:
                    self._bytes -= len(old.payload)
        # Most nodes have no subscriber: spare them a copy per delivery.
        if not self._subscribers:
            return
        for record in records:
            is_delivery = type(record) is Delivery
            for sub in list(self._subscribers.values()):
                if record.index < sub.first or not (is_delivery or sub._views):
                    continue
                try:
                    sub._callback(record)
                except Exception:
                    self._log.failure(
                        "subscriber failed on record {index}; unsubscribed it",
                        index=record.index,
                    )
                    sub.cancel()

    def turn_done(self) -> None:
        """
        The records of a turn are all added: the subscribers send what they
        gathered.
        """
        for sub in list(self._subscribers.values()):
            if sub._flush is None:
                continue
            try:
                sub._flush()
            except Exception:
                self._log.failure("subscriber failed to flush; unsubscribed it")
                sub.cancel()

    def view_at(self, index: int) -> int | None:
        """
        The view the delivery with index C{index} was (or will be) delivered
        in.

        @return: The view's id, or L{None} if that view started before the
            last L{VIEWS_KEPT} view changes.
        """
        views = self._views
        if not views or index < views[0][0]:
            if len(views) == VIEWS_KEPT:
                return None
            return self.start_view
        at = bisect_right(views, (index, MAX_VIEW_ID)) - 1
        return views[at][1]

    def kept(self) -> list[Record]:
        """
        The records kept, oldest first (a copy: the history goes on).
        """
        return list(self._kept)

    @property
    def has_subscribers(self) -> bool:
        """
        Whether anyone follows the stream.
        """
        return bool(self._subscribers)

    def subscribe(
        self,
        since: int | None,
        delivered: int,
        callback: Callable[[Any], None],
        flush: Callable[[], None] | None = None,
        views: bool = False,
    ) -> Subscription:
        """
        Pass every record from index C{since} onward to C{callback}: the
        kept ones at once, then each new one as it is added.

        @param since: The first index wanted, or L{None} for only new ones.
        @param delivered: The index of the last delivery so far.
        @param callback: Called with each record, in order.
        @param flush: If given, called after the replay and after each
            turn's records.
        @param views: Pass the view changes too.
        @raise HistoryGoneError: If C{since} is older than what is kept.
        """
        first = delivered + 1 if since is None else max(since, 1)
        oldest = self._kept[0].index if self._kept else delivered + 1
        if first < oldest:
            raise HistoryGoneError(
                f"deliveries before index {oldest} are no longer held by"
                f" {self.member!r}; resubscribe from {oldest}",
                oldest,
            )
        sub = Subscription(first, self, callback, flush, views)
        for record in list(self._kept):
            if record.index >= first and (views or type(record) is Delivery):
                callback(record)
        if flush is not None:
            flush()
        self._subscribers[id(sub)] = sub
        return sub
