"""
End-to-end tests with real processes: C{twistd isis} nodes driven by the
C{isis} command line, as an operator would, and the README's main job.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from isis_twisted.core.checker import load_jsonl
from isis_twisted.tools.localcluster import (
    TWISTD,
    NodeProcess,
    exit_status,
    side_by_side,
    stop_processes,
    twistd_command,
)
from isis_twisted.tools.testing import agreed_records, free_ports

reactor: Any = _reactor


class Finished(ProcessProtocol):
    """
    Collects a process's output; C{done} fires with (stdout, stderr, code).
    """

    def __init__(self, stdin: bytes = b"") -> None:
        self.stdin = stdin
        self.out = bytearray()
        self.err = bytearray()
        self.done: Deferred[tuple[str, str, int]] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        if self.stdin:
            self.transport.write(self.stdin)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        self.done.callback((self.out.decode(), self.err.decode(), exit_status(reason)))


def run(
    args: Sequence[str], stdin: bytes = b"", cwd: str | None = None
) -> Deferred[tuple[str, str, int]]:
    """
    Run a command line (C{args[0]} is the program) to its end.
    """
    proto = Finished(stdin)
    reactor.spawnProcess(proto, args[0], list(args), env=dict(os.environ), path=cwd)
    return proto.done


def isis(*args: str, stdin: bytes = b"") -> Deferred[tuple[str, str, int]]:
    return run([sys.executable, "-m", "isis_twisted.app.cli", *args], stdin)


def deferred(coro: Coroutine[Any, Any, None]) -> Deferred[None]:
    return Deferred.fromCoroutine(coro)


class ProcessClusterTests(TestCase):
    timeout = 180

    def test_twistd_nodes_driven_by_isis_send(self) -> Deferred[None]:
        """
        Three C{twistd -n isis} processes with C{jsonl:} handlers; several
        C{isis send} clients at once, into every node; C{isis status} shows
        everything delivered; C{isis check} passes the logs; SIGTERM stops
        every node cleanly.
        """

        async def go() -> None:
            workdir = Path(self.mktemp()).resolve()
            workdir.mkdir(parents=True)
            names = ["a", "b", "c"]
            ports = free_ports(6)
            peer_ports = dict(zip(names, ports[:3], strict=True))
            client_ports = dict(zip(names, ports[3:], strict=True))
            procs: dict[str, NodeProcess] = {}
            for name in names:
                proc = NodeProcess(name)
                command = twistd_command(
                    name, names, peer_ports, client_ports[name], workdir, "e2e"
                )
                reactor.spawnProcess(
                    proc, command[0], command, env=dict(os.environ), path=str(workdir)
                )
                procs[name] = proc

            self.addCleanup(
                lambda: Deferred.fromCoroutine(stop_processes(reactor, procs))
            )

            async def status(name: str) -> dict[str, Any]:
                out, _, code = await isis(
                    "--node", str(client_ports[name]), "status", "--json"
                )
                if code != 0:
                    return {}
                parsed: dict[str, Any] = json.loads(out)
                return parsed

            for name in names:
                connected = False
                deadline = reactor.seconds() + 60
                while not connected:
                    self.assertFalse(procs[name].ended.called, procs[name].output)
                    st = await status(name)
                    peers = st.get("peers", {})
                    connected = bool(peers) and all(
                        p["connected_out"] and p["connected_in"] for p in peers.values()
                    )
                    if reactor.seconds() > deadline:
                        self.fail(f"{name} never connected: {st}")

            per_client = 40
            lines = {
                f"{name}{k}": b"".join(
                    b"%s%d-%d\n" % (name.encode(), k, i) for i in range(per_client)
                )
                for name in names
                for k in range(2)
            }
            sends = [
                isis("--node", str(client_ports[key[0]]), "send", stdin=data)
                for key, data in lines.items()
            ]
            sends.append(
                isis("--node", str(client_ports["b"]), "send", "one", "two", "three")
            )
            results = await gatherResults(sends)
            for _, err, code in results:
                self.assertEqual(code, 0, err)
            total = len(lines) * per_client + 3
            # Every send line is "index sender@clock".
            printed = [line for out, _, _ in results for line in out.splitlines()]
            self.assertEqual(len(printed), total)

            async def delivered_everywhere() -> bool:
                for name in names:
                    if (await status(name)).get("delivered") != total:
                        return False
                return True

            deadline = reactor.seconds() + 60
            while not await delivered_everywhere():
                self.assertLess(reactor.seconds(), deadline, "not all delivered")
            logs = [str(workdir / f"{n}.jsonl") for n in names]
            out, err, code = await isis("check", *logs)
            self.assertEqual(code, 0, out + err)
            self.assertIn(f"3 nodes, {total} messages", out)
            self.assertIn("OK", out)
            histories = {n: load_jsonl(workdir / f"{n}.jsonl") for n in names}
            orders = {
                tuple((d.index, d.sender, d.clock, d.payload) for d in h)
                for h in histories.values()
            }
            self.assertEqual(len(orders), 1)
            self.assertIn("a", side_by_side(histories))
            await stop_processes(reactor, procs)
            for name, proc in procs.items():
                self.assertEqual(await proc.ended, 0, name)
                log = (workdir / f"{name}.log").read_text()
                self.assertIn("Server Shut Down", log)
                self.assertNotIn("Traceback", log)

        return deferred(go())

    def test_main_job(self) -> Deferred[None]:
        """
        The README's main job runs, agrees and exits 0.
        """

        async def go() -> None:
            workdir = Path(self.mktemp()).resolve()
            out, err, code = await run(
                [
                    sys.executable,
                    "-m",
                    "isis_twisted.tools.localcluster",
                    "--messages",
                    "10",
                    "--dir",
                    str(workdir),
                ]
            )
            self.assertEqual(code, 0, out + err)
            self.assertIn("3 nodes, 30 messages, 90 deliveries: OK", out)
            self.assertIn("stopped: a (exit 0), b (exit 0), c (exit 0)", out)
            header = next(line for line in out.splitlines() if line.strip()[:1] == "#")
            self.assertEqual(header.split(), ["#", "a", "b", "c"])

        return deferred(go())


class _Restarting:
    """
    Three C{twistd} members for the restart tests.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.names = ["a", "b", "c"]
        ports = free_ports(6)
        self.peer_ports = dict(zip(self.names, ports[:3], strict=True))
        self.client_ports = dict(zip(self.names, ports[3:], strict=True))
        self.procs: dict[str, NodeProcess] = {}

    def start(self, name: str, tag: str = "", jsonl: bool = True) -> NodeProcess:
        """
        Start member C{name}; with C{tag}, its log file (and, with
        C{jsonl}, its jsonl file) get the tag in their names.
        """
        proc = NodeProcess(name)
        command = twistd_command(
            name,
            self.names,
            self.peer_ports,
            self.client_ports[name],
            self.workdir,
            "restart",
        )
        if tag:
            command = [
                arg.replace(f"{name}.log", f"{name}{tag}.log") for arg in command
            ]
            if jsonl:
                command = [
                    arg.replace(f"{name}.jsonl", f"{name}{tag}.jsonl")
                    for arg in command
                ]
        reactor.spawnProcess(
            proc, command[0], command, env=dict(os.environ), path=str(self.workdir)
        )
        self.procs[name + tag] = proc
        return proc

    def start_keeping_jsonl(self, name: str, tag: str = "") -> NodeProcess:
        """
        As L{start}, with the member's own jsonl file whatever the tag.
        """
        return self.start(name, tag, jsonl=False)


