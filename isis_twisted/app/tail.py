"""
C{isis tail}: print a node's deliveries, and the view changes among them,
as they happen.
"""

from __future__ import annotations

from typing import ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from isis_twisted.api.client import ClientProtocol
from isis_twisted.app.clibase import (
    EXIT_OK,
    CommandOptions,
    Console,
    OptionTable,
    node_parameters,
)
from isis_twisted.core import checker
from isis_twisted.core.engine import Record, ViewChange
from isis_twisted.net.options import whole_number

__all__ = ["TailOptions", "run_tail", "tail_line"]


class TailOptions(CommandOptions):
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
    optFlags: ClassVar[OptionTable] = [
        ["json", "j", "Print JSON lines, the delivery log format."]
    ]
    optParameters: ClassVar[OptionTable] = [
        ["since", "s", None, "Start with the held deliveries from index N on."],
        ["count", "c", None, "Stop after K deliveries (view changes do not count)."],
        *node_parameters(default=False),
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
