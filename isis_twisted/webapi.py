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
import re
import socket
from collections.abc import Sequence
from importlib.resources import files
from typing import Any, cast

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from isis_twisted.client import DEFAULT_BACKLOG
from isis_twisted.engine import Delivery
from isis_twisted.interfaces import HistoryGoneError
from isis_twisted.node import (
    BackPressureError,
    DeliveryUnknownError,
    NodeRemovedError,
    NodeStoppedError,
)
from isis_twisted.webformat import (
    BodyError,
    answer_fields,
    error_body,
    json_bytes,
    media_type,
    read_payloads,
    wants_ndjson,
)
from isis_twisted.webstream import (
    DeliveryStream,
    StatusStream,
    WebNode,
    status_data,
    stream_type,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_BODY",
    "MAX_STREAMS",
    "MAX_TIMEOUT",
    "ApiRequest",
    "ApiSite",
    "HttpApi",
    "api_site",
]

DEFAULT_TIMEOUT = 60.0
"""
Seconds a C{POST /messages} waits for its messages' delivery by default
(C{?timeout=}) before it answers 504.
"""

MAX_TIMEOUT = 3600.0
"""
The longest C{?timeout=} taken.
"""

MAX_STREAMS = 1024
"""
The most streams (deliveries and status) a member serves at once.
"""

MAX_BODY = 32 << 20
"""
The largest request body taken by default, in bytes (more when one message
may be larger: twice the node's largest payload, for base64).
"""

_JSON = b"application/json; charset=utf-8"


def _json(request: Request, code: int, data: object) -> bytes:
    return _answer(request, code, json_bytes(data))


def _answer(request: Request, code: int, body: bytes) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", _JSON)
    request.setHeader(b"Cache-Control", b"no-store")
    return body + b"\n"


def _error(request: Request, code: int, sentence: str, **extra: object) -> bytes:
    return _answer(request, code, error_body(sentence, **extra))


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
        from io import BytesIO

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
            _Root(api, metrics), reactor=api.clock
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


class _JsonResource(Resource):
    """
    A route: unsupported methods, unexpected failures and the token are
    answered in JSON here, once for all routes.
    """

    isLeaf = True
    _log = Logger()
    needs_token = True

    def __init__(self, api: HttpApi) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.api = api

    def render(self, request: Request) -> bytes | int:
        """
        Check the token and the path, then answer with the method's
        C{render_*}, in JSON also when it fails.
        """
        refusal = self.api.foreign(request)
        if refusal is not None:
            return _error(request, 403, refusal)
        if request.postpath not in ([], [b""]):
            return _error(request, 404, "no such route")
        method = request.method.decode("latin-1")
        if method == "HEAD":
            method = "GET"
        render = getattr(self, f"render_{method}", None)
        if render is None:
            allowed = sorted(
                name[7:] for name in dir(self) if name.startswith("render_")
            )
            allowed = [m for m in allowed if m.isupper()]
            request.setHeader(b"Allow", ", ".join(allowed).encode("ascii"))
            return _error(
                request, 405, f"{method} is not allowed here; use {', '.join(allowed)}"
            )
        if self.needs_token and not self.api.authorised(request):
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="isis"')
            return _error(
                request,
                401,
                "this member wants its client token: Authorization: Bearer TOKEN",
            )
        try:
            return cast(bytes | int, render(request))
        except Exception:
            self._log.failure(
                "HTTP API: {method} {path} failed", method=method, path=request.path
            )
            return _error(request, 500, "the member failed to answer; its log says why")


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
        self.wrong_tokens = 0
        self.late_failures = 0
        self.foreign_requests = 0
        self.dropped_readers = 0
        self.streams: set[Any] = set()

    def status(self) -> dict[str, Any]:
        """
        The node's status as C{isis status --json} gives it, with this
        API's counters as C{http_api}.
        """
        return {**status_data(self.node), "http_api": self.counters()}

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
        return {
            "wrong_tokens": self.wrong_tokens,
            "late_failures": self.late_failures,
            "foreign_requests": self.foreign_requests,
            "dropped_readers": self.dropped_readers,
            "open_streams": len(self.streams),
        }

    def dropped(self, peer: object, resume: int) -> None:
        """
        A reader of the delivery stream read too slowly and was dropped:
        logged the first time, counted every time.
        """
        if not self.dropped_readers:
            self._log.warn(
                "HTTP API: ended the delivery stream of the reader at {peer}: it"
                " read too slowly; it can resume from index {index} (counted"
                " from now on, in /status, not logged again)",
                peer=peer,
                index=resume,
            )
        self.dropped_readers += 1

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
        if not self.foreign_requests:
            self._log.warn(
                "HTTP API: refused a request from {peer}: {problem} (counted from"
                " now on, in /status, not logged again)",
                peer=request.getClientAddress(),
                problem=problem,
            )
        self.foreign_requests += 1
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
        if not self.wrong_tokens:
            self._log.warn(
                "HTTP API: refused a request without the client token from"
                " {peer} (counted from now on, in /status, not logged again)",
                peer=request.getClientAddress(),
            )
        self.wrong_tokens += 1
        return False


