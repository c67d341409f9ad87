"""
A member that can never be let in, with real processes: C{twistd -n isis}
members on loopback, driven through their client APIs with the C{isis}
command.

A group of three runs; a fourth process is started with the wrong
C{--group}, or as a replacement of a member with the wrong
C{--secret-file}.  It exits, with status 78 and one sentence on stderr,
within seconds instead of redialling for ever; the three go on delivering,
and each logs the refusal once, not a line per redial.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from isis_twisted.app.tap import EX_REFUSED
from isis_twisted.tools.localcluster import TWISTD, NodeProcess, stop_processes
from isis_twisted.tools.testing import free_ports
from tests.test_processes_mistakes import ISIS, deferred, poll, spawn

reactor: Any = _reactor

TIMERS = ["--heartbeat=0.2", "--silence=1", "--suspect-after=1.5"]

GONE_WITHIN = 20.0
"""
Seconds the mistaken member has to exit, from its start (it is refused on
its first dials, a second or so on a loaded machine).
"""


class Process(NodeProcess):
    """
    A member's process, with what it wrote on stderr kept apart.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.err = bytearray()

    def errReceived(self, data: bytes) -> None:
        super().errReceived(data)
        self.err += data


class Group:
    """
    Processes in one directory, each with a log file, a C{jsonl:} log and a
    client API, known by a label.
    """

    def __init__(self, test: TestCase) -> None:
        self.test = test
        self.workdir = Path(test.mktemp()).resolve()
        self.workdir.mkdir(parents=True)
        labels = ["a", "b", "c", "x"]
        ports = free_ports(2 * len(labels))
        self.peer_ports = dict(zip(labels, ports, strict=False))
        self.client_ports = dict(zip(labels, ports[len(labels) :], strict=True))
        self.procs: dict[str, Process] = {}
        self.secret = self.workdir / "secret"
        self.secret.write_text("the group's secret, long enough\n")
        test.addCleanup(lambda: deferred(self.stop()))

    async def stop(self) -> None:
        await stop_processes(reactor, self.procs)

    def start(
        self, label: str, name: str, peers: str, *options: str, secret: Path | None
    ) -> Process:
        """
        Start process C{label} as member C{name}, dialing the processes
        C{peers} (by label, which are their names).
        """
        peer_list = ",".join(
            f"{p}=127.0.0.1:{self.peer_ports[p]}" for p in peers if p != label
        )
        command = [
            *TWISTD,
            f"--logfile={self.workdir / f'{label}.log'}",
            "isis",
            f"--id={name}",
            f"--port={self.peer_ports[label]}",
            f"--client-port={self.client_ports[label]}",
            f"--handler=jsonl:{self.workdir / f'{label}.jsonl'}",
            f"--peers={peer_list}",
            *([f"--secret-file={secret}"] if secret is not None else []),
            *TIMERS,
            *options,
        ]
        proc = Process(label)
        program = shutil.which(command[0]) or command[0]
        reactor.spawnProcess(
            proc, program, command, env=dict(os.environ), path=str(self.workdir)
        )
        self.procs[label] = proc
        return proc

    async def isis(self, label: str, *args: str) -> tuple[str, int]:
        command = spawn([*ISIS, "--node", str(self.client_ports[label]), *args])
        return await command.done

    async def status(self, label: str) -> dict[str, Any] | None:
        proc = self.procs[label]
        if proc.ended.called:
            self.test.fail(f"{label} ended:\n{self.log(label)[-3000:]}")
        out, code = await self.isis(label, "status", "--json")
        return json.loads(out) if code == 0 else None

    async def connected(self, *labels: str) -> None:
        for label in labels:

            async def linked(label: str = label) -> bool:
                status = await self.status(label)
                return status is not None and all(
                    p["connected_out"] and p["connected_in"]
                    for p in status["peers"].values()
                )

            await poll(linked, f"{label} connected to its peers")

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


