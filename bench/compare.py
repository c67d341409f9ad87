"""
Two source trees side by side: the same suite runs, interleaved, in one go.

A change that should not cost speed (or whose cost is to be measured) is
compared with the commit before it on the same machine, in the same hour,
alternating the two trees run by run so that the noise of a shared machine
falls on both alike::

    git worktree add --detach ../before HEAD~3
    .venv/bin/python bench/compare.py --before ../before --nodes 3 5 7

For every group size and round, each tree's own C{bench/suite.py} runs the
raw and ordered saturation runs (100 B) and the fixed-rate runs, with that
tree on C{PYTHONPATH}.  Writes the side-by-side table to
C{bench/results/compare.md} and every figure to C{bench/results/compare.json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from results import write_results

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"


def run_suite(
    tree: Path, nodes: int, messages: int, rate: float, seconds: float
) -> list[dict[str, Any]]:
    """
    Run C{tree}'s own suite for one group size and return its result rows.

    @raise RuntimeError: If the suite failed (a member crashed, a check broke).
    """
    with tempfile.TemporaryDirectory(prefix="isis-compare-") as tmp:
        command = [
            sys.executable,
            str(tree / "bench" / "suite.py"),
            f"--nodes={nodes}",
            "--payloads=100",
            f"--messages={messages}",
            "--no-pysyncobj",
            "--client-messages=0",
            "--memory",
            f"--rate={rate}",
            f"--rate-seconds={seconds}",
            "--no-charts",
            f"--out={tmp}",
        ]
        env = dict(os.environ, PYTHONPATH=str(tree))
        done = subprocess.run(
            command, env=env, cwd=tree, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tree}: suite failed:\n{done.stderr[-2000:]}")
        rows: list[dict[str, Any]] = json.loads(
            (Path(tmp) / "results.json").read_text()
        )["results"]
        return rows


def figures(rows: list[dict[str, Any]]) -> dict[str, float]:
    """
    The figures compared: saturation throughput (and ordered over raw) and
    fixed-rate latency of the ordered runs.
    """
    out: dict[str, float] = {}
    for row in rows:
        key = f"{row['kind']}-{row['system']}"
        if row["kind"] == "saturation":
            out[f"{key}-per-s"] = row["deliveries_per_s_per_node"]
        elif row["kind"] == "rate":
            for q in ("p50", "p90", "p99"):
                out[f"{key}-{q}-ms"] = row["latency_ms"][q]
    raw, ordered = out.get("saturation-raw-per-s"), out.get("saturation-ordered-per-s")
    if raw and ordered:
        out["ordered-over-raw"] = ordered / raw
    return out


def table(results: dict[str, dict[int, list[dict[str, float]]]]) -> str:
    """
    A Markdown table: per group size, the median over rounds of each figure
    for both trees.
    """
    keys = [
        ("saturation-ordered-per-s", "ordered deliveries/s per node", "{:,.0f}"),
        ("saturation-raw-per-s", "raw deliveries/s per node", "{:,.0f}"),
        ("ordered-over-raw", "ordered / raw", "{:.2f}"),
        ("rate-ordered-p50-ms", "fixed rate p50 ms", "{:.2f}"),
        ("rate-ordered-p90-ms", "fixed rate p90 ms", "{:.2f}"),
        ("rate-ordered-p99-ms", "fixed rate p99 ms", "{:.2f}"),
        ("rate-raw-p50-ms", "raw fixed rate p50 ms", "{:.2f}"),
    ]
    lines = ["| n | figure | before | after |", "|---:|---|---:|---:|"]
    for nodes in sorted(results["before"]):
        for key, label, fmt in keys:
            cells = []
            for tree in ("before", "after"):
                values = [r[key] for r in results[tree][nodes] if key in r]
                cells.append(fmt.format(statistics.median(values)) if values else "-")
            lines.append(f"| {nodes} | {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run both trees, interleaved, and write the comparison.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--before", type=Path, required=True, help="the older tree")
    parser.add_argument(
        "--after", type=Path, default=HERE.parent, help="the newer tree (this one)"
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--messages", type=int, default=20000, help="per member")
    parser.add_argument("--rate", type=float, default=1000.0, help="per member")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    for tree in (args.before, args.after):
        if not (tree / "bench" / "suite.py").is_file():
            parser.error(f"{tree} has no bench/suite.py: not a source tree")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    results: dict[str, dict[int, list[dict[str, float]]]] = {
        name: {n: [] for n in args.nodes} for name in trees
    }
    for round_ in range(args.rounds):
        for nodes in args.nodes:
            # Alternate which tree goes first, so neither always runs on a
            # machine the other has just warmed or loaded.
            order = list(trees) if (round_ + nodes) % 2 == 0 else list(trees)[::-1]
            for name in order:
                print(f"round {round_ + 1}, n={nodes}: {name}", file=sys.stderr)
                try:
                    rows = run_suite(
                        trees[name], nodes, args.messages, args.rate, args.rate_seconds
                    )
                except RuntimeError as e:
                    print(str(e), file=sys.stderr)
                    return 1
                got = figures(rows)
                print(f"  {json.dumps(got)}", file=sys.stderr)
                results[name][nodes].append(got)
    text = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.md").write_text(text)
    write_results(
        args.out / "compare.json",
        "compare",
        [
            {"tree": name, "path": str(trees[name]), "nodes": n, "figures": r}
            for name in trees
            for n in args.nodes
            for r in results[name][n]
        ],
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
