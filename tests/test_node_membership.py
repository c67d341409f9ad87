"""
Tests for membership on real connections: L{MulticastNode} suspects a
silent member, changes the view without it and goes on, in one reactor on
loopback TCP (proxied where links are cut).  Every test judges every
member's stream of deliveries and view changes with the view checker.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import TestCase

from isis_twisted.core.engine import Delivery, ViewChange
from isis_twisted.core.membership import BLOCKED, NORMAL, REMOVED
from isis_twisted.core.viewcheck import check_views
from isis_twisted.net.node import (
    DeliveryUnknownError,
    MulticastNode,
    NodeRemovedError,
    NodeStoppedError,
)
from isis_twisted.tools.testing import LocalGroup
from tests.test_node import LogCapture, deferred

FAST = {
    "heartbeat": 0.1,
    "silence": 1.0,
    "suspect_after": 0.5,
    "flush_timeout": 0.5,
}
"""
Timing for tests: a silent member is suspected within about half a second.
"""


class MembershipTestCase(TestCase):
    timeout = 120

    async def group(self, names: str, **options: Any) -> LocalGroup:
        group = LocalGroup(reactor, list(names), **{**FAST, **options})
        await group.start()
        self.addCleanup(lambda: deferred(group.stop()))
        return group

    async def send(self, nodes: list[MulticastNode], each: int) -> list[Delivery]:
        """
        Every node in C{nodes} multicasts C{each} messages; wait for them.
        """
        return list(
            await gatherResults(
                [
                    node.multicast(f"{node.me}:{i}".encode())
                    for node in nodes
                    for i in range(each)
                ]
            )
        )

    async def judge(
        self,
        group: LocalGroup,
        departed: tuple[str, ...] = (),
        liveness: bool = True,
    ) -> None:
        """
        Once the members that stay have delivered alike (with C{liveness}),
        check every member's stream.
        """
        if liveness:
            stay = [r for n, r in group.recorders.items() if n not in departed]
            await group.wait_until(
                lambda: len({len(r.records) for r in stay}) == 1,
                what="the members that stay delivering alike",
            )
        streams = {name: r.stream for name, r in group.recorders.items()}
        result = check_views(
            streams,
            initial=sorted(group.nodes),
            departed=departed,
            liveness=liveness,
        )
        self.assertTrue(result.ok, result.summary())

    async def settled(
        self, group: LocalGroup, names: str, view: int, timeout: float = 30.0
    ) -> None:
        """
        Wait until every member in C{names} is delivering in view C{view}.
        """
        await group.wait_until(
            lambda: all(
                group.nodes[n].view.id == view
                and group.nodes[n].membership.state == NORMAL
                for n in names
            ),
            timeout,
            f"{names} settling in view {view}",
        )


class CrashTests(MembershipTestCase):
    def test_survivors_go_on(self) -> Deferred[None]:
        """
        A member that stops answering is suspected and left out; the others
        install a view without it, deliver everything sent through them and
        go on multicasting, and what the gone member delivered is a prefix
        of theirs.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc")
            a, b, c = (group.nodes[n] for n in "abc")
            await self.send([a, b, c], 20)
            await c.stopService()
            # Sent while c is going: they wait for the view change.
            waiting = Deferred.fromCoroutine(self.send([a, b], 10))
            await self.settled(group, "ab", 1)
            await waiting
            after = await self.send([a, b], 10)
            self.assertEqual({r.sender for r in after}, {"a", "b"})
            self.assertEqual(a.view.members, ("a", "b"))
            # The ten sent while c went were sent in view 0, and delivered
            # in it as the view closed.
            changes = [
                (i, r)
                for i, r in enumerate(group.recorders["a"].stream)
                if isinstance(r, ViewChange)
            ]
            self.assertEqual(changes, [(80, ViewChange(1, ("a", "b"), 81))])
            await self.judge(group, departed=("c",))
            status = a.status()
            self.assertEqual(status.view, 1)
            self.assertEqual(status.view_members, ("a", "b"))
            self.assertEqual(status.state, NORMAL)
            self.assertEqual(status.view_changes, 1)
            self.assertIsNotNone(status.last_view_change_s)
            # c said it was stopping: nobody waited to find it silent.
            self.assertTrue(logs.matching("'c' is stopping"))
            self.assertFalse(logs.matching("suspects 'c'"))
            self.assertTrue(logs.matching("installed view 1 of a, b", "without c"))

        return deferred(run())

    def test_five_lose_two(self) -> Deferred[None]:
        """
        A group of five goes on without two members that stop, one after
        the other.
        """

        async def run() -> None:
            group = await self.group("abcde")
            nodes = [group.nodes[n] for n in "abcde"]
            await self.send(nodes, 5)
            await group.nodes["e"].stopService()
            await self.settled(group, "abcd", 1)
            await self.send(nodes[:4], 5)
            await group.nodes["a"].stopService()
            await self.settled(group, "bcd", 2)
            await self.send(nodes[1:4], 5)
            self.assertEqual(group.nodes["b"].view.members, ("b", "c", "d"))
            await self.judge(group, departed=("a", "e"))

        return deferred(run())

    def test_two_of_three_gone(self) -> Deferred[None]:
        """
        The one member left of three has no majority: it delivers nothing
        new and says it is blocked; what it multicasts waits.
        """

        async def run() -> None:
            group = await self.group("abc")
            a = group.nodes["a"]
            await self.send([a], 3)
            await group.nodes["b"].stopService()
            await group.nodes["c"].stopService()
            await group.wait_until(
                lambda: a.membership.state == BLOCKED, what="a blocked"
            )
            waiting = a.multicast(b"never")
            waiting.addErrback(lambda f: f.trap(NodeStoppedError, DeliveryUnknownError))
            self.assertFalse(waiting.called)
            self.assertEqual(len(group.recorders["a"].records), 3)
            self.assertEqual(a.view.id, 0)
            self.assertEqual(a.status().state, BLOCKED)
            self.assertEqual(sorted(a.status().suspects), ["b", "c"])
            await self.judge(group, departed=("b", "c"), liveness=False)

        return deferred(run())


