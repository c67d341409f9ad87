"""
The HTTP API of a member (C{twistd isis --http-port}): multicast, the
delivery stream and the status for programs in any language, and a live
status page for people.

Routes (docs/http.md gives each in full)::

    POST /messages          multicast; answered once delivered
    GET  /messages?from=N   the delivery stream (SSE, or NDJSON by Accept)
    GET  /status            the status as JSON (SSE with Accept:
                            text/event-stream)
    GET  /metrics           Prometheus metrics, with prometheus_client
    GET  /                  the status page (and /page.js, /page.css)

With a client token, every route but the page's files wants it, as
C{Authorization: Bearer TOKEN} or (for a browser's C{EventSource}, which
cannot set headers) C{?access_token=TOKEN}.  Errors are JSON,
C{{"error": "one sentence", ...}}, with the status code that fits.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Sequence
from io import BytesIO
from typing import Any, cast

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web import http
from twisted.web.resource import IResource
from twisted.web.server import Request, Site

from isis_twisted.api.nodecontrol import DEFAULT_BACKLOG
from isis_twisted.api.webroutes import DEFAULT_TIMEOUT, MAX_STREAMS, MAX_TIMEOUT, Root
from isis_twisted.api.webstream import WebNode
from isis_twisted.core.status import status_json

__all__ = [
    "COUNTED",
    "DEFAULT_TIMEOUT",
    "MAX_BODY",
    "MAX_STREAMS",
    "MAX_TIMEOUT",
    "ApiRequest",
    "ApiSite",
    "HttpApi",
    "api_site",
]

COUNTED = ("wrong_tokens", "late_failures", "foreign_requests", "dropped_readers")
"""
What the API counts rather than logs each time (L{HttpApi.note}).
"""

MAX_BODY = 32 << 20
"""
The largest request body taken by default, in bytes (more when one message
may be larger: twice the node's largest payload, for base64).
"""


class ApiRequest(Request):
    """
    A request whose body is read only up to the site's C{max_body} bytes:
    past that, the rest is read and dropped, and the answer is 413.

    @ivar too_large: Whether the body went past the bound.
    """

    too_large = False
    _bound = MAX_BODY

    def gotLength(self, length: int | None) -> None:
        """
        Keep the body in memory (the bound keeps it small), or drop it if
        its announced length is already too large.
        """
        site = getattr(self.channel, "site", None)
        if isinstance(site, ApiSite):
            self._bound = site.max_body
        self.content = BytesIO()
        if length is not None and length > self._bound:
            self.too_large = True

    def handleContentChunk(self, data: bytes) -> None:
        """
        Keep the body's bytes while it is within the bound.
        """
        if self.too_large:
            return
        assert self.content is not None
        if self.content.tell() + len(data) > self._bound:
            self.too_large = True
            self.content.seek(0)
            self.content.truncate()
            return
        self.content.write(data)


class ApiSite(Site):
    """
    The HTTP API's site: bounded bodies, no tracebacks in answers, and no
    line in the log per request (at saturation that would be a flood).

    @ivar api: What the routes share, with their counters.
    @ivar max_body: The largest request body taken, in bytes.
    """

    requestFactory = ApiRequest
    displayTracebacks = False
    noisy = False

    def __init__(
        self, api: HttpApi, metrics: IResource | None, max_body: int = MAX_BODY
    ) -> None:
        """
        @param api: What the routes share (its clock times the connections
            out too).
        @param metrics: The resource to serve at C{/metrics}, if any.
        @param max_body: The largest request body taken, in bytes.
        """
        super().__init__(  # type: ignore[no-untyped-call]
            Root(api, metrics), reactor=api.clock
        )
        self.api = api
        self.max_body = max_body

    def log(self, request: http.Request) -> None:
        """
        Log nothing per request.
        """

    def drain(self) -> Deferred[None]:
        """
        The member is stopping: end the open streams, each with where to
        resume, rather than cut them (L{HttpApi.drain}).
        """
        return self.api.drain()


class HttpApi:
    """
    What every route shares: the node, the clock, the token and the bounds.
    """

    _log = Logger()

    def __init__(
        self,
        node: WebNode,
        clock: IReactorTime,
        token: bytes | None,
        backlog: int,
        hosts: Sequence[str] = (),
    ) -> None:
        """
        @param hosts: Names of this machine, besides C{localhost} and IP
            addresses, that requests may name in their C{Host} header when
            no token is needed.
        """
        self.node = node
        self.clock = clock
        self.token = token
        self.backlog = backlog
        self.hosts = {h.lower() for h in hosts}
        self.counted = dict.fromkeys(COUNTED, 0)
        self.streams: set[Any] = set()

    def status(self) -> dict[str, Any]:
        """
        The node's status as C{isis status --json} gives it, with this
        API's counters as C{http_api}.
        """
        return {**status_json(self.node.status()), "http_api": self.counters()}

    def stop(self) -> None:
        """
        The member is stopping: end every open stream, each with where to
        resume.
        """
        for stream in list(self.streams):
            stream.stop()

    def counters(self) -> dict[str, int]:
        """
        What the API counts rather than logs each time, for C{/status}.
        """
        return {**self.counted, "open_streams": len(self.streams)}

    def note(
        self, counter: str, message: str, amount: int = 1, **fields: object
    ) -> None:
        """
        Count C{amount} more of C{counter} (one of L{COUNTED}), logging
        C{message} (a L{Logger} format, with C{fields}) only the first
        time: a client that repeats a mistake must not flood the log.
        """
        if not self.counted[counter]:
            self._log.warn(
                "HTTP API: " + message + " (counted from now on, in /status,"
                " not logged again)",
                **fields,
            )
        self.counted[counter] += amount

    def dropped(self, peer: object, resume: int) -> None:
        """
        A reader of the delivery stream read too slowly and was dropped.
        """
        self.note(
            "dropped_readers",
            "ended the delivery stream of the reader at {peer}: it read too"
            " slowly; it can resume from index {index}",
            peer=peer,
            index=resume,
        )

    def drain(self, timeout: float = 2.0) -> Deferred[None]:
        """
        End every open stream, each with where to resume, and wait (at most
        C{timeout} seconds) until their last bytes are out: the member is
        stopping, and its reactor would otherwise drop them with the
        connections.
        """
        transports = [
            getattr(getattr(stream.request, "channel", None), "transport", None)
            for stream in self.streams
        ]
        self.stop()
        deadline = self.clock.seconds() + timeout

        def out() -> bool:
            return (
                all(t is None or getattr(t, "disconnected", True) for t in transports)
                or self.clock.seconds() >= deadline
            )

        async def waited() -> None:
            while not out():
                await task.deferLater(self.clock, 0.05, lambda: None)

        return Deferred.fromCoroutine(waited())

    def foreign(self, request: Request) -> str | None:
        """
        Why C{request} is refused as coming from another site's page, if it
        is: a browser says so in C{Origin}, and a page that reached this
        member through a name of its own (DNS rebinding) names it in
        C{Host}.  With a client token, only C{Origin} counts: a page
        cannot know the token.
        """
        host = (request.getHeader(b"Host") or b"").decode("latin-1").strip()
        origin = request.getHeader(b"Origin")
        problem = None
        if origin is not None:
            given = origin.decode("latin-1").strip()
            if given.partition("://")[2].lower() != host.lower():
                problem = (
                    f"requests from pages of another site (Origin {given}) are"
                    " refused; this API answers programs and its own page"
                )
        # A rebound page is of the same origin as the name it rebound: its
        # Host gives it away, Origin or not.
        if problem is None and self.token is None and not self._known_host(host):
            problem = (
                f"Host {host!r} is not a name of this machine; give the member a"
                " --client-token-file to reach it by other names"
            )
        if problem is None:
            return None
        self.note(
            "foreign_requests",
            "refused a request from {peer}: {problem}",
            peer=request.getClientAddress(),
            problem=problem,
        )
        return problem

    def _known_host(self, host: str) -> bool:
        name = host.lower()
        if name.startswith("["):
            name = name[1:].partition("]")[0]
        elif name.count(":") == 1:
            name = name.partition(":")[0]
        if name in ("", "localhost") or name.endswith(".localhost"):
            return True
        if name in self.hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def authorised(self, request: Request) -> bool:
        """
        Whether C{request} gives the client token (or none is needed).
        """
        if self.token is None:
            return True
        given: bytes | None = None
        header = request.getHeader(b"Authorization")
        if header is not None and header[:7].lower() == b"bearer ":
            given = header[7:].strip()
        else:
            values = request.args.get(b"access_token") if request.args else None
            given = values[0] if values else None
        if given is not None and hmac.compare_digest(given, self.token):
            return True
        self.note(
            "wrong_tokens",
            "refused a request without the client token from {peer}",
            peer=request.getClientAddress(),
        )
        return False


def api_site(
    node: WebNode,
    clock: IReactorTime,
    token: bytes | None = None,
    backlog: int = DEFAULT_BACKLOG,
    metrics: bool | None = None,
) -> ApiSite:
    """
    The HTTP API of C{node}, to listen with.

    @param clock: For the streams' keep-alives and status ticks.
    @param token: The client token requests must give, or L{None}.
    @param backlog: The most bytes a stream holds for a reader that does
        not read before it ends the stream.
    @param metrics: Serve C{/metrics}: L{None} (the default) when
        C{prometheus_client} is installed.
    """
    metrics_resource: IResource | None = None
    if metrics is None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            metrics = False
        else:
            metrics = True
    if metrics:
        from isis_twisted.api.metrics import metrics_resource as make

        metrics_resource = make(cast(Any, node))
    api = HttpApi(node, clock, token, backlog, _machine_names())
    return ApiSite(api, metrics_resource, max(MAX_BODY, 2 * node.max_payload))


def _machine_names() -> list[str]:
    # The host name, not the FQDN: finding that is a name lookup, which
    # may hang a start.
    return [socket.gethostname()]
