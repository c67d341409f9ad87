"""
Tests for L{isis_twisted.tools.simulation}, and through it the guarantees of the
engine: thousands of random, seeded schedules checked by the history checker.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Sequence
from contextlib import redirect_stdout

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import MAX_CLOCK, Engine, Frame, Timestamp
from isis_twisted.tools.simulation import (
    MEMBER_NAMES,
    ONE_MIB,
    Outcome,
    Simulation,
    main,
    run_seed,
)

SCHEDULES = int(os.environ.get("ISIS_SIM_SCHEDULES", "2800"))
"""
How many random schedules the suite runs (spread over group sizes 1 to 7).
"""

CRASH_SCHEDULES = int(os.environ.get("ISIS_SIM_CRASH_SCHEDULES", "1500"))
"""
How many random schedules with crashing members the suite runs (group sizes
2 to 7, one to all but one member crashing).
"""


def crash_seed(seed: int, factory: type[Engine] = Engine) -> Outcome:
    """
    The crash scenario of C{seed}: 2 to 7 members, up to all but one crash.
    """
    nodes = 2 + seed % 6
    return run_seed(seed, factory, nodes=nodes, crashes=1 + seed % (nodes - 1))


def failures(outcomes: Sequence[Outcome]) -> str:
    bad = [o for o in outcomes if not o.ok]
    return "\n\n".join(o.describe() for o in bad[:3]) + (
        f"\n({len(bad)} failing seeds in all)" if bad else ""
    )


class RandomScheduleTests(SynchronousTestCase):
    def test_guarantees_hold_on_every_schedule(self) -> None:
        """
        Every seeded schedule, for groups of 1 to 7, keeps total order,
        agreement, integrity, FIFO, causality and validity, and once the
        network drains nothing is left undelivered.
        """
        outcomes = [run_seed(seed) for seed in range(SCHEDULES)]
        self.assertEqual(failures(outcomes), "")
        sizes = {len(o.members) for o in outcomes}
        self.assertEqual(sizes, set(range(1, 8)))
        # The suite is not vacuous: the schedules carried real traffic.
        self.assertGreater(sum(o.sent for o in outcomes), 15 * SCHEDULES)
        self.assertGreater(sum(o.result.deliveries for o in outcomes), 50 * SCHEDULES)

    def test_same_seed_same_run(self) -> None:
        one, two = run_seed(4242), run_seed(4242)
        self.assertEqual(one.histories, two.histories)
        self.assertEqual(one.frames, two.frames)
        self.assertNotEqual(run_seed(4243).histories, one.histories)


class CrashScheduleTests(SynchronousTestCase):
    def test_crashed_members_histories_are_prefixes(self) -> None:
        """
        Members crash at random steps (frames in flight to them lost, a
        random prefix of those from them delivered): what each crashed
        member delivered is a prefix of every survivor's deliveries and held
        messages, and every other guarantee holds.
        """
        outcomes = [crash_seed(seed) for seed in range(CRASH_SCHEDULES)]
        self.assertEqual(failures(outcomes), "")
        crashed = [o for o in outcomes if o.crashed]
        self.assertGreater(len(crashed), len(outcomes) // 2)
        # Not vacuous: crashed members had delivered things first.
        delivered_then_crashed = sum(
            1 for o in outcomes for m in o.crashed if o.histories[m]
        )
        self.assertGreater(delivered_then_crashed, CRASH_SCHEDULES // 10)

    def test_crashes_replay(self) -> None:
        one, two = crash_seed(77), crash_seed(77)
        self.assertEqual(one.histories, two.histories)
        self.assertEqual(one.crashed, two.crashed)
        self.assertIn("--crashes", one.replay)

    def test_crashed_member_sends_and_receives_nothing(self) -> None:
        sim = Simulation(list("abc"), random.Random(3))
        sim.multicast("a", b"lost")
        sim.crash("a")
        sim.end_turn("b")
        sim.multicast("b", b"kept")
        sim.end_turn("b")
        self.assertEqual(sim.turns_due(), [])
        self.assertEqual(sim.busy_links(), [("b", "c")])
        self.assertEqual(sim.live(), ["b", "c"])


class EdgeCaseTests(SynchronousTestCase):
    def play(
        self,
        members: Sequence[str],
        plan: Sequence[tuple[str, bytes]],
        seed: int = 0,
        max_burst: int = 4,
    ) -> Simulation:
        sim = Simulation(members, random.Random(seed))
        sim.run(plan, max_burst=max_burst)
        result = sim.check()
        self.assertTrue(result.ok, result.summary())
        self.assertEqual(sim.stuck(), {})
        for history in sim.histories.values():
            self.assertEqual(
                [d.payload for d in history], [d.payload for d in sim.histories["a"]]
            )
            self.assertEqual(len(history), len(plan))
        return sim

    def test_one_member(self) -> None:
        sim = self.play(["a"], [("a", b"1"), ("a", b"2")])
        self.assertEqual(sim.frames, 0)

    def test_two_members(self) -> None:
        for seed in range(50):
            self.play(["a", "b"], [("a", b"x"), ("b", b"y"), ("a", b"z")], seed)

    def test_silent_member(self) -> None:
        plan = [(m, f"{m}{i}".encode()) for i in range(10) for m in "abc"]
        for seed in range(30):
            sim = self.play(["a", "b", "c", "d"], plan, seed)
            self.assertEqual(len(sim.histories["d"]), len(plan))

    def test_bursts(self) -> None:
        plan = [("a", f"a{i}".encode()) for i in range(100)] + [
            ("b", f"b{i}".encode()) for i in range(100)
        ]
        for seed in range(10):
            self.play(list("abc"), plan, seed, max_burst=50)

    def test_empty_and_one_mib_payloads(self) -> None:
        plan = [("a", b""), ("b", ONE_MIB), ("c", b""), ("a", ONE_MIB + b"!")]
        for seed in range(20):
            sim = self.play(list("abc"), plan, seed)
            payloads = {d.payload for d in sim.histories["c"]}
            self.assertEqual(payloads, {b"", ONE_MIB, ONE_MIB + b"!"})

    def test_no_traffic(self) -> None:
        sim = self.play(list("abc"), [])
        self.assertEqual(sim.frames, 0)


class EagerEngine(Engine):
    """
    A broken engine: delivers once the I{most} advanced member has passed the
    head, instead of every member, and without waiting for receipts.
    """

    def _delivery_bound(self) -> Timestamp:
        if not self.peers:
            return super()._delivery_bound()
        return max(self.horizons().values())

    def _held_everywhere(self) -> dict[str, int]:
        return dict.fromkeys(self.members, MAX_CLOCK)


class NonUniformEngine(Engine):
    """
    A broken engine: the ordering rule alone, without receipt horizons (the
    rule before uniform agreement), so a member may deliver a message that
    no other member holds yet.
    """

    def _held_everywhere(self) -> dict[str, int]:
        return dict.fromkeys(self.members, MAX_CLOCK)


class ForgetfulClockEngine(Engine):
    """
    A broken engine: its clock ignores what it receives, so its stamps no
    longer respect happened-before.
    """

    def receive(self, sender: str, frame: Frame) -> None:
        before = self.clock
        super().receive(sender, frame)
        self._clock = before


class FaultyEngineTests(SynchronousTestCase):
    """
    The simulation and checker catch engines that break the algorithm: the
    suite above could fail.
    """

    def caught(self, factory: type[Engine]) -> list[Outcome]:
        outcomes = [run_seed(seed, factory, nodes=3 + seed % 5) for seed in range(300)]
        return [o for o in outcomes if not o.ok]

    def test_eager_delivery_is_caught(self) -> None:
        bad = self.caught(EagerEngine)
        self.assertGreater(len(bad), 10)
        kinds = {v.guarantee for o in bad for v in o.result.violations}
        self.assertIn("total order", kinds)
        self.assertIn("--seed", bad[0].describe())

    def test_delivery_without_receipts_is_caught(self) -> None:
        """
        Without receipt horizons every schedule without crashes still keeps
        the guarantees, but once members crash, a crashed member's history
        is no longer a prefix of the survivors' (uniformity).
        """
        self.assertEqual(self.caught(NonUniformEngine), [])
        bad = [
            o for o in (crash_seed(s, NonUniformEngine) for s in range(600)) if not o.ok
        ]
        self.assertGreater(len(bad), 10)
        kinds = {v.guarantee for o in bad for v in o.result.violations}
        self.assertEqual(kinds, {"uniformity"})
        self.assertIn("--crashes", bad[0].describe())

    def test_forgetful_clock_is_caught(self) -> None:
        bad = self.caught(ForgetfulClockEngine)
        self.assertGreater(len(bad), 10)
        kinds = {v.guarantee for o in bad for v in o.result.violations}
        self.assertIn("causality", kinds)


class CommandTests(SynchronousTestCase):
    def test_show_prints_every_node(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(["--seed", "3", "--nodes", "3", "--messages", "9", "--show"])
        self.assertEqual(code, 0)
        text = out.getvalue()
        self.assertIn("OK", text)
        header = text.splitlines()[0].split()
        self.assertEqual(header, ["#", *MEMBER_NAMES[:3]])
        self.assertIn("--seed 3 --nodes 3 --messages 9", text)

    def test_broken_engine_exits_nonzero(self) -> None:
        bad = next(s for s in range(300) if not run_seed(s, EagerEngine, nodes=3).ok)
        self.assertFalse(run_seed(bad, EagerEngine, nodes=3).ok)
        self.assertTrue(run_seed(bad, nodes=3).ok)
