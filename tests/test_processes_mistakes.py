"""
Operator mistakes with real processes: C{twistd -n isis} members, loaded
through their client APIs, where a second process is started with an
existing member's C{--id} (its own port, the same C{--peers}), or a member
is started with other C{--peers}.

No two logs ever disagree (the history checker and C{isis check} both judge
them), nothing the mistaken process multicast is delivered, and the
sentence that says what is wrong is in the log of every member that refused
it, once.

Each test runs twice: on loopback, and with every process in a network
namespace of its own (C{ip netns}, joined by veth pairs to a bridge in one
more namespace), as on separate hosts.  The second needs root and C{ip};
without them it is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from isis_twisted.core.checker import check, load_jsonl
from isis_twisted.tools.localcluster import (
    TWISTD,
    NodeProcess,
    exit_status,
    stop_processes,
)
from isis_twisted.tools.testing import free_ports

reactor: Any = _reactor

CLAIMANT = "another process holds the name 'a'"

# A member that never joins is removed within seconds; one that starts late
# (test_claimant_before_the_member) is waited for.
QUICK = ["--heartbeat=0.2", "--silence=1", "--suspect-after=1.5"]
PATIENT = ["--heartbeat=0.2", "--silence=1", "--suspect-after=30"]


def deferred(coro: Coroutine[Any, Any, None]) -> Deferred[None]:
    return Deferred.fromCoroutine(coro)


async def pause(seconds: float) -> None:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    await d


async def poll(
    probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 60
) -> None:
    """
    Ask C{probe} every 50 ms until it says yes, for at most C{timeout} s.
    """
    deadline = reactor.seconds() + timeout
    while not await probe():
        if reactor.seconds() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        await pause(0.05)


class Finished(ProcessProtocol):
    """
    A short command: C{done} fires with its output and exit status.
    """

    def __init__(self) -> None:
        self.out = bytearray()
        self.done: Deferred[tuple[str, int]] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.out += data

    def processEnded(self, reason: Failure) -> None:
        self.done.callback((self.out.decode(errors="replace"), exit_status(reason)))


def spawn(command: Sequence[str]) -> Finished:
    proto = Finished()
    program = shutil.which(command[0]) or command[0]
    reactor.spawnProcess(proto, program, list(command), env=dict(os.environ))
    return proto


ISIS = [sys.executable, "-m", "isis_twisted.app.cli"]


class Members:
    """
    C{twistd -n isis} processes on loopback, in one directory, each with a
    C{jsonl:} log, a log file and a client API, known by a label ("a",
    "a2", ...); driven with the C{isis} command, as an operator would.
    """

    def __init__(self, test: TestCase, group: str, timers: Sequence[str]) -> None:
        self.test = test
        self.group = group
        self.timers = list(timers)
        self.workdir = Path(test.mktemp()).resolve()
        self.workdir.mkdir(parents=True)
        labels = ["a", "b", "c", "a2"]
        ports = free_ports(2 * len(labels))
        self.peer_ports = dict(zip(labels, ports, strict=False))
        self.client_ports = dict(zip(labels, ports[len(labels) :], strict=True))
        self.procs: dict[str, NodeProcess] = {}
        self.commands: list[Finished] = []
        test.addCleanup(self.stop)

    async def stop(self) -> None:
        for command in self.commands:
            if not command.done.called:
                command.transport.signalProcess("KILL")  # type: ignore[union-attr]
            await command.done
        await stop_processes(reactor, self.procs)

    # -- where things are (loopback here) ---------------------------------

    def host(self, label: str) -> str:
        return "127.0.0.1"

    def wrap(self, label: str) -> list[str]:
        """
        What runs a command as on process C{label}'s host.
        """
        return []

    def address(self, label: str) -> str:
        return f"{self.host(label)}:{self.peer_ports[label]}"

    # -- processes --------------------------------------------------------

    def start(self, label: str, peers: str) -> None:
        """
        Start process C{label} as member C{label[0]}, dialing C{peers}.
        """
        peer_list = ",".join(f"{p}={self.address(p)}" for p in peers)
        command = [
            *self.wrap(label),
            *TWISTD,
            f"--logfile={self.workdir / f'{label}.log'}",
            "isis",
            f"--id={label[0]}",
            f"--port=tcp:{self.peer_ports[label]}:interface={self.host(label)}",
            f"--client-port={self.client_ports[label]}",
            f"--group={self.group}",
            f"--handler=jsonl:{self.workdir / f'{label}.jsonl'}",
            f"--peers={peer_list}",
            *self.timers,
        ]
        proc = NodeProcess(label)
        program = shutil.which(command[0]) or command[0]
        reactor.spawnProcess(
            proc, program, command, env=dict(os.environ), path=str(self.workdir)
        )
        self.procs[label] = proc

    async def isis(self, label: str, *args: str) -> tuple[str, int]:
        """
        Run C{isis --node PORT ARGS} against process C{label}'s client API.
        """
        command = spawn(
            [*self.wrap(label), *ISIS, "--node", str(self.client_ports[label]), *args]
        )
        return await command.done

    async def status(self, label: str) -> dict[str, Any] | None:
        """
        C{isis status --json} of process C{label}, or L{None} while it is
        not up yet.
        """
        proc = self.procs[label]
        if proc.ended.called:
            self.test.fail(f"{label} ended:\n{self.log(label)[-3000:]}")
        out, code = await self.isis(label, "status", "--json")
        return json.loads(out) if code == 0 else None

    async def up(self, *labels: str) -> None:
        for label in labels:

            async def answers(label: str = label) -> bool:
                return await self.status(label) is not None

            await poll(answers, f"{label} answering")

    async def connected(self, *labels: str) -> None:
        for label in labels:

            async def linked(label: str = label) -> bool:
                status = await self.status(label)
                return status is not None and all(
                    p["connected_out"] and p["connected_in"]
                    for p in status["peers"].values()
                )

            await poll(linked, f"{label} connected to its peers")

    def load(self, label: str, count: int) -> None:
        """
        C{isis send} C{count} payloads naming C{label} through its client
        API, in the background (a claimant's are never delivered; its
        command gives up after a while).
        """
        payloads = [f"{label}:{i}" for i in range(count)]
        self.commands.append(
            spawn(
                [
                    *self.wrap(label),
                    *ISIS,
                    "--node",
                    str(self.client_ports[label]),
                    "send",
                    "--quiet",
                    "--timeout=20",
                    *payloads,
                ]
            )
        )

    async def delivered(self, labels: str, count: int) -> None:
        for label in labels:

            async def enough(label: str = label) -> bool:
                status = await self.status(label)
                return status is not None and status["delivered"] >= count

            await poll(enough, f"{label} delivering {count}")

    def log(self, label: str) -> str:
        path = self.workdir / f"{label}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def lines(self, label: str, *words: str) -> list[str]:
        return [
            line
            for line in self.log(label).splitlines()
            if all(word in line for word in words)
        ]

    async def logged(self, labels: str, *words: str) -> None:
        async def said() -> bool:
            return all(self.lines(label, *words) for label in labels)

        await poll(said, f"{', '.join(labels)} logging {words}")

    def jsonl(self, label: str) -> Path:
        return self.workdir / f"{label}.jsonl"

    def records(self, label: str) -> list[str]:
        """
        Every line of process C{label}'s delivery log (views included).
        """
        path = self.jsonl(label)
        lines = path.read_text().splitlines() if path.exists() else []
        return [line for line in lines if '"sender"' in line]

    async def check(self, labels: Sequence[str]) -> tuple[str, int]:
        """
        C{isis check} on the delivery logs of C{labels} that exist.
        """
        files = [str(self.jsonl(x)) for x in labels if self.jsonl(x).exists()]
        return await spawn([*ISIS, "check", *files]).done


class NamespaceMembers(Members):
    """
    The same processes, each in a network namespace of its own, with an
    address of its own on a bridge in one more namespace: separate hosts.
    """

    def __init__(self, test: TestCase, group: str, timers: Sequence[str]) -> None:
        reason = namespaces_unavailable()
        if reason:
            raise SkipTest(reason)
        tag = f"isis{os.getpid() % 10000}{len(test.id()) % 100}"
        self.net = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
        self.switch = f"{tag}sw"
        self.spaces = {label: f"{tag}{label}" for label in ["a", "b", "c", "a2"]}
        test.addCleanup(self.teardown)
        ip("netns", "add", self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        for n, (label, space) in enumerate(self.spaces.items(), 1):
            ip("netns", "add", space)
            here, there = f"v{label}", f"v{label}s"
            ip(
                "link", "add", here, "netns", space, "type", "veth",
                "peer", "name", there, "netns", self.switch,
            )  # fmt: skip
            ip("-n", self.switch, "link", "set", there, "master", "br0")
            ip("-n", self.switch, "link", "set", there, "up")
            ip("-n", space, "addr", "add", f"{self.net}.{n}/24", "dev", here)
            ip("-n", space, "link", "set", here, "up")
            ip("-n", space, "link", "set", "lo", "up")
        super().__init__(test, group, timers)

    def teardown(self) -> None:
        for space in [*self.spaces.values(), self.switch]:
            subprocess.run(["ip", "netns", "del", space], capture_output=True)

    def host(self, label: str) -> str:
        return f"{self.net}.{list(self.spaces).index(label) + 1}"

    def wrap(self, label: str) -> list[str]:
        return ["ip", "netns", "exec", self.spaces[label]]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def namespaces_unavailable() -> str | None:
    """
    Why processes cannot be put in network namespaces here, or L{None}.
    """
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"isisprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.decode(errors='replace').strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class SecondClaimantTests(TestCase):
    """
    A second C{twistd isis --id a} on its own port (and host), with the same
    C{--peers}, while the group a, b, c runs, or before a starts.
    """

    timeout = 240
    members = Members

    async def judge(self, members: Members) -> None:
        """
        Load every process, the claimant included, and check that the
        legitimate logs agree, hold nothing of the claimant, and that b and
        c said once who holds the name.
        """
        for label in ("a", "b", "c", "a2"):
            members.load(label, 30)
        await members.delivered("abc", 90)
        histories = {x: load_jsonl(members.jsonl(x)) for x in "abc"}
        for x in "abc":
            self.assertEqual(len(histories[x]), 90)
            self.assertEqual(
                [d for d in histories[x] if d.payload.startswith(b"a2:")], []
            )
        status = await members.status("a2")
        assert status is not None
        self.assertEqual(status["delivered"], 0)
        result = check(histories)
        self.assertTrue(result.ok, result.summary())
        out, code = await members.check(["a", "b", "c"])
        self.assertEqual(code, 0, out)
        # The claimant's log holds nothing: behind, never apart.
        self.assertEqual(members.records("a2"), [])
        for x in "bc":
            [first, *more] = members.lines(x, CLAIMANT)
            self.assertIn(f"'{x}' reaches 'a' at {members.address('a')}", first)
            self.assertTrue(all("more like it" in line for line in more), more)
        told = members.lines("a2", CLAIMANT)
        self.assertTrue(told, members.log("a2")[-3000:])
        self.assertTrue(all("refused this node" in line for line in told), told)
        self.assertEqual(members.lines("a", CLAIMANT), [])

    def test_claimant_while_group_runs(self) -> Deferred[None]:
        async def go() -> None:
            members = self.members(self, "claimant", PATIENT)
            for x in "abc":
                members.start(x, "abc".replace(x, ""))
            await members.up(*"abc")
            await members.connected(*"abc")
            members.start("a2", "bc")
            await members.up("a2")
            await members.logged("bc", CLAIMANT)
            await self.judge(members)

        return deferred(go())

    def test_claimant_before_the_member(self) -> Deferred[None]:
        async def go() -> None:
            members = self.members(self, "claimant-first", PATIENT)
            for x in "bc":
                members.start(x, "abc".replace(x, ""))
            members.start("a2", "bc")
            await members.up("b", "c", "a2")
            members.load("a2", 5)
            await pause(1.0)
            members.start("a", "bc")
            await members.up("a")
            await members.logged("bc", CLAIMANT)
            await self.judge(members)

        return deferred(go())


class MemberListTests(TestCase):
    """
    Member a started with C{--peers} that omit c, while b and c list
    everyone.
    """

    timeout = 240
    members = Members

    def test_member_started_with_other_peers(self) -> Deferred[None]:
        async def go() -> None:
            members = self.members(self, "lists", QUICK)
            members.start("a", "b")
            members.start("b", "ac")
            members.start("c", "ab")
            await members.up(*"abc")
            for x in "abc":
                members.load(x, 30)
            await members.delivered("bc", 60)
            for x in "bc":
                status = await members.status(x)
                assert status is not None
                self.assertEqual(status["view_members"], ["b", "c"])
            status = await members.status("a")
            assert status is not None
            self.assertEqual(status["delivered"], 0)
            histories = {x: load_jsonl(members.jsonl(x)) for x in "bc"}
            for x in "bc":
                self.assertEqual(
                    [d for d in histories[x] if d.payload.startswith(b"a:")], []
                )
            result = check(histories)
            self.assertTrue(result.ok, result.summary())
            out, code = await members.check("bc")
            self.assertEqual(code, 0, out)
            self.assertEqual(members.records("a"), [])
            b_side = "'a' lists members a, b; 'b' lists a, b, c ('a' omits c)"
            a_side = "'b' lists members a, b, c; 'a' lists a, b (only 'b' lists c)"
            for x, mine, theirs in [("b", b_side, a_side), ("a", a_side, b_side)]:
                [_, *more] = members.lines(x, "dropped", mine)
                self.assertTrue(all("more like it" in line for line in more), more)
                self.assertTrue(members.lines(x, "refused this node", theirs))

        return deferred(go())


class NamespaceClaimantTests(SecondClaimantTests):
    """
    L{SecondClaimantTests} with every process on a host of its own.
    """

    members = NamespaceMembers


class NamespaceMemberListTests(MemberListTests):
    """
    L{MemberListTests} with every process on a host of its own.
    """

    members = NamespaceMembers
