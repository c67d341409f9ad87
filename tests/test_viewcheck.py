"""
Tests for L{isis_twisted.core.viewcheck}: the history checker for histories with
view changes in them.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.checker import CheckResult, MessageId
from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.core.viewcheck import (
    VIEW_GUARANTEES,
    ViewCheckResult,
    ViewMulticast,
    check_views,
)


@attrs.frozen
class NewView:
    """
    A view change in a history written with L{records}: its index is filled
    in from where it stands.
    """

    view: int
    members: tuple[str, ...]


def records(
    *items: MessageId | NewView,
    start: int = 1,
    after: dict[MessageId, int] | None = None,
) -> list[Record]:
    """
    A history: each message id becomes a delivery and each L{NewView} a
    view change, numbered from C{start} in the order given.
    """
    out: list[Record] = []
    index = start
    for item in items:
        if isinstance(item, NewView):
            out.append(ViewChange(item.view, item.members, index))
        else:
            sender, clock = item
            extra = None if after is None else after.get(item)
            out.append(Delivery(index, sender, clock, payload(item), extra))
            index += 1
    return out


def payload(mid: MessageId) -> bytes:
    """
    The payload every test history carries for a message.
    """
    return f"{mid[0]}@{mid[1]}".encode()


V1 = NewView(1, ("a", "b"))
# The reference run: a, b and c deliver three messages in view 0; c crashes
# after two of them; a and b install view 1 without c and deliver two more.
VIEW0: tuple[MessageId, ...] = (("a", 1), ("b", 2), ("c", 3))
VIEW1: tuple[MessageId, ...] = (("a", 4), ("b", 5))


def good() -> dict[str, list[Record]]:
    """
    The reference run's histories.
    """
    survivor = records(*VIEW0, V1, *VIEW1)
    return {"a": survivor, "b": list(survivor), "c": records(*VIEW0[:2])}


def sent() -> list[ViewMulticast]:
    """
    The reference run's multicasts, each with its view.
    """
    return [ViewMulticast(s, c, payload((s, c)), 0) for s, c in VIEW0] + [
        ViewMulticast(s, c, payload((s, c)), 1) for s, c in VIEW1
    ]


class ViewCheckTestCase(SynchronousTestCase):
    """
    Helpers for asserting on a L{ViewCheckResult}.
    """

    def assertNone(self, result: CheckResult, guarantee: str) -> None:
        """
        The result has no violation of C{guarantee}.
        """
        self.assertEqual(result.by_guarantee(guarantee), (), result.summary())

    def assertKinds(self, result: CheckResult, *guarantees: str) -> None:
        """
        The result's violations are of exactly the given kinds.
        """
        self.assertEqual(
            {v.guarantee for v in result.violations}, set(guarantees), result.summary()
        )

    def assertFound(
        self, result: CheckResult, guarantee: str, node: str | None, *words: str
    ) -> None:
        """
        The result holds a violation of C{guarantee} at C{node} whose detail
        holds every one of C{words}.
        """
        for v in result.by_guarantee(guarantee):
            if v.node == node and all(w in v.detail for w in words):
                return
        self.fail(f"no {guarantee} at {node} with {words} in:\n{result.summary()}")


class GoodRunTests(ViewCheckTestCase):
    """
    Correct histories pass, however much the caller tells the checker.
    """

    def test_ok(self) -> None:
        """
        The reference run keeps every guarantee.
        """
        result = check_views(good())
        self.assertTrue(result.ok, result.summary())
        self.assertEqual(result.nodes, ("a", "b", "c"))
        self.assertEqual(result.views, 2)
        self.assertEqual(result.final_view, 1)
        self.assertEqual(result.messages, 5)
        self.assertEqual(result.deliveries, 12)

    def test_okWithEverything(self) -> None:
        """
        With the multicasts, the crashed member and liveness, it still
        passes.
        """
        result = check_views(good(), sent(), departed={"c"}, liveness=True)
        self.assertTrue(result.ok, result.summary())

    def test_removedNeedNotBeNamed(self) -> None:
        """
        A member that a later view leaves out counts as removed: liveness
        asks nothing of it though the caller did not name it.
        """
        self.assertTrue(check_views(good(), sent(), liveness=True).ok)

    def test_initialGiven(self) -> None:
        """
        The initial view may be given; a view-0 record that opens a history
        may name it too.
        """
        self.assertTrue(check_views(good(), initial=("a", "b", "c")).ok)
        histories = good()
        histories["a"] = [ViewChange(0, ("a", "b", "c"), 1), *histories["a"]]
        self.assertTrue(check_views(histories).ok)

    def test_noViews(self) -> None:
        """
        Histories without view changes are judged in view 0.
        """
        history = records(*VIEW0)
        result = check_views({"a": history, "b": history}, liveness=True)
        self.assertTrue(result.ok, result.summary())
        self.assertEqual((result.views, result.final_view), (1, 0))

    def test_empty(self) -> None:
        """
        No histories at all pass.
        """
        result = check_views({})
        self.assertTrue(result.ok)
        self.assertEqual(result.nodes, ())

    def test_joiner(self) -> None:
        """
        A member that joins in view 1 starts its history there, at the
        view's first index, and owes nothing of view 0.
        """
        v1 = NewView(1, ("a", "b", "d"))
        histories = {
            "a": records(*VIEW0, v1, *VIEW1),
            "b": records(*VIEW0, v1, *VIEW1),
            "c": records(*VIEW0[:2]),
            "d": records(v1, *VIEW1, start=4),
        }
        result = check_views(
            histories, sent(), initial=("a", "b", "c"), departed={"c"}, liveness=True
        )
        self.assertTrue(result.ok, result.summary())
        # Without the initial view given, a history that opens with a later
        # view is taken for a joiner's.
        result = check_views(histories, sent(), departed={"c"}, liveness=True)
        self.assertTrue(result.ok, result.summary())

    def test_removedRecordsItsRemoval(self) -> None:
        """
        A removed member may record the view that leaves it out, and stop.
        """
        histories = good()
        histories["c"] = records(*VIEW0, V1)
        self.assertTrue(check_views(histories, sent(), liveness=True).ok)

    def test_summary(self) -> None:
        """
        The summary of a good run gives the counts and every guarantee
        checked; liveness is named only when it was checked.
        """
        plain = check_views(good()).summary()
        self.assertEqual(
            plain,
            "3 nodes, 2 views (final 1), 5 messages, 12 deliveries: OK (total"
            " order, integrity, FIFO, causality, indices, view agreement,"
            " membership, primary component, same view, view synchrony,"
            " uniformity)",
        )
        self.assertTrue(
            check_views(good(), liveness=True).summary().endswith(", liveness)")
        )

    def test_isCheckResult(self) -> None:
        """
        The result is a L{CheckResult}, so what reads one reads it.
        """
        result = check_views(good())
        self.assertIsInstance(result, ViewCheckResult)
        self.assertIsInstance(result, CheckResult)


class ReusedChecksTests(ViewCheckTestCase):
    """
    What L{isis_twisted.core.checker.check} finds is found across views too.
    """

    def test_totalOrder(self) -> None:
        """
        Two members that deliver view 1's messages in different orders
        break total order.
        """
        histories = good()
        histories["b"] = records(*VIEW0, V1, *reversed(VIEW1))
        result = check_views(histories)
        self.assertFound(result, "total order", None, "a@4", "b@5")

    def test_totalOrderAcrossViews(self) -> None:
        """
        Two members whose orders differ across the view change break total
        order (and the message's view).
        """
        histories = good()
        histories["b"] = records(("a", 1), ("b", 2), ("a", 4), V1, ("c", 3), ("b", 5))
        result = check_views(histories)
        self.assertFound(result, "total order", None, "c@3", "a@4")

    def test_integrity(self) -> None:
        """
        A message delivered twice, or that nobody multicast, breaks
        integrity.
        """
        histories = good()
        histories["b"] = records(*VIEW0, V1, ("a", 4), ("a", 4))
        self.assertFound(check_views(histories), "integrity", "b", "a@4", "twice")
        self.assertFound(
            check_views(good(), sent()[:-1]), "integrity", "a", "b@5", "never"
        )

    def test_fifo(self) -> None:
        """
        A member that delivers a sender's messages out of order breaks FIFO.
        """
        histories = good()
        survivor = records(("a", 4), ("b", 2), ("c", 3), V1, ("a", 1), ("b", 5))
        histories["a"] = histories["b"] = survivor
        self.assertFound(check_views(histories), "fifo", "a", "a@1", "a@4")

    def test_causality(self) -> None:
        """
        A message delivered before one its sender had delivered when it
        multicast it breaks causality.
        """
        histories = good()
        # b multicast b@5 in view 1 after delivering four messages (a@4
        # among them), but a delivers b@5 first.
        histories["a"] = records(*VIEW0, V1, ("b", 5), ("a", 4))
        histories["b"] = records(*VIEW0, V1, *VIEW1, after={("b", 5): 4})
        self.assertFound(check_views(histories), "causality", "a", "b@5", "a@4")


class IndexTests(ViewCheckTestCase):
    """
    Indices run without a gap across views, and a message carries the same
    index everywhere.
    """

    def test_gap(self) -> None:
        """
        A delivery that skips an index is found.
        """
        histories = good()
        histories["b"] = records(*VIEW0, V1, *VIEW1)
        histories["b"][-1] = attrs.evolve(histories["b"][-1], index=7)
        self.assertFound(check_views(histories), "index", "b", "b@5", "index 7")

    def test_viewStartsElsewhere(self) -> None:
        """
        A view that does not start right after the view before it ends is
        found.
        """
        histories = good()
        histories["a"][3] = ViewChange(1, ("a", "b"), 9)
        result = check_views(histories)
        self.assertFound(result, "index", "a", "view 1 starts at index 9")
        # a is first by name, so b is the one said to disagree with it.
        self.assertFound(result, "view agreement", "b", "index 4", "index 9")

    def test_sameIndexOtherMessage(self) -> None:
        """
        Two members that deliver different messages at one index are found,
        even where uniformity has nobody to judge them by: both were removed
        and every member that went on joined after that index.
        """
        v1 = NewView(1, ("a", "b", "j", "k", "l"))
        v2 = NewView(2, ("j", "k", "l"))
        removed = [records(("a", 1), v1, v2), records(("b", 2), v1, v2)]
        joiner = records(v1, v2, ("j", 3), start=2)
        histories = {"a": removed[0], "b": removed[1], "j": joiner, "k": joiner}
        histories["l"] = joiner
        result = check_views(histories, initial=("a", "b"))
        self.assertKinds(result, "index", "view synchrony")
        self.assertFound(result, "index", "b", "b@2 at index 1", "a delivered a@1")

    def test_sameMessageOtherIndex(self) -> None:
        """
        A message at another index than on another member is found, even
        where each history is gap-free on its own (a joiner's).
        """
        v1 = NewView(1, ("a", "b", "d"))
        histories = {
            "a": records(*VIEW0, v1, *VIEW1),
            "b": records(*VIEW0, v1, *VIEW1),
            "d": records(*VIEW1, start=5),
        }
        histories["d"].insert(0, ViewChange(1, v1.members, 5))
        result = check_views(histories, initial=("a", "b"))
        self.assertFound(result, "index", "d", "a@4 at index 5", "index 4")


class ViewAgreementTests(ViewCheckTestCase):
    """
    No two members install different views under one id, and each member
    installs views one after the other.
    """

    def test_differentMembers(self) -> None:
        """
        Two members installing different view 1s is found, naming both.
        """
        histories = good()
        histories["b"] = records(*VIEW0, NewView(1, ("a", "b", "c")), *VIEW1)
        result = check_views(histories)
        self.assertFound(
            result, "view agreement", "b", "view 1 as (a, b, c)", "a installed"
        )

    def test_membersAsList(self) -> None:
        """
        Members given as a list (as a decoder may give them) agree with the
        same members given as a tuple.
        """
        histories = good()
        histories["b"] = list(histories["b"])
        histories["b"][3] = ViewChange(1, ["a", "b"], 4)  # type: ignore[arg-type]
        result = check_views(histories)
        self.assertTrue(result.ok, result.summary())

    def test_disagreesWithInitial(self) -> None:
        """
        A view-0 record that differs from the initial view given is found.
        """
        histories = good()
        histories["a"] = [ViewChange(0, ("a", "b"), 1), *histories["a"]]
        result = check_views(histories, initial=("a", "b", "c"))
        self.assertFound(
            result, "view agreement", "a", "view 0 as (a, b)", "initial view"
        )

    def test_skip(self) -> None:
        """
        A member of view 1 that goes on to view 3 without installing view 2
        is found.
        """
        v2 = NewView(2, ("a", "b"))
        v3 = NewView(3, ("a", "b"))
        histories = {
            "a": records(("a", 1), V1, ("a", 2), v2, ("a", 3), v3, ("a", 4)),
            "b": records(("a", 1), V1, ("a", 2), v3, ("a", 3), ("a", 4)),
        }
        histories["b"][3] = ViewChange(3, v3.members, 4)
        histories["b"][5] = Delivery(4, "a", 4, payload(("a", 4)))
        result = check_views(histories, initial=("a", "b"))
        self.assertFound(
            result, "view agreement", "b", "from view 1 to view 3", "view 2"
        )

    def test_removalMaySkip(self) -> None:
        """
        A member that learns of a later view that leaves it out may record
        that view though it missed the ones between.
        """
        v2 = NewView(2, ("a", "b"))
        histories = good()
        histories["a"] = histories["b"] = records(*VIEW0, V1, v2, *VIEW1)
        histories["c"] = records(*VIEW0, v2)
        self.assertTrue(check_views(histories).ok)
        # Had v2 kept it, skipping view 1 would be wrong.
        histories["c"] = records(*VIEW0, NewView(2, ("a", "b", "c")))
        result = check_views(histories)
        self.assertFound(
            result, "view agreement", "c", "from view 0 to view 2", "view 1"
        )

    def test_backwards(self) -> None:
        """
        A member that installs a view whose id is not higher than its
        current one is found.
        """
        histories = good()
        histories["b"] = records(*VIEW0, V1, ("a", 4), V1, ("b", 5))
        histories["b"][5] = ViewChange(1, ("a", "b"), 4)
        self.assertFound(
            check_views(histories),
            "view agreement",
            "b",
            "view 1 after view 1 (a member's view ids only grow)",
        )

    def test_missingPredecessor(self) -> None:
        """
        A view whose predecessor nobody installed is found.
        """
        histories = good()
        v2 = NewView(2, ("a", "b"))
        histories["a"] = histories["b"] = records(*VIEW0, v2, *VIEW1)
        result = check_views(histories)
        self.assertFound(result, "view agreement", None, "no member installed view 1")


class MembershipTests(ViewCheckTestCase):
    """
    A member delivers nothing in a view it is not a member of.
    """

    def test_deliverAfterRemoval(self) -> None:
        """
        A member that records its removal and delivers on is found, once
        for the view, with a count of the rest.
        """
        histories = good()
        histories["c"] = records(*VIEW0, V1, *VIEW1)
        result = check_views(histories)
        self.assertKinds(result, "membership")
        (v,) = result.violations
        self.assertEqual(v.node, "c")
        self.assertEqual(
            v.detail,
            "delivered a@4 in view 1, which it is not a member of (and 1 more there)",
        )

    def test_viewAfterRemoval(self) -> None:
        """
        A member that installs another view after one that removed it is
        found.
        """
        histories = good()
        histories["c"] = records(
            *VIEW0, V1, NewView(2, ("a", "b", "c")), NewView(3, ("a", "b", "c"))
        )
        result = check_views(histories)
        self.assertFound(result, "membership", "c", "view 2 after view 1")
        # Once: a member that carries on is not told again at every view.
        self.assertEqual(len(result.by_guarantee("membership")), 1, result.summary())

    def test_rejoinCaughtUp(self) -> None:
        """
        A member removed and added back by a view the others installed too,
        holding what it missed (it was caught up), is no violation; one
        that holds something else there is found.
        """
        v2 = NewView(2, ("a", "b", "c"))
        survivor = records(*VIEW0, V1, *VIEW1, v2, ("c", 9))
        histories = {"a": survivor, "b": list(survivor), "c": list(survivor)}
        result = check_views(histories, initial=("a", "b", "c"))
        self.assertTrue(result.ok, result.summary())
        # Added back without catching up: its history opens with view 2.
        histories["c"] = records(v2, ("c", 9), start=6)
        self.assertTrue(check_views(histories, initial=("a", "b", "c")).ok)
        # Caught up on something else.
        histories["c"] = records(*VIEW0, V1, ("a", 4), ("b", 77), v2, ("c", 9))
        self.assertFalse(check_views(histories, initial=("a", "b", "c")).ok)

    def test_joinerBeforeJoining(self) -> None:
        """
        A member not in the initial view that delivers before it installs a
        view is found.
        """
        histories = good()
        histories["d"] = records(("a", 1))
        result = check_views(histories, initial=("a", "b", "c"))
        self.assertFound(result, "membership", "d", "a@1 in view 0")

    def test_multicastByOutsider(self) -> None:
        """
        A message multicast in a view its sender is not a member of is
        found.
        """
        multicasts = [*sent(), ViewMulticast("c", 6, b"c@6", 1)]
        result = check_views(good(), multicasts)
        self.assertFound(result, "membership", "c", "multicast c@6 in view 1")


class PrimaryComponentTests(ViewCheckTestCase):
    """
    Each view keeps a majority of the view before it.
    """

    def test_minority(self) -> None:
        """
        A view keeping one member of three is found.
        """
        alone = records(*VIEW0, NewView(1, ("a",)), ("a", 4))
        histories = {"a": alone, "b": records(*VIEW0[:1]), "c": records()}
        result = check_views(histories)
        self.assertKinds(result, "primary component")
        self.assertEqual(
            result.violations[0].detail,
            "view 1 (a) keeps 1 of the 3 members of view 0 (a, b, c), not a majority",
        )

    def test_half(self) -> None:
        """
        Half of the view before is not a majority; more than half is.
        """
        four = ("a", "b", "c", "d")
        for kept, ok in [(("a", "b"), False), (("a", "b", "c"), True)]:
            history = records(("a", 1), NewView(1, kept), ("a", 2))
            histories = {n: history for n in kept}
            result = check_views(histories, initial=four)
            self.assertEqual(result.by_guarantee("primary component") == (), ok)

    def test_joinersDoNotCount(self) -> None:
        """
        Members that join do not make up for those lost: one of three kept
        and two joiners is no majority of the view before.
        """
        v1 = NewView(1, ("a", "d", "e"))
        histories = {"a": records(*VIEW0, v1), "b": records(), "c": records()}
        result = check_views(histories)
        self.assertFound(result, "primary component", None, "keeps 1 of the 3")


class SameViewTests(ViewCheckTestCase):
    """
    A message is delivered in the view it was multicast in.
    """

    def test_otherViewThanAnother(self) -> None:
        """
        A member that delivers in view 1 a message another delivered in view
        0 is found.
        """
        histories = good()
        histories["b"] = records(("a", 1), ("b", 2), V1, ("c", 3), *VIEW1)
        histories["b"][2] = ViewChange(1, V1.members, 4)
        result = check_views(histories)
        self.assertFound(
            result, "same view", "b", "c@3 in view 1", "a delivered it in view 0"
        )

    def test_otherViewThanMulticast(self) -> None:
        """
        With the multicasts given, a message delivered everywhere in view 1
        but multicast in view 0 is found at every member.
        """
        multicasts = [attrs.evolve(m, view=0) if m.clock == 4 else m for m in sent()]
        result = check_views(good(), multicasts)
        self.assertKinds(result, "same view")
        self.assertEqual(
            [(v.node, v.detail) for v in result.violations],
            [
                (n, "delivered a@4 in view 1; it was multicast in view 0")
                for n in ("a", "b")
            ],
        )


class ViewSynchronyTests(ViewCheckTestCase):
    """
    Members that move from a view to the next delivered the same set in it.
    """

    def test_differentSets(self) -> None:
        """
        Two members that move from view 0 to view 1 having delivered
        different messages in view 0 are found (and the index they hold
        different messages at, nothing else).
        """
        histories = good()
        histories["b"] = records(("a", 1), ("b", 2), ("c", 6), V1, *VIEW1)
        result = check_views(histories)
        self.assertKinds(result, "view synchrony", "index")
        (v,) = result.by_guarantee("view synchrony")
        self.assertEqual(v.node, "b")
        self.assertEqual(
            v.detail,
            "moved from view 0 to view 1 with a, but in view 0 did not deliver"
            " c@3 (a did) and delivered c@6 (a did not)",
        )

    def test_fewer(self) -> None:
        """
        A member that moves on having delivered less of the view is found.
        """
        histories = good()
        histories["b"] = records(("a", 1), ("b", 2), V1, ("a", 4), ("b", 5))
        histories["b"][2] = ViewChange(1, V1.members, 4)
        for i in (3, 4):
            rec = histories["b"][i]
            assert isinstance(rec, Delivery)
            histories["b"][i] = attrs.evolve(rec, index=rec.index + 1)
        self.assertFound(check_views(histories), "view synchrony", "b", "c@3 (a did)")

    def test_manyNamedBriefly(self) -> None:
        """
        A long difference names a few messages and counts the rest.
        """
        extra = [("b", 10 + i) for i in range(5)]
        histories = good()
        histories["b"] = records(*VIEW0, *extra)
        histories["a"] = records(*VIEW0, *([("x", 100 + i) for i in range(5)]))
        v1 = ViewChange(1, V1.members, 9)
        histories["a"].append(v1)
        histories["b"].append(v1)
        result = check_views(histories)
        self.assertFound(
            result, "view synchrony", "b", "b@10, b@11, b@12 and 2 more (a did not)"
        )


class UniformityTests(ViewCheckTestCase):
    """
    What a crashed or removed member delivered is what the members that
    went on delivered, index by index.
    """

    def test_notPrefix(self) -> None:
        """
        A crashed member that delivered a message the survivors did not is
        found against each survivor (and the index it differs at, nothing
        else).
        """
        histories = good()
        histories["c"] = records(("a", 1), ("b", 2), ("c", 9))
        result = check_views(histories, departed={"c"})
        self.assertKinds(result, "uniformity", "index")
        self.assertEqual(
            [(v.node, v.detail) for v in result.by_guarantee("uniformity")],
            [
                (
                    "c",
                    f"delivered c@9 at index 3, where {n}, which went on to view 1,"
                    " has c@3",
                )
                for n in ("a", "b")
            ],
        )

    def test_longerThanSurvivors(self) -> None:
        """
        A removed member that delivered more of its last view than the
        members that moved on is found.
        """
        histories = good()
        histories["a"] = histories["b"] = records(*VIEW0[:2], V1, *VIEW1)
        for h in (histories["a"], histories["b"]):
            h[2] = ViewChange(1, V1.members, 3)
        histories["c"] = records(*VIEW0)
        result = check_views(histories)
        self.assertFound(result, "uniformity", "c", "c@3 at index 3", "has a@4")

    def test_finalViewWithLiveness(self) -> None:
        """
        With liveness, a member that crashed in the final view is compared
        with the members that stayed to its end.
        """
        history = records(*VIEW0)
        crashed = records(("a", 1), ("c", 9))
        histories = {"a": history, "b": history, "c": crashed}
        self.assertNone(check_views(histories, departed={"c"}), "uniformity")
        result = check_views(histories, departed={"c"}, liveness=True)
        self.assertFound(
            result, "uniformity", "c", "c@9 at index 2", "end of the final view 0"
        )

    def test_joinerComparedFromWhereItJoined(self) -> None:
        """
        A survivor that joined later is compared only from its first index.
        """
        v1 = NewView(1, ("a", "d"))
        histories = {
            "a": records(*VIEW0, v1, *VIEW1),
            "b": records(*VIEW0),
            "c": records(*VIEW0[:1]),
            "d": records(v1, *VIEW1, start=4),
        }
        v1b = NewView(1, ("a", "b", "d"))
        histories["a"][3] = ViewChange(1, v1b.members, 4)
        histories["d"][0] = ViewChange(1, v1b.members, 4)
        result = check_views(histories, initial=("a", "b", "c"))
        self.assertTrue(result.ok, result.summary())


class LivenessTests(ViewCheckTestCase):
    """
    Once faults stop, the final view's members deliver everything its
    members multicast, and end at the same index.
    """

    def test_lagging(self) -> None:
        """
        A final-view member that has not delivered everything is found, and
        only when liveness is asked for.
        """
        histories = good()
        histories["b"] = records(*VIEW0, V1, ("a", 4))
        self.assertTrue(check_views(histories).ok)
        result = check_views(histories, liveness=True)
        self.assertKinds(result, "liveness")
        self.assertEqual(
            [v.detail for v in result.violations],
            [
                "never delivered b@5, multicast in view 1",
                "delivered up to index 4, a up to index 5",
            ],
        )

    def test_multicastNeverDelivered(self) -> None:
        """
        A multicast by a final-view member that nobody delivered is found
        at every member that was in its view; one by a crashed member is
        not owed.
        """
        lost = ViewMulticast("a", 6, b"a@6", 1)
        dead = ViewMulticast("c", 7, b"c@7", 0)
        result = check_views(good(), [*sent(), lost, dead], liveness=True)
        self.assertKinds(result, "liveness")
        self.assertEqual(
            [(v.node, v.detail) for v in result.violations],
            [(n, "never delivered a@6, multicast in view 1") for n in ("a", "b")],
        )

    def test_notInstalled(self) -> None:
        """
        A final-view member whose history ends in an earlier view is found.
        """
        histories = good()
        histories["b"] = records(*VIEW0)
        result = check_views(histories, liveness=True)
        self.assertFound(result, "liveness", "b", "final view 1", "ends in view 0")

    def test_crashedInFinalViewExcused(self) -> None:
        """
        A member named as crashed owes nothing even in the final view.
        """
        history = records(*VIEW0)
        histories = {"a": history, "b": history, "c": records(*VIEW0[:1])}
        self.assertFalse(check_views(histories, liveness=True).ok)
        self.assertTrue(check_views(histories, departed={"c"}, liveness=True).ok)

    def test_memberWithoutHistory(self) -> None:
        """
        A member of the final view whose history was not given is found,
        unless it is named as crashed.
        """
        histories = good()
        del histories["b"]
        initial = ("a", "b", "c")
        result = check_views(histories, initial=initial, liveness=True)
        self.assertKinds(result, "liveness")
        self.assertFound(result, "liveness", "b", "no history of it was given")
        result = check_views(histories, initial=initial, departed={"b"}, liveness=True)
        self.assertTrue(result.ok, result.summary())

    def test_finalViewNamed(self) -> None:
        """
        A final view nobody installed is found.
        """
        result = check_views(good(), final_view=2, liveness=True)
        self.assertKinds(result, "liveness")
        self.assertEqual(result.final_view, 2)
        self.assertEqual(
            result.violations[0].detail, "no member installed the final view 2"
        )


class ResultTests(ViewCheckTestCase):
    """
    The result reads well and lists violations in a fixed order.
    """

    def test_summaryViolations(self) -> None:
        """
        A failing summary counts and lists the violations.
        """
        histories = good()
        histories["c"] = records(*VIEW0, V1, *VIEW1)
        self.assertEqual(
            check_views(histories).summary(),
            "3 nodes, 2 views (final 1), 5 messages, 15 deliveries: 1 violations\n"
            "  membership at c: delivered a@4 in view 1, which it is not a member"
            " of (and 1 more there)",
        )

    def test_summaryLimit(self) -> None:
        """
        Past the limit the summary says how many more there are.
        """
        histories = good()
        histories["b"] = records(*VIEW0)
        lines = check_views(histories, liveness=True).summary(limit=1).splitlines()
        self.assertEqual(len(lines), 3)
        self.assertRegex(lines[-1], r"^  \.\.\. and \d+ more$")

    def test_order(self) -> None:
        """
        Violations come in the order of L{VIEW_GUARANTEES}.
        """
        histories = good()
        histories["b"] = records(("a", 1), ("b", 2), V1, ("c", 3), ("b", 5), ("a", 4))
        histories["b"][2] = ViewChange(1, V1.members, 4)
        result = check_views(histories, sent(), liveness=True)
        ranks = [VIEW_GUARANTEES.index(v.guarantee) for v in result.violations]
        self.assertGreater(len(set(ranks)), 2, result.summary())
        self.assertEqual(ranks, sorted(ranks))


@attrs.define
class Run:
    """
    A correct multi-view run built step by step: the group's one stream of
    records, each member's history of it, and the multicasts.
    """

    members: list[str]
    histories: dict[str, list[Record]]
    crashed: set[str] = attrs.Factory(set)
    multicasts: list[ViewMulticast] = attrs.Factory(list)
    view: int = 0
    index: int = 1
    clock: int = 0
    joined: int = 0

    def multicast(self, sender: str) -> None:
        """
        C{sender} multicasts; every member that has not crashed delivers.
        """
        self.clock += 1
        mid = (sender, self.clock)
        after = sum(isinstance(r, Delivery) for r in self.histories[sender])
        self.multicasts.append(
            ViewMulticast(sender, self.clock, payload(mid), self.view, after)
        )
        for n in self.members:
            if n not in self.crashed:
                self.histories[n].append(
                    Delivery(self.index, sender, self.clock, payload(mid), after)
                )
        self.index += 1

    def change(self, leave: Collection[str], join: int, record: bool) -> bool:
        """
        Install the next view without C{leave} (and every crashed member)
        and with C{join} new members, if a majority stays; a member that
        leaves alive records its removal if C{record}.
        """
        gone = set(leave) | self.crashed
        staying = [n for n in self.members if n not in gone]
        if 2 * len(staying) <= len(self.members):
            return False
        new = [f"j{self.joined + i}" for i in range(join)]
        self.joined += join
        self.view += 1
        change = ViewChange(self.view, (*staying, *new), self.index)
        for n in staying + new:
            self.histories.setdefault(n, []).append(change)
        if record:
            for n in set(leave) - self.crashed:
                self.histories[n].append(change)
        self.crashed |= gone
        self.members = staying + new
        return True


@st.composite
def runs(draw: st.DrawFn) -> Run:
    """
    A random correct run: members multicast, crash, and leave or join
    through view changes that keep a majority.  Every member that did not
    crash or leave is up to date at the end, so liveness holds too.
    """
    size = draw(st.integers(min_value=1, max_value=5))
    members = [f"n{i}" for i in range(size)]
    run = Run(list(members), {n: [] for n in members})
    for _ in range(draw(st.integers(min_value=0, max_value=20))):
        step = draw(st.sampled_from(["multicast", "multicast", "crash", "change"]))
        alive = [n for n in run.members if n not in run.crashed]
        if not alive:
            break
        if step == "multicast":
            run.multicast(draw(st.sampled_from(alive)))
        elif step == "crash":
            run.crashed.add(draw(st.sampled_from(alive)))
        else:
            leave = draw(st.sets(st.sampled_from(alive), max_size=len(alive) // 2))
            run.change(leave, draw(st.integers(0, 2)), draw(st.booleans()))
    return run


class PropertyTests(ViewCheckTestCase):
    """
    Random correct multi-view runs pass, and breaking one is caught.
    """

    @settings(max_examples=150, deadline=None)
    @given(runs())
    def test_correctRunsPass(self, run: Run) -> None:
        """
        Every guarantee holds in a correct run, liveness included, with and
        without the multicasts.
        """
        initial = sorted(n for n in run.histories if not n.startswith("j"))
        for multicasts in (None, run.multicasts):
            result = check_views(
                run.histories,
                multicasts,
                initial=initial,
                departed=run.crashed,
                liveness=True,
            )
            self.assertTrue(result.ok, result.summary())

    @settings(max_examples=100, deadline=None)
    @given(runs(), st.data())
    def test_droppedDeliveryCaught(self, run: Run, data: st.DataObject) -> None:
        """
        Taking one delivery out of a member's history that is followed by
        another record breaks some guarantee.
        """
        candidates = [
            (n, i)
            for n, h in run.histories.items()
            for i, r in enumerate(h[:-1])
            if isinstance(r, Delivery)
        ]
        if not candidates:
            return
        node, i = data.draw(st.sampled_from(candidates))
        histories = {n: list(h) for n, h in run.histories.items()}
        del histories[node][i]
        initial = sorted(n for n in run.histories if not n.startswith("j"))
        result = check_views(histories, initial=initial, departed=run.crashed)
        self.assertFalse(result.ok, f"{node} without record {i}")

    @settings(max_examples=100, deadline=None)
    @given(runs(), st.data())
    def test_replacedDeliveryCaught(self, run: Run, data: st.DataObject) -> None:
        """
        Replacing a delivery by a message nobody else delivered, at an index
        another member delivered too, breaks some guarantee.
        """
        holders: dict[int, set[str]] = {}
        for n, h in run.histories.items():
            for r in h:
                if isinstance(r, Delivery):
                    holders.setdefault(r.index, set()).add(n)
        candidates = [
            (n, i)
            for n, h in run.histories.items()
            for i, r in enumerate(h)
            if isinstance(r, Delivery) and len(holders[r.index]) > 1
        ]
        if not candidates:
            return
        node, i = data.draw(st.sampled_from(candidates))
        histories = {n: list(h) for n, h in run.histories.items()}
        old = histories[node][i]
        assert isinstance(old, Delivery)
        histories[node][i] = attrs.evolve(old, sender="zz", clock=10**6)
        initial = sorted(n for n in run.histories if not n.startswith("j"))
        result = check_views(histories, initial=initial, departed=run.crashed)
        self.assertFalse(result.ok, f"{node} with record {i} replaced")

    @settings(max_examples=100, deadline=None)
    @given(runs(), st.data())
    def test_earlyViewChangeCaught(self, run: Run, data: st.DataObject) -> None:
        """
        Moving a view change before the delivery that came just before it,
        on a member where another member installed that view too, breaks
        some guarantee.
        """
        installers: dict[int, int] = {}
        for h in run.histories.values():
            for r in h:
                if isinstance(r, ViewChange):
                    installers[r.view] = installers.get(r.view, 0) + 1
        candidates = [
            (n, i)
            for n, h in run.histories.items()
            for i, r in enumerate(h)
            if i > 0
            and isinstance(r, ViewChange)
            and isinstance(h[i - 1], Delivery)
            and installers[r.view] > 1
        ]
        if not candidates:
            return
        node, i = data.draw(st.sampled_from(candidates))
        histories = {n: list(h) for n, h in run.histories.items()}
        h = histories[node]
        change, before = h[i], h[i - 1]
        assert isinstance(change, ViewChange) and isinstance(before, Delivery)
        h[i - 1], h[i] = attrs.evolve(change, index=before.index), before
        initial = sorted(n for n in run.histories if not n.startswith("j"))
        result = check_views(histories, initial=initial, departed=run.crashed)
        self.assertFalse(result.ok, f"{node} with view {change.view} moved")
