"""
Losing the majority with real processes: two of three C{twistd -n isis}
members are killed under traffic, the one left blocks, and an operator's
forced view change (C{isis force-view}, here through the client API it
uses) lets it go on.  Judged over every member's C{jsonl:} log.
"""

from __future__ import annotations

import signal

from twisted.internet.defer import Deferred

from isis_twisted.api.commands import CannotForceViewError
from tests.test_node import deferred
from tests.test_processes_membership import ProcessMembershipTestCase


class ForceViewTests(ProcessMembershipTestCase):
    def test_survivor_goes_on_when_forced(self) -> Deferred[None]:
        """
        Blocked after b and c are killed, a refuses nothing and delivers
        nothing new; forced, it installs a view of itself alone, delivers
        the multicasts that waited for b and c, and goes on.
        """

        async def run() -> None:
            group = await self.group(3)
            load = await self.loaded(group)
            a = group.clients["a"]
            # Not blocked yet: the node refuses, in one sentence.
            with self.assertRaises(CannotForceViewError) as caught:
                await a.force_view()
            self.assertIn("not blocked", str(caught.exception))
            for name in "bc":
                load.quiet(name)
                group.signal(name, signal.SIGKILL)
            for name in "bc":
                await group.processes[name].ended
            await self.until(
                group,
                ["a"],
                lambda s: s["a"]["state"] == "blocked",
                "a to say it is blocked",
            )
            waiting = load.members["a"].in_flight
            self.assertGreater(waiting, 0)
            self.assertEqual(await a.force_view(), ["a"])
            await self.went_on(group, load, ["a"], 1)
            await self.settle(group, load, ["a"])
            status = await group.status("a")
            self.assertEqual(status["forced_views"], [1])
            await group.stop()
            self.assert_judged(group, load, ["b", "c"])
            log = group.log("a")
            self.assertIn("forces a view change to a, without b, c", log)
            self.assertIn("installed view 1 of a (without b, c)", log)

        return deferred(run())
