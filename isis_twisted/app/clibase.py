"""
What every C{isis} command shares: the base of its options and the global
options it also takes after its name, its exit statuses, and the L{Console}
it reads and writes through.

The commands' own modules import this one and L{isis_twisted.app.cli}
imports them; nothing here imports a command.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import IO, Any, NoReturn, TextIO

import attrs
from twisted.python import usage
from twisted.python.failure import Failure

__all__ = [
    "DEFAULT_ANSWER_TIMEOUT",
    "DEFAULT_NODE",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "CommandOptions",
    "Console",
    "OptionTable",
    "failure_message",
    "node_parameters",
    "positive_seconds",
]

DEFAULT_NODE = "tcp:127.0.0.1:9101"
"""
The client API endpoint C{isis} connects to unless told otherwise.
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


OptionTable = list[list[Any]]
"""
Rows of C{optFlags}, C{optParameters} or C{subCommands}, as
L{usage.Options} reads them.
"""


class CommandOptions(usage.Options):
    """
    The base of every C{isis} options class: each takes C{--version}.
    """

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


def positive_seconds(option: str, text: str) -> float:
    """
    Read the number of seconds given to C{option}.

    @param option: The option's name, for the message.
    @param text: What was given.
    @return: The seconds, more than 0 and finite.
    @raise usage.UsageError: For anything else.
    """
    try:
        value = float(text)
    except ValueError:
        raise usage.UsageError(f"{option} must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise usage.UsageError(f"{option} must be more than 0 seconds")
    return value


def node_parameters(default: bool) -> OptionTable:
    """
    The global options (C{--node}, C{--token-file}, C{--answer-timeout}) as
    C{optParameters} rows.

    @param default: Whether they take their defaults: true at the top level;
        false after a command's name (C{isis send --node X}), where they
        default to L{None} so that only those given override.
    """
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


def failure_message(failure: Failure) -> str:
    """
    A failure in a few words: its error's message, or the error's type when
    the message is empty.
    """
    return str(failure.value) or type(failure.value).__name__
