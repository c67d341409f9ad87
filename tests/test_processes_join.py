"""
Members added at run time, with real processes: a 4th and then a 5th
C{twistd -n isis} member join a running group with C{--join} (the 5th
through the 4th, which no founder was given), each catches up on the whole
stream first (its C{jsonl:} handler is durable) so that every member's log
ends identical, record for record, and the 4th leaves cleanly on SIGTERM.
A member that asks another group exits with one sentence.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from twisted.internet.defer import Deferred, gatherResults

from isis_twisted.tools.testing import settled_records
from tests.test_node import deferred
from tests.test_processes_membership import (
    FAST,
    ProcessGroup,
    ProcessMembershipTestCase,
    reactor,
)


class JoinProcessTests(ProcessMembershipTestCase):
    timeout = 240

    async def whole(self, group: ProcessGroup, names: list[str]) -> None:
        await self.until(
            group,
            names,
            lambda s: all(
                x["state"] == "normal" and x["view_members"] == names
                for x in s.values()
            ),
            f"{', '.join(names)} in one view",
        )

    async def started(self, size: int) -> tuple[ProcessGroup, Path]:
        """
        A running group of C{size} members, stopped at the end of the test,
        and the directory of its logs.
        """
        workdir = Path(self.mktemp()).resolve()
        workdir.mkdir(parents=True)
        group = ProcessGroup(reactor, size, workdir, FAST, group=self.id()[-40:])
        self.addCleanup(lambda: deferred(group.stop()))
        await group.start()
        return group, workdir

    async def alike(self, group: ProcessGroup, names: list[str]) -> None:
        """
        Wait until the members C{names} have delivered alike (a client is
        answered once its own member delivered, not every member).
        """
        await self.until(
            group,
            names,
            lambda s: len({x["delivered"] for x in s.values()}) == 1,
            f"{', '.join(names)} delivering alike",
        )

    async def traffic(self, group: ProcessGroup, names: list[str], each: int) -> None:
        await gatherResults(
            [
                group.clients[n].multicast(f"{n}:{i}".encode())
                for n in names
                for i in range(each)
            ]
        )

    def test_fourth_and_fifth_join_and_one_leaves(self) -> Deferred[None]:
        async def run() -> None:
            group, workdir = await self.started(3)
            await self.traffic(group, ["a", "b", "c"], 20)
            await group.add("d", via=["b"])
            await self.whole(group, ["a", "b", "c", "d"])
            await self.traffic(group, ["a", "b", "c", "d"], 20)
            await group.add("e", via=["d"])
            await self.whole(group, ["a", "b", "c", "d", "e"])
            await self.traffic(group, ["a", "b", "c", "d", "e"], 20)
            group.signal("d", signal.SIGTERM)
            self.assertEqual(await group.processes["d"].ended, 0)
            stay = ["a", "b", "c", "e"]
            await self.whole(group, stay)
            await self.traffic(group, stay, 20)
            await self.alike(group, stay)
            await group.stop()
            records = {n: settled_records(workdir / f"{n}.jsonl") for n in group.names}
            founders = records["a"]
            self.assertEqual(records["b"], founders)
            self.assertEqual(records["c"], founders)
            deliveries = [r for r in founders if "sender" in r]
            self.assertEqual(len(deliveries), 60 + 80 + 100 + 80)
            # A jsonl: handler is durable: a member that joins with an empty
            # file catches up on the whole stream first, so its file is the
            # others' (up to where it left).
            self.assertEqual(records["e"], founders)
            mine = records["d"]
            self.assertEqual(mine, founders[: len(mine)])
            self.assertIn({"view": 3, "members": stay, "index": 241}, founders)
            self.assertEqual(mine[-1]["index"], 240)
            log = group.log("d")
            self.assertIn("found member 'b'", log)
            self.assertIn("caught up: 60 records", log)

        return deferred(run())

    def test_joined_member_killed_and_restarted(self) -> Deferred[None]:
        """
        A member that joined, killed with SIGKILL and started again with
        its own command line (C{--join} again), is added back as a new
        incarnation and catches up from its own file: all four files end
        identical.
        """

        async def run() -> None:
            group, workdir = await self.started(3)
            everyone = ["a", "b", "c", "d"]
            await group.add("d", via=["c"])
            await self.whole(group, everyone)
            await self.traffic(group, everyone, 20)
            await group.kill("d")
            await self.traffic(group, ["a", "b", "c"], 20)
            await group.restart("d")
            await self.whole(group, everyone)
            await self.traffic(group, everyone, 20)
            await self.alike(group, everyone)
            await group.stop()
            records = {n: settled_records(workdir / f"{n}.jsonl") for n in everyone}
            for name in "bcd":
                self.assertEqual(records[name], records["a"], name)
            deliveries = [r for r in records["a"] if "sender" in r]
            self.assertEqual(len(deliveries), 80 + 60 + 80)
            # Added back, it was given what it missed after its own file's end.
            self.assertRegex(group.log("d"), r"caught up: [1-9][0-9]* records")
            self.assertIn("installed view 3 of a, b, c, d", group.log("a"))

        return deferred(run())

    def test_another_group_exits_with_one_sentence(self) -> Deferred[None]:
        async def run() -> None:
            group, _ = await self.started(2)
            # Its client API may listen before it gives up, or not.
            with contextlib.suppress(RuntimeError):
                await group.add("x", via=["a", "b"], options=["--group=other"])
            process = group.processes["x"]
            self.assertEqual(await process.ended, 78)
            said = process.output.decode()
            lines = [line for line in said.splitlines() if line.startswith("isis:")]
            self.assertEqual(len(lines), 1, said)
            self.assertIn("cannot join group 'other'", lines[0])
            self.assertNotIn("Traceback", said)

        return deferred(run())
