"""
Tests for L{isis_twisted.core.pump}: handing records to handlers with retries
for the ones that cannot keep them, and never a hole.
"""

from __future__ import annotations

import errno
import subprocess
import sys

import attrs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from isis_twisted.core.engine import Delivery, Record, StreamPosition, ViewChange
from isis_twisted.core.pump import (
    HandlerFailed,
    HandlerPump,
    HandlerResumed,
    HandlerStopped,
    Pumped,
    Stuck,
)
from isis_twisted.interfaces import IDeliveryHandler, IDurableHandler, IViewHandler


def deliveries(first: int, last: int) -> list[Delivery]:
    """
    Deliveries C{first} to C{last}, from alternating senders.
    """
    return [
        Delivery(i, "ab"[i % 2], 10 + i, f"m{i}".encode())
        for i in range(first, last + 1)
    ]


def full_disk() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@implementer(IViewHandler)
class Recorder:
    """
    A view handler that records what it takes, and fails as it is told.

    @ivar taken: Every record it took, in order.
    @ivar full: While true, every record raises L{OSError} C{ENOSPC} and is
        not taken.
    @ivar fail_for: How many more attempts at index C{fail_at} raise
        L{OSError} before it is taken.
    @ivar buggy: Indices whose delivery raises L{ValueError} (a bug).
    @ivar attempts: Every index given to it, taken or not.
    """

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.taken: list[Record] = []
        self.attempts: list[int] = []
        self.full = False
        self.fail_at = 0
        self.fail_for = 0
        self.buggy: set[int] = set()

    def __repr__(self) -> str:
        return f"<Recorder {self.name}>"

    def _take(self, record: Record) -> None:
        self.attempts.append(record.index)
        if self.full:
            raise full_disk()
        if record.index == self.fail_at and self.fail_for > 0:
            self.fail_for -= 1
            raise full_disk()
        if isinstance(record, Delivery) and record.index in self.buggy:
            raise ValueError(f"cannot handle {record.index}")
        self.taken.append(record)

    def deliver(self, record: Delivery) -> None:
        self._take(record)

    def view_changed(self, change: ViewChange) -> None:
        self._take(change)

    def close(self) -> None:
        pass


@implementer(IDeliveryHandler)
class PlainRecorder:
    """
    A delivery handler that is not told of view changes.
    """

    def __init__(self) -> None:
        self.taken: list[Delivery] = []

    def deliver(self, record: Delivery) -> None:
        if not isinstance(record, Delivery):
            raise TypeError(f"a plain handler was given {record!r}")
        self.taken.append(record)

    def close(self) -> None:
        pass


@implementer(IDurableHandler)
class DurableRecorder(Recorder):
    """
    A recorder that keeps a position, as a durable handler does, starting
    from a given one.
    """

    def __init__(self, start: StreamPosition) -> None:
        super().__init__("durable")
        self._position = start

    def position(self) -> StreamPosition:
        return self._position

    def _take(self, record: Record) -> None:
        super()._take(record)
        if isinstance(record, Delivery):
            self._position = StreamPosition(
                record.index, self._position.view, (record.sender, record.clock)
            )
        else:
            self._position = StreamPosition(
                self._position.index, record.view, self._position.last
            )


