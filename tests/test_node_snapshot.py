"""
Tests for state transfer on real connections: a member restarted in a new
life with a state handler gets that handler's state from another member as
a snapshot, then only the records after it, and ends with the same state
as everyone else's; a giver whose snapshot breaks half-way is replaced by
the next; a member that nobody can give a snapshot to leaves, saying why.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from twisted.internet.defer import Deferred, gatherResults
from zope.interface import implementer
from zope.interface.verify import verifyObject

from isis_twisted.core.engine import Delivery, ViewChange
from isis_twisted.core.membership import REMOVED
from isis_twisted.core.viewcheck import check_views
from isis_twisted.interfaces import IStateHandler
from isis_twisted.net.node import MulticastNode
from isis_twisted.tools.testing import RecordingHandler
from tests.test_node import LogCapture, deferred
from tests.test_node_membership import MembershipTestCase
from tests.test_node_rejoin import same

_LENGTH = struct.Struct(">I")


@implementer(IStateHandler)
class PayloadLog(RecordingHandler):
    """
    A state handler whose state is every payload applied, in order: a
    record given twice, or one missed, shows in it.

    @ivar breaking: How many snapshots are still to break half-way (after
        four pieces), shared by the handlers given the same list.
    """

    def __init__(self, breaking: list[int] | None = None) -> None:
        super().__init__()
        self.state: list[bytes] = []
        self.restores = 0
        self.breaking = breaking
        self._buffer = b""

    def deliver(self, record: Delivery) -> None:
        super().deliver(record)
        self.state.append(record.payload)

    def take_snapshot(self) -> Iterator[bytes]:
        breaks = self.breaking is not None and self.breaking[0] > 0
        if self.breaking is not None and breaks:
            self.breaking[0] -= 1
        return self._pieces(list(self.state), 4 if breaks else None)

    @staticmethod
    def _pieces(state: list[bytes], breaks_after: int | None) -> Iterator[bytes]:
        # Three payloads a piece: many pieces, some cut across chunks.
        for n, at in enumerate(range(0, len(state), 3)):
            if breaks_after is not None and n >= breaks_after:
                raise OSError("the snapshot's disk went away")
            yield b"".join(_LENGTH.pack(len(p)) + p for p in state[at : at + 3])

    def begin_restore(self) -> None:
        self.restores += 1
        self.state = []
        self._buffer = b""

    def restore_chunk(self, data: bytes) -> None:
        buffer = self._buffer + data
        while len(buffer) >= 4:
            (size,) = _LENGTH.unpack_from(buffer)
            if len(buffer) < 4 + size:
                break
            self.state.append(buffer[4 : 4 + size])
            buffer = buffer[4 + size :]
        self._buffer = buffer

    def end_restore(self) -> None:
        if self._buffer:
            raise ValueError("the snapshot ends inside a payload")


class SnapshotTests(MembershipTestCase):
    async def send_big(self, nodes: list[MulticastNode]) -> None:
        """
        20 multicasts of 30 kB from each node: a state of 1.8 MB, sent in
        several chunks.
        """
        await gatherResults(
            [
                node.multicast(f"{node.me}:{i}:".encode() + b"x" * 30_000)
                for node in nodes
                for i in range(20)
            ]
        )

    async def stateful_group(self, **handlers: PayloadLog) -> dict[str, PayloadLog]:
        group = await self.group("abc")
        self.groups = group
        logs = {}
        for name in "abc":
            log = handlers.get(name, PayloadLog())
            group.nodes[name].add_handler(log)
            logs[name] = log
        return logs

    async def restart_with_breaking_givers(
        self, breaking: int
    ) -> tuple[dict[str, PayloadLog], MulticastNode, PayloadLog]:
        """
        A group whose a and b run L{PayloadLog}s of which the first
        C{breaking} snapshots taken break half-way, filled by L{send_big};
        then c restarted with an empty one.

        @return: The givers' handlers, c's new node and its handler.
        """
        shared = [breaking]
        states = await self.stateful_group(a=PayloadLog(shared), b=PayloadLog(shared))
        group = self.groups
        await self.send_big([group.nodes[n] for n in "abc"])
        fresh = PayloadLog()
        return states, await group.restart("c", fresh), fresh

    def test_restarted_member_restores_the_state(self) -> Deferred[None]:
        """
        c's next life restores its state handler from a snapshot (no record
        is replayed to it), is given only the records after the snapshot's
        position, and ends with exactly the others' state.
        """

        async def run() -> None:
            logs = LogCapture(self)
            states = await self.stateful_group()
            group = self.groups
            a, b, c = (group.nodes[n] for n in "abc")
            self.assertTrue(verifyObject(IStateHandler, states["a"]))
            await self.send([a, b, c], 30)
            plain = RecordingHandler()
            fresh = PayloadLog()
            c2 = await group.restart("c", plain, more=[fresh])
            await self.settled(group, "abc", 2)
            await self.send([a, b, c2], 10)
            await group.wait_until(
                lambda: len(fresh.state) == len(states["a"].state) == 120,
                what="c's state catching up",
            )
            self.assertEqual(fresh.state, states["a"].state)
            self.assertEqual(states["b"].state, states["a"].state)
            self.assertEqual(fresh.restores, 1)
            self.assertGreater(c2.restored_bytes, 0)
            self.assertEqual(c2.caught_up, 0)
            # Given only what came after the snapshot: a suffix of the
            # stream, each record once (its state shows no record twice).
            expected = group.recorders["a"].records
            self.assertEqual(same(fresh.records), same(expected[-len(fresh.records) :]))
            self.assertTrue(logs.matching("restored the state of 1 handler(s)"))
            # The member itself delivered from the view it was added to.
            self.assertEqual(plain.stream[0], ViewChange(2, ("a", "b", "c"), 91))
            streams = {n: group.recorders[n].stream for n in "abc"}
            result = check_views(streams, initial=["a", "b", "c"])
            self.assertTrue(result.ok, result.summary())

        return deferred(run())

    def test_broken_giver_is_replaced(self) -> Deferred[None]:
        """
        The first member asked breaks half-way through its snapshot: the
        joiner is told, asks the next, restores from scratch and ends with
        the group's state.
        """

        async def run() -> None:
            _, c2, fresh = await self.restart_with_breaking_givers(2)
            group = self.groups
            await group.wait_until(
                lambda: (
                    c2.membership.state == REMOVED
                    or (fresh.restores >= 1 and c2.catchup.fetching_state is None)
                ),
                what="c's restore ending",
            )
            # Both givers break: c could not get a whole snapshot.
            self.assertEqual(c2.membership.state, REMOVED)
            assert c2.cannot_catch_up is not None
            self.assertIn("the snapshot's disk went away", c2.cannot_catch_up)
            self.assertIn("a:", c2.cannot_catch_up)
            self.assertIn("b:", c2.cannot_catch_up)
            self.assertEqual(fresh.restores, 2)
            self.assertEqual(fresh.records, [])
            self.assertEqual(len(self.flushLoggedErrors(OSError)), 2)

        return deferred(run())

    def test_one_broken_giver(self) -> Deferred[None]:
        """
        With only one giver broken, the joiner restores from the other.
        """

        async def run() -> None:
            states, c2, fresh = await self.restart_with_breaking_givers(1)
            group = self.groups
            a, b = group.nodes["a"], group.nodes["b"]
            # Whichever is asked first breaks half-way; the other gives.
            await group.wait_until(
                lambda: c2.catchup.fetching_state is None, what="c restoring"
            )
            self.assertIsNone(c2.cannot_catch_up)
            await self.settled(group, "abc", 2)
            await self.send([a, b, c2], 5)
            self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
            await group.wait_until(
                lambda: len(fresh.state) == len(states["a"].state) == 75,
                what="c's state catching up",
            )
            self.assertEqual(fresh.state, states["a"].state)
            self.assertEqual(fresh.restores, 2)

        return deferred(run())

    def test_nobody_runs_the_handler(self) -> Deferred[None]:
        """
        A joiner with a state handler the others do not run cannot get a
        snapshot: it leaves, saying why in one sentence.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc")
            a, b = group.nodes["a"], group.nodes["b"]
            await self.send([a, b], 5)
            fatal: list[str] = []
            fresh = PayloadLog()
            c2 = await group.restart("c", fresh)
            c2.on_fatal = fatal.append
            await group.wait_until(lambda: bool(fatal), what="c giving up")
            self.assertIn("runs 0 state handler(s) and the joiner 1", fatal[0])
            self.assertEqual(len(logs.matching("cannot rejoin")), 1)
            self.assertEqual(fresh.state, [])

        return deferred(run())
