"""
The side-by-side benchmark suite: real groups of processes on 127.0.0.1.

For every group size and payload it runs, one after the other on the same
machine:

  - raw: the same node, transport, framing and batching, with an engine
    that delivers every message the moment it arrives (no ordering): the
    ceiling of this stack;
  - ordered: isis-twisted's ordered multicast;
  - pysyncobj: PySyncObj (Raft in Python), every member appending to a
    replicated list, batched (group sizes in --pysyncobj-nodes).

Every member generates its own load at saturation (as fast as back-pressure
allows).  Then: a fixed-rate run for latency, runs through the client API
(twistd nodes, one client process per node) and, beside the first of them
at 100 B, through the HTTP API (batched POSTs; its throughput over the
client API's is written too), and a memory run that compares
peak RSS after 100,000 and 2,000,000 messages; last, catching up
(C{rejoin.py}: a restarted member replaying 100,000 and 1,000,000
deliveries and a new member joining with C{--join}; C{snapshot.py}: a
100 MiB state restored by snapshot), each as its own process, whose tables
go at the end of results.md.  Every ordered and PySyncObj
run's delivery histories go through the history checker: a run that broke
a guarantee is a failure, however fast.

Writes docs/benchmarks/results.json, results.md and (with matplotlib) PNG
charts.  Run with the bench environment: ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench_node import ORDER_RECORD
from latency import LatencyHistogram
from results import peak_rss_mb, write_results

from isis_twisted.app.send import DEFAULT_WINDOW as DEFAULT_SEND_WINDOW
from isis_twisted.core.checker import Multicast, check
from isis_twisted.core.engine import Delivery
from isis_twisted.tools.localcluster import NAMES, TWISTD
from isis_twisted.tools.testing import free_ports

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks"

#: Guarantees whose breach fails a PySyncObj run.  Raft promises one order
#: of committed entries, not FIFO for a member's pipelined appends (a
#: refused append is offered again, behind later ones), so FIFO and
#: causality are reported for it, not required.
RAFT_PROMISES = ("index", "integrity", "agreement", "validity", "total order")


class BenchmarkError(Exception):
    """
    A member failed, or a run's histories broke a guarantee.
    """


class Progress:
    """
    Prints which run is next, how far the suite is, and about how long the
    rest will take.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def next(self, what: str) -> None:
        """
        Say that the run described by C{what} starts.
        """
        elapsed = time.monotonic() - self.started
        eta = ""
        if self.done:
            left = elapsed / self.done * (self.total - self.done)
            eta = f", about {left:.0f} s left"
        self.done += 1
        print(
            f"[{self.done}/{self.total}, {elapsed:.0f} s{eta}] {what}",
            file=sys.stderr,
            flush=True,
        )


Started = tuple[subprocess.Popen[bytes], Path]


def _wait(started: Sequence[Started], what: str, timeout: float) -> None:
    """
    Wait for every process; on the first that fails, or at C{timeout},
    kill the rest and raise L{BenchmarkError} with what it said.

    The processes' standard error goes to files (L{_start}), so that none
    of them blocks on a full pipe while another is waited for.
    """
    procs = [proc for proc, _ in started]
    deadline = time.monotonic() + timeout
    try:
        while True:
            codes = [proc.poll() for proc in procs]
            for (_, err), code in zip(started, codes, strict=True):
                if code:
                    said = err.read_text(errors="replace")
                    raise BenchmarkError(f"a {what} member failed:\n{said}")
            if all(code == 0 for code in codes):
                return
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{what} members still running after {timeout} s")
            time.sleep(0.05)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _start(command: list[str], stderr: Path) -> Started:
    """
    Start C{command} with its standard error in the file C{stderr}.
    """
    with stderr.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    return proc, stderr