class RestartTests(TestCase):
    timeout = 120

    async def added_back(self, run: _Restarting, name: str, deadline: float) -> None:
        """
        Poll member C{name}'s status until it delivers in a view of all
        three (before C{deadline}).
        """
        while True:
            out, _, code = await isis(
                "--node", str(run.client_ports[name]), "status", "--json"
            )
            if code == 0:
                said = json.loads(out)
                if said["state"] == "normal" and said["view_members"] == run.names:
                    return
            self.assertLess(reactor.seconds(), deadline, out)
            pause: Deferred[None] = Deferred()
            reactor.callLater(0.1, pause.callback, None)
            await pause

    async def started(self) -> _Restarting:
        """
        Start three members and have each multicast two messages that all
        three deliver.
        """
        run = _Restarting(Path(self.mktemp()).resolve())
        run.workdir.mkdir(parents=True)
        names, client_ports, procs = run.names, run.client_ports, run.procs
        self.addCleanup(lambda: Deferred.fromCoroutine(stop_processes(reactor, procs)))
        for name in names:
            run.start(name)
        sends = [
            isis("--node", str(client_ports[n]), "send", f"{n}-1", f"{n}-2")
            for n in names
        ]
        # The nodes may still be starting: retry each client until it
        # reaches its node.
        deadline = reactor.seconds() + 60
        results = await gatherResults(sends)
        while any(code == 2 for _, _, code in results):
            self.assertLess(reactor.seconds(), deadline, results)
            results = await gatherResults(
                [
                    isis("--node", str(client_ports[n]), "send", f"{n}-1", f"{n}-2")
                    if code == 2
                    else Deferred.fromCoroutine(_done(out, err, code))
                    for n, (out, err, code) in zip(names, results, strict=True)
                ]
            )
        for _, err, code in results:
            self.assertEqual(code, 0, err)
        for name in names:
            while True:
                out, _, code = await isis(
                    "--node", str(client_ports[name]), "status", "--json"
                )
                if code == 0 and json.loads(out)["delivered"] == 6:
                    break
                self.assertLess(reactor.seconds(), deadline, out)
        return run

    def test_killed_member_restarted_joins_again(self) -> Deferred[None]:
        """
        A member killed with SIGKILL and started again (here with a log file
        of its own, so it has nothing to catch up on) is a new incarnation:
        the others go on without the old one, add the new one, and all
        three deliver what is sent next in one order.
        """

        async def go() -> None:
            run = await self.started()
            workdir, names, client_ports, procs = (
                run.workdir,
                run.names,
                run.client_ports,
                run.procs,
            )
            start = run.start
            procs["b"].transport.signalProcess("KILL")  # type: ignore[union-attr]
            await procs["b"].ended
            start("b", "-again")
            logs = {n: workdir / f"{n}.log" for n in ("a", "c")}
            deadline = reactor.seconds() + 60
            await self.added_back(run, "b", deadline)
            # The first of a and c to hear from the new incarnation says so
            # (the other may have gone on without the old one by then).
            self.assertTrue(
                any(
                    "restarted (a new incarnation)" in path.read_text()
                    for path in logs.values()
                )
            )
            for n in names:
                _, err, code = await isis(
                    "--node", str(client_ports[n]), "send", f"{n}-3"
                )
                self.assertEqual(code, 0, err)
            files = [workdir / f"{n}.jsonl" for n in ("a", "b", "c")]
            files.append(workdir / "b-again.jsonl")
            while True:
                lines = [len(f.read_text().splitlines()) for f in files]
                # a and c: 9 deliveries and two view lines; the new b, whose
                # file was empty: all of it, caught up.
                if lines[0] == lines[2] == lines[3] == 11:
                    break
                self.assertLess(reactor.seconds(), deadline, lines)
                pause: Deferred[None] = Deferred()
                reactor.callLater(0.1, pause.callback, None)
                await pause
            # What a and c delivered, what b delivered before it died and
            # what the new b delivered since all agree.
            a_c = [str(files[0]), str(files[2])]
            for b_file in (files[1], files[3]):
                out, err, code = await isis("check", *a_c, f"b={b_file}")
                self.assertEqual(code, 0, out + err)
                self.assertIn("3 nodes, 3 views (final 2), 9 messages", out)
            self.assertFalse(procs["a"].ended.called or procs["c"].ended.called)

        return deferred(go())

    def test_killed_member_restarted_catches_up(self) -> Deferred[None]:
        """
        A member killed with SIGKILL and started again with the same command
        catches up from its jsonl file: after more traffic from all three,
        the three files hold the same records at the same indices, line for
        line.
        """

        async def go() -> None:
            run = await self.started()
            workdir, names, client_ports, procs = (
                run.workdir,
                run.names,
                run.client_ports,
                run.procs,
            )
            start = run.start_keeping_jsonl
            procs["b"].transport.signalProcess("KILL")  # type: ignore[union-attr]
            await procs["b"].ended
            for n in ("a", "c"):
                _, err, code = await isis(
                    "--node", str(client_ports[n]), "send", f"{n}-while-b-is-down"
                )
                self.assertEqual(code, 0, err)
            start("b", "-again-same")
            deadline = reactor.seconds() + 60
            await self.added_back(run, "b", deadline)
            # a and c went on without it while it was down (the messages
            # sent then waited for that).
            for n in names:
                _, err, code = await isis(
                    "--node", str(client_ports[n]), "send", f"{n}-3"
                )
                self.assertEqual(code, 0, err)
            files = [workdir / f"{n}.jsonl" for n in names]

            while True:
                got = [agreed_records(f) for f in files]
                if (
                    len(got[0]) == len(got[1]) == len(got[2])
                    and got[0][-1:]
                    and (got[0][-1] == got[1][-1] == got[2][-1])
                    and sum("sender" in r for r in got[0]) == 11
                ):
                    break
                self.assertLess(reactor.seconds(), deadline, [len(g) for g in got])
                pause: Deferred[None] = Deferred()
                reactor.callLater(0.1, pause.callback, None)
                await pause
            self.assertEqual(got[1], got[0])
            self.assertEqual(got[2], got[0])
            out, err, code = await isis("check", *(str(f) for f in files))
            self.assertEqual(code, 0, out + err)
            self.assertIn("'b' caught up", (workdir / "b-again-same.log").read_text())
            self.assertFalse(procs["a"].ended.called or procs["c"].ended.called)

        return deferred(go())


