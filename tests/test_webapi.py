"""
Tests for L{isis_twisted.api.webapi} and L{isis_twisted.api.webstream}: every route
of the HTTP API, through a real L{ApiSite} on a L{StringTransport}.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http import HTTPChannel

from isis_twisted.api.nodecontrol import DEFAULT_BACKLOG
from isis_twisted.api.webapi import (
    DEFAULT_TIMEOUT,
    MAX_BODY,
    MAX_STREAMS,
    ApiSite,
    HttpApi,
    api_site,
)
from isis_twisted.api.webstream import CHUNK_BYTES, KEEPALIVE_S
from isis_twisted.core.checker import record_fields
from isis_twisted.core.engine import Delivery, ViewChange
from isis_twisted.core.status import NodeStatus
from isis_twisted.net.node import BackPressureError
from tests.test_client import FakeNode

TOKEN = b"a-token-of-twenty-bytes"


class WebNode(FakeNode):
    """
    A L{FakeNode} with what the HTTP API needs besides.
    """

    max_payload = 1000

    def __init__(self, hold: bool = False) -> None:
        super().__init__(hold=hold)
        self.problem: tuple[str, str, tuple[str, ...]] | None = None
        self.views: list[tuple[int, int]] = []

    def view_at(self, index: int) -> int | None:
        view = 0
        for start, number in self.views:
            if start <= index:
                view = number
        return view

    def cannot_deliver(self) -> tuple[str, str, tuple[str, ...]] | None:
        return self.problem

    def status(self) -> NodeStatus:  # type: ignore[override]
        return attrs.evolve(STATUS, delivered=self.next_index - 1)

    def install(self, view: int, members: tuple[str, ...]) -> ViewChange:
        self.views.append((self.next_index, view))
        return super().install(view, members)


@attrs.define
class Answer:
    """
    An HTTP answer, read off the wire.
    """

    code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        assert self.headers["content-type"].startswith("application/json"), self
        return json.loads(self.body)


def read_answer(raw: bytes) -> tuple[Answer, bytes]:
    """
    The first answer in C{raw} (its body de-chunked, as far as it came),
    and what follows it.
    """
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                rest = rest[2:]
                break
            body += rest[:size]
            rest = rest[size + 2 :]
        return Answer(code, headers, body), rest
    length = int(headers.get("content-length", "0"))
    return Answer(code, headers, rest[:length]), rest[length:]


class FullTransport(StringTransport):
    """
    A transport whose buffer fills, as a real one does when the reader
    does not read: past C{size} bytes it pauses its producer.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.value()) > self.size and self.producer is not None:
            self.producer.pauseProducing()

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))


class Connection:
    """
    One client connection to a site, on a L{StringTransport}.
    """

    def __init__(self, site: ApiSite, transport: StringTransport | None = None) -> None:
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4321))
        assert protocol is not None
        self.transport = transport or StringTransport()
        protocol.makeConnection(self.transport)
        # Past the wrapper that would choose HTTP/2: the channel itself.
        self.channel: HTTPChannel = getattr(protocol, "_channel", protocol)

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        lines = [f"{method} {path} HTTP/1.1"]
        if not any(name == "Host" for name, _ in headers):
            lines.append("Host: 127.0.0.1:9301")
        lines += [f"{name}: {value}" for name, value in headers]
        if body is not None and not any(n == "Transfer-Encoding" for n, _ in headers):
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        self.channel.dataReceived(raw)

    def answer(self) -> Answer:
        answer, _ = read_answer(self.transport.value())
        return answer

    def close(self) -> None:
        self.channel.connectionLost(Exception("gone"))


def events(body: bytes) -> list[dict[str, str]]:
    """
    The Server-Sent Events in C{body}, each as its fields (comments too, as
    C{":"}).
    """
    out = []
    for block in body.decode("utf-8").split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            fields[name or ":"] = value.lstrip(" ")
        out.append(fields)
    return out