def run_members(
    system: str,
    nodes: int,
    payload: int,
    messages: int,
    rate: float,
    work: Path,
    profile: Path | None = None,
    timing: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """
    Start one process per member of a C{system} group, wait for all of
    them, and return their figures.

    @param system: C{"raw"}, C{"ordered"}, C{"pysyncobj"} (appending to
        PySyncObj's replicated list) or C{"pysyncobj-count"} (to a count).
    @param messages: Multicasts (or appends) per member.
    @param rate: Multicasts per second per member, or 0 for saturation.
    @param profile: A directory for a pyinstrument profile of member "a".
    @param timing: More bench_node options (C{--heartbeat},
        C{--suspect-after}) for our members.
    @raise BenchmarkError: If a member failed.
    """
    names = list(NAMES[:nodes])
    ports = dict(zip(names, free_ports(nodes), strict=True))
    procs = []
    for name in names:
        common = [
            f"--id={name}",
            f"--port={ports[name]}",
            f"--nodes={nodes}",
            f"--payload={payload}",
            f"--messages={messages}",
            f"--out={work / f'{name}.json'}",
        ]
        if system.startswith("pysyncobj"):
            others = ",".join(str(ports[p]) for p in names if p != name)
            command = [
                sys.executable,
                str(HERE / "pysyncobj_node.py"),
                *common,
                f"--peer-ports={others}",
                f"--state={'count' if system == 'pysyncobj-count' else 'list'}",
            ]
        else:
            peers = ",".join(f"{p}={ports[p]}" for p in names if p != name)
            command = [
                sys.executable,
                str(HERE / "bench_node.py"),
                *common,
                f"--peers={peers}",
                f"--mode={system}",
                f"--rate={rate}",
                *timing,
            ]
            if profile is not None and name == "a":
                profile.mkdir(parents=True, exist_ok=True)
                where = profile / f"{system}-n{nodes}-{payload}B-r{rate:g}.txt"
                command.append(f"--profile={where}")
        procs.append(_start(command, work / f"{name}.err"))
    _wait(procs, system, 1800)
    return [json.loads((work / f"{n}.json").read_text()) for n in names]


def read_order(path: Path, names: list[str]) -> list[Delivery]:
    """
    Read a member's binary C{.order} file as delivery records (without
    payloads: every payload in a run is the same).
    """
    senders = sorted(names)
    data = path.read_bytes()
    return [
        Delivery(i, senders[s], clock, b"", None if after < 0 else after)
        for i, (s, clock, after) in enumerate(ORDER_RECORD.iter_unpack(data), 1)
    ]


def check_run(
    system: str, nodes: int, work: Path, messages: int | None = None
) -> dict[str, Any]:
    """
    Check a run's delivery histories.

    @param messages: How many appends each PySyncObj member made (numbered
        from 1), so that one lost everywhere is found; if not given, what
        anyone applied is taken as all that was sent.
    @return: The verdict: C{ok}, and for PySyncObj which of the guarantees
        it does not promise were broken.
    @raise BenchmarkError: If a guarantee the system promises was broken.
    """
    names = list(NAMES[:nodes])
    if system == "ordered":
        histories = {n: read_order(work / f"{n}.order", names) for n in names}
        verdict = check(histories)
        if not verdict.ok:
            raise BenchmarkError(f"the ordered run broke:\n{verdict.summary()}")
        return {"ok": True, "checked": sum(len(h) for h in histories.values())}
    lists = {n: json.loads((work / f"{n}.order").read_text()) for n in names}
    # A Raft client offers again an append whose fate a leader change hid,
    # and PySyncObj then and again commits it twice: at-least-once, as
    # without client sessions.  Duplicates are counted, dropped (as an
    # application would, by id) and the rest is checked.
    duplicates = 0
    histories = {}
    for n, items in lists.items():
        seen: set[tuple[str, int]] = set()
        history: list[Delivery] = []
        extra = 0
        for s, seq in items:
            if (s, seq) in seen:
                extra += 1
                continue
            seen.add((s, seq))
            history.append(Delivery(len(history) + 1, s, seq, b"", None))
        histories[n] = history
        duplicates = max(duplicates, extra)
    if messages is None:
        sent = {(s, seq) for items in lists.values() for s, seq in items}
    else:
        sent = {(n, seq) for n in names for seq in range(1, messages + 1)}
    verdict = check(histories, [Multicast(s, seq, b"") for s, seq in sorted(sent)])
    broken = {v.guarantee for v in verdict.violations}
    if broken & set(RAFT_PROMISES):
        raise BenchmarkError(f"the PySyncObj run broke:\n{verdict.summary()}")
    return {
        "ok": True,
        "checked": sum(len(h) for h in histories.values()),
        "duplicates": duplicates,
        "not_promised_but_broken": sorted(broken),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """
    One group's figures from its members': means per node, and the latency
    of all members' messages together.
    """
    n = len(rows)
    latency = LatencyHistogram()
    for r in rows:
        latency.merge(r["latency_buckets"], r["latency_max_s"])

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows]
        return None if None in values else sum(values) / n

    return {
        "delivered_min": min(r["delivered"] for r in rows),
        "deliveries_per_s_per_node": mean("deliveries_per_s"),
        "mb_per_s_per_node": mean("mb_per_s"),
        "latency_ms": latency.summary(),
        "latency_cdf": latency.cdf(),
        "frames_per_multicast": mean("frames_per_multicast"),
        "bytes_per_multicast": mean("bytes_per_multicast"),
        "cpu_s_per_1000": mean("cpu_s_per_1000"),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
        "wall_s": max(r["wall_s"] for r in rows),
        # A member's own failure detector, for our runs (none fails, so any
        # suspicion is a false one).
        "suspicions": sum(r.get("suspicions", 0) for r in rows),
        "view_changes": max(r.get("view_changes", 0) for r in rows),
    }


def one_run(
    kind: str,
    system: str,
    nodes: int,
    payload: int,
    messages: int,
    rate: float = 0.0,
    profile: Path | None = None,
    timing: Sequence[str] = (),
) -> dict[str, Any]:
    """
    Run, check and summarise one group.

    @param timing: See L{run_members}.
    """
    with tempfile.TemporaryDirectory(prefix="isis-bench-") as tmp:
        work = Path(tmp)
        rows = run_members(
            system, nodes, payload, messages, rate, work, profile, timing
        )
        verdict: dict[str, Any] | None = None
        if system != "raw":
            try:
                verdict = check_run(system, nodes, work, messages)
            except BenchmarkError as e:
                # Keep the figures: a run that broke a guarantee is shown
                # as failed beside what it measured.
                verdict = {"ok": False, "error": str(e)}
    return {
        "kind": kind,
        "system": system,
        "nodes": nodes,
        "payload": payload,
        "messages_per_member": messages,
        "rate": rate,
        **summarise(rows),
        "check": verdict,
    }


def client_run(
    nodes: int,
    payload: int,
    messages: int,
    window: int,
    clients: int = 1,
    isis_send: bool = False,
    http_batch: int = 0,
) -> dict[str, Any]:
    """
    Run C{nodes} C{twistd isis} processes and drive each through its client
    API (or its HTTP API) from its own client process; check the order the
    clients saw.

    @param clients: How many connections of each client process multicast
        at once (sharing the window).
    @param isis_send: Multicast through an C{isis send} process per member,
        reading lines, instead.
    @param http_batch: If not 0, go through the HTTP API instead
        (C{bench/http_driver.py}), with POSTs of this many messages; the
        run's kind is then C{"http"}.
    """
    names = list(NAMES[:nodes])
    ports = free_ports(2 * nodes)
    peer_ports = dict(zip(names, ports, strict=False))
    client_ports = dict(zip(names, ports[nodes:], strict=True))
    if http_batch:
        listen, driver = "--http-port", ["http_driver.py", f"--batch={http_batch}"]
        what = "HTTP API"
    else:
        listen, driver = "--client-port", ["client_driver.py"]
        driver += [f"--clients={clients}", *(["--isis-send"] if isis_send else [])]
        what = "client API"
    with tempfile.TemporaryDirectory(prefix="isis-bench-client-") as tmp:
        work = Path(tmp)
        servers = {}
        for name in names:
            peers = ",".join(
                f"{p}=127.0.0.1:{peer_ports[p]}" for p in names if p != name
            )
            command = [
                *TWISTD,
                f"--logfile={work / f'{name}.log'}",
                "isis",
                f"--id={name}",
                f"--port={peer_ports[name]}",
                f"{listen}={client_ports[name]}",
                f"--peers={peers}",
            ]
            servers[name] = _start(command, work / f"{name}-node.err")
        try:
            drivers = [
                _start(
                    [
                        sys.executable,
                        str(HERE / driver[0]),
                        *driver[1:],
                        f"--node={client_ports[name]}",
                        f"--nodes={nodes}",
                        f"--payload={payload}",
                        f"--messages={messages}",
                        f"--window={window}",
                        f"--out={work / f'{name}.json'}",
                    ],
                    work / f"{name}-client.err",
                )
                for name in names
            ]
            _wait(drivers, what, 1800)
            usage = {name: _process_usage(servers[name][0].pid) for name in names}
        finally:
            for proc, _ in servers.values():
                proc.send_signal(signal.SIGTERM)
            for proc, _ in servers.values():
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        rows = [json.loads((work / f"{n}.json").read_text()) for n in names]
        verdict = check_run("ordered", nodes, work)
    summary = summarise(rows)
    delivered = verdict["checked"] / nodes
    # The nodes' own CPU and memory, read from /proc before they stopped.
    summary["node_cpu_s_per_1000"] = (
        sum(u["cpu_s"] for u in usage.values()) / nodes / delivered * 1000
    )
    summary["node_peak_rss_mb"] = max(u["peak_rss_mb"] for u in usage.values())
    extra: dict[str, Any] = (
        {"batch": http_batch, "window": window}
        if http_batch
        else {"clients": clients, "isis_send": isis_send}
    )
    return {
        "kind": "http" if http_batch else "client",
        "system": "ordered",
        **extra,
        "nodes": nodes,
        "payload": payload,
        "messages_per_member": messages,
        "rate": 0.0,
        **summary,
        "check": verdict,
    }


def _process_usage(pid: int) -> dict[str, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return {"cpu_s": cpu, "peak_rss_mb": peak_rss_mb(pid)}


def messages_for(payload: int, messages: int, budget: int) -> int:
    """
    Multicasts per member for C{payload}: C{messages}, or fewer, so that a
    member sends at most C{budget} bytes of payload.
    """
    return max(100, min(messages, budget // max(1, payload)))


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """
    Every run of the suite, in order, as (description, thunk).
    """
    runs: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    timing = [
        f"--{name}={value}"
        for name, value in (
            ("heartbeat", args.heartbeat),
            ("suspect-after", args.suspect_after),
        )
        if value is not None
    ]
    for nodes in args.nodes:
        for payload in args.payloads:
            count = messages_for(payload, args.messages, args.budget)
            systems = ["raw", "ordered"]
            if args.pysyncobj and nodes in args.pysyncobj_nodes:
                systems += ["pysyncobj", "pysyncobj-count"]
            for system in systems:
                pcount = count
                if system.startswith("pysyncobj"):
                    pcount = messages_for(payload, args.pysyncobj_messages, args.budget)
                runs.append(
                    (
                        f"saturation: {system}, n={nodes}, {payload} B,"
                        f" {pcount:,} per member",
                        partial(
                            one_run,
                            "saturation",
                            system,
                            nodes,
                            payload,
                            pcount,
                            0.0,
                            None if system.startswith("pysyncobj") else args.profile,
                            timing,
                        ),
                    )
                )
    for nodes in args.nodes:
        count = int(args.rate * args.rate_seconds)
        for system in ("raw", "ordered"):
            runs.append(
                (
                    f"fixed rate: {system}, n={nodes},"
                    f" {args.rate:,.0f} msg/s per member",
                    partial(
                        one_run,
                        "rate",
                        system,
                        nodes,
                        100,
                        count,
                        args.rate,
                        timing=timing,
                    ),
                )
            )
    if args.client_messages:
        for payload in args.client_payloads:
            count = messages_for(payload, args.client_messages, args.budget)
            for clients in args.client_clients:
                if clients > 1 and payload != 100:
                    continue
                runs.append(
                    (
                        f"client API: n=3, {payload} B, {clients} client(s) per"
                        f" member, {count:,} per member",
                        partial(
                            client_run, 3, payload, count, args.client_window, clients
                        ),
                    )
                )
                if payload == 100 and clients == 1 and args.http_batch:
                    # Right after the AMP run it is set beside (add_ratios).
                    runs.append(
                        (
                            f"HTTP API: n=3, {payload} B, POSTs of"
                            f" {args.http_batch}, {count:,} per member",
                            partial(
                                client_run,
                                3,
                                payload,
                                count,
                                args.http_window or args.client_window,
                                http_batch=args.http_batch,
                            ),
                        )
                    )
        runs.append(
            (
                f"client API: isis send, n=3, 100 B, {args.client_messages:,}"
                " per member",
                partial(
                    client_run,
                    3,
                    100,
                    args.client_messages,
                    args.send_window,
                    isis_send=True,
                ),
            )
        )
    for total in args.memory:
        per = math.ceil(total / 3)
        runs.append(
            (
                f"memory: ordered, n=3, 100 B, {3 * per:,} messages in all",
                partial(one_run, "memory", "ordered", 3, 100, per),
            )
        )
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the suite and write its results.

    @return: The exit status: 1 if any run failed.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument(
        "--payloads", type=int, nargs="+", default=[16, 100, 1024, 65536]
    )
    parser.add_argument("--messages", type=int, default=20000, help="per member")
    parser.add_argument(
        "--budget",
        type=int,
        default=32 << 20,
        help="most payload bytes a member sends in one run (caps large payloads)",
    )
    parser.add_argument("--no-pysyncobj", dest="pysyncobj", action="store_false")
    parser.add_argument("--pysyncobj-nodes", type=int, nargs="+", default=[3])
    parser.add_argument("--pysyncobj-messages", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=1000.0, help="per member")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--client-messages", type=int, default=20000)
    parser.add_argument("--client-window", type=int, default=1000)
    parser.add_argument(
        "--send-window",
        type=int,
        default=DEFAULT_SEND_WINDOW,
        help="isis send --window for the isis send run",
    )
    parser.add_argument(
        "--client-payloads", type=int, nargs="+", default=[16, 100, 65536]
    )
    parser.add_argument(
        "--http-batch",
        type=int,
        default=250,
        help="messages per POST in the HTTP API run, beside the client API run"
        " of 100 B and 1 client (0 to skip it)",
    )
    parser.add_argument(
        "--http-window",
        type=int,
        help="messages in flight per HTTP driver (default: --client-window)",
    )
    parser.add_argument(
        "--client-clients",
        type=int,
        nargs="+",
        default=[1, 20],
        help="connections per client process (the runs beyond 1: 100 B only)",
    )
    parser.add_argument(
        "--only",
        help="run only the runs whose description matches this regular expression",
    )
    parser.add_argument(
        "--memory",
        type=int,
        nargs="*",
        default=[100_000, 2_000_000],
        help="messages in all, for the memory runs (n=3)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        help="our members' heartbeat, seconds (default: the node's)",
    )
    parser.add_argument(
        "--suspect-after",
        type=float,
        help="our members' --suspect-after, seconds (default: the node's); a"
        " suspicion in these runs is a false one",
    )
    parser.add_argument(
        "--catch-up",
        type=int,
        nargs="*",
        default=[100_000, 1_000_000],
        help="deliveries a restarted member lacks, for bench/rejoin.py (the"
        " first also for a member that joins); none to skip",
    )
    parser.add_argument(
        "--snapshot-mib",
        type=int,
        default=100,
        help="MiB of state for bench/snapshot.py (0 to skip)",
    )
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--no-charts", dest="charts", action="store_false")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write pyinstrument profiles of member a of each saturation run here",
    )
    args = parser.parse_args(argv)
    if args.pysyncobj:
        try:
            import pysyncobj  # noqa: F401
        except ImportError:
            parser.error(
                "PySyncObj is not installed here: run the suite with the bench"
                " environment (make bench), or pass --no-pysyncobj"
            )
    runs = plan(args)
    if args.only:
        wanted = re.compile(args.only)
        runs = [(what, run) for what, run in runs if wanted.search(what)]
    progress = Progress(len(runs))
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for what, run in runs:
        progress.next(what)
        try:
            row = run()
        except BenchmarkError as e:
            failures.append(f"{what}: {e}")
            print(f"  FAILED: {e}", file=sys.stderr, flush=True)
            continue
        results.append(row)
        print(f"  {one_line(row)}", file=sys.stderr, flush=True)
        if row["check"] is not None and not row["check"]["ok"]:
            failures.append(f"{what}: {row['check']['error']}")
            print(f"  FAILED: {row['check']['error']}", file=sys.stderr, flush=True)
    add_ratios(results)
    for sentence in http_ratios(results):
        print(sentence.replace("**", ""), file=sys.stderr, flush=True)
    catching = [] if args.only else catch_up(args, failures)
    import report

    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out / "results.json", "suite", results)
    table = markdown(results, failures) + "".join(catching)
    (args.out / "results.md").write_text(table)
    print(table)
    if args.charts:
        for chart in report.charts(results, args.out):
            print(f"wrote {chart}")
    if failures:
        print(f"{len(failures)} run(s) failed", file=sys.stderr)
        return 1
    return 0


def catch_up(args: argparse.Namespace, failures: list[str]) -> list[str]:
    """
    Run the catching-up benchmarks, each in a process of its own, and give
    their tables for results.md (their own files are in bench/results/).
    """
    here = Path(__file__).resolve().parent
    sections = []
    runs = []
    if args.catch_up:
        runs.append(
            (
                "catch-up: rejoin by replay and a member that joins",
                [
                    "rejoin.py",
                    "--lacking",
                    *map(str, args.catch_up),
                    "--join",
                    str(args.catch_up[0]),
                ],
                here / "results" / "rejoin.md",
            )
        )
    if args.snapshot_mib:
        runs.append(
            (
                f"catch-up: {args.snapshot_mib} MiB restored by snapshot",
                ["snapshot.py", "--mib", str(args.snapshot_mib)],
                here / "results" / "snapshot.json",
            )
        )
    for what, command, output in runs:
        print(f"{what} ...", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, str(here / command[0]), *command[1:]], cwd=here
        )
        if done.returncode:
            failures.append(f"{what}: exit status {done.returncode}")
            continue
        text = output.read_text()
        if output.suffix == ".json":
            text = f"```json\n{text}```\n"
        sections.append(f"\n## {what[len('catch-up: ') :]}\n\n{text}")
    return sections


