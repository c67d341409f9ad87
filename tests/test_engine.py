"""
Tests for L{isis_twisted.core.engine}: the pure ordering state machine.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import (
    MAX_CLOCK,
    ClockRegressionError,
    Delivery,
    Engine,
    Frame,
    MalformedFrameError,
    Message,
    ProtocolError,
    Record,
    StreamPosition,
    UnknownMemberError,
    ViewChange,
    WrongViewError,
)


def snapshot(engine: Engine) -> dict[str, Any]:
    """
    Everything an engine lets one inspect, for before/after comparisons.
    """
    return {
        "clock": engine.clock,
        "delivered": engine.delivered,
        "queue": engine.undelivered(),
        "horizons": engine.horizons(),
        "unsent": engine.unsent,
        "ack_due": engine.ack_due,
        "receipts": engine.receipts(),
        "held": engine.held(),
    }


class ConstructionTests(SynchronousTestCase):
    def test_members_sorted_and_peers(self) -> None:
        e = Engine("b", ["c", "a", "b"])
        self.assertEqual(e.members, ("a", "b", "c"))
        self.assertEqual(e.peers, ("a", "c"))
        self.assertEqual(e.horizons(), {"a": (0, "a"), "c": (0, "c")})
        self.assertEqual((e.clock, e.delivered, e.queue_length), (0, 0, 0))

    def test_rejects_bad_groups(self) -> None:
        with self.assertRaises(ValueError):
            Engine("a", ["a", "a", "b"])
        with self.assertRaises(ValueError):
            Engine("z", ["a", "b"])
        with self.assertRaises(ValueError):
            Engine("a", ["a", ""])
        with self.assertRaises(ValueError):
            Engine("a", ["a", 3])  # type: ignore[list-item]
        with self.assertRaises(ValueError):
            Engine("a", ["a"], view=-1)


class SingleMemberTests(SynchronousTestCase):
    def test_delivers_at_once_and_sends_nothing(self) -> None:
        e = Engine("solo", ["solo"])
        self.assertEqual(e.multicast(b"x"), (1, "solo"))
        self.assertEqual(e.multicast(b""), (2, "solo"))
        self.assertEqual(e.flush(), [])
        self.assertEqual(
            e.take_deliveries(),
            [Delivery(1, "solo", 1, b"x", 0), Delivery(2, "solo", 2, b"", 0)],
        )
        self.assertEqual(e.delivered, 2)
        self.assertEqual(e.unsent, 0)


class TwoMemberTests(SynchronousTestCase):
    def test_exchange_step_by_step(self) -> None:
        a, b = Engine("a", ["a", "b"]), Engine("b", ["a", "b"])
        self.assertEqual(a.multicast(b"hi"), (1, "a"))
        self.assertEqual(a.take_deliveries(), [])
        self.assertEqual(a.waiting_for(), ("b",))
        [frame] = a.flush()
        # It reports holding none of b's messages yet.
        self.assertEqual(frame, Frame(0, 1, ((1, b"hi"),), (0,)))
        b.receive("a", frame)
        self.assertEqual(b.clock, 2)
        self.assertEqual(b.horizons(), {"a": (1, "a")})
        # a's frame itself promises nothing below (1, a) will follow.
        self.assertEqual(b.take_deliveries(), [Delivery(1, "a", 1, b"hi", None)])
        self.assertTrue(b.ack_due)
        [ack] = b.flush()
        # The ack reports that b holds a's message up to stamp 1.
        self.assertEqual(ack, Frame(0, 2, (), (1,)))
        self.assertFalse(b.ack_due)
        a.receive("b", ack)
        self.assertEqual(a.take_deliveries(), [Delivery(1, "a", 1, b"hi", 0)])
        self.assertEqual(a.waiting_for(), ())
        # A pure acknowledgement is not acknowledged back.
        self.assertEqual(a.flush(), [])

    def test_concurrent_multicasts_agree(self) -> None:
        a, b = Engine("a", ["a", "b"]), Engine("b", ["a", "b"])
        a.multicast(b"from a")
        b.multicast(b"from b")
        [fa], [fb] = a.flush(), b.flush()
        b.receive("a", fa)
        a.receive("b", fb)
        # Equal clocks: the member name breaks the tie.  a's own message
        # sorts first but waits until b reports holding it (uniformity).
        got_a = [(d.sender, d.payload) for d in a.take_deliveries()]
        got_b = [(d.sender, d.payload) for d in b.take_deliveries()]
        self.assertEqual(got_a, [])
        self.assertEqual(a.waiting_for(), ("b",))
        # b's own message waits: a's frame only promised (1, "a").
        self.assertEqual(got_b, [("a", b"from a")])
        self.assertEqual(b.waiting_for(), ("a",))
        self.assertTrue(a.ack_due and b.ack_due)
        for f in a.flush():
            b.receive("a", f)
        for f in b.flush():
            a.receive("b", f)
        got_a += [(d.sender, d.payload) for d in a.take_deliveries()]
        got_b += [(d.sender, d.payload) for d in b.take_deliveries()]
        self.assertEqual(got_a, [("a", b"from a"), ("b", b"from b")])
        self.assertEqual(got_a, got_b)


class ThreeMemberTests(SynchronousTestCase):
    def test_waits_for_every_horizon(self) -> None:
        members = ["a", "b", "c"]
        a, b, c = (Engine(m, members) for m in members)
        a.multicast(b"m")
        [frame] = a.flush()
        b.receive("a", frame)
        # b has not heard from c, which might still send something earlier.
        self.assertEqual(b.take_deliveries(), [])
        self.assertEqual(b.waiting_for(), ("c",))
        self.assertEqual(b.head(), (1, "a"))
        c.receive("a", frame)
        [ack_c] = c.flush()
        b.receive("c", ack_c)
        self.assertEqual([d.payload for d in b.take_deliveries()], [b"m"])
        self.assertEqual(b.head(), None)
        self.assertEqual(b.waiting_for(), ())

    def test_one_ack_per_turn(self) -> None:
        members = ["a", "b", "c"]
        a, b, c = (Engine(m, members) for m in members)
        for _ in range(3):
            a.multicast(b"x")
            for f in a.flush():
                c.receive("a", f)
        b.multicast(b"y")
        for f in b.flush():
            c.receive("b", f)
        frames = c.flush()
        self.assertEqual(len(frames), 1)
        self.assertEqual(frames[0].messages, ())
        self.assertEqual(c.flush(), [])

    def test_data_frame_carries_the_ack(self) -> None:
        members = ["a", "b", "c"]
        a, _, c = (Engine(m, members) for m in members)
        a.multicast(b"x")
        [f] = a.flush()
        c.receive("a", f)
        c.multicast(b"z")
        [out] = c.flush()
        self.assertEqual(out.clock, c.clock)
        self.assertEqual(len(out.messages), 1)
        self.assertEqual(c.flush(), [])


class FrameLimitTests(SynchronousTestCase):
    def test_split_batches_arrive_whole(self) -> None:
        a, b = Engine("a", ["a", "b"]), Engine("b", ["a", "b"])
        payloads = [b"1" * 40, b"2" * 40, b"3" * 200, b"4" * 10, b""]
        for p in payloads:
            a.multicast(p)
        frames = a.flush(limit=64)
        self.assertEqual([len(f.messages) for f in frames], [1, 1, 1, 2])
        # Each cut frame promises only its own last stamp; the last carries
        # the clock.
        self.assertEqual([f.clock for f in frames], [1, 2, 3, a.clock])
        for f in frames:
            b.receive("a", f)
        self.assertEqual([d.payload for d in b.take_deliveries()], payloads)

    def test_ack_only_with_limit(self) -> None:
        a, b = Engine("a", ["a", "b"]), Engine("b", ["a", "b"])
        a.multicast(b"x")
        for f in a.flush(limit=1):
            b.receive("a", f)
        self.assertEqual(b.flush(limit=1), [Frame(0, b.clock, (), (1,))])


class RejectionTests(SynchronousTestCase):
    """
    A frame that breaks the protocol raises a typed error naming the member,
    and leaves the engine exactly as it was.
    """

    def setUp(self) -> None:
        self.a = Engine("a", ["a", "b", "c"])
        self.a.multicast(b"own")
        self.a.receive("b", Frame(0, 5, ((3, b"x"), (5, b"y"))))
        self.before = snapshot(self.a)

    def assertRejected(
        self, exc: type[ProtocolError], sender: str, frame: Frame
    ) -> ProtocolError:
        err: ProtocolError = self.assertRaises(exc, self.a.receive, sender, frame)
        self.assertEqual(err.member, sender)
        self.assertIn(repr(sender), str(err))
        self.assertEqual(snapshot(self.a), self.before)
        return err

    def test_unknown_member(self) -> None:
        self.assertRejected(UnknownMemberError, "mallory", Frame(0, 9, ()))

    def test_frame_from_self(self) -> None:
        self.assertRejected(UnknownMemberError, "a", Frame(0, 9, ()))

    def test_wrong_view(self) -> None:
        self.assertRejected(WrongViewError, "b", Frame(1, 9, ((9, b"z"),)))

    def test_clock_goes_back(self) -> None:
        err = self.assertRejected(ClockRegressionError, "b", Frame(0, 4, ()))
        self.assertIn("from 5 to 4", err.problem)

    def test_message_below_promise(self) -> None:
        self.assertRejected(ClockRegressionError, "b", Frame(0, 9, ((5, b"again"),)))

    def test_messages_out_of_order(self) -> None:
        self.assertRejected(
            ClockRegressionError, "b", Frame(0, 9, ((8, b"p"), (7, b"q")))
        )

    def test_message_above_frame_clock(self) -> None:
        self.assertRejected(MalformedFrameError, "b", Frame(0, 9, ((10, b"z"),)))

    def test_malformed_fields(self) -> None:
        bad: list[Frame] = [
            Frame(0, "9", ()),  # type: ignore[arg-type]
            Frame(0, 9, [(9, b"z")]),  # type: ignore[arg-type]
            Frame(0, 9, ((9, "text"),)),  # type: ignore[arg-type]
            Frame(0, 9, ((9,),)),  # type: ignore[arg-type]
            Frame(0, 9, ((True, b"z"),)),
        ]
        for frame in bad:
            self.assertRejected(MalformedFrameError, "b", frame)

    def test_clock_beyond_the_limit(self) -> None:
        """
        A clock the wire could not carry back out is refused, so a peer
        cannot wedge this member's later frames.
        """
        self.assertRejected(MalformedFrameError, "b", Frame(0, MAX_CLOCK + 1, ()))
        self.assertRejected(
            MalformedFrameError, "b", Frame(0, 2**64 - 1, ((2**64 - 1, b"z"),))
        )

    def test_receipts_of_the_wrong_length(self) -> None:
        """
        A frame lists what its sender holds of every other member, in rank
        order: from b in a group of three, two horizons (of a and of c).
        """
        for received in [(1,), (1, 2, 3)]:
            err = self.assertRejected(
                MalformedFrameError, "b", Frame(0, 9, (), received)
            )
            self.assertIn("['a', 'c']", err.problem)

    def test_receipts_that_are_not_clocks(self) -> None:
        bad: list[tuple[int, ...]] = [
            (1, -1),
            (MAX_CLOCK + 1, 0),
            (1, "2"),  # type: ignore[list-item]
            [1, 2],  # type: ignore[list-item]
        ]
        for received in bad:
            self.assertRejected(
                MalformedFrameError, "b", Frame(0, 9, ((9, b"z"),), received)
            )

    def test_receipts_go_back(self) -> None:
        self.a.receive("b", Frame(0, 6, (), (1, 4)))
        self.before = snapshot(self.a)
        err = self.assertRejected(ClockRegressionError, "b", Frame(0, 9, (), (1, 3)))
        self.assertIn("'c' went back from 4 to 3", err.problem)

    def test_good_frame_after_rejections(self) -> None:
        self.assertRaises(ProtocolError, self.a.receive, "b", Frame(0, 4, ()))
        self.a.receive("b", Frame(0, 7, ((6, b"z"),)))
        self.assertEqual(self.a.horizons()["b"], (7, "b"))

    def test_payload_must_be_bytes(self) -> None:
        self.assertRaises(TypeError, self.a.multicast, "text")
        self.assertEqual(snapshot(self.a), self.before)


class UniformityTests(SynchronousTestCase):
    """
    A message is delivered only once every member reports holding it, so no
    member delivers what a crash could take from the others.
    """

    def setUp(self) -> None:
        members = ["a", "b", "c"]
        self.a, self.b, self.c = (Engine(m, members) for m in members)

    def test_own_message_waits_for_every_receipt(self) -> None:
        """
        Clocks that passed a's message before b and c received it promise
        nothing earlier will come, but a must still wait until both report
        holding it: today's ordering rule alone would deliver it here, and
        a crash of a now would leave a's log ahead of the group.
        """
        a, b, c = self.a, self.b, self.c
        a.multicast(b"m")
        for _ in range(3):
            b.multicast(b"b")
            c.multicast(b"c")
        [fb], [fc] = b.flush(), c.flush()
        a.receive("b", fb)
        a.receive("c", fc)
        self.assertEqual(a.horizons(), {"b": (3, "b"), "c": (3, "c")})
        self.assertEqual(a.take_deliveries(), [])
        self.assertEqual(a.waiting_for(), ("b", "c"))
        [fa] = a.flush()
        b.receive("a", fa)
        [ack_b] = b.flush()
        self.assertEqual(ack_b.received, (1, 0))
        a.receive("b", ack_b)
        self.assertEqual(a.take_deliveries(), [])
        self.assertEqual(a.waiting_for(), ("c",))
        c.receive("a", fa)
        [ack_c] = c.flush()
        a.receive("c", ack_c)
        self.assertEqual([d.payload for d in a.take_deliveries()], [b"m"])

    def test_other_members_message_waits_for_the_third(self) -> None:
        """
        b's message needs c's receipt at a, but never b's own.
        """
        a, b, c = self.a, self.b, self.c
        b.multicast(b"x")
        [fb] = b.flush()
        a.receive("b", fb)
        for _ in range(5):
            c.multicast(b"c")
        [fc] = c.flush()
        a.receive("c", fc)
        # c's clock is past (1, b), but c has not got the message.
        self.assertEqual(a.take_deliveries(), [])
        self.assertEqual(a.waiting_for(), ("c",))
        c.receive("b", fb)
        for f in c.flush():
            a.receive("c", f)
        self.assertEqual([d.payload for d in a.take_deliveries()], [b"x"])

    def test_frames_report_what_is_held(self) -> None:
        a, b = self.a, self.b
        b.multicast(b"1")
        b.multicast(b"2")
        for f in b.flush():
            a.receive("b", f)
        a.multicast(b"mine")
        [fa] = a.flush()
        # For b and c, in rank order; a's own messages are in the frame.
        self.assertEqual(fa.received, (2, 0))
        self.assertEqual(a.held(), {"a": 4, "b": 2, "c": 0})

    def test_empty_receipts_report_nothing(self) -> None:
        """
        A frame without receipt horizons leaves what was known as it was.
        """
        a = self.a
        a.receive("b", Frame(0, 4, (), (0, 2)))
        a.receive("b", Frame(0, 5, ()))
        self.assertEqual(a.receipts()["b"], {"a": 0, "c": 2})


class InspectionTests(SynchronousTestCase):
    def test_undelivered_in_timestamp_order(self) -> None:
        a = Engine("a", ["a", "b"])
        a.receive("b", Frame(0, 4, ((2, b"b2"), (4, b"b4"))))
        a.multicast(b"a6")
        self.assertEqual(
            a.undelivered(),
            (Message("b", 2, b"b2"), Message("b", 4, b"b4"), Message("a", 6, b"a6")),
        )
        self.assertEqual(a.queue_length, 3)
        self.assertEqual([d.payload for d in a.take_deliveries()], [b"b2", b"b4"])
        self.assertEqual(a.undelivered(), (Message("a", 6, b"a6"),))
        self.assertEqual(a.unsent, 1)
        self.assertEqual(a.waiting_for(), ("b",))


class AckCostTests(SynchronousTestCase):
    def test_frames_per_multicast_linear_under_load(self) -> None:
        """
        When every member talks every turn, each turn costs each member one
        frame per peer, which also carries its acknowledgement: n - 1 frames
        per multicast, not the n * (n - 1) of one ack per message per member.
        """
        members = [str(i) for i in range(5)]
        engines = {m: Engine(m, members) for m in members}
        inbox: dict[str, list[tuple[str, Frame]]] = {m: [] for m in members}
        frames = multicasts = delivered = 0
        for turn in range(200):
            for m, e in engines.items():
                for src, f in inbox[m]:
                    e.receive(src, f)
                inbox[m] = []
                e.multicast(f"{m}:{turn}".encode())
                multicasts += 1
                for f in e.flush():
                    for p in e.peers:
                        inbox[p].append((m, f))
                        frames += 1
                delivered += len(e.take_deliveries())
        self.assertEqual(frames / multicasts, len(members) - 1)
        self.assertGreater(delivered, 0.9 * multicasts * len(members))


class FrameOverheadTests(SynchronousTestCase):
    def test_overhead_counts_per_message(self) -> None:
        a = Engine("a", ["a", "b"])
        for _ in range(10):
            a.multicast(b"")
        frames = a.flush(limit=30, overhead=12)
        self.assertEqual([len(f.messages) for f in frames], [2, 2, 2, 2, 2])


class StreamPositionTests(SynchronousTestCase):
    def test_advanced_by_records(self) -> None:
        start = StreamPosition(4, 1, ("a", 4))
        records: list[Record] = [
            Delivery(5, "b", 6, b""),
            ViewChange(2, ("a", "b"), 6),
            Delivery(6, "a", 9, b""),
            ViewChange(3, ("a",), 7),
        ]
        self.assertEqual(start.advanced(records), StreamPosition(6, 3, ("a", 9)))
        self.assertEqual(start.advanced(records[:1]), StreamPosition(5, 1, ("b", 6)))
        self.assertEqual(start.advanced([]), start)
        # A view change alone moves the view only.
        self.assertEqual(
            start.advanced([ViewChange(2, ("a",), 5)]), StreamPosition(4, 2, ("a", 4))
        )
        for record in records:
            self.assertTrue(start.after(record))
            self.assertFalse(start.advanced(records).after(record))
