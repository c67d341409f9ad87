"""
The C{isis} command: talk to a running node through its client API.

    isis [--node ENDPOINT] send [--file PATH] [-0] [PAYLOAD ...]  multicast
    isis [--node ENDPOINT] tail [--from N] ...   print deliveries as they happen
    isis [--node ENDPOINT] status [--json]       show the node's state
    isis check LOG ...                           check delivery logs

The global options (C{--node}, C{--token-file}, C{--answer-timeout}) may
also follow the command.  Every node command is a function C{run_NAME(reactor,
proto, options, console)} returning a L{Deferred} that fires with the exit
status, so that it can be tested without a process; L{run} connects and
dispatches, L{main} parses the command line and runs the reactor.

Exit statuses: 0 on success, 1 when messages could not be sent (or the
connection was lost), 2 for a usage mistake, a node that cannot be reached,
or a request the node refused, 3 when the node did not answer in time (or
no delivery was confirmed within C{isis send --timeout}), 130 on Ctrl-C.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import IO, Any, ClassVar, NoReturn, Protocol, TextIO

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import (
    ConnectError,
    ConnectionClosed,
    ConnectionRefusedError,
    DNSLookupError,
    TimeoutError,
)
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorCore,
    IReactorFromThreads,
    IReactorTime,
)
from twisted.internet.task import LoopingCall, react
from twisted.protocols import amp
from twisted.python import usage
from twisted.python.failure import Failure

from isis_twisted.api.client import (
    ClientAPIError,
    ClientProtocol,
    HistoryGoneError,
    connect,
)
from isis_twisted.app.forcing import run_force_view
from isis_twisted.core import checker
from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.net.certs import CertificateError, write_group_certs
from isis_twisted.net.options import dial_description, whole_number

__all__ = [
    "DEFAULT_ANSWER_TIMEOUT",
    "DEFAULT_NODE",
    "DEFAULT_WINDOW",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "CheckOptions",
    "Console",
    "IsisOptions",
    "SendOptions",
    "StatusOptions",
    "TailOptions",
    "format_status",
    "main",
    "parse",
    "read_status",
    "run",
    "run_send",
    "run_status",
    "run_tail",
    "status_lines",
    "tail_line",
    "waiting_for",
]

DEFAULT_NODE = "tcp:127.0.0.1:9101"
"""
The client API endpoint C{isis} connects to unless told otherwise.
"""

DEFAULT_WINDOW = 512
"""
How many multicasts C{isis send} lets await their delivery at once.
"""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3
"""
Exit statuses: success; messages not sent or connection lost; a usage
mistake, an unreachable node or a refused request; no answer (or, for
C{isis send --timeout}, no confirmed delivery) in time.  Ctrl-C exits 130.
"""

DEFAULT_ANSWER_TIMEOUT = 10.0
"""
How many seconds C{isis} waits for a connection to the node, and for the
node's answer to a request, unless told otherwise.
"""


# -- options --------------------------------------------------------------


_Table = list[list[Any]]


class _Options(usage.Options):
    def __init__(self) -> None:
        # usage.Options.__init__ is unannotated.
        super().__init__()  # type: ignore[no-untyped-call]

    def opt_version(self) -> NoReturn:
        """
        Print the version and exit.
        """
        try:
            version = metadata.version("isis-twisted")
        except metadata.PackageNotFoundError:
            version = "(not installed)"
        print(f"isis {version}")
        raise SystemExit(0)


def _seconds(option: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise usage.UsageError(f"{option} must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise usage.UsageError(f"{option} must be more than 0 seconds")
    return value


def _node_parameters(default: bool) -> _Table:
    # The global options, also accepted after the command (isis send --node
    # X): there they default to None, so that only those given override.
    return [
        [
            "node",
            "n",
            DEFAULT_NODE if default else None,
            "The node's client API: a client endpoint description"
            " (tcp:HOST:PORT, unix:path=PATH, ...) or a port on 127.0.0.1.",
        ],
        [
            "token-file",
            "t",
            None,
            "A file holding the node's client token, for a node started with"
            " --client-token-file.",
        ],
        [
            "answer-timeout",
            None,
            str(DEFAULT_ANSWER_TIMEOUT) if default else None,
            "How many seconds to wait for the connection and for each answer"
            " of the node.",
        ],
    ]


_GLOBALS = ("node", "token-file", "answer-timeout")


class SendOptions(_Options):
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
    optFlags: ClassVar[_Table] = [
        ["quiet", "q", "Print nothing for delivered messages."],
        ["null", "0", "Standard input holds messages ended by NUL bytes."],
    ]
    optParameters: ClassVar[_Table] = [
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
        *_node_parameters(default=False),
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
            self["timeout"] = _seconds("--timeout", self["timeout"])
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


class TailOptions(_Options):
    """
    Options of C{isis tail}.
    """

    synopsis = "[--from INDEX] [--count K] [--json]"
    longdesc = (
        "Print the node's deliveries as they happen, one per line:"
        " 'INDEX SENDER@CLOCK PAYLOAD', the payload as text (or as a Python"
        " bytes literal when it is not printable UTF-8), and each view change"
        " where it falls: '-- view 1: a, b (from index 81)'.  With --json,"
        " print the JSON lines that 'isis check' reads."
    )
    optFlags: ClassVar[_Table] = [
        ["json", "j", "Print JSON lines, the delivery log format."]
    ]
    optParameters: ClassVar[_Table] = [
        ["since", "s", None, "Start with the held deliveries from index N on."],
        ["count", "c", None, "Stop after K deliveries (view changes do not count)."],
        *_node_parameters(default=False),
    ]

    def opt_from(self, index: str) -> None:
        """
        Start with the held deliveries from INDEX on (the same as --since).
        """
        self["since"] = index

    def postOptions(self) -> None:
        """
        Check the numbers.
        """
        if self["since"] is not None:
            self["since"] = whole_number("--since", self["since"], 1)
        if self["count"] is not None:
            self["count"] = whole_number("--count", self["count"], 1)


class StatusOptions(_Options):
    """
    Options of C{isis status}.
    """

    synopsis = "[--json]"
    longdesc = (
        "Show the node's state, starting with what, if anything, holds up delivery"
        " (a member out of the group, no majority, a view change under way, or"
        " the members the oldest message waits for), then its view, suspects"
        " and view changes."
    )
    optFlags: ClassVar[_Table] = [["json", "j", "Print the status as JSON."]]
    optParameters: ClassVar[_Table] = _node_parameters(default=False)


class ForceViewOptions(_Options):
    """
    Options of C{isis force-view}.
    """

    synopsis = "--yes-i-know [--without MEMBER,MEMBER...]"
    longdesc = (
        "Close this member's blocked view without the members that are gone for"
        " good, when most of the view is lost and the rest cannot go on. Read"
        " 'Losing the majority' in docs/operating.md first."
    )
    optFlags: ClassVar[_Table] = [
        ["yes-i-know", None, "Confirm that the members left out are gone for good."],
    ]
    optParameters: ClassVar[_Table] = [
        *_node_parameters(default=False),
        [
            "without",
            "w",
            None,
            "The members to leave out, comma-separated (default: every member"
            " this one suspects).",
        ],
    ]

    def postOptions(self) -> None:
        """
        Split C{--without} into names.
        """
        without = self["without"]
        if without is not None:
            names = [n.strip() for n in without.split(",") if n.strip()]
            if not names:
                raise usage.UsageError("--without needs at least one member name")
            self["without"] = names


class CheckOptions(_Options):
    """
    Options of C{isis check}.
    """

    synopsis = "[NAME=]LOG.jsonl ..."
    longdesc = (
        "Check one delivery log per node (as 'isis tail --json' and jsonl:"
        " write them) for total order, agreement, integrity, FIFO, causality"
        " and gap-free indices; when a log holds view changes, for view"
        " agreement, primary component, view synchrony and uniformity"
        " instead of agreement, so that a member that crashed may stop"
        " early.  Exits 0 when every guarantee holds, 1 when one is violated."
    )

    def parseArgs(self, *logs: str) -> None:
        """
        Keep the log arguments.
        """
        if not logs:
            raise usage.UsageError("give at least one delivery log")
        self["logs"] = list(logs)


class CertsOptions(_Options):
    """
    Options of C{isis certs}.
    """

    synopsis = "--dir DIR NAME ..."
    longdesc = (
        "Create a CA and one certificate per member for mutual TLS"
        " (twistd isis --tls-dir DIR): DIR/ca.pem for every member,"
        " DIR/NAME.pem for member NAME, and DIR/ca.key.pem, the CA's key, to"
        " keep off the members.  Nothing is overwritten."
    )
    optParameters: ClassVar[_Table] = [
        ["dir", "d", None, "Where to write the files (required)."]
    ]

    def parseArgs(self, *names: str) -> None:
        """
        Keep the member names.
        """
        if not names:
            raise usage.UsageError("give the members' names")
        if len(set(names)) != len(names):
            raise usage.UsageError("a member name is given twice")
        self["names"] = list(names)

    def postOptions(self) -> None:
        """
        Require C{--dir}.
        """
        if not self["dir"]:
            raise usage.UsageError("--dir is required")


class IsisOptions(_Options):
    """
    The C{isis} command line: global options and one subcommand.
    """

    longdesc = (
        "Talk to a running isis node through its client API.  Run"
        " 'isis COMMAND --help' for a command's options."
    )
    optParameters: ClassVar[_Table] = _node_parameters(default=True)
    subCommands: ClassVar[_Table] = [
        ["send", None, SendOptions, "Multicast messages."],
        ["tail", None, TailOptions, "Print deliveries as they happen."],
        ["status", None, StatusOptions, "Show the node's state."],
        [
            "force-view",
            None,
            ForceViewOptions,
            "Go on without members gone for good, when most of the view is lost.",
        ],
        ["check", None, CheckOptions, "Check delivery logs."],
        ["certs", None, CertsOptions, "Create TLS certificates for a group."],
    ]

    def getSynopsis(self) -> str:
        """
        The usage line; subcommands' usage lines start with it.
        """
        if self.subCommand is None:
            return "Usage: isis [--node ENDPOINT] COMMAND [OPTIONS] [ARGUMENTS]"
        return "Usage: isis [--node ENDPOINT]"

    def postOptions(self) -> None:
        """
        Require a command; accept a bare port as the node.
        """
        if self.subCommand is None:
            names = ", ".join(entry[0] for entry in self.subCommands)
            raise usage.UsageError(f"no command given; choose one of {names}")
        for name in _GLOBALS:
            given = self.subOptions.get(name)
            if given is not None:
                self[name] = given
        self["answer-timeout"] = _seconds("--answer-timeout", self["answer-timeout"])
        # The commands wait for answers this long.
        self.subOptions["answer-timeout"] = self["answer-timeout"]
        try:
            self["node"] = dial_description(self["node"])
        except ValueError as e:
            raise usage.UsageError(f"--node {e}") from None
        self["token"] = None
        if self["token-file"] is not None:
            try:
                with open(self["token-file"], "rb") as f:
                    self["token"] = f.read().strip()
            except OSError as e:
                raise usage.UsageError(
                    f"--token-file {self['token-file']!r} cannot be read: {e.strerror}"
                ) from None


def parse(argv: Sequence[str]) -> IsisOptions:
    """
    Parse an C{isis} command line.

    @param argv: The arguments, without the program name.
    @raise usage.UsageError: For a mistake; the message says which, and
        where to find help.
    """
    options = IsisOptions()
    try:
        options.parseOptions(list(argv))  # type: ignore[no-untyped-call]
    except usage.UsageError as e:
        command = "isis" if options.subCommand is None else f"isis {options.subCommand}"
        raise usage.UsageError(f"{e} (see '{command} --help')") from None
    return options


# -- input and output -----------------------------------------------------


@attrs.define
class Console:
    """
    Where a command reads its input and writes its output.

    @ivar stdin: Standard input, in binary.
    @ivar stdout: Standard output.
    @ivar stderr: Standard error, for one-line messages.
    @ivar stdout_closed: Whether standard output was closed by its reader (a
        broken pipe); output to it is dropped from then on.
    @ivar interrupted: Whether the command is being interrupted (Ctrl-C);
        messages about what that breaks are dropped.
    @ivar on_interrupt: What the command says on Ctrl-C, if anything.
    """

    stdin: IO[bytes]
    stdout: TextIO
    stderr: TextIO
    stdout_closed: bool = False
    interrupted: bool = False
    on_interrupt: Callable[[], None] | None = None

    def out(self, line: str, flush: bool = False) -> bool:
        """
        Write one line to standard output.

        @param flush: Whether to flush at once, for output that is watched
            live.
        @return: Whether standard output is still open.
        """
        if self.stdout_closed:
            return False
        try:
            self.stdout.write(line + "\n")
            if flush:
                self.stdout.flush()
        except BrokenPipeError:
            self.stdout_closed = True
        return not self.stdout_closed

    def error(self, message: str) -> None:
        """
        Write a one-line message to standard error.
        """
        if self.interrupted:
            return
        self.stderr.write(message + "\n")
        self.stderr.flush()


# -- isis send ------------------------------------------------------------


class _Source(Protocol):
    def start(self, window: int) -> None: ...

    def grant(self, slots: int) -> None: ...

    def stop(self) -> None: ...


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
        self._source: _Source | None = None
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

    def run(self, source: _Source, window: int) -> Deferred[int]:
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
        entry = self._failures.setdefault(_message(failure), [0, number])
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


class _ListSource:
    """
    Payloads from a list (the command line's arguments and files).
    """

    def __init__(self, payloads: Sequence[bytes], sender: _Sender) -> None:
        self._items: Iterator[tuple[int, bytes]] = enumerate(payloads, 1)
        self._sender = sender
        self._credit = 0
        self._busy = False
        self._over = False

    def start(self, window: int) -> None:
        self._credit = window
        self._pump()

    def grant(self, slots: int) -> None:
        self._credit += slots
        self._pump()

    def stop(self) -> None:
        self._over = True

    def _pump(self) -> None:
        # A multicast may settle while it is being sent (the connection being
        # gone), granting from inside this loop: the outer loop takes the
        # credit rather than recursing once per payload.
        if self._busy:
            return
        self._busy = True
        try:
            while self._credit > 0 and not self._over:
                item = next(self._items, None)
                if item is None:
                    self._over = True
                    self._sender.end_of_input()
                    break
                self._credit -= 1
                self._sender.send(*item)
        finally:
            self._busy = False


class _StreamSource:
    """
    Payloads from a stream, each ended by C{separator} (the last may lack
    it), read in a thread of its own.

    Reading in a thread keeps the reactor free to receive deliveries while
    the stream blocks (a terminal, a slow pipe).  The thread takes a payload
    only when it holds a slot of the window, so input is read at most
    C{window} payloads (and one chunk) ahead of its delivery, whatever its
    size.  It hands over every payload of a chunk it has slots for in one
    call, rather than waking the reactor once per payload.

    A stream with a file descriptor is read with L{os.read}: a daemon thread
    blocked inside the stream's buffered reader would hold its lock, and the
    interpreter aborts when it finds that lock taken at exit.
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        stream: IO[bytes],
        sender: _Sender,
        separator: bytes,
    ) -> None:
        self._reactor = reactor
        self._read_chunk = _chunk_reader(stream)
        self._sender = sender
        self._separator = separator
        self._slots = threading.Semaphore(0)
        self._stopped = threading.Event()

    def start(self, window: int) -> None:
        self._slots.release(window)
        threading.Thread(
            target=self._run, name="isis send: standard input", daemon=True
        ).start()

    def grant(self, slots: int) -> None:
        self._slots.release(slots)

    def stop(self) -> None:
        self._stopped.set()
        self._slots.release()

    def _run(self) -> None:
        call = self._reactor.callFromThread
        batch: list[tuple[int, bytes]] = []
        number = 0

        def hand_over() -> None:
            if batch:
                call(self._sender.send_all, list(batch))
                batch.clear()

        def take(payload: bytes) -> bool:
            nonlocal number
            if not self._slots.acquire(blocking=False):
                hand_over()
                self._slots.acquire()
            if self._stopped.is_set():
                return False
            number += 1
            batch.append((number, payload))
            return True

        # Parts of a payload not yet ended, joined once it ends: one payload
        # may span many chunks (a 10 MiB line).
        partial: list[bytes] = []
        while True:
            try:
                chunk = self._read_chunk()
            except (OSError, ValueError) as e:
                hand_over()
                call(self._sender.input_failed, e)
                return
            if not chunk:
                if partial and not take(b"".join(partial)):
                    return
                hand_over()
                call(self._sender.end_of_input)
                return
            pieces = chunk.split(self._separator)
            if len(pieces) == 1:
                partial.append(chunk)
                continue
            partial.append(pieces[0])
            pieces[0] = b"".join(partial)
            last = pieces.pop()
            partial = [last] if last else []
            for payload in pieces:
                if not take(payload):
                    return
            hand_over()


