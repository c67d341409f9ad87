"""
Fault injection over real processes: a group of C{twistd isis} nodes whose
every link runs through a proxy that cuts, stalls, slows, half-closes and
heals it on a seeded schedule, while every node multicasts; afterwards the
history checker must find every message delivered exactly once, in one
order, everywhere.

    python -m isis_twisted.tools.faults --nodes 5 --seconds 60 --seed 7

The same seed gives the same fault schedule (what the processes and the
kernel do with it varies from run to run).  For a long soak run, give
C{--seconds 1800}.  The exit status is 0 only if every guarantee held.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import task
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults

from isis_twisted.api.client import ClientProtocol, connect
from isis_twisted.core.checker import CheckResult, Multicast, check, load_jsonl
from isis_twisted.tools.localcluster import NodeProcess, stop_processes, twistd_command
from isis_twisted.tools.testing import LinkProxy, free_ports, port_of

NAMES = "abcdefg"


@attrs.frozen
class FaultRun:
    """
    What one fault-injection run did and found.

    @ivar seed: The schedule's seed.
    @ivar nodes: How many members.
    @ivar sent: Messages multicast.
    @ivar faults: Faults applied, by kind.
    @ivar result: The checker's verdict over every node's delivery log.
    @ivar workdir: Where the logs are.
    @ivar links: Link counters summed over every node: connections made,
        frames resent after reconnects, duplicates dropped.
    """

    seed: int
    nodes: int
    sent: int
    faults: dict[str, int]
    result: CheckResult
    workdir: Path
    links: dict[str, int]

    def describe(self) -> str:
        """
        A summary, with the command that replays the schedule.
        """
        faults = ", ".join(f"{n} {kind}" for kind, n in sorted(self.faults.items()))
        return (
            f"seed {self.seed}: {self.nodes} nodes, {self.sent} multicasts, faults:"
            f" {faults or 'none'}\nlinks: "
            + ", ".join(f"{v} {k}" for k, v in sorted(self.links.items()))
            + f"\n{self.result.summary()}\n"
            f"logs in {self.workdir}; replay the schedule with"
            " python -m isis_twisted.tools.faults"
            f" --nodes {self.nodes} --seed {self.seed}"
        )


async def _pause(reactor: Any, seconds: float) -> None:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    await d


async def run_faults(
    reactor: Any,
    nodes: int,
    seconds: float,
    seed: int,
    workdir: Path,
    rate: float = 200.0,
) -> FaultRun:
    """
    Start the group, inject faults while traffic flows, heal, check.

    @param nodes: Group size (2 to 7).
    @param seconds: How long faults and traffic go on.
    @param seed: Chooses the fault schedule and the senders.
    @param workdir: Where the nodes' logs go.
    @param rate: Multicasts per second, over all nodes together.
    """
    rng = random.Random(seed)
    names = list(NAMES[:nodes])
    peer_ports: dict[str, int] = {}
    proxies: dict[tuple[str, str], LinkProxy] = {}
    proxy_ports: dict[tuple[str, str], int] = {}
    for src in names:
        for dst in names:
            if src != dst:
                proxy = LinkProxy(reactor, port_of(peer_ports, dst))
                proxy_ports[(src, dst)] = await proxy.listen()
                proxies[(src, dst)] = proxy
    # The members' ports are chosen once the proxies hold theirs: a proxy
    # that took a port handed to a member would stand in for its client API.
    ports = free_ports(2 * nodes)
    peer_ports.update(zip(names, ports[:nodes], strict=True))
    client_ports = dict(zip(names, ports[nodes:], strict=True))
    processes: dict[str, NodeProcess] = {}
    clients: dict[str, ClientProtocol] = {}
    faults: dict[str, int] = {}
    sent: list[Multicast] = []
    try:
        for name in names:
            proc = NodeProcess(name)
            command = twistd_command(
                name,
                names,
                peer_ports,
                client_ports[name],
                workdir,
                f"faults-{seed}",
                dial=lambda src, dst: proxy_ports[(src, dst)],
                # Links are cut for seconds at a time here: this run proves
                # the links' resend and reconnect, so nobody is suspected.
                extra=["--heartbeat=0.2", "--silence=1.5", "--suspect-after=3600"],
            )
            reactor.spawnProcess(
                proc, command[0], command, env=dict(os.environ), path=str(workdir)
            )
            processes[name] = proc
        for name in names:
            deadline = reactor.seconds() + 30
            while name not in clients:
                if processes[name].ended.called:
                    raise RuntimeError(
                        f"node {name} exited:\n{processes[name].output.decode()}"
                    )
                try:
                    clients[name] = await connect(reactor, str(client_ports[name]))
                except Exception:
                    if reactor.seconds() > deadline:
                        raise
                    await _pause(reactor, 0.1)

        window = DeferredSemaphore(256)
        outstanding: list[Deferred[None]] = []

        def send(name: str, number: int) -> None:
            payload = f"{name}-{number}".encode()

            def delivered(record: Any) -> None:
                sent.append(Multicast(record.sender, record.clock, payload))

            d = window.run(clients[name].multicast, payload).addCallback(delivered)
            outstanding.append(d)

        end = reactor.seconds() + seconds
        next_fault = reactor.seconds() + rng.uniform(0.1, 0.4)
        number = 0
        while reactor.seconds() < end:
            for _ in range(max(1, int(rate / 20))):
                send(rng.choice(names), number)
                number += 1
            if reactor.seconds() >= next_fault:
                link = rng.choice(sorted(proxies))
                kind = rng.choice(
                    ["cut", "cut-both", "stall", "slow", "half-close", "heal", "heal"]
                )
                if kind == "cut":
                    proxies[link].cut()
                elif kind == "slow":
                    proxies[link].slow(rng.uniform(0.01, 0.3))
                elif kind == "half-close":
                    proxies[link].half_close()
                elif kind == "cut-both":
                    proxies[link].cut()
                    proxies[(link[1], link[0])].cut()
                elif kind == "stall":
                    proxies[link].stall()
                else:
                    proxies[link].heal()
                faults[kind] = faults.get(kind, 0) + 1
                next_fault = reactor.seconds() + rng.uniform(0.1, 0.4)
            await _pause(reactor, 0.05)
        for proxy in proxies.values():
            proxy.heal()
        await gatherResults(outstanding)

        async def everyone_delivered() -> bool:
            for client in clients.values():
                if (await client.status())["delivered"] != len(sent):
                    return False
            return True

        deadline = reactor.seconds() + 120
        while not await everyone_delivered():
            if reactor.seconds() > deadline:
                raise TimeoutError("the group did not deliver everything after healing")
            await _pause(reactor, 0.1)
        links = {"connections": 0, "resent": 0, "duplicates": 0}
        for client in clients.values():
            peers = (await client.status())["peers"]
            assert isinstance(peers, dict)
            for counters in peers.values():
                for key in links:
                    links[key] += int(counters[key])
        histories = {n: load_jsonl(workdir / f"{n}.jsonl") for n in names}
        return FaultRun(
            seed=seed,
            nodes=nodes,
            sent=len(sent),
            faults=faults,
            result=check(histories, sent),
            workdir=workdir,
            links=links,
        )
    finally:
        for client in clients.values():
            await client.close()
        await stop_processes(reactor, processes)
        for proxy in proxies.values():
            await proxy.close()


def main(argv: Sequence[str] | None = None) -> None:
    """
    Run one fault-injection run from the command line.
    """
    parser = argparse.ArgumentParser(
        prog="python -m isis_twisted.tools.faults",
        description="Cut, stall and heal the links of a group of twistd isis"
        " processes on a seeded schedule while they multicast; then check.",
    )
    parser.add_argument("--nodes", type=int, default=3, choices=range(2, 8))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0, help="multicasts/s")
    parser.add_argument("--dir", help="where to put logs (default: a new temp dir)")
    args = parser.parse_args(argv)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="isis-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)

    async def go(reactor: Any) -> None:
        started = time.monotonic()
        run = await run_faults(
            reactor, args.nodes, args.seconds, args.seed, workdir, args.rate
        )
        print(run.describe())
        print(f"took {time.monotonic() - started:.1f} s")
        if not run.result.ok:
            raise SystemExit(1)

    task.react(lambda r: Deferred.fromCoroutine(go(r)))


if __name__ == "__main__":
    main(sys.argv[1:])
