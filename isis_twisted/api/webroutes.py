"""
The routes of the HTTP API (L{isis_twisted.api.webapi}): each a
L{twisted.web.resource.Resource} that reads its request, asks the node and
answers in JSON, or hands the request to a stream
(L{isis_twisted.api.webstream}).  What the routes share (the node, the token,
the counters) is an L{isis_twisted.api.webapi.HttpApi}.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any, cast

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from isis_twisted.api.webformat import (
    BodyError,
    answer_fields,
    error_body,
    json_bytes,
    read_payloads,
    wants_events,
    wants_ndjson,
)
from isis_twisted.api.webstream import DeliveryStream, StatusStream, stream_type
from isis_twisted.core.engine import Delivery
from isis_twisted.interfaces import HistoryGoneError
from isis_twisted.net.node import (
    BackPressureError,
    DeliveryUnknownError,
    NodeRemovedError,
    NodeStoppedError,
)

if TYPE_CHECKING:
    from isis_twisted.api.webapi import ApiRequest, HttpApi

__all__ = ["DEFAULT_TIMEOUT", "MAX_STREAMS", "MAX_TIMEOUT", "Root", "error"]

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

_JSON = b"application/json; charset=utf-8"


def _json(request: Request, code: int, data: object) -> bytes:
    return _answer(request, code, json_bytes(data))


def _answer(request: Request, code: int, body: bytes) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", _JSON)
    request.setHeader(b"Cache-Control", b"no-store")
    return body + b"\n"


def error(request: Request, code: int, sentence: str, **extra: object) -> bytes:
    return _answer(request, code, error_body(sentence, **extra))


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
            return error(request, 403, refusal)
        if request.postpath not in ([], [b""]):
            return error(request, 404, "no such route")
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
            return error(
                request, 405, f"{method} is not allowed here; use {', '.join(allowed)}"
            )
        if self.needs_token and not self.api.authorised(request):
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="isis"')
            return error(
                request,
                401,
                "this member wants its client token: Authorization: Bearer TOKEN",
            )
        try:
            answer = cast(bytes | int, render(request))
            if request.method == b"HEAD" and isinstance(answer, bytes):
                # The head of what GET answers, without the body (Twisted
                # would log a line for every HEAD that returned one).
                request.setHeader(b"Content-Length", b"%d" % len(answer))
                return b""
            return answer
        except Exception:
            self._log.failure(
                "HTTP API: {method} {path} failed", method=method, path=request.path
            )
            return error(request, 500, "the member failed to answer; its log says why")


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
        bounded = cast("ApiRequest", request)
        if bounded.too_large:
            # Its body was read to the end and dropped, but a client that
            # sends one that large may send more: it gets a new connection.
            request.setHeader(b"Connection", b"close")
            request.channel.persistent = False
            return error(
                request,
                413,
                f"the body is larger than the {bounded._bound}"
                " bytes this member takes in one request; send fewer messages"
                " per request",
            )
        assert request.content is not None
        given = _argument(request, b"wait")
        wait = _WAIT.get((given or "true").lower())
        if wait is None:
            return error(request, 400, f"wait={given!r} is not true or false")
        limit = _argument(request, b"timeout") or str(DEFAULT_TIMEOUT)
        try:
            timeout = float(limit)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= MAX_TIMEOUT:
            return error(
                request,
                400,
                f"timeout={limit!r} is not more than 0 and at most"
                f" {MAX_TIMEOUT} seconds",
            )
        body = request.content.getvalue()
        if request.getHeader(b"Content-Type") is None and not body:
            return error(
                request,
                400,
                "the body is empty and has no Content-Type; to send an empty"
                " message, say Content-Type: application/octet-stream",
            )
        try:
            payloads = read_payloads(request.getHeader(b"Content-Type"), body)
        except BodyError as e:
            return error(request, e.code, str(e))
        largest = max(len(p) for p in payloads)
        if largest > node.max_payload:
            return error(
                request,
                413,
                f"a message of {largest} bytes is larger than the"
                f" {node.max_payload} bytes this member takes (its --max-frame);"
                " nothing was sent",
            )
        problem = node.cannot_deliver()
        if problem is not None:
            kind, sentence, waiting = problem
            if kind in ("blocked", "joining"):
                # The others may come back, the group add it; a removed or
                # stopped member stays so.
                request.setHeader(b"Retry-After", b"1")
            return error(
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
                error(
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
                    error(request, 500, "the member failed to answer; its log says why")
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
        self.api.note(
            "late_failures",
            "{count} messages posted with wait=false failed: {error}",
            len(failures),
            count=len(failures),
            error=failures[0],
        )

    def render_GET(self, request: Request) -> bytes | int:
        """
        Stream the deliveries from C{?from=INDEX} (or the C{Last-Event-ID}
        header's index plus one; else only new ones).
        """
        api = self.api
        try:
            since = self._since(request)
        except BodyError as e:
            return error(request, e.code, str(e))
        ndjson = wants_ndjson(request.requestHeaders.getRawHeaders(b"Accept", []))
        busy = _busy(request, api)
        if busy is not None:
            return busy
        if request.method == b"HEAD":
            return _stream_head(request, ndjson)
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
            return error(request, 410, str(e), resume_from=e.oldest)
        return NOT_DONE_YET

    def _since(self, request: Request) -> int | None:
        last = request.getHeader(b"Last-Event-ID")
        if last is not None and last.strip():
            return _index(last.decode("latin-1").strip(), "Last-Event-ID") + 1
        value = _argument(request, b"from")
        return None if value is None else max(1, _index(value, "from"))


def _busy(request: Request, api: HttpApi) -> bytes | None:
    # Every stream holds a subscription or a timer and up to a backlog.
    if len(api.streams) < MAX_STREAMS:
        return None
    request.setHeader(b"Retry-After", b"1")
    return error(
        request,
        503,
        f"member {api.node.me!r} already serves {MAX_STREAMS} streams; read"
        " from another member, or close one",
        kind="busy",
    )


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
        ndjson = wants_ndjson(accept)
        if not wants_events(accept):
            return _json(request, 200, api.status())
        if request.method == b"HEAD":
            return _stream_head(request, ndjson)
        every = _argument(request, b"every") or "1"
        try:
            seconds = float(every)
        except ValueError:
            seconds = -1.0
        if not _MIN_EVERY <= seconds <= _MAX_EVERY:
            return error(
                request,
                400,
                f"every={every!r} is not {_MIN_EVERY} to {_MAX_EVERY} seconds",
            )
        busy = _busy(request, api)
        if busy is not None:
            return busy
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
        return error(request, 404, self.sentence)


class _File(_JsonResource):
    """
    One file of the status page, from the package.
    """

    needs_token = False

    def __init__(self, api: HttpApi, name: str, content_type: bytes) -> None:
        super().__init__(api)
        self.data = (files("isis_twisted.api") / "page" / name).read_bytes()
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


class Root(Resource):
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
