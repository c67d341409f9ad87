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
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latency import LatencyHistogram
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.batteries import ReplList
from results import all_finished, peak_rss_mb

from isis_twisted.tools.localcluster import NAMES


class CountingLog(SyncObj):  # type: ignore[misc]
    """
    The lightest replicated state: a count of appends, with log compaction
    off.  The order they were applied in is noted beside it, outside the
    replicated state, so that this measures Raft's replication alone.
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
    # Election timeouts of 2-4 s rather than 0.4-1.4 s: at saturation on
    # two shared cores a busy leader's heartbeats come late, and needless
    # elections would slow PySyncObj down (and have made it lose appends).
    timeouts = {"raftMinTimeout": 2.0, "raftMaxTimeout": 4.0, "connectionTimeout": 4.0}
    conf = SyncObjConf(
        appendEntriesUseBatch=True, dynamicMembershipChange=False, **timeouts
    )
    if state == "list":
        replicated_list = ReplList()
        obj = SyncObj(me, others, conf=conf, consumers=[replicated_list])
        return obj, replicated_list, replicated_list.rawData
    # No log compaction: a follower brought up to date by a snapshot would
    # skip applying the entries it covers, and the order noted beside the
    # count would miss them.  (It also spares PySyncObj its snapshots.)
    conf = SyncObjConf(
        appendEntriesUseBatch=True,
        dynamicMembershipChange=False,
        **timeouts,
        logCompactionMinEntries=1 << 40,
        logCompactionMinTime=1 << 40,
    )
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
    state = {"retries": 0, "uncertain": 0, "answers": 0}
    outstanding: dict[int, float] = {}
    retry: list[int] = []
    uncertain: list[int] = []

    def committed(seq: int, _: object, error: int) -> None:
        with lock:
            started = outstanding.pop(seq, None)
            if started is None:
                return  # given up on already, see submit()
            state["answers"] += 1
            if error == FAIL_REASON.SUCCESS:
                latency.record(time.perf_counter() - started)
            elif error == FAIL_REASON.QUEUE_FULL:
                # Refused before it reached the log: offer it again.
                state["retries"] += 1
                retry.append(seq)
            else:
                # The leader changed or went missing: the append may still
                # be committed, so it is offered again only if it is not.
                state["uncertain"] += 1
                uncertain.append(seq)
            lock.notify()

    def submit(todo: list[int]) -> None:
        last_answer = time.monotonic()
        answered = state["answers"]
        while True:
            with lock:
                if state["answers"] != answered:
                    last_answer = time.monotonic()
                    answered = state["answers"]
                if outstanding and time.monotonic() - last_answer > 10:
                    # PySyncObj never answers some appends that a leader
                    # change caught: treat them as uncertain.
                    state["uncertain"] += len(outstanding)
                    uncertain.extend(outstanding)
                    outstanding.clear()
                if len(outstanding) >= args.window:
                    lock.wait(0.05)
                    continue
                if retry:
                    nxt = retry.pop()
                elif todo:
                    nxt = todo.pop()
                elif not outstanding:
                    return
                else:
                    lock.wait(0.05)
                    continue
                outstanding[nxt] = time.perf_counter()
            target.append(
                (args.id, nxt, payload),
                callback=lambda r, e, s=nxt: committed(s, r, e),
            )

    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    submit(list(range(args.messages, 0, -1)))
    give_up = time.monotonic() + 120
    while uncertain:
        if time.monotonic() > give_up:
            raise SystemExit(f"{args.id}: appends still uncertain after 120 s")
        # Give appends caught in a leader change time to commit, then offer
        # again those that did not (what a careful Raft client does).
        time.sleep(1.0)
        mine = {item[1] for item in applied() if item[0] == args.id}
        with lock:
            missing = [q for q in uncertain if q not in mine]
            uncertain.clear()
        submit(missing)
    # Done when every member's every append is applied here: counted by
    # id, since one committed twice must not stand in for one not yet
    # applied.
    deadline = time.monotonic() + 30
    distinct: set[tuple[str, int]] = set()
    looked = 0
    while True:
        items = applied()
        distinct.update((item[0], item[1]) for item in items[looked:])
        looked = len(items)
        if len(distinct) >= expected:
            break
        if time.monotonic() > deadline:
            # Report what was applied: the driver's check names what is
            # missing (PySyncObj logs "state machine may have diverged"
            # when it truncates entries it had already applied).
            print(
                f"{args.id}: only {len(distinct)} of {expected} appends applied",
                file=sys.stderr,
            )
            break
        time.sleep(0.001)
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    count = len(distinct)
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
        "uncertain": state["uncertain"],
    }
    Path(args.out).write_text(json.dumps(result) + "\n")
    Path(args.out).with_suffix(".order").write_text(
        json.dumps([item[:2] for item in applied()], separators=(",", ":"))
    )
    # Stay (a voter) until every member has finished: with fewer than a
    # majority left, the others could not commit their last appends.
    out = Path(args.out)
    names = list(NAMES[: args.nodes])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all_finished(out, names):
        time.sleep(0.05)
    obj.destroy()


if __name__ == "__main__":
    main()
