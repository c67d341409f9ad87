"""
A replicated key-value store on isis-twisted.

Every replica is a L{MulticastNode} with a L{KVStore} delivery handler and a
small HTTP interface.  A write on any replica is multicast as a command;
every replica applies the commands in the one agreed order, so all replicas
hold the same data after the same index, even when clients write the same
key on different replicas at once.  A write answers once its own replica
has applied it, so a client reads its own writes there.

One replica, for real use (start one per member, then use curl)::

    python examples/kvstore.py serve --id a --port 9001 --http 8001 \\
        --peers b=127.0.0.1:9002,c=127.0.0.1:9003
    curl -X PUT --data-binary blue http://127.0.0.1:8001/kv/colour
    curl http://127.0.0.1:8002/kv/colour
    curl http://127.0.0.1:8003/kv              # everything, with the digest

The whole demonstration in one command (three replicas in one process,
concurrent conflicting writes through all three, then a comparison)::

    python examples/kvstore.py demo
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from io import BytesIO
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, FileBodyProducer
from twisted.web.http_headers import Headers
from twisted.web.iweb import IRequest, IResponse
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from isis_twisted.core.engine import Delivery
from isis_twisted.interfaces import IOrderedMulticast, IStateHandler
from isis_twisted.net.node import MulticastNode
from isis_twisted.net.options import dial_description, listen_description


def encode_command(op: str, key: str, value: str | None = None) -> bytes:
    """
    One store command as the bytes a replica multicasts.
    """
    return json.dumps({"op": op, "key": key, "value": value}).encode()


@implementer(IStateHandler)
class KVStore:
    """
    The replicated state: applies commands in delivery order.

    A command that cannot be understood is skipped, on every replica alike
    (they all see the same bytes), and counted.

    A replica restarted after a crash gets the whole store from another
    replica as a snapshot (L{IStateHandler}): JSON lines, first
    C{{"applied": N, "skipped": K}}, then one C{[key, value]} per key,
    streamed in chunks of about 64 KiB.

    @ivar data: The store.
    @ivar applied: The index of the last command applied.
    @ivar skipped: How many deliveries were not valid commands.
    """

    _log = Logger()

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.applied = 0
        self.skipped = 0
        self.restored = 0
        self._partial = bytearray()
        self._header = False

    def deliver(self, record: Delivery) -> None:
        """
        Apply the command in C{record}.
        """
        self.applied = record.index
        try:
            command = json.loads(record.payload)
            op, key, value = command["op"], command["key"], command.get("value")
            if not isinstance(key, str):
                raise TypeError("key must be text")
            if op == "set" and isinstance(value, str):
                self.data[key] = value
            elif op == "del":
                self.data.pop(key, None)
            else:
                raise ValueError(f"unknown command {op!r}")
        except (ValueError, TypeError, KeyError) as e:
            self.skipped += 1
            self._log.warn(
                "skipped message {index} from {sender}: {error}",
                index=record.index,
                sender=record.sender,
                error=e,
            )

    def close(self) -> None:
        """
        Nothing to release: the store lives in memory.  Say what it holds,
        so that replicas stopped at the same index can be compared from
        their logs.
        """
        self._log.info(
            "kvstore: {keys} keys, applied {applied}, digest {digest}",
            keys=len(self.data),
            applied=self.applied,
            digest=self.digest(),
        )

    def take_snapshot(self) -> Iterator[bytes]:
        """
        The store as of now, in chunks; later commands do not change it
        (the values are immutable strings, so a shallow copy is enough).
        """
        items = list(self.data.items())
        header = {"applied": self.applied, "skipped": self.skipped}
        return _chunks(header, items)

    def begin_restore(self) -> None:
        """
        Forget the store: another replica's follows.
        """
        self.data = {}
        self._partial = bytearray()
        self._header = False

    def restore_chunk(self, data: bytes) -> None:
        """
        Apply the whole lines of C{data}; keep a line cut in two for the
        next chunk.
        """
        partial = self._partial
        partial += data
        end = partial.rfind(b"\n")
        if end < 0:
            return
        lines = bytes(partial[:end]).split(b"\n")
        del partial[: end + 1]
        for line in lines:
            self._restore_line(line)

    def end_restore(self) -> None:
        """
        The snapshot is whole.

        @raise ValueError: If it was cut short.
        """
        if self._partial:
            self._restore_line(bytes(self._partial))
            self._partial = bytearray()
        if not self._header:
            raise ValueError("the snapshot has no header line")
        self.restored += 1

    def _restore_line(self, line: bytes) -> None:
        value = json.loads(line)
        if not self._header:
            self.applied = int(value["applied"])
            self.skipped = int(value["skipped"])
            self._header = True
        else:
            key, text = value
            self.data[key] = text

    def digest(self) -> str:
        """
        A short fingerprint of the data, equal on replicas that agree.
        """
        text = json.dumps(sorted(self.data.items()), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def snapshot(self) -> dict[str, Any]:
        """
        Everything, for C{GET /kv}.
        """
        return {
            "applied": self.applied,
            "digest": self.digest(),
            "skipped": self.skipped,
            "data": dict(sorted(self.data.items())),
        }


def handler(argument: str | None) -> KVStore:
    """
    The store as a C{twistd isis} handler: C{--handler kvstore:handler},
    with this directory on C{PYTHONPATH}.
    """
    return KVStore()


def _chunks(
    header: dict[str, int], items: list[tuple[str, str]], size: int = 64 * 1024
) -> Iterator[bytes]:
    out = [json.dumps(header).encode()]
    held = len(out[0])
    for item in items:
        line = json.dumps(item, ensure_ascii=False).encode()
        out.append(line)
        held += len(line) + 1
        if held >= size:
            yield b"\n".join(out) + b"\n"
            out, held = [], 0
    if out:
        yield b"\n".join(out) + b"\n"


class KeyResource(Resource):
    """
    C{/kv/KEY}: GET reads this replica; PUT (body = value) and DELETE go
    through the group and answer once applied here.
    """

    isLeaf = True

    def __init__(self, store: KVStore, node: IOrderedMulticast) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store = store
        self.node = node

    def render_GET(self, request: IRequest) -> bytes:
        key = self._key(request)
        if key is None:
            return self._json(request, self.store.snapshot())
        if key not in self.store.data:
            request.setResponseCode(404)
            return self._json(request, {"error": f"no key {key!r}"})
        return self._json(request, {"key": key, "value": self.store.data[key]})

    def render_PUT(self, request: IRequest) -> bytes | int:
        key = self._key(request)
        body = request.content.read() if request.content is not None else b""
        try:
            value = body.decode("utf-8")
        except UnicodeDecodeError:
            request.setResponseCode(400)
            return self._json(request, {"error": "the value must be UTF-8 text"})
        if key is None:
            request.setResponseCode(400)
            return self._json(request, {"error": "PUT /kv/KEY with the value as body"})
        return self._submit(request, encode_command("set", key, value))

    def render_DELETE(self, request: IRequest) -> bytes | int:
        key = self._key(request)
        if key is None:
            request.setResponseCode(400)
            return self._json(request, {"error": "DELETE /kv/KEY"})
        return self._submit(request, encode_command("del", key))

    def _submit(self, request: IRequest, command: bytes) -> int:
        def done(record: Delivery) -> None:
            request.write(self._json(request, {"index": record.index}))
            request.finish()

        def failed(reason: Any) -> None:
            request.setResponseCode(503)
            request.write(self._json(request, {"error": reason.getErrorMessage()}))
            request.finish()

        self.node.multicast(command).addCallbacks(done, failed)
        return NOT_DONE_YET

    @staticmethod
    def _key(request: IRequest) -> str | None:
        parts = [p for p in (request.postpath or []) if p]
        if not parts:
            return None
        return "/".join(p.decode("utf-8", "replace") for p in parts)

    @staticmethod
    def _json(request: IRequest, obj: object) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def site(store: KVStore, node: IOrderedMulticast) -> Site:
    """
    The HTTP interface of one replica: everything under C{/kv}.
    """
    root = Resource()
    root.putChild(b"kv", KeyResource(store, node))
    return Site(root)


class Replica:
    """
    One replica: a node, its store and its HTTP interface.
    """

    def __init__(
        self,
        reactor: Any,
        me: str,
        peers: dict[str, Any],
        listen: str,
        http: str,
    ) -> None:
        self.store = KVStore()
        self.node = MulticastNode(me, peers, listen, reactor, handlers=[self.store])
        self.reactor = reactor
        self.http = http
        self.port: Any = None

    async def start(self) -> None:
        """
        Start the node and the HTTP interface.
        """
        from twisted.internet.endpoints import serverFromString

        self.node.startService()
        await self.node.listening
        endpoint = serverFromString(self.reactor, self.http)
        self.port = await endpoint.listen(site(self.store, self.node))

    async def stop(self) -> None:
        """
        Stop both.
        """
        port, self.port = self.port, None
        if port is not None:
            await port.stopListening()
        if self.node.running:
            await self.node.stopService()


class _Body(Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.done.callback(bytes(self.data))


def read_body(response: IResponse) -> Deferred[bytes]:
    """
    The whole body of an HTTP response.
    """
    body = _Body()
    response.deliverBody(body)
    return body.done


async def demo(reactor: Any, writes: int) -> int:
    """
    Three replicas in this process; concurrent conflicting writes through
    every replica's HTTP interface; then compare the replicas.

    @return: 0 if all replicas hold the same data.
    """
    from isis_twisted.tools.testing import LateBoundEndpoint, wait_until

    names = ["a", "b", "c"]
    ports: dict[str, int] = {}
    replicas = {
        name: Replica(
            reactor,
            name,
            {p: LateBoundEndpoint(reactor, ports, p) for p in names if p != name},
            "tcp:0:interface=127.0.0.1",
            "tcp:0:interface=127.0.0.1",
        )
        for name in names
    }
    for name, replica in replicas.items():
        await replica.start()
        ports[name] = (await replica.node.listening).getHost().port  # type: ignore[attr-defined]
    agent = Agent(reactor)

    async def put(name: str, key: str, value: str) -> int:
        port = replicas[name].port.getHost().port
        url = f"http://127.0.0.1:{port}/kv/{key}".encode()
        response = await agent.request(
            b"PUT", url, Headers(), FileBodyProducer(BytesIO(value.encode()))
        )
        return int(json.loads(await read_body(response))["index"])

    async def get_all(name: str) -> dict[str, Any]:
        port = replicas[name].port.getHost().port
        response = await agent.request(b"GET", f"http://127.0.0.1:{port}/kv".encode())
        snapshot: dict[str, Any] = json.loads(await read_body(response))
        return snapshot

    try:
        # Every replica writes every key: the same keys, different values,
        # at the same time.  Total order decides, identically everywhere.
        keys = ["colour", "size", "owner", "status"]
        writes_done = await gatherResults(
            [
                Deferred.fromCoroutine(put(name, keys[i % len(keys)], f"{name}{i}"))
                for i in range(writes)
                for name in names
            ]
        )
        total = len(writes_done)
        await wait_until(
            reactor,
            lambda: all(r.store.applied == total for r in replicas.values()),
            30,
            "every replica to apply every write",
        )
        snapshots = {name: await get_all(name) for name in names}
        for name, snap in snapshots.items():
            print(f"replica {name}: applied {snap['applied']}, digest {snap['digest']}")
            for key, value in snap["data"].items():
                print(f"    {key} = {value}")
        same = len({json.dumps(s["data"], sort_keys=True) for s in snapshots.values()})
        print(
            f"{total} concurrent writes through 3 replicas:"
            + (" all replicas identical" if same == 1 else " REPLICAS DIFFER")
        )
        return 0 if same == 1 else 1
    finally:
        for replica in replicas.values():
            await replica.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """
    C{serve} one replica, or run the C{demo}.
    """
    parser = argparse.ArgumentParser(
        prog="python examples/kvstore.py",
        description="A replicated key-value store on isis-twisted.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run one replica")
    serve.add_argument("--id", required=True, help="this replica's member name")
    serve.add_argument("--port", required=True, help="where to listen for peers")
    serve.add_argument("--http", required=True, help="where to serve HTTP")
    serve.add_argument("--peers", default="", help="NAME=HOST:PORT,...")
    run_demo = commands.add_parser("demo", help="three replicas, then compare")
    run_demo.add_argument("--writes", type=int, default=8, help="writes per replica")
    args = parser.parse_args(argv)

    if args.command == "demo":

        async def go_demo(reactor: Any) -> None:
            code = await demo(reactor, args.writes)
            if code:
                raise SystemExit(code)

        task.react(lambda r: Deferred.fromCoroutine(go_demo(r)))
        return

    try:
        peers = {}
        for spec in filter(None, args.peers.split(",")):
            name, _, address = spec.partition("=")
            peers[name.strip()] = dial_description(address)
        listen = listen_description(args.port)
        http = listen_description(args.http)
    except ValueError as e:
        parser.error(str(e))

    async def go_serve(reactor: Any) -> None:
        from twisted.logger import globalLogBeginner, textFileLogObserver

        globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
        replica = Replica(reactor, args.id, peers, listen, http)
        await replica.start()
        forever: Deferred[None] = Deferred()
        reactor.addSystemEventTrigger("before", "shutdown", forever.callback, None)
        await forever

    task.react(lambda r: Deferred.fromCoroutine(go_serve(r)))


if __name__ == "__main__":
    main()