async def _done(out: str, err: str, code: int) -> tuple[str, str, int]:
    return out, err, code


class SoloNodeTestCase(TestCase):
    """
    Tests that run one node process and talk to it with C{isis}.
    """

    timeout = 60

    def start_solo(self, command: list[str]) -> NodeProcess:
        """
        Start C{command} (a twistd or twist command line); stop it at cleanup.
        """
        node = NodeProcess("solo")
        reactor.spawnProcess(node, command[0], command, env=dict(os.environ))
        self.addCleanup(
            lambda: Deferred.fromCoroutine(stop_processes(reactor, {"solo": node}))
        )
        return node

    async def send_when_up(self, node: NodeProcess, *args: str) -> tuple[str, str, int]:
        """
        Run C{isis ARGS} until it reaches the node (or 30 s pass, or the
        node exits); return its last result.
        """
        deadline = reactor.seconds() + 30
        while True:
            out, err, code = await isis(*args)
            if code == 0 or reactor.seconds() > deadline or node.ended.called:
                return out, err, code


class TwistTests(SoloNodeTestCase):
    def test_twist_runs_the_same_plugin(self) -> Deferred[None]:
        """
        C{twist isis} (Twisted's foreground runner) starts the same node,
        with JSON logs when asked.
        """

        async def go() -> None:
            (client_port,) = free_ports(1)
            node = self.start_solo(
                [
                    sys.executable,
                    "-c",
                    "from twisted.application.twist._twist import Twist; Twist.main()",
                    "--log-format=json",
                    "isis",
                    "--id=solo",
                    "--port=0",
                    f"--client-port={client_port}",
                ]
            )
            out, err, code = await self.send_when_up(
                node, "--node", str(client_port), "send", "hi"
            )
            self.assertEqual(code, 0, err + node.output.decode())
            self.assertEqual(out.split(), ["1", "solo@1"])
            codes = await stop_processes(reactor, {"solo": node})
            self.assertEqual(codes, {"solo": 0})
            events = [
                json.loads(line)
                for line in node.output.decode().splitlines()
                if line.startswith("{")
            ]
            self.assertTrue(
                any("listening" in json.dumps(e) for e in events), node.output
            )

        return deferred(go())


