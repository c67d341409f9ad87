"""
The C{twistd isis} plugin: command-line options and the service they make.

    twistd -n isis --id a --port 9001 --peers b=127.0.0.1:9002,c=127.0.0.1:9003 \\
        --client-port 9101 --handler jsonl:a.jsonl

Addresses are either short forms (a port number to listen on 127.0.0.1,
C{HOST:PORT} to dial over TCP) or full Twisted endpoint descriptions
(C{tcp:9001:interface=0.0.0.0}, C{unix:/run/isis/a.sock},
C{tls:host=b.example:port=9002:...}).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, ClassVar, NoReturn

from twisted.application.service import IService, MultiService, Service
from twisted.internet import reactor as _global_reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from isis_twisted.api.server import ClientAPIFactory
from isis_twisted.app.handlers import (
    HandlerSpecError,
    available_handlers,
    build_handler,
)
from isis_twisted.interfaces import IDeliveryHandler
from isis_twisted.net.certs import CertificateError, load_identity
from isis_twisted.net.node import (
    DEFAULT_BUFFER,
    DEFAULT_MAX_FRAME,
    MIN_SECRET,
    MulticastNode,
)
from isis_twisted.net.options import (
    advertised,
    byte_size,
    dial_description,
    listen_description,
    whole_number,
)

_NAME = re.compile(r"^[^\s=,]{1,255}$")
_UNRECOGNIZED = re.compile(r"^option (-{1,2}[^\s=]+) not recognized$")

EX_USAGE = 64
"""
The exit status of a start stopped by a mistake in the options (the
sysexits.h value C{twist} itself uses).
"""

EX_CANNOT_LISTEN = 1
"""
The exit status of a start stopped because the member cannot listen (a port
in use, an address it may not bind).
"""

EX_REFUSED = 78
"""
The exit status of a member that can never be let in: most of its group
refused it for its group name or secret (sysexits.h's C{EX_CONFIG}).
"""

TWISTD_PIDFILE = "twistd.pid"
"""
The pidfile C{twistd} writes when not given C{--pidfile}: one per directory,
so C{twistd isis} replaces it with one per member (L{Options.postOptions}).
"""


def _read_secret(path: str, option: str) -> bytes:
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as e:
        raise usage.UsageError(
            f"{option} {path!r} cannot be read: {e.strerror}"
        ) from None
    if len(secret) < MIN_SECRET:
        raise usage.UsageError(
            f"{option} {path!r} holds {len(secret)} bytes; it needs at least"
            f" {MIN_SECRET} (e.g. head -c 32 /dev/urandom | base64)"
        )
    return secret


def _seconds(key: str, value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        raise usage.UsageError(
            f"--{key} must be a number of seconds, not {value!r}"
        ) from None
    if not seconds > 0:
        raise usage.UsageError(f"--{key} must be above 0 seconds")
    return seconds


def _address(convert: Callable[[str], str], what: str, value: str) -> str:
    try:
        return convert(value)
    except ValueError as e:
        raise usage.UsageError(f"{what} {e}") from None


class Options(usage.Options):
    """
    The options of C{twistd isis}.
    """

    synopsis = (
        "--id NAME --port PORT (--peers NAME=HOST:PORT[,...] | --join"
        " HOST:PORT[,...]) [options]"
    )
    longdesc = (
        "Run one member of a totally ordered multicast group. Every member"
        " delivers every message in the same order. Built-in handlers: "
        + "; ".join(
            f"{k}: {v.rstrip('.')}" for k, v in sorted(available_handlers().items())
        )
        + "."
    )

    optParameters: ClassVar[list[list[Any]]] = [
        ["id", "i", None, "This member's name (required)."],
        [
            "port",
            "p",
            None,
            "Where to listen for peers: a port number (listens on 127.0.0.1)"
            " or an endpoint description (required).",
        ],
        [
            "peers",
            None,
            "",
            "The other members, comma-separated NAME=HOST:PORT or NAME=ENDPOINT.",
        ],
        [
            "join",
            "j",
            None,
            "Join a running group instead of naming its members: where some of"
            " them listen, comma-separated HOST:PORT or endpoint descriptions.",
        ],
        [
            "advertise",
            None,
            None,
            "Where the other members reach this one, HOST:PORT or an endpoint"
            " description. Default: from --port, when it names one interface.",
        ],
        ["group", "g", "isis", "The group's name; every member must give the same."],
        [
            "client-port",
            "c",
            None,
            "Where applications connect (the isis CLI, AMP): a port number"
            " (listens on 127.0.0.1) or an endpoint description. Default: none.",
        ],
        [
            "http-port",
            None,
            None,
            "Where to serve the HTTP API and the status page: a port number"
            " (listens on 127.0.0.1) or an endpoint description. Default: none.",
        ],
        [
            "metrics-port",
            None,
            None,
            "Where to serve Prometheus metrics over HTTP: a port number (listens"
            " on 127.0.0.1) or an endpoint description. Default: none.",
        ],
        [
            "max-frame",
            None,
            DEFAULT_MAX_FRAME,
            "Largest frame sent or accepted, in bytes; bounds the payload size.",
        ],
        [
            "buffer",
            None,
            DEFAULT_BUFFER,
            "Bound of each peer's resend buffer, in bytes; multicasts wait"
            " while a peer's buffer is full.",
        ],
        [
            "handshake-timeout",
            None,
            10.0,
            "Seconds a new connection has to complete its handshake.",
        ],
        [
            "secret-file",
            None,
            None,
            "A file holding the group's pre-shared secret (at least 16 bytes;"
            " every member the same): peers must prove they hold it.",
        ],
        [
            "tls-dir",
            None,
            None,
            "Mutual TLS between members: a directory made by 'isis certs'"
            " (ca.pem and ID.pem); --port and peers are then plain addresses.",
        ],
        [
            "client-token-file",
            None,
            None,
            "A file holding a token that clients must give before anything"
            " else (at least 16 bytes); isis --token-file gives it.",
        ],
        [
            "heartbeat",
            None,
            1.0,
            "Seconds between heartbeats on an idle connection.",
        ],
        [
            "silence",
            None,
            5.0,
            "Seconds of hearing nothing from a peer before it is reported"
            " (and its quiet connections are redialled).",
        ],
        [
            "suspect-after",
            None,
            3.0,
            "Seconds of hearing nothing from a member of the view before it is"
            " suspected, which starts a view change without it (more than"
            " twice --heartbeat).",
        ],
        [
            "flush-timeout",
            None,
            1.0,
            "Seconds a step of a view change may take before the members that"
            " did not answer are left out too.",
        ],
        [
            "handler-give-up",
            None,
            60.0,
            "Seconds a delivery handler may fail to keep a record (a full disk)"
            " before this member leaves the group rather than hold it; it"
            " rejoins and catches up once the handler keeps it.",
        ],
        [
            "retain",
            None,
            100_000,
            "Recent deliveries kept for members that catch up when they rejoin"
            " and for clients that resume from an index.",
        ],
        [
            "retain-bytes",
            None,
            "64MiB",
            "The most payload bytes those deliveries may hold (k, M, G: powers"
            " of 1024); the oldest go first.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["handler_specs"] = []
        self["peer_specs"] = []

    def opt_handler(self, spec: str) -> None:
        """
        Add a delivery handler (repeatable): log, jsonl:PATH, a plugin's name, or module:factory[:ARGUMENT].
        """  # noqa: E501 - usage.Options shows the docstring as is
        self["handler_specs"].append(spec)

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse the options; under C{twistd} or C{twist}, a mistake prints one
        sentence on stderr and exits with L{EX_USAGE}.

        Both runners print the whole usage text before (C{twistd}: on
        stdout) or after (C{twist}) a L{usage.UsageError}'s message, which
        buries the one line that matters; so the plugin reports its own
        mistakes.  Used on its own (no parent), it raises
        L{usage.UsageError} as any L{usage.Options} does.

        @raise SystemExit: Under a runner, for a mistake.
        @raise usage.UsageError: Used on its own, for a mistake.
        """
        try:
            super().parseOptions(options)  # type: ignore[no-untyped-call]
        except usage.UsageError as e:
            if getattr(self, "parent", None) is None:
                raise
            sys.stderr.write(f"isis: {self._explain(e)}\n")
            raise SystemExit(EX_USAGE) from None

    def _explain(self, error: usage.UsageError) -> str:
        """
        The sentence for a mistake: the error's own, or, for an option of
        the runner given after C{isis}, where it belongs.
        """
        message = str(error)
        unknown = _UNRECOGNIZED.match(message)
        if unknown is not None:
            option = unknown.group(1)
            longs = getattr(self.parent, "longOpt", [])
            shorts = getattr(self.parent, "shortOpt", "")
            if (
                option.startswith("--")
                and any(o.rstrip("=") == option[2:] for o in longs)
            ) or (len(option) == 2 and option[1] in shorts.replace(":", "")):
                name = "twist" if "Twist" in type(self.parent).__name__ else "twistd"
                return (
                    f"{option} is an option of {name}, not of isis: give it"
                    f" before 'isis' ({name} {option} ... isis ...)"
                )
            return f"{message}; see --help for the options"
        return message

    def opt_peer(self, spec: str) -> None:
        """
        Add one peer as NAME=ADDRESS (repeatable; for addresses with commas).
        """
        self["peer_specs"].append(spec)

    def postOptions(self) -> None:
        """
        Check every option and build the peers' endpoints and the handlers,
        so that a mistake stops the start with one plain sentence.
        """
        me = self["id"]
        if not me:
            raise usage.UsageError("--id is required: this member's name")
        if not _NAME.match(me):
            raise usage.UsageError(
                f"--id {me!r} must be 1-255 characters without spaces, '=' or ','"
            )
        if self["port"] is None:
            raise usage.UsageError("--port is required: where to listen for peers")
        self["listen"] = _address(listen_description, "--port", self["port"])
        self["metrics_listen"] = (
            _address(listen_description, "--metrics-port", self["metrics-port"])
            if self["metrics-port"] is not None
            else None
        )
        if self["metrics_listen"] is not None:
            try:
                import prometheus_client  # noqa: F401
            except ImportError:
                raise usage.UsageError(
                    "--metrics-port needs prometheus_client:"
                    " pip install 'isis-twisted[metrics]'"
                ) from None
        self["client_listen"] = (
            _address(listen_description, "--client-port", self["client-port"])
            if self["client-port"] is not None
            else None
        )
        self["http_listen"] = (
            _address(listen_description, "--http-port", self["http-port"])
            if self["http-port"] is not None
            else None
        )
        specs = [s for s in self["peers"].split(",") if s.strip()]
        peers: dict[str, str] = {}
        for spec in specs + self["peer_specs"]:
            name, sep, address = spec.strip().partition("=")
            name = name.strip()
            if not sep or not name or not address.strip():
                raise usage.UsageError(
                    f"peer {spec!r} is not NAME=ADDRESS (e.g. b=127.0.0.1:9002)"
                )
            if not _NAME.match(name):
                raise usage.UsageError(f"peer name {name!r} is not a valid name")
            if name == me:
                raise usage.UsageError(f"peer {name!r} is this member's own --id")
            if name in peers:
                raise usage.UsageError(f"peer {name!r} is given twice")
            peers[name] = _address(dial_description, f"peer {name!r}:", address)
        self["peer_map"] = peers
        self._joining(peers)
        if not self["group"] or not _NAME.match(self["group"]):
            raise usage.UsageError("--group must be a non-empty name without spaces")
        for key, least in (("max-frame", 1024), ("buffer", 1), ("retain", 0)):
            self[key] = whole_number(f"--{key}", self[key], least)
        self["retain-bytes"] = byte_size("--retain-bytes", self["retain-bytes"], 0)
        for key in (
            "handshake-timeout",
            "heartbeat",
            "silence",
            "suspect-after",
            "flush-timeout",
            "handler-give-up",
        ):
            self[key] = _seconds(key, self[key])
        for key in ("silence", "suspect-after"):
            if 2 * self["heartbeat"] >= self[key]:
                raise usage.UsageError(
                    f"--{key} must be more than twice --heartbeat, so that an idle"
                    " link is not taken for a silent one"
                )
        self["secret"] = None
        if self["secret-file"] is not None:
            self["secret"] = _read_secret(self["secret-file"], "--secret-file")
        self["tls"] = None
        if self["tls-dir"] is not None:
            plain = [self["listen"], *peers.values()]
            if any(d.startswith(("ssl:", "tls:")) for d in plain):
                raise usage.UsageError(
                    "with --tls-dir, give plain addresses (HOST:PORT, tcp:...);"
                    " the node adds TLS itself"
                )
            try:
                self["tls"] = load_identity(self["tls-dir"], me)
            except CertificateError as e:
                raise usage.UsageError(f"--tls-dir: {e}") from None
        self["client_token"] = None
        if self["client-token-file"] is not None:
            self["client_token"] = _read_secret(
                self["client-token-file"], "--client-token-file"
            )
        handlers: list[IDeliveryHandler] = []
        try:
            for spec in self["handler_specs"]:
                handlers.append(build_handler(spec))
        except HandlerSpecError as e:
            for built in handlers:
                built.close()
            raise usage.UsageError(str(e)) from None
        self["handler_objects"] = handlers
        self._per_member_files(me)

    def _joining(self, peers: dict[str, str]) -> None:
        """
        Check C{--join} and C{--advertise}: a member joins a running group
        or names its peers, and one that joins must have an address to give.
        """
        self["join_list"] = [
            _address(dial_description, "--join", spec)
            for spec in (self["join"] or "").split(",")
            if spec.strip()
        ]
        if self["join"] is not None and not self["join_list"]:
            raise usage.UsageError("--join needs HOST:PORT of a member of the group")
        if self["join_list"] and peers:
            raise usage.UsageError(
                "give --join or --peers, not both: a member that joins learns"
                " the others from the group"
            )
        if self["join_list"] and self["tls-dir"] is not None:
            raise usage.UsageError(
                "--join does not work with --tls-dir yet: start every member with"
                " --peers"
            )
        if self["advertise"] is not None:
            self["advertise"] = _address(
                dial_description, "--advertise", self["advertise"]
            )
        else:
            self["advertise"] = advertised(self["listen"])
        if self["join_list"] and not self["advertise"]:
            raise usage.UsageError(
                f"--port {self['port']} listens on every interface: give"
                " --advertise HOST:PORT, where the other members reach this one"
            )
        self["advertise"] = self["advertise"] or ""

    def _per_member_files(self, me: str) -> None:
        """
        Under C{twistd}, give this member its own pidfile (and, when it
        runs in the background, log file) unless the operator chose one, so
        that several members can run from one directory: twistd's defaults
        (C{twistd.pid}, C{twistd.log}) are one per directory.

        The runner's own options are parsed before the plugin's and
        checked after them, so what is set here is what twistd uses.
        """
        runner = getattr(self, "parent", None)
        if not isinstance(runner, usage.Options) or "pidfile" not in runner:
            return  # twist, or no runner: no pidfile to clash on
        if runner["pidfile"] == TWISTD_PIDFILE:
            runner["pidfile"] = f"isis-{me}.pid"
        if runner.get("logfile") is None and not runner.get("nodaemon"):
            runner["logfile"] = f"isis-{me}.log"


def exit_when_done(status: int) -> None:
    """
    Make this process exit with C{status} once its runner is done.

    Neither C{twistd} nor C{twist} has a way for a plugin to choose its
    exit status (checked on Twisted 26.10): once the reactor stops,
    C{twistd} removes its pidfile, stops logging and returns to its
    console script, which exits with C{sys.exit(None)}, status 0; an
    exception raised in a reactor callback or shutdown trigger is logged,
    not passed on.  So an C{atexit} function, which runs after all that,
    flushes the standard streams and ends the process with C{os._exit}.
    """

    def end() -> None:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.flush()
        os._exit(status)

    atexit.register(end)


class Listener(Service):
    """
    Listens on an endpoint description while running (from
    C{privilegedStartService}, before C{twistd} drops privileges).

    @ivar listening: Fires with the port, or fails if it cannot listen.
    """

    _log = Logger()

    def __init__(
        self, reactor: Any, description: str, factory: IProtocolFactory, what: str
    ) -> None:
        self._reactor = reactor
        self._description = description
        self._factory = factory
        self.what = what
        self._port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort] | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        if self.listening is None:
            endpoint = serverFromString(self._reactor, self._description)
            self.listening = endpoint.listen(self._factory)
            self.listening.addCallback(self._listened)

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.privilegedStartService()

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self._port = port
        self._log.info(
            "{what} listening on {address}", what=self.what, address=port.getHost()
        )
        return port

    def stopService(self) -> Deferred[None] | None:
        super().stopService()  # type: ignore[no-untyped-call]
        port, self._port = self._port, None
        self.listening = None
        if port is None:
            return None
        # A factory with open answers to end (the HTTP API's streams) ends
        # them before the port goes; the reactor would cut them.
        drain = getattr(self._factory, "drain", None)
        if drain is None:
            return port.stopListening()
        ended: Deferred[None] = drain()
        return ended.addCallback(lambda _: port.stopListening())


