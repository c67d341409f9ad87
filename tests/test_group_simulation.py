"""
Tests for L{isis_twisted.tools.group_simulation}, and through it the membership
protocol: thousands of seeded schedules with crashes (coordinators among
them, at every step of a flush), partitions that heal and false suspicions,
judged by the view checker; and broken variants of the protocol, each
caught.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout

import attrs
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import MAX_CLOCK, Delivery, Engine, Record
from isis_twisted.core.membership import BLOCKED, NORMAL, REMOVED, Membership
from isis_twisted.core.transfer import Giving, give
from isis_twisted.core.views import Fetch, NoRecords, Promise, Proposal, View
from isis_twisted.tools.group_simulation import (
    FLUSH_TIMEOUT,
    GroupOutcome,
    GroupSimulation,
    main,
    run_seed,
)

SCHEDULES = int(os.environ.get("ISIS_GROUP_SCHEDULES", "2000"))
"""
How many seeded membership schedules the suite runs (group sizes 2 to 7).
"""


def failures(outcomes: Sequence[GroupOutcome]) -> str:
    bad = [o for o in outcomes if not o.ok]
    return "\n\n".join(o.describe() for o in bad[:3]) + (
        f"\n({len(bad)} failing seeds in all)" if bad else ""
    )


class ScheduleTests(SynchronousTestCase):
    def test_guarantees_hold_on_every_schedule(self) -> None:
        """
        Every schedule keeps every guarantee the view checker knows, every
        history is a prefix of what the group delivered or holds, and every
        group left with a majority settles into one view with everything
        delivered.
        """
        outcomes = [run_seed(seed) for seed in range(SCHEDULES)]
        self.assertEqual(failures(outcomes), "")
        self.assertEqual({len(o.members) for o in outcomes}, set(range(2, 8)))
        # Not vacuous: views changed, members crashed and were removed, and
        # crashed members had delivered things first.
        self.assertGreater(sum(o.views for o in outcomes), SCHEDULES)
        # Members the groups were not started with joined them, and most
        # delivered after they were added.
        joined = [(o, m) for o in outcomes for m in o.joined]
        self.assertGreater(len(joined), SCHEDULES // 10)
        self.assertGreater(
            sum(
                1
                for o, m in joined
                if any(isinstance(r, Delivery) for r in o.histories[m])
            ),
            len(joined) // 2,
        )
        self.assertGreater(sum(len(o.crashed) for o in outcomes), SCHEDULES // 2)
        self.assertGreater(sum(len(o.removed) for o in outcomes), SCHEDULES // 4)
        self.assertGreater(
            sum(
                1
                for o in outcomes
                for m in o.crashed
                if any(isinstance(r, Delivery) for r in o.histories[m])
            ),
            SCHEDULES // 10,
        )

    def test_restarted_member_whose_members_were_replaced(self) -> None:
        """
        Seed 332 of three members: every founder is replaced by a member
        added at run time, and a founder restarted after that knows only
        members that are out of the group.  It is added again: the one that
        knows a later view tells it where the group went.
        """
        outcome = run_seed(332, nodes=3)
        self.assertEqual(failures([outcome]), "")
        self.assertEqual(outcome.joined, ("d", "e"))
        self.assertEqual(outcome.restarts, 1)

    def test_same_seed_same_run(self) -> None:
        one, two = run_seed(91), run_seed(91)
        self.assertEqual(one.histories, two.histories)
        self.assertEqual(one.views, two.views)
        self.assertNotEqual(run_seed(92).histories, one.histories)


class IntersectionCut(Membership):
    """
    Broken: closes a view with what I{every} member holds (the intersection)
    instead of the union, dropping messages only some survivors hold.
    """

    def _choose(self, members: tuple[str, ...], promises: list[Promise]) -> Proposal:
        chosen = super()._choose(members, promises)
        return Proposal(chosen.members, chosen.floor, chosen.floor)


class NoMajority(Membership):
    """
    Broken: proposes and decides views without a majority.
    """

    def _majority(self, names: object) -> bool:
        return True


class ForgetsAccepted(Membership):
    """
    Broken: a new coordinator ignores proposals already accepted, and may
    decide a second, different end of the same view.
    """

    def _choose(self, members: tuple[str, ...], promises: list[Promise]) -> Proposal:
        fresh = [attrs.evolve(p, accepted=None) for p in promises]
        return super()._choose(members, fresh)


class SkipsTheFlush(Membership):
    """
    Broken: a member the group was not started with goes on as soon as it
    asks to join, in the view it was told to ask, instead of waiting to be
    added through a view change.
    """

    def join(self, now: float, latest: View | None = None) -> None:
        super().join(now, latest)
        if self.engine.members == (self.me,) and len(self.view.members) > 1:
            self.state = NORMAL


class LeakyEngine(Engine):
    """
    Broken: goes on delivering after it was wedged (from leaving members
    too), past what it reported holding.
    """

    def take_deliveries(self) -> list[Delivery]:
        wedged, self._wedged = self._wedged, False
        try:
            return super().take_deliveries()
        finally:
            self._wedged = wedged


class NonUniformEngine(Engine):
    """
    Broken: the delivery rule without receipt horizons.
    """

    def _held_everywhere(self) -> dict[str, int]:
        return dict.fromkeys(self.members, MAX_CLOCK)


Factory = Callable[[str, Sequence[str]], Membership]


def variant(
    cls: type[Membership] = Membership, engine: type[Engine] = Engine
) -> Factory:
    return lambda me, members: cls(me, members, engine, FLUSH_TIMEOUT)


class BrokenVariantTests(SynchronousTestCase):
    """
    Each deliberately broken protocol is caught by the checks on some
    seeds, so the schedules above would catch such a bug.
    """

    def caught(
        self, factory: Factory, seeds: int, nodes: int | None = None
    ) -> set[str]:
        kinds: set[str] = set()
        for seed in range(seeds):
            try:
                outcome = run_seed(seed, factory, nodes)
            except AssertionError:
                # An engine refused a frame: the simulation's own alarm.
                kinds.add("refused frame")
                continue
            kinds.update(p.what for p in outcome.problems)
        return kinds

    def test_intersection_cut(self) -> None:
        self.assertIn("liveness", self.caught(variant(IntersectionCut), 150))

    def test_no_majority(self) -> None:
        kinds = self.caught(variant(NoMajority), 100)
        self.assertIn("primary component", kinds)
        self.assertIn("view agreement", kinds)

    def test_forgetting_accepted_proposals(self) -> None:
        kinds = self.caught(variant(ForgetsAccepted), 400, nodes=3)
        self.assertTrue(kinds & {"view agreement", "prefix", "uniformity"}, kinds)

    def test_delivering_after_wedging(self) -> None:
        kinds = self.caught(variant(engine=LeakyEngine), 400, nodes=3)
        self.assertTrue(kinds & {"prefix", "uniformity", "index"}, kinds)

    def test_delivery_without_receipts(self) -> None:
        kinds = self.caught(variant(engine=NonUniformEngine), 150)
        self.assertTrue(kinds & {"prefix", "uniformity"}, kinds)

    def test_giver_that_skips_a_record(self) -> None:
        """
        A member that leaves out the second record a joiner asks for (a
        replay with a hole) is caught.
        """
        kinds: set[str] = set()
        holes = 0
        for seed in range(400):
            outcome = run_seed(seed, giver=skipping_giver)
            holes += outcome.caught_up
            kinds.update(p.what for p in outcome.problems)
        self.assertGreater(holes, 0)
        self.assertTrue(kinds & {"index", "prefix", "agreement"}, kinds)

    def test_newcomer_that_skips_the_flush(self) -> None:
        kinds = self.caught(variant(SkipsTheFlush), 60)
        self.assertTrue(kinds & {"membership", "prefix", "agreement"}, kinds)

    def test_correct_protocol_on_the_same_seeds(self) -> None:
        self.assertEqual(self.caught(variant(), 150), set())


def skipping_giver(
    me: str, fetch: Fetch, kept: Sequence[Record], delivered: int
) -> Giving | NoRecords:
    """
    L{give}, but without the second record the joiner asks for.
    """
    hole = fetch.after.index + 2
    return give(
        me,
        fetch,
        [r for r in kept if not (isinstance(r, Delivery) and r.index == hole)],
        delivered,
    )


class CommandTests(SynchronousTestCase):
    def test_one_seed(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(["--seed", "3", "--nodes", "5", "--show"])
        self.assertEqual(code, 0)
        self.assertIn("5 members", out.getvalue())
        self.assertIn("OK", out.getvalue())

    def test_many_seeds(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(["--seeds", "20"])
        self.assertEqual(code, 0)
        self.assertIn("20 schedules, 0 failed", out.getvalue())


def drive(sim: GroupSimulation, seconds: float, step: float = 0.05) -> None:
    """
    Run C{sim} without randomness: every member ends its turn, every link
    delivers, then time moves on by C{step}, for C{seconds}.
    """
    end = sim.now + seconds
    while sim.now < end:
        busy = True
        while busy:
            busy = False
            for name in sim.turns_due():
                sim.end_turn(name)
                busy = True
            for link in sim.busy_links():
                sim.transmit(*link)
                busy = True
        sim.advance(step)


def deliveries(sim: GroupSimulation, name: str) -> list[bytes]:
    return [r.payload for r in sim.histories[name] if isinstance(r, Delivery)]


class PitfallTests(SynchronousTestCase):
    """
    The cases DESIGN.md lists as pitfalls, each played out on purpose.
    """

    def group(self, names: str) -> GroupSimulation:
        return GroupSimulation(tuple(names), random.Random(0))

    def test_partition_three_two_and_heal(self) -> None:
        sim = self.group("abcde")
        sim.multicast("a", b"before")
        drive(sim, 0.2)
        sim.partition([set("abc"), set("de")])
        sim.multicast("a", b"majority side")
        sim.multicast("d", b"minority side")
        drive(sim, 5.0)
        for name in "abc":
            self.assertEqual(sim.members[name].view.members, ("a", "b", "c"))
            self.assertIn(b"majority side", deliveries(sim, name))
        for name in "de":
            self.assertEqual(sim.members[name].state, BLOCKED)
            self.assertEqual(deliveries(sim, name), [b"before"])
        sim.heal()
        drive(sim, 10.0)
        for name in "de":
            self.assertEqual(sim.members[name].state, REMOVED)
            self.assertNotIn(b"minority side", deliveries(sim, name))
        self.assertNotIn(b"minority side", deliveries(sim, "a"))
        self.assertEqual(sim.problems(True), [])

    def test_no_side_has_a_majority_until_healed(self) -> None:
        sim = self.group("abcde")
        sim.partition([set("ab"), set("cd"), {"e"}])
        for name in "ace":
            sim.multicast(name, name.encode())
        drive(sim, 5.0)
        for name in "abcde":
            self.assertEqual(sim.members[name].state, BLOCKED)
            self.assertEqual(deliveries(sim, name), [])
        sim.heal()
        drive(sim, 10.0)
        # Once healed, a majority goes on (a member whose suspicion was
        # already in a ballot may be left out), in one view, with every
        # message of its members delivered.
        stayed = [n for n in "abcde" if sim.members[n].state != REMOVED]
        self.assertGreaterEqual(len(stayed), 3)
        self.assertEqual(len({sim.members[n].view for n in stayed}), 1)
        for name in stayed:
            self.assertEqual(sim.members[name].state, NORMAL)
            mine = [p for p in (b"a", b"c", b"e") if p.decode() in stayed]
            self.assertTrue(set(mine) <= set(deliveries(sim, name)))
        self.assertEqual(sim.problems(True), [])

    def test_coordinator_crash_between_accept_and_decide(self) -> None:
        sim = self.group("abcde")
        sim.multicast("b", b"waits for e")
        drive(sim, 0.1)
        sim.crash("e")
        a = sim.members["a"]
        while a.ballot_running is None:
            sim.advance(0.05)
        # One frame at a time, until a has sent its Accepts: then it dies.
        while a.ballot_running is not None and a.ballot_running.proposal is None:
            for name in sim.turns_due():
                sim.end_turn(name)
            sim.transmit(*sim.busy_links()[0])
        sim.end_turn("a")
        sim.crash("a")
        drive(sim, 10.0)
        for name in "bcd":
            member = sim.members[name]
            self.assertEqual(member.view.members, ("b", "c", "d"))
            self.assertIn(b"waits for e", deliveries(sim, name))
        self.assertEqual(sim.problems(True), [])

    def test_late_frames_from_a_removed_member(self) -> None:
        """
        A member cut off is removed; what it sends in the old view before it
        knows is never delivered by the group.
        """
        sim = self.group("abc")
        # c delivers something first: a member left out before it delivered
        # anything asks to join instead (JoinPitfallTests).
        sim.multicast("a", b"first")
        drive(sim, 0.5)
        sim.partition([set("ab"), {"c"}])
        drive(sim, 3.0)
        self.assertEqual(sim.members["a"].view.members, ("a", "b"))
        self.assertEqual(sim.members["c"].view.id, 0)
        sim.multicast("c", b"from c, too late")
        sim.heal()
        drive(sim, 10.0)
        self.assertEqual(sim.members["c"].state, REMOVED)
        for name in "ab":
            self.assertNotIn(b"from c, too late", deliveries(sim, name))
        self.assertEqual(sim.problems(True), [])

    def test_two_coordinators_at_once(self) -> None:
        """
        b suspects a while a suspects e: both run a ballot at once; one end
        of the view is decided, and everyone installs the same views.
        """
        sim = self.group("abcde")
        sim.members["a"].suspect("e", now=0.0)
        sim.members["b"].suspect("a", now=0.0)
        drive(sim, 10.0)
        views = {
            sim.members[n].view for n in "abcde" if sim.members[n].state != REMOVED
        }
        self.assertEqual(len(views), 1)
        self.assertEqual(sim.problems(True), [])


class JoinPitfallTests(SynchronousTestCase):
    """
    Joins and rejoins, played out on purpose: the checker must find every
    joiner's history continuous (caught up to the view it was added to)
    and in agreement with everyone else's.
    """

    def group(self, names: str) -> GroupSimulation:
        return GroupSimulation(tuple(names), random.Random(0))

    def assertWhole(self, sim: GroupSimulation, names: str) -> None:
        self.assertEqual(sim.problems(True), [])

        def same(name: str) -> list[object]:
            # A delivery's `after` is known to its sender only.
            return [
                attrs.evolve(r, after=None) if isinstance(r, Delivery) else r
                for r in sim.histories[name]
            ]

        for name in names:
            self.assertEqual(sim.members[name].state, NORMAL, name)
            self.assertEqual(same(name), same(names[0]), name)

    def test_restart_under_traffic(self) -> None:
        sim = self.group("abc")
        for i in range(5):
            sim.multicast("abc"[i % 3], b"before %d" % i)
        drive(sim, 0.5)
        sim.crash("c")
        sim.multicast("a", b"while c is down")
        drive(sim, 2.0)
        self.assertEqual(sim.members["a"].view.members, ("a", "b"))
        sim.restart("c")
        sim.multicast("b", b"while c joins")
        drive(sim, 3.0)
        self.assertEqual(sim.members["c"].view.members, ("a", "b", "c"))
        sim.multicast("c", b"from the new c")
        drive(sim, 1.0)
        self.assertIn(b"from the new c", deliveries(sim, "a"))
        self.assertIn(b"while c is down", deliveries(sim, "c"))
        self.assertWhole(sim, "abc")

    def test_restart_before_it_was_suspected(self) -> None:
        """
        Restarted at once: the others learn from its links that its old
        incarnation is gone, remove it and add it back.
        """
        sim = self.group("abc")
        sim.multicast("a", b"one")
        drive(sim, 0.3)
        sim.crash("c")
        sim.restart("c")
        drive(sim, 3.0)
        self.assertEqual(sim.members["a"].view.id, 2)
        self.assertWhole(sim, "abc")

    def test_join_during_a_flush(self) -> None:
        """
        c asks to join while a and b are removing d: it is added by the
        next view change, after the one under way.
        """
        sim = self.group("abcd")
        sim.multicast("a", b"one")
        drive(sim, 0.3)
        sim.crash("c")
        drive(sim, 1.5)
        sim.crash("d")
        sim.members["a"].suspect("d", now=sim.now)
        sim.restart("c")
        drive(sim, 5.0)
        self.assertEqual(sim.members["a"].view.members, ("a", "b", "c"))
        self.assertWhole(sim, "abc")

    def test_joiner_crashes_before_it_is_added(self) -> None:
        sim = self.group("abc")
        sim.multicast("a", b"one")
        drive(sim, 0.3)
        sim.crash("c")
        drive(sim, 1.5)
        sim.restart("c")
        sim.end_turn("c")
        sim.crash("c")
        drive(sim, 5.0)
        for name in "ab":
            self.assertEqual(sim.members[name].view.members, ("a", "b"))
        sim.multicast("b", b"after")
        drive(sim, 1.0)
        self.assertIn(b"after", deliveries(sim, "a"))
        self.assertEqual(sim.problems(True), [])

    def lacking(self, names: str, missed: int) -> GroupSimulation:
        """
        A group in which c crashed and the others delivered C{missed}
        messages of 60 bytes without it (many RECORDS chunks), then c
        restarted.
        """
        sim = self.group(names)
        sim.multicast("a", b"before")
        drive(sim, 0.3)
        sim.crash("c")
        drive(sim, 2.0)
        for i in range(missed):
            sim.multicast("a", b"%02d" % i + b"." * 58)
        drive(sim, 0.5)
        sim.restart("c")
        return sim

    def until_half_way(self, sim: GroupSimulation) -> None:
        """
        Move one frame at a time until c holds some of what it lacks, but
        not all.
        """
        for _ in range(10_000):
            if sim.caught_up > 0 and "c" in sim._behind:
                return
            for name in sim.turns_due():
                sim.end_turn(name)
            links = sim.busy_links()
            if links:
                sim.transmit(*links[0])
            else:
                sim.advance(0.05)
        self.fail("c never got half-way through catching up")

    def test_joiner_crashes_half_way_through_catching_up(self) -> None:
        """
        c crashes while it is given what it lacks; restarted again, it
        catches up from what it handed out, and ends whole.
        """
        sim = self.lacking("abc", 30)
        self.until_half_way(sim)
        sim.crash("c")
        drive(sim, 2.0)
        sim.restart("c")
        drive(sim, 5.0)
        self.assertEqual(sim.members["a"].view.members, ("a", "b", "c"))
        self.assertWhole(sim, "abc")

    def test_giver_crashes_half_way(self) -> None:
        """
        The member giving c what it lacks crashes half-way: c asks the
        next member once the giver is out of the view, and ends whole.
        """
        sim = self.lacking("abcd", 30)
        self.until_half_way(sim)
        catching = sim._catching["c"]
        giver = catching.asking
        assert giver is not None
        sim.crash(giver)
        drive(sim, 5.0)
        stay = "".join(n for n in "abcd" if n != giver)
        self.assertEqual([r for r, _ in catching.refusals], [giver], catching.refusals)
        self.assertEqual(sim.cannot_catch_up, {})
        self.assertEqual(sim.problems(True), [])
        for name in stay:
            self.assertEqual(sim.members[name].state, NORMAL, name)
        self.assertIn(
            b"29" + b"." * 58,
            [r.payload for r in sim.histories["c"] if isinstance(r, Delivery)],
        )

    def test_clean_leave(self) -> None:
        sim = self.group("abc")
        sim.multicast("a", b"one")
        drive(sim, 0.3)
        sim.members["b"].leave()
        sim.end_turn("b")
        # Its frames go out; then it stops, well before it could be
        # suspected.
        for link in sim.busy_links():
            if link[0] == "b":
                sim.transmit(*link)
        sim.crash("b")
        drive(sim, 0.2)
        self.assertEqual(sim.members["a"].view.members, ("a", "c"))
        self.assertEqual(sim.problems(True), [])