_CHUNK = 64 * 1024


def _chunk_reader(stream: IO[bytes]) -> Callable[[], bytes]:
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return lambda: stream.read(_CHUNK)
    return lambda: os.read(fd, _CHUNK)


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
    source: _Source
    if files or (payloads and payloads != ["-"]):
        source = _ListSource(files + [os.fsencode(p) for p in payloads], sender)
    else:
        separator = b"\0" if options["null"] else b"\n"
        if console.stdin.isatty():
            what = (
                "NUL-separated messages" if options["null"] else "one message per line"
            )
            console.error(f"isis send: {what}; end with Ctrl-D")
        source = _StreamSource(reactor, console.stdin, sender, separator)
    return sender.run(source, options["window"])


# -- isis tail ------------------------------------------------------------


def tail_line(record: Record) -> str:
    """
    One record as C{isis tail} prints it: a delivery as C{INDEX
    SENDER@CLOCK PAYLOAD}, a view change as C{-- view 1: a, b (from index
    81)} (the view's id, its members, and the index of its first delivery).

    The payload is printed as text when it is UTF-8 with nothing unprintable
    in it (so that a line stays one line), and as a Python bytes literal
    otherwise.
    """
    if isinstance(record, ViewChange):
        members = ", ".join(record.members) if record.members else "(none)"
        return f"-- view {record.view}: {members} (from index {record.index})"
    try:
        text = record.payload.decode("utf-8")
    except UnicodeDecodeError:
        text = repr(record.payload)
    else:
        if not text.isprintable():
            text = repr(record.payload)
    return f"{record.index} {record.sender}@{record.clock} {text}"