class RouteTestCase(SynchronousTestCase):
    """
    A site over a L{WebNode}, and requests to it.
    """

    def observe(self) -> EventLoggingObserver:
        """
        What is logged from now until the test ends.
        """
        observer = EventLoggingObserver()
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return observer

    def setUp(self) -> None:
        self.node = WebNode()
        self.clock = Clock()
        self.site = api_site(self.node, self.clock, metrics=True)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Sequence[tuple[str, str]] = (),
        site: ApiSite | None = None,
    ) -> tuple[Answer, Connection]:
        connection = Connection(site or self.site)
        connection.send(method, path, body, headers)
        return connection.answer(), connection


class PostTests(RouteTestCase):
    """
    C{POST /messages}.
    """

    def post(
        self, body: bytes, kind: str = "text/plain", path: str = "/messages"
    ) -> Answer:
        answer, _ = self.request("POST", path, body, [("Content-Type", kind)])
        return answer

    def test_one(self) -> None:
        """
        A raw body is one message, answered once delivered with its record.
        """
        answer = self.post(b"hello")
        self.assertEqual(answer.code, 200)
        self.assertEqual(self.node.received, [b"hello"])
        self.assertEqual(
            answer.json(),
            {
                "records": [
                    {"index": 1, "sender": "a", "clock": 1, "view": 0, "after": 0}
                ]
            },
        )

    def test_batch(self) -> None:
        """
        A JSON array or NDJSON body is many messages, in order, each
        answered with its record, in the view it was delivered in.
        """
        self.node.install(3, ("a", "b"))
        answer = self.post(b'["x", {"base64": "AP8="}]', "application/json")
        more = self.post(b'"y"\n"z"\n', "application/x-ndjson")
        self.assertEqual(self.node.received, [b"x", b"\x00\xff", b"y", b"z"])
        records = answer.json()["records"] + more.json()["records"]  # type: ignore[index]
        self.assertEqual([r["index"] for r in records], [1, 2, 3, 4])
        self.assertEqual({r["view"] for r in records}, {3})

    def test_waits_for_delivery(self) -> None:
        """
        The answer waits for the delivery; a client gone meanwhile costs
        nothing but its answer (the message was multicast).
        """
        self.node.hold = True
        connection = Connection(self.site)
        connection.send("POST", "/messages", b"a", [("Content-Type", "text/plain")])
        self.assertEqual(connection.transport.value(), b"")
        self.node.release()
        self.assertEqual(connection.answer().code, 200)
        gone = Connection(self.site)
        gone.send("POST", "/messages", b"b", [("Content-Type", "text/plain")])
        gone.close()
        self.node.release()
        self.assertEqual(self.node.received, [b"a", b"b"])
        self.assertEqual(gone.transport.value(), b"")

    def test_timeout(self) -> None:
        """
        Messages not delivered within C{?timeout=} (default
        L{DEFAULT_TIMEOUT}) are answered 504: they may still be delivered.
        A late delivery then writes nothing more.
        """
        self.node.hold = True
        for path, after in (
            ("/messages?timeout=2.5", 2.5),
            ("/messages", DEFAULT_TIMEOUT),
        ):
            connection = Connection(self.site)
            connection.send("POST", path, b"a", [("Content-Type", "text/plain")])
            self.clock.advance(after - 0.1)
            self.assertEqual(connection.transport.value(), b"")
            self.clock.advance(0.1)
            answer = connection.answer()
            self.assertEqual(answer.code, 504)
            self.assertEqual(answer.json()["kind"], "delivery_unknown")  # type: ignore[index]
            written = connection.transport.value()
            self.node.release()
            self.assertEqual(connection.transport.value(), written)
        for bad in ("0", "x", "3601"):
            answer = self.post(b"a", path=f"/messages?timeout={bad}")
            self.assertEqual(answer.code, 400, bad)

    def test_no_wait(self) -> None:
        """
        With C{wait=false} the answer says at once how many were queued.
        """
        self.node.hold = True
        answer = self.post(b'["a", "b"]', "application/json", "/messages?wait=false")
        self.assertEqual((answer.code, answer.json()), (202, {"queued": 2}))
        self.assertEqual(len(self.node.pending), 2)

    def test_no_wait_failures_logged_once(self) -> None:
        """
        Failures nobody waits for are logged once, then counted.
        """
        logged = self.observe()
        self.node.fail_with = BackPressureError("full")
        for _ in range(3):
            self.post(b"a", path="/messages?wait=false")
        self.assertEqual(self.site.api.counters()["late_failures"], 3)
        self.assertEqual(len([e for e in logged if "wait=false" in str(e)]), 1)

    def test_cannot_deliver(self) -> None:
        """
        While the member cannot deliver, a POST is refused with 503 and the
        members it waits for, and nothing is multicast.
        """
        self.node.problem = (
            "blocked",
            "member 'a' cannot reach a majority",
            ("b", "c"),
        )
        answer = self.post(b"a")
        self.assertEqual(answer.code, 503)
        self.assertEqual(answer.headers["retry-after"], "1")
        self.assertEqual(
            answer.json(),
            {
                "error": "member 'a' cannot reach a majority; nothing was sent",
                "kind": "blocked",
                "waiting_for": ["b", "c"],
            },
        )
        # Out for good: nothing to retry after.
        self.node.problem = ("removed", "member 'a' is out of the group", ())
        answer = self.post(b"a")
        self.assertEqual(answer.code, 503)
        self.assertNotIn("retry-after", answer.headers)
        self.assertEqual(self.node.received, [])

    def test_partial_failure(self) -> None:
        """
        A batch some of whose messages fail is answered with each one's
        outcome, in place, and the status of the first failure.
        """
        results: list[Delivery | BaseException] = [
            Delivery(1, "a", 1, b"x"),
            BackPressureError("full up"),
        ]
        self.node.multicast_all = lambda payloads: succeed(results)  # type: ignore[method-assign]
        answer = self.post(b'["x", "y"]', "application/json")
        self.assertEqual(answer.code, 207)
        body = answer.json()
        assert isinstance(body, dict)
        self.assertEqual(body["records"][1], None)
        self.assertEqual(body["records"][0]["index"], 1)
        self.assertEqual(
            body["failed"],
            [{"position": 1, "kind": "back_pressure", "error": "full up"}],
        )
        self.assertIn("1 of 2 messages failed", body["error"])
        # None delivered: the first failure's status, and back-pressure passes.
        self.node.multicast_all = lambda payloads: succeed(results[1:])  # type: ignore[method-assign]
        answer = self.post(b'["y"]', "application/json")
        self.assertEqual((answer.code, answer.headers["retry-after"]), (503, "1"))

    def test_failure_codes(self) -> None:
        """
        A refused payload is a 400; a node failure a 503 or 500.
        """
        for error, code in ((ValueError("no"), 400), (RuntimeError("odd"), 500)):
            self.node.fail_with = error
            self.assertEqual(self.post(b"a").code, code)

    def test_node_fails_the_batch(self) -> None:
        """
        A batch that fails as a whole (it should not) is a JSON 500, and
        the failure is logged.
        """
        self.node.multicast_all = lambda payloads: fail(RuntimeError("odd"))  # type: ignore[method-assign]
        answer = self.post(b"a")
        self.assertEqual(answer.code, 500)
        self.assertIn("its log says why", answer.json()["error"])  # type: ignore[index]
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_too_large(self) -> None:
        """
        A message over the member's limit, or a body over the site's, is a
        413 and nothing is multicast.
        """
        answer = self.post(b"x" * 1001)
        self.assertEqual(answer.code, 413)
        self.assertIn("1001 bytes is larger than the 1000", answer.json()["error"])  # type: ignore[index]
        site = ApiSite(self.site.api, None, max_body=100)
        answer, connection = self.request(
            "POST", "/messages", b"x" * 101, [("Content-Type", "text/plain")], site
        )
        self.assertEqual((answer.code, answer.headers["connection"]), (413, "close"))
        self.assertTrue(connection.transport.disconnecting)
        chunked = b"40\r\n" + b"x" * 64 + b"\r\n40\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n"
        answer, _ = self.request(
            "POST",
            "/messages",
            chunked,
            [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")],
            site,
        )
        self.assertEqual(answer.code, 413)
        self.assertEqual(self.node.received, [])
        self.assertEqual(api_site(self.node, self.clock).max_body, max(MAX_BODY, 2000))

    def test_bad_arguments(self) -> None:
        """
        A C{wait} that is neither true nor false, or a body that is empty
        and untyped (C{curl -X POST} with no data), is a 400.
        """
        answer = self.post(b"a", path="/messages?wait=nope")
        self.assertEqual(answer.code, 400)
        self.assertIn("wait='nope'", answer.json()["error"])  # type: ignore[index]
        answer, _ = self.request("POST", "/messages", b"")
        self.assertEqual(answer.code, 400)
        self.assertIn("empty", answer.json()["error"])  # type: ignore[index]
        self.assertEqual(self.node.received, [])
        # Typed, an empty body is an empty message.
        self.assertEqual(self.post(b"", "application/octet-stream").code, 200)
        self.assertEqual(self.node.received, [b""])

    def test_bad_bodies(self) -> None:
        """
        Malformed JSON is a 400, an unread content type a 415, each with a
        sentence; nothing is multicast.
        """
        answer = self.post(b"[1", "application/json")
        self.assertEqual(answer.code, 400)
        self.assertIn("not JSON", answer.json()["error"])  # type: ignore[index]
        self.assertEqual(self.post(b"a", "image/png").code, 415)
        self.assertEqual(self.node.received, [])


class StreamTests(RouteTestCase):
    """
    C{GET /messages}: the delivery stream.
    """

    def stream(
        self, path: str = "/messages?from=1", headers: Sequence[tuple[str, str]] = ()
    ) -> Connection:
        connection = Connection(self.site)
        connection.send("GET", path, None, headers)
        return connection

    def body(self, connection: Connection) -> bytes:
        return connection.answer().body

    def test_sse(self) -> None:
        """
        The held deliveries, then new ones as they come, each an event
        whose id is its index; view changes are C{view} events; every
        delivery says its view.
        """
        self.node.deliver("b", b"one")
        connection = self.stream()
        answer = connection.answer()
        self.assertEqual(answer.code, 200)
        self.assertEqual(
            answer.headers["content-type"], "text/event-stream; charset=utf-8"
        )
        self.node.install(1, ("a", "b"))
        self.node.deliver("a", b"\xff")
        got = events(self.body(connection))
        self.assertEqual(got[0], {":": 'deliveries of member "a"'})
        self.assertEqual(got[1]["id"], "1")
        self.assertEqual(
            json.loads(got[1]["data"]),
            {"index": 1, "sender": "b", "clock": 1, "payload": "one", "view": 0},
        )
        self.assertEqual(got[2]["event"], "view")
        self.assertEqual(
            json.loads(got[2]["data"]), {"view": 1, "members": ["a", "b"], "index": 2}
        )
        self.assertEqual(json.loads(got[3]["data"])["payload_b64"], "/w==")
        self.assertEqual(json.loads(got[3]["data"])["view"], 1)

    def test_ndjson(self) -> None:
        """
        With C{Accept: application/x-ndjson}, the stream is lines of the
        C{jsonl:} handler's form, each delivery with its view.
        """
        self.node.deliver("b", b"one")
        self.node.install(1, ("a", "b"))
        connection = self.stream(headers=[("Accept", "application/x-ndjson")])
        self.node.deliver("a", b"two")
        lines = [json.loads(line) for line in self.body(connection).splitlines()]
        expected: list[dict[str, object]] = []
        for record in self.node.history:
            fields = record_fields(record)
            if isinstance(record, Delivery):
                fields["view"] = self.node.view_at(record.index)
            expected.append(fields)
        self.assertEqual(lines, expected)

    def test_resume(self) -> None:
        """
        C{Last-Event-ID} (a browser resuming) wins over C{from}; without
        either, only new deliveries come.
        """
        for n in range(3):
            self.node.deliver("a", b"%d" % n)
        resumed = self.stream(headers=[("Last-Event-ID", "2")])
        fresh = self.stream("/messages")
        self.node.deliver("a", b"new")
        self.assertEqual(
            [e.get("id") for e in events(self.body(resumed))], [None, "3", "4"]
        )
        self.assertEqual([e.get("id") for e in events(self.body(fresh))], [None, "4"])

    def test_gone_and_bad_index(self) -> None:
        """
        An index older than the member holds is a 410 saying where to
        resume; one that is no index a 400.
        """
        self.node.forget(5)
        answer, _ = self.request("GET", "/messages?from=2")
        self.assertEqual(answer.code, 410)
        self.assertIn("resubscribe from 5", answer.json()["error"])  # type: ignore[index]
        self.assertEqual(answer.json()["resume_from"], 5)  # type: ignore[index]
        for path, header in (
            ("/messages?from=x", ()),
            ("/messages?from=-1", ()),
            ("/messages", (("Last-Event-ID", "z"),)),
        ):
            answer, _ = self.request("GET", path, headers=header)
            self.assertEqual(answer.code, 400, path)

    def test_reader_gone(self) -> None:
        """
        A reader that disconnects mid-stream is unsubscribed.
        """
        connection = self.stream()
        [subscription] = self.node.subscriptions
        connection.close()
        self.assertTrue(subscription.cancelled)

    def test_slow_reader(self) -> None:
        """
        A reader that stops reading is held for up to the backlog, then
        its stream ends with an event saying where to resume, and the
        connection is cut if it still does not read.
        """
        self.site.api.backlog = 10_000
        connection = self.stream()
        [subscription] = self.node.subscriptions
        self.node.deliver("a", b"first")
        connection.channel.pauseProducing()
        for _ in range(20):
            self.node.deliver("a", b"x" * 1000)
        got = events(self.body(connection))
        self.assertEqual(got[-1]["event"], "dropped")
        self.assertEqual(json.loads(got[-1]["data"])["resume_from"], 2)
        self.assertEqual([e.get("id") for e in got[:-1]], [None, "1"])
        self.assertTrue(subscription.cancelled)
        self.clock.advance(30)
        self.assertTrue(connection.transport.disconnecting)

    def test_slow_reader_replay(self) -> None:
        """
        A replay is bounded as live deliveries are: a reader that does not
        read is dropped part-way, with where to resume.
        """
        for n in range(200):
            self.node.deliver("a", b"%03d" % n + b"x" * 997)
        self.site.api.backlog = 10_000
        connection = Connection(self.site, FullTransport(20_000))
        connection.send("GET", "/messages?from=1")
        got = events(self.body(connection))
        self.assertEqual(got[-1]["event"], "dropped")
        resume = json.loads(got[-1]["data"])["resume_from"]
        self.assertEqual([int(e["id"]) for e in got[1:-1]], list(range(1, resume)))
        # One chunk went out before the reader was seen not to read.
        self.assertLess(len(connection.transport.value()), CHUNK_BYTES + 20_000)
        self.assertEqual(self.node.subscriptions, [])

    def test_held_then_written(self) -> None:
        """
        What was held while the reader did not read is written, in order,
        once it reads again.
        """
        connection = self.stream()
        connection.channel.pauseProducing()
        self.node.deliver("a", b"1")
        self.node.deliver("a", b"2")
        self.assertEqual([e.get("id") for e in events(self.body(connection))], [None])
        connection.channel.resumeProducing()
        self.assertEqual(
            [e.get("id") for e in events(self.body(connection))], [None, "1", "2"]
        )

    def test_head(self) -> None:
        """
        A HEAD of a stream answers its head and ends: nothing subscribes,
        and the connection serves the next request.
        """
        connection = self.stream("/messages?from=1")
        connection.transport.clear()
        connection = Connection(self.site)
        connection.send("HEAD", "/messages")
        answer = connection.answer()
        self.assertEqual(answer.code, 200)
        self.assertTrue(answer.headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(len(self.node.subscriptions), 1)
        connection.transport.clear()
        connection.send("GET", "/status")
        self.assertEqual(connection.answer().code, 200)
        # Any other route's HEAD: GET's head, its length, no body.
        logged = self.observe()
        answer, _ = self.request("HEAD", "/status")
        self.assertEqual((answer.code, answer.body), (200, b""))
        self.assertGreater(int(answer.headers["content-length"]), 100)
        self.assertEqual([e for e in logged if "eat it" in str(e)], [])

    def test_busy(self) -> None:
        """
        Past L{MAX_STREAMS} open streams, a new one of either kind is a 503
        C{busy}.
        """
        self.site.api.streams.update(object() for _ in range(MAX_STREAMS))
        for path, accept in (("/messages", "*/*"), ("/status", "text/event-stream")):
            answer, _ = self.request("GET", path, headers=[("Accept", accept)])
            self.assertEqual(answer.code, 503, path)
            self.assertEqual(answer.json()["kind"], "busy")  # type: ignore[index]
        self.assertEqual(self.node.subscriptions, [])
        self.site.api.streams.clear()

    def test_member_stops(self) -> None:
        """
        When the member stops listening, every open stream ends with an
        C{end} event (NDJSON: a last line) saying where to resume, and
        the status streams end.
        """
        self.node.deliver("a", b"1")
        sse = self.stream()
        ndjson = self.stream(headers=[("Accept", "application/x-ndjson")])
        status = Connection(self.site)
        status.send("GET", "/status", None, [("Accept", "text/event-stream")])
        self.assertEqual(self.site.api.counters()["open_streams"], 3)
        drained = self.site.drain()
        # A test transport never says its bytes are out: the wait ends at
        # its bound.
        self.assertNoResult(drained)
        self.clock.advance(2.0)
        self.assertIsNone(self.successResultOf(drained))
        last = events(self.body(sse))[-1]
        self.assertEqual(last["event"], "end")
        self.assertEqual(json.loads(last["data"])["resume_from"], 2)
        line = json.loads(self.body(ndjson).splitlines()[-1])
        self.assertEqual(line["resume_from"], 2)
        self.assertIn("is stopping", line["error"])
        self.assertEqual(self.site.api.counters()["open_streams"], 0)
        self.assertEqual(self.node.subscriptions, [])
        self.assertTrue(status.answer().body.endswith(b"\n\n"))

    def test_member_removed(self) -> None:
        """
        A stream of a member out of the group ends, once quiet, with a
        C{removed} event saying why and where to resume.
        """
        self.node.deliver("a", b"1")
        connection = self.stream()
        self.node.problem = ("removed", "member 'a' is out of the group", ())
        self.clock.advance(KEEPALIVE_S)
        last = events(self.body(connection))[-1]
        self.assertEqual(last["event"], "removed")
        data = json.loads(last["data"])
        self.assertEqual(data["resume_from"], 2)
        self.assertIn("out of the group", data["error"])
        self.assertEqual(self.node.subscriptions, [])

    def test_keepalive(self) -> None:
        """
        A quiet stream writes a comment every L{KEEPALIVE_S}.
        """
        connection = self.stream()
        self.clock.advance(KEEPALIVE_S)
        self.assertEqual(events(self.body(connection))[-1], {":": "keep-alive"})
        connection.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_backlog_default(self) -> None:
        """
        By default a stream holds what the AMP client API holds.
        """
        self.assertEqual(self.site.api.backlog, DEFAULT_BACKLOG)


class StatusTests(RouteTestCase):
    """
    C{GET /status}.
    """

    def test_json(self) -> None:
        """
        The status as JSON, as C{isis status --json} prints it.
        """
        answer, _ = self.request("GET", "/status")
        expected = self.node.status().to_json()
        expected["http_api"] = {
            "wrong_tokens": 0,
            "late_failures": 0,
            "foreign_requests": 0,
            "dropped_readers": 0,
            "open_streams": 0,
        }
        self.assertEqual(answer.json(), expected)

    def test_stream(self) -> None:
        """
        As SSE, a C{status} event at once and every C{every} seconds; a
        reader that does not read misses ticks.
        """
        connection = Connection(self.site)
        connection.send(
            "GET", "/status?every=0.5", None, [("Accept", "text/event-stream")]
        )
        self.node.deliver("a", b"x")
        self.clock.advance(0.5)
        got = events(connection.answer().body)
        self.assertEqual([e["event"] for e in got], ["status", "status"])
        self.assertEqual(json.loads(got[1]["data"])["delivered"], 1)
        connection.channel.pauseProducing()
        self.clock.advance(5)
        self.assertEqual(len(events(connection.answer().body)), 2)
        connection.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bad_every(self) -> None:
        """
        An interval out of bounds is a 400.
        """
        for every in ("0", "x", "61"):
            answer, _ = self.request(
                "GET",
                f"/status?every={every}",
                headers=[("Accept", "text/event-stream")],
            )
            self.assertEqual(answer.code, 400, every)


class TokenTests(RouteTestCase):
    """
    With a client token, every route but the page's files wants it.
    """

    def setUp(self) -> None:
        super().setUp()
        self.site = api_site(self.node, self.clock, token=TOKEN, metrics=True)

    def test_refused(self) -> None:
        """
        Without the token, or with a wrong one, a 401 with
        C{WWW-Authenticate}; logged once, then counted.
        """
        logged = self.observe()
        for method, path, headers in (
            ("GET", "/status", ()),
            ("POST", "/messages", (("Authorization", "Bearer nope"),)),
            ("GET", "/messages?access_token=nope", ()),
            ("GET", "/metrics", ()),
        ):
            answer, _ = self.request(
                method, path, b"" if method == "POST" else None, headers
            )
            self.assertEqual(answer.code, 401, path)
            self.assertEqual(answer.headers["www-authenticate"], 'Bearer realm="isis"')
            self.assertIn("client token", answer.json()["error"])  # type: ignore[index]
        self.assertEqual(self.node.received, [])
        self.assertEqual(self.site.api.counters()["wrong_tokens"], 4)
        self.assertEqual(len([e for e in logged if "client token" in str(e)]), 1)

    def test_given(self) -> None:
        """
        The token as a bearer token, or as C{access_token} (for a browser's
        C{EventSource}), lets the request in.
        """
        answer, _ = self.request(
            "GET", "/status", headers=[("Authorization", "Bearer " + TOKEN.decode())]
        )
        self.assertEqual(answer.code, 200)
        answer, _ = self.request("GET", "/status?access_token=" + TOKEN.decode())
        self.assertEqual(answer.code, 200)
        answer, _ = self.request(
            "GET", "/metrics", headers=[("Authorization", "bearer " + TOKEN.decode())]
        )
        self.assertEqual(answer.code, 200)

    def test_page_open(self) -> None:
        """
        The page's files hold no data: they need no token.
        """
        for path in ("/", "/page.js", "/page.css"):
            answer, _ = self.request("GET", path)
            self.assertEqual(answer.code, 200, path)


class RoutingTests(RouteTestCase):
    """
    The page, metrics, and what is not there.
    """

    def test_page(self) -> None:
        """
        The page and its files, each with its type and a policy that loads
        nothing from elsewhere.
        """
        for path, kind in (
            ("/", "text/html"),
            ("/page.js", "text/javascript"),
            ("/page.css", "text/css"),
        ):
            answer, _ = self.request("GET", path)
            self.assertTrue(answer.headers["content-type"].startswith(kind), path)
            self.assertIn(
                "default-src 'self'", answer.headers["content-security-policy"]
            )
        answer, _ = self.request("GET", "/")
        self.assertIn(b"page.js", answer.body)
        self.assertEqual(self.request("GET", "/favicon.ico")[0].code, 204)

    def test_metrics(self) -> None:
        """
        Prometheus metrics share the port; without them, a 404 says why.
        """
        self.node.deliver("a", b"x")
        answer, _ = self.request("GET", "/metrics")
        self.assertEqual(answer.code, 200)
        self.assertIn(b'isis_deliveries_total{member="a"} 1.0', answer.body)
        site = api_site(self.node, self.clock, metrics=False)
        answer, _ = self.request("GET", "/metrics", site=site)
        self.assertEqual(answer.code, 404)
        self.assertIn("prometheus_client", answer.json()["error"])  # type: ignore[index]

    def test_metrics_routes(self) -> None:
        """
        C{/metrics} answers as every route does: JSON 404 below it, JSON
        405 for another method.
        """
        self.assertEqual(self.request("GET", "/metrics/x")[0].code, 404)
        answer, _ = self.request(
            "POST", "/metrics", b"", [("Content-Type", "text/plain")]
        )
        self.assertEqual(answer.code, 405)
        self.assertIn("POST is not allowed", answer.json()["error"])  # type: ignore[index]

    def test_unknown(self) -> None:
        """
        An unknown route is a JSON 404; a method a route lacks a JSON 405
        with C{Allow}.
        """
        for path in ("/nope", "/messages/x", "/status/y"):
            answer, _ = self.request("GET", path)
            self.assertEqual(answer.code, 404, path)
            self.assertEqual(answer.json(), {"error": "no such route"})
        answer, _ = self.request("DELETE", "/messages")
        self.assertEqual(answer.code, 405)
        self.assertIn("POST", answer.headers["allow"])
        self.assertIn("DELETE is not allowed", answer.json()["error"])  # type: ignore[index]

    def test_not_http(self) -> None:
        """
        Bytes that are not HTTP get a 400 and the connection closed; the
        site goes on.
        """
        connection = Connection(self.site)
        connection.channel.dataReceived(b"\x16\x03\x01 hello\r\n\r\n")
        self.assertEqual(connection.answer().code, 400)
        self.assertTrue(connection.transport.disconnecting)
        self.assertEqual(self.request("GET", "/status")[0].code, 200)

    def test_failure_is_json(self) -> None:
        """
        A route that fails unexpectedly answers a JSON 500 and logs why;
        the site goes on.
        """
        self.node.status = lambda: 1 / 0  # type: ignore[method-assign,assignment,return-value]
        answer, _ = self.request("GET", "/status")
        self.assertEqual(answer.code, 500)
        self.assertIn("its log says why", answer.json()["error"])  # type: ignore[index]
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(self.request("GET", "/")[0].code, 200)


STATUS = NodeStatus(
    member="a",
    group="g",
    members=("a", "b"),
    view=0,
    view_members=("a", "b"),
    state="normal",
    removed_because=None,
    suspects={},
    view_changes=0,
    suspicions=0,
    last_view_change_s=None,
    clock=1,
    multicasts=0,
    delivered=0,
    queue=0,
    waiting_multicasts=0,
    oldest_undelivered=None,
    peers={},
    silent_members=(),
    rejected_connections=0,
    last_rejection=None,
    handler_errors=0,
)


class ForeignTests(RouteTestCase):
    """
    Requests from other sites' pages are refused.
    """

    def test_origin(self) -> None:
        """
        A request whose C{Origin} is not this member's own page is a 403
        and sends nothing, token or not; the page's own are served.
        """
        headers = [
            ("Origin", "http://evil.example:8765"),
            ("Content-Type", "text/plain"),
        ]
        for site in (self.site, api_site(self.node, self.clock, token=TOKEN)):
            answer, _ = self.request("POST", "/messages", b"x", headers, site)
            self.assertEqual(answer.code, 403)
            self.assertIn("another site", answer.json()["error"])  # type: ignore[index]
        self.assertEqual(self.node.received, [])
        own = [("Origin", "http://127.0.0.1:9301"), ("Content-Type", "text/plain")]
        self.assertEqual(self.request("POST", "/messages", b"x", own)[0].code, 200)
        self.assertEqual(self.site.api.counters()["foreign_requests"], 1)

    def test_host(self) -> None:
        """
        Without a token, a C{Host} that is no name of this machine (a page
        that rebound its own name to it) is a 403; IP addresses, localhost
        and the machine's names are served; with a token, any name is.
        """
        for host in ("127.0.0.1:9301", "[::1]:9301", "localhost", "x.localhost:1"):
            answer, _ = self.request("GET", "/status", headers=[("Host", host)])
            self.assertEqual(answer.code, 200, host)
        answer, _ = self.request("GET", "/status", headers=[("Host", "evil.example")])
        self.assertEqual(answer.code, 403)
        self.assertIn("'evil.example' is not a name", answer.json()["error"])  # type: ignore[index]
        named = ApiSite(HttpApi(self.node, self.clock, None, 1000, ["Box"]), None)
        answer, _ = self.request(
            "GET", "/status", headers=[("Host", "box:80")], site=named
        )
        self.assertEqual(answer.code, 200)
        site = api_site(self.node, self.clock, token=TOKEN)
        answer, _ = self.request(
            "GET",
            "/status",
            headers=[
                ("Host", "evil.example"),
                ("Authorization", f"Bearer {TOKEN.decode()}"),
            ],
            site=site,
        )
        self.assertEqual(answer.code, 200)
