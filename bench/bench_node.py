"""
One member of a benchmark group: a MulticastNode that generates its own
load, so the client API is not what is measured.

Run by bench/cluster_bench.py, one process per member.  In "ordered" mode it
is the real node; in "raw" mode the engine delivers every message as soon as
it arrives, with the same transport, framing and batching but no ordering
wait: the ceiling of this stack.  At the end it writes its figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred
from zope.interface import implementer

from isis_twisted.engine import Delivery, Engine, Timestamp
from isis_twisted.interfaces import IDeliveryHandler
from isis_twisted.node import MulticastNode
from isis_twisted.testing import wait_until


class RawEngine(Engine):
    """
    Delivers whatever it holds at once: fan-out with no ordering.
    """

    def _delivery_bound(self) -> Timestamp:
        return (1 << 62, "")


@implementer(IDeliveryHandler)
class Counter:
    """
    A delivery handler that counts, and notes when the first and last came.
    """

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.first: float | None = None
        self.last = 0.0
        self.order: list[tuple[int, str, int, int | None]] = []

    def deliver(self, record: Delivery) -> None:
        now = time.perf_counter()
        self.order.append((record.index, record.sender, record.clock, record.after))
        if self.first is None:
            self.first = now
        self.last = now
        self.count += 1
        self.bytes += len(record.payload)

    def close(self) -> None:
        pass


async def run(reactor: Any, args: argparse.Namespace) -> None:
    peers = dict(p.split("=", 1) for p in args.peers.split(",") if p)
    counter = Counter()
    factory = RawEngine if args.mode == "raw" else Engine
    node = MulticastNode(
        args.id,
        {name: f"tcp:host=127.0.0.1:port={port}" for name, port in peers.items()},
        f"tcp:{args.port}:interface=127.0.0.1",
        reactor,
        handlers=[counter],
        engine_factory=factory,
    )
    node.startService()
    await node.listening
    await wait_until(
        reactor,
        lambda: all(
            link.outbound is not None and link.inbound is not None
            for link in node.links.values()
        ),
        60,
        "every peer to connect",
    )
    payload = b"x" * args.payload
    latencies: list[float] = []
    sent = 0
    in_flight = 0
    done: Deferred[None] = Deferred()
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    total = args.messages * args.nodes

    def delivered(_: Delivery, started: float) -> None:
        nonlocal in_flight
        in_flight -= 1
        latencies.append(time.perf_counter() - started)
        pump()

    def pump() -> None:
        nonlocal sent, in_flight
        while sent < args.messages and in_flight < args.window:
            sent += 1
            in_flight += 1
            node.multicast(payload).addCallback(delivered, time.perf_counter())
        if sent >= args.messages and counter.count >= total and not done.called:
            done.callback(None)

    def check_done() -> None:
        if counter.count >= total and not done.called:
            done.callback(None)

    def tick() -> None:
        nonlocal sent
        if sent < args.messages:
            sent += 1
            node.multicast(payload).addCallback(delivered_at_rate, time.perf_counter())
        check_done()

    def delivered_at_rate(_: Delivery, started: float) -> None:
        latencies.append(time.perf_counter() - started)

    if args.rate:
        sender = task.LoopingCall(tick)
        sender.clock = reactor
        sender.start(1.0 / args.rate)
    else:
        pump()
    poll = task.LoopingCall(check_done)
    poll.clock = reactor
    poll.start(0.05)
    await done
    poll.stop()
    if args.rate:
        sender.stop()
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    latencies.sort()
    status = node.status()
    peers_status = status["peers"]
    assert isinstance(peers_status, dict)
    frames = sum(p["frames_out"] for p in peers_status.values())
    wire_bytes = sum(p["bytes_out"] for p in peers_status.values())

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    result = {
        "member": args.id,
        "mode": args.mode,
        "rate": args.rate,
        "nodes": args.nodes,
        "payload": args.payload,
        "delivered": counter.count,
        "deliveries_per_s": counter.count / wall,
        "mb_per_s": counter.bytes / wall / 1e6,
        "latency_ms": {
            "p50": pct(0.5),
            "p90": pct(0.9),
            "p99": pct(0.99),
            "max": latencies[-1] * 1000,
        },
        "frames_per_multicast": frames / max(1, sent),
        "bytes_per_multicast": wire_bytes / max(1, sent),
        "cpu_s_per_1000": cpu / counter.count * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_s": wall,
    }
    Path(args.out).write_text(json.dumps(result) + "\n")
    # The order, for the driver's history check (payloads are all alike).
    Path(args.out).with_suffix(".order").write_text(
        json.dumps(counter.order, separators=(",", ":"))
    )
    # Linger so that peers still waiting for this member's acks finish too.
    pause: Deferred[None] = Deferred()
    reactor.callLater(2.0, pause.callback, None)
    await pause
    await node.stopService()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--id", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--peers", default="")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--mode", choices=["ordered", "raw"], default="ordered")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="fixed multicasts/s (0: saturate)"
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    task.react(lambda r: Deferred.fromCoroutine(run(r, args)))


if __name__ == "__main__":
    main()