def one_line(row: dict[str, Any]) -> str:
    """
    A run's main figures on one line, for the progress display.
    """
    lat = row["latency_ms"]
    line = (
        f"{row['deliveries_per_s_per_node']:,.0f} deliveries/s per node,"
        f" {row['mb_per_s_per_node']:.2f} MB/s, latency p50 {lat['p50']:.2f}"
        f" p99 {lat['p99']:.2f} ms, peak RSS {row['peak_rss_mb']:.0f} MB"
    )
    if row.get("suspicions") or row.get("view_changes"):
        line += (
            f", FALSE SUSPICIONS {row['suspicions']},"
            f" view changes {row['view_changes']}"
        )
    return line


def add_ratios(results: list[dict[str, Any]]) -> None:
    """
    Give every saturation run of ours its throughput over raw's and over
    PySyncObj's for the same n and payload.
    """
    by = {
        (r["system"], r["nodes"], r["payload"]): r["deliveries_per_s_per_node"]
        for r in results
        if r["kind"] == "saturation"
    }
    for r in results:
        if r["kind"] != "saturation" or r["system"] != "ordered":
            continue
        for other in ("raw", "pysyncobj", "pysyncobj-count"):
            base = by.get((other, r["nodes"], r["payload"]))
            if base:
                r[f"over_{other}"] = r["deliveries_per_s_per_node"] / base
    # The HTTP API runs, over the client API (AMP) run beside them: one
    # client process per member, one connection each.
    amp = {
        (r["nodes"], r["payload"]): r["deliveries_per_s_per_node"]
        for r in results
        if r["kind"] == "client" and r.get("clients", 1) == 1 and not r["isis_send"]
    }
    for r in results:
        base = amp.get((r["nodes"], r["payload"]))
        if r["kind"] == "http" and base:
            r["over_amp"] = r["deliveries_per_s_per_node"] / base


