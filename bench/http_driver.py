"""
One client process of the HTTP API benchmark: reads one node's delivery
stream over HTTP and multicasts through it in batched POSTs.

The HTTP counterpart of bench/client_driver.py, run by bench/suite.py, one
process per node: it reads C{GET /messages?from=1} as NDJSON and records
the order it was given in the same binary ``.order`` file; it multicasts
C{--messages} payloads of C{--payload} bytes as C{POST /messages} bodies of
C{--batch} NDJSON lines each, with at most C{--window} messages in flight
in all (so several POSTs at once, each on a persistent connection of
Twisted's own L{HTTPConnectionPool}); and it writes the same JSON figures.
A message's latency is its POST's, from sending it to its answer (which the
node gives once every message of the POST is delivered there).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client_driver import OrderFile, add_arguments, figures, window_for
from latency import LatencyHistogram
from load import BatchedLoad
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IConsumer, ITransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IResponse
from zope.interface import implementer

from isis_twisted.tools.testing import wait_until

#: The POST bodies' type: one JSON string per line, one message per line.
NDJSON = b"application/x-ndjson"


@implementer(IBodyProducer)
class _Body:
    """
    A request body that is already all in memory: written at once.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """
        Write the whole body.
        """
        consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self) -> None:
        """
        Nothing is left to pause.
        """

    def resumeProducing(self) -> None:
        """
        Nothing is left to resume.
        """

    def stopProducing(self) -> None:
        """
        Nothing is left to stop.
        """