def _argument(request: Request, name: bytes) -> str | None:
    values = request.args.get(name) if request.args else None
    return values[0].decode("utf-8", "replace") if values else None


def _index(value: str, what: str) -> int:
    # Digits only: int() would also take "1_0", " 2", "+3" and other
    # scripts' digits.
    if not _DIGITS.fullmatch(value):
        raise BodyError(400, f"{what} {value!r} is not an index")
    return int(value)


_DIGITS = re.compile("[0-9]{1,20}")


_WAIT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class _Messages(_JsonResource):
    """
    C{/messages}: multicast (POST) and the delivery stream (GET).
    """

    def render_POST(self, request: Request) -> bytes | int:
        """
        Multicast the body's messages, in order; answer once each is
        delivered (or at once, with C{?wait=false}).
        """
        api = self.api
        node = api.node
        if cast(ApiRequest, request).too_large:
            # Its body was read to the end and dropped, but a client that
            # sends one that large may send more: it gets a new connection.
            request.setHeader(b"Connection", b"close")
            request.channel.persistent = False
            return _error(
                request,
                413,
                f"the body is larger than the {cast(ApiRequest, request)._bound}"
                " bytes this member takes in one request; send fewer messages"
                " per request",
            )
        assert request.content is not None
        given = _argument(request, b"wait")
        wait = _WAIT.get((given or "true").lower())
        if wait is None:
            return _error(request, 400, f"wait={given!r} is not true or false")
        limit = _argument(request, b"timeout") or str(DEFAULT_TIMEOUT)
        try:
            timeout = float(limit)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= MAX_TIMEOUT:
            return _error(
                request, 400, f"timeout={limit!r} is not 0 to {MAX_TIMEOUT} seconds"
            )
        body = request.content.getvalue()
        if request.getHeader(b"Content-Type") is None and not body:
            return _error(
                request,
                400,
                "the body is empty and has no Content-Type; to send an empty"
                " message, say Content-Type: application/octet-stream",
            )
        try:
            payloads = read_payloads(request.getHeader(b"Content-Type"), body)
        except BodyError as e:
            return _error(request, e.code, str(e))
        largest = max(len(p) for p in payloads)
        if largest > node.max_payload:
            return _error(
                request,
                413,
                f"a message of {largest} bytes is larger than the"
                f" {node.max_payload} bytes this member takes (its --max-frame);"
                " nothing was sent",
            )
        problem = node.cannot_deliver()
        if problem is not None:
            kind, sentence, waiting = problem
            if kind == "blocked":
                # The others may come back; a removed or stopped member
                # stays so.
                request.setHeader(b"Retry-After", b"1")
            return _error(
                request,
                503,
                f"{sentence}; nothing was sent",
                kind=kind,
                waiting_for=list(waiting),
            )
        outcome = node.multicast_all(payloads)
        if not wait:
            outcome.addCallback(self._late, request).addErrback(
                lambda f: self._log.failure("HTTP API: a POST failed", f)
            )
            return _json(request, 202, {"queued": len(payloads)})
        gone: list[object] = []
        request.notifyFinish().addErrback(gone.append)

        def expire() -> None:
            # Multicast already: the messages may still be delivered, and
            # only the stream can tell.
            gone.append(None)
            request.write(
                _error(
                    request,
                    504,
                    f"not every message was delivered within {timeout} s (the"
                    " view may have lost its majority); they may still be:"
                    " look for them in the delivery stream",
                    kind="delivery_unknown",
                )
            )
            request.finish()

        timer = api.clock.callLater(timeout, expire)

        def answer(results: list[Delivery | BaseException]) -> None:
            if timer.active():
                timer.cancel()
            if gone:
                return
            request.write(self._outcomes(request, results))
            request.finish()

        def failed(failure: Failure) -> None:
            if timer.active():
                timer.cancel()
            self._log.failure("HTTP API: a POST failed", failure)
            if not gone:
                request.write(
                    _error(
                        request, 500, "the member failed to answer; its log says why"
                    )
                )
                request.finish()

        outcome.addCallbacks(answer, failed)
        return NOT_DONE_YET

    def _outcomes(
        self, request: Request, results: Sequence[Delivery | BaseException]
    ) -> bytes:
        node = self.api.node
        records: list[dict[str, object] | None] = []
        failed: list[dict[str, object]] = []
        code = 200
        first_kind = ""
        for position, result in enumerate(results):
            if isinstance(result, Delivery):
                records.append(answer_fields(result, node.view_at(result.index)))
                continue
            records.append(None)
            kind = _failure_kind(result)
            failed.append({"position": position, "kind": kind, "error": str(result)})
            if not first_kind:
                code = _failure_code(result)
                first_kind = kind
        body: dict[str, object] = {"records": records}
        if failed and len(failed) < len(results):
            # Some were delivered: a client (or a proxy) that retried the
            # whole request on a 503 would deliver those twice.
            code = 207
        if failed:
            body["failed"] = failed
            body["error"] = (
                f"{len(failed)} of {len(results)} messages failed; the first:"
                f" {failed[0]['error']}"
            )
            if code == 503 and first_kind == "back_pressure":
                request.setHeader(b"Retry-After", b"1")
        return _json(request, code, body)

    def _late(self, results: list[Delivery | BaseException], request: Request) -> None:
        # Nobody waits for these answers; a failure is the log's, once.
        failures = [r for r in results if not isinstance(r, Delivery)]
        if not failures:
            return
        api = self.api
        if not api.late_failures:
            self._log.warn(
                "HTTP API: {count} messages posted with wait=false failed: {error}"
                " (counted from now on, not logged again)",
                count=len(failures),
                error=failures[0],
            )
        api.late_failures += len(failures)

    def render_GET(self, request: Request) -> bytes | int:
        """
        Stream the deliveries from C{?from=INDEX} (or the C{Last-Event-ID}
        header's index plus one; else only new ones).
        """
        api = self.api
        try:
            since = self._since(request)
        except BodyError as e:
            return _error(request, e.code, str(e))
        ndjson = wants_ndjson(request.requestHeaders.getRawHeaders(b"Accept", []))
        if request.method == b"HEAD":
            return _stream_head(request, ndjson)
        if len(api.streams) >= MAX_STREAMS:
            return _error(
                request,
                503,
                f"member {api.node.me!r} already serves {MAX_STREAMS} streams;"
                " read from another member, or close one",
                kind="busy",
            )
        try:
            DeliveryStream(
                request,
                api.node,
                since,
                api.clock,
                ndjson,
                api.backlog,
                api.streams,
                api.dropped,
            )
        except HistoryGoneError as e:
            return _error(request, 410, str(e), resume_from=e.oldest)
        return NOT_DONE_YET

    def _since(self, request: Request) -> int | None:
        last = request.getHeader(b"Last-Event-ID")
        if last is not None and last.strip():
            return _index(last.decode("latin-1").strip(), "Last-Event-ID") + 1
        value = _argument(request, b"from")
        return None if value is None else max(1, _index(value, "from"))


