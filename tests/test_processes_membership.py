"""
Membership with real processes: groups of C{twistd -n isis} members, loaded
through the client API of every member, lose members to C{kill -9},
C{SIGSTOP} and a partition through link proxies.  The members that stay
must go on and deliver everything sent through them in one order; the ones
that leave must say why and deliver nothing new; what any member delivered
must be a prefix of what the group delivered.  Every run is judged over the
members' C{jsonl:} logs by L{failover.judge}, the benchmark's own verdict.

Timing is short (heartbeats every 0.1 s, suspicion after 1 s); nothing
waits by sleeping: every wait polls the members' status with a deadline.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from isis_twisted.api.commands import NodeError
from isis_twisted.core.checker import Multicast
from isis_twisted.core.engine import Delivery
from isis_twisted.tools.localcluster import poll
from tests.test_node import deferred

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from failover import Load as Load
from failover import ProcessGroup as ProcessGroup
from failover import failover_run, judge, resumed_after
from failover import pause as pause

reactor: Any = _reactor
T = TypeVar("T")

FAST = ["--heartbeat=0.1", "--suspect-after=1.0", "--flush-timeout=0.5"]
"""
Every member's timing: a silent member is suspected within about 1.1 s.
Not shorter: members are suspected from their own start when never heard,
and five of them starting at once on a busy 2-core machine may be ready
more than half a second apart.
"""

RATE = 150.0
"""
Multicasts a second from each member: traffic all along, with room to
spare on a 2-core machine running five members and this test.
"""

Statuses = dict[str, dict[str, Any]]

KEYS = ("view", "view_members", "state", "suspects", "delivered", "removed_because")


async def poll_value(
    fetch: Callable[[], Awaitable[T]],
    probe: Callable[[T], bool],
    timeout: float,
    what: str,
    said: Callable[[T], str],
) -> T:
    """
    Fetch a value every 50 ms until C{probe} holds for it.

    @return: The value it held for.
    @raise AssertionError: If it does not within C{timeout} seconds; the
        message ends with C{said} of the last value fetched.
    """
    last: list[T] = []

    async def holds() -> bool:
        last[:] = [await fetch()]
        return probe(last[0])

    try:
        await poll(reactor, holds, timeout, what)
    except TimeoutError as e:
        raise AssertionError(f"{e}; {said(last[0])}") from None
    return last[0]


class ProcessMembershipTestCase(TestCase):
    """
    Starts groups of real members and waits on their status.
    """

    timeout = 120

    async def group(
        self, size: int, proxied: bool = False, http: bool = False
    ) -> ProcessGroup:
        """
        A started group of C{size} members with L{FAST} timing, stopped when
        the test ends (its files in C{group.workdir}).

        @param http: Give every member an HTTP API.
        """
        workdir = Path(self.mktemp()).resolve()
        workdir.mkdir(parents=True)
        group = ProcessGroup(
            reactor,
            size,
            workdir,
            FAST,
            proxied=proxied,
            group=self.id()[-40:],
            http=http,
        )
        self.addCleanup(lambda: deferred(group.stop()))
        await group.start()
        return group

    async def until(
        self,
        group: ProcessGroup,
        names: Sequence[str],
        probe: Callable[[Statuses], bool],
        what: str,
        timeout: float = 30.0,
    ) -> Statuses:
        """
        Poll the status of members C{names} until C{probe} holds for it.

        @return: The statuses it held for.
        @raise AssertionError: If it does not within C{timeout} seconds; the
            message gives what the members last said.
        """

        def said(last: Statuses) -> str:
            brief = {n: {k: s.get(k) for k in KEYS} for n, s in last.items()}
            return f"they last said {brief}"

        return await poll_value(
            lambda: group.statuses(names), probe, timeout, what, said
        )

    async def wait_for(
        self,
        group: ProcessGroup,
        condition: Callable[[], bool],
        what: str,
        timeout: float = 30.0,
    ) -> None:
        """
        Poll C{condition} until it holds.

        @raise AssertionError: If it does not within C{timeout} seconds; the
            message gives what every running member says.
        """
        try:
            await poll(reactor, _now(condition), timeout, what)
        except TimeoutError as e:
            running = [n for n, p in group.processes.items() if not p.ended.called]
            said = await group.statuses(running)
            brief = {n: {k: x.get(k) for k in KEYS} for n, x in said.items()}
            raise AssertionError(f"{e}; the members say {brief}") from None

    async def went_on(
        self, group: ProcessGroup, load: Load, stay: Sequence[str], view: int
    ) -> None:
        """
        Wait until the members C{stay} have installed view C{view} of just
        them, and each has since had 50 more multicasts confirmed.
        """
        await self.until(
            group,
            stay,
            lambda s: all(
                x["view"] == view
                and x["state"] == "normal"
                and x["view_members"] == list(stay)
                for x in s.values()
            ),
            f"{', '.join(stay)} to install view {view} of just them",
        )
        marks = {n: load.members[n].sent for n in stay}
        await self.wait_for(
            group,
            lambda: all(
                len(load.members[n].answered_at) >= marks[n] + 50 for n in stay
            ),
            f"{', '.join(stay)} to go on multicasting in view {view}",
        )

    async def settle(
        self, group: ProcessGroup, load: Load, stay: Sequence[str]
    ) -> None:
        """
        Stop the load; wait until every multicast through C{stay} was
        answered and they all delivered the same number.
        """
        load.stop()
        await self.wait_for(
            group,
            lambda: load.answered(stay),
            "every multicast through the members that stay to be answered",
        )
        await self.until(
            group,
            stay,
            lambda s: len({x["delivered"] for x in s.values()}) == 1,
            "the members that stay to deliver alike",
        )

    async def loaded(self, group: ProcessGroup) -> Load:
        """
        Start L{RATE} multicasts a second from every member and wait until
        each has had some confirmed.
        """
        load = Load(reactor, group.clients, RATE, window=500)
        load.start()
        self.addCleanup(load.stop)
        await self.wait_for(
            group,
            lambda: all(len(m.answered_at) >= 30 for m in load.members.values()),
            "every member's first multicasts to be confirmed",
        )
        return load

    def assert_judged(
        self, group: ProcessGroup, load: Load, departed: Sequence[str]
    ) -> dict[str, list[Any]]:
        """
        Judge every member's log; the members that stay lost no multicast.

        @return: The histories.
        """
        histories = group.histories()
        verdict = judge(histories, departed, load.confirmed)
        self.assertTrue(verdict.ok, verdict.summary())
        stay = [n for n in group.names if n not in departed]
        for name in stay:
            self.assertEqual(load.members[name].failed, {}, name)
        return dict(histories)


class KillTests(ProcessMembershipTestCase):
    """
    A member killed with SIGKILL under traffic is left out; the others go on.
    """

    async def kill_one(self, size: int, victim: str) -> None:
        group = await self.group(size)
        load = await self.loaded(group)
        stay = [n for n in group.names if n != victim]
        load.quiet(victim)
        await group.kill(victim)
        await self.went_on(group, load, stay, 1)
        await self.settle(group, load, stay)
        final = await group.statuses(stay)
        await group.stop()
        histories = self.assert_judged(group, load, [victim])
        for name in stay:
            # Its log holds all it delivered, and more than the victim did.
            self.assertEqual(len(histories[name]), final[name]["delivered"])
            self.assertGreater(len(histories[name]), len(histories[victim]))
            self.assertEqual(final[name]["view_changes"], 1)
        self.assertGreater(len(histories[victim]), 0)
        logs = "".join(group.log(n) for n in stay)
        self.assertIn(f"suspects {victim!r}: silent for", logs)
        self.assertIn(f"installed view 1 of {', '.join(stay)} (without {victim})", logs)

    def test_kill_one_of_three(self) -> Deferred[None]:
        """
        Kill -9 a member of three: the two others install a view without
        it, deliver everything sent through them, in one order, and go on;
        the killed member's log is a prefix of theirs.
        """
        return deferred(self.kill_one(3, "c"))

    def test_kill_one_of_five(self) -> Deferred[None]:
        """
        The same in a group of five, killing the member that coordinates
        the view change (the first in the view), so another one runs it.
        """
        return deferred(self.kill_one(5, "a"))

    def test_kill_two_of_three(self) -> Deferred[None]:
        """
        Kill -9 two members of three at once: the one left has no majority;
        it says it is blocked and delivers nothing new, however long it
        waits, and what each member delivered is one order's prefix.
        """

        async def run() -> None:
            group = await self.group(3)
            load = await self.loaded(group)
            for name in "bc":
                load.quiet(name)
                group.signal(name, signal.SIGKILL)
            for name in "bc":
                await group.processes[name].ended
            blocked = await self.until(
                group,
                ["a"],
                lambda s: s["a"]["state"] == "blocked",
                "a to say it is blocked",
            )
            # Time passes for a (it has suspected both for a second), not
            # for this test: a's own status says how long.
            later = await self.until(
                group,
                ["a"],
                lambda s: (
                    all(t is not None and t >= 1.0 for t in s["a"]["suspects"].values())
                    and len(s["a"]["suspects"]) == 2
                ),
                "a to suspect b and c for a second",
            )
            self.assertEqual(later["a"]["state"], "blocked")
            self.assertEqual(later["a"]["delivered"], blocked["a"]["delivered"])
            self.assertEqual(later["a"]["view"], 0)
            self.assertGreater(load.members["a"].in_flight, 0)
            await group.stop()
            histories = self.assert_judged(group, load, ["a", "b", "c"])
            self.assertEqual(len(histories["a"]), blocked["a"]["delivered"])

        return deferred(run())


class PauseTests(ProcessMembershipTestCase):
    def test_paused_member_is_removed(self) -> Deferred[None]:
        """
        A member stopped with SIGSTOP past --suspect-after is left out; the
        others go on without it.  Continued, it learns it was removed: its
        status says so, it delivers nothing new and refuses multicasts.
        """

        async def run() -> None:
            group = await self.group(3)
            load = await self.loaded(group)
            load.quiet("c")
            group.signal("c", signal.SIGSTOP)
            await self.went_on(group, load, ["a", "b"], 1)
            group.signal("c", signal.SIGCONT)
            removed = await self.until(
                group,
                ["c"],
                lambda s: s["c"]["state"] == "removed",
                "c to find it was removed",
            )
            self.assertTrue(removed["c"]["removed_because"])
            # a and b go on further; c delivers nothing of it.
            await self.went_on(group, load, ["a", "b"], 1)
            late = group.clients["c"].multicast(b"after removal")
            error = await self.assertFailure(late, NodeError)
            self.assertIn("is out of the group", str(error))
            await self.settle(group, load, ["a", "b"])
            now = await group.statuses(["c"])
            self.assertEqual(now["c"]["delivered"], removed["c"]["delivered"])
            self.assertEqual(now["c"]["state"], "removed")
            await group.stop()
            histories = self.assert_judged(group, load, ["c"])
            self.assertEqual(len(histories["c"]), removed["c"]["delivered"])
            self.assertGreater(len(histories["a"]), len(histories["c"]))
            self.assertIn("is out of the group", group.log("c"))

        return deferred(run())


class UntoldTests(ProcessMembershipTestCase):
    """
    A member left out while nothing was multicast must still find out:
    every member that installs the view sends it a GONE, and its links
    carry it once it is heard from again.
    """

    async def told(self, group: ProcessGroup, name: str) -> None:
        """
        Member C{name}, left out, refuses a multicast as out of the group,
        and its status says it was removed.
        """
        late = group.clients[name].multicast(b"from the left-out member")
        timeout = reactor.callLater(3, late.cancel)
        try:
            error = await self.assertFailure(late, NodeError)
        finally:
            if timeout.active():
                timeout.cancel()
        # Which refusal it gets depends on whether the GONE reached it
        # before the multicast did; either one says it is out.
        self.assertRegex(str(error), "is out of the group|was removed from the group")
        await self.until(
            group,
            [name],
            lambda s: s[name]["state"] == "removed",
            f"{name} to say it was removed",
        )

    def test_paused_while_idle(self) -> Deferred[None]:
        """
        SIGSTOP a member of an idle group past --suspect-after, then
        SIGCONT: it was left out before it delivered anything, so it finds
        out and asks to be added back, and is.
        """

        async def run() -> None:
            group = await self.group(3)
            group.signal("c", signal.SIGSTOP)
            await self.until(
                group,
                ["a", "b"],
                lambda s: all(x["view_members"] == ["a", "b"] for x in s.values()),
                "a and b to leave c out",
            )
            group.signal("c", signal.SIGCONT)
            back = await self.until(
                group,
                ["a", "b", "c"],
                lambda s: all(
                    x["view_members"] == ["a", "b", "c"] and x["state"] == "normal"
                    for x in s.values()
                ),
                "c to be added back",
            )
            self.assertGreaterEqual(back["c"]["view"], 2)
            record = await group.clients["c"].multicast(b"from the member back")
            self.assertEqual(record.sender, "c")
            self.assertIn("asks to be added", group.log("c") + group.log("a"))

        return deferred(run())


class PartitionTests(ProcessMembershipTestCase):
    def test_three_and_two(self) -> Deferred[None]:
        """
        Cut a group of five into 3 + 2, every link through a proxy: the
        three install a view of themselves and go on; the two say they are
        blocked without a majority and deliver nothing new.
        """

        async def run() -> None:
            group = await self.group(5, proxied=True)
            load = await self.loaded(group)
            big, small = ["a", "b", "c"], ["d", "e"]
            group.cut(big, small)
            blocked = await self.until(
                group,
                small,
                lambda s: all(x["state"] == "blocked" for x in s.values()),
                "d and e to say they are blocked",
            )
            await self.went_on(group, load, big, 1)
            await self.settle(group, load, big)
            now = await group.statuses(small)
            for name in small:
                self.assertEqual(now[name]["state"], "blocked")
                self.assertEqual(now[name]["view"], 0)
                self.assertEqual(now[name]["delivered"], blocked[name]["delivered"])
                self.assertGreater(load.members[name].in_flight, 0)
            await group.stop()
            histories = self.assert_judged(group, load, small)
            for name in small:
                self.assertEqual(len(histories[name]), blocked[name]["delivered"])
                self.assertGreater(len(histories["a"]), len(histories[name]))

        return deferred(run())


def _history(*ids: str) -> list[Delivery]:
    """
    A history of messages named C{"a@1"}, ..., with payloads C{b"a1"}, ...
    """
    out = []
    for i, name in enumerate(ids, 1):
        sender, clock = name.split("@")
        out.append(Delivery(i, sender, int(clock), f"{sender}{clock}".encode()))
    return out


class JudgeTests(SynchronousTestCase):
    """
    L{judge}, on made-up histories: each of its rules fails a run that
    breaks it.
    """

    confirmed = (Multicast("a", 1, b"a1"), Multicast("b", 2, b"b2"))

    def test_good(self) -> None:
        """
        Survivors that agree, a departed member's prefix, every confirmed
        message delivered: OK.
        """
        verdict = judge(
            {
                "a": _history("a@1", "b@2", "a@3"),
                "b": _history("a@1", "b@2", "a@3"),
                "c": _history("a@1"),
            },
            {"c"},
            self.confirmed,
        )
        self.assertTrue(verdict.ok, verdict.summary())
        self.assertEqual(verdict.nodes, ("a", "b", "c"))
        self.assertEqual(verdict.deliveries, 7)

    def test_departed_not_a_prefix(self) -> None:
        """
        A departed member that delivered what the survivors did not (or in
        another order) breaks uniformity.
        """
        verdict = judge(
            {
                "a": _history("a@1", "b@2"),
                "b": _history("a@1", "b@2"),
                "c": _history("b@2"),
            },
            {"c"},
            [],
        )
        self.assertEqual(len(verdict.by_guarantee("uniformity")), 2)

    def test_confirmed_not_delivered(self) -> None:
        """
        A message confirmed to a client that a survivor never delivered
        breaks validity, once per survivor.
        """
        verdict = judge(
            {"a": _history("a@1"), "b": _history("a@1"), "c": _history("a@1", "b@2")},
            {"c"},
            self.confirmed,
        )
        self.assertEqual(len(verdict.by_guarantee("validity")), 2)
        self.assertIn("b@2", str(verdict.by_guarantee("validity")[0]))

    def test_survivors_disagree(self) -> None:
        """
        Survivors that delivered in different orders break total order.
        """
        verdict = judge(
            {"a": _history("a@1", "b@2"), "b": _history("b@2", "a@1")}, (), []
        )
        self.assertTrue(verdict.by_guarantee("total order"))

    def test_nobody_stays(self) -> None:
        """
        With every member departed, each must be a prefix of the longest.
        """
        good = {"a": _history("a@1", "b@2"), "b": _history("a@1"), "c": _history()}
        self.assertTrue(judge(good, "abc", []).ok)
        bad = {"a": _history("a@1", "b@2"), "b": _history("b@2")}
        self.assertTrue(judge(bad, "ab", []).by_guarantee("uniformity"))


class ResumedAfterTests(SynchronousTestCase):
    def test_longest_gap(self) -> None:
        """
        Deliveries resume at the end of the longest gap after the kill, not
        at the first delivery after it (what was held everywhere already).
        """
        times = [0.9, 1.0, 1.01, 1.02, 4.0, 4.001, 4.002, 4.5]
        self.assertEqual(resumed_after(times, 1.0), 4.0)
        self.assertEqual(resumed_after([1.0, 3.0], 0.5), 3.0)
        self.assertRaises(ValueError, resumed_after, [0.5], 1.0)


class FailoverRunTests(TestCase):
    timeout = 120

    def test_figures(self) -> Deferred[None]:
        """
        One benchmark run at n = 3: the pause covers the silence before the
        suspicion, the flush was measured by every survivor, the survivors
        carried the load on, and the logs passed the checker.
        """

        async def run() -> None:
            workdir = Path(self.mktemp()).resolve()
            workdir.mkdir(parents=True)
            row = await failover_run(
                reactor, 3, "b", workdir, RATE, FAST, before=0.5, after=0.5
            )
            self.assertTrue(row["check"]["ok"], row["check"]["summary"])
            self.assertGreater(row["pause_s"], 1.0)
            self.assertGreater(row["kill_to_suspicion_s"], 0.9)
            self.assertGreater(row["flush_s"], 0)
            self.assertEqual(row["view_changes"], 1)
            self.assertEqual(row["survivor_failures"], 0)
            # Three senders before, two after, at RATE each (give or take
            # the catching up after the pause).
            self.assertGreater(row["before_per_s"], 2 * RATE)
            self.assertGreater(row["after_per_s"], RATE)

        return deferred(run())


def _now(condition: Callable[[], bool]) -> Callable[[], Deferred[bool]]:
    """
    A L{poll} probe from a plain condition.
    """

    async def probe() -> bool:
        return condition()

    return lambda: Deferred.fromCoroutine(probe())
