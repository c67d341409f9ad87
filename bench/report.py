"""
The suite's results as a Markdown table and PNG charts.

Charts need matplotlib (the bench extra); without it L{charts} says so and
draws nothing.  Run on its own to redraw from a results file:
``python bench/report.py docs/benchmarks/results.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_SYSTEMS = {
    "raw": "raw fan-out",
    "ordered": "isis-twisted",
    "pysyncobj": "PySyncObj, ReplList",
    "pysyncobj-count": "PySyncObj, count",
}


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _size(payload: int) -> str:
    return f"{payload // 1024} KiB" if payload >= 1024 else f"{payload} B"


def _row(r: dict[str, Any], first: str) -> str:
    lat = r["latency_ms"]
    ratios = " / ".join(
        _num(r.get(f"over_{o}"), ".2f") if f"over_{o}" in r else "-"
        for o in ("raw", "pysyncobj", "pysyncobj-count")
    )
    check = r.get("check")
    verdict = "-" if check is None else ("OK" if check["ok"] else "FAILED")
    notes = []
    if check and "fifo" in check.get("not_promised_but_broken", ()):
        notes.append("not FIFO")
    if check and check.get("duplicates"):
        notes.append(f"{check['duplicates']:,} duplicates")
    if notes:
        verdict += f" ({', '.join(notes)})"
    return (
        f"| {first} | {_SYSTEMS[r['system']]} | {r['nodes']} | {_size(r['payload'])} |"
        f" {_num(r['deliveries_per_s_per_node'], ',.0f')} |"
        f" {_num(r['mb_per_s_per_node'], '.2f')} |"
        f" {lat['p50']:.2f} / {lat['p90']:.2f} / {lat['p99']:.2f} / {lat['max']:.1f} |"
        f" {_num(r['frames_per_multicast'], '.3f')} |"
        f" {_num(r['bytes_per_multicast'], ',.0f')} |"
        f" {_num(r['cpu_s_per_1000'], '.3f')} | {r['peak_rss_mb']:.0f} |"
        f" {ratios} | {verdict} |"
    )


def markdown(results: Sequence[dict[str, Any]], failures: Sequence[str] = ()) -> str:
    """
    One table of every run, then any failures.

    @param results: The suite's runs, as L{suite.one_run} returns them.
    @param failures: What failed, one line each.
    """
    lines = [
        "| run | system | n | payload | deliveries/s per node | MB/s per node"
        " | latency ms p50 / p90 / p99 / max | frames per multicast"
        " | bytes per multicast | CPU s per 1,000 | peak RSS MB"
        " | ours / raw / PySyncObj list / count | history check |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    names = {
        "saturation": "saturation",
        "rate": "fixed rate",
        "client": "client API",
        "http": "HTTP API",
        "memory": "memory",
    }
    for r in results:
        first = names[r["kind"]]
        if r["kind"] == "rate":
            first += f" {r['rate']:,.0f}/s"
        if r["kind"] == "memory":
            first += f" {r['messages_per_member'] * r['nodes']:,}"
        if r["kind"] == "client":
            first = "isis send" if r.get("isis_send") else first
            first += f" x{r.get('clients', 1)}" if r.get("clients", 1) > 1 else ""
        lines.append(_row(r, first))
    memory = [r for r in results if r["kind"] == "memory"]
    if len(memory) >= 2:
        small, big = memory[0], memory[-1]
        growth = big["peak_rss_mb"] / small["peak_rss_mb"] - 1
        lines.append("")
        lines.append(
            f"Peak RSS per node: {small['peak_rss_mb']:.1f} MB after"
            f" {small['messages_per_member'] * small['nodes']:,} messages,"
            f" {big['peak_rss_mb']:.1f} MB after"
            f" {big['messages_per_member'] * big['nodes']:,} ({growth:+.1%})."
        )
    client = [r for r in results if r["kind"] == "client"]
    for r in client:
        lines.append("")
        lines.append(
            f"Client API run: the twistd nodes used {r['node_cpu_s_per_1000']:.3f}"
            f" CPU s per 1,000 deliveries and peaked at {r['node_peak_rss_mb']:.0f} MB;"
            " the row's CPU and RSS are the client processes'."
        )
    if failures:
        lines.append("")
        lines.append("Failed runs:")
        lines.extend(f"- {f}" for f in failures)
    return "\n".join(lines) + "\n"


def charts(results: Sequence[dict[str, Any]], where: Path) -> list[Path]:
    """
    Draw throughput against n, throughput against payload size, and the
    latency CDF of the fixed-rate runs, as PNG files in C{where}.

    @return: The files written (none without matplotlib).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (make bench installs it): no charts")
        return []
    written = []
    saturation = [r for r in results if r["kind"] == "saturation"]
    payloads = sorted({r["payload"] for r in saturation})
    systems = [s for s in _SYSTEMS if any(r["system"] == s for r in saturation)]

    fig, axes = plt.subplots(
        1, len(payloads), figsize=(4 * len(payloads), 3.6), squeeze=False
    )
    for ax, payload in zip(axes[0], payloads, strict=True):
        for system in systems:
            points = sorted(
                (r["nodes"], r["deliveries_per_s_per_node"])
                for r in saturation
                if r["system"] == system and r["payload"] == payload
            )
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", label=_SYSTEMS[system])
        ax.set_title(f"{_size(payload)} payloads")
        ax.set_xlabel("members (n)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("deliveries/s per node")
    axes[0][0].legend()
    fig.suptitle("Saturation throughput against group size")
    fig.tight_layout()
    written.append(_save(fig, where / "throughput-vs-n.png"))
    plt.close(fig)

    smallest = min((r["nodes"] for r in saturation), default=3)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for system in systems:
        triples = sorted(
            (r["payload"], r["deliveries_per_s_per_node"], r["mb_per_s_per_node"])
            for r in saturation
            if r["system"] == system and r["nodes"] == smallest
        )
        if triples:
            xs, per_s, mb = zip(*triples, strict=True)
            left.plot(xs, per_s, marker="o", label=_SYSTEMS[system])
            right.plot(xs, mb, marker="o", label=_SYSTEMS[system])
    for ax, label in ((left, "deliveries/s per node"), (right, "MB/s per node")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("payload bytes")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    left.legend()
    fig.suptitle(f"Saturation throughput against payload size, n = {smallest}")
    fig.tight_layout()
    written.append(_save(fig, where / "throughput-vs-payload.png"))
    plt.close(fig)

    fixed = [r for r in results if r["kind"] == "rate"]
    if fixed:
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in fixed:
            xs, ys = zip(*r["latency_cdf"], strict=True)
            style = "-" if r["system"] == "ordered" else ":"
            ax.step(
                xs,
                ys,
                style,
                where="post",
                label=f"{_SYSTEMS[r['system']]}, n = {r['nodes']}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("multicast to local delivery, ms")
        ax.set_ylabel("fraction of messages")
        ax.set_title(f"Latency at {fixed[0]['rate']:,.0f} multicasts/s per member")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, where / "latency-cdf.png"))
        plt.close(fig)
    return written


def _save(fig: Any, path: Path) -> Path:
    # No date or software version in the file, so an unchanged chart makes
    # no change in git.
    fig.savefig(path, dpi=110, metadata={"Software": None})
    return path


def main(argv: Sequence[str]) -> int:
    """
    Redraw the table and charts from a results file.
    """
    if len(argv) != 1:
        print("usage: python bench/report.py RESULTS.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError) as e:
        print(f"cannot read results from {path}: {e}", file=sys.stderr)
        return 1
    (path.parent / "results.md").write_text(markdown(results))
    for chart in charts(results, path.parent):
        print(f"wrote {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
