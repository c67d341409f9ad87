"""
Durable jsonl handler and handler pump benchmark.

Reported:
  - open: seconds to open a jsonl file of C{--lines} lines (read its
    position from the end), with its only view line first (the worst case:
    the search for the last view reads the whole file back), with a view
    line near the end (the usual case), and with a torn last line to cut;
  - write: records per second appended by L{JsonLinesHandler} (one
    C{write} per line), called directly and through a pump, against a text
    file written and flushed per line (how the handler wrote before);
  - pump: records per second through a L{HandlerPump} to a handler that
    does nothing, against calling that handler in a plain loop (the
    pump's own cost per record).

Run:  python bench/jsonl_bench.py [--lines 1000000] [--repeat 5]
Writes bench/results/jsonl.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from results import write_results
from zope.interface import implementer

from isis_twisted.app.handlers import JsonLinesHandler
from isis_twisted.core.checker import record_to_json
from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.core.pump import HandlerPump
from isis_twisted.interfaces import IViewHandler


@implementer(IViewHandler)
class Null:
    """
    A handler that takes every record and does nothing with it.
    """

    def deliver(self, record: Delivery) -> None:
        pass

    def view_changed(self, change: ViewChange) -> None:
        pass

    def close(self) -> None:
        pass


def make_file(path: Path, lines: int, view_at: int, payload: int) -> None:
    """
    Write C{lines} lines of records to C{path}: deliveries of C{payload}
    bytes, with one view line before delivery C{view_at}.
    """
    body = "x" * payload
    with path.open("w", encoding="utf-8") as f:
        chunk: list[str] = []
        index = 1
        for n in range(lines):
            if n == view_at - 1:
                record: Record = ViewChange(1, ("a", "b", "c"), index)
            else:
                record = Delivery(index, "abc"[index % 3], 3 * index, body.encode())
                index += 1
            chunk.append(record_to_json(record) + "\n")
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))


def timed(repeat: int, action: Callable[[], None]) -> dict[str, float]:
    """
    Run C{action} C{repeat} times: the median and best seconds.
    """
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        runs.append(time.perf_counter() - start)
    return {"median_s": statistics.median(runs), "best_s": min(runs)}


def bench_open(directory: Path, lines: int, repeat: int) -> list[dict[str, object]]:
    """
    Time opening files of C{lines} lines with the view line first, near
    the end, and with a torn last line.
    """
    rows: list[dict[str, object]] = []
    for case, view_at in (
        ("view line first", 1),
        ("view line near the end", lines - 10),
    ):
        path = directory / f"open-{view_at}.jsonl"
        make_file(path, lines, view_at, 100)

        def open_close(path: Path = path) -> None:
            JsonLinesHandler(path).close()

        figures = timed(repeat, open_close)
        rows.append(
            {
                "case": f"open, {case}",
                "lines": lines,
                "bytes": path.stat().st_size,
                **figures,
            }
        )
        print(
            f"open {lines} lines ({path.stat().st_size / 1e6:.0f} MB), {case}:"
            f" median {figures['median_s'] * 1000:.1f} ms,"
            f" best {figures['best_s'] * 1000:.1f} ms"
        )
    whole = path.stat().st_size

    def open_torn() -> None:
        with path.open("ab") as f:
            f.write(b'{"index": 999999999, "sender": "a", "cl')
        JsonLinesHandler(path).close()
        if path.stat().st_size != whole:
            raise SystemExit("the torn line was not cut")

    figures = timed(repeat, open_torn)
    rows.append({"case": "open, torn last line cut", "lines": lines, **figures})
    print(
        f"open {lines} lines with a torn last line (appending it included):"
        f" median {figures['median_s'] * 1000:.1f} ms"
    )
    return rows


def bench_write(directory: Path, records: int) -> list[dict[str, object]]:
    """
    Append C{records} deliveries of 100 bytes: with the handler called
    directly, through a pump, and, for comparison, as the handler wrote
    before it was durable (a text file, C{write} and C{flush} per line).
    """
    items = [Delivery(i, "a", i, b"x" * 100) for i in range(1, records + 1)]
    rows: list[dict[str, object]] = []

    def direct() -> None:
        handler = JsonLinesHandler(directory / "direct.jsonl")
        for record in items:
            handler.deliver(record)
        handler.close()

    def pumped() -> None:
        handler = JsonLinesHandler(directory / "pumped.jsonl")
        pump = HandlerPump([handler])
        for i in range(0, records, 100):
            pump.put(items[i : i + 100])
            pump.run(0.0)
        handler.close()

    def text_file() -> None:
        with (directory / "text.jsonl").open("a", encoding="utf-8") as f:
            for record in items:
                f.write(record_to_json(record) + "\n")
                f.flush()

    for case, action in (
        ("write, handler called directly", direct),
        ("write, through a pump", pumped),
        ("write, text file write+flush per line (before)", text_file),
    ):
        start = time.perf_counter()
        action()
        rate = records / (time.perf_counter() - start)
        print(f"{case}: {rate:,.0f} records/s")
        rows.append({"case": case, "records": records, "per_s": rate})
    return rows


def bench_pump(records: int) -> list[dict[str, object]]:
    """
    Push C{records} deliveries through a pump to a null handler, 100 per
    turn, and the same through a plain loop.
    """
    items = [Delivery(i, "a", i, b"x") for i in range(1, records + 1)]
    turns = [items[i : i + 100] for i in range(0, records, 100)]
    handler = Null()
    errors = 0
    start = time.perf_counter()
    for turn in turns:
        for record in turn:
            # As the node called its handlers before the pump.
            try:
                handler.deliver(record)
            except Exception:
                errors += 1
    plain = time.perf_counter() - start
    pump = HandlerPump([handler])
    start = time.perf_counter()
    passed = 0
    for turn in turns:
        pump.put(turn)
        passed += len(pump.run(0.0).records)
    pumped = time.perf_counter() - start
    if passed != records:
        raise SystemExit(f"the pump passed on {passed} of {records} records")
    print(
        f"pump: {records / pumped:,.0f} records/s through the pump,"
        f" {records / plain:,.0f} records/s in a plain loop;"
        f" {(pumped - plain) / records * 1e9:.0f} ns more per record"
    )
    return [
        {"case": "pump", "records": records, "per_s": records / pumped},
        {"case": "plain loop", "records": records, "per_s": records / plain},
    ]


def main(argv: list[str] | None = None) -> int:
    """
    Run the benchmark and write its figures.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "jsonl.json",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        rows = bench_open(directory, args.lines, args.repeat)
        rows.extend(bench_write(directory, args.records))
        rows.extend(bench_pump(args.records))
        for leftover in directory.iterdir():
            os.remove(leftover)
    write_results(args.out, "jsonl", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