def run_tail(
    reactor: object, proto: ClientProtocol, options: TailOptions, console: Console
) -> Deferred[int]:
    """
    C{isis tail}: print deliveries, and the view changes among them, as
    they happen.

    @param reactor: Unused; there for a signature common to all commands.
    @param proto: The connection to the node.
    @param options: The parsed C{tail} options.
    @param console: Where to print.
    @return: A L{Deferred} that fires with the exit status after C{--count}
        deliveries (or once standard output is closed), or fails with the
        node's refusal or the connection error.
    """
    count: int | None = options["count"]
    as_json: bool = options["json"]
    finished: Deferred[int] = Deferred()
    seen = 0

    def show(record: Record) -> None:
        nonlocal seen
        if finished.called:
            return
        line = checker.record_to_json(record) if as_json else tail_line(record)
        if not console.out(line, flush=True):
            finished.callback(EXIT_OK)
            return
        if isinstance(record, ViewChange):
            return
        seen += 1
        if count is not None and seen >= count:
            finished.callback(EXIT_OK)

    def failed(reason: Failure | BaseException) -> None:
        if not finished.called:
            finished.errback(reason)

    def subscribed(first: int) -> None:
        if proto.passes_views is False:
            console.error(
                "isis tail: the node does not pass view changes (it predates"
                " them); only its deliveries follow"
            )

    proto.subscribe(options["since"], show, views=True).addTimeout(
        options["answer-timeout"], IReactorTime(reactor)
    ).addCallbacks(subscribed, failed)
    proto.when_lost().addCallback(failed)
    return finished


