"""
Failover over real processes: a group of C{twistd -n isis} members under a
fixed load through their client APIs loses one member to C{kill -9}.

    .venv/bin/python bench/failover.py --nodes 3 5 --kills 5

For every group size, C{--kills} runs one after the other, each a fresh
group (the member killed goes round the names, so the view change's
coordinator is killed too).  Every member multicasts C{--rate} messages a
second through its own client API; after C{--before} seconds one member is
killed, and the run measures:

  - the delivery pause: from the kill to the first delivery at a survivor
    once the group resumed (the end of the longest silence after the kill,
    taken from when the survivors' own multicasts were confirmed), the
    longest over the survivors;
  - the flush time: first suspicion to the view installed, as the
    survivors measured it themselves (C{last_view_change_s} in their status:
    from the moment a member first suspected, or learned of a suspicion, to
    its install; the longest over the survivors); and the same seen from
    outside, by polling the survivors' status every 20 ms;
  - deliveries per second per survivor before the kill and after the new
    view (from one second after its install, once the backlog is through);
  - the verdict of L{judge} over every member's C{jsonl:} log.

Prints a table and writes C{bench/results/failover.json} and
C{failover.md}.  The same L{ProcessGroup}, L{Load} and L{judge} drive the
real-process membership tests (tests/test_processes_membership.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from results import write_results
from twisted.internet import task
from twisted.internet.defer import Deferred, gatherResults
from twisted.python.failure import Failure

from isis_twisted.api.client import ClientProtocol, connect
from isis_twisted.core.checker import (
    CheckResult,
    Multicast,
    Violation,
    check,
    check_uniformity,
    load_jsonl,
)
from isis_twisted.core.engine import Delivery
from isis_twisted.tools.localcluster import (
    NAMES,
    NodeProcess,
    peers_connected,
    poll,
    stop_processes,
    twistd_command,
)
from isis_twisted.tools.testing import LinkProxy, free_ports, port_of

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"


async def pause(reactor: Any, seconds: float) -> None:
    """
    Wait C{seconds} of C{reactor}'s time (to let time pass, not to
    synchronise: what is awaited is polled for with L{poll}).
    """
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    await d


class ProcessGroup:
    """
    C{size} C{twistd -n isis} members on 127.0.0.1, each with a client
    connected to its client API and a C{jsonl:} log in C{workdir}.

    @ivar names: The members' names, C{a}, C{b}, ...
    @ivar processes: Every member's process, by name.
    @ivar clients: Every member's client, by name, once L{start} returned.
    @ivar proxies: With C{proxied}, the L{LinkProxy} every member dials
        every other through, by C{(dialer, dialed)}.
    @ivar http_ports: With C{http}, every member's HTTP API port, by name.
    """

    def __init__(
        self,
        reactor: Any,
        size: int,
        workdir: Path,
        options: Sequence[str] = (),
        proxied: bool = False,
        group: str = "failover",
        http: bool = False,
    ) -> None:
        """
        @param options: More C{twistd isis} options for every member.
        @param proxied: Route every link through a proxy of its own, so
            that links can be cut (L{cut}).
        @param http: Give every member an HTTP API (C{--http-port}), its
            port in L{http_ports}.
        """
        self.reactor = reactor
        self.names = list(NAMES[:size])
        self.workdir = workdir
        self.options = list(options)
        self.proxied = proxied
        self.group = group
        self.processes: dict[str, NodeProcess] = {}
        self.clients: dict[str, ClientProtocol] = {}
        self.proxies: dict[tuple[str, str], LinkProxy] = {}
        self._stopped = False
        self._commands: dict[str, list[str]] = {}
        self._client_ports: dict[str, int] = {}
        self._peer_ports: dict[str, int] = {}
        self.http = http
        self.http_ports: dict[str, int] = {}

    async def start(self, timeout: float = 60.0) -> None:
        """
        Start every member, connect a client to each and wait until every
        member has both connections to every other.
        """
        peer_ports: dict[str, int] = {}
        proxy_ports: dict[tuple[str, str], int] = {}
        if self.proxied:
            for src in self.names:
                for dst in self.names:
                    if src != dst:
                        proxy = LinkProxy(self.reactor, port_of(peer_ports, dst))
                        proxy_ports[(src, dst)] = await proxy.listen()
                        self.proxies[(src, dst)] = proxy
        # Chosen once the proxies hold their ports (as faults.py does).
        n = len(self.names)
        ports = free_ports((3 if self.http else 2) * n)
        peer_ports.update(zip(self.names, ports, strict=False))
        self._peer_ports = peer_ports
        self._client_ports = dict(zip(self.names, ports[n : 2 * n], strict=True))
        if self.http:
            self.http_ports = dict(zip(self.names, ports[2 * n :], strict=True))
        for name in self.names:
            self._commands[name] = twistd_command(
                name,
                self.names,
                peer_ports,
                self._client_ports[name],
                self.workdir,
                self.group,
                dial=(lambda s, d: proxy_ports[(s, d)]) if self.proxied else None,
                extra=[*self.options, *self._http_option(name)],
            )
            self._spawn(name)
        deadline = self.reactor.seconds() + timeout
        for name in self.names:
            await self._connect(name, deadline)

        async def connected() -> bool:
            answers: list[bool] = await gatherResults(
                [
                    Deferred.fromCoroutine(peers_connected(c))
                    for c in self.clients.values()
                ]
            )
            return all(answers)

        await poll(
            self.reactor,
            connected,
            max(1.0, deadline - self.reactor.seconds()),
            "every member to connect to every other",
        )
        # A member that started more than --suspect-after after the others
        # was left out before it was ever heard: a run that began so would
        # measure (or test) something else.
        started = await self.statuses(self.names)
        changed = {n: s["view_members"] for n, s in started.items() if s["view"]}
        if changed:
            raise RuntimeError(
                f"the group changed view while starting (its members started"
                f" further apart than --suspect-after): {changed}"
            )

    def _http_option(self, name: str) -> list[str]:
        if name not in self.http_ports:
            return []
        return [f"--http-port={self.http_ports[name]}"]

    def _spawn(self, name: str) -> None:
        proc = NodeProcess(name)
        command = self._commands[name]
        self.reactor.spawnProcess(
            proc, command[0], command, env=dict(os.environ), path=str(self.workdir)
        )
        self.processes[name] = proc

    async def _connect(self, name: str, deadline: float) -> None:
        """
        Connect a client to member C{name}'s client API, retrying until it
        listens or C{deadline}.
        """
        while True:
            proc = self.processes[name]
            if proc.ended.called:
                said = proc.output.decode(errors="replace")
                raise RuntimeError(f"member {name} exited at start:\n{said}")
            try:
                self.clients[name] = await connect(
                    self.reactor, str(self._client_ports[name])
                )
                return
            except Exception:
                if self.reactor.seconds() > deadline:
                    raise
                await pause(self.reactor, 0.1)

    async def add(
        self,
        name: str,
        via: Sequence[str],
        options: Sequence[str] = (),
        timeout: float = 60.0,
    ) -> None:
        """
        Start a new member C{name} that joins the running group with
        C{--join} through the members C{via} (not with C{proxied}), and
        connect a client to it.
        """
        peer, client = free_ports(2)
        self._peer_ports[name] = peer
        self._client_ports[name] = client
        contacts = ",".join(f"127.0.0.1:{self._peer_ports[v]}" for v in via)
        self._commands[name] = twistd_command(
            name,
            [name],
            self._peer_ports,
            client,
            self.workdir,
            self.group,
            extra=[*self.options, f"--join={contacts}", *options],
        )
        self.names.append(name)
        self._spawn(name)
        await self._connect(name, self.reactor.seconds() + timeout)

    async def restart(self, name: str, timeout: float = 60.0) -> None:
        """
        Start member C{name} again, after it ended, with the very command it
        was first started with, and connect a new client to it (in
        L{clients}, where a L{Load} made over them finds it).
        """
        if not self.processes[name].ended.called:
            raise RuntimeError(f"member {name} is still running")
        old = self.clients.pop(name, None)
        if old is not None:
            await old.close()
        self._spawn(name)
        await self._connect(name, self.reactor.seconds() + timeout)

    async def status(self, name: str) -> dict[str, Any]:
        """
        Member C{name}'s status, through its client API.
        """
        return dict(await self.clients[name].status())

    async def statuses(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """
        The status of every member in C{names}, asked all at once.
        """
        names = list(names)
        answers: list[dict[str, Any]] = await gatherResults(
            [Deferred.fromCoroutine(self.status(n)) for n in names]
        )
        return dict(zip(names, answers, strict=True))

    def signal(self, name: str, number: int) -> None:
        """
        Send member C{name} the signal C{number} (L{signal.SIGSTOP}, ...).
        """
        self.processes[name].transport.signalProcess(number)  # type: ignore[union-attr]

    async def kill(self, name: str) -> None:
        """
        Kill member C{name} with SIGKILL and wait until it is gone.
        """
        self.signal(name, signal.SIGKILL)
        await self.processes[name].ended

    def cut(self, side: Collection[str], other: Collection[str]) -> None:
        """
        Cut every link between a member of C{side} and one of C{other}, both
        ways (needs C{proxied}).
        """
        for (src, dst), proxy in self.proxies.items():
            if (src in side and dst in other) or (src in other and dst in side):
                proxy.cut()

    def histories(self) -> dict[str, list[Delivery]]:
        """
        Every member's deliveries so far, from its C{jsonl:} log.
        """
        return {n: load_jsonl(self.workdir / f"{n}.jsonl") for n in self.names}

    def log(self, name: str) -> str:
        """
        Member C{name}'s twistd log so far.
        """
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def stop(self) -> None:
        """
        Close the clients, stop every member still running (SIGCONT first,
        for one that was stopped) and close the proxies.  Once is enough:
        later calls do nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            for client in self.clients.values():
                await client.close()
            for proc in self.processes.values():
                if not proc.ended.called:
                    proc.transport.signalProcess(signal.SIGCONT)  # type: ignore[union-attr]
        finally:
            # Whatever happened above, no member outlives the run.
            await stop_processes(self.reactor, self.processes)
            for proxy in self.proxies.values():
                await proxy.close()