class PartitionTests(MembershipTestCase):
    def test_cut_off_member_is_removed(self) -> Deferred[None]:
        """
        A member cut off from the rest cannot go on alone (no majority);
        the others go on without it, and once the links heal it learns that
        it is out: it says so, and a multicast on it fails at once.
        """

        async def run() -> None:
            logs = LogCapture(self)
            group = await self.group("abc", proxied=True)
            a, b, c = (group.nodes[n] for n in "abc")
            await self.send([a, b, c], 5)
            group.isolate("c")
            await self.settled(group, "ab", 1)
            await self.send([a, b], 5)
            self.assertEqual(len(group.recorders["c"].records), 15)
            group.heal()
            await group.wait_until(
                lambda: c.membership.state == REMOVED, what="c learning it is out"
            )
            self.assertEqual(len(group.recorders["c"].records), 15)
            self.assertIn("view 1", str(c.status().removed_because))
            failure = self.failureResultOf(c.multicast(b"late"))
            failure.trap(NodeRemovedError)
            self.assertIn("out of the group", str(failure.value))
            self.assertEqual(len(logs.matching("'c' is out of the group")), 1)
            await self.send([a, b], 5)
            await self.judge(group, departed=("c",))

        return deferred(run())

    def test_three_two_split(self) -> Deferred[None]:
        """
        Cut into 3 + 2, the three go on and the two deliver nothing new and
        are blocked without a majority.
        """

        async def run() -> None:
            group = await self.group("abcde", proxied=True)
            nodes = [group.nodes[n] for n in "abcde"]
            await self.send(nodes, 4)
            for (src, dst), proxy in group.proxies.items():
                if (src in "abc") != (dst in "abc"):
                    proxy.cut()
            await self.settled(group, "abc", 1)
            await group.wait_until(
                lambda: all(group.nodes[n].membership.state == BLOCKED for n in "de"),
                what="d and e blocked",
            )
            held = gatherResults(
                [n.multicast(b"held") for n in nodes[3:]], consumeErrors=True
            )
            await self.send(nodes[:3], 4)
            for n in "de":
                self.assertEqual(len(group.recorders[n].records), 20)
                self.assertEqual(group.nodes[n].view.id, 0)
            self.assertFalse(held.called)
            held.addErrback(lambda f: None)
            await self.judge(group, departed=("d", "e"))

        return deferred(run())


class GlitchTests(MembershipTestCase):
    def test_whole_group_glitch(self) -> Deferred[None]:
        """
        Every link stalls past --suspect-after: every member suspects the
        others and, without a majority, none can change the view.  When the
        links come back the group goes on: whole if they come back together,
        or without the members whose links came back too late (they were
        silent past --suspect-after), which know it.  Either way one view
        holds a majority and every history agrees.
        """

        async def run() -> None:
            group = await self.group("abc", proxied=True)
            nodes = [group.nodes[n] for n in "abc"]
            await self.send(nodes, 3)
            for proxy in group.proxies.values():
                proxy.cut()
            await group.wait_until(
                lambda: all(n.membership.state == BLOCKED for n in nodes),
                what="every member blocked",
            )
            group.heal()

            def settled() -> bool:
                staying = [n for n in nodes if n.membership.state != REMOVED]
                return len(staying) >= 2 and all(
                    n.membership.state == NORMAL
                    and not n.membership.suspects
                    and n.view.members == tuple(m.me for m in staying)
                    for n in staying
                )

            await group.wait_until(settled, what="the group settling in one view")
            staying = [n for n in nodes if n.membership.state != REMOVED]
            await self.send(staying, 3)
            removed = tuple(n.me for n in nodes if n not in staying)
            await self.judge(group, departed=removed)

        return deferred(run())


class _Unreachable:
    """
    An endpoint whose connection attempts never finish.
    """

    def connect(self, factory: object) -> Deferred[object]:
        return Deferred()


class DetectorTests(TestCase):
    def test_never_heard_gets_a_grace(self) -> None:
        """
        A member never heard from since this node started is suspected
        only after ten times --suspect-after (members started by hand a
        little apart all make view 0), and then it is; once heard from, a
        member's silence is suspected after --suspect-after.
        """
        from twisted.internet.task import Clock

        clock = Clock()
        node = MulticastNode(
            "a",
            {"b": _Unreachable(), "c": _Unreachable()},  # type: ignore[dict-item]
            None,
            clock,
            heartbeat=0.1,
            silence=1.0,
            suspect_after=0.5,
        )
        node.startService()
        self.addCleanup(node.stopService)
        for _ in range(48):
            clock.advance(0.1)
        self.assertEqual(node.detector.suspicions, 0)
        self.assertEqual(node.membership.suspects, set())
        node.links["b"].last_heard = clock.seconds()
        for _ in range(3):
            clock.advance(0.1)
        # Past the grace, c (never heard) is suspected; b, heard 0.3 s ago,
        # is not.
        self.assertEqual(node.membership.suspects, {"c"})
        for _ in range(3):
            clock.advance(0.1)
        self.assertEqual(node.detector.suspicions, 2)
        self.assertEqual(node.membership.suspects, {"b", "c"})
        self.assertEqual(set(node.status().suspects), {"b", "c"})