class PumpTests(SynchronousTestCase):
    """
    Tests for L{HandlerPump}.
    """

    def drain(self, pump: HandlerPump, now: float, until: float) -> list[Record]:
        """
        Run C{pump} at C{now} and at each deadline it gives until C{until},
        as a node would, and return everything it passed on.
        """
        out = list(pump.run(now).records)
        while pump.deadline is not None and pump.deadline <= until:
            out.extend(pump.run(pump.deadline).records)
        return out

    def test_all_taken(self) -> None:
        """
        With handlers that work, every record goes to every handler in order
        and is passed on at once, once.
        """
        one, two = Recorder("one"), Recorder("two")
        pump = HandlerPump([one, two])
        records = deliveries(1, 5)
        pump.put(records)
        self.assertEqual(pump.run(0.0), Pumped([*records], []))
        self.assertEqual(pump.run(1.0), Pumped([], []))
        self.assertEqual(one.taken, records)
        self.assertEqual(two.taken, records)
        self.assertEqual(pump.pending, 0)
        self.assertIsNone(pump.deadline)
        self.assertIsNone(pump.stuck)

    def test_no_handlers(self) -> None:
        """
        With no handlers, records are passed on as they are put.
        """
        pump = HandlerPump([])
        pump.put(deliveries(1, 3))
        self.assertEqual(pump.run(0.0).records, deliveries(1, 3))

    def test_stuck_then_resumes_exactly(self) -> None:
        """
        A handler raising L{OSError} stops at that record: nothing from it
        on is passed on, it is given that record again after the back-off,
        and once it takes it everything follows in order, nothing lost or
        given twice.
        """
        handler = Recorder()
        handler.fail_at, handler.fail_for = 3, 3
        # Binary fractions, so that the deadlines are exact.
        pump = HandlerPump([handler], retry_initial=0.125, retry_max=5.0)
        pump.put(deliveries(1, 6))
        first = pump.run(8.0)
        self.assertEqual(first.records, deliveries(1, 2))
        stuck = Stuck(
            "<Recorder recorder>",
            3,
            deliveries(3, 3)[0],
            "OSError: [Errno 28] No space left on device",
            8.0,
        )
        self.assertEqual(first.events, [HandlerStopped(stuck)])
        self.assertEqual(pump.stuck, stuck)
        self.assertEqual(pump.pending, 4)
        self.assertEqual(pump.deadline, 8.125)
        # Not due: nothing is tried.
        pump.put(deliveries(7, 8))
        self.assertEqual(pump.run(8.1), Pumped([], []))
        self.assertEqual(handler.attempts, [1, 2, 3])
        # Retries double the back-off and report nothing new.
        self.assertEqual(pump.run(8.125), Pumped([], []))
        self.assertEqual(pump.deadline, 8.375)
        self.assertEqual(pump.run(8.375), Pumped([], []))
        self.assertEqual(pump.deadline, 8.875)
        self.assertEqual(pump.stuck and pump.stuck.attempts, 3)
        resumed = pump.run(8.875)
        self.assertEqual(resumed.records, deliveries(3, 8))
        self.assertEqual(
            resumed.events, [HandlerResumed(attrs.evolve(stuck, attempts=3), 8.875)]
        )
        self.assertEqual(handler.taken, deliveries(1, 8))
        self.assertEqual(handler.attempts, [1, 2, 3, 3, 3, 3, 4, 5, 6, 7, 8])
        self.assertIsNone(pump.stuck)
        self.assertIsNone(pump.deadline)
        self.assertEqual(pump.handler_errors, 3)
        self.assertEqual(pump.skipped, 0)

    def test_back_off_capped(self) -> None:
        """
        The back-off doubles up to C{retry_max} and stays there.
        """
        handler = Recorder()
        handler.full = True
        pump = HandlerPump([handler], retry_initial=1.0, retry_max=4.0)
        pump.put(deliveries(1, 1))
        now = 0.0
        pump.run(now)
        gaps = []
        for _ in range(5):
            deadline = pump.deadline
            assert deadline is not None
            gaps.append(deadline - now)
            now = deadline
            pump.run(now)
        self.assertEqual(gaps, [1.0, 2.0, 4.0, 4.0, 4.0])

    def test_given_up(self) -> None:
        """
        L{HandlerPump.given_up} is true once a handler has been stuck for
        C{give_up_after} seconds, counted from its first failure.
        """
        handler = Recorder()
        handler.full = True
        pump = HandlerPump([handler], give_up_after=30.0)
        self.assertFalse(pump.given_up(1000.0))
        pump.put(deliveries(1, 1))
        pump.run(100.0)
        self.drain(pump, 100.0, 129.9)
        self.assertFalse(pump.given_up(129.9))
        self.assertTrue(pump.given_up(130.0))
        handler.full = False
        pump.run(pump.deadline or 0)
        self.assertFalse(pump.given_up(1000.0))

    def test_buggy_handler_skipped_once_logged_once(self) -> None:
        """
        A handler that raises something other than L{OSError} skips that
        record (it is not given it again, and it is passed on); the first
        such failure is reported with the exception, later ones only
        counted.
        """
        handler = Recorder()
        handler.buggy = {2, 4}
        pump = HandlerPump([handler])
        pump.put(deliveries(1, 3))
        out = pump.run(0.0)
        self.assertEqual(out.records, deliveries(1, 3))
        [event] = out.events
        assert isinstance(event, HandlerFailed)
        self.assertEqual(event.handler, "<Recorder recorder>")
        self.assertEqual(event.record, deliveries(2, 2)[0])
        self.assertIsInstance(event.error, ValueError)
        self.assertIsNotNone(event.error.__traceback__)
        pump.put(deliveries(4, 5))
        self.assertEqual(pump.run(1.0), Pumped([*deliveries(4, 5)], []))
        self.assertEqual(handler.attempts, [1, 2, 3, 4, 5])
        self.assertEqual(
            handler.taken, [*deliveries(1, 1), *deliveries(3, 3), *deliveries(5, 5)]
        )
        self.assertEqual(pump.handler_errors, 2)
        self.assertEqual(pump.skipped, 2)
        self.assertIsNone(pump.stuck)

    def test_bug_reported_per_handler(self) -> None:
        """
        Each buggy handler's first failure is reported.
        """
        one, two = Recorder("one"), Recorder("two")
        one.buggy = {1, 2}
        two.buggy = {2}
        pump = HandlerPump([one, two])
        pump.put(deliveries(1, 2))
        events = pump.run(0.0).events
        self.assertEqual(
            [
                (e.handler, e.record.index)
                for e in events
                if isinstance(e, HandlerFailed)
            ],
            [("<Recorder one>", 1), ("<Recorder two>", 2)],
        )
        self.assertEqual(pump.skipped, 3)

    def test_one_stuck_other_goes_on(self) -> None:
        """
        While one handler is stuck the other takes every record, and nothing
        is passed on until both have taken it; the other is not given any
        record twice when the stuck one resumes.
        """
        ok, stuck = Recorder("ok"), Recorder("stuck")
        pump = HandlerPump([stuck, ok])
        pump.put(deliveries(1, 2))
        self.assertEqual(pump.run(0.0).records, deliveries(1, 2))
        stuck.full = True
        pump.put(deliveries(3, 5))
        self.assertEqual(pump.run(1.0).records, [])
        self.assertEqual(ok.taken, deliveries(1, 5))
        pump.put(deliveries(6, 7))
        # Not due for the stuck one: the other still takes what comes.
        self.assertEqual(pump.run(1.01).records, [])
        self.assertEqual(ok.taken, deliveries(1, 7))
        self.assertEqual(pump.stuck and pump.stuck.index, 3)
        stuck.full = False
        out = pump.run(pump.deadline or 0)
        self.assertEqual(out.records, deliveries(3, 7))
        self.assertEqual(stuck.taken, deliveries(1, 7))
        self.assertEqual(ok.taken, deliveries(1, 7))
        self.assertEqual(pump.pending, 0)

    def test_both_stuck_at_different_records(self) -> None:
        """
        Two handlers stuck at different records each resume at their own;
        what is passed on is what both took, and the earliest stuck is the
        one reported as L{HandlerPump.stuck}.
        """
        one, two = Recorder("one"), Recorder("two")
        one.fail_at, one.fail_for = 2, 1
        two.fail_at, two.fail_for = 4, 2
        pump = HandlerPump([one, two], retry_initial=1.0)
        pump.put(deliveries(1, 5))
        out = pump.run(0.0)
        self.assertEqual(out.records, deliveries(1, 1))
        self.assertEqual([s.index for s in pump.all_stuck], [2, 4])
        self.assertEqual(pump.stuck and pump.stuck.handler, "<Recorder one>")
        self.assertEqual(pump.run(1.0).records, deliveries(2, 3))
        self.assertEqual(pump.stuck and pump.stuck.handler, "<Recorder two>")
        self.assertEqual(self.drain(pump, 1.0, 10.0), deliveries(4, 5))
        self.assertEqual(one.taken, deliveries(1, 5))
        self.assertEqual(two.taken, deliveries(1, 5))

    def test_record_major_order(self) -> None:
        """
        When handlers are level, each record goes to every handler, in
        handler order, before the next record: as the member always did.
        """
        calls: list[tuple[str, int]] = []

        @implementer(IDeliveryHandler)
        class Logging:
            def __init__(self, name: str) -> None:
                self.name = name

            def deliver(self, record: Delivery) -> None:
                calls.append((self.name, record.index))

            def close(self) -> None:
                pass

        pump = HandlerPump([Logging("x"), Logging("y")])
        pump.put(deliveries(1, 2))
        pump.run(0.0)
        self.assertEqual(calls, [("x", 1), ("y", 1), ("x", 2), ("y", 2)])

    def test_views_to_view_handlers_only(self) -> None:
        """
        A view change goes to view handlers only; a plain handler does not
        hold it back.
        """
        plain, views = PlainRecorder(), Recorder()
        pump = HandlerPump([plain, views])
        change = ViewChange(1, ("a", "b"), 3)
        records: list[Record] = [*deliveries(1, 2), change, *deliveries(3, 3)]
        pump.put(records)
        self.assertEqual(pump.run(0.0).records, records)
        self.assertEqual(plain.taken, [r for r in records if isinstance(r, Delivery)])
        self.assertEqual(views.taken, records)

    def test_stuck_at_view(self) -> None:
        """
        A handler failing on a view change is stuck there like on a delivery.
        """
        handler = Recorder()
        change = ViewChange(1, ("a", "b"), 3)
        handler.fail_at, handler.fail_for = 3, 1
        pump = HandlerPump([handler])
        pump.put([*deliveries(1, 2), change])
        self.assertEqual(pump.run(0.0).records, deliveries(1, 2))
        self.assertEqual(pump.stuck and pump.stuck.record, change)
        self.assertEqual(pump.run(pump.deadline or 0).records, [change])

    def test_hold(self) -> None:
        """
        While held, nothing is given or passed on, and no retry is due;
        once released, everything queued goes in order.
        """
        handler = Recorder()
        handler.fail_at, handler.fail_for = 2, 1
        pump = HandlerPump([handler])
        pump.put(deliveries(1, 2))
        pump.run(0.0)
        pump.hold()
        self.assertTrue(pump.held)
        pump.put(deliveries(3, 4))
        self.assertIsNone(pump.deadline)
        self.assertEqual(pump.run(100.0), Pumped([], []))
        self.assertEqual(handler.attempts, [1, 2])
        pump.release()
        self.assertFalse(pump.held)
        self.assertEqual(pump.run(100.0).records, deliveries(2, 4))
        self.assertEqual(handler.taken, deliveries(1, 4))

    def test_durable_not_given_what_it_holds(self) -> None:
        """
        A durable handler is not given records its position says it holds,
        so a member catching up from the least position gives each handler
        only what it lacks; what it holds is still passed on.
        """
        ahead = DurableRecorder(StreamPosition(3, 1, ("b", 13)))
        behind = Recorder()
        pump = HandlerPump([ahead, behind])
        change = ViewChange(1, ("a", "b"), 3)
        records: list[Record] = [
            *deliveries(1, 2),
            change,
            *deliveries(3, 5),
            ViewChange(2, ("a",), 6),
        ]
        pump.put(records)
        self.assertEqual(pump.run(0.0).records, records)
        self.assertEqual(ahead.taken, [*deliveries(4, 5), ViewChange(2, ("a",), 6)])
        self.assertEqual(behind.taken, records)
        self.assertEqual(ahead.position(), StreamPosition(5, 2, ("b", 15)))

    def test_hold_checks_positions_again(self) -> None:
        """
        A catch-up put after L{HandlerPump.hold} that starts behind a
        durable handler gives it only what it lacks, even though it had
        taken records before.
        """
        handler = DurableRecorder(StreamPosition())
        pump = HandlerPump([handler])
        pump.put(deliveries(1, 3))
        pump.run(0.0)
        pump.hold()
        pump.put(deliveries(2, 5))
        pump.release()
        self.assertEqual(pump.run(1.0).records, deliveries(2, 5))
        self.assertEqual(handler.taken, deliveries(1, 5))

    def test_positions(self) -> None:
        """
        L{HandlerPump.positions} gives each durable handler's position, in
        handler order, as it stands now.
        """
        first = DurableRecorder(StreamPosition())
        second = DurableRecorder(StreamPosition(7, 2, ("a", 40)))
        pump = HandlerPump([first, Recorder(), second])
        pump.put(deliveries(1, 1))
        pump.run(0.0)
        self.assertEqual(
            pump.positions(),
            [
                (first, StreamPosition(1, 0, ("b", 11))),
                (second, StreamPosition(7, 2, ("a", 40))),
            ],
        )

    def test_bad_times(self) -> None:
        """
        Back-off times out of range are refused with one sentence.
        """
        for kwargs in (
            {"retry_initial": 0.0},
            {"retry_initial": 2.0, "retry_max": 1.0},
            {"give_up_after": -1.0},
        ):
            e = self.assertRaises(ValueError, HandlerPump, [], **kwargs)
            self.assertNotIn("\n", str(e))

    def test_no_reactor(self) -> None:
        """
        The pump imports neither the reactor nor the node: it is sans-IO.
        """
        code = (
            "import sys, isis_twisted.core.pump;"
            " print('twisted.internet.reactor' in sys.modules,"
            " 'isis_twisted.net.node' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        self.assertEqual(out.stdout.split(), ["False", "False"])