# -- isis status ----------------------------------------------------------


@attrs.frozen
class StatusView:
    """
    What C{isis} reads from a node's status.

    @ivar member: The member's name.
    @ivar waiting_for: The members the oldest undelivered message waits
        for.
    @ivar oldest_age: How many seconds that message has waited, if known.
    @ivar silent: The members not heard from for a while.
    @ivar disconnected: The peers with no connection either way (of the
        view's members, when the node reports its view).
    @ivar queue: How many messages wait to be delivered.
    @ivar view: The id of the member's view, if the node reports one.
    @ivar view_members: The view's members, in rank order.
    @ivar state: C{normal}, C{flushing}, C{blocked} or C{removed}, if the
        node reports it.
    @ivar removed_because: Why the member is out of the group, once it is.
    @ivar suspects: The members suspected, each with the seconds this
        member has suspected it, or L{None} for one only others suspect.
    @ivar view_changes: How many view changes the member has installed.
    @ivar last_view_change: How many seconds the last one took.
    @ivar stuck: The delivery handlers that cannot keep a record, longest
        stuck first: each handler, the record's index, why, and for how
        many seconds.
    """

    member: str
    waiting_for: list[str]
    oldest_age: float | None
    silent: list[str]
    disconnected: list[str]
    queue: int
    view: int | None = None
    view_members: list[str] = attrs.Factory(list)
    state: str | None = None
    removed_because: str | None = None
    suspects: dict[str, float | None] = attrs.Factory(dict)
    view_changes: int | None = None
    last_view_change: float | None = None
    stuck: list[tuple[str, int, str, float]] = attrs.Factory(list)


