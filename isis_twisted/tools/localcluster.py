"""
Run a real local group: n C{twistd isis} processes on 127.0.0.1.

    python -m isis_twisted.tools.localcluster [--nodes 3] [--messages 20]

It starts every node as its own process with a C{jsonl:} delivery log,
waits until every member is connected to every other, multicasts from all
of them at once through their client APIs, waits until every node has
delivered every message, prints the nodes' orders side by side and the
history checker's verdict over the logs, and stops the nodes with SIGTERM.
The exit status is 0 only if every guarantee held.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from isis_twisted.api.client import ClientProtocol, connect
from isis_twisted.core.checker import check, load_jsonl
from isis_twisted.core.engine import Delivery
from isis_twisted.tools.testing import free_ports, wait_until

NAMES = "abcdefg"


TWISTD = [
    sys.executable,
    "-c",
    "from twisted.scripts.twistd import run; run()",
    "--nodaemon",
    "--pidfile=",
]
"""
The command that runs C{twistd} in the foreground with this interpreter.
"""


def exit_status(reason: Failure) -> int:
    """
    A process's exit status from how it ended; a stop by SIGTERM counts as
    0, since twistd shuts down cleanly on it and then re-raises it so its
    parent sees how it ended.
    """
    if isinstance(reason.value, ProcessTerminated):
        if reason.value.signal == signal.SIGTERM:
            return 0
        return reason.value.exitCode if reason.value.exitCode is not None else -1
    return 0 if isinstance(reason.value, ProcessDone) else -1


class NodeProcess(ProcessProtocol):
    """
    One C{twistd -n isis} process; C{ended} fires with its exit code.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.ended: Deferred[int] = Deferred()
        self.output = bytearray()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    def errReceived(self, data: bytes) -> None:
        self.output += data

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(exit_status(reason))


