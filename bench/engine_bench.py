"""
Engine benchmark: ordered messages per second through n in-process engines.

No I/O: frames pass between engines as objects, so this measures the
ordering algorithm alone, the ceiling of a networked node.  Each member, on
its turn, takes in the frames that reached it, multicasts C{batch} messages
(saturation: every member always has something to send), flushes one frame
per peer and collects its deliveries.

Reported per group size n:
  - per-engine rate: messages each engine ordered and delivered, divided by
    the CPU time spent inside that engine's calls (what bounds one node
    process, which runs one engine);
  - group rate: messages delivered per node per wall-clock second with all n
    engines sharing one core;
  - frames per multicast: frames put on links (one per peer) per message.

Run:  python bench/engine_bench.py [--messages 60000] [--payload 100]
Writes bench/results/engine.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from results import write_results

from isis_twisted.core.engine import Engine, Frame


def run(n: int, messages: int, payload: int, batch: int) -> dict[str, float]:
    """
    Push C{messages} multicasts (spread over the n members) through a group.

    @return: The figures for this group size.
    """
    members = [f"m{i}" for i in range(n)]
    engines = [Engine(m, members) for m in members]
    inbox: list[list[tuple[str, Frame]]] = [[] for _ in members]
    index = {m: i for i, m in enumerate(members)}
    spent = [0.0] * n
    delivered = [0] * n
    data = b"x" * payload
    frames = sent = 0
    clock = time.perf_counter
    wall = clock()
    while sent < messages or any(inbox):
        for i, engine in enumerate(engines):
            todo = min(batch, messages - sent)
            start = clock()
            for src, frame in inbox[i]:
                engine.receive(src, frame)
            for _ in range(todo):
                engine.multicast(data)
            out = engine.flush()
            got = len(engine.take_deliveries())
            spent[i] += clock() - start
            inbox[i] = []
            sent += todo
            delivered[i] += got
            for frame in out:
                for peer in engine.peers:
                    inbox[index[peer]].append((engine.me, frame))
                    frames += 1
    wall = clock() - wall
    assert all(d == messages for d in delivered), (delivered, messages)
    per_engine = [d / s for d, s in zip(delivered, spent, strict=True)]
    return {
        "n": n,
        "messages": messages,
        "payload_bytes": payload,
        "batch": batch,
        "per_engine_msgs_per_s_min": min(per_engine),
        "per_engine_msgs_per_s_mean": sum(per_engine) / n,
        "group_msgs_per_s_per_node": messages / wall,
        "frames_per_multicast": frames / messages,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    """
    Run the benchmark for n = 3, 5, 7, print a table and write JSON.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--messages", type=int, default=60000)
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument(
        "--batch",
        type=int,
        action="append",
        help="multicasts per member per turn (repeatable; default 1 and 32)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "engine.json"
    )
    args = parser.parse_args(argv)
    batches = args.batch or [1, 32]
    rows = []
    header = (
        f"{'n':>2} {'batch':>5} {'per-engine msg/s':>17} {'group msg/s/node':>17}"
        f" {'frames/multicast':>17}"
    )
    print(header)
    for n in (3, 5, 7):
        for batch in batches:
            row = run(n, args.messages, args.payload, batch)
            rows.append(row)
            print(
                f"{n:>2} {batch:>5} {row['per_engine_msgs_per_s_mean']:>17,.0f}"
                f" {row['group_msgs_per_s_per_node']:>17,.0f}"
                f" {row['frames_per_multicast']:>17.3f}",
                flush=True,
            )
    write_results(args.out, "engine", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
