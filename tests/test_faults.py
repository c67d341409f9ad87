"""
Tests for L{isis_twisted.tools.faults}: real twistd groups of 3 and 5 members
under seeded link faults, checked by the history checker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from isis_twisted.tools.faults import FaultRun, run_faults

reactor: Any = _reactor

SECONDS = float(os.environ.get("ISIS_FAULT_SECONDS", "8"))
"""
How long each run injects faults; raise it for a longer run in CI.
"""


class FaultInjectionTests(TestCase):
    timeout = 300

    def run_group(self, nodes: int, seed: int) -> Deferred[FaultRun]:
        workdir = Path(self.mktemp()).resolve()
        workdir.mkdir(parents=True)
        return Deferred.fromCoroutine(
            run_faults(reactor, nodes, SECONDS, seed, workdir, rate=150.0)
        )

    def check_run(self, run: FaultRun) -> None:
        # The failure message carries the seed and the replay command.
        self.assertTrue(run.result.ok, run.describe())
        self.assertEqual(run.result.messages, run.sent, run.describe())
        self.assertGreater(run.sent, 300, run.describe())
        self.assertGreater(sum(run.faults.values()), 10, run.describe())
        # The faults bit: connections were re-made and frames resent.
        self.assertGreater(
            run.links["connections"], run.nodes * (run.nodes - 1), run.describe()
        )
        self.assertGreater(run.links["resent"], 0, run.describe())

    def test_three_nodes(self) -> Deferred[None]:
        return self.run_group(3, seed=3).addCallback(self.check_run)

    def test_five_nodes(self) -> Deferred[None]:
        return self.run_group(5, seed=5).addCallback(self.check_run)
