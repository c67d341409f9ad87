"""
The HTTP API with real processes: three C{twistd -n isis} members with
C{--http-port}, messages posted to all three at once (raw, JSON and NDJSON
bodies) and multicast through the AMP client API beside them, every
member's delivery stream read over HTTP from index 1; the history checker
judges the streams, which must equal the members' C{jsonl:} files, and
every answer must name the record its message became.
"""

from __future__ import annotations

import json
import signal
from io import BytesIO
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    FileBodyProducer,
    HTTPConnectionPool,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from isis_twisted.core.checker import check, load_records
from isis_twisted.core.engine import Delivery
from isis_twisted.tools.testing import settled_records, wait_until
from tests.test_node import deferred
from tests.test_processes_membership import (
    ProcessMembershipTestCase,
    reactor,
)


class Lines(Protocol):
    """
    Collects an answer's body, and an NDJSON stream's lines as they come.
    """

    def __init__(self) -> None:
        self.data = b""
        self.lines: list[bytes] = []
        self._partial = b""
        self.ended: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        *whole, self._partial = (self._partial + data).split(b"\n")
        self.lines.extend(line for line in whole if line.strip())

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.ended.callback(self.data)


async def body_of(response: IResponse) -> bytes:
    """
    The whole body of C{response}.
    """
    lines = Lines()
    response.deliverBody(lines)
    return await lines.ended


class HttpProcessTests(ProcessMembershipTestCase):
    timeout = 180

    def test_posts_and_streams(self) -> Deferred[None]:
        async def run() -> None:
            group = await self.group(3, http=True)
            workdir = group.workdir
            pool = HTTPConnectionPool(reactor, persistent=True)
            pool.maxPersistentPerHost = 8
            self.addCleanup(pool.closeCachedConnections)
            agent = Agent(reactor, pool=pool)

            def url(name: str, path: str) -> bytes:
                return f"http://127.0.0.1:{group.http_ports[name]}{path}".encode()

            streams: dict[str, Lines] = {}
            for name in group.names:
                response: IResponse = await agent.request(
                    b"GET",
                    url(name, "/messages?from=1"),
                    Headers({b"Accept": [b"application/x-ndjson"]}),
                )
                self.assertEqual(response.code, 200)
                streams[name] = Lines()
                response.deliverBody(streams[name])
                self.addCleanup(_hang_up, streams[name])

            async def post(name: str, kind: str, body: bytes) -> list[Any]:
                response = await agent.request(
                    b"POST",
                    url(name, "/messages"),
                    Headers({b"Content-Type": [kind.encode()]}),
                    FileBodyProducer(BytesIO(body)),
                )
                answer = json.loads(await body_of(response))
                self.assertEqual(response.code, 200, answer)
                return list(answer["records"])

            # What each message was sent as, by payload; and the answers.
            sent: dict[str, str] = {}
            calls: list[Deferred[list[Any]]] = []
            for name in group.names:
                for n in range(5):
                    raw = f"{name}-raw-{n}"
                    sent[raw] = name
                    calls.append(
                        Deferred.fromCoroutine(post(name, "text/plain", raw.encode()))
                    )
                    batch = [f"{name}-json-{n}-{i}" for i in range(20)]
                    lines = [f"{name}-nd-{n}-{i}" for i in range(20)]
                    sent.update(dict.fromkeys(batch + lines, name))
                    calls.append(
                        Deferred.fromCoroutine(
                            post(name, "application/json", json.dumps(batch).encode())
                        )
                    )
                    calls.append(
                        Deferred.fromCoroutine(
                            post(
                                name,
                                "application/x-ndjson",
                                "\n".join(json.dumps(x) for x in lines).encode(),
                            )
                        )
                    )
            amp: list[Deferred[Delivery]] = []
            for name, client in group.clients.items():
                for n in range(30):
                    payload = f"{name}-amp-{n}"
                    sent[payload] = name
                    amp.append(client.multicast(payload.encode()))
            answered = [r for records in await gatherResults(calls) for r in records]
            amp_records = await gatherResults(amp)
            total = len(sent)
            self.assertEqual(len(answered) + len(amp_records), total)

            def delivered(name: str) -> int:
                return sum(1 for line in streams[name].lines if b'"sender"' in line)

            await wait_until(
                reactor,
                lambda: all(delivered(n) >= total for n in group.names),
                60,
                f"every stream giving {total} deliveries",
            )
            histories = {}
            for name, stream in streams.items():
                path = workdir / f"{name}-stream.jsonl"
                path.write_bytes(b"\n".join(stream.lines) + b"\n")
                histories[name] = [
                    r for r in load_records(path) if isinstance(r, Delivery)
                ]
            result = check(histories)
            self.assertTrue(result.ok, result.summary())
            # Each message once, from the member it was sent through.
            order = histories["a"]
            self.assertEqual({r.payload.decode(): r.sender for r in order}, sent)
            self.assertEqual(len(order), total)
            by_index = {r.index: r for r in order}
            for fields in answered:
                record = by_index[fields["index"]]
                self.assertEqual(
                    (record.sender, record.clock), (fields["sender"], fields["clock"])
                )
                self.assertEqual(fields["view"], 0)
            for amp_record in amp_records:
                same = by_index[amp_record.index]
                self.assertEqual(
                    (same.sender, same.clock, same.payload),
                    (amp_record.sender, amp_record.clock, amp_record.payload),
                )
            # The streams are what the jsonl: handlers kept, with the view.
            for name, stream in streams.items():
                streamed = [json.loads(line) for line in stream.lines]
                for fields in streamed:
                    fields.pop("after", None)
                    if "sender" in fields:
                        self.assertEqual(fields.pop("view"), 0)
                kept = settled_records(workdir / f"{name}.jsonl")
                self.assertEqual(streamed[: len(kept)], kept)
            # A member that stops ends its stream with where to resume.
            group.signal("c", signal.SIGTERM)
            await streams["c"].ended
            last = json.loads(streams["c"].lines[-1])
            self.assertEqual(last["event"], "end")
            self.assertEqual(last["resume_from"], total + 1)

        return deferred(run())


def _hang_up(stream: Lines) -> None:
    # An endless stream: only the reader can end it.
    if stream.transport is not None:
        stream.transport.stopProducing()  # type: ignore[attr-defined]