@attrs.define
class MemberLoad:
    """
    What one member's client sent and was told.

    @ivar sent: Multicasts made.
    @ivar in_flight: Made and not yet answered.
    @ivar failed: Answered with an error, by the error's class name.
    @ivar answered_at: When each confirmation came, in order.
    """

    name: str
    active: bool = True
    sent: int = 0
    in_flight: int = 0
    failed: dict[str, int] = attrs.Factory(dict)
    answered_at: list[float] = attrs.Factory(list)


class Load:
    """
    Multicasts from every member at a fixed rate through its client, and
    keeps what each client was told was delivered.

    A member whose calls go unanswered (its group is changing view, or it
    is blocked) has at most C{window} of them outstanding; what it owes
    meanwhile goes out once there is room.

    @ivar members: Every member's L{MemberLoad}, by name.
    @ivar confirmed: Every multicast confirmed to a client, as sent.
    """

    def __init__(
        self,
        reactor: Any,
        clients: Mapping[str, ClientProtocol],
        rate: float,
        window: int = 2000,
    ) -> None:
        """
        @param rate: Multicasts a second from each member.
        """
        self.reactor = reactor
        self.clients = clients
        self.rate = rate
        self.window = window
        self.members = {name: MemberLoad(name) for name in clients}
        self.confirmed: list[Multicast] = []
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = reactor
        self._started = 0.0

    def start(self) -> None:
        """
        Start sending from every member.
        """
        self._started = self.reactor.seconds()
        self._loop.start(0.01)

    def stop(self) -> None:
        """
        Stop sending; calls outstanding may still be answered.
        """
        if self._loop.running:
            self._loop.stop()

    def quiet(self, name: str) -> None:
        """
        Stop sending from member C{name} only.
        """
        self.members[name].active = False

    def answered(self, names: Iterable[str]) -> bool:
        """
        Whether every call made through the members C{names} was answered.
        """
        return all(self.members[n].in_flight == 0 for n in names)

    def owed(self) -> int:
        """
        How many multicasts each member should have made by now.
        """
        return int((self.reactor.seconds() - self._started) * self.rate)

    def sent_by(self, names: Iterable[str]) -> int:
        """
        How many multicasts the members C{names} made.
        """
        return sum(self.members[n].sent for n in names)

    def _tick(self) -> None:
        owed = self.owed()
        for m in self.members.values():
            if not m.active:
                continue
            room = self.window - m.in_flight
            for _ in range(min(owed - m.sent, room)):
                self._send(m)

    def _send(self, m: MemberLoad) -> None:
        payload = f"{m.name}-{m.sent}".encode()
        m.sent += 1
        m.in_flight += 1
        self.clients[m.name].multicast(payload).addCallbacks(
            self._confirmed,
            self._failed,
            callbackArgs=(m, payload),
            errbackArgs=(m,),
        )

    def _confirmed(self, record: Delivery, m: MemberLoad, payload: bytes) -> None:
        m.in_flight -= 1
        m.answered_at.append(self.reactor.seconds())
        self.confirmed.append(Multicast(record.sender, record.clock, payload))

    def _failed(self, failure: Failure, m: MemberLoad) -> None:
        m.in_flight -= 1
        kind = type(failure.value).__name__
        m.failed[kind] = m.failed.get(kind, 0) + 1


