"""
Catching up a member added to a view: the deliveries it lacks, from a member
that still holds them.  Pure and sans-IO, like the membership: the node
hands in what arrives and sends what comes out.

A member added to view V (L{isis_twisted.core.views.Welcome}) whose durable
handlers stopped at some L{StreamPosition} asks a member of V for every
record after that position and before V's view change (L{Fetch}).  The
giver answers from the records it keeps (the node's history, bounded by
C{--retain}) in L{Records} messages of bounded size, as fast as its link to
the joiner takes them, or with L{NoRecords} when it cannot: it no longer
holds the oldest record asked for, or the record it holds at the joiner's
position is another one (the joiner's records belong to another group, or to
an earlier life of this one).  The joiner asks the next member when one
cannot; when none can, it cannot catch up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from isis_twisted.core.engine import Delivery, Record, StreamPosition, ViewChange
from isis_twisted.core.views import Fetch, NoRecords, Records, Welcome

CHUNK_BYTES = 256 * 1024
"""
About how many payload bytes one L{Records} message carries.
"""

CHUNK_RECORDS = 4096
"""
The most records one L{Records} message carries.
"""


def _cost(record: Record) -> int:
    return 32 + (len(record.payload) if isinstance(record, Delivery) else 0)


class Giving:
    """
    The records a member gives one joiner, in chunks.

    @ivar view: The view the joiner was added to.
    @ivar left: How many records are still to be given.
    """

    def __init__(self, view: int, records: Sequence[Record]) -> None:
        """
        @param view: The view the joiner was added to.
        @param records: What it lacks, in order.
        """
        self.view = view
        self._records = records
        self._at = 0
        self.left = len(records)

    def next_chunk(self, most_bytes: int = CHUNK_BYTES) -> Records | None:
        """
        The next L{Records} message, or L{None} once the last was given.
        """
        if self._at > len(self._records):
            return None
        start = self._at
        size = 0
        end = start
        records = self._records
        while end < len(records) and end - start < CHUNK_RECORDS:
            size += _cost(records[end])
            if size > most_bytes and end > start:
                break
            end += 1
        self._at = end if end < len(records) else len(records) + 1
        self.left = len(records) - end
        return Records(self.view, tuple(records[start:end]), end >= len(records))


def give(
    me: str, fetch: Fetch, kept: Iterable[Record], delivered: int
) -> Giving | NoRecords:
    """
    What to give a joiner that sent C{fetch}, from the records C{kept}.

    @param me: This member's name, for reasons.
    @param kept: The records this member keeps, oldest first.
    @param delivered: The index of this member's last delivery.
    @return: What to give, or the refusal to send.
    """
    after = fetch.after
    oldest: int | None = None
    wanted: list[Record] = []
    found_last = after.last is None
    reached = False
    for record in kept:
        if oldest is None and isinstance(record, Delivery):
            oldest = record.index
        if isinstance(record, ViewChange) and record.view >= fetch.view:
            reached = record.view == fetch.view
            break
        if isinstance(record, Delivery) and record.index == after.index:
            if after.last is not None and (record.sender, record.clock) != after.last:
                return NoRecords(
                    fetch.view,
                    oldest or delivered + 1,
                    f"{me!r} delivered {record.sender}@{record.clock} at index"
                    f" {after.index}, where the joiner's records hold"
                    f" {after.last[0]}@{after.last[1]}: they belong to another"
                    " group, or to an earlier life of this one",
                )
            found_last = True
        if after.after(record):
            wanted.append(record)
    first = oldest if oldest is not None else delivered + 1
    if not reached:
        # Without that view change it cannot tell where the records the
        # joiner lacks end (it has not installed the view, or is catching up
        # itself).
        return NoRecords(
            fetch.view,
            first,
            f"{me!r} has not handed out view {fetch.view}'s start yet",
        )
    if after.index >= delivered + 1 and after.index > 0:
        return NoRecords(
            fetch.view,
            first,
            f"the joiner's records reach index {after.index}, but {me!r} has"
            f" delivered only {delivered}: they belong to another group, or"
            " to an earlier life of this one",
        )
    if after.index + 1 < first or (not found_last and after.index >= first):
        return NoRecords(
            fetch.view,
            first,
            f"{me!r} keeps deliveries from index {first} on only, and the"
            f" joiner lacks those from index {after.index + 1}",
        )
    return Giving(fetch.view, wanted)


@attrs.define
class CatchingUp:
    """
    A member added to a view, getting the records it lacks.

    @ivar welcome: The welcome it was added by.
    @ivar after: Where its durable handlers stopped.
    @ivar asking: The member it asks now.
    @ivar refusals: What each member asked so far answered, in order.
    """

    welcome: Welcome
    after: StreamPosition
    candidates: list[str]
    asking: str | None = None
    refusals: list[tuple[str, str]] = attrs.Factory(list)
    got: int = 0

    def next_fetch(self) -> tuple[str, Fetch] | None:
        """
        Whom to ask next and what, or L{None} if nobody is left to ask.
        """
        if not self.candidates:
            self.asking = None
            return None
        self.asking = self.candidates.pop(0)
        return (self.asking, Fetch(self.welcome.latest.id, self.after))

    def took(self, records: Sequence[Record]) -> None:
        """
        C{records} arrived and were handed out: the next ask (if the giver
        goes away) starts after them.
        """
        self.after = self.after.advanced(records)
        self.got += len(records)

    def why_not(self) -> str:
        """
        Why nobody could give what it lacks, in one sentence.
        """
        said = "; ".join(f"{name}: {reason}" for name, reason in self.refusals)
        return (
            f"no member holds the deliveries this member lacks after index"
            f" {self.after.index} ({said or 'nobody answered'})"
        )