def http_ratios(results: Sequence[dict[str, Any]]) -> list[str]:
    """
    A sentence for each HTTP API run that L{add_ratios} set beside a client
    API run: both throughputs and their ratio.
    """
    return [
        f"HTTP API over client API (AMP), n = {r['nodes']}, {r['payload']} B,"
        f" POSTs of {r['batch']}: {r['deliveries_per_s_per_node']:,.0f} /"
        f" {r['deliveries_per_s_per_node'] / r['over_amp']:,.0f} deliveries/s"
        f" per node = **{r['over_amp']:.2f}**."
        for r in results
        if "over_amp" in r
    ]


def markdown(results: Sequence[dict[str, Any]], failures: Sequence[str]) -> str:
    """
    L{report.markdown}'s table of C{results}, with the HTTP API runs (whose
    kind the report does not know) as rows of their own after the others,
    and their ratios to the client API's.
    """
    import report

    http = [r for r in results if r["kind"] == "http"]
    table = report.markdown([r for r in results if r["kind"] != "http"], failures)
    if not http:
        return table
    # Drawn as client API runs, then named for what they are.
    theirs = report.markdown([{**r, "kind": "client"} for r in http]).split("\n")
    rows = [
        line.replace("| client API |", f"| HTTP API, POSTs of {r['batch']} |", 1)
        for line, r in zip(theirs[2 : 2 + len(http)], http, strict=True)
    ]
    notes = [
        line.replace("Client API run:", "HTTP API run:", 1)
        for line in theirs[2 + len(http) :]
        if line
    ]
    head, _, rest = table.partition("\n\n")
    ours = head.rstrip("\n").split("\n")
    # After the client API rows, if any, else at the end of the table.
    at = len(ours)
    for i, line in enumerate(ours):
        if line.startswith(("| client API", "| isis send")):
            at = i + 1
    lines = [*ours[:at], *rows, *ours[at:], ""]
    for note in [*notes, *http_ratios(http)]:
        lines += [note, ""]
    text = "\n".join(lines)
    return text + ("\n" + rest if rest else "")


if __name__ == "__main__":
    sys.exit(main())
