"""
One member of a PySyncObj (Raft in Python) group for the side-by-side
benchmark: every member appends to a replicated list as fast as PySyncObj
takes appends, with batching on, and records the list it ends up with so
the driver can check its order.

Run by bench/suite.py from the bench environment (PySyncObj is not a
dependency of isis-twisted: ``make bench`` installs it into .venv-bench).
At the end it writes its figures as JSON, and the list as ``.order``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latency import LatencyHistogram
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.batteries import ReplList
from results import peak_rss_mb


class CountingLog(SyncObj):  # type: ignore[misc]
    """
    The lightest replicated state: a count of appends.  The order they were
    applied in is noted beside it, outside what PySyncObj snapshots, so
    that this measures Raft's replication rather than its snapshots.
    """

    def __init__(self, me: str, others: list[str], conf: Any) -> None:
        # Set before SyncObj's own attributes, so that they are not taken
        # for replicated state.
        self.items: list[tuple[str, int, bytes]] = []
        super().__init__(me, others, conf=conf)
        self.count = 0

    @replicated  # type: ignore[untyped-decorator]
    def append(self, item: tuple[str, int, bytes]) -> int:
        self.count += 1
        self.items.append(item)
        return self.count


def build(
    state: str, me: str, others: list[str]
) -> tuple[Any, Any, Callable[[], list[Any]]]:
    """
    A member with C{state} (C{"list"}: PySyncObj's own replicated list,
    C{ReplList}, which it snapshots whole; C{"count"}: L{CountingLog}).

    @return: The L{SyncObj}, the object whose C{append} is replicated, and
        a function that gives the appends in the order they were applied.
    """
    conf = SyncObjConf(appendEntriesUseBatch=True, dynamicMembershipChange=False)
    if state == "list":
        replicated_list = ReplList()
        obj = SyncObj(me, others, conf=conf, consumers=[replicated_list])
        return obj, replicated_list, replicated_list.rawData
    log = CountingLog(me, others, conf)
    return log, log, lambda: log.items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--id", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--peer-ports", default="")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--state", choices=["list", "count"], default="list")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    others = [f"127.0.0.1:{p}" for p in args.peer_ports.split(",") if p]
    obj, target, applied = build(args.state, f"127.0.0.1:{args.port}", others)
    expected = args.messages * args.nodes
    deadline = time.monotonic() + 60
    while not obj.isReady() or obj._getLeader() is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"{args.id}: no Raft leader after 60 s")
        time.sleep(0.01)

    payload = b"x" * args.payload
    latency = LatencyHistogram()
    lock = threading.Condition()
    state = {"in_flight": 0, "retries": 0, "committed": 0}
    retry: list[int] = []

    def committed(seq: int, started: float, _: object, error: int) -> None:
        with lock:
            state["in_flight"] -= 1
            if error == FAIL_REASON.SUCCESS:
                state["committed"] += 1
                latency.record(time.perf_counter() - started)
            else:
                # Refused (queue full, leader changing): offer it again.
                state["retries"] += 1
                retry.append(seq)
            lock.notify()

    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    seq = 0
    while True:
        with lock:
            while state["in_flight"] >= args.window:
                lock.wait()
            if retry:
                nxt = retry.pop()
            elif seq < args.messages:
                seq += 1
                nxt = seq
            elif state["committed"] >= args.messages:
                break
            else:
                lock.wait(0.05)
                continue
            state["in_flight"] += 1
        started = time.perf_counter()
        target.append(
            (args.id, nxt, payload),
            callback=lambda r, e, s=nxt, t=started: committed(s, t, r, e),
        )
    deadline = time.monotonic() + 120
    while len(applied()) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"{args.id}: only {len(applied())} appends applied")
        time.sleep(0.001)
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    count = expected
    result = {
        "member": args.id,
        "mode": "pysyncobj",
        "state": args.state,
        "rate": 0.0,
        "nodes": args.nodes,
        "payload": args.payload,
        "delivered": count,
        "deliveries_per_s": count / wall,
        "mb_per_s": count * args.payload / wall / 1e6,
        "latency_ms": latency.summary(),
        "latency_buckets": latency.counts(),
        "latency_max_s": latency.maximum,
        "frames_per_multicast": None,
        "bytes_per_multicast": None,
        "cpu_s_per_1000": cpu / count * 1000,
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": wall,
        "retries": state["retries"],
    }
    Path(args.out).write_text(json.dumps(result) + "\n")
    Path(args.out).with_suffix(".order").write_text(
        json.dumps([item[:2] for item in applied()], separators=(",", ":"))
    )
    # Linger so that the others can still reach a quorum to finish.
    time.sleep(2.0)
    obj.destroy()


if __name__ == "__main__":
    main()
