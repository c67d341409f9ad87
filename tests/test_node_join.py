"""
Tests for members added at run time (C{--join}): a node that knows only
where one member listens finds the group, is added through a view change,
is reached by every member at the address it gave, and delivers in one
order with the others from the first index of its view.  Every test
judges every member's stream with the view checker.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from isis_twisted.core.engine import ViewChange
from isis_twisted.core.membership import JOINING, NORMAL
from isis_twisted.core.viewcheck import check_views
from isis_twisted.net.peers import PENDING_STRANGERS
from tests.test_node import LogCapture, deferred
from tests.test_node_membership import MembershipTestCase
from tests.test_node_rejoin import same


class JoinTests(MembershipTestCase):
    def test_fourth_and_fifth_join_then_one_leaves(self) -> Deferred[None]:
        """
        d joins a running group of three through a, e joins through d (a
        member none of the founders was given), all five deliver alike, and
        d stops cleanly: the four go on at once without it.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc")
            a, b, c = (group.nodes[n] for n in "abc")
            await self.send([a, b, c], 5)
            d = await group.join("d", via=["a"])
            self.assertEqual(d.membership.state, JOINING)
            await self.settled(group, "abcd", 1)
            self.assertEqual(d.members, ("a", "b", "c"))
            for node in (a, b, c):
                self.assertEqual(node.membership.addresses.get("d"), group.address("d"))
            await self.send([a, b, c, d], 5)
            e = await group.join("e", via=["d"])
            await self.settled(group, "abcde", 2)
            await self.send([a, b, c, d, e], 5)
            for node in (a, b, c, d):
                self.assertEqual(node.membership.addresses.get("e"), group.address("e"))
            self.assertEqual(
                group.recorders["d"].stream[0], ViewChange(1, tuple("abcd"), 16)
            )
            await d.stopService()
            await self.settled(group, "abce", 3)
            await self.send([a, b, c, e], 5)
            total = 15 + 20 + 25 + 20
            await group.wait_until(
                lambda: (
                    [len(group.recorders[n].records) for n in "abce"]
                    == [total, total, total, 25 + 20]
                ),
                what="the four delivering alike",
            )
            self.assertEqual(
                same(group.recorders["e"].records),
                same(group.recorders["a"].records[35:]),
            )
            self.assertNotIn("d", a.links)
            streams = {n: r.stream for n, r in group.recorders.items()}
            result = check_views(
                streams, initial=["a", "b", "c"], departed=("d",), liveness=True
            )
            self.assertTrue(result.ok, result.summary())
            self.assertTrue(logs.matching("found member 'a'"))
            self.assertEqual(e.membership.state, NORMAL)

        return deferred(run())

    def test_strangers_are_bounded(self) -> Deferred[None]:
        """
        Names no view or request to join vouches for get a few links at
        most, and an address that is no endpoint description gets none; a
        member that asked to join always gets its link.
        """

        async def run() -> None:
            group = await self.group("ab")
            a = group.nodes["a"]
            made = [
                a.add_peer(f"s{i}", f"tcp:host=127.0.0.1:port={9 + i}")
                for i in range(PENDING_STRANGERS + 3)
            ]
            self.assertEqual(sum(m is not None for m in made), PENDING_STRANGERS)
            self.assertIsNone(a.add_peer("t", "bogus:xyz"))
            a.membership.joiners["z"] = 1
            self.assertIsNotNone(a.add_peer("z", "tcp:host=127.0.0.1:port=7"))
            # Forgotten at the next view change that does not need them.
            a.membership.joiners.clear()
            a.peers.forget(a.view.members)
            self.assertEqual(sorted(a.links), ["b"])

        return deferred(run())
