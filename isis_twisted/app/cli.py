"""
The C{isis} command: talk to a running node through its client API.

    isis [--node ENDPOINT] send [--file PATH] [-0] [PAYLOAD ...]  multicast
    isis [--node ENDPOINT] tail [--from N] ...   print deliveries as they happen
    isis [--node ENDPOINT] status [--json]       show the node's state
    isis check LOG ...                           check delivery logs

The global options (C{--node}, C{--token-file}, C{--answer-timeout}) may
also follow the command.  Each command's options and runner live in a module
of their own (L{isis_twisted.app.send}, L{isis_twisted.app.tail},
L{isis_twisted.app.statusview}, L{isis_twisted.app.forcing},
L{isis_twisted.app.logcheck}, L{isis_twisted.app.groupcerts}); what they
share is in L{isis_twisted.app.clibase}.  Every node command is a function
C{run_NAME(reactor, proto, options, console)} returning a L{Deferred} that
fires with the exit status, so that it can be tested without a process;
L{run} connects and dispatches, L{main} parses the command line and runs the
reactor.

Exit statuses: 0 on success, 1 when messages could not be sent (or the
connection was lost), 2 for a usage mistake, a node that cannot be reached,
or a request the node refused, 3 when the node did not answer in time (or
no delivery was confirmed within C{isis send --timeout}), 130 on Ctrl-C.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import (
    ConnectError,
    ConnectionClosed,
    ConnectionRefusedError,
    DNSLookupError,
    TimeoutError,
)
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads, IReactorTime
from twisted.internet.task import react
from twisted.protocols import amp
from twisted.python import usage
from twisted.python.failure import Failure

from isis_twisted.api.client import (
    ClientAPIError,
    ClientProtocol,
    HistoryGoneError,
    connect,
)
from isis_twisted.app.clibase import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CommandOptions,
    Console,
    OptionTable,
    failure_message,
    node_parameters,
    positive_seconds,
)
from isis_twisted.app.forcing import ForceViewOptions, run_force_view
from isis_twisted.app.groupcerts import CertsOptions, run_certs
from isis_twisted.app.logcheck import CheckOptions, run_check
from isis_twisted.app.send import SendOptions, run_send
from isis_twisted.app.statusview import StatusOptions, run_status
from isis_twisted.app.tail import TailOptions, run_tail
from isis_twisted.net.options import dial_description

__all__ = ["IsisOptions", "main", "parse", "run"]

# The options node_parameters makes: given after the command, they win.
_GLOBALS = ("node", "token-file", "answer-timeout")


class IsisOptions(CommandOptions):
    """
    The C{isis} command line: global options and one subcommand.
    """

    longdesc = (
        "Talk to a running isis node through its client API.  Run"
        " 'isis COMMAND --help' for a command's options."
    )
    optParameters: ClassVar[OptionTable] = node_parameters(default=True)
    subCommands: ClassVar[OptionTable] = [
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
        self["answer-timeout"] = positive_seconds(
            "--answer-timeout", self["answer-timeout"]
        )
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


# -- running a command ----------------------------------------------------


_Command = Callable[[Any, ClientProtocol, Any, Console], Deferred[int]]

_COMMANDS: dict[str, _Command] = {
    "send": run_send,
    "tail": run_tail,
    "status": run_status,
    "force-view": run_force_view,
}


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
    return failure_message(failure)


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
                console.error(f"isis {name}: {failure_message(failure)}")
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
        console.error(f"isis {name}: unexpected error: {failure_message(failure)}")
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
        raise SystemExit(run_check(options.subOptions))
    if options.subCommand == "certs":
        raise SystemExit(run_certs(options.subOptions))
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Payloads printed by tail may hold anything; never fail on them.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        react(_react_main, [options])
    finally:
        _settle_stdout()


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