def _stream_head(request: Request, ndjson: bool) -> bytes:
    # What a stream's answer would begin with, and no stream: a HEAD ends.
    request.setHeader(b"Content-Type", stream_type(ndjson))
    return b""


def _failure_kind(error: BaseException) -> str:
    """
    What kind of failure a message of a batch had: C{back_pressure} and
    C{stopped} were never sent (safe to send again), C{delivery_unknown}
    may still be delivered, C{removed} never will, C{bad_payload} was
    refused.
    """
    for cls, kind in (
        (BackPressureError, "back_pressure"),
        (NodeStoppedError, "stopped"),
        (DeliveryUnknownError, "delivery_unknown"),
        (NodeRemovedError, "removed"),
        (TypeError, "bad_payload"),
        (ValueError, "bad_payload"),
    ):
        if isinstance(error, cls):
            return kind
    return "failed"


def _failure_code(error: BaseException) -> int:
    if isinstance(
        error,
        BackPressureError | NodeStoppedError | NodeRemovedError | DeliveryUnknownError,
    ):
        return 503
    if isinstance(error, TypeError | ValueError):
        return 400
    return 500


_MIN_EVERY, _MAX_EVERY = 0.1, 60.0


class _Status(_JsonResource):
    """
    C{/status}: the node's status, once or as a stream.
    """

    def render_GET(self, request: Request) -> bytes | int:
        """
        The status as JSON, or every C{?every=SECONDS} (default 1) as SSE
        (C{Accept: text/event-stream}) or NDJSON.
        """
        api = self.api
        accept = request.requestHeaders.getRawHeaders(b"Accept", [])
        sse = any(
            media_type(entry) == "text/event-stream"
            for header in accept
            for entry in header.split(b",")
        )
        ndjson = wants_ndjson(accept)
        if not (sse or ndjson):
            return _json(request, 200, api.status())
        if request.method == b"HEAD":
            return _stream_head(request, ndjson)
        every = _argument(request, b"every") or "1"
        try:
            seconds = float(every)
        except ValueError:
            seconds = -1.0
        if not _MIN_EVERY <= seconds <= _MAX_EVERY:
            return _error(
                request,
                400,
                f"every={every!r} is not {_MIN_EVERY} to {_MAX_EVERY} seconds",
            )
        StatusStream(request, api.status, api.clock, ndjson, seconds, api.streams)
        return NOT_DONE_YET


