"""
One client process of the client-API benchmark: connects to one node's
client API, subscribes to its deliveries, multicasts through it as fast as a
window of outstanding calls allows (from C{--clients} connections, or
through an C{isis send} process with C{--isis-send}), and records the order
it was given.

Run by bench/suite.py, one process per node, so the node (not one driver
process) is what is measured.  Writes its figures as JSON and the order as
a binary ``.order`` file, like bench/bench_node.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_node import ORDER_RECORD
from latency import LatencyHistogram
from load import WindowedLoad
from results import peak_rss_mb
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError

from isis_twisted.api.client import ClientProtocol, connect
from isis_twisted.core.engine import Delivery
from isis_twisted.tools.localcluster import NAMES, peers_connected, poll
from isis_twisted.tools.testing import wait_until


async def _connect(reactor: Any, port: int) -> ClientProtocol:
    deadline = time.monotonic() + 60
    while True:
        try:
            return await connect(reactor, f"tcp:host=127.0.0.1:port={port}")
        except ConnectError:
            if time.monotonic() > deadline:
                raise
            await task.deferLater(reactor, 0.1)


def _isis_send(args: argparse.Namespace, payload: bytes) -> subprocess.Popen[bytes]:
    # Lines of the payload's size ("x" * size), as a file on disk: the
    # command reads a file, not this process, at its own pace.
    with tempfile.TemporaryFile() as lines:
        line = payload + b"\n"
        for _ in range(args.messages):
            lines.write(line)
        lines.seek(0)
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "isis_twisted.app.cli",
                "send",
                "--quiet",
                f"--node={args.node}",
                f"--window={args.window}",
            ],
            stdin=lines,
        )


class OrderFile:
    """
    The order a driver is given, written as it goes to a binary C{.order}
    file (L{bench_node.ORDER_RECORD}, which L{suite.check_run} reads), with
    what it counts.

    @ivar seen: How many deliveries were recorded.
    @ivar received: Their payloads' bytes.
    """

    def __init__(self, path: Path, nodes: int) -> None:
        """
        @param path: The C{.order} file to write.
        @param nodes: The group's size: the senders are the first C{nodes}
            of L{NAMES}, numbered in sorted order.
        """
        self._numbers = {name: i for i, name in enumerate(sorted(NAMES[:nodes]))}
        self._file = path.open("wb", buffering=1 << 20)
        self.seen = 0
        self.received = 0

    def record(self, sender: str, clock: int, after: int | None, size: int) -> None:
        """
        Write one delivery: C{sender}'s message C{clock} (C{after}, if any)
        of C{size} payload bytes.
        """
        self._file.write(
            ORDER_RECORD.pack(
                self._numbers[sender], clock, -1 if after is None else after
            )
        )
        self.seen += 1
        self.received += size

    def close(self) -> None:
        """
        Write out what is buffered.
        """
        self._file.close()


def window_for(args: argparse.Namespace) -> int:
    """
    The most messages a driver keeps in flight: C{--window}, fewer for
    large payloads (the node drops a subscriber that falls 8 MiB behind,
    and a driver's process is also its subscriber).
    """
    return int(min(args.window, max(1, args.window_bytes // max(1, args.payload))))


def figures(
    args: argparse.Namespace,
    order: OrderFile,
    wall: float,
    cpu: float,
    latency: LatencyHistogram,
    peers: dict[str, Any],
) -> dict[str, Any]:
    """
    A driver's figures, as L{suite.summarise} reads them.

    @param order: What the driver was given.
    @param wall: Seconds from its first multicast to its last delivery.
    @param cpu: The driver's CPU seconds over the same time.
    @param latency: Its messages' latencies.
    @param peers: The node's C{status} C{peers}, after the run.
    """
    sent = args.messages
    frames = sum(p["frames_out"] for p in peers.values())
    wire_bytes = sum(p["bytes_out"] for p in peers.values())
    seen = order.seen
    return {
        "member": args.node,
        "delivered": seen,
        "deliveries_per_s": seen / wall,
        "mb_per_s": order.received / wall / 1e6,
        "latency_ms": latency.summary(),
        "latency_buckets": latency.counts(),
        "latency_max_s": latency.maximum,
        "frames_per_multicast": frames / sent,
        "bytes_per_multicast": wire_bytes / sent,
        "cpu_s_per_1000": cpu / seen * 1000,
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": wall,
    }


def add_arguments(parser: argparse.ArgumentParser, api: str) -> None:
    """
    The options every driver takes.

    @param api: What C{--node} is the port of.
    """
    parser.add_argument("--node", type=int, required=True, help=f"{api} port")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--messages", type=int, default=20000, help="to multicast")
    parser.add_argument("--payload", type=int, default=100, help="bytes")
    parser.add_argument("--window", type=int, default=1000, help="most in flight")
    parser.add_argument(
        "--window-bytes", type=int, default=512 << 10, help="most payload in flight"
    )
    parser.add_argument("--out", required=True, help="the figures' JSON file")


async def run(reactor: Any, args: argparse.Namespace) -> None:
    client = await _connect(reactor, args.node)

    await poll(reactor, lambda: peers_connected(client), 60, "the node's peers")
    order = OrderFile(Path(args.out).with_suffix(".order"), args.nodes)
    total = args.messages * args.nodes

    def delivered(record: Delivery) -> None:
        order.record(record.sender, record.clock, record.after, len(record.payload))

    # From the first delivery: the other clients may have started already.
    await client.subscribe(1, delivered)
    payload = b"x" * args.payload
    latency = LatencyHistogram()
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    loads: list[WindowedLoad] = []
    sender = None
    if args.isis_send:
        sender = _isis_send(args, payload)
    else:
        senders = [client] + [
            await _connect(reactor, args.node) for _ in range(args.clients - 1)
        ]
        share, extra = divmod(args.messages, args.clients)
        # The connections share the window: as many in flight as one has.
        window = max(1, window_for(args) // args.clients)
        for i, proto in enumerate(senders):
            count = share + (1 if i < extra else 0)
            loads.append(WindowedLoad(proto.multicast, payload, count, window, latency))
        for load in loads:
            load.start()
    lost: list[BaseException] = []
    client.when_lost().addCallback(lost.append)
    await wait_until(
        reactor, lambda: order.seen >= total or bool(lost), 600, f"{total} deliveries"
    )
    if order.seen < total:
        raise SystemExit(f"the connection to the node ended: {lost[0]}")
    wall = time.perf_counter() - wall_start
    if sender is not None:
        if sender.wait(60) != 0:
            raise SystemExit(f"isis send exited with status {sender.returncode}")
        # isis send times no single message: its one figure is how long the
        # whole command took to have every message delivered.
        latency.record(wall)
    cpu = time.process_time() - cpu_start
    order.close()
    status = await client.status()
    peers = status["peers"]
    assert isinstance(peers, dict)
    result = figures(args, order, wall, cpu, latency, peers)
    Path(args.out).write_text(json.dumps(result) + "\n")
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    add_arguments(parser, "client API")
    parser.add_argument(
        "--clients", type=int, default=1, help="connections multicasting at once"
    )
    parser.add_argument(
        "--isis-send",
        action="store_true",
        help="multicast through an 'isis send' process reading lines",
    )
    args = parser.parse_args()
    task.react(lambda r: Deferred.fromCoroutine(run(r, args)))


if __name__ == "__main__":
    main()
