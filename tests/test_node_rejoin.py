"""
Tests for joining on real connections: a member restarted as a new
incarnation asks to be added, is added through a view change, catches up
on what its durable handler lacks, and delivers in one order with the
others from there.  Every test judges every member's stream with the view
checker.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from isis_twisted.core.engine import Delivery, ViewChange
from isis_twisted.core.membership import JOINING, NORMAL, REMOVED
from isis_twisted.core.viewcheck import check_views
from isis_twisted.tools.testing import DurableRecorder, RecordingHandler
from tests.test_node import LogCapture, deferred
from tests.test_node_membership import MembershipTestCase


def same(records: list[Delivery]) -> list[tuple[int, str, int, bytes]]:
    """
    What every member must agree on of a delivery (C{after} is the
    sender's alone).
    """
    return [(r.index, r.sender, r.clock, r.payload) for r in records]


class RejoinTests(MembershipTestCase):
    def test_durable_member_catches_up(self) -> Deferred[None]:
        """
        c stops, the others go on; c's next incarnation, whose durable
        handler kept c's records, is added back, given what it missed, and
        ends with a stream identical to the others'.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc", durable=True)
            a, b, c = (group.nodes[n] for n in "abc")
            kept = group.recorders["c"]
            await self.send([a, b, c], 10)
            await group.wait_until(lambda: len(kept.records) == 30, what="c at 30")
            await c.stopService()
            await self.settled(group, "ab", 1)
            await self.send([a, b], 20)
            c2 = await group.restart("c", kept)
            self.assertEqual(c2.membership.state, JOINING)
            await self.settled(group, "abc", 2)
            after = await self.send([a, b, c2], 5)
            self.assertEqual(len(after), 15)
            await group.wait_until(
                lambda: len(kept.records) == len(group.recorders["a"].records),
                what="c catching up",
            )
            self.assertEqual(same(kept.records), same(group.recorders["a"].records))
            self.assertIn(ViewChange(2, ("a", "b", "c"), 71), kept.stream)
            self.assertEqual(
                [r for r in kept.stream if isinstance(r, ViewChange)],
                [r for r in group.recorders["a"].stream if isinstance(r, ViewChange)],
            )
            self.assertEqual(c2.caught_up, 41)
            self.assertTrue(logs.matching("'c' is stopping"))
            self.assertTrue(logs.matching("asks to be added back"))
            self.assertTrue(
                logs.matching("added to view 2", "catches up from index 31")
            )
            streams = {n: r.stream for n, r in group.recorders.items()}
            result = check_views(streams, initial=["a", "b", "c"], liveness=True)
            self.assertTrue(result.ok, result.summary())

        return deferred(run())

    def test_member_without_durable_handler_joins_at_the_view(self) -> Deferred[None]:
        """
        A restarted member with no durable handler has nothing to catch up:
        it starts at the first index of the view it was added to.
        """

        async def run() -> None:
            group = await self.group("abc")
            a, b, c = (group.nodes[n] for n in "abc")
            await self.send([a, b, c], 5)
            await group.wait_until(
                lambda: len(group.recorders["c"].records) == 15, what="c at 15"
            )
            c2 = await group.restart("c")
            # Restarted at once: the others learn from its links that the
            # old incarnation is gone (or from its LEAVE), and add it back.
            await self.settled(group, "abc", 2)
            self.assertEqual(c2.caught_up, 0)
            await self.send([a, c2], 5)
            fresh = group.recorders["c"]
            self.assertIsInstance(fresh, RecordingHandler)
            await group.wait_until(lambda: len(fresh.records) == 10, what="c at 10")
            self.assertEqual(fresh.stream[0], ViewChange(2, ("a", "b", "c"), 16))
            self.assertEqual(
                same(fresh.records), same(group.recorders["a"].records[15:])
            )
            streams = {n: r.stream for n, r in group.recorders.items()}
            result = check_views(streams, initial=["a", "b", "c"])
            self.assertTrue(result.ok, result.summary())

        return deferred(run())

    def test_records_of_another_life_are_refused(self) -> Deferred[None]:
        """
        A member whose durable handler holds records the group never
        delivered (another group's, or an earlier life's) cannot catch up:
        it says so once, leaves, and delivers nothing.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc")
            a, b = group.nodes["a"], group.nodes["b"]
            await self.send([a, b], 3)
            stranger = DurableRecorder()
            stranger.deliver(Delivery(1, "z", 5, b"not this group's"))
            fatal: list[str] = []
            c2 = await group.restart("c", stranger)
            c2.on_fatal = fatal.append
            await group.wait_until(lambda: bool(fatal), what="c giving up")
            self.assertEqual(c2.membership.state, REMOVED)
            self.assertIn("another group", fatal[0])
            self.assertEqual(len(logs.matching("cannot rejoin")), 1)
            self.assertEqual(len(stranger.records), 1)
            await self.settled(group, "ab", 3)
            await self.send([a, b], 2)
            self.assertEqual(a.membership.state, NORMAL)

        return deferred(run())


class StopStartTests(MembershipTestCase):
    def test_stopped_node_started_again_rejoins(self) -> Deferred[None]:
        """
        A node stopped (it leaves the group) and started again in the same
        process asks to be added back, from where it stopped, and its
        handlers are given what it missed.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc")
            a, b, c = (group.nodes[n] for n in "abc")
            await self.send([a, b, c], 4)
            await group.all_delivered(12)
            await c.stopService()
            await self.settled(group, "ab", 1)
            await self.send([a, b], 3)
            c.startService()
            # It listened on port 0: where the others find it now.
            group.ports["c"] = (await c.listening).getHost().port  # type: ignore[attr-defined]
            await self.settled(group, "abc", 2)
            await self.send([a, b, c], 2)
            await group.all_delivered(24)
            records = group.recorders
            self.assertEqual(same(records["c"].records), same(records["a"].records))
            views = {
                n: [r for r in records[n].stream if isinstance(r, ViewChange)]
                for n in "bc"
            }
            self.assertEqual(views["c"], views["b"])
            self.assertEqual(len(views["c"]), 2)
            self.assertEqual(c.caught_up, 7)
            self.assertTrue(logs.matching("left the group when it stopped"))
            # And once more: a second stop and start catches up on what the
            # second absence missed, from its own view on.
            await c.stopService()
            await self.settled(group, "ab", 3)
            await self.send([a, b], 3)
            c.startService()
            group.ports["c"] = (await c.listening).getHost().port  # type: ignore[attr-defined]
            await self.settled(group, "abc", 4)
            await self.send([a, b, c], 1)
            await group.all_delivered(33)
            self.assertEqual(same(records["c"].records), same(records["a"].records))
            self.assertEqual(c.caught_up, 7 + 7)
            streams = {n: r.stream for n, r in records.items()}
            result = check_views(streams, initial=["a", "b", "c"], liveness=True)
            self.assertTrue(result.ok, result.summary())

        return deferred(run())
