"""
C{isis send}: multicast payloads through a node, pipelined.

L{run_send} keeps up to C{--window} multicasts awaiting delivery at once,
taking payloads from the command line or from standard input
(L{isis_twisted.app.sendinput}), and says what the node waits for when
deliveries stop coming.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionClosed
from twisted.internet.interfaces import IDelayedCall, IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python import usage
from twisted.python.failure import Failure

from isis_twisted.api.client import ClientProtocol
from isis_twisted.app.clibase import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    CommandOptions,
    Console,
    OptionTable,
    failure_message,
    node_parameters,
    positive_seconds,
)
from isis_twisted.app.sendinput import ListSource, PayloadSource, StreamSource
from isis_twisted.app.statusview import read_status, waiting_for
from isis_twisted.core.engine import Delivery
from isis_twisted.net.options import whole_number

__all__ = ["DEFAULT_WINDOW", "WAIT_NOTICE", "SendOptions", "run_send"]

DEFAULT_WINDOW = 512
"""
How many multicasts C{isis send} lets await their delivery at once.
"""


class SendOptions(CommandOptions):
    """
    Options of C{isis send}.
    """

    synopsis = (
        "[--quiet] [--window N] [--timeout SECONDS] [-0] [--file PATH ...]"
        " [PAYLOAD ...]"
    )
    longdesc = (
        "Multicast the whole of each --file and each PAYLOAD, or, when none is"
        " given (or just '-'), each line of standard input (split at \\n only;"
        " with -0, at NUL bytes), and print 'INDEX SENDER@CLOCK' for each once"
        " the node has delivered it.  Messages are pipelined: up to --window of"
        " them await delivery at once.  Exit status: 0 when every message was"
        " delivered, 1 when one failed or the connection was lost, 2 for a"
        " usage mistake or an unreachable node, 3 after --timeout, 130 on"
        " Ctrl-C."
    )
    optFlags: ClassVar[OptionTable] = [
        ["quiet", "q", "Print nothing for delivered messages."],
        ["null", "0", "Standard input holds messages ended by NUL bytes."],
    ]
    optParameters: ClassVar[OptionTable] = [
        [
            "window",
            "w",
            str(DEFAULT_WINDOW),
            "How many messages may await their delivery at once.",
        ],
        [
            "timeout",
            None,
            None,
            "Give up (exit status 3) when no delivery has been confirmed for"
            " SECONDS, saying what the node waits for.",
        ],
        *node_parameters(default=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self["files"] = []

    def opt_file(self, path: str) -> None:
        """
        Send the whole file PATH as one message (may be given several times).
        """
        self["files"].append(path)

    opt_f = opt_file

    def parseArgs(self, *payloads: str) -> None:
        """
        Keep the payloads given as arguments.
        """
        self["payloads"] = list(payloads)

    def postOptions(self) -> None:
        """
        Check the window and the timeout; read the files.
        """
        self["window"] = whole_number("--window", self["window"], 1)
        if self["timeout"] is not None:
            self["timeout"] = positive_seconds("--timeout", self["timeout"])
        contents = []
        for path in self["files"]:
            try:
                with open(path, "rb") as f:
                    contents.append(f.read())
            except OSError as e:
                raise usage.UsageError(
                    f"--file {path!r} cannot be read: {e.strerror}"
                ) from None
        self["file_payloads"] = contents


WAIT_NOTICE = 5.0
"""
How many seconds without a confirmed delivery before C{isis send} says what
the node waits for.
"""


class _Sender:
    """
    Multicasts payloads from a source, keeping at most C{window} of them
    awaiting delivery: the source hands over a payload for every slot it is
    granted, and a slot is granted again whenever a multicast settles.

    Once a second it checks for progress: with C{timeout}, it gives up when
    no delivery was confirmed for that long; without, it says once what the
    node waits for after L{WAIT_NOTICE} seconds (and again if that changes).
    Failures are told at the end, one line per reason with the count.
    """

    def __init__(
        self,
        clock: IReactorTime,
        proto: ClientProtocol,
        console: Console,
        options: SendOptions,
    ) -> None:
        self._clock = clock
        self._proto = proto
        self._console = console
        self._quiet: bool = options["quiet"]
        self._timeout: float | None = options["timeout"]
        self._answer_timeout: float = options["answer-timeout"]
        self._source: PayloadSource | None = None
        self._outstanding = 0
        self._confirmed = 0
        # reason -> [how many, the first message's number]
        self._failures: dict[str, list[int]] = {}
        self._input_failed = False
        self._ended = False
        self._lost: BaseException | None = None
        self._last_progress = clock.seconds()
        self._checking = False
        self._freed = 0
        self._grant_call: IDelayedCall | None = None
        self._shown_wait: str | None = None
        self._watch = LoopingCall(self._check)
        self._watch.clock = clock
        self.done: Deferred[int] = Deferred()

    def run(self, source: PayloadSource, window: int) -> Deferred[int]:
        self._source = source
        self._proto.when_lost().addCallback(self._connection_lost)
        self._watch.start(1.0, now=False)
        source.start(window)
        return self.done

    def summary(self) -> str:
        """
        How many messages are confirmed, unconfirmed and failed.
        """
        failed = sum(count for count, _ in self._failures.values())
        text = f"{self._confirmed} confirmed, {self._outstanding} unconfirmed"
        return text + (f", {failed} failed" if failed else "")

    def interrupted(self) -> None:
        """
        Ctrl-C: tell what was and was not delivered.
        """
        self._report_failures()
        self._console.error(f"isis send: interrupted; {self.summary()}")

    def send(self, number: int, payload: bytes) -> None:
        if self._lost is not None or self.done.called:
            return
        if not self._outstanding:
            self._last_progress = self._clock.seconds()
        self._outstanding += 1
        self._proto.multicast(payload).addCallbacks(
            self._delivered, self._refused, errbackArgs=(number,)
        ).addCallback(self._settled)

    def send_all(self, items: Sequence[tuple[int, bytes]]) -> None:
        # One Deferred for the lot, not one per message: at tens of
        # thousands a second the per-message Deferreds were most of this
        # command's time.
        if self._lost is not None or self.done.called or not items:
            return
        if not self._outstanding:
            self._last_progress = self._clock.seconds()
        self._outstanding += len(items)
        self._proto.multicast_all([payload for _, payload in items]).addCallbacks(
            self._all_answered,
            self._all_failed,
            callbackArgs=(items,),
            errbackArgs=(items,),
        )

    def _all_answered(
        self,
        results: list[Delivery | Exception],
        items: Sequence[tuple[int, bytes]],
    ) -> None:
        for (number, _), result in zip(items, results, strict=True):
            if isinstance(result, Delivery):
                self._delivered(result)
            else:
                self._refused(Failure(result), number)  # type: ignore[no-untyped-call]
        self._settle(len(items))

    def _all_failed(self, failure: Failure, items: Sequence[tuple[int, bytes]]) -> None:
        for number, _ in items:
            self._refused(failure, number)
        self._settle(len(items))

    def end_of_input(self) -> None:
        self._ended = True
        self._finish_if_done()

    def input_failed(self, error: BaseException) -> None:
        self._console.error(f"isis send: cannot read standard input: {error}")
        self._input_failed = True
        self.end_of_input()

    def _delivered(self, record: Delivery) -> None:
        self._confirmed += 1
        self._last_progress = self._clock.seconds()
        if not self._quiet:
            self._console.out(f"{record.index} {record.sender}@{record.clock}")

    def _refused(self, failure: Failure, number: int) -> None:
        if isinstance(failure.value, ConnectionClosed):
            # Reported once, when the command ends.
            self._connection_lost(failure.value)
            return
        self._last_progress = self._clock.seconds()
        entry = self._failures.setdefault(failure_message(failure), [0, number])
        entry[0] += 1

    def _settled(self, ignored: None) -> None:
        self._settle(1)

    def _settle(self, count: int) -> None:
        self._outstanding -= count
        # A batch's answers settle together: their slots go back in one
        # grant at the end of the turn (one wake-up of a reading thread,
        # not one per message).
        self._freed += count
        if self._grant_call is None:
            self._grant_call = self._clock.callLater(0, self._grant)
        self._finish_if_done()

    def _grant(self) -> None:
        self._grant_call = None
        freed, self._freed = self._freed, 0
        if self._lost is None and self._source is not None and not self.done.called:
            self._source.grant(freed)

    def _connection_lost(self, reason: BaseException) -> None:
        if self._lost is not None or self.done.called:
            return
        self._lost = reason
        if self._source is not None:
            self._source.stop()
        self._finish_if_done()

    def _report_failures(self) -> None:
        failures, self._failures = self._failures, {}
        for reason, (count, first) in failures.items():
            if count == 1:
                self._console.error(f"isis send: message {first}: {reason}")
            else:
                self._console.error(
                    f"isis send: {count} messages failed (the first: message"
                    f" {first}): {reason}"
                )

    def _finish(self, code: int | BaseException) -> None:
        if self._watch.running:
            self._watch.stop()
        if self._grant_call is not None:
            self._grant_call.cancel()
            self._grant_call = None
        if self._source is not None:
            self._source.stop()
        if isinstance(code, BaseException):
            self.done.errback(code)
        else:
            self.done.callback(code)

    def _finish_if_done(self) -> None:
        if self.done.called or self._outstanding:
            return
        if self._lost is not None:
            self._finish(self._lost)
        elif self._ended:
            failed = bool(self._failures) or self._input_failed
            self._report_failures()
            self._finish(EXIT_FAILED if failed else EXIT_OK)

    def _check(self) -> None:
        if self.done.called or self._checking:
            return
        if not self._outstanding:
            self._shown_wait = None
            return
        idle = self._clock.seconds() - self._last_progress
        timed_out = self._timeout is not None and idle >= self._timeout
        if not timed_out and (self._timeout is not None or idle < WAIT_NOTICE):
            return
        self._checking = True
        asked = self._proto.status().addTimeout(self._answer_timeout, self._clock)
        asked.addCallbacks(
            lambda status: waiting_for(read_status(status)),
            lambda failure: "the node does not answer its status request",
        ).addCallback(self._waiting, idle, timed_out)

    def _waiting(self, waiting: str, idle: float, timed_out: bool) -> None:
        self._checking = False
        if self.done.called:
            return
        if timed_out:
            self._report_failures()
            self._console.error(
                f"isis send: no delivery confirmed for {idle:.0f} s; {waiting};"
                f" {self.summary()}"
            )
            self._finish(EXIT_TIMEOUT)
        elif waiting != self._shown_wait:
            self._shown_wait = waiting
            self._console.error(
                f"isis send: no delivery confirmed for {idle:.0f} s; {waiting};"
                f" {self.summary()}; still waiting"
            )


def run_send(
    reactor: IReactorFromThreads,
    proto: ClientProtocol,
    options: SendOptions,
    console: Console,
) -> Deferred[int]:
    """
    C{isis send}: multicast the files and payloads given as arguments, or
    the lines (or NUL-separated parts, with C{-0}) of standard input,
    pipelined.

    @param reactor: The reactor, for handing over payloads read in a thread
        and for timing.
    @param proto: The connection to the node.
    @param options: The parsed C{send} options.
    @param console: Where to read payloads and print results.
    @return: A L{Deferred} that fires with the exit status once every
        message is delivered or has failed (or L{EXIT_TIMEOUT} after
        C{--timeout}), or fails with the connection error if the connection
        is lost.
    """
    sender = _Sender(IReactorTime(reactor), proto, console, options)
    console.on_interrupt = sender.interrupted
    payloads: list[str] = options["payloads"]
    files: list[bytes] = options["file_payloads"]
    source: PayloadSource
    if files or (payloads and payloads != ["-"]):
        source = ListSource(files + [os.fsencode(p) for p in payloads], sender)
    else:
        separator = b"\0" if options["null"] else b"\n"
        if console.stdin.isatty():
            what = (
                "NUL-separated messages" if options["null"] else "one message per line"
            )
            console.error(f"isis send: {what}; end with Ctrl-D")
        source = StreamSource(reactor, console.stdin, sender, separator)
    return sender.run(source, options["window"])