def _stuck_handlers(value: object) -> list[tuple[str, int, str, float]]:
    if not isinstance(value, list):
        return []
    found = []
    for item in value:
        if isinstance(item, Mapping):
            seconds = _seconds_or_none(item.get("stuck_s"))
            index = item.get("index")
            found.append(
                (
                    str(item.get("handler", "?")),
                    index if type(index) is int else 0,
                    str(item.get("reason", "")),
                    seconds if seconds is not None else 0.0,
                )
            )
    return found


def _names(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def read_status(status: Mapping[str, object]) -> StatusView:
    """
    Read what C{isis} needs from a node's status: the one place that knows
    the status's shape.
    """
    oldest = status.get("oldest_undelivered")
    waiting: list[str] = []
    age: float | None = None
    if isinstance(oldest, Mapping):
        waiting = _names(oldest.get("waiting_for"))
        found = oldest.get("age_s")
        age = float(found) if isinstance(found, int | float) else None
    peers = status.get("peers")
    disconnected = []
    if isinstance(peers, Mapping):
        disconnected = [
            str(name)
            for name, link in peers.items()
            if isinstance(link, Mapping)
            and not link.get("connected_out")
            and not link.get("connected_in")
        ]
    queue = status.get("queue")
    suspects: dict[str, float | None] = {}
    found_suspects = status.get("suspects")
    if isinstance(found_suspects, Mapping):
        for name, seconds in found_suspects.items():
            suspects[str(name)] = _seconds_or_none(seconds)
    view_members = _names(status.get("view_members"))
    if view_members:
        # A peer left out of the view holds nothing up, connected or not.
        disconnected = [name for name in disconnected if name in view_members]
    view = status.get("view")
    state = status.get("state")
    why = status.get("removed_because")
    changes = status.get("view_changes")
    return StatusView(
        member=str(status.get("member", "?")),
        waiting_for=waiting,
        oldest_age=age,
        silent=_names(status.get("silent_members")),
        disconnected=disconnected,
        queue=queue if isinstance(queue, int) else 0,
        view=view if type(view) is int else None,
        view_members=view_members,
        state=state if isinstance(state, str) else None,
        removed_because=why if isinstance(why, str) else None,
        suspects=suspects,
        view_changes=changes if type(changes) is int else None,
        last_view_change=_seconds_or_none(status.get("last_view_change_s")),
        stuck=_stuck_handlers(status.get("stuck_handlers")),
    )


def _seconds_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _suspected(view: StatusView) -> str:
    """
    The suspects, each with for how long: C{c for 1.2 s, d (by others)}.
    """
    return ", ".join(
        f"{name} for {seconds:g} s" if seconds is not None else f"{name} (by others)"
        for name, seconds in sorted(view.suspects.items())
    )


def waiting_for(view: StatusView) -> str:
    """
    In a few words, what holds up delivery at the node: first a membership
    state that stops it (out of the group, no majority, a view being
    closed), then the members the oldest message waits for.  A delivery
    handler that cannot keep a record comes before all of them: it holds
    up this member whatever the group does.
    """
    if view.stuck:
        handler, index, reason, seconds = view.stuck[0]
        more = f" (and {len(view.stuck) - 1} more)" if len(view.stuck) > 1 else ""
        return (
            f"delivery handler {handler}{more} cannot keep record {index}"
            f" ({reason}) for {seconds:g} s; nothing from there is handed out"
        )
    if view.state == "removed":
        why = f": {view.removed_because}" if view.removed_because else ""
        return (
            f"this member is out of the group{why}; it delivers nothing more"
            " (the others went on without it)"
        )
    where = f"view {view.view}" if view.view is not None else "the view"
    if view.view_members:
        where += f" ({', '.join(view.view_members)})"
    if view.state == "blocked":
        suspects = f"; suspected: {_suspected(view)}" if view.suspects else ""
        return (
            f"no majority of {where} is reachable{suspects}; nothing new is"
            " delivered until enough of them are back"
        )
    if view.state == "flushing":
        without = f" without {_suspected(view)}" if view.suspects else ""
        return (
            f"{where} is being closed (a view change{without}); delivery goes on"
            " in the next view"
        )
    if view.waiting_for:
        text = f"the node waits for {', '.join(view.waiting_for)}"
        down = [name for name in view.waiting_for if name in view.disconnected]
        if down:
            text += f" (not connected: {', '.join(down)})"
        elif silent := [name for name in view.waiting_for if name in view.silent]:
            text += f" (silent: {', '.join(silent)})"
        return text
    if view.disconnected:
        return f"the node is not connected to {', '.join(view.disconnected)}"
    return "the node waits for no member"


def _scalar(value: object) -> str:
    if value is None:
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_scalar(item) for item in value) if value else "(none)"
    return str(value)


