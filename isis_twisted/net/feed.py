"""
The reactor's side of a L{HandlerPump}: it runs the pump, logs what the
pump reports (once per event, never per retry), passes on what every
handler took and calls the pump again when a stuck handler's retry is due.

The rules themselves (cursors, back-off, when to give up) are the pump's,
in L{isis_twisted.core.pump}; this module only reads the clock and schedules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from isis_twisted.core.engine import Delivery, Record
from isis_twisted.core.pump import (
    HandlerFailed,
    HandlerPump,
    HandlerResumed,
    HandlerStopped,
    PumpEvent,
)


def _what(record: Record) -> str:
    if isinstance(record, Delivery):
        return f"record {record.index}"
    return f"the change to view {record.view} (at index {record.index})"


class HandlerFeed:
    """
    Feeds a member's records through its L{HandlerPump}.

    @ivar pump: The pump.
    @ivar stopped: Whether L{stop} was called (and L{start} not since).
    """

    _log = Logger()

    def __init__(
        self,
        me: str,
        pump: HandlerPump,
        reactor: IReactorTime,
        pass_on: Callable[[list[Record]], None],
        watch: Callable[[float], None],
    ) -> None:
        """
        @param me: The member's name, for the log.
        @param pump: The pump to run.
        @param reactor: The clock, and where retries are scheduled.
        @param pass_on: Called with the records every handler has taken, in
            order, each once.
        @param watch: Called with the time after every run: the member's
            chance to act on a stuck handler (L{HandlerPump.given_up}).
        """
        self.me = me
        self.pump = pump
        self._reactor = reactor
        self._pass_on = pass_on
        self._watch = watch
        self._retry: IDelayedCall | None = None
        self.stopped = False

    def put(self, records: Iterable[Record]) -> None:
        """
        Give the handlers these records, after those given before.
        """
        self.pump.put(records)
        self.run()

    def run(self) -> None:
        """
        Run the pump now: hand out what can be, log what happened, and
        schedule the next retry if a handler is stuck.
        """
        pump = self.pump
        now = self._reactor.seconds()
        out = pump.run(now)
        for event in out.events:
            self._report(event)
        if out.records:
            self._pass_on(out.records)
        if self._retry is not None or pump.deadline is not None:
            self._schedule(now)
        self._watch(now)

    def start(self) -> None:
        """
        Run again after L{stop}: a stuck handler is retried from now on.
        """
        self.stopped = False
        self.run()

    def stop(self) -> None:
        """
        Retry nothing more until L{start}.
        """
        self.stopped = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _schedule(self, now: float) -> None:
        deadline = self.pump.deadline
        retry = self._retry
        if retry is not None and retry.active():
            if deadline is not None and retry.getTime() == deadline:
                return
            retry.cancel()
        self._retry = None
        if deadline is not None and not self.stopped:
            self._retry = self._reactor.callLater(
                max(0.0, deadline - now), self._retry_due
            )

    def _retry_due(self) -> None:
        self._retry = None
        self.run()

    def _report(self, event: PumpEvent) -> None:
        if isinstance(event, HandlerStopped):
            stuck = event.stuck
            self._log.error(
                "member {me!r} could not keep {what} with delivery handler"
                " {handler}: {reason}; it hands out nothing from there until the"
                " handler keeps it, and retries with back-off",
                me=self.me,
                what=_what(stuck.record),
                handler=stuck.handler,
                reason=stuck.reason,
                index=stuck.index,
            )
        elif isinstance(event, HandlerResumed):
            stuck = event.stuck
            self._log.warn(
                "member {me!r} kept {what} with delivery handler {handler} after"
                " {attempts} failures over {seconds:.1f} s, and goes on from there",
                me=self.me,
                what=_what(stuck.record),
                handler=stuck.handler,
                attempts=stuck.attempts,
                seconds=event.now - stuck.since,
                index=stuck.index,
            )
        elif isinstance(event, HandlerFailed):
            self._log.failure(
                "delivery handler {handler} of member {me!r} raised on {what}: the"
                " record is skipped for that handler (a bug in it; later ones are"
                " only counted in the status)",
                failure=Failure(event.error),  # type: ignore[no-untyped-call]
                me=self.me,
                handler=event.handler,
                what=_what(event.record),
            )