class ShutOutTests(TestCase):
    """
    A member started with the wrong group name or secret exits with one
    sentence; the others keep working and log it once.
    """

    timeout = 180

    async def run_mistake(
        self,
        group: Group,
        mistaken: Process,
        *,
        refused_by: str,
        says: str,
        healthy_says: str,
    ) -> None:
        started = reactor.seconds()

        async def ended() -> bool:
            return mistaken.ended.called

        await poll(ended, "the mistaken member to exit", GONE_WITHIN)
        self.assertLess(reactor.seconds() - started, GONE_WITHIN)
        self.assertEqual(await mistaken.ended, EX_REFUSED, group.log("x")[-3000:])
        err = mistaken.err.decode(errors="replace").splitlines()
        self.assertEqual(len(err), 1, err)
        [sentence] = err
        self.assertTrue(sentence.startswith("isis: member "), sentence)
        self.assertIn("can never be let in", sentence)
        self.assertIn(f"{refused_by} of its", sentence)
        self.assertIn(says, sentence)
        # Its log says it once too.
        self.assertEqual(len(group.lines("x", "can never be let in")), 1)

        # The group goes on: a multicast through each member is delivered by all.
        for label in "abc":
            out, code = await group.isis(label, "send", "--quiet", f"after {label}")
            self.assertEqual(code, 0, out)
        await group.delivered("abc", 3)
        # Each member that refused it logged that once, however often it
        # was dialed, and counted every refusal.
        for label in refused_by.split(", "):
            self.assertEqual(
                len(group.lines(label, healthy_says)), 1, group.log(label)[-3000:]
            )
            status = await group.status(label)
            assert status is not None
            self.assertGreaterEqual(status["rejected_connections"], 1)
            self.assertLess(len(group.log(label).splitlines()), 60)

    async def start_group(self, group: Group) -> None:
        for label in "abc":
            group.start(label, label, "abc", secret=group.secret)
        await group.connected("a", "b", "c")

    def test_wrong_group(self) -> Deferred[None]:
        """
        A fourth member started with another C{--group}, dialing the three.
        """

        async def go() -> None:
            group = Group(self)
            await self.start_group(group)
            mistaken = group.start(
                "x", "d", "abc", "--group=wrong", secret=group.secret
            )
            await self.run_mistake(
                group,
                mistaken,
                refused_by="a, b, c",
                says="start it with the --group of the other members",
                healthy_says="group 'wrong' is not this node's group 'isis'",
            )

        return deferred(go())

    def test_wrong_secret(self) -> Deferred[None]:
        """
        A replacement for member c, on a port of its own, started with
        another C{--secret-file}.
        """

        async def go() -> None:
            group = Group(self)
            await self.start_group(group)
            wrong = group.workdir / "wrong-secret"
            wrong.write_text("another secret, also long enough\n")
            mistaken = group.start("x", "c", "ab", secret=wrong)
            await self.run_mistake(
                group,
                mistaken,
                refused_by="a, b",
                says="give it the same --secret-file as the other members",
                healthy_says="failed the group secret check",
            )

        return deferred(go())

    def test_refused_backs_off(self) -> Deferred[None]:
        """
        A member refused for a reason that is not for good (here: started
        with a member list the others do not share) stays up and redials,
        but backed off: its seventh refusal by a peer comes 5.1 s (0.1 + 0.2
        + 0.4 + 0.8 + 1.6 + 2) after its first (at least 4 s as seen here,
        through status polls), where without the back-off it came within
        half a second; the peer logs it once and counts each.
        """

        async def go() -> None:
            group = Group(self)
            await self.start_group(group)
            group.start("x", "d", "abc", secret=group.secret)

            async def refused(times: int) -> bool:
                status = await group.status("x")
                return status is not None and status["peers"]["a"]["refused"] >= times

            await poll(lambda: refused(1), "a first refusal of d by a", 60)
            first = reactor.seconds()
            await poll(lambda: refused(7), "seven refusals of d by a", 60)
            self.assertGreaterEqual(reactor.seconds() - first, 4.0)
            status = await group.status("x")
            assert status is not None
            self.assertIsNone(status["refused_because"])
            lines = group.lines("a", "'d' lists members")
            self.assertEqual(len(lines), 1, group.log("a")[-3000:])
            a = await group.status("a")
            assert a is not None
            self.assertGreaterEqual(a["rejected_connections"], 7)
            self.assertLess(a["rejected_connections"], 20)

        return deferred(go())
