"""
One member of a benchmark group: a MulticastNode that generates its own
load, so the client API is not what is measured.

Run by bench/suite.py, one process per member.  In "ordered" mode it
is the real node; in "raw" mode the engine delivers every message as soon as
it arrives, with the same transport, framing and batching but no ordering
wait: the ceiling of this stack.  At the end it writes its figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from pathlib import Path
from typing import Any

from latency import LatencyHistogram
from load import WindowedLoad
from results import all_finished, peak_rss_mb
from twisted.internet import task
from twisted.internet.defer import Deferred
from zope.interface import implementer

from isis_twisted.core.engine import Delivery, Engine, Timestamp
from isis_twisted.core.membership import BLOCKED, REMOVED
from isis_twisted.interfaces import IDeliveryHandler
from isis_twisted.net.node import MulticastNode
from isis_twisted.tools.testing import wait_until

#: One delivery in a member's ``.order`` file: sender number (its place in
#: the sorted member names), clock, and ``after`` (-1 for none).
ORDER_RECORD = struct.Struct("<Hqq")


class RawEngine(Engine):
    """
    Delivers whatever it holds at once: fan-out with no ordering.
    """

    def _delivery_bound(self) -> Timestamp:
        return (1 << 62, "")

    def _held_everywhere(self) -> dict[str, int]:
        # Nor does it wait for every member to hold a message (uniformity).
        return dict.fromkeys(self.members, 1 << 62)


@implementer(IDeliveryHandler)
class Counter:
    """
    A delivery handler that counts, and writes the order to a file as it
    goes (so that a run of millions of messages does not grow in memory).
    """

    def __init__(self, names: list[str], order: Path) -> None:
        self.count = 0
        self.bytes = 0
        self._numbers = {name: i for i, name in enumerate(sorted(names))}
        self._order = order.open("wb", buffering=1 << 20)

    def deliver(self, record: Delivery) -> None:
        after = -1 if record.after is None else record.after
        self._order.write(
            ORDER_RECORD.pack(self._numbers[record.sender], record.clock, after)
        )
        self.count += 1
        self.bytes += len(record.payload)

    def close(self) -> None:
        self._order.close()


async def run(reactor: Any, args: argparse.Namespace) -> None:
    peers = dict(p.split("=", 1) for p in args.peers.split(",") if p)
    out = Path(args.out)
    counter = Counter([args.id, *peers], out.with_suffix(".order"))
    factory = RawEngine if args.mode == "raw" else Engine
    node = MulticastNode(
        args.id,
        {name: f"tcp:host=127.0.0.1:port={port}" for name, port in peers.items()},
        f"tcp:{args.port}:interface=127.0.0.1",
        reactor,
        handlers=[counter],
        engine_factory=factory,
        heartbeat=args.heartbeat,
        suspect_after=args.suspect_after,
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
    latency = LatencyHistogram()
    sent = 0  # at a fixed rate
    done: Deferred[None] = Deferred()
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    total = args.messages * args.nodes
    # Large payloads keep fewer in flight: a window of 2,000 x 64 KiB would
    # measure queueing, not the group.
    window = min(args.window, max(1, args.window_bytes // max(1, args.payload)))

    def check_done() -> None:
        # A view change here comes of a false suspicion (nobody failed):
        # the run ends, short of its total, and says so in its figures.
        membership = node.membership
        changed = membership.view.id != 0 or membership.state in (BLOCKED, REMOVED)
        if (counter.count >= total or changed) and not done.called:
            done.callback(None)

    def tick() -> None:
        # LoopingCall skips calls it is late for, so send what is owed, and
        # time each message from when it was due: a stalled sender must
        # show in the latency, not hide from it.
        nonlocal sent
        owed = int((time.perf_counter() - wall_start) * args.rate) + 1
        while sent < min(owed, args.messages):
            due = wall_start + sent / args.rate
            sent += 1
            node.multicast(payload).addCallback(delivered_at_rate, due)
        check_done()

    def delivered_at_rate(_: Delivery, started: float) -> None:
        latency.record(time.perf_counter() - started)

    load = WindowedLoad(
        node.multicast, payload, args.messages, window, latency, check_done
    )
    if args.rate:
        sender = task.LoopingCall(tick)
        sender.clock = reactor
        sender.start(1.0 / args.rate)
    else:
        load.start()
    poll = task.LoopingCall(check_done)
    poll.clock = reactor
    poll.start(0.05)
    await done
    poll.stop()
    if args.rate:
        sender.stop()
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    status = node.status()
    peers_status = status.peers
    frames = sum(p.frames_out for p in peers_status.values())
    wire_bytes = sum(p.bytes_out for p in peers_status.values())

    multicasts = sent if args.rate else load.sent
    result = {
        "member": args.id,
        "mode": args.mode,
        "rate": args.rate,
        "nodes": args.nodes,
        "payload": args.payload,
        "delivered": counter.count,
        "deliveries_per_s": counter.count / wall,
        "mb_per_s": counter.bytes / wall / 1e6,
        "latency_ms": latency.summary(),
        "latency_buckets": latency.counts(),
        "latency_max_s": latency.maximum,
        "frames_per_multicast": frames / max(1, multicasts),
        "bytes_per_multicast": wire_bytes / max(1, multicasts),
        "cpu_s_per_1000": cpu / counter.count * 1000,
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": wall,
        "suspicions": status.suspicions,
        "view_changes": status.view_changes,
    }
    out.write_text(json.dumps(result) + "\n")
    # Stay until every member has finished: a peer may still be waiting
    # for this member's acknowledgements.
    names = [args.id, *peers]
    await wait_until(
        reactor,
        lambda: all_finished(out, names),
        120,
        "every member to finish",
    )
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
    parser.add_argument("--window", type=int, default=2000, help="most in flight")
    parser.add_argument(
        "--window-bytes", type=int, default=8 << 20, help="most payload in flight"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="fixed multicasts/s (0: saturate)"
    )
    parser.add_argument(
        "--heartbeat", type=float, default=1.0, help="seconds between heartbeats"
    )
    parser.add_argument(
        "--suspect-after",
        type=float,
        default=3.0,
        help="seconds of silence before a member is suspected",
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", help="write a pyinstrument profile here")
    args = parser.parse_args()
    if args.messages < 1 or args.rate < 0:
        parser.error("--messages must be at least 1 and --rate not negative")
    if not 2 * args.heartbeat < args.suspect_after:
        parser.error("--suspect-after must be more than twice --heartbeat")
    if not args.profile:
        task.react(lambda r: Deferred.fromCoroutine(run(r, args)))
        return
    from pyinstrument import Profiler  # the bench extra

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        task.react(lambda r: Deferred.fromCoroutine(run(r, args)))
    finally:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_text(color=False, show_all=False))


if __name__ == "__main__":
    main()
