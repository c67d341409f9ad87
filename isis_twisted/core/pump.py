"""
Handing a member's records to its delivery handlers without ever leaving
a hole.

L{HandlerPump} sits between the ordering (which produces a turn's
L{Delivery} and L{ViewChange} records) and the handlers.  It is sans-IO:
it reads no clock (the time is an argument) and imports no reactor; the
node calls it, logs what it reports and schedules the next call.

The rules:

  - Every handler has its own cursor: it gets every record once, in order,
    and a record it took is never given to it again.
  - A handler raising L{OSError} (a full disk, a lost connection) did not
    take the record: it stops there, the pump gives it the same record
    again after a back-off (C{retry_initial}, doubling up to C{retry_max})
    and goes on from exactly there.  The other handlers go on meanwhile.
    The member learns of it once (L{HandlerStopped}) and once more when it
    goes on (L{HandlerResumed}); past C{give_up_after} seconds the node
    should leave the group (L{HandlerPump.given_up}) rather than hold the
    others.
  - Any other exception is a bug in the handler: that record is skipped for
    that handler, as the member always did.  The first per handler is
    reported with the exception (L{HandlerFailed}, for the node to log with
    its traceback); later ones are only counted.
  - A record is passed on (L{Pumped.records}: to the history, subscribers
    and waiting multicasts) once every handler has taken or skipped it.
  - A L{ViewChange} goes only to handlers providing L{IViewHandler}; a
    provider of L{IDurableHandler} is not given a record its own
    L{position<IDurableHandler.position>} says it holds already, so a
    member that catches up from the least position of its handlers gives
    each only what it lacks.  The pump asks a handler's position until the
    handler takes a record (after that every record is new to it, the
    stream being in order) and again after L{HandlerPump.hold}: a member
    puts a catch-up between L{HandlerPump.hold} and
    L{HandlerPump.release}.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable

import attrs

from isis_twisted.core.engine import Delivery, Record, StreamPosition, ViewChange
from isis_twisted.interfaces import IDeliveryHandler, IDurableHandler, IViewHandler


@attrs.frozen
class Stuck:
    """
    A handler that cannot keep a record (it raised L{OSError}) and is
    given it again later.

    @ivar handler: The handler's C{repr}, for logs and status.
    @ivar index: The record's index (for a view change, that of its view's
        first delivery).
    @ivar record: The record it is stuck at.
    @ivar reason: Why, in one line (C{"OSError: [Errno 28] No space left on
        device"}): the last failure's.
    @ivar since: When it first failed on that record.
    @ivar attempts: How many times it has failed on it.
    """

    handler: str
    index: int
    record: Record
    reason: str
    since: float
    attempts: int = 1


@attrs.frozen
class HandlerStopped:
    """
    A handler began failing with L{OSError}: the member stops passing
    records on at C{stuck.index}.  Reported once, however often it retries.

    @ivar stuck: Which handler, where and why.
    """

    stuck: Stuck


@attrs.frozen
class HandlerResumed:
    """
    A stuck handler took its record at last, and goes on from there.

    @ivar stuck: Where it was stuck, as it stood at its last failure.
    @ivar now: When it took the record.
    """

    stuck: Stuck
    now: float


@attrs.frozen
class HandlerFailed:
    """
    A handler raised something other than L{OSError} (a bug): the record is
    skipped for that handler.  Reported for the first such failure of each
    handler only; later ones are counted in L{HandlerPump.handler_errors}
    and L{HandlerPump.skipped}.

    @ivar handler: The handler's C{repr}.
    @ivar record: The record it failed on.
    @ivar error: What it raised, with its C{__traceback__}.
    """

    handler: str
    record: Record
    error: Exception


PumpEvent = HandlerStopped | HandlerResumed | HandlerFailed
"""
What L{HandlerPump.run} reports for the node to log.
"""


@attrs.frozen
class Pumped:
    """
    The outcome of one L{HandlerPump.run}.

    @ivar records: The records every handler has now taken (or skipped for
        a bug), in order, each returned once: what the node passes on.
    @ivar events: What to log, in the order it happened.
    """

    records: list[Record]
    events: list[PumpEvent]


def describe(error: BaseException) -> str:
    """
    An exception in one line: its type and message.
    """
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class _Cursor:
    """
    One handler's progress through the pump's records.

    @ivar name: The handler's C{repr}.
    @ivar deliver: Its C{deliver}.
    @ivar view_changed: Its C{view_changed}, or L{None} if it does not
        provide L{IViewHandler}.
    @ivar position: Its C{position}, or L{None} if it does not provide
        L{IDurableHandler}.
    @ivar check: Its C{position} while it may still be given records it
        holds already (until it takes one, and again after a L{hold
        <HandlerPump.hold>}); L{None} once every record it is given is new
        to it, since the stream is in order.
    @ivar at: How many records (counted from the pump's start) the handler
        has taken or skipped.
    @ivar stuck: Where it is stuck, or L{None}.
    @ivar retry_at: When to give it its record again, if stuck.
    @ivar delay: The back-off before the next retry, if stuck.
    @ivar failed: Whether a bug of this handler was reported already.
    """

    __slots__ = (
        "at",
        "check",
        "delay",
        "deliver",
        "failed",
        "handler",
        "name",
        "position",
        "retry_at",
        "stuck",
        "view_changed",
    )

    def __init__(self, handler: IDeliveryHandler) -> None:
        self.handler = handler
        self.name = repr(handler)
        self.deliver: Callable[[Delivery], None] = handler.deliver
        self.view_changed: Callable[[ViewChange], None] | None = (
            IViewHandler(handler).view_changed
            if IViewHandler.providedBy(handler)
            else None
        )
        self.position: Callable[[], StreamPosition] | None = (
            IDurableHandler(handler).position
            if IDurableHandler.providedBy(handler)
            else None
        )
        self.check = self.position
        self.at = 0
        self.stuck: Stuck | None = None
        self.retry_at = 0.0
        self.delay = 0.0
        self.failed = False


class HandlerPump:
    """
    Gives records to delivery handlers in order, each handler at its own
    pace, holding back what a handler could not keep (see the module's
    docstring for the rules).

    The node calls L{put} with each turn's records, then L{run} with the
    time; it passes on the records L{run} returns and logs its events, and
    calls L{run} again by L{deadline} while a handler is stuck.

    @ivar handlers: The handlers, in the order each record is given to them.
    @ivar retry_initial: The first back-off after a handler raised
        L{OSError}, in seconds.
    @ivar retry_max: The longest back-off, in seconds.
    @ivar give_up_after: How long a handler may stay stuck before
        L{given_up} says the member should leave the group, in seconds.
    @ivar handler_errors: How many times handlers have raised, every kind
        and every retry counted.
    @ivar skipped: How many records handlers skipped because of a bug (each
        handler's count added up).
    """

    def __init__(
        self,
        handlers: Iterable[IDeliveryHandler],
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        give_up_after: float = 60.0,
    ) -> None:
        """
        @param handlers: The handlers to feed, in order.
        @param retry_initial: See L{retry_initial}; more than 0.
        @param retry_max: See L{retry_max}; at least C{retry_initial}.
        @param give_up_after: See L{give_up_after}; at least 0.
        @raise ValueError: If the times are out of range.
        """
        if not 0 < retry_initial <= retry_max:
            raise ValueError(
                "the handler retry back-off must start above 0 and not exceed"
                f" its maximum, got {retry_initial} and {retry_max}"
            )
        if give_up_after < 0:
            raise ValueError(
                f"the time before giving up on a handler cannot be negative,"
                f" got {give_up_after}"
            )
        self.handlers: tuple[IDeliveryHandler, ...] = tuple(handlers)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.give_up_after = give_up_after
        self.handler_errors = 0
        self.skipped = 0
        self._cursors = [_Cursor(h) for h in self.handlers]
        # _queue[0] is record number _base (counted from the start); every
        # record before it has been taken by every handler and returned.
        self._queue: deque[Record] = deque()
        self._base = 0
        self._held = False

    # -- feeding ------------------------------------------------------------

    def put(self, records: Iterable[Record]) -> None:
        """
        Queue records to give to the handlers, after those queued before.

        @param records: The records, in stream order.
        """
        self._queue.extend(records)

    def add(self, handler: IDeliveryHandler) -> None:
        """
        Give every record queued from now on to C{handler} too, after the
        other handlers.

        @param handler: The handler.
        """
        cursor = _Cursor(handler)
        cursor.at = self._base + len(self._queue)
        self._cursors.append(cursor)
        self.handlers = (*self.handlers, handler)

    def start_after(self, floor: StreamPosition) -> None:
        """
        Handlers that keep nothing of their own (no
        L{position<IDurableHandler.position>}) and have taken nothing yet
        are given only records after C{floor}: a member started afresh that
        catches up gives them nothing of what it catches up on, but begins
        them where a new member would.

        @param floor: The position they are taken to hold already.
        """
        for cursor in self._cursors:
            if cursor.position is None and cursor.check is None and cursor.at == 0:
                cursor.check = lambda: floor

    def skip_through(self, handler: IDeliveryHandler, position: StreamPosition) -> None:
        """
        C{handler} holds every record up to C{position} already (it was
        restored from a snapshot taken there): give it only those after,
        until it takes one.

        @raise ValueError: If C{handler} is not one of the pump's.
        """
        for cursor in self._cursors:
            if cursor.handler is handler:
                cursor.check = lambda: position
                return
        raise ValueError(f"{handler!r} is not a handler of this pump")

    def hold(self) -> None:
        """
        Give nothing until L{release}: the member is catching up, and what
        it has queued must wait for what it lacks to come first.  Durable
        handlers' positions are checked again from here on, so that a
        catch-up that starts behind one of them does not give it what it
        holds.
        """
        self._held = True
        for cursor in self._cursors:
            cursor.check = cursor.position

    def release(self) -> None:
        """
        Undo L{hold}: the next L{run} gives records again.
        """
        self._held = False

    @property
    def held(self) -> bool:
        """
        Whether L{hold} is in force.
        """
        return self._held

    @property
    def pending(self) -> int:
        """
        How many records are queued and not yet returned by L{run}: what a
        stuck handler holds back.
        """
        return len(self._queue)

    # -- running ------------------------------------------------------------

    def run(self, now: float) -> Pumped:
        """
        Give every handler the queued records it has not taken, in order,
        skipping stuck handlers whose retry is not due.

        @param now: The time, on the clock L{deadline} and L{Stuck.since}
            use.
        @return: The records every handler has now taken (to pass on) and
            what to log.  Nothing at all while held.
        """
        events: list[PumpEvent] = []
        if self._held or not self._queue:
            return Pumped([], events)
        queue = self._queue
        base = self._base
        end = base + len(queue)
        # A stuck handler whose retry is not due waits where it is; so does
        # one that fails in this run, until its next retry.
        ready = [c for c in self._cursors if c.stuck is None or c.retry_at <= now]
        if ready:
            start = min(c.at for c in ready)
            # Iterated, not indexed: a deque's middle is slow to index, and
            # a stuck handler can leave a long one.
            for position, record in enumerate(
                itertools.islice(queue, start - base, None), start
            ):
                lagging = False
                for cursor in ready:
                    if cursor.at != position:
                        continue
                    # Inline rather than a method per record: this is the
                    # member's hot path.
                    try:
                        if cursor.check is not None and not (
                            cursor.check().after(record)
                        ):
                            pass  # it holds this one already
                        elif type(record) is ViewChange:
                            if cursor.view_changed is not None:
                                cursor.view_changed(record)
                                cursor.check = None
                        else:
                            cursor.deliver(record)  # type: ignore[arg-type]
                            cursor.check = None
                    except OSError as e:
                        self._stopped(cursor, record, e, now, events)
                        lagging = True
                        continue
                    except Exception as e:
                        self._failed(cursor, record, e, events)
                    if cursor.stuck is not None:
                        events.append(HandlerResumed(cursor.stuck, now))
                        cursor.stuck = None
                    cursor.at = position + 1
                if lagging:
                    ready = [c for c in ready if c.at > position]
                    if not ready:
                        break
        done = min((c.at for c in self._cursors), default=end)
        taken = [queue.popleft() for _ in range(done - base)]
        self._base = done
        return Pumped(taken, events)

    def _stopped(
        self,
        cursor: _Cursor,
        record: Record,
        error: OSError,
        now: float,
        events: list[PumpEvent],
    ) -> None:
        """
        A handler could not keep C{record}: it is stuck there until its
        next retry, which is due after a longer back-off each time.
        """
        self.handler_errors += 1
        stuck = cursor.stuck
        if stuck is None:
            cursor.delay = self.retry_initial
            stuck = Stuck(cursor.name, record.index, record, describe(error), now)
            events.append(HandlerStopped(stuck))
        else:
            cursor.delay = min(cursor.delay * 2, self.retry_max)
            stuck = attrs.evolve(
                stuck, reason=describe(error), attempts=stuck.attempts + 1
            )
        cursor.stuck = stuck
        cursor.retry_at = now + cursor.delay

    def _failed(
        self,
        cursor: _Cursor,
        record: Record,
        error: Exception,
        events: list[PumpEvent],
    ) -> None:
        """
        A handler has a bug: C{record} is skipped for it, and the first
        such failure of each handler is reported.
        """
        self.handler_errors += 1
        self.skipped += 1
        if not cursor.failed:
            cursor.failed = True
            events.append(HandlerFailed(cursor.name, record, error))

    # -- inspecting ---------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """
        When L{run} should be called again to retry a stuck handler, or
        L{None} if none is stuck (or the pump is held).
        """
        if self._held:
            return None
        due = [c.retry_at for c in self._cursors if c.stuck is not None]
        return min(due) if due else None

    @property
    def stuck(self) -> Stuck | None:
        """
        The handler stuck the longest, or L{None} if none is.
        """
        stuck = [c.stuck for c in self._cursors if c.stuck is not None]
        return min(stuck, key=lambda s: s.since) if stuck else None

    @property
    def all_stuck(self) -> list[Stuck]:
        """
        Every stuck handler, in handler order.
        """
        return [c.stuck for c in self._cursors if c.stuck is not None]

    def given_up(self, now: float) -> bool:
        """
        Whether a handler has been stuck for C{give_up_after} seconds or
        more: the member should leave the group rather than hold it, and
        catch up when it rejoins.

        @param now: The time.
        """
        stuck = self.stuck
        return stuck is not None and now - stuck.since >= self.give_up_after

    def positions(self) -> list[tuple[IDurableHandler, StreamPosition]]:
        """
        Where each durable handler stopped, for the member to choose where to
        catch up from (the least of them) when it rejoins.

        The member checks that each position belongs to the group's stream
        (its C{last} sender and clock match the group's record at that
        index) before it puts records: the pump trusts a handler's position
        and does not give it records at or before it.

        @return: Each L{IDurableHandler} with its position, in handler order.
        """
        return [
            (IDurableHandler(c.handler), c.position())
            for c in self._cursors
            if c.position is not None
        ]
