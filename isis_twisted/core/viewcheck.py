"""
The view-aware history checker: do histories with view changes in them
keep the guarantees?

A member's history is a sequence of L{Record}s: deliveries, and a
L{ViewChange} wherever the member installed a view.  It starts in the
initial view (id 0) unless it opens with a L{ViewChange}: a member that is
not in the initial view joined later, and its history starts at the view it
joined.  Give L{check_views} every member's history (and, when known, every
multicast with the view it was sent in) and it returns a L{ViewCheckResult}
naming every violation of:

- what L{isis_twisted.core.checker.check} finds within a view and across them
  (total order, integrity, FIFO, causality);
- I{index}: every member numbers its deliveries without a gap from where
  its history starts, a view starts at the index after the last delivery
  before it, and a message carries the same index on every member (and an
  index the same message);
- I{view agreement}: no two members install different views (members or
  first index) under one id; a member goes from view C{v} to view C{v+1}
  and never skips one, except that a joiner's first view, and a view that
  leaves the member out, may be any later one; every installed view's
  predecessor was installed by someone;
- I{membership}: a member delivers nothing in a view it is not a member
  of, and installs nothing after a view that removed it (a member may
  record the view that removes it, and then it stops); a message is
  multicast by a member of the view it was sent in;
- I{primary component}: each installed view keeps a majority of the
  previous view's members;
- I{same view}: every message is delivered in the view it was multicast
  in, or without the multicasts, in the same view by every member that
  delivers it;
- I{view synchrony}: members that move together from view C{v} to C{v+1}
  delivered the same set of messages in C{v};
- I{uniformity}: what a crashed or removed member delivered is, index by
  index, what every member that went on to a later view delivered;
- I{liveness}, on request, for a run whose faults have stopped: every
  member of the final view that did not crash installed it, delivered
  every message multicast by a member of the final view in a view both
  were members of, and all of them end at the same index.

Agreement and validity as L{isis_twisted.core.checker.check} states them (every
message everywhere, every multicast delivered) hold only in a run without
crashes; across views they become view synchrony and uniformity (agreement)
and liveness (validity).

A member's history is one incarnation: a member that was removed and joins
again must be checked under another name.

L{isis_twisted.core.checker.load_records} reads a member's history from the
C{jsonl:} log it wrote (view lines included), and C{isis check} runs
L{check_views} over the logs when any of them holds a view line.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import pairwise

import attrs

from isis_twisted.core.checker import (
    CheckResult,
    MessageId,
    Multicast,
    Violation,
    check,
)
from isis_twisted.core.engine import Delivery, Record, ViewChange

VIEW_GUARANTEES = (
    "index",
    "integrity",
    "total order",
    "fifo",
    "causality",
    "view agreement",
    "membership",
    "primary component",
    "same view",
    "view synchrony",
    "uniformity",
    "liveness",
)
"""
The names a L{Violation} from L{check_views} may carry in its C{guarantee}
field, in the order the result lists them.
"""

# What checker.check finds that still holds as it states it, whatever the
# views: its agreement and validity assume nobody crashed, and its index rule
# assumes every history starts at index 1 (a joiner's does not).
_REUSED = frozenset({"integrity", "total order", "fifo", "causality"})

# A view-synchrony violation names at most this many messages of each kind.
_NAMED = 3


@attrs.frozen
class ViewMulticast:
    """
    One message as its sender multicast it, with the view it was sent in.

    @ivar sender: The member that multicast it.
    @ivar clock: The clock part of its timestamp.
    @ivar payload: Its bytes.
    @ivar view: The id of the view the sender was in when the message went
        out (a multicast made during a flush goes out in the new view).
    @ivar after: How many messages the sender had delivered when it
        multicast this one; those are the message's causal predecessors.
    """

    sender: str
    clock: int
    payload: bytes
    view: int
    after: int | None = None


@attrs.frozen
class ViewCheckResult(CheckResult):
    """
    What L{check_views} found.

    @ivar views: How many distinct views were installed, the initial one
        included.
    @ivar final_view: The id of the view liveness is judged in: the one the
        caller named, or the highest id anyone installed.
    @ivar liveness: Whether liveness was checked.
    """

    views: int
    final_view: int
    liveness: bool

    def _head(self) -> str:
        return (
            f"{len(self.nodes)} nodes, {self.views} views (final {self.final_view}),"
            f" {self.messages} messages, {self.deliveries} deliveries: "
        )

    def _checked(self) -> str:
        checked = (
            "total order, integrity, FIFO, causality, indices, view agreement,"
            " membership, primary component, same view, view synchrony,"
            " uniformity"
        )
        return checked + ", liveness" if self.liveness else checked


@attrs.define
class _Stay:
    """
    A member's time in one view, as its history shows it.

    @ivar view: The view's id.
    @ivar members: The view's members, as this member recorded them.
    @ivar start: The index the view's first delivery carries.
    @ivar deliveries: What the member delivered in the view, in order.
    """

    view: int
    members: tuple[str, ...]
    start: int
    deliveries: list[Delivery] = attrs.Factory(list)

    @property
    def end(self) -> int:
        """
        The index of the last delivery up to the end of this stay.
        """
        return self.deliveries[-1].index if self.deliveries else self.start - 1

    def includes(self, node: str) -> bool:
        """
        Whether C{node} is a member of this view.
        """
        return node in self.members


def _name(mid: MessageId) -> str:
    return f"{mid[0]}@{mid[1]}"


def _names(mids: Iterable[MessageId]) -> str:
    ordered = sorted(mids, key=lambda m: (m[1], m[0]))
    shown = ", ".join(_name(m) for m in ordered[:_NAMED])
    if len(ordered) > _NAMED:
        shown += f" and {len(ordered) - _NAMED} more"
    return shown


def _members(members: Sequence[str]) -> str:
    return "(" + ", ".join(members) + ")"


def _mid(rec: Delivery) -> MessageId:
    return (rec.sender, rec.clock)


def check_views(
    histories: Mapping[str, Sequence[Record]],
    multicasts: Iterable[ViewMulticast] | None = None,
    *,
    initial: Sequence[str] | None = None,
    departed: Collection[str] = (),
    final_view: int | None = None,
    liveness: bool = False,
    forced: Collection[int] = (),
) -> ViewCheckResult:
    """
    Check histories with view changes in them against every guarantee.

    @param histories: For every member, its records (deliveries and view
        changes) in the order it had them.
    @param multicasts: Every message that was multicast, with its view, if
        known.  With it, integrity also rejects messages nobody sent, FIFO
        uses the sending order, causality uses each multicast's C{after},
        I{same view} compares each delivery with the view the message was
        sent in, and liveness also asks for multicasts nobody delivered.
    @param initial: The members of view 0, in rank order.  By default the
        members of a view-0 L{ViewChange} that opens some history, or else
        every member whose history does not open with a later view (those
        are joiners).  Give it when a member of view 0 left no record of
        it, or a joiner crashed before recording its first view.
    @param departed: The members that crashed or were removed.  Their
        histories may stop anywhere; liveness asks nothing of them, and
        uniformity compares them with the members that went on.  Members
        that a later view leaves out count as removed without being named.
    @param final_view: The view liveness is judged in; by default the
        highest view id anyone installed.
    @param liveness: Whether to check liveness: only for a run in which
        faults stopped and the group had time to deliver everything.
    @param forced: The ids of views an operator installed by force
        (L{Membership.force<isis_twisted.core.membership.Membership.force>}):
        they need not keep a majority of the view before.
    @return: The result, listing every violation found.
    """
    nodes = tuple(sorted(histories))
    sent: list[ViewMulticast] | None = None if multicasts is None else list(multicasts)
    violations: list[Violation] = []

    deliveries = {
        node: [r for r in histories[node] if isinstance(r, Delivery)] for node in nodes
    }
    base = check(
        deliveries,
        None
        if sent is None
        else [Multicast(m.sender, m.clock, m.payload, m.after) for m in sent],
    )
    violations.extend(v for v in base.violations if v.guarantee in _REUSED)

    views = _installed_views(histories, nodes, initial, violations)
    installers: dict[int, set[str]] = {}
    for node in nodes:
        for rec in histories[node]:
            if isinstance(rec, ViewChange):
                installers.setdefault(rec.view, set()).add(node)
    stays = {
        node: _stays(
            node, histories[node], views, violations, installers, node in departed
        )
        for node in nodes
    }
    final = max(views) if final_view is None else final_view

    violations.extend(_view_sequence(views))
    violations.extend(_primary_component(views, frozenset(forced)))
    violations.extend(_indices_agree(nodes, deliveries))
    violations.extend(_same_view(nodes, stays, sent))
    if sent is not None:
        violations.extend(_multicast_membership(sent, views))
    violations.extend(_view_synchrony(nodes, stays))

    gone = set(departed)
    for node in nodes:
        for stay in stays[node][1:]:
            if not stay.includes(node):
                gone.add(node)
    for v in sorted(views):
        if v + 1 in views:
            gone.update(set(views[v].members) - set(views[v + 1].members))
    live = [
        n
        for n in nodes
        if final in views and n in views[final].members and n not in gone
    ]
    violations.extend(_uniformity(nodes, stays, gone, final, live if liveness else []))
    if liveness:
        violations.extend(_liveness(nodes, stays, views, final, live, sent, gone))

    rank = {g: i for i, g in enumerate(VIEW_GUARANTEES)}
    violations.sort(key=lambda v: rank[v.guarantee])
    return ViewCheckResult(
        nodes=nodes,
        messages=base.messages,
        deliveries=base.deliveries,
        violations=tuple(violations),
        views=len(views),
        final_view=final,
        liveness=liveness,
    )


def _installed_views(
    histories: Mapping[str, Sequence[Record]],
    nodes: tuple[str, ...],
    initial: Sequence[str] | None,
    violations: list[Violation],
) -> dict[int, ViewChange]:
    """
    Every view anyone installed, as the first member to record it (in name
    order) has it; each member that recorded one differently is a view
    agreement violation.
    """
    views: dict[int, ViewChange] = {}
    firsts: dict[int, str | None] = {}
    if initial is not None:
        views[0] = ViewChange(0, tuple(initial), 1)
        firsts[0] = None
    else:
        for node in nodes:
            history = histories[node]
            if history and isinstance(history[0], ViewChange) and history[0].view == 0:
                views[0] = history[0]
                firsts[0] = node
                break
        else:
            # A history that opens with a later view is a joiner's.
            views[0] = ViewChange(
                0, tuple(n for n in nodes if not _joiner(histories[n])), 1
            )
            firsts[0] = None
    for node in nodes:
        for rec in histories[node]:
            if not isinstance(rec, ViewChange):
                continue
            known = views.get(rec.view)
            if known is None:
                views[rec.view] = rec
                firsts[rec.view] = node
            elif (tuple(known.members), known.index) != (
                tuple(rec.members),
                rec.index,
            ):
                first = firsts[rec.view]
                theirs = (
                    f"{first} installed it as {_members(known.members)}"
                    f" from index {known.index}"
                    if first is not None
                    else f"the initial view is {_members(known.members)}"
                )
                violations.append(
                    Violation(
                        "view agreement",
                        node,
                        f"installed view {rec.view} as {_members(rec.members)}"
                        f" from index {rec.index}, but {theirs}",
                    )
                )
    return views


def _joiner(history: Sequence[Record]) -> bool:
    """
    Whether a history opens with a view after the initial one.
    """
    return bool(history) and isinstance(history[0], ViewChange) and history[0].view > 0


def _stays(
    node: str,
    history: Sequence[Record],
    views: Mapping[int, ViewChange],
    violations: list[Violation],
    installers: Mapping[int, Collection[str]],
    departed: bool = False,
) -> list[_Stay]:
    """
    Split one member's history into its stays in views, finding on the way
    what one history shows alone (and whether a view that adds a member
    back was installed by another member too): gaps in its indices, view steps that skip
    or go back, deliveries outside its views and records after its removal.
    """
    records = list(history)
    opening = views[0].members
    if records and isinstance(records[0], ViewChange) and records[0].view == 0:
        opening = records[0].members
        if records[0].index != 1:
            violations.append(
                Violation(
                    "index",
                    node,
                    f"view 0 starts at index {records[0].index}, not 1",
                )
            )
        records = records[1:]
    stays = [_Stay(0, opening, 1)]
    # The index the next record must carry; unknown until a joiner's first
    # view says where it starts.
    expected: int | None = 1 if node in opening else None
    index_reported = False
    removed_by: int | None = None
    # The first view recorded after the one that removed it: a violation
    # unless a later view adds it back (then it was caught up on).
    after_removal: Violation | None = None
    outsider: dict[int, list[Delivery]] = {}

    def bad_index(detail: str) -> None:
        nonlocal index_reported
        if not index_reported:
            violations.append(Violation("index", node, detail))
            index_reported = True

    if (
        records
        and isinstance(records[0], ViewChange)
        and records[0].view > 0
        and node in opening
        and node in records[0].members
        and set(installers.get(records[0].view, ())) - {node}
        and any(
            node not in views[v].members
            for v in range(1, records[0].view)
            if v in views
        )
    ):
        # A member of view 0 whose history opens with a later view that
        # holds it again: it was left out before it delivered anything
        # (or restarted) and was added back; it starts there.
        stays = [_Stay(0, tuple(m for m in opening if m != node), 1)]
        expected = None
    rejoins: list[int] = []
    for rec in records:
        current = stays[-1]
        if isinstance(rec, ViewChange):
            if (
                (removed_by is not None or not current.includes(node))
                and node in rec.members
                and set(installers.get(rec.view, ())) - {node}
            ):
                # Added back (a new incarnation, or the same one asking
                # again), or added for the first time (a member the group
                # was not started with): legal, and what it holds of the
                # views it missed was handed to it to catch up.
                removed_by = None
                after_removal = None
                rejoins.append(rec.view)
            if removed_by is not None:
                # Told once: a member that carries on installs view after view.
                if after_removal is None:
                    after_removal = Violation(
                        "membership",
                        node,
                        f"installed view {rec.view} after view {removed_by},"
                        " which removed it",
                    )
            elif rec.view <= current.view:
                violations.append(
                    Violation(
                        "view agreement",
                        node,
                        f"installed view {rec.view} after view {current.view}"
                        " (a member's view ids only grow)",
                    )
                )
            elif (
                current.includes(node)
                and node in rec.members
                and rec.view != current.view + 1
                and rec.view not in rejoins
            ):
                # A member that learns of a later view leaving it out may
                # record that one, whatever it missed; one staying may not.
                violations.append(
                    Violation(
                        "view agreement",
                        node,
                        f"went from view {current.view} to view {rec.view}"
                        f" without installing view {current.view + 1}",
                    )
                )
            if expected is None:
                expected = rec.index
            elif rec.index != expected:
                bad_index(
                    f"view {rec.view} starts at index {rec.index}, but the last"
                    f" delivery before it was index {expected - 1}"
                )
            if removed_by is None and node not in rec.members:
                removed_by = rec.view
            stays.append(_Stay(rec.view, rec.members, rec.index))
        else:
            if expected is not None and rec.index != expected:
                bad_index(
                    f"delivered {_name(_mid(rec))} at index {rec.index}, where"
                    f" index {expected} was due"
                )
            expected = rec.index + 1
            current.deliveries.append(rec)
            if not current.includes(node):
                outsider.setdefault(current.view, []).append(rec)
    if after_removal is not None:
        violations.append(after_removal)
    last_rejoin = max(rejoins, default=-1)
    # A member the group was not started with that crashed while catching
    # up, before it recorded the view that added it: what it holds was
    # handed to it (the prefix checks judge it).
    caught_only = (
        departed
        and node not in opening
        and not any(isinstance(r, ViewChange) and node in r.members for r in records)
    )
    for view, recs in sorted(outsider.items()):
        if view < last_rejoin or caught_only:
            # Caught up on when it was added back.
            continue
        more = f" (and {len(recs) - 1} more there)" if len(recs) > 1 else ""
        violations.append(
            Violation(
                "membership",
                node,
                f"delivered {_name(_mid(recs[0]))} in view {view}, which it is"
                f" not a member of{more}",
            )
        )
    return stays


def _view_sequence(views: Mapping[int, ViewChange]) -> Iterable[Violation]:
    for v in sorted(views):
        if v > 0 and v - 1 not in views:
            yield Violation(
                "view agreement",
                None,
                f"view {v} was installed but no member installed view {v - 1}",
            )


def _primary_component(
    views: Mapping[int, ViewChange], forced: frozenset[int]
) -> Iterable[Violation]:
    for v in sorted(views):
        before = views.get(v - 1)
        if v == 0 or before is None or v in forced:
            continue
        kept = set(before.members).intersection(views[v].members)
        if 2 * len(kept) <= len(before.members):
            yield Violation(
                "primary component",
                None,
                f"view {v} {_members(views[v].members)} keeps {len(kept)} of the"
                f" {len(before.members)} members of view {v - 1}"
                f" {_members(before.members)}, not a majority",
            )


def _indices_agree(
    nodes: tuple[str, ...], deliveries: Mapping[str, Sequence[Delivery]]
) -> Iterable[Violation]:
    # The first member (in name order) to deliver a message fixes its index,
    # and the first to deliver at an index fixes the message there; each
    # other member is told of its first disagreement only.
    fixed: dict[MessageId, tuple[int, str]] = {}
    holds: dict[int, tuple[MessageId, str]] = {}
    for node in nodes:
        for rec in deliveries[node]:
            mid = _mid(rec)
            known = fixed.setdefault(mid, (rec.index, node))
            there = holds.setdefault(rec.index, (mid, node))
            if known[0] != rec.index:
                yield Violation(
                    "index",
                    node,
                    f"delivered {_name(mid)} at index {rec.index}, {known[1]}"
                    f" delivered it at index {known[0]}",
                )
                break
            if there[0] != mid:
                yield Violation(
                    "index",
                    node,
                    f"delivered {_name(mid)} at index {rec.index}, where"
                    f" {there[1]} delivered {_name(there[0])}",
                )
                break


def _same_view(
    nodes: tuple[str, ...],
    stays: Mapping[str, Sequence[_Stay]],
    sent: Sequence[ViewMulticast] | None,
) -> Iterable[Violation]:
    origin = {} if sent is None else {(m.sender, m.clock): m.view for m in sent}
    first: dict[MessageId, tuple[int, str]] = {}
    for node in nodes:
        for stay in stays[node]:
            for rec in stay.deliveries:
                mid = _mid(rec)
                if mid in origin:
                    if origin[mid] != stay.view:
                        yield Violation(
                            "same view",
                            node,
                            f"delivered {_name(mid)} in view {stay.view}; it was"
                            f" multicast in view {origin[mid]}",
                        )
                    continue
                known = first.setdefault(mid, (stay.view, node))
                if known[0] != stay.view:
                    yield Violation(
                        "same view",
                        node,
                        f"delivered {_name(mid)} in view {stay.view}, {known[1]}"
                        f" delivered it in view {known[0]}",
                    )


def _multicast_membership(
    sent: Sequence[ViewMulticast], views: Mapping[int, ViewChange]
) -> Iterable[Violation]:
    for m in sent:
        view = views.get(m.view)
        if view is not None and m.sender not in view.members:
            yield Violation(
                "membership",
                m.sender,
                f"multicast {_name((m.sender, m.clock))} in view {m.view}, which"
                " it is not a member of",
            )


def _view_synchrony(
    nodes: tuple[str, ...], stays: Mapping[str, Sequence[_Stay]]
) -> Iterable[Violation]:
    # For each view, the members that moved from it to the next one, with
    # what each delivered in it; the first (in name order) is the reference.
    movers: dict[int, list[tuple[str, set[MessageId]]]] = {}
    for node in nodes:
        mine = stays[node]
        for stay, after in pairwise(mine):
            if (
                stay.includes(node)
                and after.includes(node)
                and after.view == stay.view + 1
            ):
                delivered = {_mid(r) for r in stay.deliveries}
                movers.setdefault(stay.view, []).append((node, delivered))
    for view in sorted(movers):
        (ref, expected), *others = movers[view]
        for node, delivered in others:
            problems = []
            if missing := expected - delivered:
                problems.append(f"did not deliver {_names(missing)} ({ref} did)")
            if extra := delivered - expected:
                problems.append(f"delivered {_names(extra)} ({ref} did not)")
            if problems:
                yield Violation(
                    "view synchrony",
                    node,
                    f"moved from view {view} to view {view + 1} with {ref}, but"
                    f" in view {view} {' and '.join(problems)}",
                )


def _last_member_view(node: str, stays: Sequence[_Stay]) -> int | None:
    """
    The last view a member was a member of, as its history shows.
    """
    for stay in reversed(stays):
        if stay.includes(node):
            return stay.view
    return None


def _uniformity(
    nodes: tuple[str, ...],
    stays: Mapping[str, Sequence[_Stay]],
    gone: Collection[str],
    final: int,
    complete: Collection[str],
) -> Iterable[Violation]:
    # Compared index by index rather than by position (as
    # checker.check_uniformity does), because a joiner's history starts at
    # the index of the view it joined.
    by_index = {
        node: {r.index: _mid(r) for s in stays[node] for r in s.deliveries}
        for node in nodes
    }
    reach = {node: _last_member_view(node, stays[node]) for node in nodes}
    for node in sorted(gone):
        if node not in stays:
            continue
        stopped = reach[node]
        if stopped is None:
            continue
        mine = [r for s in stays[node] for r in s.deliveries]
        for other in nodes:
            further = reach[other]
            if other == node or further is None:
                continue
            if further > stopped:
                why = f"went on to view {further}"
            elif other in complete and stopped == final:
                why = f"stayed to the end of the final view {final}"
            else:
                continue
            theirs = by_index[other]
            # Where the other member's first view starts: a joiner holds
            # nothing before it.
            start = next(s.start for s in stays[other] if s.includes(other))
            for rec in mine:
                if rec.index < start:
                    continue
                got = theirs.get(rec.index)
                if got != _mid(rec):
                    has = "nothing" if got is None else _name(got)
                    yield Violation(
                        "uniformity",
                        node,
                        f"delivered {_name(_mid(rec))} at index {rec.index}, where"
                        f" {other}, which {why}, has {has}",
                    )
                    break


def _liveness(
    nodes: tuple[str, ...],
    stays: Mapping[str, Sequence[_Stay]],
    views: Mapping[int, ViewChange],
    final: int,
    live: Sequence[str],
    sent: Sequence[ViewMulticast] | None,
    gone: Collection[str],
) -> Iterable[Violation]:
    if final not in views:
        yield Violation("liveness", None, f"no member installed the final view {final}")
        return
    # Which views each live member was in, and what it delivered.
    member_of = {
        n: {s.view for s in stays[n] if s.includes(n) and s.view in views} for n in live
    }
    delivered = {n: {_mid(r) for s in stays[n] for r in s.deliveries} for n in live}
    for n in views[final].members:
        if n not in stays and n not in gone:
            yield Violation(
                "liveness",
                n,
                f"is a member of the final view {final} but no history of it was given",
            )
    for n in live:
        last = stays[n][-1].view
        if last != final:
            yield Violation(
                "liveness",
                n,
                f"is a member of the final view {final} but its history ends in"
                f" view {last}",
            )
    # Every message of a final-view member: multicast (if known) or delivered
    # by anyone, with the view it belongs to.
    due: dict[MessageId, int] = {}
    finals = set(views[final].members)
    for n in nodes:
        for stay in stays[n]:
            for rec in stay.deliveries:
                if rec.sender in finals and rec.sender not in gone:
                    due.setdefault(_mid(rec), stay.view)
    if sent is not None:
        for m in sent:
            if m.sender in finals and m.sender not in gone:
                due[(m.sender, m.clock)] = m.view
    for n in live:
        missing = [
            mid
            for mid, view in due.items()
            if view in member_of[n] and mid not in delivered[n]
        ]
        for mid in sorted(missing, key=lambda m: (m[1], m[0])):
            yield Violation(
                "liveness",
                n,
                f"never delivered {_name(mid)}, multicast in view {due[mid]}",
            )
    ends = {n: stays[n][-1].end for n in live}
    if ends and len(set(ends.values())) > 1:
        top = max(ends.values())
        leader = min(n for n in live if ends[n] == top)
        for n in live:
            if ends[n] != top:
                yield Violation(
                    "liveness",
                    n,
                    f"delivered up to index {ends[n]}, {leader} up to index {top}",
                )
