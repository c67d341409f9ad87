"""
Tests for a member whose delivery handler cannot keep a record, on real
connections: it hands out nothing from that record on, says so once,
retries and goes on from exactly there; stuck too long, it leaves the
group, and rejoins and catches up once the handler works again.  Every
member's stream is judged by the view checker.
"""

from __future__ import annotations

import errno

from twisted.internet.defer import Deferred

from isis_twisted.core.engine import Delivery, Record, StreamPosition, ViewChange
from isis_twisted.core.membership import NORMAL, REMOVED
from isis_twisted.core.status import NodeStatus
from isis_twisted.core.viewcheck import check_views
from isis_twisted.tools.testing import DurableRecorder
from tests.test_node import LogCapture, deferred
from tests.test_node_membership import MembershipTestCase
from tests.test_node_rejoin import same


class FullDisk(DurableRecorder):
    """
    A durable recorder whose disk can fill: while C{full}, it raises
    C{ENOSPC} and keeps nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.refusals = 0

    def _room(self) -> None:
        if self.full:
            self.refusals += 1
            raise OSError(errno.ENOSPC, "No space left on device")

    def deliver(self, record: Delivery) -> None:
        self._room()
        super().deliver(record)

    def view_changed(self, change: ViewChange) -> None:
        self._room()
        super().view_changed(change)

    def position(self) -> StreamPosition:
        return StreamPosition().advanced(self.stream)

    def __repr__(self) -> str:
        return "<full disk>"


def indices(records: list[Delivery]) -> list[int]:
    return [r.index for r in records]


def views(stream: list[Record]) -> list[Record]:
    return [r for r in stream if isinstance(r, ViewChange)]


class StuckHandlerTests(MembershipTestCase):
    def test_member_stops_at_the_record_and_resumes_there(self) -> Deferred[None]:
        """
        While c's second handler cannot keep record 16, c hands out nothing
        from there: its own multicast waits, its status names the handler
        and the record, the others and c's first handler go on.  When the
        disk has room again the handler is given record 16 and everything
        after it, once each, and the multicast completes.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc")
            a, b, c = (group.nodes[n] for n in "abc")
            disk = FullDisk()
            c.add_handler(disk)
            await self.send([a, b, c], 5)
            await group.wait_until(lambda: len(disk.records) == 15, what="disk at 15")
            disk.full = True
            sent = [n.multicast(f"{n.me}:late".encode()) for n in (a, b)]
            mine = c.multicast(b"c:late")
            await group.wait_until(
                lambda: all(len(group.recorders[n].records) == 18 for n in "abc"),
                what="every first handler at 18",
            )
            await group.wait_until(lambda: disk.refusals >= 3, what="retries")
            status = c.status()
            self.assertEqual(len(status.stuck_handlers), 1)
            stuck = status.stuck_handlers[0]
            self.assertEqual((stuck.handler, stuck.index), ("<full disk>", 16))
            self.assertIn("No space left on device", stuck.reason)
            self.assertEqual(status.undelivered_records, 3)
            self.assertEqual(NodeStatus.from_json(status.to_json()), status)
            self.assertFalse(mine.called)
            self.assertEqual(len(disk.records), 15)
            # The others are not held by c's handler.
            for d in sent:
                self.assertTrue(d.called)
            disk.full = False
            delivered = await mine
            self.assertEqual(delivered.sender, "c")
            self.assertEqual(indices(disk.records), list(range(1, 19)))
            self.assertEqual(same(disk.records), same(group.recorders["a"].records))
            self.assertEqual(c.status().stuck_handlers, ())
            self.assertEqual(len(logs.matching("could not keep record 16")), 1)
            self.assertEqual(len(logs.matching("kept record 16", "failures")), 1)
            self.assertGreaterEqual(c.handler_errors, 3)
            await self.judge(group)

        return deferred(run())

    def test_member_stuck_too_long_leaves_and_rejoins(self) -> Deferred[None]:
        """
        Stuck past the give-up bound, c leaves the group, which goes on
        without it; once the disk has room, c's handlers take what they
        held, c asks to be added back, catches up on what the group
        delivered meanwhile, and ends with the others' stream record for
        record.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc", durable=True, handler_give_up=0.3)
            a, b, c = (group.nodes[n] for n in "abc")
            disk = FullDisk()
            c.add_handler(disk)
            await self.send([a, b, c], 4)
            await group.wait_until(lambda: len(disk.records) == 12, what="disk at 12")
            disk.full = True
            await self.send([a, b], 2)
            await group.wait_until(
                lambda: c.membership.state == REMOVED, what="c leaving"
            )
            self.assertEqual(c.status().handler_give_ups, 1)
            await self.settled(group, "ab", 1)
            await self.send([a, b], 3)
            self.assertEqual(len(disk.records), 12)
            disk.full = False
            await self.settled(group, "abc", 2)
            await self.send([a, b, c], 2)
            first = group.recorders["c"]
            await group.wait_until(
                lambda: len(disk.records) == len(group.recorders["a"].records) == 28,
                what="c's handlers catching up",
            )
            expected = group.recorders["a"]
            self.assertEqual(same(disk.records), same(expected.records))
            self.assertEqual(same(first.records), same(expected.records))
            self.assertEqual(views(disk.stream), views(expected.stream))
            self.assertEqual(c.membership.state, NORMAL)
            self.assertEqual(len(logs.matching("leaves the group", "full disk")), 1)
            self.assertEqual(len(logs.matching("could not keep record 13")), 1)
            streams = {n: group.recorders[n].stream for n in "ab"}
            result = check_views(
                {**streams, "c": disk.stream},
                initial=["a", "b", "c"],
                liveness=True,
            )
            self.assertTrue(result.ok, result.summary())

        return deferred(run())
