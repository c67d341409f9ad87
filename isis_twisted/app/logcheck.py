"""
C{isis check}: check delivery logs with the history checker
(L{isis_twisted.core.checker}); it needs no node.
"""

from __future__ import annotations

from twisted.python import usage

from isis_twisted.app.clibase import CommandOptions
from isis_twisted.core import checker

__all__ = ["CheckOptions", "run_check"]


class CheckOptions(CommandOptions):
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


def run_check(options: CheckOptions) -> int:
    """
    C{isis check}: check the logs, printing what the checker finds.

    @param options: The parsed C{check} options.
    @return: The exit status: 0 when every guarantee holds, 1 when one is
        violated, 2 when a log is unusable (it cannot be read, or holds
        several runs of a group).
    """
    return checker.main(options["logs"])