class ClientTokenTests(SoloNodeTestCase):
    def test_isis_needs_the_token(self) -> Deferred[None]:
        async def go() -> None:
            where = Path(self.mktemp()).resolve()
            where.mkdir(parents=True)
            token = where / "client.token"
            token.write_text("a client token for this test\n")
            (client_port,) = free_ports(1)
            node = self.start_solo(
                [
                    *TWISTD,
                    "isis",
                    "--id=solo",
                    "--port=0",
                    f"--client-port={client_port}",
                    f"--client-token-file={token}",
                ]
            )
            out, err, code = await self.send_when_up(
                node,
                "--node",
                str(client_port),
                "--token-file",
                str(token),
                "send",
                "hi",
            )
            self.assertEqual((code, out.split()), (0, ["1", "solo@1"]), err)
            _, err, code = await isis("--node", str(client_port), "status")
            self.assertEqual(code, 2)
            self.assertIn("requires a client token", err)
            self.assertNotIn("Traceback", err)

        return deferred(go())


class UserMistakeTests(TestCase):
    timeout = 60

    def test_unreachable_node_is_one_line(self) -> Deferred[None]:
        async def go() -> None:
            (port,) = free_ports(1)
            _, err, code = await isis("--node", str(port), "status")
            self.assertEqual(code, 2)
            self.assertIn("cannot reach the node", err)
            self.assertNotIn("Traceback", err)

        return deferred(go())

    def test_bad_twistd_options(self) -> Deferred[None]:
        async def go() -> None:
            out, err, code = await run(
                [
                    *TWISTD,
                    "isis",
                    "--id",
                    "a",
                    "--port",
                    "9001",
                    "--peers",
                    "b=nowhere",
                ]
            )
            self.assertNotEqual(code, 0)
            self.assertIn("peer 'b': 'nowhere' is neither HOST:PORT", out + err)
            self.assertNotIn("Traceback", out + err)

        return deferred(go())

    def test_port_in_use_is_one_line(self) -> Deferred[None]:
        async def go() -> None:
            from twisted.internet.protocol import Factory

            port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
            self.addCleanup(port.stopListening)
            out, err, code = await run(
                [
                    *TWISTD,
                    "isis",
                    "--id",
                    "a",
                    "--port",
                    str(port.getHost().port),
                ]
            )
            self.assertEqual(code, 1)
            self.assertIn("isis: cannot listen for peers on tcp:", out + err)
            self.assertIn("Address already in use", out + err)
            self.assertNotIn("Traceback", out + err)

        return deferred(go())