def judge(
    histories: Mapping[str, Sequence[Delivery]],
    departed: Collection[str],
    confirmed: Iterable[Multicast],
) -> CheckResult:
    """
    The verdict on a run in which the members C{departed} were killed,
    removed or left without a majority.

    The members that stay must keep every guarantee among themselves
    (total order, agreement, integrity, FIFO, causality, indices); every
    multicast confirmed to a client, through any member, must be delivered
    by each of them; and what a departed member delivered must be a prefix
    of what each of them delivered (uniform agreement).  With no member
    left, the longest history stands for the group's.

    This reads deliveries only; once C{jsonl:} logs carry views, the view
    checker (L{isis_twisted.core.viewcheck}) is to judge here instead.

    @param histories: Every member's deliveries, in order.
    @param departed: The members that did not stay.
    @param confirmed: What clients were told was delivered.
    """
    stay = {n: h for n, h in histories.items() if n not in departed}
    if not stay:
        longest = max(sorted(histories), key=lambda n: len(histories[n]))
        stay = {longest: histories[longest]}
    left = {n: h for n, h in histories.items() if n not in stay}
    base = check(stay)
    violations: list[Violation] = list(base.violations)
    violations.extend(
        check_uniformity(
            left, {n: [(r.sender, r.clock) for r in h] for n, h in stay.items()}
        )
    )
    confirmed = list(confirmed)
    for name, history in sorted(stay.items()):
        held = {(r.sender, r.clock): r.payload for r in history}
        missing = [m for m in confirmed if held.get((m.sender, m.clock)) != m.payload]
        if missing:
            first = missing[0]
            violations.append(
                Violation(
                    "validity",
                    name,
                    f"{len(missing)} multicasts confirmed to a client were not"
                    f" delivered here (the first: {first.sender}@{first.clock})",
                )
            )
    return CheckResult(
        nodes=tuple(sorted(histories)),
        messages=base.messages,
        deliveries=sum(len(h) for h in histories.values()),
        violations=tuple(violations),
    )


