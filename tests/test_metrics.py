"""
Tests for L{isis_twisted.api.metrics}: a node's counters for Prometheus.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent

from isis_twisted.api.metrics import NodeCollector, metrics_resource
from isis_twisted.tools.testing import LocalGroup

reactor: Any = _reactor


def sample(text: str, name: str, **labels: str) -> float:
    """
    The value of one sample in a Prometheus text exposition.
    """
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{"):
            head, value = line.rsplit(" ", 1)
            got = ",".join(sorted(head[len(name) + 1 : -1].split(",")))
            if got == wanted:
                return float(value)
    raise KeyError(f"{name}{{{wanted}}} not in the exposition")


class Body(Protocol):
    """
    Collects an HTTP response body.
    """

    def __init__(self) -> None:
        self.data = b""
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.done.callback(self.data)


class MetricsTests(TestCase):
    timeout = 60

    async def watched(
        self, names: list[str], **options: Any
    ) -> tuple[LocalGroup, CollectorRegistry]:
        """
        A started group (stopped at cleanup) and a registry collecting its
        first member's metrics.
        """
        group = LocalGroup(reactor, names, **options)
        await group.start()
        self.addCleanup(lambda: Deferred.fromCoroutine(group.stop()))
        registry = CollectorRegistry()
        registry.register(NodeCollector(group.nodes[names[0]]))
        return group, registry

    def test_counters_follow_the_node(self) -> Deferred[None]:
        async def go() -> None:
            group, registry = await self.watched(["a", "b"])
            a = group.nodes["a"]
            before = generate_latest(registry).decode()
            self.assertEqual(sample(before, "isis_multicasts_total", member="a"), 0)
            await gatherResults([a.multicast(b"x" * 10) for _ in range(5)])
            await group.all_delivered(5)
            text = generate_latest(registry).decode()
            self.assertEqual(sample(text, "isis_multicasts_total", member="a"), 5)
            self.assertEqual(sample(text, "isis_deliveries_total", member="a"), 5)
            self.assertEqual(sample(text, "isis_queue_depth", member="a"), 0)
            self.assertEqual(sample(text, "isis_handler_give_ups_total", member="a"), 0)
            self.assertEqual(sample(text, "isis_undelivered_records", member="a"), 0)
            self.assertGreater(
                sample(text, "isis_peer_frames_out_total", member="a", peer="b"), 0
            )
            self.assertEqual(
                sample(
                    text, "isis_peer_connected", member="a", peer="b", direction="out"
                ),
                1,
            )
            self.assertIn("# HELP isis_oldest_undelivered_age_seconds", text)

        return Deferred.fromCoroutine(go())

    def test_view_changes(self) -> Deferred[None]:
        """
        A view change shows in the view id, the count of view changes and
        suspicions, its duration and the state.
        """

        async def go() -> None:
            group, registry = await self.watched(
                ["a", "b", "c"],
                heartbeat=0.1,
                silence=1.0,
                suspect_after=0.5,
                flush_timeout=0.5,
            )
            a = group.nodes["a"]
            before = generate_latest(registry).decode()
            self.assertEqual(sample(before, "isis_view", member="a"), 0)
            self.assertEqual(sample(before, "isis_view_members", member="a"), 3)
            self.assertEqual(
                sample(before, "isis_state", member="a", state="normal"), 1
            )
            # Heard from once, c can be suspected.
            await group.nodes["c"].multicast(b"hello")
            await group.all_delivered(1)
            await group.nodes["c"].stopService()
            await group.wait_until(lambda: a.view.id == 1, what="view 1 at a")
            text = generate_latest(registry).decode()
            self.assertEqual(sample(text, "isis_view", member="a"), 1)
            self.assertEqual(sample(text, "isis_view_members", member="a"), 2)
            self.assertEqual(sample(text, "isis_view_changes_total", member="a"), 1)
            # c said it was stopping: no failure detector had to suspect it.
            self.assertEqual(
                sample(text, "isis_suspicions_total", member="a"), a.detector.suspicions
            )
            self.assertEqual(
                a.detector.suspicions + group.nodes["b"].detector.suspicions, 0
            )
            self.assertGreater(
                sample(text, "isis_last_view_change_seconds", member="a"), 0
            )
            self.assertEqual(sample(text, "isis_suspects", member="a"), 0)
            self.assertEqual(sample(text, "isis_state", member="a", state="normal"), 1)
            self.assertEqual(sample(text, "isis_state", member="a", state="removed"), 0)

        return Deferred.fromCoroutine(go())

    def test_served_over_http(self) -> Deferred[None]:
        async def go() -> None:
            from twisted.web.server import Site

            group = LocalGroup(reactor, ["a"])
            await group.start()
            self.addCleanup(lambda: Deferred.fromCoroutine(group.stop()))
            await group.nodes["a"].multicast(b"one")
            port = reactor.listenTCP(
                0, Site(metrics_resource(group.nodes["a"])), interface="127.0.0.1"
            )
            self.addCleanup(port.stopListening)
            agent = Agent(reactor)
            response = await agent.request(
                b"GET", f"http://127.0.0.1:{port.getHost().port}/metrics".encode()
            )
            body = Body()
            response.deliverBody(body)
            text = (await body.done).decode()
            self.assertEqual(sample(text, "isis_deliveries_total", member="a"), 1)

        return Deferred.fromCoroutine(go())