def format_status(status: Mapping[str, object], depth: int = 0) -> list[str]:
    """
    The node's status for people: one C{key: value} line per entry, keys
    with spaces for underscores, nested mappings indented under their key,
    lists comma-separated (or one C{-} item per line when they hold
    mappings).  Any key is shown, so that the summary keeps up with what the
    node reports.

    @param status: The status, as decoded from JSON.
    @param depth: How deep the entries are nested (for indentation).
    @return: The lines.
    """
    pad = "  " * depth
    lines: list[str] = []
    for key, value in status.items():
        label = f"{pad}{str(key).replace('_', ' ')}:"
        if isinstance(value, Mapping):
            if value:
                lines.append(label)
                lines.extend(format_status(value, depth + 1))
            else:
                lines.append(f"{label} (none)")
        elif isinstance(value, list) and any(
            isinstance(item, Mapping | list) for item in value
        ):
            lines.append(label)
            for item in value:
                if isinstance(item, Mapping):
                    lines.append(f"{pad}  -")
                    lines.extend(format_status(item, depth + 2))
                else:
                    lines.append(f"{pad}  - {_scalar(item)}")
        else:
            lines.append(f"{label} {_scalar(value)}")
    return lines


# The status keys that status_lines says in its summary lines; the rest of
# its output leaves them out rather than say them twice.
_SUMMARISED = (
    "view",
    "view_members",
    "state",
    "removed_because",
    "refused_because",
    "suspects",
    "view_changes",
    "last_view_change_s",
)