def twistd_command(
    name: str,
    names: Sequence[str],
    peer_ports: dict[str, int],
    client_port: int,
    workdir: Path,
    group: str,
    dial: Callable[[str, str], int] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """
    The command line that starts member C{name} in the foreground.

    @param dial: Gives the port that C{name} dials to reach a peer, when it
        is not the peer's own (a proxy in between).
    @param extra: More C{twistd isis} options.
    """
    port_of = dial or (lambda src, dst: peer_ports[dst])
    peers = ",".join(f"{p}=127.0.0.1:{port_of(name, p)}" for p in names if p != name)
    command = [
        *TWISTD,
        f"--logfile={workdir / f'{name}.log'}",
        "isis",
        f"--id={name}",
        f"--port={peer_ports[name]}",
        f"--client-port={client_port}",
        f"--group={group}",
        f"--handler=jsonl:{workdir / f'{name}.jsonl'}",
    ]
    if peers:
        command.append(f"--peers={peers}")
    command.extend(extra)
    return command


def side_by_side(histories: dict[str, list[Delivery]], limit: int = 40) -> str:
    """
    Every node's order in columns, one row per index (long runs are cut in
    the middle).
    """
    names = sorted(histories)
    rows = max((len(h) for h in histories.values()), default=0)

    def cell(h: list[Delivery], i: int) -> str:
        if i >= len(h):
            return "-"
        d = h[i]
        return f"{d.sender}@{d.clock} {d.payload[:12].decode('utf-8', 'replace')}"

    lines = ["    #  " + "".join(n.ljust(24) for n in names)]
    shown = list(range(rows))
    if rows > limit:
        shown = [*range(limit // 2), -1, *range(rows - limit // 2, rows)]
    for i in shown:
        if i < 0:
            lines.append("  ...")
            continue
        cells = [cell(histories[n], i) for n in names]
        lines.append(f"{i + 1:5}  " + "".join(c.ljust(24) for c in cells))
    return "\n".join(lines)


async def run(reactor: Any, args: argparse.Namespace) -> int:
    """
    Start the group, drive it, check it and stop it.

    @return: The exit status: 0 if every guarantee held.
    """
    names = list(NAMES[: args.nodes])
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="isis-cluster-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("*.jsonl"):
        stale.unlink()
    ports = free_ports(2 * len(names))
    peer_ports = dict(zip(names, ports, strict=False))
    client_ports = dict(zip(names, ports[len(names) :], strict=True))
    print(f"starting {len(names)} nodes in {workdir}", flush=True)
    processes: dict[str, NodeProcess] = {}
    env = dict(os.environ)
    for name in names:
        proc = NodeProcess(name)
        command = twistd_command(
            name, names, peer_ports, client_ports[name], workdir, args.group
        )
        reactor.spawnProcess(proc, command[0], command, env=env, path=str(workdir))
        processes[name] = proc
        print(
            f"  {name}: peers on 127.0.0.1:{peer_ports[name]},"
            f" client API on 127.0.0.1:{client_ports[name]}",
            flush=True,
        )
    clients: dict[str, ClientProtocol] = {}
    try:
        for name in names:
            clients[name] = await _connect_when_up(
                reactor, client_ports[name], processes[name]
            )

        async def all_connected() -> bool:
            for client in clients.values():
                if not await peers_connected(client):
                    return False
            return True

        await poll(reactor, all_connected, 30, "every member to connect to the others")
        print("all members connected; multicasting from every node at once", flush=True)
        started = time.perf_counter()
        sends = [
            clients[name].multicast(f"{name}-{i}".encode())
            for i in range(args.messages)
            for name in names
        ]
        await gatherResults(sends)
        total = len(sends)

        async def all_delivered() -> bool:
            for client in clients.values():
                status = await client.status()
                if status["delivered"] != total:
                    return False
            return True

        await poll(reactor, all_delivered, 60, f"every node to deliver {total}")
        elapsed = time.perf_counter() - started
        histories = {n: load_jsonl(workdir / f"{n}.jsonl") for n in names}
        print(side_by_side(histories), flush=True)
        print(
            f"{total} multicasts from {len(names)} nodes delivered everywhere in"
            f" {elapsed:.2f} s",
            flush=True,
        )
        result = check(histories)
        print(result.summary(), flush=True)
        return 0 if result.ok else 1
    finally:
        for client in clients.values():
            await client.close()
        codes = await stop_processes(reactor, processes)
        print(
            "stopped: "
            + ", ".join(f"{n} (exit {c})" for n, c in sorted(codes.items())),
            flush=True,
        )
        print(f"logs and delivery files are in {workdir}", flush=True)


async def _connect_when_up(
    reactor: Any, port: int, proc: NodeProcess
) -> ClientProtocol:
    deadline = reactor.seconds() + 30
    while True:
        if proc.ended.called:
            output = proc.output.decode(errors="replace")
            raise SystemExit(f"node {proc.name} exited at start:\n{output}")
        try:
            return await connect(reactor, f"tcp:127.0.0.1:{port}")
        except Exception:
            if reactor.seconds() > deadline:
                raise
            pause: Deferred[None] = Deferred()
            reactor.callLater(0.1, pause.callback, None)
            await pause


async def peers_connected(client: ClientProtocol) -> bool:
    """
    Whether the node behind C{client} has both connections to every peer.
    """
    status = await client.status()
    peers = status["peers"]
    assert isinstance(peers, dict)
    return all(p["connected_out"] and p["connected_in"] for p in peers.values())


async def poll(
    reactor: Any,
    probe: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
) -> None:
    """
    Ask C{probe} every 50 ms until it says yes.

    @raise TimeoutError: If it has not within C{timeout} seconds; the
        message names C{what} was awaited.
    """
    deadline = reactor.seconds() + timeout
    while not await probe():
        if reactor.seconds() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        pause: Deferred[None] = Deferred()
        reactor.callLater(0.05, pause.callback, None)
        await pause


async def stop_processes(
    reactor: Any, processes: Mapping[str, NodeProcess]
) -> dict[str, int]:
    """
    Stop every process with SIGTERM (SIGKILL if one is still up 15 s later)
    and wait for all of them.

    @return: Every process's exit status, by name (see L{exit_status}).
    """
    for proc in processes.values():
        if not proc.ended.called:
            proc.transport.signalProcess("TERM")  # type: ignore[union-attr]
    codes: dict[str, int] = {}
    for name, proc in processes.items():
        try:
            await wait_until(reactor, _ended(proc), 15, f"{name} to stop")
        except TimeoutError:
            proc.transport.signalProcess("KILL")  # type: ignore[union-attr]
        codes[name] = await proc.ended
    return codes


def _ended(proc: NodeProcess) -> Callable[[], bool]:
    return lambda: proc.ended.called


def main(argv: Sequence[str] | None = None) -> None:
    """
    Parse the arguments and run the local group.
    """
    parser = argparse.ArgumentParser(
        prog="python -m isis_twisted.tools.localcluster",
        description="Run n twistd isis nodes on 127.0.0.1, multicast from all,"
        " and check that they agree.",
    )
    parser.add_argument("--nodes", type=int, default=3, choices=range(1, 8))
    parser.add_argument(
        "--messages", type=int, default=20, help="multicasts per node (default 20)"
    )
    parser.add_argument("--group", default="demo")
    parser.add_argument("--dir", help="where to put logs (default: a new temp dir)")
    args = parser.parse_args(argv)
    if args.messages < 0:
        parser.error("--messages must not be negative")
    signal.signal(signal.SIGINT, signal.default_int_handler)

    async def go(reactor: Any) -> None:
        code = await run(reactor, args)
        if code:
            raise SystemExit(code)

    task.react(lambda reactor: Deferred.fromCoroutine(go(reactor)))


if __name__ == "__main__":
    main()
