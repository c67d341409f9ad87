"""
A kvstore replica killed and restarted, with real processes: three C{twistd
-n isis} members run the kvstore example's store as a state handler; c is
killed with SIGKILL and started again with the same command, empty, while
a and b go on; it restores the store by snapshot, and the three stores end
identical (each member logs its store's digest when it stops).  This is
one small run of C{bench/snapshot.py}.
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.test_node import deferred
from tests.test_processes_membership import reactor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from snapshot import snapshot_run


class KVStoreSnapshotTests(TestCase):
    timeout = 180

    def test_killed_replica_restores_the_store(self) -> Deferred[None]:
        async def run() -> None:
            workdir = Path(self.mktemp()).resolve()
            workdir.mkdir(parents=True)
            row = await snapshot_run(reactor, 2, 1024, 100.0, workdir, before=1.0)
            self.assertTrue(row["identical"], row["digests"])
            self.assertEqual(row["keys"], 2048)
            # The store's values alone are 2 MiB.
            self.assertGreater(row["restored_bytes"], 2 << 20)
            self.assertIn(row["giver"], ("a", "b"))
            self.assertGreater(row["during"], 0)

        return deferred(run())