def status_lines(status: Mapping[str, object]) -> list[str]:
    """
    The node's status as C{isis status} prints it: first what holds up
    delivery (C{blocked: ...}, or C{blocked: no}), then, for a member that
    can never be let in, why (C{refused: ...}), then the view (id,
    members and state), the suspects with how long each has been
    suspected, the view changes and how long the last took, then every
    other entry as L{format_status} shows it.

    @param status: The status, as decoded from JSON.
    @return: The lines.
    """
    view = read_status(status)
    lines = []
    stopped = view.state in ("removed", "blocked", "flushing") or bool(view.stuck)
    if stopped or view.waiting_for or view.disconnected:
        age = (
            f", its oldest message for {view.oldest_age:g} s"
            if view.oldest_age is not None and not stopped
            else ""
        )
        lines.append(f"blocked: {waiting_for(view)}{age}")
    else:
        lines.append("blocked: no")
    refused = status.get("refused_because")
    if isinstance(refused, str):
        lines.append(f"refused: {refused}")
    if view.view is not None:
        members = f" of {', '.join(view.view_members)}" if view.view_members else ""
        state = f" ({view.state})" if view.state is not None else ""
        lines.append(f"view: {view.view}{members}{state}")
    elif view.state is not None:
        lines.append(f"state: {view.state}")
    if view.removed_because is not None and view.state != "removed":
        lines.append(f"removed because: {view.removed_because}")
    if "suspects" in status:
        lines.append(f"suspects: {_suspected(view) or '(none)'}")
    if view.view_changes is not None:
        last = (
            f", the last took {view.last_view_change * 1000:.0f} ms"
            if view.last_view_change is not None and view.view_changes
            else ""
        )
        lines.append(f"view changes: {view.view_changes}{last}")
    rest = {k: v for k, v in status.items() if k not in _SUMMARISED}
    lines.extend(format_status(rest))
    return lines


def run_status(
    reactor: object, proto: ClientProtocol, options: StatusOptions, console: Console
) -> Deferred[int]:
    """
    C{isis status}: print the node's status.

    @param reactor: Unused; there for a signature common to all commands.
    @param proto: The connection to the node.
    @param options: The parsed C{status} options.
    @param console: Where to print.
    @return: A L{Deferred} that fires with the exit status, or fails with
        the node's refusal or the connection error.
    """

    def show(status: dict[str, object]) -> int:
        if options["json"]:
            console.out(json.dumps(status, indent=2, ensure_ascii=False))
        else:
            for line in status_lines(status):
                console.out(line)
        return EXIT_OK

    return (
        proto.status()
        .addTimeout(options["answer-timeout"], IReactorTime(reactor))
        .addCallback(show)
    )


# -- running a command ----------------------------------------------------


_Command = Callable[[Any, ClientProtocol, Any, Console], Deferred[int]]

_COMMANDS: dict[str, _Command] = {
    "send": run_send,
    "tail": run_tail,
    "status": run_status,
    "force-view": run_force_view,
}


def _message(failure: Failure) -> str:
    return str(failure.value) or type(failure.value).__name__


def _unreachable(failure: Failure) -> str:
    error = failure.value
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError | defer.TimeoutError):
        return "timed out"
    if isinstance(error, DNSLookupError):
        return "cannot resolve the host name"
    if isinstance(error, ConnectError) and isinstance(error.osError, int):
        reason = os.strerror(error.osError)
        return reason[:1].lower() + reason[1:]
    return _message(failure)