def resumed_after(times: Sequence[float], since: float) -> float:
    """
    When deliveries resumed after C{since}: the end of the longest gap
    between C{since} and the deliveries at C{times} that follow it (a few
    may still come just after a kill, from what was already held
    everywhere).

    @raise ValueError: If nothing was delivered after C{since}.
    """
    later = [t for t in times if t > since]
    if not later:
        raise ValueError("nothing was delivered after the kill")
    best, end, previous = -1.0, later[0], since
    for t in later:
        if t - previous > best:
            best, end = t - previous, t
        previous = t
    return end


async def failover_run(
    reactor: Any,
    nodes: int,
    victim: str,
    workdir: Path,
    rate: float,
    options: Sequence[str],
    before: float = 3.0,
    after: float = 3.0,
) -> dict[str, Any]:
    """
    One run: start the group, load it, kill C{victim}, measure, judge.

    @return: The run's figures (see the module's docstring).
    """
    group = ProcessGroup(reactor, nodes, workdir, options)
    survivors = [n for n in group.names if n != victim]
    try:
        await group.start()
        load = Load(reactor, group.clients, rate)
        load.start()
        await pause(reactor, 2.0)  # past the start's first burst
        t0, s0 = reactor.seconds(), await group.statuses(survivors)
        await pause(reactor, before)
        t1, s1 = reactor.seconds(), await group.statuses(survivors)
        load.quiet(victim)
        killed = reactor.seconds()
        group.signal(victim, signal.SIGKILL)
        suspected: float | None = None
        while True:
            now = reactor.seconds()
            seen = await group.statuses(survivors)
            if suspected is None and any(s["suspicions"] for s in seen.values()):
                suspected = now
            if all(s["view"] >= 1 and s["state"] == "normal" for s in seen.values()):
                installed = reactor.seconds()
                break
            if now > killed + 60:
                raise TimeoutError(f"no view without {victim} after 60 s: {seen}")
            await pause(reactor, 0.02)

        def caught_up() -> bool:
            # What was owed during the pause is sent and answered: from
            # here the survivors carry the load as it comes.
            owed, slack = load.owed(), rate / 20
            return all(
                owed - load.members[n].sent <= slack
                and load.members[n].in_flight <= slack
                for n in survivors
            )

        await poll(reactor, _true(caught_up), 60, "the survivors to catch up")
        caught = reactor.seconds()
        await pause(reactor, 0.5)
        t2, s2 = reactor.seconds(), await group.statuses(survivors)
        await pause(reactor, after)
        t3, s3 = reactor.seconds(), await group.statuses(survivors)
        load.stop()
        await poll(
            reactor,
            _true(lambda: load.answered(survivors)),
            60,
            "the survivors' multicasts to be answered",
        )

        async def alike() -> bool:
            seen = await group.statuses(survivors)
            return len({s["delivered"] for s in seen.values()}) == 1

        await poll(reactor, alike, 60, "the survivors to deliver alike")
        final = await group.statuses(survivors)
    finally:
        await group.stop()
    verdict = judge(group.histories(), {victim}, load.confirmed)

    def per_s(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> float:
        return float(statistics.mean(b[n]["delivered"] - a[n]["delivered"] for n in a))

    resumed = max(resumed_after(load.members[n].answered_at, killed) for n in survivors)
    return {
        "nodes": nodes,
        "victim": victim,
        "rate": rate,
        "options": list(options),
        "pause_s": resumed - killed,
        "kill_to_suspicion_s": None if suspected is None else suspected - killed,
        "flush_s": max(final[n]["last_view_change_s"] for n in survivors),
        "flush_seen_s": None if suspected is None else installed - suspected,
        "view_changes": max(final[n]["view_changes"] for n in survivors),
        "catch_up_s": caught - installed,
        "before_per_s": per_s(s0, s1) / (t1 - t0),
        "after_per_s": per_s(s2, s3) / (t3 - t2),
        "survivor_failures": sum(
            sum(load.members[n].failed.values()) for n in survivors
        ),
        "confirmed": len(load.confirmed),
        "check": {"ok": verdict.ok, "summary": verdict.summary()},
    }


def _true(condition: Any) -> Any:
    async def probe() -> bool:
        return bool(condition())

    return probe


def _p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(rows: Sequence[dict[str, Any]], suspect_after: float) -> str:
    """
    A Markdown table: per group size, the runs' figures (median and worst).
    """
    lines = [
        "| n | kills | delivery pause p50 / max (s) | target | kill to first"
        " suspicion p50 (s) | flush p50 / max (ms) | flush seen from outside p50"
        " (ms) | deliveries/s per survivor before / after | checker |",
        "|---:|---:|---|---|---:|---|---:|---|---|",
    ]
    for nodes in sorted({r["nodes"] for r in rows}):
        mine = [r for r in rows if r["nodes"] == nodes]
        pauses = [r["pause_s"] for r in mine]
        flushes = [r["flush_s"] * 1000 for r in mine]
        seen = [r["flush_seen_s"] * 1000 for r in mine if r["flush_seen_s"] is not None]
        detect = [
            r["kill_to_suspicion_s"]
            for r in mine
            if r["kill_to_suspicion_s"] is not None
        ]
        ok = sum(r["check"]["ok"] for r in mine)
        lines.append(
            f"| {nodes} | {len(mine)} | {_p50(pauses):.2f} / {max(pauses):.2f}"
            f" | <= {suspect_after + 0.5:.1f} s"
            f" | {f'{_p50(detect):.2f}' if detect else '-'}"
            f" | {_p50(flushes):.0f} / {max(flushes):.0f}"
            f" | {f'{_p50(seen):.0f}' if seen else '-'}"
            f" | {_p50([r['before_per_s'] for r in mine]):,.0f}"
            f" / {_p50([r['after_per_s'] for r in mine]):,.0f}"
            f" | {ok} of {len(mine)} OK |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the failover benchmark and write its results.

    @return: The exit status: 1 if any run's verdict failed.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--kills", type=int, default=5, help="runs per group size")
    parser.add_argument("--rate", type=float, default=1000.0, help="per member")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--suspect-after", type=float, default=3.0)
    parser.add_argument("--flush-timeout", type=float, default=1.0)
    parser.add_argument("--before", type=float, default=3.0, help="seconds")
    parser.add_argument("--after", type=float, default=3.0, help="seconds")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--name", default="failover", help="the results' file name, without suffix"
    )
    args = parser.parse_args(argv)
    if not 2 * args.heartbeat < args.suspect_after:
        parser.error("--suspect-after must be more than twice --heartbeat")
    if any(n < 3 or n > len(NAMES) for n in args.nodes):
        parser.error(f"--nodes must be from 3 to {len(NAMES)}")
    options = [
        f"--heartbeat={args.heartbeat}",
        f"--suspect-after={args.suspect_after}",
        f"--flush-timeout={args.flush_timeout}",
    ]
    rows: list[dict[str, Any]] = []

    async def go(reactor: Any) -> None:
        for nodes in args.nodes:
            for kill in range(args.kills):
                victim = NAMES[kill % nodes]
                with tempfile.TemporaryDirectory(prefix="isis-failover-") as tmp:
                    row = await failover_run(
                        reactor,
                        nodes,
                        victim,
                        Path(tmp),
                        args.rate,
                        options,
                        args.before,
                        args.after,
                    )
                rows.append(row)
                flush_seen = row["flush_seen_s"]
                print(
                    f"n={nodes} kill {victim}: pause {row['pause_s']:.2f} s, flush"
                    f" {row['flush_s'] * 1000:.0f} ms (seen"
                    f" {flush_seen * 1000 if flush_seen is not None else -1:.0f} ms),"
                    f" {row['before_per_s']:,.0f} -> {row['after_per_s']:,.0f}"
                    f" deliveries/s per survivor; {row['check']['summary']}",
                    file=sys.stderr,
                    flush=True,
                )

    # task.react ends the process, so the results are written from within.
    async def run_and_write(reactor: Any) -> None:
        await go(reactor)
        text = table(rows, args.suspect_after)
        args.out.mkdir(parents=True, exist_ok=True)
        write_results(args.out / f"{args.name}.json", "failover", rows)
        command = " ".join(argv if argv is not None else sys.argv[1:])
        (args.out / f"{args.name}.md").write_text(
            f"`bench/failover.py {command}` ({args.rate:,.0f} msg/s per member,"
            f" {' '.join(options)})\n\n" + text
        )
        print(text)
        if not all(r["check"]["ok"] for r in rows):
            raise SystemExit(1)

    task.react(lambda r: Deferred.fromCoroutine(run_and_write(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