class NodeService(MultiService):
    """
    What C{twistd isis} runs: the node and its client API.  If either
    cannot listen, the start stops with one plain sentence on stderr and
    exit status L{EX_CANNOT_LISTEN} rather than a traceback.

    @ivar stderr: Where that sentence goes: the process's own stderr, not
        C{sys.stderr}, which C{twistd} turns into log lines.
    @ivar runner: The runner's options (C{twistd}'s, with its pidfile and,
        in the background, its status pipe), or L{None}.
    @ivar exit: Called with the exit status the process is to end with,
        once its runner is done (L{exit_when_done}).
    """

    _log = Logger()

    def __init__(self, reactor: Any, node: MulticastNode, listen: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._reactor = reactor
        self.node = node
        self._listen = listen
        self._checked = False
        self.stderr: IO[str] = sys.__stderr__ or sys.stderr
        self.runner: Mapping[str, Any] | None = None
        self.exit: Callable[[int], None] = exit_when_done
        node.setServiceParent(self)  # type: ignore[no-untyped-call]
        node.refused_for_good.addCallback(self._refused_for_good)

    def add_listener(self, listener: Listener) -> None:
        """
        Run C{listener} as part of this service.
        """
        listener.setServiceParent(self)  # type: ignore[no-untyped-call]

    def privilegedStartService(self) -> None:
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        self._check_listening()

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        # twist starts services without privilegedStartService.
        self._check_listening()
        self._reactor.callWhenRunning(self._running)

    def _running(self) -> None:
        # Only from here on does a SIGTERM stop the member cleanly (the
        # reactor handles signals once it runs): say so, for operators and
        # for scripts that wait to stop it.
        node = self.node
        self._log.info(
            "member {me!r} of group {group!r} is running", me=node.me, group=node.group
        )

    def _check_listening(self) -> None:
        """
        Stop the start if the node or a listener already failed to listen.

        @raise SystemExit: With L{EX_CANNOT_LISTEN}, after writing the
            sentence to L{stderr}.
        """
        if self._checked:
            return
        self._checked = True
        waits = [(f"peers on {self._listen}", self.node.listening)]
        for child in self:
            if isinstance(child, Listener) and child.listening is not None:
                waits.append((f"{child.what} on {child._description}", child.listening))
        for what, d in waits:
            failures: list[Failure] = []
            d.addErrback(failures.append)
            if failures:
                self._stop_start(
                    f"isis: cannot listen for {what}: {failures[0].getErrorMessage()}"
                )
            # A later failure (an endpoint that listens asynchronously) stops
            # the process once it runs.
            d.addErrback(self._late_failure, what)

    def _stop_start(self, sentence: str) -> NoReturn:
        """
        Say why the start stops and exit with L{EX_CANNOT_LISTEN}.

        twistd tidies up only after an C{Exception}, and a traceback is not
        what an operator needs, so this does its part itself: it removes
        this process's pidfile (else the next start says "Removing stale
        pidfile") and, in the background, hands the sentence to the waiting
        parent process, which prints it.
        """
        self.stderr.write(sentence + "\n")
        self.stderr.flush()
        runner = self.runner if self.runner is not None else {}
        pidfile = runner.get("pidfile")
        if pidfile:
            try:
                with open(pidfile) as f:
                    mine = f.read().strip() == str(os.getpid())
                if mine:
                    os.remove(pidfile)
            except OSError:
                pass  # not written yet, or already gone
        pipe = runner.get("statusPipe")
        if pipe is not None:
            # twistd's parent prints what follows the first two bytes.
            os.write(pipe, b"1 " + sentence.encode("utf-8", "replace")[:98])
            os.close(pipe)
        raise SystemExit(EX_CANNOT_LISTEN)

    def _late_failure(self, failure: Failure, what: str) -> None:
        self._log.critical(
            "cannot listen for {what}: {error}; stopping",
            what=what,
            error=failure.getErrorMessage(),
        )
        if self._reactor.running:
            self._reactor.stop()
        else:
            self._reactor.callWhenRunning(self._reactor.stop)

    def _refused_for_good(self, sentence: str) -> None:
        """
        The node can never be let in (its log says why, once): say so on
        stderr too, stop and exit with L{EX_REFUSED} rather than redial for
        ever.
        """
        self.stderr.write(f"isis: {sentence}\n")
        self.stderr.flush()
        self.exit(EX_REFUSED)
        if self._reactor.running:
            with contextlib.suppress(ReactorNotRunning):  # already stopping
                self._reactor.stop()
        else:
            self._reactor.callWhenRunning(self._reactor.stop)


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    Make the service C{twistd isis} runs: the node, and its client API
    when C{--client-port} is given, its HTTP API with C{--http-port}, its
    metrics with C{--metrics-port}.

    @param options: Parsed L{Options}.
    @param reactor: The reactor (default: the global one).
    """
    reactor = reactor if reactor is not None else _global_reactor
    node = MulticastNode(
        options["id"],
        options["peer_map"],
        options["listen"],
        reactor,
        group=options["group"],
        handlers=options["handler_objects"],
        max_frame=options["max-frame"],
        max_buffer=options["buffer"],
        handshake_timeout=options["handshake-timeout"],
        history=options["retain"],
        history_bytes=options["retain-bytes"],
        heartbeat=options["heartbeat"],
        silence=options["silence"],
        suspect_after=options["suspect-after"],
        flush_timeout=options["flush-timeout"],
        handler_give_up=options["handler-give-up"],
        secret=options["secret"],
        tls=options["tls"],
        join=options["join_list"],
        advertise=options["advertise"],
    )
    top = NodeService(reactor, node, options["listen"])
    runner = getattr(options, "parent", None)
    top.runner = runner if isinstance(runner, usage.Options) else None
    if options["client_listen"] is not None:
        top.add_listener(
            Listener(
                reactor,
                options["client_listen"],
                ClientAPIFactory(node, reactor, token=options["client_token"]),
                f"the client API of member {options['id']!r}",
            )
        )
    if options["http_listen"] is not None:
        from isis_twisted.api.webapi import api_site

        top.add_listener(
            Listener(
                reactor,
                options["http_listen"],
                api_site(node, reactor, token=options["client_token"]),
                f"the HTTP API of member {options['id']!r}",
            )
        )
    if options["metrics_listen"] is not None:
        from twisted.web.server import Site

        from isis_twisted.api.metrics import metrics_resource

        top.add_listener(
            Listener(
                reactor,
                options["metrics_listen"],
                Site(metrics_resource(node)),
                f"Prometheus metrics of member {options['id']!r}",
            )
        )
    return top
