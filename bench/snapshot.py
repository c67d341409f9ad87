"""
State transfer over real processes: a 3-member group of C{twistd -n isis}
members, each with the kvstore example's store as a state handler
(C{--handler kvstore:handler}) beside its C{jsonl:} log, is filled with
C{--mib} MiB of values through the client APIs; then member c is killed
with SIGKILL and started again with the same command, empty, while a and b
go on multicasting at C{--rate} a second each.

    .venv/bin/python bench/snapshot.py --mib 100

It measures:

  - the restore: from c's restart to its log's C{restored the state}
    line (the process starting, being added back, the replay of what its
    jsonl file lacks, and the snapshot), and the bytes restored; and the
    transfer alone, from its log's C{was added to view} line on, with the
    rate it makes;
  - c's peak RSS (VmHWM) once it restored, and the giver's, against the
    state's size;
  - the group's throughput during the transfer: multicasts confirmed to
    a's client per second while c restores, against before c was killed;
  - the verdict: every member stopped at the same index logs its store's
    digest on close, and the three must be equal.

Prints the figures and writes C{bench/results/snapshot.json}.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from failover import Load, ProcessGroup, pause
from results import peak_rss_mb, write_results
from twisted.internet import task
from twisted.internet.defer import Deferred, gatherResults

from isis_twisted.tools.localcluster import poll

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
EXAMPLES = HERE.parent / "examples"

FAST = ["--heartbeat=0.2", "--suspect-after=2.0", "--flush-timeout=1.0"]


def command(key: str, value: str) -> bytes:
    # The kvstore example's command, without importing the example.
    return (
        b'{"op": "set", "key": "'
        + key.encode()
        + b'", "value": "'
        + value.encode()
        + b'"}'
    )


async def fill(group: ProcessGroup, mib: int, size: int) -> int:
    """
    Write C{mib} MiB of values of C{size} bytes, a third through each
    member, 1,000 at a time per member.

    @return: How many keys were written.
    """
    keys = (mib << 20) // size
    value = "v" * size
    names = group.names
    sent = 0
    while sent < keys:
        batch = []
        for n, name in enumerate(names):
            start = sent + n * 1000
            payloads = [
                command(f"k{i}", value) for i in range(start, min(start + 1000, keys))
            ]
            if payloads:
                batch.extend(group.clients[name].multicast_many(payloads))
        await gatherResults(batch)
        sent += 1000 * len(names)
    return keys


def rate(times: list[float], start: float, end: float) -> float:
    """
    Confirmations a second between C{start} and C{end}.
    """
    inside = [t for t in times if start <= t < end]
    return len(inside) / (end - start) if end > start else 0.0


def digest_line(log: str) -> tuple[int, str] | None:
    found = re.findall(r"kvstore: \d+ keys, applied (\d+), digest (\w+)", log)
    return (int(found[-1][0]), found[-1][1]) if found else None


async def snapshot_run(
    reactor: Any,
    mib: int,
    value: int,
    per_second: float,
    workdir: Path,
    before: float = 3.0,
) -> dict[str, Any]:
    """
    One run (see the module's docstring).

    @param before: Seconds of load before c is killed, to measure the
        throughput before.
    @return: The figures.
    """
    if str(EXAMPLES) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(EXAMPLES), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    group = ProcessGroup(
        reactor,
        3,
        workdir,
        [*FAST, "--handler=kvstore:handler", "--retain-bytes=16MiB"],
        group="snapshot",
    )
    row: dict[str, Any] = {"mib": mib, "value_bytes": value}
    try:
        await group.start()
        keys = await fill(group, mib, value)
        row["keys"] = keys
        print(f"filled {keys:,} keys of {value} B", file=sys.stderr)
        load = Load(reactor, {n: group.clients[n] for n in "ab"}, per_second)
        load.start()
        # A measuring window, not a synchronisation.
        await pause(reactor, before)
        before_end = reactor.seconds()
        confirmed_before = rate(
            load.members["a"].answered_at, before_end - before / 2, before_end
        )
        giver_rss_before = peak_rss_mb(group.processes["a"].transport.pid)  # type: ignore[union-attr]
        await group.kill("c")
        await poll(
            reactor,
            _view_of(group, ["a", "b"]),
            30.0,
            "a and b to go on without c",
        )
        started = reactor.seconds()
        await group.restart("c")
        restored: list[str] = []
        added: list[float] = []

        async def done() -> bool:
            log = group.log("c")
            if not added and "was added to view" in log:
                added.append(reactor.seconds())
            found = re.findall(
                r"restored the state of \d+ handler\(s\) from '(\w)': (\d+) bytes",
                log,
            )
            restored[:] = list(found[-1]) if found else []
            return bool(found)

        await poll(reactor, done, 600.0, "c to restore its state")
        ended = reactor.seconds()
        row["restore_s"] = round(ended - started, 2)
        row["restored_bytes"] = int(restored[1])
        # From c's log saying it was added (polled every 50 ms) to its
        # restore: the replay its jsonl file lacks, then the snapshot.
        row["transfer_s"] = round(ended - (added[0] if added else started), 2)
        row["transfer_mb_per_s"] = round(
            row["restored_bytes"] / 1e6 / max(row["transfer_s"], 0.05), 1
        )
        row["giver"] = restored[0]
        row["during"] = round(rate(load.members["a"].answered_at, started, ended), 1)
        row["before"] = round(confirmed_before, 1)
        row["rate_per_member"] = per_second
        row["joiner_peak_rss_mb"] = round(
            peak_rss_mb(group.processes["c"].transport.pid),  # type: ignore[union-attr]
            1,
        )
        row["giver_peak_rss_mb"] = round(
            peak_rss_mb(group.processes[restored[0]].transport.pid),  # type: ignore[union-attr]
            1,
        )
        row["giver_peak_rss_before_mb"] = round(giver_rss_before, 1)
        await poll(
            reactor, _view_of(group, ["a", "b", "c"]), 60.0, "c back in the view"
        )
        load.stop()
        await poll(reactor, _settled(group, load), 60.0, "everything delivered")
        for name in group.names:
            group.signal(name, signal.SIGTERM)
        for name in group.names:
            await group.processes[name].ended
        digests = {n: digest_line(group.log(n)) for n in group.names}
        row["digests"] = {n: d[1] if d else None for n, d in digests.items()}
        row["identical"] = (
            len({d for d in digests.values()}) == 1 and None not in digests.values()
        )
    finally:
        await group.stop()
    return row


async def run(reactor: Any, args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="isis-snapshot-"))
    row = await snapshot_run(reactor, args.mib, args.value, args.rate, workdir)
    print(
        f"{row['mib']} MiB ({row['keys']:,} keys): restored {row['restored_bytes']:,}"
        f" bytes from {row['giver']} in {row['restore_s']} s (restart included;"
        f" {row['transfer_s']} s from being added, {row['transfer_mb_per_s']} MB/s);"
        f" peak RSS joiner {row['joiner_peak_rss_mb']} MiB, giver"
        f" {row['giver_peak_rss_mb']} MiB (before: {row['giver_peak_rss_before_mb']});"
        f" a's confirmations/s during {row['during']}, before {row['before']};"
        f" stores identical: {row['identical']}"
    )
    write_results(args.out / "snapshot.json", "snapshot", [row])
    return 0 if row["identical"] else 1


def _view_of(group: ProcessGroup, names: list[str]) -> Any:
    async def probe() -> bool:
        said = await group.statuses(names)
        return all(
            s["state"] == "normal" and s["view_members"] == names for s in said.values()
        )

    return probe


def _settled(group: ProcessGroup, load: Load) -> Any:
    async def probe() -> bool:
        if not load.answered(["a", "b"]):
            return False
        said = await group.statuses(group.names)
        return len({s["delivered"] for s in said.values()}) == 1

    return probe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--mib", type=int, default=100, help="state size, MiB")
    parser.add_argument("--value", type=int, default=1024, help="value size, bytes")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="multicasts/s from a and b each"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    async def go(reactor: Any) -> None:
        code = await run(reactor, args)
        if code:
            raise SystemExit(code)

    task.react(lambda reactor: Deferred.fromCoroutine(go(reactor)))
    return 0


if __name__ == "__main__":
    main()
