"""
State transfer: a member added to a view in a new life gets the state of
its L{state handlers<isis_twisted.interfaces.IStateHandler>} from another
member, as snapshots streamed in chunks.  Pure and sans-IO, like
L{isis_twisted.core.transfer}: the node hands in what arrives and sends what
comes out.

The joiner asks a member of its new view (L{FetchState}, saying how many
state handlers it runs).  The giver takes every state handler's snapshot
between two records, once its handlers have taken every record it handed
out and that includes the joiner's view's start, and sends them in
L{StateChunk}s of bounded size, each carrying the position in the stream
the snapshots were taken at; a joiner restores them and is then given only
the records after that position.  A giver that cannot answers
L{NoState}; the joiner asks the next member, and restores from scratch
with whichever member answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import attrs

from isis_twisted.core.engine import StreamPosition
from isis_twisted.core.views import FetchState, StateChunk
from isis_twisted.interfaces import IDeliveryHandler, IDurableHandler, IStateHandler

SNAPSHOT_CHUNK = 256 * 1024
"""
About how many bytes of a snapshot one L{StateChunk} carries.
"""


def state_handlers(handlers: Iterable[IDeliveryHandler]) -> list[IStateHandler]:
    """
    The handlers whose state a member in a new life restores by snapshot,
    in order: those providing L{IStateHandler} and not L{IDurableHandler}
    (a durable handler says where it stopped and is given the records
    after that instead).
    """
    return [
        IStateHandler(h)
        for h in handlers
        if IStateHandler.providedBy(h) and not IDurableHandler.providedBy(h)
    ]


class SnapshotGiving:
    """
    The snapshots a member gives one joiner, cut and joined into chunks.

    @ivar view: The view the joiner was added to.
    @ivar position: Where in the stream the snapshots were taken.
    @ivar sent: How many bytes of snapshot were given so far.
    """

    def __init__(
        self, view: int, position: StreamPosition, parts: Sequence[Iterator[bytes]]
    ) -> None:
        """
        @param parts: Each state handler's snapshot, in handler order.
        """
        self.view = view
        self.position = position
        self.sent = 0
        self._parts = list(parts)
        self._part = 0
        self._buffer = bytearray()
        self._over = False

    def next_chunk(self, most_bytes: int = SNAPSHOT_CHUNK) -> StateChunk | None:
        """
        The next L{StateChunk}, or L{None} once the last was given.

        @raise Exception: Whatever a handler's snapshot raises.
        """
        if self._over:
            return None
        buffer = self._buffer
        while True:
            if len(buffer) >= most_bytes:
                return self._cut(most_bytes, False)
            piece = next(self._parts[self._part], None) if self._parts else None
            if piece is not None:
                buffer += piece
                continue
            last = self._part >= len(self._parts) - 1
            if last:
                self._over = True
                return self._cut(len(buffer), True)
            if buffer:
                chunk = self._cut(len(buffer), False)
                self._part += 1
                return chunk
            self._part += 1

    def _cut(self, size: int, done: bool) -> StateChunk:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        self.sent += len(data)
        return StateChunk(self.view, self.position, self._part, data, done)


@attrs.define
class FetchingState:
    """
    A member added to a view, getting its state handlers' state.

    @ivar view: The view it was added to.
    @ivar parts: How many state handlers it runs.
    @ivar candidates: The members still to ask, in order.
    @ivar asking: The member it asks now.
    @ivar started: Whether the handlers were told a snapshot follows, in
        this attempt.
    @ivar received: Bytes of snapshot taken in this attempt.
    @ivar refusals: What each member asked so far answered, in order.
    """

    view: int
    parts: int
    candidates: list[str]
    asking: str | None = None
    started: bool = False
    received: int = 0
    refusals: list[tuple[str, str]] = attrs.Factory(list)

    def next_fetch(self) -> tuple[str, FetchState] | None:
        """
        Whom to ask next and what, or L{None} if nobody is left to ask.
        Starts a new attempt: the next snapshot replaces whatever part of
        another arrived.
        """
        self.started = False
        self.received = 0
        if not self.candidates:
            self.asking = None
            return None
        self.asking = self.candidates.pop(0)
        return (self.asking, FetchState(self.view, self.parts))

    def refused(self, name: str, reason: str) -> None:
        """
        C{name} cannot give the state, for C{reason}.
        """
        self.refusals.append((name, reason))

    def why_not(self) -> str:
        """
        Why nobody could give the state, in one sentence.
        """
        said = "; ".join(f"{name}: {reason}" for name, reason in self.refusals)
        return (
            f"no member could give the state of its {self.parts} state"
            f" handler(s) ({said or 'nobody answered'})"
        )
