"""
Tests for L{isis_twisted.core.checker}: the history checker and its JSON-lines
command.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.checker import (
    GUARANTEES,
    CheckResult,
    HistoryFormatError,
    MessageId,
    Multicast,
    Violation,
    check,
    check_uniformity,
    load_jsonl,
    load_records,
    main,
    record_to_json,
    run_starts,
)
from isis_twisted.core.engine import Delivery, Record, ViewChange

# The agreed order of the reference history: two senders, five messages.
ORDER: tuple[MessageId, ...] = (("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5))
NODES = ("a", "b", "c")


def payload_of(mid: MessageId) -> bytes:
    """
    The payload the reference history carries for a message.
    """
    return f"{mid[0]}@{mid[1]}".encode()


def history(
    order: Iterable[MessageId],
    afters: Mapping[MessageId, int] | None = None,
    payloads: Mapping[MessageId, bytes] | None = None,
    indices: Sequence[int] | None = None,
) -> list[Delivery]:
    """
    One node's delivery history of C{order}, numbered 1..n unless
    C{indices} says otherwise.
    """
    records = []
    for i, mid in enumerate(order):
        index = i + 1 if indices is None else indices[i]
        payload = payload_of(mid)
        if payloads is not None and mid in payloads:
            payload = payloads[mid]
        after = None if afters is None else afters.get(mid)
        records.append(Delivery(index, mid[0], mid[1], payload, after))
    return records


def own_afters(node: str, order: Sequence[MessageId]) -> dict[MessageId, int]:
    """
    The C{after} values a node records for its own messages when it
    delivered C{order}: each is the number of deliveries before it.
    """
    return {mid: i for i, mid in enumerate(order) if mid[0] == node}


def good_histories(with_after: bool = False) -> dict[str, list[Delivery]]:
    """
    Three nodes delivering the same five messages in the same order.
    """
    return {
        n: history(ORDER, own_afters(n, ORDER) if with_after else None) for n in NODES
    }


def good_multicasts(
    with_after: bool = False, order: Sequence[MessageId] = ORDER
) -> list[Multicast]:
    """
    The multicasts behind L{good_histories}.
    """
    return [
        Multicast(s, c, payload_of((s, c)), i if with_after else None)
        for i, (s, c) in enumerate(order)
    ]


def swapped(order: Sequence[MessageId], first: int) -> list[MessageId]:
    """
    C{order} with the messages at C{first} and C{first + 1} swapped.
    """
    out = list(order)
    out[first], out[first + 1] = out[first + 1], out[first]
    return out


class CheckerTestCase(SynchronousTestCase):
    """
    Helpers for asserting on a L{CheckResult}.
    """

    def assertKinds(self, result: CheckResult, *guarantees: str) -> None:
        """
        The result's violations are of exactly the given kinds.
        """
        self.assertEqual(
            {v.guarantee for v in result.violations},
            set(guarantees),
            result.summary(),
        )

    def assertNone(self, result: CheckResult, guarantee: str) -> None:
        """
        The result has no violation of C{guarantee}.
        """
        self.assertEqual(result.by_guarantee(guarantee), (), result.summary())

    def assertNodes(
        self, violations: Iterable[Violation], nodes: Iterable[str | None]
    ) -> None:
        """
        The violations concern exactly the given nodes.
        """
        self.assertEqual(
            sorted({v.node or "" for v in violations}),
            sorted({n or "" for n in nodes}),
        )


class GoodHistoryTests(CheckerTestCase):
    """
    Correct histories pass.
    """

    def test_ok(self) -> None:
        """
        Three nodes delivering the same messages in the same order, numbered
        from 1, keep every guarantee.
        """
        result = check(good_histories())
        self.assertTrue(result.ok, result.summary())
        self.assertEqual(result.violations, ())
        self.assertEqual(result.nodes, NODES)
        self.assertEqual(result.messages, 5)
        self.assertEqual(result.deliveries, 15)

    def test_okWithMulticasts(self) -> None:
        """
        The same histories pass when the multicasts are given too.
        """
        result = check(good_histories(), good_multicasts())
        self.assertTrue(result.ok, result.summary())

    def test_okWithAfter(self) -> None:
        """
        Histories whose causal predecessors are respected pass, with the
        C{after} taken from the records or from the multicasts.
        """
        self.assertTrue(check(good_histories(with_after=True)).ok)
        result = check(good_histories(), good_multicasts(with_after=True))
        self.assertTrue(result.ok, result.summary())
        result = check(
            good_histories(with_after=True), good_multicasts(with_after=True)
        )
        self.assertTrue(result.ok, result.summary())

    def test_noKindOfViolation(self) -> None:
        """
        A correct history has no violation of any single guarantee.
        """
        for result in [
            check(good_histories()),
            check(good_histories(with_after=True), good_multicasts(True)),
        ]:
            for guarantee in GUARANTEES:
                self.assertNone(result, guarantee)

    def test_nodesSorted(self) -> None:
        """
        The result names the nodes sorted, whatever order they came in.
        """
        histories = {n: history(ORDER) for n in ("c", "a", "b")}
        self.assertEqual(check(histories).nodes, ("a", "b", "c"))

    def test_empty(self) -> None:
        """
        No histories at all, or empty ones, are trivially fine.
        """
        self.assertTrue(check({}).ok)
        result = check({"a": [], "b": []})
        self.assertTrue(result.ok)
        self.assertEqual((result.messages, result.deliveries), (0, 0))

    def test_singleNode(self) -> None:
        """
        One node alone is checked for its own guarantees only.
        """
        self.assertTrue(check({"a": history(ORDER)}).ok)


class TotalOrderTests(CheckerTestCase):
    """
    Two nodes delivering two messages in opposite orders break total order.
    """

    def test_swap(self) -> None:
        """
        When C{c} swaps two messages of different senders, total order is
        violated between C{c} and each other node, and nothing else is.
        """
        histories = good_histories()
        histories["c"] = history(swapped(ORDER, 0))
        result = check(histories)
        self.assertFalse(result.ok)
        self.assertKinds(result, "total order")
        found = result.by_guarantee("total order")
        self.assertEqual(len(found), 2)
        for v, other in zip(found, ["a", "b"], strict=True):
            self.assertIsNone(v.node)
            self.assertIn(other, v.detail)
            self.assertIn("c delivered", v.detail)
            self.assertIn("a@1", v.detail)
            self.assertIn("b@2", v.detail)

    def test_swapAmongOthers(self) -> None:
        """
        The violation names the two nodes that disagree.
        """
        histories = good_histories()
        histories["b"] = history(swapped(ORDER, 2))
        found = check(histories).by_guarantee("total order")
        self.assertEqual(len(found), 2)
        self.assertIn("a delivered a@3 before b@4", found[0].detail)
        self.assertIn("b delivered b@4 before a@3", found[0].detail)
        self.assertIn("b delivered b@4 before a@3", found[1].detail)
        self.assertIn("c delivered a@3 before b@4", found[1].detail)

    def test_missingMessageIsNotDisorder(self) -> None:
        """
        A node that misses a message but delivers the rest in order breaks
        agreement, not total order.
        """
        histories = good_histories()
        histories["c"] = history(ORDER[:1] + ORDER[2:])
        result = check(histories)
        self.assertKinds(result, "agreement")
        self.assertNone(result, "total order")


class AgreementTests(CheckerTestCase):
    """
    A message delivered somewhere must be delivered everywhere.
    """

    def test_missing(self) -> None:
        """
        A node that never delivers a message the others delivered is named.
        """
        histories = good_histories()
        histories["c"] = history(ORDER[:3] + ORDER[4:])
        result = check(histories)
        self.assertKinds(result, "agreement")
        (v,) = result.by_guarantee("agreement")
        self.assertEqual(v.node, "c")
        self.assertIn("b@4", v.detail)
        self.assertIn("a, b", v.detail)

    def test_missingEverything(self) -> None:
        """
        An empty history misses every message, each reported once.
        """
        histories = good_histories()
        histories["b"] = []
        result = check(histories)
        found = result.by_guarantee("agreement")
        self.assertEqual(len(found), 5)
        self.assertNodes(found, ["b"])
        for v, mid in zip(found, ORDER, strict=True):
            self.assertIn(f"{mid[0]}@{mid[1]}", v.detail)

    def test_extraMessage(self) -> None:
        """
        A message only one node delivered is missing at all the others.
        """
        histories = good_histories()
        histories["a"] = history([*ORDER, ("c", 9)])
        found = check(histories).by_guarantee("agreement")
        self.assertNodes(found, ["b", "c"])
        for v in found:
            self.assertIn("c@9", v.detail)

    def test_noneInGood(self) -> None:
        """
        A correct history has no agreement violation.
        """
        self.assertNone(check(good_histories()), "agreement")


class IntegrityTests(CheckerTestCase):
    """
    Each message is delivered at most once, and as it was sent.
    """

    def test_duplicate(self) -> None:
        """
        A node delivering a message twice breaks integrity there.
        """
        histories = good_histories()
        histories["c"] = history([*ORDER, ("a", 1)])
        result = check(histories)
        self.assertKinds(result, "integrity")
        (v,) = result.by_guarantee("integrity")
        self.assertEqual(v.node, "c")
        self.assertIn("a@1", v.detail)
        self.assertIn("twice", v.detail)
        self.assertIn("1", v.detail)
        self.assertIn("6", v.detail)
        self.assertEqual(result.deliveries, 16)
        self.assertEqual(result.messages, 5)

    def test_duplicateNamesFirstDeliveryNumber(self) -> None:
        """
        The report of a duplicate gives the delivery numbers of both copies,
        even after an earlier duplicate was skipped.
        """
        records = [
            Delivery(1, "x", 1, b"p"),
            Delivery(2, "x", 1, b"p"),
            Delivery(3, "x", 2, b"q"),
            Delivery(4, "x", 2, b"q"),
        ]
        result = check({"a": records})
        details = [v.detail for v in result.by_guarantee("integrity")]
        self.assertEqual(len(details), 2)
        self.assertIn("as number 3 and 4", details[1])

    def test_neverMulticast(self) -> None:
        """
        With the multicasts given, a delivered message that is not among
        them breaks integrity at every node that delivered it.
        """
        sent = [m for m in good_multicasts() if (m.sender, m.clock) != ("b", 4)]
        result = check(good_histories(), sent)
        self.assertKinds(result, "integrity")
        found = result.by_guarantee("integrity")
        self.assertNodes(found, NODES)
        for v in found:
            self.assertIn("b@4", v.detail)
            self.assertIn("never multicast", v.detail)

    def test_unknownMessageWithoutMulticasts(self) -> None:
        """
        Without the multicasts, no message can be called unsent.
        """
        self.assertNone(check(good_histories()), "integrity")

    def test_payloadDiffersAcrossNodes(self) -> None:
        """
        One timestamp delivered with different payloads at different nodes
        breaks integrity at the node that differs.
        """
        histories = good_histories()
        histories["c"] = history(ORDER, payloads={("b", 2): b"forged"})
        for sent in [None, good_multicasts()]:
            result = check(histories, sent)
            self.assertKinds(result, "integrity")
            found = result.by_guarantee("integrity")
            self.assertNodes(found, ["c"])
            for v in found:
                self.assertIn("b@2", v.detail)
        # Without the multicasts the checker cannot tell which is right, so
        # one violation; with them, c also differs from what was sent.
        self.assertEqual(len(check(histories).by_guarantee("integrity")), 1)
        self.assertEqual(
            len(check(histories, good_multicasts()).by_guarantee("integrity")), 2
        )

    def test_payloadDiffersFromMulticast(self) -> None:
        """
        A message every node delivered with a payload other than the one
        multicast breaks integrity at every node.
        """
        sent = [
            Multicast(m.sender, m.clock, b"original", m.after)
            if (m.sender, m.clock) == ("a", 3)
            else m
            for m in good_multicasts()
        ]
        result = check(good_histories(), sent)
        self.assertKinds(result, "integrity")
        found = result.by_guarantee("integrity")
        self.assertEqual(len(found), 3)
        self.assertNodes(found, NODES)
        for v in found:
            self.assertIn("a@3", v.detail)
            self.assertIn("multicast", v.detail)

    def test_noneInGood(self) -> None:
        """
        A correct history has no integrity violation.
        """
        self.assertNone(check(good_histories(), good_multicasts()), "integrity")


class ValidityTests(CheckerTestCase):
    """
    With the multicasts given, every one must be delivered.
    """

    def test_neverDelivered(self) -> None:
        """
        A multicast nobody delivered breaks validity, at no node in
        particular.
        """
        sent = [*good_multicasts(), Multicast("a", 7, b"lost")]
        result = check(good_histories(), sent)
        self.assertKinds(result, "validity")
        (v,) = result.by_guarantee("validity")
        self.assertIsNone(v.node)
        self.assertIn("a@7", v.detail)

    def test_onlyWithMulticasts(self) -> None:
        """
        Without the multicasts, validity cannot be checked.
        """
        self.assertNone(check(good_histories()), "validity")
        self.assertNone(check({"a": [], "b": []}), "validity")

    def test_deliveredSomewhere(self) -> None:
        """
        A multicast delivered by some nodes only breaks agreement, not
        validity.
        """
        histories = good_histories()
        histories["c"] = history(ORDER[:4])
        result = check(histories, good_multicasts())
        self.assertKinds(result, "agreement")


class FifoTests(CheckerTestCase):
    """
    A sender's messages are delivered in the order it sent them.
    """

    def reversedA(self) -> list[MessageId]:
        # a@3 before a@1, b's messages untouched.
        return [("a", 3), ("b", 2), ("a", 1), ("b", 4), ("a", 5)]

    def test_clockOrder(self) -> None:
        """
        Without the multicasts, a sender's clock-later message delivered
        before its earlier one breaks FIFO at every node that did so.
        """
        histories = {n: history(self.reversedA()) for n in NODES}
        result = check(histories)
        self.assertKinds(result, "fifo")
        found = result.by_guarantee("fifo")
        self.assertEqual(len(found), 3)
        self.assertNodes(found, NODES)
        for v in found:
            self.assertIn("a@1", v.detail)
            self.assertIn("a@3", v.detail)

    def test_oneNode(self) -> None:
        """
        FIFO is judged per node: only the node that reordered is named.
        """
        histories = good_histories()
        histories["b"] = history(self.reversedA())
        result = check(histories)
        self.assertNodes(result.by_guarantee("fifo"), ["b"])
        self.assertNotEqual(result.by_guarantee("total order"), ())

    def test_sendingOrder(self) -> None:
        """
        With the multicasts given, the same reordering breaks FIFO.
        """
        histories = {n: history(self.reversedA()) for n in NODES}
        result = check(histories, good_multicasts())
        self.assertKinds(result, "fifo")
        found = result.by_guarantee("fifo")
        self.assertNodes(found, NODES)
        for v in found:
            self.assertIn("a@1", v.detail)

    def test_sendingOrderAsGiven(self) -> None:
        """
        With the multicasts given, their order, not the clocks, is the
        sending order.
        """
        histories = {n: history(self.reversedA()) for n in NODES}
        result = check(histories, good_multicasts(order=self.reversedA()))
        self.assertTrue(result.ok, result.summary())
        result = check(good_histories(), good_multicasts(order=self.reversedA()))
        self.assertKinds(result, "fifo")

    def test_otherSendersIgnored(self) -> None:
        """
        Interleaving different senders' messages is no FIFO violation.
        """
        order = [("b", 2), ("a", 1), ("b", 4), ("a", 3), ("a", 5)]
        histories = {n: history(order) for n in NODES}
        self.assertTrue(check(histories).ok)

    def test_noneInGood(self) -> None:
        """
        A correct history has no FIFO violation.
        """
        self.assertNone(check(good_histories()), "fifo")
        self.assertNone(check(good_histories(), good_multicasts()), "fifo")


class CausalityTests(CheckerTestCase):
    """
    A message is delivered after everything its sender had delivered when it
    multicast it.
    """

    # c delivers b@4 before a@3, which b had delivered (as its third
    # delivery) before multicasting b@4.
    BROKEN: tuple[MessageId, ...] = (("a", 1), ("b", 2), ("b", 4), ("a", 3), ("a", 5))

    def assertBroken(self, result: CheckResult) -> None:
        found = result.by_guarantee("causality")
        self.assertEqual(len(found), 1, result.summary())
        (v,) = found
        self.assertEqual(v.node, "c")
        self.assertIn("b@4", v.detail)
        self.assertIn("a@3", v.detail)
        self.assertNotEqual(result.by_guarantee("total order"), ())
        self.assertNone(result, "fifo")

    def test_viaMulticast(self) -> None:
        """
        With the multicasts given, their C{after} names the predecessors.
        """
        histories = good_histories()
        histories["c"] = history(self.BROKEN)
        self.assertBroken(check(histories, good_multicasts(with_after=True)))
        # Without any `after`, nothing is known of causality.
        self.assertNone(check(histories, good_multicasts()), "causality")

    def test_viaRecord(self) -> None:
        """
        Without the multicasts, the C{after} of the sender's own record of
        its message names the predecessors.
        """
        histories = good_histories(with_after=True)
        histories["c"] = history(self.BROKEN, own_afters("c", self.BROKEN))
        self.assertBroken(check(histories))

    def test_onlyOwnRecordsCount(self) -> None:
        """
        An C{after} on a record of another member's message is ignored.
        """
        histories = good_histories()
        histories["a"] = history(ORDER, {("b", 4): 3})
        histories["c"] = history(self.BROKEN)
        self.assertNone(check(histories), "causality")

    def test_withinPrefixOnly(self) -> None:
        """
        Only the sender's first C{after} deliveries are predecessors: with
        C{after=2}, delivering b@4 before a@3 keeps causality.
        """
        histories = good_histories()
        histories["c"] = history(self.BROKEN)
        sent = [
            Multicast(m.sender, m.clock, m.payload, 2 if m.clock == 4 else None)
            for m in good_multicasts()
        ]
        self.assertNone(check(histories, sent), "causality")

    def test_afterZero(self) -> None:
        """
        A message multicast before anything was delivered has no
        predecessors.
        """
        histories = good_histories()
        histories["c"] = history(self.BROKEN)
        sent = [Multicast(m.sender, m.clock, m.payload, 0) for m in good_multicasts()]
        self.assertNone(check(histories, sent), "causality")

    def test_noneInGood(self) -> None:
        """
        A correct history has no causality violation.
        """
        self.assertNone(check(good_histories(with_after=True)), "causality")
        self.assertNone(
            check(good_histories(), good_multicasts(with_after=True)), "causality"
        )

    def test_negativeAfterIgnored(self) -> None:
        """
        A negative C{after} names no predecessors, so it cannot produce a
        causality violation.
        """
        a = [Delivery(1, "a", 5, b"m", -1), Delivery(2, "b", 1, b"1")]
        b = [Delivery(1, "a", 5, b"m"), Delivery(2, "b", 1, b"1")]
        self.assertTrue(check({"a": a, "b": b}).ok)
        self.assertTrue(
            check({"a": b, "b": b}, [Multicast("a", 5, b"m", -1)]).by_guarantee(
                "causality"
            )
            == ()
        )


class IndexTests(CheckerTestCase):
    """
    Each node numbers its deliveries 1, 2, 3, ... without gaps.
    """

    def test_gap(self) -> None:
        """
        A skipped index is reported at the node, naming the delivery.
        """
        histories = good_histories()
        histories["c"] = history(ORDER, indices=[1, 2, 4, 5, 6])
        result = check(histories)
        self.assertKinds(result, "index")
        (v,) = result.by_guarantee("index")
        self.assertEqual(v.node, "c")
        self.assertIn("a@3", v.detail)
        self.assertIn("4", v.detail)

    def test_fromZero(self) -> None:
        """
        Numbering from 0 is wrong.
        """
        histories = good_histories()
        histories["a"] = history(ORDER, indices=[0, 1, 2, 3, 4])
        (v,) = check(histories).by_guarantee("index")
        self.assertEqual(v.node, "a")
        self.assertIn("a@1", v.detail)

    def test_repeated(self) -> None:
        """
        An index used twice is wrong.
        """
        histories = good_histories()
        histories["b"] = history(ORDER, indices=[1, 2, 2, 3, 4])
        (v,) = check(histories).by_guarantee("index")
        self.assertEqual(v.node, "b")
        self.assertIn("a@3", v.detail)

    def test_oncePerNode(self) -> None:
        """
        Each node's bad numbering is reported once.
        """
        histories = {n: history(ORDER, indices=[10, 20, 30, 40, 50]) for n in NODES}
        found = check(histories).by_guarantee("index")
        self.assertEqual(len(found), 3)
        self.assertNodes(found, NODES)

    def test_noneInGood(self) -> None:
        """
        A correct history has no index violation.
        """
        self.assertNone(check(good_histories()), "index")

    def test_two_runs(self) -> None:
        """
        A history whose indices restart at 1 is reported as holding two
        runs, at the delivery where the second starts.
        """
        histories = good_histories()
        histories["b"] = history(ORDER, indices=[1, 2, 3, 1, 2])
        self.assertEqual(run_starts(histories["b"]), [3])
        self.assertEqual(run_starts(histories["a"]), [])
        (v,) = check(histories).by_guarantee("index")
        self.assertEqual(v.node, "b")
        self.assertIn("delivery number 4", v.detail)
        self.assertIn("restart at 1 there", v.detail)
        self.assertIn("holds 2 runs of a group", v.detail)

    def test_gap_is_not_two_runs(self) -> None:
        """
        Other bad numbering does not mention runs.
        """
        histories = good_histories()
        histories["c"] = history(ORDER, indices=[1, 2, 4, 5, 6])
        (v,) = check(histories).by_guarantee("index")
        self.assertNotIn("runs", v.detail)


class ResultTests(CheckerTestCase):
    """
    L{CheckResult}'s report and lookups, and L{Violation}'s text.
    """

    def test_summaryOk(self) -> None:
        """
        The summary of a good result counts and says OK.
        """
        summary = check(good_histories()).summary()
        self.assertIn("3 nodes, 5 messages, 15 deliveries", summary)
        self.assertIn("OK", summary)
        self.assertNotIn("violations", summary)

    def test_summaryViolations(self) -> None:
        """
        The summary of a bad result counts the violations and lists each.
        """
        histories = good_histories()
        histories["c"] = history(ORDER[:4])
        result = check(histories, [*good_multicasts(), Multicast("a", 9, b"")])
        lines = result.summary().splitlines()
        self.assertNotIn("OK", lines[0])
        self.assertIn("2 violations", lines[0])
        self.assertEqual(lines[1:], [f"  {v}" for v in result.violations])

    def test_summaryLimit(self) -> None:
        """
        Past the limit, the summary says how many more there are.
        """
        histories = good_histories()
        histories["c"] = []
        result = check(histories)
        self.assertEqual(len(result.violations), 5)
        lines = result.summary(limit=2).splitlines()
        self.assertEqual(len(lines), 4)
        self.assertIn("5 violations", lines[0])
        self.assertIn("3 more", lines[3])

    def test_byGuarantee(self) -> None:
        """
        L{CheckResult.by_guarantee} picks out one kind of violation.
        """
        histories = good_histories()
        histories["c"] = history([*swapped(ORDER, 0)[:4], ("a", 1)])
        result = check(histories)
        self.assertEqual(
            {v.guarantee for v in result.violations},
            {"integrity", "agreement", "total order"},
        )
        for guarantee in GUARANTEES:
            picked = result.by_guarantee(guarantee)
            self.assertEqual(
                picked, tuple(v for v in result.violations if v.guarantee == guarantee)
            )
        self.assertEqual(result.by_guarantee("no such guarantee"), ())

    def test_sortedByGuarantee(self) -> None:
        """
        Violations are listed in the order of L{GUARANTEES}.
        """
        histories = good_histories()
        histories["c"] = history(
            [("a", 3), ("b", 2), ("a", 1), ("b", 4)], indices=[1, 2, 3, 5]
        )
        result = check(histories)
        ranks = [GUARANTEES.index(v.guarantee) for v in result.violations]
        self.assertEqual(ranks, sorted(ranks))
        self.assertGreater(len(set(ranks)), 2)

    def test_violationStr(self) -> None:
        """
        A violation reads as its guarantee, its node if any, and the detail.
        """
        self.assertEqual(
            str(Violation("integrity", "c", "a@1 delivered twice")),
            "integrity at c: a@1 delivered twice",
        )
        self.assertEqual(
            str(Violation("validity", None, "a@7 lost")), "validity: a@7 lost"
        )


class JsonLinesTests(SynchronousTestCase):
    """
    L{record_to_json} and L{load_jsonl}.
    """

    def write(self, lines: Iterable[str]) -> Path:
        path = Path(self.mktemp())
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    def test_roundTripText(self) -> None:
        """
        A UTF-8 payload is written as text and read back unchanged.
        """
        records = [
            Delivery(1, "a", 1, "héllo wörld ✓".encode(), 0),
            Delivery(2, "bé", 3, b"", None),
        ]
        lines = [record_to_json(r) for r in records]
        obj = json.loads(lines[0])
        self.assertEqual(obj["payload"], "héllo wörld ✓")
        self.assertNotIn("payload_b64", obj)
        self.assertEqual(obj["after"], 0)
        self.assertNotIn("after", json.loads(lines[1]))
        self.assertEqual(load_jsonl(self.write(lines)), records)

    def test_roundTripBinary(self) -> None:
        """
        A payload that is not UTF-8 is written as base64 and read back
        unchanged.
        """
        record = Delivery(1, "a", 2, b"\xff\x00\xfe\x80", 4)
        line = record_to_json(record)
        self.assertNotIn("\n", line)
        obj = json.loads(line)
        self.assertNotIn("payload", obj)
        self.assertEqual(base64.b64decode(obj["payload_b64"]), record.payload)
        self.assertEqual(load_jsonl(str(self.write([line]))), [record])

    def test_blankLines(self) -> None:
        """
        Blank lines are skipped.
        """
        records = history(ORDER)
        lines = ["", *(record_to_json(r) for r in records), "   "]
        self.assertEqual(load_jsonl(self.write(lines)), records)

    def test_missingFile(self) -> None:
        """
        A file that cannot be read raises L{HistoryFormatError} naming it.
        """
        path = self.mktemp()
        e = self.assertRaises(HistoryFormatError, load_jsonl, path)
        self.assertIn(path, str(e))

    def assertBadLine(self, bad: str) -> None:
        good = record_to_json(Delivery(1, "a", 1, b"x"))
        path = self.write([good, "", bad])
        e = self.assertRaises(HistoryFormatError, load_jsonl, path)
        self.assertIn(f"{path}:3", str(e))

    def test_badLines(self) -> None:
        """
        A line that is not a valid record raises L{HistoryFormatError}
        naming the file and line.
        """
        for bad in [
            '{"index": 1, "sender": "a", "clock": 1, "payload": "x", "after": -1}',
            "not json",
            "[1, 2, 3]",
            '{"sender": "a", "clock": 1, "payload": "x"}',
            '{"index": 2, "clock": 1, "payload": "x"}',
            '{"index": 2, "sender": "a", "payload": "x"}',
            '{"index": 2, "sender": "a", "clock": 1}',
            '{"index": "2", "sender": "a", "clock": 1, "payload": "x"}',
            '{"index": 2, "sender": "a", "clock": true, "payload": "x"}',
            '{"index": 2, "sender": 5, "clock": 1, "payload": "x"}',
            '{"index": 2, "sender": "a", "clock": 1, "payload": 7}',
            '{"index": 2, "sender": "a", "clock": 1, "payload": "x", "after": "1"}',
            '{"index": 2, "sender": "a", "clock": 1, "payload_b64": "!!"}',
            '{"index": 2, "sender": "a", "clock": 1, "payload_b64": 5}',
        ]:
            self.assertBadLine(bad)


class ViewLinesTests(SynchronousTestCase):
    """
    View changes in JSON-lines logs: L{record_to_json} writes them,
    L{load_records} reads them in place and L{load_jsonl} leaves them out.
    """

    def write(self, lines: Iterable[str]) -> Path:
        path = Path(self.mktemp())
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    def test_shape(self) -> None:
        """
        A view change is C{view}, C{members} and C{index}, in that order,
        and no C{sender}.
        """
        line = record_to_json(ViewChange(1, ("a", "b"), 81))
        self.assertEqual(line, '{"view": 1, "members": ["a", "b"], "index": 81}')
        self.assertNotIn("sender", json.loads(line))

    def test_round_trip(self) -> None:
        """
        Deliveries and view changes come back in file order, equal to what
        was written.
        """
        records: list[Record] = [
            *history(ORDER[:2]),
            ViewChange(1, ("a", "b"), 3),
            *history(ORDER[2:], indices=[3, 4, 5]),
            ViewChange(2, ("b", "\u00e9"), 6),
        ]
        path = self.write(record_to_json(r) for r in records)
        self.assertEqual(load_records(path), records)
        self.assertEqual(
            load_jsonl(path), [r for r in records if isinstance(r, Delivery)]
        )

    def test_bad_view_lines(self) -> None:
        """
        A line without C{sender} that is not a valid view change raises
        L{HistoryFormatError} naming the file and line and saying that it
        was read as a view record.
        """
        good = record_to_json(Delivery(1, "a", 1, b"x"))
        for bad in [
            '{"view": 1, "members": ["a"]}',
            '{"members": ["a"], "index": 2}',
            '{"view": -1, "members": ["a"], "index": 2}',
            '{"view": "1", "members": ["a"], "index": 2}',
            '{"view": 1, "members": ["a"], "index": 0}',
            '{"view": 1, "members": "ab", "index": 2}',
            '{"view": 1, "members": ["a", 2], "index": 2}',
        ]:
            path = self.write([good, bad])
            e = self.assertRaises(HistoryFormatError, load_records, path)
            self.assertIn(f"{path}:2: not a view record", str(e))


class MainTests(SynchronousTestCase):
    """
    L{main}, the command over JSON-lines logs.
    """

    def write(self, records: Iterable[Delivery], name: str = "log") -> str:
        directory = Path(self.mktemp())
        directory.mkdir()
        path = directory / f"{name}.jsonl"
        path.write_text(
            "".join(record_to_json(r) + "\n" for r in records), encoding="utf-8"
        )
        return str(path)

    def runMain(self, argv: Sequence[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(argv)
        return code, out.getvalue(), err.getvalue()

    def assertUnusable(self, argv: Sequence[str], *mentions: str) -> str:
        code, out, err = self.runMain(argv)
        self.assertEqual(code, 2)
        self.assertEqual(out, "")
        self.assertNotIn("Traceback", err)
        for text in mentions:
            self.assertIn(text, err)
        return err

    def test_good(self) -> None:
        """
        Good logs named after their files' stems pass: exit 0 and OK.
        """
        paths = [self.write(history(ORDER), n) for n in NODES]
        code, out, err = self.runMain(paths)
        self.assertEqual(code, 0, out + err)
        self.assertIn("OK", out)
        self.assertIn("3 nodes, 5 messages, 15 deliveries", out)
        self.assertEqual(err, "")

    def test_named(self) -> None:
        """
        C{NAME=PATH} names the node whatever the file is called.
        """
        paths = [self.write(history(ORDER)) for _ in NODES]
        paths[2] = self.write(history(swapped(ORDER, 0)))
        argv = [f"{n}={p}" for n, p in zip(NODES, paths, strict=True)]
        code, out, _ = self.runMain(argv)
        self.assertEqual(code, 1)
        self.assertIn("c delivered b@2 before a@1", out)

    def test_two_runs_in_one_log(self) -> None:
        """
        A log appended to by two runs of a group (its indices restart at 1)
        is one plain sentence naming it and where the second run starts,
        with exit status 2, not a list of violations.
        """
        first = history(ORDER)
        second = [
            Delivery(i, r.sender, r.clock + 100, r.payload)
            for i, r in enumerate(history(ORDER), 1)
        ]
        paths = [self.write(history(ORDER), n) for n in ("a", "b")]
        paths.append(self.write([*first, *second], "c"))
        err = self.assertUnusable(
            paths,
            "c.jsonl holds 2 runs of a group",
            "restart at 1 at delivery 6 of 10",
            "give each run its own log",
        )
        self.assertEqual(len(err.splitlines()), 1, err)

    def test_swapped(self) -> None:
        """
        Logs that disagree on the order: exit 1 and the violation listed.
        """
        paths = [self.write(history(ORDER), n) for n in ("a", "b")]
        paths.append(self.write(history(swapped(ORDER, 1)), "c"))
        code, out, _ = self.runMain(paths)
        self.assertEqual(code, 1)
        self.assertIn("violations", out)
        self.assertIn("total order", out)
        self.assertNotIn("OK", out)

    def test_missingFile(self) -> None:
        """
        A missing file: exit 2, a message naming it, no traceback.
        """
        good = self.write(history(ORDER), "a")
        missing = self.mktemp()
        self.assertUnusable([good, missing], missing)

    def test_notJson(self) -> None:
        """
        A line that is not JSON: exit 2, naming the file and line.
        """
        path = self.write(history(ORDER), "a")
        with open(path, "a", encoding="utf-8") as f:
            f.write("{oops\n")
        self.assertUnusable([path], f"{path}:6")

    def test_missingField(self) -> None:
        """
        A line missing a field: exit 2, naming the file and line.
        """
        path = self.write(history(ORDER[:1]), "a")
        with open(path, "a", encoding="utf-8") as f:
            f.write('{"index": 2, "sender": "b", "payload": "x"}\n')
        self.assertUnusable([path], f"{path}:2", "clock")

    def test_twoLogsForOneNode(self) -> None:
        """
        Two logs for the same node name: exit 2.
        """
        a = self.write(history(ORDER), "a")
        self.assertUnusable([a, f"a={a}"], "'a'")

    def test_noArguments(self) -> None:
        """
        No arguments: exit 2 and the usage on standard error.
        """
        self.assertUnusable([], "usage")

    def lost_member(self) -> dict[str, list[Record]]:
        """
        The logs of a group of three that lost c after two messages: a and
        b install view 1 of a and b and deliver three more, c stops.
        """
        before = history(ORDER[:2])
        after = history(ORDER[2:], indices=[3, 4, 5])
        view: list[Record] = [ViewChange(1, ("a", "b"), 3)]
        return {
            "a": [*before, *view, *after],
            "b": [*before, *view, *after],
            "c": list(before),
        }

    def write_records(self, records: Iterable[Record], name: str) -> str:
        directory = Path(self.mktemp())
        directory.mkdir()
        path = directory / f"{name}.jsonl"
        path.write_text(
            "".join(record_to_json(r) + "\n" for r in records), encoding="utf-8"
        )
        return str(path)

    def test_views_lost_member(self) -> None:
        """
        Logs with view lines are judged by the view checker: a group that
        lost a member passes, though the gone member lacks the last
        messages (which the plain checker calls an agreement violation).
        """
        logs = self.lost_member()
        paths = [self.write_records(h, n) for n, h in logs.items()]
        code, out, err = self.runMain(paths)
        self.assertEqual(code, 0, out + err)
        self.assertIn("3 nodes, 2 views (final 1)", out)
        self.assertIn("view synchrony", out)
        self.assertEqual(err, "")
        plain = check(
            {n: [r for r in h if isinstance(r, Delivery)] for n, h in logs.items()}
        )
        self.assertTrue(plain.by_guarantee("agreement"))

    def test_views_broken(self) -> None:
        """
        A group that lost a member but whose gone member delivered
        something the others did not deliver at that index fails the view
        checker: exit 1, uniformity named.
        """
        logs = self.lost_member()
        logs["c"] = [*logs["c"], Delivery(3, "c", 9, b"c@9")]
        paths = [self.write_records(h, n) for n, h in logs.items()]
        code, out, _ = self.runMain(paths)
        self.assertEqual(code, 1)
        self.assertIn("uniformity at c", out)

    def test_views_disagree(self) -> None:
        """
        Two members that install view 1 differently fail: view agreement.
        """
        logs = self.lost_member()
        logs["b"] = [
            ViewChange(1, ("a", "b", "c"), 3) if isinstance(r, ViewChange) else r
            for r in logs["b"]
        ]
        paths = [self.write_records(h, n) for n, h in logs.items()]
        code, out, _ = self.runMain(paths)
        self.assertEqual(code, 1)
        self.assertIn("view agreement at b", out)

    def test_help(self) -> None:
        """
        C{--help} prints the usage on standard output and exits 0.
        """
        code, out, err = self.runMain(["--help"])
        self.assertEqual(code, 0)
        self.assertIn("usage", out)
        self.assertEqual(err, "")


SENDERS = ("a", "b", "c", "d")

messages = st.sets(
    st.tuples(st.sampled_from(SENDERS), st.integers(min_value=1, max_value=40)),
    min_size=2,
    max_size=15,
)


class PropertyTests(SynchronousTestCase):
    """
    Random histories: the same order everywhere passes, one adjacent swap
    anywhere breaks total order.
    """

    @settings(max_examples=200, deadline=None)
    @given(messages, st.integers(min_value=2, max_value=4), st.data())
    def test_swapBreaksTotalOrder(
        self, mids: set[MessageId], count: int, data: st.DataObject
    ) -> None:
        order = sorted(mids, key=lambda m: (m[1], m[0]))
        nodes = [f"n{i}" for i in range(count)]
        sent = [Multicast(s, c, payload_of((s, c))) for s, c in order]
        histories = {n: history(order) for n in nodes}
        result = check(histories)
        self.assertTrue(result.ok, result.summary())
        self.assertTrue(check(histories, sent).ok)
        self.assertEqual(result.messages, len(order))

        node = data.draw(st.sampled_from(nodes), label="node")
        first = data.draw(
            st.integers(min_value=0, max_value=len(order) - 2), label="first"
        )
        histories[node] = history(swapped(order, first))
        for result in [check(histories), check(histories, sent)]:
            kinds = {v.guarantee for v in result.violations}
            self.assertIn("total order", kinds, result.summary())
            self.assertLessEqual(kinds, {"total order", "fifo", "causality"})
            self.assertEqual(len(result.by_guarantee("total order")), count - 1)


class UniformityTests(SynchronousTestCase):
    """
    L{check_uniformity} on hand-made histories: a crashed member's history
    must be a prefix of every survivor's deliveries and held messages.
    """

    def records(self, *mids: MessageId) -> list[Delivery]:
        return [
            Delivery(i + 1, sender, clock, b"")
            for i, (sender, clock) in enumerate(mids)
        ]

    def test_prefix_is_fine(self) -> None:
        crashed = {"c": self.records(("a", 1), ("b", 1))}
        survivors = {
            "a": [("a", 1), ("b", 1), ("c", 2)],
            "b": [("a", 1), ("b", 1)],
        }
        self.assertEqual(check_uniformity(crashed, survivors), ())
        self.assertEqual(check_uniformity({"c": []}, survivors), ())

    def test_delivered_what_a_survivor_lacks(self) -> None:
        crashed = {"c": self.records(("a", 1), ("c", 2))}
        survivors = {"a": [("a", 1), ("c", 2)], "b": [("a", 1)]}
        [violation] = check_uniformity(crashed, survivors)
        self.assertEqual(violation.guarantee, "uniformity")
        self.assertEqual(violation.node, "c")
        self.assertIn("c@2 as number 2", violation.detail)
        self.assertIn("survivor b has nothing", violation.detail)

    def test_delivered_in_another_order(self) -> None:
        crashed = {"c": self.records(("b", 1), ("a", 1))}
        survivors = {"a": [("a", 1), ("b", 1)]}
        [violation] = check_uniformity(crashed, survivors)
        self.assertIn("b@1 as number 1, where survivor a has a@1", violation.detail)

    def test_every_crashed_member_and_survivor(self) -> None:
        crashed = {"c": self.records(("x", 9)), "d": self.records(("y", 9))}
        survivors = {"a": [("a", 1)], "b": [("a", 1)]}
        found = check_uniformity(crashed, survivors)
        self.assertEqual(len(found), 4)
        self.assertIn("uniformity", GUARANTEES)
