"""
Tests for L{isis_twisted.api.subscriberfeed}: what the node holds and sends for one
subscribed connection.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols import amp
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.api.commands import (
    BATCH_BYTES,
    LongBytes,
)
from isis_twisted.api.subscriberfeed import SubscriberFeed
from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.core.records import unpack_records


def record(index: int, size: int = 1) -> Delivery:
    """
    A delivery with a payload of C{size} bytes.
    """
    return Delivery(index, "b", index, b"x" * size)


class SubscriberFeedTests(SynchronousTestCase):
    """
    L{SubscriberFeed} over an AMP connection to a transport that records
    what is written.
    """

    def setUp(self) -> None:
        self.transport = StringTransport()
        self.connection = amp.AMP()
        self.connection.makeConnection(self.transport)
        self.clock = Clock()
        self.cancelled = 0
        self.feed = SubscriberFeed(self.connection, self.clock, 1000, self.cancel)

    def cancel(self) -> None:
        """
        Count a cancellation of the subscription, as the feed asks for it.
        """
        self.cancelled += 1

    def sent(self) -> list[amp.AmpBox]:
        """
        The boxes written since the last call.
        """
        boxes: list[amp.AmpBox] = amp.parseString(self.transport.value())
        self.transport.clear()
        return boxes

    def delivered(self) -> list[list[Record]]:
        """
        The records of each L{Deliver} written since the last call.
        """
        batches = []
        for box in self.sent():
            self.assertEqual(box[b"_command"], b"Deliver")
            objects: dict[str, object] = {}
            LongBytes().fromBox(b"records", box, objects, None)
            data = objects["records"]
            assert isinstance(data, bytes)
            batches.append(unpack_records(data))
        return batches

    def test_gathered_until_flush(self) -> None:
        """
        Records pushed in one turn go as one L{Deliver} when the feed is
        flushed; a flush with nothing gathered sends nothing.
        """
        records = [record(i) for i in (1, 2, 3)]
        for r in records:
            self.feed.push(r)
        self.assertEqual(self.delivered(), [])
        self.feed.flush()
        self.assertEqual(self.delivered(), [records])
        self.feed.flush()
        self.assertEqual(self.delivered(), [])

    def test_large_batch_sent_at_once(self) -> None:
        """
        Once about L{BATCH_BYTES} are gathered, they go without waiting for
        the flush.
        """
        big = record(1, BATCH_BYTES)
        self.feed.push(big)
        self.assertEqual(self.delivered(), [[big]])

    def test_backlog_sent_on_resume(self) -> None:
        """
        While paused, records wait (a flush sends none of them); on resume
        they go, in order, and records that follow go as before.
        """
        self.feed.pause()
        held: list[Record] = [record(1), ViewChange(1, ("a", "b"), 2), record(2)]
        for r in held:
            self.feed.push(r)
        self.feed.flush()
        self.assertEqual(self.delivered(), [])
        self.feed.resume()
        self.assertEqual(self.delivered(), [held])
        self.feed.push(record(3))
        self.feed.flush()
        self.assertEqual(self.delivered(), [[record(3)]])

    def test_dropped_past_the_limit(self) -> None:
        """
        A backlog over the limit cancels the subscription once, sends what
        was gathered before it and then a L{SubscriptionDropped} naming the
        first record held back, and closes the connection; what follows is
        ignored, and the connection is cut 30 seconds on.
        """
        self.feed.push(record(1))
        self.feed.pause()
        self.feed.push(record(2, 600))
        self.assertEqual(self.cancelled, 0)
        self.feed.push(record(3, 600))
        self.assertEqual(self.cancelled, 1)
        gathered, notice = self.sent()
        self.assertEqual(gathered[b"_command"], b"Deliver")
        self.assertEqual(notice[b"_command"], b"SubscriptionDropped")
        self.assertEqual(notice[b"resume_from"], b"2")
        self.assertTrue(self.transport.disconnecting)
        self.feed.push(record(4))
        self.feed.resume()
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.cancelled, 1)
        self.clock.advance(29)
        self.assertFalse(self.transport.disconnected)
        self.clock.advance(1)
        self.assertTrue(self.transport.disconnected)

    def test_closed(self) -> None:
        """
        Once closed (the connection lost), the feed sends nothing of what it
        gathered, and does not cut the connection of a subscriber it
        dropped.
        """
        self.feed.push(record(1))
        self.feed.close()
        self.feed.flush()
        self.assertEqual(self.sent(), [])
        dropped = SubscriberFeed(self.connection, self.clock, 10, self.cancel)
        dropped.pause()
        dropped.push(record(2, 20))
        self.assertEqual(self.cancelled, 1)
        dropped.close()
        self.clock.advance(30)
        self.assertFalse(self.transport.disconnected)
