"""
A full disk under a real member: c's C{jsonl:} file lives on a small tmpfs
that the test fills while three C{twistd -n isis} members are loaded.  c
must stop at the record it could not write, say so once, go on from
exactly there when space comes back, and end with a file identical to the
others', record for record: no hole, no duplicate, no torn line.

Needs root (to mount the tmpfs); skipped otherwise.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

from twisted.internet.defer import Deferred

from isis_twisted.tools.testing import settled_records
from tests.test_node import deferred
from tests.test_processes_membership import (
    FAST,
    ProcessGroup,
    ProcessMembershipTestCase,
    reactor,
)


def fill(directory: Path) -> Path:
    """
    Write a file in C{directory} until its filesystem is full.

    @return: The file, to remove to make room again.
    """
    filler = directory / "filler"
    block = b"\0" * 4096
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return filler


class FullDiskTests(ProcessMembershipTestCase):
    def setUp(self) -> None:
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")

    def mount(self, where: Path) -> None:
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {done.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", str(where)], check=False)

    def test_member_stalls_on_a_full_disk_and_resumes(self) -> Deferred[None]:
        """
        c stalls at the first record its disk has no room for; a and b go
        on; c says so once, in its log and its status; when the filler is
        removed, c writes that record and every later one, and its file
        ends identical to a's and b's.
        """

        async def run() -> None:
            workdir = Path(self.mktemp()).resolve()
            workdir.mkdir(parents=True)
            disk = workdir / "disk"
            self.mount(disk)
            # twistd opens c.jsonl in the work directory: it is on the tmpfs.
            (workdir / "c.jsonl").symlink_to(disk / "c.jsonl")
            group = ProcessGroup(
                reactor,
                3,
                workdir,
                [*FAST, "--handler-give-up=600"],
                group=self.id()[-40:],
            )
            self.addCleanup(lambda: deferred(group.stop()))
            await group.start()
            load = await self.loaded(group)
            filler = fill(disk)
            said = await self.until(
                group,
                ["c"],
                lambda s: bool(s["c"]["stuck_handlers"]),
                "c to say its handler is stuck",
            )
            stuck = said["c"]["stuck_handlers"][0]
            self.assertIn("No space left on device", stuck["reason"])
            index = stuck["index"]
            # a and b go on well past where c stopped; c holds back.
            await self.until(
                group,
                ["a", "b"],
                lambda s: all(x["delivered"] > index + 300 for x in s.values()),
                "a and b to go on",
            )
            status = await group.status("c")
            self.assertEqual(status["stuck_handlers"][0]["index"], index)
            self.assertGreater(status["undelivered_records"], 0)
            filler.unlink()
            await self.until(
                group,
                ["c"],
                lambda s: not s["c"]["stuck_handlers"],
                "c to go on once there is room",
            )
            await self.settle(group, load, ["a", "b", "c"])
            await group.stop()
            self.assert_judged(group, load, [])
            files = {n: settled_records(workdir / f"{n}.jsonl") for n in "abc"}
            self.assertEqual(files["c"], files["a"])
            self.assertEqual(files["b"], files["a"])
            log = group.log("c")
            self.assertEqual(log.count(f"could not keep record {index} "), 1)
            self.assertEqual(log.count("No space left on device"), 1)
            self.assertEqual(log.count(f"kept record {index} "), 1)

        return deferred(run())
