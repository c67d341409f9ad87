"""
Tests for L{isis_twisted.net.history}: the kept delivery stream and its
subscribers.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import Delivery, ViewChange
from isis_twisted.interfaces import HistoryGoneError
from isis_twisted.net.history import DeliveryHistory


def delivery(index: int, size: int = 1) -> Delivery:
    return Delivery(index, "a", index, b"x" * size)


class DeliveryHistoryTests(SynchronousTestCase):
    def test_bounded_by_count(self) -> None:
        """
        Only the last C{size} records are replayed; older ones are gone,
        and the error says where to resume.
        """
        history = DeliveryHistory("a", 3, 1 << 20)
        history.extend([delivery(i) for i in range(1, 6)])
        got: list[Any] = []
        history.subscribe(3, 5, got.append)
        self.assertEqual([r.index for r in got], [3, 4, 5])
        e = self.assertRaises(HistoryGoneError, history.subscribe, 2, 5, got.append)
        self.assertIn("resubscribe from 3", str(e))

    def test_bounded_by_bytes(self) -> None:
        """
        Payload bytes bound what is kept too.
        """
        history = DeliveryHistory("a", 100, 25)
        history.extend([delivery(i, 10) for i in range(1, 5)])
        got: list[Any] = []
        history.subscribe(3, 4, got.append)
        self.assertEqual([r.index for r in got], [3, 4])
        self.assertRaises(HistoryGoneError, history.subscribe, 2, 4, got.append)

    def test_views_only_when_asked(self) -> None:
        """
        View changes are kept and passed, in order, to subscribers that
        asked for them, and to no one else.
        """
        history = DeliveryHistory("a", 10, 1 << 20)
        history.extend([delivery(1)])
        change = ViewChange(1, ("a", "b"), 2)
        history.extend([change])
        plain: list[Any] = []
        views: list[Any] = []
        history.subscribe(1, 1, plain.append)
        history.subscribe(1, 1, views.append, views=True)
        history.extend([delivery(2)])
        self.assertEqual(plain, [delivery(1), delivery(2)])
        self.assertEqual(views, [delivery(1), change, delivery(2)])

    def test_new_only_and_flush(self) -> None:
        """
        Subscribing from L{None} passes only new records; the flush
        callback runs after the replay and after every turn.
        """
        history = DeliveryHistory("a", 10, 1 << 20)
        history.extend([delivery(1)])
        got: list[Any] = []
        flushes: list[int] = []
        history.subscribe(None, 1, got.append, lambda: flushes.append(len(got)))
        self.assertEqual((got, flushes), ([], [0]))
        history.extend([delivery(2)])
        history.turn_done()
        self.assertEqual(([r.index for r in got], flushes), ([2], [0, 1]))

    def test_failing_subscriber_is_dropped(self) -> None:
        """
        A subscriber whose callback raises is unsubscribed (and logged);
        the others go on.
        """
        history = DeliveryHistory("a", 10, 1 << 20)

        def boom(record: Any) -> None:
            raise RuntimeError("boom")

        history.subscribe(None, 0, boom)
        got: list[Any] = []
        sub = history.subscribe(None, 0, got.append)
        history.extend([delivery(1)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        history.extend([delivery(2)])
        self.assertEqual([r.index for r in got], [1, 2])
        sub.cancel()
        self.assertFalse(history.has_subscribers)


class ViewAtTests(SynchronousTestCase):
    """
    L{DeliveryHistory.view_at} tells the view a delivery is delivered in.
    """

    def test_views(self) -> None:
        """
        Before any view change, the start view; then the view whose first
        delivery is at or before the index, also for deliveries not yet
        made, and also when no delivery is kept.
        """
        for size in (0, 10):
            history = DeliveryHistory("a", size, 1 << 20, start_view=4)
            self.assertEqual(history.view_at(1), 4)
            history.extend([Delivery(1, "a", 1, b""), ViewChange(5, ("a",), 2)])
            history.extend([Delivery(2, "a", 2, b""), ViewChange(6, ("a", "b"), 3)])
            history.extend([ViewChange(7, ("b",), 3), Delivery(3, "b", 3, b"")])
            views = [history.view_at(i) for i in (1, 2, 3, 99)]
            self.assertEqual(views, [4, 5, 7, 7])

    def test_too_old(self) -> None:
        """
        Only the last L{VIEWS_KEPT} view changes are known: before them the
        view is unknown.
        """
        from isis_twisted.net.history import VIEWS_KEPT

        history = DeliveryHistory("a", 0, 0)
        history.extend([ViewChange(v, ("a",), v + 1) for v in range(VIEWS_KEPT + 1)])
        self.assertIsNone(history.view_at(1))
        self.assertEqual(history.view_at(2), 1)
        self.assertEqual(history.view_at(VIEWS_KEPT + 1), VIEWS_KEPT)
