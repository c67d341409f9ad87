"""
C{isis force-view}: the operator's way out when most of a view is gone for
good and the members left are blocked.

The command prints what forcing a view risks and, only with
C{--yes-i-know}, asks the node to close its view without the members that
are gone (L{isis_twisted.net.node.MulticastNode.force_view}).
"""

from __future__ import annotations

from typing import ClassVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python import usage

from isis_twisted.api.client import ClientProtocol
from isis_twisted.app.clibase import (
    CommandOptions,
    Console,
    OptionTable,
    node_parameters,
)

WARNING = (
    "Forcing a view change waives the majority rule for one view change. It"
    " is safe only if the members left out are gone for good (crashed, their"
    " machines lost). If they are alive on the other side of a partition and"
    " hold a majority there, they may go on too, and there are two groups"
    " that deliver different messages. Nothing any member delivered is lost:"
    " a message is delivered only once every member holds it. Messages"
    " multicast but held only by the members left out are lost."
)
"""
What C{isis force-view} prints before it does anything.
"""


EXIT_NOT_CONFIRMED = 4
"""
C{isis force-view} without C{--yes-i-know}: the warning was printed and
nothing was done.
"""


class ForceViewOptions(CommandOptions):
    """
    Options of C{isis force-view}.
    """

    synopsis = "--yes-i-know [--without MEMBER,MEMBER...]"
    longdesc = (
        "Close this member's blocked view without the members that are gone for"
        " good, when most of the view is lost and the rest cannot go on. Read"
        " 'Losing the majority' in docs/operating.md first."
    )
    optFlags: ClassVar[OptionTable] = [
        ["yes-i-know", None, "Confirm that the members left out are gone for good."],
    ]
    optParameters: ClassVar[OptionTable] = [
        *node_parameters(default=False),
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


def run_force_view(
    reactor: object,
    proto: ClientProtocol,
    options: ForceViewOptions,
    console: Console,
) -> Deferred[int]:
    """
    C{isis force-view}: print the warning; with C{--yes-i-know}, ask the
    node to close its view without the members that are gone.

    @return: A L{Deferred} that fires with the exit status (0 once the node
        proposed the view), or fails with the node's refusal
        (L{isis_twisted.api.commands.CannotForceViewError}) or a connection error.
    """
    console.error(f"isis force-view: {WARNING}")
    if not options["yes-i-know"]:
        console.error(
            "isis force-view: nothing done; run it again with --yes-i-know if the"
            " members left out are gone for good"
        )
        return succeed(EXIT_NOT_CONFIRMED)

    def proposed(members: list[str]) -> int:
        console.out(
            f"proposed a view of {', '.join(members)}; 'isis status' shows when"
            " it is installed"
        )
        return 0

    return (
        proto.force_view(options["without"])
        .addTimeout(options["answer-timeout"], IReactorTime(reactor))
        .addCallback(proposed)
    )
