"""
The history checker: does a set of delivery histories keep the guarantees?

Give L{check} every node's delivery history (and, when known, what was
multicast) and it returns a L{CheckResult} that names every violation of
total order, agreement, integrity, FIFO, causality, validity and gap-free
indices.  The same check runs as a command over JSON-lines delivery logs::

    python -m isis_twisted.core.checker a=a.jsonl b=b.jsonl c=c.jsonl

L{load_records} reads such a log, view lines included; when any log holds
one, the command judges the logs with L{isis_twisted.core.viewcheck.check_views}
instead, which allows for members that crashed or were removed.

A message is identified by its timestamp C{(sender, clock)}; a sender's
messages were sent in increasing clock order (Lamport stamps of one member
only grow), unless the multicasts are given explicitly.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path

import attrs

from isis_twisted.core.engine import Delivery, Record, ViewChange

MessageId = tuple[str, int]
"""
A message's identity: C{(sender, clock)}.
"""

GUARANTEES = (
    "index",
    "integrity",
    "agreement",
    "validity",
    "total order",
    "fifo",
    "causality",
    "uniformity",
)
"""
The names a L{Violation} may carry in its C{guarantee} field.
"""


@attrs.frozen
class Multicast:
    """
    One message as its sender multicast it.

    @ivar sender: The member that multicast it.
    @ivar clock: The clock part of its timestamp.
    @ivar payload: Its bytes.
    @ivar after: How many messages the sender had delivered when it
        multicast this one; those are the message's causal predecessors.
    """

    sender: str
    clock: int
    payload: bytes
    after: int | None = None


@attrs.frozen
class Violation:
    """
    One breach of a guarantee.

    @ivar guarantee: Which guarantee, one of L{GUARANTEES}.
    @ivar node: The node whose history shows it, or L{None} when it concerns
        no single node.
    @ivar detail: What happened, in plain words.
    """

    guarantee: str
    node: str | None
    detail: str

    def __str__(self) -> str:
        where = f" at {self.node}" if self.node is not None else ""
        return f"{self.guarantee}{where}: {self.detail}"


@attrs.frozen
class CheckResult:
    """
    What L{check} found.

    @ivar nodes: The nodes whose histories were checked, sorted.
    @ivar messages: How many distinct messages were delivered anywhere.
    @ivar deliveries: How many deliveries there were, all nodes together.
    @ivar violations: Every violation found, grouped by guarantee.
    """

    nodes: tuple[str, ...]
    messages: int
    deliveries: int
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        """
        Whether no guarantee was violated.
        """
        return not self.violations

    def by_guarantee(self, guarantee: str) -> tuple[Violation, ...]:
        """
        The violations of one guarantee.

        @param guarantee: One of L{GUARANTEES}.
        """
        return tuple(v for v in self.violations if v.guarantee == guarantee)

    def _head(self) -> str:
        """
        The start of the verdict line: what was checked over.
        """
        return (
            f"{len(self.nodes)} nodes, {self.messages} messages, "
            f"{self.deliveries} deliveries: "
        )

    def _checked(self) -> str:
        """
        The guarantees an OK verdict names.
        """
        return "total order, agreement, integrity, FIFO, causality, indices"

    def summary(self, limit: int = 20) -> str:
        """
        A human-readable report: a verdict line, then up to C{limit}
        violations.
        """
        head = self._head()
        if self.ok:
            return head + f"OK ({self._checked()})"
        lines = [head + f"{len(self.violations)} violations"]
        lines.extend(f"  {v}" for v in self.violations[:limit])
        if len(self.violations) > limit:
            lines.append(f"  ... and {len(self.violations) - limit} more")
        return "\n".join(lines)


def run_starts(history: Sequence[Delivery]) -> list[int]:
    """
    Where a history starts again: the positions (from 0) after the first
    whose record carries index 1.  A member numbers its deliveries from 1
    in every run, and a C{jsonl:} log is appended to, so a log kept over
    two runs of a group has its indices restart at 1 where the second
    begins.

    @param history: One node's records, in delivery order.
    @return: The positions, in order; empty for a history of one run.
    """
    return [i for i, rec in enumerate(history) if i > 0 and rec.index == 1]


def _name(mid: MessageId) -> str:
    return f"{mid[0]}@{mid[1]}"


def check(
    histories: Mapping[str, Sequence[Delivery]],
    multicasts: Iterable[Multicast] | None = None,
) -> CheckResult:
    """
    Check delivery histories against every guarantee.

    @param histories: For every node, the records it delivered, in delivery
        order.
    @param multicasts: Every message that was multicast, if known.  With it,
        integrity also rejects messages nobody sent, validity requires every
        sent message to be delivered, FIFO uses the sending order and
        causality uses each multicast's C{after}.  Without it, causality uses
        the C{after} field of each sender's records of its own messages.
    @return: The result, listing every violation found.
    """
    nodes = tuple(sorted(histories))
    violations: list[Violation] = []
    ids: dict[str, list[MessageId]] = {}
    positions: dict[str, dict[MessageId, int]] = {}
    payloads: dict[MessageId, bytes] = {}
    sent: dict[MessageId, Multicast] | None = None
    if multicasts is not None:
        sent = {}
        for m in multicasts:
            sent[(m.sender, m.clock)] = m

    for node in nodes:
        history = histories[node]
        seq: list[MessageId] = []
        pos: dict[MessageId, int] = {}
        first: dict[MessageId, int] = {}
        bad_index_reported = False
        restarts = run_starts(history)
        for i, rec in enumerate(history):
            if rec.index != i + 1 and not bad_index_reported:
                again = (
                    f"; the indices restart at 1 there, so this history holds"
                    f" {len(restarts) + 1} runs of a group: check each run alone"
                    if restarts and restarts[0] == i
                    else ""
                )
                violations.append(
                    Violation(
                        "index",
                        node,
                        f"delivery number {i + 1} ({_name((rec.sender, rec.clock))})"
                        f" carries index {rec.index}{again}",
                    )
                )
                bad_index_reported = True
            mid = (rec.sender, rec.clock)
            if mid in pos:
                violations.append(
                    Violation(
                        "integrity",
                        node,
                        f"{_name(mid)} delivered twice (as number {first[mid]}"
                        f" and {i + 1})",
                    )
                )
                continue
            known = payloads.setdefault(mid, rec.payload)
            if known != rec.payload:
                violations.append(
                    Violation(
                        "integrity",
                        node,
                        f"{_name(mid)} delivered with a payload that differs from"
                        " the one another node delivered under that timestamp",
                    )
                )
            if sent is not None:
                origin = sent.get(mid)
                if origin is None:
                    violations.append(
                        Violation(
                            "integrity", node, f"{_name(mid)} was never multicast"
                        )
                    )
                elif origin.payload != rec.payload:
                    violations.append(
                        Violation(
                            "integrity",
                            node,
                            f"{_name(mid)} delivered with another payload than"
                            " was multicast",
                        )
                    )
            pos[mid] = len(seq)
            first[mid] = i + 1
            seq.append(mid)
        ids[node] = seq
        positions[node] = pos

    everywhere = set(payloads)
    for node in nodes:
        missing = everywhere.difference(positions[node])
        for mid in sorted(missing, key=lambda m: (m[1], m[0])):
            holders = [n for n in nodes if mid in positions[n]]
            violations.append(
                Violation(
                    "agreement",
                    node,
                    f"{_name(mid)} was never delivered here but was at"
                    f" {', '.join(holders)}",
                )
            )
    if sent is not None:
        for mid in sorted(set(sent).difference(everywhere), key=lambda m: (m[1], m[0])):
            violations.append(
                Violation(
                    "validity", None, f"{_name(mid)} was multicast but never delivered"
                )
            )

    violations.extend(_total_order(nodes, ids, positions))
    violations.extend(_fifo(nodes, ids, sent))
    violations.extend(_causality(nodes, ids, positions, histories, sent))

    rank = {g: i for i, g in enumerate(GUARANTEES)}
    violations.sort(key=lambda v: rank[v.guarantee])
    return CheckResult(
        nodes=nodes,
        messages=len(everywhere),
        deliveries=sum(len(h) for h in histories.values()),
        violations=tuple(violations),
    )


def _total_order(
    nodes: tuple[str, ...],
    ids: Mapping[str, list[MessageId]],
    positions: Mapping[str, Mapping[MessageId, int]],
) -> Iterable[Violation]:
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            in_b = positions[b]
            in_a = positions[a]
            seq_a = [m for m in ids[a] if m in in_b]
            seq_b = [m for m in ids[b] if m in in_a]
            for x, y in zip(seq_a, seq_b, strict=True):
                if x != y:
                    yield Violation(
                        "total order",
                        None,
                        f"{a} delivered {_name(x)} before {_name(y)},"
                        f" {b} delivered {_name(y)} before {_name(x)}",
                    )
                    break


def _fifo(
    nodes: tuple[str, ...],
    ids: Mapping[str, list[MessageId]],
    sent: Mapping[MessageId, Multicast] | None,
) -> Iterable[Violation]:
    # A sender's sending order: its multicasts in the order given, or else
    # its clocks (a member's own stamps only grow).
    rank: dict[MessageId, int] | None = None
    if sent is not None:
        rank = {}
        counts: dict[str, int] = {}
        for mid in sent:
            counts[mid[0]] = rank[mid] = counts.get(mid[0], 0) + 1
    for node in nodes:
        latest: dict[str, tuple[int, MessageId]] = {}
        for mid in ids[node]:
            order = mid[1] if rank is None else rank.get(mid)
            if order is None:
                continue
            prev = latest.get(mid[0])
            if prev is not None and order < prev[0]:
                yield Violation(
                    "fifo",
                    node,
                    f"{_name(mid)} delivered after {_name(prev[1])}, which"
                    f" {mid[0]} sent later",
                )
            elif prev is None or order > prev[0]:
                latest[mid[0]] = (order, mid)


def _causality(
    nodes: tuple[str, ...],
    ids: Mapping[str, list[MessageId]],
    positions: Mapping[str, Mapping[MessageId, int]],
    histories: Mapping[str, Sequence[Delivery]],
    sent: Mapping[MessageId, Multicast] | None,
) -> Iterable[Violation]:
    # Each message with a known `after` depends on its sender's first `after`
    # deliveries.  A prefix maximum of their positions in every node's
    # history makes each test O(1).
    deps: list[tuple[MessageId, int]] = []
    if sent is not None:
        deps = [(mid, m.after) for mid, m in sent.items() if m.after is not None]
    else:
        for node in nodes:
            for rec in histories[node]:
                if rec.sender == node and rec.after is not None:
                    deps.append(((rec.sender, rec.clock), rec.after))
    if not deps:
        return
    prefix: dict[tuple[str, str], list[int]] = {}
    # `after` counts deliveries up to an index: a member added to a later
    # view holds none before that view's first index, so it is turned into
    # a count of the records the sender's history holds up to there.
    indices: dict[str, list[int] | None] = {}
    for node in nodes:
        got = [r.index for r in histories[node]]
        indices[node] = got if all(a < b for a, b in pairwise(got)) else None
    for mid, after in deps:
        sender = mid[0]
        if sender not in positions or after <= 0:
            continue
        held = indices.get(sender)
        if held is not None:
            after = bisect_right(held, after)
            if after <= 0:
                continue
        for node in nodes:
            pos = positions[node].get(mid)
            if pos is None:
                continue
            key = (sender, node)
            table = prefix.get(key)
            if table is None:
                table = prefix[key] = _prefix_max(ids[sender], positions[node])
            latest = table[min(after, len(table)) - 1] if table else -1
            if latest > pos:
                yield Violation(
                    "causality",
                    node,
                    f"{_name(mid)} delivered before {_name(ids[node][latest])},"
                    f" which {sender} had delivered before multicasting it",
                )


def check_uniformity(
    crashed: Mapping[str, Sequence[Delivery]],
    survivors: Mapping[str, Sequence[MessageId]],
) -> tuple[Violation, ...]:
    """
    Check uniform agreement: what a crashed member delivered is a prefix of
    what every survivor delivered or still holds, in order.

    A survivor that has not yet delivered everything (its group waits for a
    view change) is judged by its I{future}: its deliveries followed by the
    messages it holds, in timestamp order.  A crashed member whose history
    is not a prefix of that delivered something the survivors may never
    deliver, so a replica that restarts from its log would be I{apart} from
    the group, not behind it.

    @param crashed: For every crashed (or removed) member, its deliveries.
    @param survivors: For every surviving member, the ids of the messages
        it delivered and then of those it holds, in that order.
    @return: One violation per crashed member and survivor that disagree,
        naming the first position where they do.
    """
    violations = []
    for node in sorted(crashed):
        history = [(rec.sender, rec.clock) for rec in crashed[node]]
        for other in sorted(survivors):
            future = survivors[other]
            for i, mid in enumerate(history):
                if i >= len(future) or future[i] != mid:
                    theirs = _name(future[i]) if i < len(future) else "nothing"
                    violations.append(
                        Violation(
                            "uniformity",
                            node,
                            f"delivered {_name(mid)} as number {i + 1}, where"
                            f" survivor {other} has {theirs}",
                        )
                    )
                    break
    return tuple(violations)


def _prefix_max(order: list[MessageId], where: Mapping[MessageId, int]) -> list[int]:
    out: list[int] = []
    best = -1
    for mid in order:
        best = max(best, where.get(mid, -1))
        out.append(best)
    return out


class HistoryFormatError(Exception):
    """
    A delivery log could not be read: the message names the file and line.
    """


def load_records(path: str | Path) -> list[Record]:
    """
    Read one node's delivery log in JSON lines, view changes included.

    A line with a C{sender} key is a delivery: C{index}, C{sender},
    C{clock} and either C{payload} (text, stored as UTF-8) or
    C{payload_b64}; C{after} is optional.  A line without one is a view
    change: C{view} (its id), C{members} (a list of names, in rank order)
    and C{index} (that of the view's first delivery), as
    L{isis_twisted.app.handlers.JsonLinesHandler} writes it.  Blank lines are
    skipped.

    @param path: The file to read.
    @return: The records (L{Delivery} and L{ViewChange}) in file order.
    @raise HistoryFormatError: If the file cannot be read or a line is
        neither a valid delivery nor a valid view change.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HistoryFormatError(f"{path}: cannot read: {e}") from e
    out: list[Record] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise HistoryFormatError(f"{path}:{number}: not JSON: {e}") from e
        if isinstance(obj, dict) and "sender" not in obj:
            try:
                out.append(_view_from_json(obj))
            except (ValueError, TypeError, KeyError) as e:
                raise HistoryFormatError(
                    f"{path}:{number}: not a view record (a line without"
                    f' "sender" is one): {_reason(e)}'
                ) from e
            continue
        try:
            out.append(_record_from_json(obj))
        except (ValueError, TypeError, KeyError) as e:
            raise HistoryFormatError(
                f"{path}:{number}: not a delivery record: {_reason(e)}"
            ) from e
    return out


def load_jsonl(path: str | Path) -> list[Delivery]:
    """
    Read one node's deliveries from its log in JSON lines.

    The file is read as L{load_records} reads it (so view lines are
    checked too) and only the deliveries are kept: what L{check} takes.

    @param path: The file to read.
    @return: The delivery records in file order.
    @raise HistoryFormatError: If the file cannot be read or a line is not a
        valid record.
    """
    return [r for r in load_records(path) if isinstance(r, Delivery)]


def _reason(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"it has no {error.args[0]!r}"
    return str(error)


def _view_from_json(obj: dict[str, object]) -> ViewChange:
    view, members, index = obj["view"], obj["members"], obj["index"]
    if type(view) is not int or view < 0:
        raise TypeError("view must be a non-negative integer")
    if type(index) is not int or index < 1:
        raise TypeError("index must be a positive integer")
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise TypeError("members must be a list of names")
    return ViewChange(view, tuple(members), index)


def _record_from_json(obj: object) -> Delivery:
    if not isinstance(obj, dict):
        raise TypeError("a line must be a JSON object")
    index, sender, clock = obj["index"], obj["sender"], obj["clock"]
    after = obj.get("after")
    if type(index) is not int or type(clock) is not int:
        raise TypeError("index and clock must be integers")
    if not isinstance(sender, str):
        raise TypeError("sender must be a string")
    if after is not None and (type(after) is not int or after < 0):
        raise TypeError("after must be a non-negative integer")
    if "payload_b64" in obj:
        try:
            payload = base64.b64decode(obj["payload_b64"], validate=True)
        except (binascii.Error, TypeError) as e:
            raise ValueError(f"payload_b64 is not base64: {e}") from e
    else:
        text = obj["payload"]
        if not isinstance(text, str):
            raise TypeError("payload must be a string")
        payload = text.encode("utf-8")
    return Delivery(index, sender, clock, payload, after)


def record_fields(record: Record) -> dict[str, object]:
    """
    One record as JSON-ready data, the form L{load_records} reads.

    A delivery is C{{"index": 1, "sender": "a", "clock": 7, "payload":
    "text"}} (C{payload_b64} for a payload that is not UTF-8, C{after} when
    the record has one); a view change is C{{"view": 1, "members": ["a",
    "b"], "index": 81}}, told apart by its missing C{sender}.
    """
    if isinstance(record, ViewChange):
        return {
            "view": record.view,
            "members": list(record.members),
            "index": record.index,
        }
    obj: dict[str, object] = {
        "index": record.index,
        "sender": record.sender,
        "clock": record.clock,
    }
    try:
        obj["payload"] = record.payload.decode("utf-8")
    except UnicodeDecodeError:
        obj["payload_b64"] = base64.b64encode(record.payload).decode("ascii")
    if record.after is not None:
        obj["after"] = record.after
    return obj


def record_to_json(record: Record) -> str:
    """
    One record as a line of JSON (without the newline), the format
    L{load_records} reads: L{record_fields}, serialised.
    """
    return json.dumps(record_fields(record), ensure_ascii=False)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Check JSON-lines delivery logs, one file per node.

    Arguments are C{PATH} or C{NAME=PATH}; a bare path names its node after
    the file's stem.  When any log holds a view line (the group changed
    view: a member was left out), every log is judged by
    L{isis_twisted.core.viewcheck.check_views}, for which a member that crashed
    may stop anywhere as long as what it delivered is what the others
    delivered at the same indices; otherwise by L{check}, which asks for
    every message everywhere.  Prints the verdict and returns 0 when every
    guarantee holds, 1 when something is violated and 2 when the input is
    unusable (a log that cannot be read, or one that holds several runs of a
    group: its indices restart at 1).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or any(a in ("-h", "--help") for a in args):
        print(
            "usage: isis check [NAME=]LOG.jsonl [NAME=]LOG.jsonl ...\n"
            "Checks one delivery log per node for total order, agreement,"
            " integrity, FIFO, causality and gap-free indices, and, when the"
            " logs hold view changes, view synchrony, primary component and"
            " uniformity.",
            file=sys.stderr if not args else sys.stdout,
        )
        return 2 if not args else 0
    histories: dict[str, list[Record]] = {}
    try:
        for arg in args:
            name, sep, path = arg.partition("=")
            if not sep:
                path, name = arg, Path(arg).stem
            if name in histories:
                print(f"error: two logs for node {name!r}", file=sys.stderr)
                return 2
            histories[name] = load_records(path)
            deliveries = [r for r in histories[name] if isinstance(r, Delivery)]
            starts = run_starts(deliveries)
            if starts:
                # Checked as one history, a second run is a storm of index,
                # integrity and agreement violations that hides the cause.
                runs = len(starts) + 1
                print(
                    f"error: {path} holds {runs} runs of a group: its indices"
                    f" restart at 1 at delivery {starts[0] + 1} of"
                    f" {len(deliveries)}; give each run its own log (a"
                    " new jsonl: path per run) or split this one there",
                    file=sys.stderr,
                )
                return 2
    except HistoryFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result: CheckResult
    if any(isinstance(r, ViewChange) for h in histories.values() for r in h):
        # viewcheck builds on this module: imported here, not at the top.
        from isis_twisted.core.viewcheck import check_views

        result = check_views(histories)
    else:
        result = check(
            {n: [r for r in h if isinstance(r, Delivery)] for n, h in histories.items()}
        )
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
