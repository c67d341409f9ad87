"""
Rejoin and catch-up by replay, in one process: a member of a three-member
group stops (it leaves), the other two deliver C{N} messages without it,
and it is started again as a new incarnation whose durable handler kept
what it had delivered.  Measured:

  - the rejoin time: from the restart to the member added to a view;
  - the catch-up time and rate: from being added to having handed every
    record it lacked to its handler (deliveries a second);
  - the group's own delivery rate while the member catches up, beside its
    rate with the member away (the other two multicast all the time);
  - the process's peak RSS (all three members share it).

    .venv/bin/python bench/rejoin.py --lacking 100000 1000000 --join 100000

With C{--join}, a new member (C{--join}, an empty durable handler) joins a
group that delivered that many messages and catches up on all of them.

All three members run in one reactor, so the giver, the joiner and the
load share one core: a pessimistic figure for separate machines.  Prints
a table and writes C{bench/results/rejoin.json} and C{rejoin.md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from isis_twisted.tools.testing import LocalGroup, wait_until

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD = b"x" * 100
BATCH = 2000


async def pump(nodes: list[Any], count: int) -> None:
    """
    Multicast C{count} messages from C{nodes} in turn, C{BATCH} at a time.
    """
    sent = 0
    while sent < count:
        batch = min(BATCH, count - sent)
        await defer.gatherResults(
            [nodes[i % len(nodes)].multicast(PAYLOAD) for i in range(batch)],
            consumeErrors=True,
        )
        sent += batch


def room(lacking: int) -> dict[str, Any]:
    """
    Node options with room for what a member lacks and for what the load
    adds meanwhile.
    """
    return {
        "history": 4 * lacking + 100_000,
        "history_bytes": (4 * lacking + 100_000) * (len(PAYLOAD) + 64),
        "max_buffer": 256 * 1024 * 1024,
    }


async def caught_up(
    group: LocalGroup, member: Any, name: str, target: int, senders: list[Any]
) -> tuple[float, int]:
    """
    Load the group from C{senders} while C{name} catches up to C{target}
    records; the time it took and what C{a} delivered meanwhile.
    """
    added = time.perf_counter()
    load: Deferred[None] = defer.ensureDeferred(pump(senders, 10**9))
    delivered_at_add = len(group.recorders["a"].records)
    kept = group.recorders[name]
    await wait_until(
        reactor, lambda: len(kept.records) >= target, 600, f"{name} caught up"
    )
    took = time.perf_counter() - added
    load.cancel()
    load.addErrback(lambda _: None)
    return took, len(group.recorders["a"].records) - delivered_at_add


def row(
    lacking: int,
    mode: str,
    member: Any,
    joined: float,
    took: float,
    during: int,
    away_rate: float,
) -> dict[str, Any]:
    """
    One row of the table.
    """
    return {
        "lacking": lacking,
        "mode": mode,
        "caught_up": member.caught_up,
        "rejoin_s": round(joined, 3),
        "catch_up_s": round(took, 3),
        "replay_per_s": round(member.caught_up / max(took, 1e-9)),
        "group_away_per_s": round(away_rate),
        "group_during_per_s": round(during / max(took, 1e-9)),
        "peak_rss_mib": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
    }


async def run_one(lacking: int) -> dict[str, Any]:
    group = LocalGroup(reactor, list("abc"), durable=True, **room(lacking))
    await group.start()
    a, b, c = (group.nodes[n] for n in "abc")
    try:
        await pump([a, b, c], 300)
        kept = group.recorders["c"]
        await wait_until(reactor, lambda: len(kept.records) == 300, 30, "c at 300")
        await c.stopService()
        await wait_until(reactor, lambda: a.view.id == 1, 30, "view 1")
        started = time.perf_counter()
        await pump([a, b], lacking)
        away_rate = lacking / (time.perf_counter() - started)
        target = len(group.recorders["a"].records)
        restarted = time.perf_counter()
        c2 = await group.restart("c", kept)
        await wait_until(
            reactor, lambda: c2.membership.welcome is not None, 60, "c added"
        )
        joined = time.perf_counter() - restarted
        # The group's own load from the moment c is added, while it catches up.
        took, during = await caught_up(group, c2, "c", target, [a, b])
        return row(lacking, "restart", c2, joined, took, during, away_rate)
    finally:
        await group.stop()


async def run_join(lacking: int) -> dict[str, Any]:
    """
    A new member d joins (C{--join} through a) a group of three that
    delivered C{lacking} messages; its durable handler starts empty, so it
    catches up on all of them.
    """
    group = LocalGroup(reactor, list("abc"), durable=True, **room(lacking))
    await group.start()
    a, b, c = (group.nodes[n] for n in "abc")
    try:
        started = time.perf_counter()
        await pump([a, b, c], lacking)
        away_rate = lacking / (time.perf_counter() - started)
        joining = time.perf_counter()
        d = await group.join("d", via=["a"], durable=True, **room(lacking))
        await wait_until(reactor, lambda: d.membership.welcome is not None, 60, "d")
        joined = time.perf_counter() - joining
        took, during = await caught_up(group, d, "d", lacking, [a, b, c])
        return row(lacking, "join", d, joined, took, during, away_rate)
    finally:
        await group.stop()


async def main(lackings: list[int], joins: list[int]) -> None:
    rows = []
    for lacking in lackings:
        rows.append(await run_one(lacking))
        print(json.dumps(rows[-1]), flush=True)
    for lacking in joins:
        rows.append(await run_join(lacking))
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rejoin.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "| member | lacking | (re)join s | catch-up s | replay/s | group/s before |"
        " group/s during | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['mode']} | {r['lacking']:,} | {r['rejoin_s']} | {r['catch_up_s']} |"
        f" {r['replay_per_s']:,} | {r['group_away_per_s']:,} |"
        f" {r['group_during_per_s']:,} | {r['peak_rss_mib']} |"
        for r in rows
    ]
    (RESULTS / "rejoin.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--lacking", type=int, nargs="*", default=[100_000])
    parser.add_argument(
        "--join",
        type=int,
        nargs="*",
        default=[],
        help="also time a new member (--join) that catches up on this many",
    )
    args = parser.parse_args()
    failed: list[BaseException] = []

    def done(result: object) -> None:
        if isinstance(result, Failure) and result.value is not None:
            failed.append(result.value)
        reactor.stop()

    def go() -> None:
        defer.ensureDeferred(main(args.lacking, args.join)).addBoth(done)

    reactor.callWhenRunning(go)
    reactor.run()
    if failed:
        print(f"error: {failed[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    _main()
