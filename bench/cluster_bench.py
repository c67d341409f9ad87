"""
Side-by-side benchmark of a real group of processes: ordered multicast
against raw fan-out over the same transport, framing and batching, then a
fixed-rate run for latency.  Every ordered run's delivery histories are
checked with the history checker; a run that broke a guarantee fails.

Every member is its own process (bench/bench_node.py) that generates its
own load at saturation (as fast as back-pressure allows) and reports
deliveries per second, MB/s, multicast-to-local-delivery latency, frames
and bytes per multicast, CPU per 1,000 messages and peak RSS.

Run:  python bench/cluster_bench.py [--nodes 3 5] [--payload 100] [--messages 20000]
Writes bench/results/cluster.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from results import write_results

from isis_twisted.checker import check
from isis_twisted.engine import Delivery

HERE = Path(__file__).resolve().parent


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_group(
    mode: str, nodes: int, payload: int, messages: int, rate: float = 0.0
) -> list[dict[str, Any]]:
    """
    Start C{nodes} members in C{mode}, wait for them, check an ordered
    run's histories, and return the members' figures.

    @raise SystemExit: If a member failed or the histories break a
        guarantee.
    """
    names = [chr(ord("a") + i) for i in range(nodes)]
    ports = dict(zip(names, free_ports(nodes), strict=True))
    work = Path(tempfile.mkdtemp(prefix="isis-bench-"))
    procs = []
    for name in names:
        peers = ",".join(f"{p}={ports[p]}" for p in names if p != name)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "bench_node.py"),
                    f"--id={name}",
                    f"--port={ports[name]}",
                    f"--peers={peers}",
                    f"--nodes={nodes}",
                    f"--mode={mode}",
                    f"--payload={payload}",
                    f"--messages={messages}",
                    f"--rate={rate}",
                    f"--out={work / f'{name}.json'}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"a {mode} member failed:\n{err.decode()}")
    if mode == "ordered":
        histories = {
            n: [
                Delivery(i, s, c, b"", a)
                for i, s, c, a in json.loads((work / f"{n}.order").read_text())
            ]
            for n in names
        }
        verdict = check(histories)
        if not verdict.ok:
            raise SystemExit(f"the ordered run broke a guarantee:\n{verdict.summary()}")
    return [json.loads((work / f"{n}.json").read_text()) for n in names]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    return {
        "deliveries_per_s_per_node": sum(r["deliveries_per_s"] for r in rows) / n,
        "mb_per_s_per_node": sum(r["mb_per_s"] for r in rows) / n,
        "latency_p50_ms": max(r["latency_ms"]["p50"] for r in rows),
        "latency_p99_ms": max(r["latency_ms"]["p99"] for r in rows),
        "latency_max_ms": max(r["latency_ms"]["max"] for r in rows),
        "frames_per_multicast": sum(r["frames_per_multicast"] for r in rows) / n,
        "bytes_per_multicast": sum(r["bytes_per_multicast"] for r in rows) / n,
        "cpu_s_per_1000": sum(r["cpu_s_per_1000"] for r in rows) / n,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Ordered vs raw, real processes.")
    parser.add_argument("--nodes", type=int, nargs="+", default=[3])
    parser.add_argument("--payload", type=int, nargs="+", default=[100])
    parser.add_argument("--messages", type=int, default=20000, help="per member")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="per member, for the latency run"
    )
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cluster.json")
    args = parser.parse_args()
    results = []
    print(
        f"{'n':>2} {'payload':>7} {'mode':>8} {'deliv/s/node':>13} {'MB/s':>7}"
        f" {'p50 ms':>7} {'p99 ms':>8} {'frames/mc':>9} {'cpu s/1k':>8} {'RSS MB':>7}"
    )
    for nodes in args.nodes:
        for payload in args.payload:
            pair = {}
            for mode in ("raw", "ordered"):
                summary = summarise(run_group(mode, nodes, payload, args.messages))
                pair[mode] = summary
                print(
                    f"{nodes:>2} {payload:>7} {mode:>8}"
                    f" {summary['deliveries_per_s_per_node']:>13,.0f}"
                    f" {summary['mb_per_s_per_node']:>7.2f}"
                    f" {summary['latency_p50_ms']:>7.1f}"
                    f" {summary['latency_p99_ms']:>8.1f}"
                    f" {summary['frames_per_multicast']:>9.3f}"
                    f" {summary['cpu_s_per_1000']:>8.3f}"
                    f" {summary['peak_rss_mb']:>7.1f}",
                    flush=True,
                )
            ratio = (
                pair["ordered"]["deliveries_per_s_per_node"]
                / pair["raw"]["deliveries_per_s_per_node"]
            )
            print(f"   ordered / raw = {ratio:.2f}", flush=True)
            results.append(
                {"nodes": nodes, "payload": payload, **pair, "ordered_over_raw": ratio}
            )
    for nodes in args.nodes:
        rate = args.rate
        summary = summarise(
            run_group("ordered", nodes, 100, int(rate * args.rate_seconds), rate)
        )
        print(
            f"{nodes:>2} nodes at {rate:,.0f} msg/s each, 100 B: latency p50"
            f" {summary['latency_p50_ms']:.2f} ms, p99 {summary['latency_p99_ms']:.2f}"
            f" ms, max {summary['latency_max_ms']:.2f} ms",
            flush=True,
        )
        results.append({"nodes": nodes, "fixed_rate": rate, "ordered": summary})
    write_results(args.out, "cluster", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
