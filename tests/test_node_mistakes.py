"""
Operator mistakes never split the group, in one process: whole groups of
L{MulticastNode}s on loopback TCP, where a second node is started with an
existing member's name, or a member is started with another member list.

In each, the legitimate members' histories pass the checker, nothing the
mistaken node multicast is delivered by anyone, and the sentence that says
what is wrong is logged once per member that refuses, not once per redial.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import Any, cast

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from isis_twisted.core.checker import check
from isis_twisted.core.engine import Delivery
from isis_twisted.net.node import MulticastNode
from isis_twisted.tools.testing import LateBoundEndpoint, RecordingHandler, wait_until

reactor: Any = _reactor

CLAIMANT = "another process holds the name 'a'"

# Short timers, so that a member that is never heard from is removed soon.
FAST = {"heartbeat": 0.2, "silence": 1.0, "suspect_after": 1.0}


def deferred(coro: Coroutine[Any, Any, None]) -> Deferred[None]:
    return Deferred.fromCoroutine(coro)


class Events:
    """
    Every log event while a test runs.
    """

    def __init__(self, test: TestCase) -> None:
        self.events: list[LogEvent] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        test.addCleanup(globalLogPublisher.removeObserver, observer)

    def drops(self, me: str, words: str) -> list[LogEvent]:
        """
        The connections node C{me} dropped for a reason containing C{words}.
        """
        return [
            e
            for e in self.events
            if e.get("log_format", "").startswith("dropped ")
            and e.get("me") == me
            and words in e.get("reason", "")
        ]

    def refused(self, me: str, by: str, words: str) -> list[LogEvent]:
        """
        The REFUSE frames member C{by} sent node C{me} with a reason
        containing C{words}.
        """
        return [
            e
            for e in self.events
            if "refused this node" in e.get("log_format", "")
            and e.get("me") == me
            and e.get("who") == f"member {by!r}"
            and words in e.get("reason", "")
        ]


class Group:
    """
    Nodes on loopback TCP that find each other's ports by name, so that a
    test can start them in any order, and two of them can share a name.

    @ivar ports: The listening port of each name that is reachable, by name.
    @ivar nodes: Every node, by a label of its own ("a", "a2", ...).
    @ivar recorders: Every node's deliveries, by label.
    """

    def __init__(self, test: TestCase) -> None:
        self.test = test
        self.ports: dict[str, int] = {}
        self.nodes: dict[str, MulticastNode] = {}
        self.recorders: dict[str, RecordingHandler] = {}
        self.pending: dict[str, list[Deferred[Delivery]]] = {}

    def add(
        self, label: str, name: str, peers: Iterable[str], **options: Any
    ) -> MulticastNode:
        """
        Make node C{label}, a member called C{name} that dials C{peers} at
        the ports they are reachable at.
        """
        recorder = RecordingHandler()
        node = MulticastNode(
            name,
            {peer: LateBoundEndpoint(reactor, self.ports, peer) for peer in peers},
            "tcp:0:interface=127.0.0.1",
            reactor,
            handlers=[recorder],
            **{**FAST, **options},
        )
        self.nodes[label] = node
        self.recorders[label] = recorder
        self.pending[label] = []
        return node

    async def start(self, *labels: str, reachable: bool = True) -> None:
        """
        Start nodes; with C{reachable}, their names' ports lead to them.
        """
        for label in labels:
            node = self.nodes[label]
            node.startService()
            self.test.addCleanup(node.stopService)
            port = await node.listening
            if reachable:
                self.ports[node.me] = port.getHost().port  # type: ignore[attr-defined]

    def multicast(self, label: str, count: int) -> None:
        """
        Node C{label} multicasts C{count} payloads naming it.
        """
        for i in range(count):
            d = self.nodes[label].multicast(f"{label}:{i}".encode())
            # A node that never joins fails them when it stops.
            d.addErrback(lambda _: None)
            self.pending[label].append(d)

    def delivered(self, label: str) -> list[bytes]:
        return [r.payload for r in self.recorders[label].records]

    async def until(self, condition: Any, what: str, timeout: float = 30.0) -> None:
        await wait_until(
            reactor,
            condition,
            timeout,
            what,
            lambda: "\n".join(f"{n}: {x.status()}" for n, x in self.nodes.items()),
        )


class SecondClaimantTests(TestCase):
    """
    A second process started with member C{a}'s name (its own port, the
    same peers) is refused by every member with a sentence that says who
    holds the name and where; the group goes on with the real C{a}.
    """

    timeout = 60

    async def claimant_refused(self, group: Group, events: Events) -> None:
        """
        Traffic from every node, the claimant's included: check that only
        the real members' messages are delivered, in one order, and that
        the refusal was said once by each member and heard by the claimant.
        """
        for label in ("a", "b", "c", "a2"):
            group.multicast(label, 20)
        await group.until(
            lambda: all(len(group.delivered(x)) >= 60 for x in "abc"),
            "a, b and c delivering their 60 messages",
        )
        # What the claimant multicast was never delivered.
        for label in "abc":
            self.assertEqual(len(group.delivered(label)), 60)
            self.assertFalse(
                [p for p in group.delivered(label) if p.startswith(b"a2:")]
            )
        self.assertEqual(group.delivered("a2"), [])
        result = check({x: group.recorders[x].records for x in "abc"})
        self.assertTrue(result.ok, result.summary())
        for member in "bc":
            [drop] = events.drops(member, CLAIMANT)
            where = f"'{member}' reaches 'a' at 127.0.0.1:{group.ports['a']}"
            self.assertIn(where, drop["reason"])
            self.assertIn(f"{group.nodes['a2'].incarnation:016x}", drop["reason"])
            self.assertEqual(drop["peer"], "a")
            # The claimant, also called a, is told (its incarnation is in it).
            self.assertEqual(len(events.refused("a", member, drop["reason"])), 1)
        # The real a was never disturbed: one connection each way.
        for member in "bc":
            link = group.nodes[member].links["a"]
            self.assertEqual(link.connects, 1)
            self.assertEqual(link.incarnation, group.nodes["a"].incarnation)
        self.assertEqual(group.nodes["a"].rejections, 0)
        self.assertTrue(all(not d.called for d in group.pending["a2"]))

    def with_claimant(self) -> tuple[Events, Group]:
        """
        Members a, b and c, and a claimant "a2" started as a with the same
        peers, none of them started yet; and the log events to watch.
        """
        events = Events(self)
        group = Group(self)
        for name in "abc":
            group.add(name, name, [p for p in "abc" if p != name])
        group.add("a2", "a", "bc")
        return events, group

    def test_claimant_after_the_group(self) -> Deferred[None]:
        """
        The claimant starts once the group is up: refused at once.
        """

        async def run() -> None:
            events, group = self.with_claimant()
            await group.start("a", "b", "c")
            await group.until(
                lambda: all(
                    link.outbound is not None and link.inbound is not None
                    for x in "abc"
                    for link in group.nodes[x].links.values()
                ),
                "the group connected",
            )
            await group.start("a2", reachable=False)
            await group.until(
                lambda: all(events.drops(x, CLAIMANT) for x in "bc"),
                "b and c refusing the claimant",
            )
            await self.claimant_refused(group, events)

        return deferred(run())

    def test_claimant_before_the_member(self) -> Deferred[None]:
        """
        The startup race: the claimant dials b and c before the real a has
        started, so they hold its connections (answered, unread) until their
        own dials reach a's address; then they refuse them.
        """

        async def run() -> None:
            events, group = self.with_claimant()
            await group.start("b", "c")
            await group.start("a2", reachable=False)
            await group.until(
                lambda: all(group.nodes[x].links["a"].held for x in "bc"),
                "b and c holding the claimant's connections",
            )
            for x in "bc":
                self.assertIsNone(group.nodes[x].links["a"].inbound)
            group.multicast("a2", 5)
            await group.start("a")
            await group.until(
                lambda: all(events.drops(x, CLAIMANT) for x in "bc"),
                "b and c refusing the claimant",
            )
            self.assertEqual([], [p for x in "bc" for p in group.delivered(x)])
            await self.claimant_refused(group, events)

        return deferred(run())


class MemberListTests(TestCase):
    """
    A member started with another member list (a's peers omit c, while b
    and c list everyone) exchanges nothing with the others: each side
    refuses the other's connections with a sentence naming the difference,
    b and c go on without it, and nothing it multicast is delivered.
    """

    timeout = 60

    def test_member_omitted(self) -> Deferred[None]:
        async def run() -> None:
            events = Events(self)
            group = Group(self)
            group.add("a", "a", "b")
            group.add("b", "b", "ac")
            group.add("c", "c", "ab")
            await group.start("a", "b", "c")
            for label in "abc":
                group.multicast(label, 10)
            await group.until(
                lambda: all(len(group.delivered(x)) >= 20 for x in "bc"),
                "b and c delivering their messages",
            )
            # b and c removed a, which never joined them.
            for x in "bc":
                self.assertEqual(group.nodes[x].view.members, ("b", "c"))
                self.assertFalse([p for p in group.delivered(x) if p.startswith(b"a:")])
            self.assertEqual(group.delivered("a"), [])
            result = check({x: group.recorders[x].records for x in "bc"})
            self.assertTrue(result.ok, result.summary())
            # Both sides of a and b say so, once each, with both lists.
            [b_side] = events.drops("b", "'a' lists members a, b;")
            self.assertEqual(
                b_side["reason"],
                "'a' lists members a, b; 'b' lists a, b, c ('a' omits c):"
                " every member must be given the same members",
            )
            [a_side] = events.drops("a", "'b' lists members a, b, c;")
            self.assertEqual(
                a_side["reason"],
                "'b' lists members a, b, c; 'a' lists a, b (only 'b' lists c):"
                " every member must be given the same members",
            )
            self.assertEqual(len(events.refused("a", "b", b_side["reason"])), 1)
            self.assertEqual(len(events.refused("b", "a", a_side["reason"])), 1)
            # c, unknown to a, is told the difference too, not just that it
            # is no member.
            [c_side] = events.drops("a", "'c' lists members a, b, c;")
            self.assertIn("only 'c' lists c", c_side["reason"])
            self.assertEqual(len(events.refused("c", "a", c_side["reason"])), 1)
            for x in "bc":
                self.assertIsNone(group.nodes[x].links["a"].incarnation)
            self.assertIsNone(group.nodes["a"].links["b"].incarnation)
            self.assertTrue(all(not d.called for d in group.pending["a"]))

        return deferred(run())

    def test_view_change_keeps_connections(self) -> Deferred[None]:
        """
        The check compares the configured lists, not the views: after b and
        c remove a (view 1), a reconnection between b and c, both in view
        1, is served.
        """

        async def run() -> None:
            group = Group(self)
            for name in "abc":
                group.add(name, name, [p for p in "abc" if p != name])
            await group.start("a", "b", "c")
            group.multicast("b", 3)
            await group.until(
                lambda: all(len(group.delivered(x)) >= 3 for x in "abc"),
                "everyone delivering b's messages",
            )
            await group.nodes["a"].stopService()
            await group.until(
                lambda: all(group.nodes[x].view.id >= 1 for x in "bc"),
                "b and c installing a view without a",
            )
            b, c = group.nodes["b"], group.nodes["c"]
            self.assertEqual(b.view.members, ("b", "c"))
            connects = b.links["c"].connects
            outbound = b.links["c"].outbound
            assert outbound is not None
            outbound.transport.loseConnection()
            await group.until(
                lambda: (
                    b.links["c"].connects > connects
                    and b.links["c"].outbound is not None
                ),
                "b reconnecting to c",
            )
            group.multicast("c", 3)
            await group.until(
                lambda: all(len(group.delivered(x)) >= 6 for x in "bc"),
                "b and c delivering c's messages",
            )
            self.assertEqual(b.rejections + c.rejections, 0)
            result = check({x: group.recorders[x].records for x in "bc"})
            self.assertTrue(result.ok, result.summary())

        return deferred(run())