class _Missing(_JsonResource):
    """
    A route that is not there, with why.
    """

    needs_token = False

    def __init__(self, api: HttpApi, sentence: str) -> None:
        super().__init__(api)
        self.sentence = sentence

    def render(self, request: Request) -> bytes:
        """
        404, with the sentence.
        """
        return _error(request, 404, self.sentence)


class _File(_JsonResource):
    """
    One file of the status page, from the package.
    """

    needs_token = False

    def __init__(self, api: HttpApi, name: str, content_type: bytes) -> None:
        super().__init__(api)
        self.data = (files("isis_twisted") / "page" / name).read_bytes()
        self.content_type = content_type

    def render_GET(self, request: Request) -> bytes:
        """
        The file.
        """
        request.setHeader(b"Content-Type", self.content_type)
        request.setHeader(b"Cache-Control", b"no-cache")
        # The page loads nothing from elsewhere, and nothing may load it.
        request.setHeader(
            b"Content-Security-Policy",
            b"default-src 'self'; frame-ancestors 'none'",
        )
        return self.data


class _NoIcon(_JsonResource):
    """
    C{/favicon.ico}, which browsers ask for by themselves: nothing, rather
    than a 404 in every page load's console.
    """

    needs_token = False

    def render_GET(self, request: Request) -> bytes:
        """
        204.
        """
        request.setResponseCode(204)
        return b""


class _Metrics(_JsonResource):
    """
    C{/metrics}: the node's Prometheus metrics, behind the same checks as
    every route.
    """

    def __init__(self, api: HttpApi, metrics: Any) -> None:
        super().__init__(api)
        self.metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        """
        The metrics in the Prometheus text format.
        """
        return cast(bytes, self.metrics.render_GET(request))


class _Root(Resource):
    """
    The routes.
    """

    def __init__(self, api: HttpApi, metrics: IResource | None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._routes: dict[bytes, IResource] = {
            b"": _File(api, "index.html", b"text/html; charset=utf-8"),
            b"page.js": _File(api, "page.js", b"text/javascript; charset=utf-8"),
            b"page.css": _File(api, "page.css", b"text/css; charset=utf-8"),
            b"messages": _Messages(api),
            b"status": _Status(api),
            b"favicon.ico": _NoIcon(api),
            b"metrics": (
                _Missing(
                    api,
                    "metrics need prometheus_client: pip install"
                    " 'isis-twisted[metrics]'",
                )
                if metrics is None
                else _Metrics(api, metrics)
            ),
        }
        self._missing = _Missing(api, "no such route")

    def getChild(self, path: bytes, request: Request) -> IResource:
        """
        The route for C{path}, or a JSON 404.
        """
        return self._routes.get(path, self._missing)


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
        from isis_twisted.metrics import metrics_resource as make

        metrics_resource = make(cast(Any, node))
    api = HttpApi(node, clock, token, backlog, _machine_names())
    return ApiSite(api, metrics_resource, max(MAX_BODY, 2 * node.max_payload))


def _machine_names() -> list[str]:
    # Asked once, when the API is made: a name lookup may take a while.
    # Not the FQDN: that is a name lookup, which may hang a start.
    return [socket.gethostname()]
