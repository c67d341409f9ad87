"""
Tests for L{isis_twisted.core.membership}: the view-change state machine, step by
step.  The seeded schedules over whole groups are in test_group_simulation.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import Delivery, Message, ViewChange
from isis_twisted.core.membership import (
    BLOCKED,
    FLUSHING,
    GROUP_LIMIT,
    JOINING,
    NORMAL,
    REMOVED,
    CannotForceError,
    Membership,
    NotDeliveringError,
)
from isis_twisted.core.viewcheck import check_views
from isis_twisted.core.views import (
    Accept,
    Decide,
    Gone,
    Inquire,
    Join,
    Leave,
    Promise,
    Proposal,
    Propose,
    Reject,
    View,
    Welcome,
)


class Group:
    """
    Members wired to each other in memory; L{pump} moves everything they
    send (control messages and data frames) until nothing is left, except
    to or from members that are down.
    """

    def __init__(self, names: Iterable[str]) -> None:
        names = list(names)
        self.members = {n: Membership(n, names, flush_timeout=1.0) for n in names}
        self.down: set[str] = set()
        self.records: dict[str, list[object]] = {n: [] for n in names}
        self.log: list[tuple[str, str, object]] = []

    def pump(self, now: float = 0.0) -> None:
        moved = True
        while moved:
            moved = False
            for name, member in self.members.items():
                if name in self.down:
                    continue
                frames = member.flush()
                for frame in frames:
                    for peer in member.peers:
                        if peer not in self.down:
                            self.members[peer].receive_data(name, frame, now)
                            moved = True
                for dst, message in member.take_control():
                    self.log.append((name, dst, message))
                    if dst not in self.down:
                        self.members[dst].receive_control(name, message, now)
                        moved = True
            for name, member in self.members.items():
                self.records[name].extend(member.take_deliveries())

    def kinds(self) -> list[str]:
        return [type(m).__name__ for _, _, m in self.log]


class ViewTests(SynchronousTestCase):
    def test_majority(self) -> None:
        view = View(0, ("a", "b", "c", "d"))
        self.assertTrue(view.majority(("a", "b", "c")))
        self.assertFalse(view.majority(("a", "b")))
        self.assertFalse(view.majority(("a", "b", "x", "y")))


class StartTests(SynchronousTestCase):
    def test_starts_in_view_zero(self) -> None:
        m = Membership("b", ["c", "a", "b"])
        self.assertEqual(m.view, View(0, ("a", "b", "c")))
        self.assertEqual((m.state, m.delivering, m.deadline), (NORMAL, True, None))
        self.assertEqual(m.peers, ("a", "c"))


class CrashTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.group = Group("abc")
        self.a, self.b, self.c = (self.group.members[n] for n in "abc")

    def test_survivors_move_on_with_what_waited(self) -> None:
        """
        c crashes after a multicast that every member holds but that waits
        for c's acknowledgement; the view change removes c and delivers it.
        """
        a, b = self.a, self.b
        a.multicast(b"m1")
        self.group.pump()
        self.assertEqual(self.group.records["a"][0], Delivery(1, "a", 1, b"m1", 0))
        self.group.down.add("c")
        a.multicast(b"m2")
        b.multicast(b"m3")
        self.group.pump()
        self.assertEqual(a.engine.queue_length, 2)
        a.suspect("c", now=5.0)
        self.group.pump(5.0)
        self.assertEqual(
            self.group.kinds(),
            [
                "Suspect",
                "Propose",
                "Promise",
                "Accept",
                "Accepted",
                "Decide",
                "Gone",
                "Gone",
            ],
        )
        for name in "ab":
            records = self.group.records[name]
            self.assertEqual(
                [(r.sender, r.payload) for r in records if isinstance(r, Delivery)],
                [("a", b"m1"), ("a", b"m2"), ("b", b"m3")],
            )
            self.assertEqual(records[-1], ViewChange(1, ("a", "b"), 4))
            self.assertEqual(self.group.members[name].view, View(1, ("a", "b")))
            self.assertEqual(self.group.members[name].state, NORMAL)
        # The next view runs without c.
        b.multicast(b"after")
        self.group.pump()
        # The view's first delivery has the index its ViewChange announced.
        self.assertEqual(self.group.records["a"][-1], Delivery(4, "b", 9, b"after"))

    def test_member_left_out_is_told(self) -> None:
        """
        Every member that installs a view tells each member it left out
        (which may be alive, only slow or cut off) that it is gone; told
        so, the member stops at once.
        """
        a, c = self.a, self.group.members["c"]
        # c has delivered something: it is not a fresh member that could
        # just ask to be added (see JoinTests).
        a.multicast(b"m1")
        self.group.pump()
        self.group.down.add("c")
        a.suspect("c", now=5.0)
        self.group.pump(5.0)
        told = [(src, m) for src, dst, m in self.group.log if dst == "c"]
        gone = [(src, m) for src, m in told if isinstance(m, Gone)]
        self.assertEqual(
            gone,
            [("a", Gone(0, View(1, ("a", "b")))), ("b", Gone(0, View(1, ("a", "b"))))],
        )
        self.assertEqual(c.state, NORMAL)
        c.receive_control("a", gone[0][1], 6.0)
        self.assertEqual(c.state, REMOVED)
        self.assertIn("view 1", str(c.reason))
        self.assertRaises(NotDeliveringError, c.multicast, b"late")

    def test_coordinator_is_lowest_unsuspected(self) -> None:
        """
        b suspecting c does not run the view change: a does, once told.
        """
        self.group.down.add("c")
        self.b.suspect("c", now=1.0)
        self.group.pump(1.0)
        first = self.group.log[1]
        self.assertEqual(first[:2], ("a", "b"))
        self.assertIsInstance(first[2], Propose)
        self.assertEqual(self.a.view.id, 1)

    def test_multicast_waits_during_the_flush(self) -> None:
        self.group.down.add("c")
        self.a.suspect("c", now=1.0)
        # a has proposed and promised its own ballot: it is wedged.
        self.assertEqual(self.a.state, FLUSHING)
        self.assertFalse(self.a.delivering)
        self.assertRaises(NotDeliveringError, self.a.multicast, b"x")
        self.assertEqual(self.a.flush(), [])
        self.group.pump(1.0)
        self.assertTrue(self.a.delivering)
        self.a.multicast(b"x")


class MajorityTests(SynchronousTestCase):
    def test_minority_blocks_and_recovers(self) -> None:
        group = Group("abc")
        c = group.members["c"]
        c.suspect("a", now=1.0)
        # b is the one to run a view change without a; c waits for it.
        self.assertEqual(c.state, NORMAL)
        c.suspect("b", now=1.0)
        self.assertEqual(c.state, BLOCKED)
        self.assertTrue(c.delivering)
        group.down.update("ab")
        group.pump(1.0)
        self.assertNotIn("Propose", group.kinds())
        self.assertIsNotNone(c.deadline)
        c.trust("a", "b", now=2.0)
        self.assertEqual((c.state, c.view.id), (NORMAL, 0))

    def test_members_back_together_are_trusted_together(self) -> None:
        """
        A member that suspected everyone and hears from them all again
        trusts them in one call: trusting them one by one, the first one
        back would make a majority and the member, as coordinator, would
        propose a view without the others.
        """
        a = Membership("a", "abc")
        a.suspect("b", "c", now=1.0)
        self.assertEqual(a.state, BLOCKED)
        a.take_control()
        a.trust("b", "c", now=2.0)
        self.assertEqual((a.state, a.suspects), (NORMAL, set()))
        self.assertEqual([m for _, m in a.take_control() if isinstance(m, Propose)], [])

    def test_wedged_coordinator_that_loses_its_majority_blocks(self) -> None:
        group = Group("abc")
        a = group.members["a"]
        group.down.update("bc")
        a.suspect("c", now=1.0)
        self.assertEqual(a.state, FLUSHING)
        a.suspect("b", now=1.5)
        self.assertEqual(a.state, BLOCKED)
        self.assertFalse(a.delivering)
        proposes = [m for m in a.take_control() if isinstance(m[1], Propose)]
        self.assertEqual(len(proposes), 1)

    def test_a_pair_cannot_lose_one(self) -> None:
        group = Group("ab")
        group.members["a"].suspect("b", now=1.0)
        self.assertEqual(group.members["a"].state, BLOCKED)


class RemovalTests(SynchronousTestCase):
    def test_member_left_out_stops(self) -> None:
        group = Group("abc")
        c = group.members["c"]
        group.down.add("c")
        group.members["a"].suspect("c", now=1.0)
        group.pump(1.0)
        group.down.discard("c")
        # c learns from a frame of the later view and asks.
        group.members["a"].multicast(b"new")
        for frame in group.members["a"].flush():
            c.receive_data("a", frame, 2.0)
        [(dst, inquire)] = c.take_control()
        self.assertEqual(dst, "a")
        self.assertIsInstance(inquire, Inquire)
        group.members["a"].receive_control("c", inquire, 2.0)
        [(dst, decide)] = group.members["a"].take_control()
        self.assertIsInstance(decide, Decide)
        c.receive_control("a", decide, 2.0)
        self.assertEqual(c.state, REMOVED)
        self.assertIn("view 1 was decided without it", c.reason or "")
        self.assertRaises(NotDeliveringError, c.multicast, b"x")
        self.assertEqual(c.take_deliveries(), [])

    def test_gone_to_a_view_with_it_is_not_removal(self) -> None:
        """
        A laggard told by a member added in the next view (which holds no
        decision to give) that the group went on to a view that includes
        it is not out: it asks the members that decided the view, and
        installs it from one of them.
        """
        group = Group("abc")
        c = group.members["c"]
        c.multicast(b"x")
        group.pump()
        self.assertEqual(c.engine.delivered, 1)
        # b and a went on to view 3 of a, b, c; c missed its decision, and
        # a (say, added by it) has none to give.
        latest = View(3, ("a", "b", "c"))
        c.receive_control("a", Gone(c.view.id, latest), 1.0)
        self.assertNotEqual(c.state, REMOVED)
        asked = c.take_control()
        self.assertEqual([dst for dst, _ in asked], ["b"])
        self.assertIsInstance(asked[0][1], Inquire)
        # Told of a view without it, it is out, as before.
        c.receive_control("a", Gone(c.view.id, View(3, ("a", "b"))), 1.0)
        self.assertEqual(c.state, REMOVED)

    def test_too_far_behind_is_gone(self) -> None:
        a = Membership("a", "abc")
        a.view = View(20, ("a", "b"))
        a.receive_control("c", Inquire(3, ()), 0.0)
        [(_, gone)] = a.take_control()
        self.assertEqual(gone, Gone(3, View(20, ("a", "b"))))
        c = Membership("c", "abc")
        c.receive_control("a", Gone(0, View(20, ("a", "b"))), 0.0)
        # Fresh (nothing delivered): it asks to be added to view 20's group.
        self.assertEqual(c.state, JOINING)
        self.assertEqual(c.view, View(20, ("a", "b")))
        self.assertEqual(
            sorted(c.take_control()), [("a", Join(20, 0)), ("b", Join(20, 0))]
        )
        # One that delivered something is out for good.
        group = Group("abc")
        d = group.members["c"]
        d.multicast(b"x")
        group.pump()
        self.assertEqual(d.engine.delivered, 1)
        d.receive_control("a", Gone(0, View(20, ("a", "b"))), 0.0)
        self.assertEqual(d.state, REMOVED)


class BallotTests(SynchronousTestCase):
    def test_lower_ballot_rejected(self) -> None:
        b = Membership("b", "abc")
        b.receive_control("c", Propose(0, (5, "c"), ("b", "c"), ()), 0.0)
        b.take_control()
        b.receive_control("a", Propose(0, (4, "a"), ("a", "b"), ()), 0.0)
        [(dst, reject)] = b.take_control()
        self.assertEqual((dst, reject), ("a", Reject(0, (4, "a"), (5, "c"))))

    def test_accepted_proposal_is_proposed_again(self) -> None:
        """
        A proposal some member accepted may have been decided: the next
        coordinator proposes it unchanged, whatever it would have chosen.
        """
        a = Membership("a", "abcde")
        earlier = Proposal(("a", "b", "c", "e"), (("a", 0), ("d", 7)), ())
        a.suspect("d", now=1.0)
        a.take_control()
        ballot = a.ballot_running.ballot  # type: ignore[union-attr]
        for name, accepted in [("b", ((1, "e"), earlier)), ("c", None), ("e", None)]:
            a.receive_control(
                name,
                Promise(0, ballot, (("d", 3),), (), accepted),
                1.0,
            )
        accepts = [m for _, m in a.take_control() if isinstance(m, Accept)]
        self.assertEqual({m.proposal for m in accepts}, {earlier})

    def test_cut_is_the_union_and_lacking_messages_are_sent(self) -> None:
        a = Membership("a", "abcd")
        a.suspect("d", now=1.0)
        a.take_control()
        ballot = a.ballot_running.ballot  # type: ignore[union-attr]
        d5 = Message("d", 5, b"from d")
        a.receive_control(
            "b", Promise(0, ballot, (("a", 0), ("d", 5)), (d5,), None), 1.0
        )
        a.receive_control("c", Promise(0, ballot, (("a", 0), ("d", 2)), (), None), 1.0)
        accepts = {dst: m for dst, m in a.take_control() if isinstance(m, Accept)}
        self.assertEqual(dict(accepts["c"].proposal.cut)["d"], 5)
        self.assertEqual(dict(accepts["c"].proposal.floor)["d"], 0)
        self.assertEqual(accepts["c"].messages, (d5,))
        self.assertEqual(accepts["b"].messages, ())

    def test_promise_leaves_out_what_the_coordinator_holds(self) -> None:
        """
        A promise carries only the undelivered messages the coordinator's
        receipt horizons (in its proposal) do not cover: under load nearly
        all of them are covered, and carrying them could outgrow a frame.
        """
        group = Group("abc")
        a, b = group.members["a"], group.members["b"]
        group.down.add("c")
        for i in range(3):
            a.multicast(f"a{i}".encode())
            b.multicast(f"b{i}".encode())
        group.pump()
        self.assertEqual(b.engine.queue_length, 6)
        b.multicast(b"not yet at a")
        b.suspect("c", now=1.0)
        b.take_control()
        held = tuple(sorted(a.engine.held().items()))
        b.receive_control("a", Propose(0, (1, "a"), ("a", "b"), held), 1.0)
        promises = [m for _, m in b.take_control() if isinstance(m, Promise)]
        self.assertEqual(len(promises), 1)
        self.assertEqual(
            [(m.sender, m.payload) for m in promises[0].messages],
            [("b", b"not yet at a")],
        )


class FutureFrameTests(SynchronousTestCase):
    def test_later_view_frames_wait_for_the_view(self) -> None:
        """
        A frame of the next view that comes before the decision waits: it
        makes the member ask, and is taken in once the view is installed.
        """
        group = Group("abc")
        a, b = group.members["a"], group.members["b"]
        group.down.add("c")
        a.suspect("c", now=1.0)
        held: list[Decide] = []
        while a.view.id == 0:
            for dst, message in a.take_control():
                if isinstance(message, Decide):
                    held.append(message)
                elif dst == "b":
                    b.receive_control("a", message, 1.0)
            for dst, message in b.take_control():
                if dst == "a":
                    a.receive_control("b", message, 1.0)
        held += [m for _, m in a.take_control() if isinstance(m, Decide)]
        a.multicast(b"in view 1")
        [frame] = a.flush()
        self.assertEqual(frame.view, 1)
        b.receive_data("a", frame, 1.0)
        self.assertEqual(b.view.id, 0)
        [(dst, inquire)] = b.take_control()
        self.assertEqual((dst, type(inquire)), ("a", Inquire))
        [decide] = held
        b.receive_control("a", decide, 1.0)
        self.assertEqual(b.view, View(1, ("a", "b")))
        # The waiting frame was taken in: b now holds a's message.
        self.assertEqual([m.payload for m in b.engine.undelivered()], [b"in view 1"])


class StuckFlushTests(SynchronousTestCase):
    def test_inquiry_makes_the_coordinator_run_a_ballot(self) -> None:
        """
        A member wedged by a ballot that died (its proposer came back and
        no one suspects anyone) asks everyone; the coordinator, which
        suspects nobody and is not wedged, runs a ballot for it, so the
        member does not stay wedged for ever.
        """
        group = Group("abc")
        a, b = group.members["a"], group.members["b"]
        b.receive_control("c", Propose(0, (5, "c"), ("a", "b", "c"), ()), 1.0)
        b.take_control()
        self.assertEqual(b.state, FLUSHING)
        self.assertEqual(a.state, NORMAL)
        a.receive_control("b", Inquire(0, ()), 2.0)
        group.pump(2.0)
        self.assertIn("Propose", group.kinds())
        for m in group.members.values():
            self.assertEqual((m.state, m.view), (NORMAL, View(1, ("a", "b", "c"))))

    def test_inquiry_leaves_other_members_alone(self) -> None:
        """
        Only the coordinator answers an inquiry with a ballot; the others
        neither propose nor start waiting for one (waiting in vain would
        make them suspect the coordinator).
        """
        group = Group("abc")
        c = group.members["c"]
        c.receive_control("b", Inquire(0, ()), 2.0)
        self.assertEqual([m for _, m in c.take_control() if isinstance(m, Propose)], [])
        self.assertIsNone(c.deadline)


class JoinTests(SynchronousTestCase):
    """
    A member restarted as a new incarnation (a fresh L{Membership} that
    starts joining) is added through a view change and starts at the first
    index of the view it was added to.
    """

    def setUp(self) -> None:
        self.group = Group("abc")
        self.a, self.b, self.c = (self.group.members[n] for n in "abc")

    def crash_and_remove_c(self) -> None:
        self.a.multicast(b"m1")
        self.group.pump()
        self.group.down.add("c")
        self.b.multicast(b"m2")
        self.group.pump()
        self.a.suspect("c", now=5.0)
        self.group.pump(5.0)
        self.assertEqual(self.a.view, View(1, ("a", "b")))

    def restart_c(self, now: float) -> Membership:
        c = Membership("c", "abc", flush_timeout=1.0, joining=True)
        self.group.members["c"] = c
        self.group.records["c"] = []
        self.group.down.discard("c")
        c.join(now)
        return c

    def test_restarted_member_is_added(self) -> None:
        self.crash_and_remove_c()
        c = self.restart_c(10.0)
        self.assertEqual(c.state, JOINING)
        self.assertFalse(c.delivering)
        self.group.pump(10.0)
        for m in self.group.members.values():
            self.assertEqual(m.view, View(2, ("a", "b", "c")))
            self.assertEqual(m.state, NORMAL)
        welcomer, welcome = c.welcome or ("", None)
        assert welcome is not None
        self.assertIn(welcomer, "ab")
        self.assertEqual(welcome.first, 3)
        self.assertEqual(self.group.records["c"], [ViewChange(2, ("a", "b", "c"), 3)])
        self.assertEqual(self.group.records["a"][-1], ViewChange(2, ("a", "b", "c"), 3))
        # Only the members of view 1 voted.
        proposes = [(s, d) for s, d, m in self.group.log if isinstance(m, Propose)]
        self.assertNotIn("c", [d for _, d in proposes])
        # The three deliver in one order from index 3 on.
        c.multicast(b"from c")
        self.a.multicast(b"from a")
        self.group.pump(11.0)
        tails = {
            n: [(r.index, r.sender, r.payload) for r in recs if isinstance(r, Delivery)]
            for n, recs in self.group.records.items()
        }
        self.assertEqual(tails["c"], tails["a"][-2:])
        self.assertEqual(tails["c"], tails["b"][-2:])
        self.assertEqual([i for i, _, _ in tails["c"]], [3, 4])

    def test_restarted_before_it_was_removed(self) -> None:
        """
        A member that restarts before the others removed it asks to join
        and is added once they have gone on without its old incarnation.
        """
        self.a.multicast(b"m1")
        self.group.pump()
        self.group.down.add("c")
        c = self.restart_c(3.0)
        # The others learn c restarted (its links say so) and suspect it.
        self.a.suspect("c", now=3.0)
        self.b.suspect("c", now=3.0)
        self.group.pump(3.0)
        self.assertEqual(self.a.view, View(2, ("a", "b", "c")))
        self.assertEqual(c.view, View(2, ("a", "b", "c")))
        self.assertEqual(c.engine.delivered, 1)

    def test_fresh_member_left_out_asks_to_join(self) -> None:
        """
        A member left out before it delivered anything (it started late)
        asks to be added when told it is gone, rather than stop.
        """
        c = self.c
        self.group.down.add("c")
        self.a.suspect("c", now=5.0)
        self.group.pump(5.0)
        self.group.down.discard("c")
        self.assertTrue(c.fresh)
        c.receive_control("a", Gone(0, self.a.view), 6.0)
        self.assertEqual(c.state, JOINING)
        self.group.pump(6.0)
        self.assertEqual(c.state, NORMAL)
        self.assertEqual(c.view, View(2, ("a", "b", "c")))

    def test_join_asked_again(self) -> None:
        """
        A joiner asks again after a while; a member already holding it in
        its view welcomes it again at the view's first index.
        """
        self.crash_and_remove_c()
        c = self.restart_c(10.0)
        self.assertEqual(c.deadline, 14.0)
        for _, message in c.take_control():
            self.assertEqual(message, Join(0, 0))
        c.tick(14.0)
        asked = c.take_control()
        self.assertEqual(sorted(d for d, _ in asked), ["a", "b"])
        for dst, message in asked:
            self.group.members[dst].receive_control("c", message, 14.0)
        self.group.pump(14.0)
        self.assertEqual(c.view.id, 2)
        # Asked again once it is in: welcomed again, the same way.
        self.a.receive_control("c", Join(1, 0), 15.0)
        again = [m for d, m in self.a.take_control() if d == "c"]
        self.assertEqual(
            again, [Welcome(2, View(2, ("a", "b", "c")), 3, self.a.engine.clock)]
        )

    def test_removed_member_points_joiner_to_later_view(self) -> None:
        """
        A member out of the group answers a request to be added from a
        member that knows only an older view with where the group went (a
        L{Gone} naming its last view): a restarted member whose every known
        member was replaced would otherwise ask no one who can add it.  It
        says nothing to one that knows as much as it does, and nothing else
        it is sent gets an answer.
        """
        a = Membership("a", "abc", flush_timeout=1.0)
        a.view = View(4, ("a", "d", "e"))
        a.stop("left out")
        self.assertEqual(a.state, REMOVED)
        a.receive_control("b", Join(0, 7), 5.0)
        self.assertEqual(a.take_control(), [("b", Gone(0, View(4, ("a", "d", "e"))))])
        a.receive_control("b", Join(4, 7), 5.0)
        a.receive_control("b", Inquire(0, ()), 5.0)
        self.assertEqual(a.take_control(), [])
        # The joiner asks the members of that view.
        b = Membership("b", "abc", flush_timeout=1.0, joining=True)
        b.join(5.0)
        self.assertEqual(sorted(d for d, _ in b.take_control()), ["a", "c"])
        b.receive_control("a", Gone(0, View(4, ("a", "d", "e"))), 5.0)
        self.assertEqual(b.state, JOINING)
        self.assertEqual(sorted(d for d, _ in b.take_control()), ["a", "d", "e"])

    def test_leave(self) -> None:
        """
        A member that stops says so, and the others go on without it at
        once; being heard from again does not bring it back.
        """
        self.b.leave()
        for dst, message in self.b.take_control():
            self.group.log.append(("b", dst, message))
            self.group.members[dst].receive_control("b", message, 1.0)
        self.group.down.add("b")
        self.group.pump(1.0)
        self.assertEqual(self.a.view, View(1, ("a", "c")))
        self.assertEqual(self.c.view, View(1, ("a", "c")))
        self.assertIn(Leave(0), [m for _, _, m in self.group.log])

    def test_leaving_member_not_trusted_again(self) -> None:
        self.b.leave()
        for dst, message in self.b.take_control():
            if dst == "c":
                self.c.receive_control("b", message, 1.0)
        self.assertIn("b", self.c.suspects)
        self.c.trust("b", now=1.5)
        self.assertIn("b", self.c.suspects)


class StaleWelcomeTests(SynchronousTestCase):
    def test_welcome_to_a_view_it_knows_is_ignored(self) -> None:
        """
        A joiner that knows of view 2 takes no welcome to view 2 (an answer
        to an earlier request): only to a later view.
        """
        c = Membership("c", "abc", joining=True)
        c.join(0.0, View(2, ("a", "b")))
        c.receive_control("a", Welcome(2, View(2, ("a", "b", "c")), 5, 9), 1.0)
        self.assertEqual(c.state, JOINING)
        self.assertIsNone(c.welcome)
        c.receive_control("a", Welcome(3, View(3, ("a", "b", "c")), 7, 9), 1.0)
        self.assertEqual(c.state, NORMAL)
        self.assertEqual(c.view, View(3, ("a", "b", "c")))

    def test_join_forgets_the_last_welcome(self) -> None:
        c = Membership("c", "abc", joining=True)
        c.join(0.0, View(1, ("a", "b")))
        c.receive_control("a", Welcome(2, View(2, ("a", "b", "c")), 5, 9), 1.0)
        self.assertIsNotNone(c.welcome)
        c.join(2.0, View(3, ("a", "b")))
        self.assertIsNone(c.welcome)


class LateLeaveTests(SynchronousTestCase):
    def test_leave_of_an_earlier_view_still_leaves(self) -> None:
        """
        A LEAVE sent in view 0 that arrives once view 1 (which kept its
        sender) is installed still has the sender left out.
        """
        group = Group("abcd")
        a = group.members["a"]
        group.down.add("d")
        a.suspect("d", now=1.0)
        group.pump(1.0)
        self.assertEqual(a.view, View(1, ("a", "b", "c")))
        a.receive_control("c", Leave(0), 2.0)
        self.assertIn("c", a.leaving)
        group.down.add("c")
        group.pump(2.0)
        self.assertEqual(a.view, View(2, ("a", "b")))


def _records(group: Group, name: str) -> list[Delivery | ViewChange]:
    return [r for r in group.records[name] if isinstance(r, Delivery | ViewChange)]


class ForceTests(SynchronousTestCase):
    """
    L{Membership.force}: an operator closes a view that lost its majority
    for good, from one of the members left.
    """

    def blocked_pair(self) -> Group:
        """
        A group of five that loses c, d and e while a multicast of b waits
        for their acknowledgements; a and b are blocked.
        """
        group = Group("abcde")
        group.members["a"].multicast(b"m1")
        group.pump()
        group.down.update("cde")
        group.members["b"].multicast(b"m2")
        group.pump(1.0)
        for name in "ab":
            group.members[name].suspect("c", "d", "e", now=2.0)
        group.pump(2.0)
        for name in "ab":
            self.assertEqual(group.members[name].state, BLOCKED)
        return group

    def test_forced_view_installs_and_delivers(self) -> None:
        """
        Forced on b (not the member that would coordinate), the view of a
        and b is installed on both, the message that waited is delivered,
        and multicasts go on in the new view.
        """
        group = self.blocked_pair()
        a, b = group.members["a"], group.members["b"]
        self.assertEqual(b.force(3.0), ("a", "b"))
        group.pump(3.0)
        for m in (a, b):
            self.assertEqual((m.view, m.state), (View(1, ("a", "b")), NORMAL))
            self.assertEqual(m.waived, frozenset())
        self.assertEqual(b.forced, [1])
        a.multicast(b"m3")
        group.pump(4.0)
        for name in "ab":
            payloads = [
                r.payload for r in group.records[name] if isinstance(r, Delivery)
            ]
            self.assertEqual(payloads, [b"m1", b"m2", b"m3"])
        result = check_views(
            {n: _records(group, n) for n in "ab"},
            initial=tuple("abcde"),
            departed="cde",
            forced=b.forced,
        )
        self.assertEqual(result.violations, ())

    def test_checker_catches_an_unforced_minority_view(self) -> None:
        """
        The same histories fail the primary-component check when the view
        is not declared forced: the checker is what proves the waiver is
        confined to that one view.
        """
        group = self.blocked_pair()
        group.members["b"].force(3.0)
        group.pump(3.0)
        result = check_views(
            {n: _records(group, n) for n in "ab"},
            initial=tuple("abcde"),
            departed="cde",
        )
        self.assertEqual(
            [v.guarantee for v in result.violations], ["primary component"]
        )

    def test_next_view_needs_a_majority_again(self) -> None:
        """
        The waiver ends with the forced view: a view of three later losing
        two blocks again.
        """
        group = self.blocked_pair()
        group.members["a"].force(3.0)
        group.pump(3.0)
        c = Membership("c", "abcde", flush_timeout=1.0, joining=True)
        group.members["c"] = c
        group.records["c"] = []
        group.down.discard("c")
        c.join(5.0)
        group.pump(5.0)
        self.assertEqual(c.view, View(2, ("a", "b", "c")))
        group.down.update("bc")
        a = group.members["a"]
        a.suspect("b", "c", now=7.0)
        self.assertEqual(a.state, BLOCKED)

    def test_lost_members_that_return_are_out(self) -> None:
        """
        A member forced out that was only cut off learns it is out of the
        group when it is heard from again (it does not go on in the old
        view).
        """
        group = self.blocked_pair()
        group.members["a"].force(3.0)
        group.pump(3.0)
        c = group.members["c"]
        # Cut off, c found a and b silent; when its wait for a view change
        # runs out it asks them, and they answer with the forced decision.
        c.suspect("a", "b", now=2.0)
        group.down.discard("c")
        for _ in range(5):
            deadline = c.deadline
            if c.state == REMOVED or deadline is None:
                break
            c.tick(deadline)
            group.pump(deadline)
        self.assertEqual(c.state, REMOVED)
        self.assertIn("view 1 was decided without it", c.reason or "")
        self.assertFalse(c.delivering)

    def test_refused_when_not_blocked(self) -> None:
        group = Group("abc")
        with self.assertRaises(CannotForceError) as caught:
            group.members["a"].force(1.0, ["c"])
        self.assertIn("not blocked", str(caught.exception))

    def test_refused_for_bad_names(self) -> None:
        group = self.blocked_pair()
        b = group.members["b"]
        for without, words in [
            (["x"], "'x' is not in view 0"),
            (["b", "c"], "without itself"),
            ([], "suspects no member"),
        ]:
            with self.assertRaises(CannotForceError) as caught:
                b.force(3.0, without)
            self.assertIn(words, str(caught.exception))
        self.assertEqual(b.state, BLOCKED)


class NewMemberTests(SynchronousTestCase):
    """
    A member the group was not started with (C{--join}) says where it
    listens; the view change that adds it carries that to every member, and
    what members tell it carries where the others listen.
    """

    def setUp(self) -> None:
        self.group = Group("abc")
        for name, member in self.group.members.items():
            member.addresses.learn((n, f"{n}:1") for n in "abc" if n != name)

    def join_d(self, contacts: str = "a") -> Membership:
        d = Membership("d", "d", flush_timeout=1.0, joining=True, address="d:4")
        self.group.members["d"] = d
        self.group.records["d"] = []
        # What discovery gave it: whom to ask (a synthetic view with itself).
        d.join(0.0, View(0, tuple(sorted({*contacts, "d"}))))
        return d

    def test_new_member_added_with_its_address(self) -> None:
        a = self.group.members["a"]
        a.multicast(b"m1")
        self.group.pump()
        d = self.join_d()
        self.group.pump(1.0)
        for name in "abcd":
            self.assertEqual(self.group.members[name].view, View(1, tuple("abcd")))
        for name in "abc":
            self.assertEqual(self.group.members[name].addresses.get("d"), "d:4")
        decides = [m for _, _, m in self.group.log if isinstance(m, Decide)]
        self.assertTrue(decides)
        self.assertEqual(decides[0].proposal.addresses, (("d", "d:4"),))
        self.assertEqual(decides[0].proposal.joined, (("d", 0),))
        # It learned where b and c listen from what a told it.
        self.assertEqual([d.addresses.get(n) for n in "bc"], ["b:1", "c:1"])
        welcomes = [m for _, dst, m in self.group.log if isinstance(m, Welcome)]
        self.assertIn(("d", "d:4"), welcomes[0].addresses)
        joins = [m for s, _, m in self.group.log if s == "d" and isinstance(m, Join)]
        self.assertEqual({j.address for j in joins}, {"d:4"})

    def test_asks_the_view_it_is_told_of_once(self) -> None:
        """
        A joiner that knew only one member asks every member of the view
        a GONE tells it of, and a second GONE of that view asks nobody
        again.
        """
        d = self.join_d("b")
        self.assertEqual([dst for dst, _ in d.take_control()], ["b"])
        gone = Gone(0, View(0, tuple("abc")), (("a", "a:1"), ("c", "c:1")))
        d.receive_control("b", gone, 0.5)
        self.assertEqual(sorted(dst for dst, _ in d.take_control()), list("abc"))
        self.assertEqual(d.addresses.get("c"), "c:1")
        d.receive_control("c", gone, 0.6)
        self.assertEqual(d.take_control(), [])

    def test_founders_addresses_do_not_move(self) -> None:
        """
        What a founding member was given of another founding member stays;
        a member added at run time moves when it says so itself.
        """
        a = self.group.members["a"]
        a.receive_control("b", Join(0, 7, "evil:1"), 0.0)
        self.assertEqual(a.addresses.get("b"), "b:1")
        a.receive_control("d", Join(0, 7, "d:4"), 0.0)
        a.receive_control("d", Join(0, 8, "d:5"), 0.0)
        self.assertEqual(a.addresses.get("d"), "d:5")
        a.receive_control("c", Gone(0, View(0, tuple("abc")), (("d", "x:9"),)), 0)
        self.assertEqual(a.addresses.get("d"), "d:5")

    def test_group_limit(self) -> None:
        """
        A request to join a group of L{GROUP_LIMIT} members is turned away
        and counted.
        """
        names = [f"m{i:02}" for i in range(GROUP_LIMIT)]
        member = Membership(names[0], names, flush_timeout=1.0)
        member.receive_control("zz", Join(0, 1, "zz:1"), 0.0)
        self.assertEqual(member.turned_away, 1)
        self.assertNotIn("zz", member.joiners)