class StreamReader(Protocol):
    """
    Reads the body of an NDJSON delivery stream: hands every delivery's
    line, parsed, to C{delivered}, and skips keep-alives (empty lines) and
    view changes (lines without C{sender}).

    @ivar ended: Fires with why the stream ended (a L{Failure}), once it
        has.
    @ivar error: What the node's last line said if it ended the stream
        (it does for a reader that fell too far behind), else L{None}.
    """

    def __init__(self, delivered: Callable[[dict[str, Any]], None]) -> None:
        """
        @param delivered: Called with each delivery's fields, in order.
        """
        self._delivered = delivered
        self._tail = b""
        self.ended: Deferred[Failure] = Deferred()
        self.error: str | None = None

    def dataReceived(self, data: bytes) -> None:
        """
        Parse the complete lines, all of them with one C{json.loads}, and
        keep the last, incomplete one for the next read.
        """
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()
        complete = [line for line in lines if line.strip()]
        if not complete:
            return
        for fields in json.loads(b"[" + b",".join(complete) + b"]"):
            if "sender" in fields:
                self._delivered(fields)
            elif "error" in fields:
                self.error = str(fields["error"])

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The stream is over.
        """
        self.ended.callback(reason)

    def stop(self) -> None:
        """
        Stop reading: close the stream's connection.
        """
        transport: ITransport | None = self.transport
        if transport is not None and not self.ended.called:
            transport.stopProducing()  # type: ignore[attr-defined]


class HttpMember:
    """
    One node's HTTP API, through persistent connections.

    @ivar failures: Why POSTs failed, if any did.
    """

    def __init__(self, reactor: Any, port: int, connections: int) -> None:
        """
        @param port: The node's HTTP API port on 127.0.0.1.
        @param connections: The most POSTs in flight at once: as many
            connections are kept open (the delivery stream has one more).
        """
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = connections + 1
        self._pool.retryAutomatically = False
        self._agent = Agent(reactor, pool=self._pool)
        self._base = f"http://127.0.0.1:{port}".encode("ascii")
        self.failures: list[str] = []

    async def get_json(self, path: bytes) -> Any:
        """
        C{GET path}, answered in JSON.

        @raise ValueError: If the answer is not 200.
        """
        response = await self._agent.request(b"GET", self._base + path)
        body = await readBody(response)
        if response.code != 200:
            raise ValueError(f"GET {path!r} answered {response.code}: {body!r}")
        return json.loads(body)

    async def stream(self, reader: StreamReader) -> None:
        """
        Read the delivery stream from the first delivery into C{reader}.

        @raise ValueError: If the node does not answer 200.
        """
        response: IResponse = await self._agent.request(
            b"GET",
            self._base + b"/messages?from=1",
            Headers({b"Accept": [NDJSON]}),
        )
        if response.code != 200:
            body = await readBody(response)
            raise ValueError(f"the stream answered {response.code}: {body!r}")
        response.deliverBody(reader)

    def post(self, body: bytes, count: int) -> Deferred[None]:
        """
        Multicast the C{count} messages of C{body} (NDJSON) in one POST.

        @return: Fires once the node answered that all were delivered; a
            POST that fails is noted in L{failures}, not failed, so that the
            run can stop at once and say why.
        """

        async def send() -> None:
            try:
                response = await self._agent.request(
                    b"POST",
                    self._base + b"/messages",
                    Headers({b"Content-Type": [NDJSON]}),
                    _Body(body),
                )
                answer = await readBody(response)
                if response.code != 200:
                    raise ValueError(f"answered {response.code}: {answer!r}")
                records = json.loads(answer)["records"]
                if len(records) != count:
                    raise ValueError(f"{len(records)} records for {count} messages")
            except Exception as e:
                self.failures.append(f"a POST of {count} messages failed: {e}")

        return Deferred.fromCoroutine(send())

    async def close(self) -> None:
        """
        Close the connections kept open.
        """
        await self._pool.closeCachedConnections()


async def _wait_for_peers(reactor: Any, member: HttpMember) -> dict[str, Any]:
    """
    Wait until the node answers and has both connections to every peer.

    @return: Its status then.
    """
    deadline = time.monotonic() + 60
    while True:
        try:
            status: dict[str, Any] = await member.get_json(b"/status")
        except ConnectError:
            status = {}
        peers = status.get("peers")
        if peers and all(
            p["connected_out"] and p["connected_in"] for p in peers.values()
        ):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError("gave up after 60 s waiting for the node's peers")
        await task.deferLater(reactor, 0.1)


def bodies(payload: bytes, batch: int) -> Callable[[int], bytes]:
    """
    The POST body of C{count} copies of C{payload}, one JSON string a line
    (the full batch's made once).
    """
    line = json.dumps(payload.decode("ascii")).encode("ascii") + b"\n"
    full = line * batch

    def body(count: int) -> bytes:
        return full if count == batch else line * count

    return body


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """
    Read the stream, multicast, and write the figures.
    """
    window = window_for(args)
    batch = max(1, min(args.batch, window))
    member = HttpMember(reactor, args.node, -(-window // batch))
    await _wait_for_peers(reactor, member)
    order = OrderFile(Path(args.out).with_suffix(".order"), args.nodes)
    total = args.messages * args.nodes

    def delivered(fields: dict[str, Any]) -> None:
        order.record(
            fields["sender"],
            fields["clock"],
            fields.get("after"),
            len(fields["payload"].encode("utf-8")),
        )

    reader = StreamReader(delivered)
    # From the first delivery: the other drivers may have started already.
    await member.stream(reader)
    latency = LatencyHistogram()
    body = bodies(b"x" * args.payload, batch)
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    load = BatchedLoad(
        lambda count: member.post(body(count), count),
        args.messages,
        batch,
        window,
        latency,
    )
    load.start()
    await wait_until(
        reactor,
        lambda: order.seen >= total or reader.ended.called or bool(member.failures),
        600,
        f"{total} deliveries",
    )
    if member.failures:
        raise SystemExit(member.failures[0])
    if order.seen < total:
        why = reader.error
        if why is None:
            reason = await reader.ended
            done = isinstance(reason.value, ResponseDone)
            why = "the node ended it" if done else str(reason.value)
        raise SystemExit(f"the delivery stream ended: {why}")
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    order.close()
    reader.stop()
    status = await member.get_json(b"/status")
    result = figures(args, order, wall, cpu, latency, status["peers"])
    result["batch"] = batch
    Path(args.out).write_text(json.dumps(result) + "\n")
    await member.close()


def main() -> None:
    """
    Run one driver from the command line.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    add_arguments(parser, "HTTP API")
    parser.add_argument(
        "--batch", type=int, default=250, help="most messages in one POST"
    )
    args = parser.parse_args()
    task.react(lambda r: Deferred.fromCoroutine(run(r, args)))


if __name__ == "__main__":
    main()