def run(reactor: IReactorCore, options: IsisOptions, console: Console) -> Deferred[int]:
    """
    Carry out a parsed node command: connect, run it, close the connection.

    Every error ends as one line on C{console.stderr} and an exit status.

    @param reactor: The reactor.
    @param options: The parsed command line; its command must not be
        C{check}, which needs no node.
    @param console: Where the command reads and writes.
    @return: A L{Deferred} that fires with the exit status (it never fails).
    """
    name = options.subCommand
    assert name is not None
    command = _COMMANDS[name]
    node: str = options["node"]
    wait: float = options["answer-timeout"]
    clock = IReactorTime(reactor)
    try:
        connecting = connect(reactor, node).addTimeout(wait, clock)
    except ValueError as e:
        console.error(f"isis: --node: {e}")
        return succeed(EXIT_USAGE)

    def unreachable(failure: Failure) -> int:
        console.error(f"isis: cannot reach the node at {node}: {_unreachable(failure)}")
        return EXIT_USAGE

    def connected(proto: ClientProtocol) -> Deferred[int]:
        def failed(failure: Failure) -> int:
            if isinstance(failure.value, defer.TimeoutError):
                console.error(
                    f"isis {name}: the node at {node} did not answer within {wait:g} s"
                )
                if proto.transport is not None:
                    proto.transport.abortConnection()  # type: ignore[attr-defined]
                return EXIT_TIMEOUT
            if isinstance(failure.value, ConnectionClosed):
                hint = (
                    ""
                    if proto.heard_from_node
                    else " before it answered anything (is that its peer port?)"
                )
                console.error(
                    f"isis {name}: lost the connection to the node at {node}{hint}"
                )
                return EXIT_FAILED
            if isinstance(
                failure.value, ClientAPIError | HistoryGoneError | amp.AmpError
            ):
                console.error(f"isis {name}: {_message(failure)}")
                return EXIT_USAGE
            return unexpected(failure)

        def close(code: int) -> Deferred[int]:
            return proto.close().addCallback(lambda ignored: code)

        def run_command(_: object = None) -> Deferred[int]:
            return command(
                IReactorFromThreads(reactor), proto, options.subOptions, console
            )

        token: bytes | None = options["token"]
        ran = (
            proto.authenticate(token).addTimeout(wait, clock).addCallback(run_command)
            if token is not None
            else run_command()
        )
        return ran.addErrback(failed).addCallback(close)

    def unexpected(failure: Failure) -> int:
        console.error(f"isis {name}: unexpected error: {_message(failure)}")
        return EXIT_FAILED

    return connecting.addCallbacks(connected, unreachable).addErrback(unexpected)


def _react_main(reactor: IReactorCore, options: IsisOptions) -> Deferred[None]:
    console = Console(sys.stdin.buffer, sys.stdout, sys.stderr)
    outcome: Deferred[int] = Deferred()

    def settle(code: int) -> None:
        if not outcome.called:
            outcome.callback(code)

    def interrupted() -> None:
        # The reactor is stopping (Ctrl-C) before the command finished: a
        # tail ends this way, anything else did not complete.
        if not outcome.called:
            if console.on_interrupt is not None:
                console.on_interrupt()
            console.interrupted = True
            settle(EXIT_OK if options.subCommand == "tail" else 130)

    reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    run(reactor, options, console).addCallback(settle)

    def exit_with(code: int) -> None:
        if code != EXIT_OK:
            raise SystemExit(code)

    return outcome.addCallback(exit_with)


def main(argv: list[str] | None = None) -> None:
    """
    The C{isis} console script.

    @param argv: The arguments, without the program name; L{sys.argv} by
        default.
    @raise SystemExit: Always, with the exit status.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        options = parse(args)
    except usage.UsageError as e:
        sys.stderr.write(f"isis: {e}\n")
        raise SystemExit(EXIT_USAGE) from None
    if options.subCommand == "check":
        raise SystemExit(checker.main(options.subOptions["logs"]))
    if options.subCommand == "certs":
        raise SystemExit(_certs(options.subOptions))
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Payloads printed by tail may hold anything; never fail on them.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        react(_react_main, [options])
    finally:
        _settle_stdout()


def _certs(options: CertsOptions) -> int:
    try:
        written = write_group_certs(options["dir"], options["names"])
    except CertificateError as e:
        sys.stderr.write(f"isis certs: {e}\n")
        return EXIT_USAGE
    except ImportError:
        sys.stderr.write(
            "isis certs: needs Twisted's TLS support: pip install 'isis-twisted[tls]'\n"
        )
        return EXIT_USAGE
    for path in written:
        print(path)
    return EXIT_OK


def _settle_stdout() -> None:
    # A reader that went away (isis tail | head) would make the interpreter
    # complain at exit while flushing; point stdout at /dev/null instead.
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    main()
