"""
Tests for L{isis_twisted.core.transfer}: what a member gives a member catching
up, and in what pieces.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import Delivery, Record, StreamPosition, ViewChange
from isis_twisted.core.transfer import CHUNK_RECORDS, CatchingUp, Giving, give
from isis_twisted.core.views import Fetch, NoRecords, View, Welcome


def stream(last: int, views: dict[int, int]) -> list[Record]:
    """
    Deliveries 1 to C{last} of senders a and b, with the view changes
    C{views} (view id -> its first index) where they fall.
    """
    out: list[Record] = []
    for index in range(1, last + 1):
        for view, first in sorted(views.items()):
            if first == index:
                out.append(ViewChange(view, ("a", "b", "c"), index))
        out.append(Delivery(index, "ab"[index % 2], index, b"p%d" % index))
    return out


class GiveTests(SynchronousTestCase):
    def test_gives_what_lies_between(self) -> None:
        kept = stream(12, {1: 5, 2: 11})
        got = give("a", Fetch(2, StreamPosition(4, 0, ("a", 4))), kept, 12)
        assert isinstance(got, Giving)
        chunk = got.next_chunk()
        assert chunk is not None
        self.assertTrue(chunk.done)
        self.assertEqual(
            [(type(r).__name__, r.index) for r in chunk.records],
            [("ViewChange", 5)] + [("Delivery", i) for i in range(5, 11)],
        )
        self.assertIsNone(got.next_chunk())

    def test_refuses_another_lifes_records(self) -> None:
        got = give(
            "a", Fetch(2, StreamPosition(4, 0, ("z", 99))), stream(12, {2: 11}), 12
        )
        assert isinstance(got, NoRecords)
        self.assertIn("another group", got.reason)

    def test_refuses_what_it_no_longer_keeps(self) -> None:
        kept = stream(12, {2: 11})[6:]
        got = give("a", Fetch(2, StreamPosition(2, 0, ("a", 2))), kept, 12)
        assert isinstance(got, NoRecords)
        self.assertIn("from index 7 on only", got.reason)
        self.assertEqual(got.oldest, 7)

    def test_refuses_before_it_has_the_view(self) -> None:
        """
        A member that has not installed the view the joiner was added to
        (or is catching up itself) cannot tell where the records end.
        """
        got = give("b", Fetch(3, StreamPosition(2, 0, ("a", 2))), stream(5, {}), 5)
        assert isinstance(got, NoRecords)
        self.assertIn("view 3", got.reason)

    def test_chunks_are_bounded(self) -> None:
        kept = stream(CHUNK_RECORDS + 10, {1: CHUNK_RECORDS + 10})
        got = give("a", Fetch(1, StreamPosition()), kept, CHUNK_RECORDS + 10)
        assert isinstance(got, Giving)
        first = got.next_chunk()
        second = got.next_chunk()
        assert first is not None and second is not None
        self.assertEqual(len(first.records), CHUNK_RECORDS)
        self.assertFalse(first.done)
        self.assertTrue(second.done)
        self.assertEqual(
            [r.index for r in first.records + second.records],
            list(range(1, CHUNK_RECORDS + 10)),
        )
        small = give("a", Fetch(1, StreamPosition()), kept, CHUNK_RECORDS + 10)
        assert isinstance(small, Giving)
        piece = small.next_chunk(most_bytes=100)
        assert piece is not None
        self.assertLess(len(piece.records), 4)


class CatchingUpTests(SynchronousTestCase):
    def test_asks_each_in_turn_from_where_it_got(self) -> None:
        welcome = Welcome(2, View(2, ("a", "b", "c")), 11, 40)
        catching = CatchingUp(welcome, StreamPosition(), ["a", "b"])
        self.assertEqual(catching.next_fetch(), ("a", Fetch(2, StreamPosition())))
        catching.took([Delivery(1, "a", 1, b""), ViewChange(1, ("a", "b"), 2)])
        self.assertEqual(
            catching.next_fetch(), ("b", Fetch(2, StreamPosition(1, 1, ("a", 1))))
        )
        self.assertIsNone(catching.next_fetch())
        catching.refusals.append(("a", "it left"))
        self.assertIn("a: it left", catching.why_not())
