"""
Tests for the example application, C{examples/kvstore.py}: replicas that
apply totally ordered commands end identical.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, FileBodyProducer
from twisted.web.http_headers import Headers
from zope.interface.verify import verifyObject

from isis_twisted.core.engine import Delivery
from isis_twisted.interfaces import IDeliveryHandler, IStateHandler
from isis_twisted.tools.testing import LateBoundEndpoint, wait_until

reactor: Any = _reactor


def load_example() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "examples" / "kvstore.py"
    spec = importlib.util.spec_from_file_location("examples_kvstore", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


kv = load_example()


def record(index: int, payload: bytes, sender: str = "a") -> Delivery:
    return Delivery(index, sender, index, payload)


class StoreTests(SynchronousTestCase):
    def test_applies_in_order(self) -> None:
        store = kv.KVStore()
        self.assertTrue(verifyObject(IDeliveryHandler, store))
        commands = [
            kv.encode_command("set", "x", "1"),
            kv.encode_command("set", "y", "2"),
            kv.encode_command("set", "x", "3"),
            kv.encode_command("del", "y"),
        ]
        for i, command in enumerate(commands, 1):
            store.deliver(record(i, command))
        self.assertEqual(store.data, {"x": "3"})
        self.assertEqual(store.applied, 4)

    def test_same_commands_same_digest(self) -> None:
        one, two = kv.KVStore(), kv.KVStore()
        for store in (one, two):
            store.deliver(record(1, kv.encode_command("set", "k", "v")))
        self.assertEqual(one.digest(), two.digest())
        two.deliver(record(2, kv.encode_command("set", "k", "w")))
        self.assertNotEqual(one.digest(), two.digest())

    def test_malformed_commands_skipped_alike(self) -> None:
        store = kv.KVStore()
        for i, payload in enumerate(
            [
                b"not json",
                b"[]",
                json.dumps({"op": "set", "key": 1, "value": "v"}).encode(),
                json.dumps({"op": "drop", "key": "k"}).encode(),
                json.dumps({"op": "set", "key": "k"}).encode(),
            ],
            1,
        ):
            store.deliver(record(i, payload))
        self.assertEqual((store.data, store.skipped, store.applied), ({}, 5, 5))


class SnapshotTests(SynchronousTestCase):
    def filled(self) -> Any:
        store = kv.KVStore()
        for i in range(1, 3001):
            key = f"key-{i % 1200}"
            store.deliver(record(i, kv.encode_command("set", key, "v" * (i % 97))))
        store.deliver(record(3001, b"not a command"))
        return store

    def test_snapshot_restores_the_store(self) -> None:
        """
        A snapshot restored into an empty store, whatever the chunks' cut,
        gives the same data, index and counts; later commands do not
        change a snapshot already taken.
        """
        store = self.filled()
        self.assertTrue(verifyObject(IStateHandler, store))
        taken = store.take_snapshot()
        store.deliver(record(3002, kv.encode_command("set", "late", "x")))
        data = b"".join(taken)
        for cut in (1, 7, 4096, len(data)):
            copy = kv.KVStore()
            copy.data = {"stale": "y"}
            copy.begin_restore()
            for at in range(0, len(data), cut):
                copy.restore_chunk(data[at : at + cut])
            copy.end_restore()
            self.assertEqual(copy.applied, 3001)
            self.assertEqual(copy.skipped, 1)
            expected = dict(store.data)
            del expected["late"]
            self.assertEqual(copy.data, expected)
            self.assertEqual(copy.restored, 1)

    def test_chunks_are_bounded(self) -> None:
        pieces = list(self.filled().take_snapshot())
        self.assertGreater(len(pieces), 1)
        self.assertTrue(all(len(p) < 64 * 1024 + 200 for p in pieces))

    def test_snapshot_cut_short(self) -> None:
        copy = kv.KVStore()
        copy.begin_restore()
        with self.assertRaises(ValueError):
            copy.end_restore()


class ReplicaTests(TestCase):
    timeout = 60

    def test_demo_replicas_end_identical(self) -> Deferred[None]:
        """
        The documented demo: concurrent conflicting writes through three
        replicas leave them identical.
        """

        async def go() -> None:
            out = io.StringIO()
            with redirect_stdout(out):
                code = await kv.demo(reactor, 6)
            self.assertEqual(code, 0, out.getvalue())
            self.assertIn(
                "18 concurrent writes through 3 replicas: all replicas", out.getvalue()
            )
            digests = {
                line.split("digest ")[1]
                for line in out.getvalue().splitlines()
                if "digest" in line
            }
            self.assertEqual(len(digests), 1)

        return Deferred.fromCoroutine(go())

    def test_http_interface(self) -> Deferred[None]:
        async def go() -> None:
            names = ["a", "b", "c"]
            ports: dict[str, int] = {}
            replicas = {
                n: kv.Replica(
                    reactor,
                    n,
                    {p: LateBoundEndpoint(reactor, ports, p) for p in names if p != n},
                    "tcp:0:interface=127.0.0.1",
                    "tcp:0:interface=127.0.0.1",
                )
                for n in names
            }
            for n, replica in replicas.items():
                await replica.start()
                self.addCleanup(stopper(replica))
                ports[n] = (await replica.node.listening).getHost().port
            agent = Agent(reactor)

            async def call(
                name: str, method: bytes, path: str, body: bytes | None = None
            ) -> tuple[int, Any]:
                port = replicas[name].port.getHost().port
                producer = (
                    FileBodyProducer(io.BytesIO(body)) if body is not None else None
                )
                response = await agent.request(
                    method,
                    f"http://127.0.0.1:{port}{path}".encode(),
                    Headers(),
                    producer,
                )
                return response.code, json.loads(await kv.read_body(response))

            code, answer = await call("a", b"PUT", "/kv/colour", b"blue")
            self.assertEqual(code, 200)
            # Read your own write on the replica that took it.
            self.assertEqual(
                await call("a", b"GET", "/kv/colour"),
                (200, {"key": "colour", "value": "blue"}),
            )
            await wait_until(
                reactor,
                lambda: all(
                    r.store.applied >= answer["index"] for r in replicas.values()
                ),
                what="every replica applying the write",
            )
            self.assertEqual(
                (await call("c", b"GET", "/kv/colour"))[1]["value"], "blue"
            )
            self.assertEqual((await call("b", b"DELETE", "/kv/colour"))[0], 200)
            self.assertEqual((await call("b", b"GET", "/kv/colour"))[0], 404)
            self.assertEqual((await call("b", b"PUT", "/kv/x", b"\xff"))[0], 400)
            self.assertEqual((await call("b", b"PUT", "/kv", b"v"))[0], 400)
            writes = await gatherResults(
                [
                    Deferred.fromCoroutine(call(n, b"PUT", "/kv/k", n.encode() * 2))
                    for n in names
                ]
            )
            last = max(w[1]["index"] for w in writes)
            await wait_until(
                reactor,
                lambda: all(r.store.applied >= last for r in replicas.values()),
                what="every replica applying the conflicting writes",
            )
            snapshots = [(await call(n, b"GET", "/kv"))[1] for n in names]
            self.assertEqual(len({s["digest"] for s in snapshots}), 1)
            self.assertIn(snapshots[0]["data"]["k"], {"aa", "bb", "cc"})

        return Deferred.fromCoroutine(go())


class RestartTests(TestCase):
    timeout = 60

    def test_restarted_replica_gets_the_store_by_snapshot(self) -> Deferred[None]:
        """
        Replica c is stopped and a new one started in its place, empty: it
        gets the store from another replica as a snapshot, answers reads
        of what was written before it started, and stays identical to the
        others under more writes.
        """

        async def go() -> None:
            names = ["a", "b", "c"]
            ports: dict[str, int] = {}

            def replica(name: str, listen: str = "tcp:0:interface=127.0.0.1") -> Any:
                return kv.Replica(
                    reactor,
                    name,
                    {
                        p: LateBoundEndpoint(reactor, ports, p)
                        for p in names
                        if p != name
                    },
                    listen,
                    "tcp:0:interface=127.0.0.1",
                )

            replicas = {n: replica(n) for n in names}
            for n, r in replicas.items():
                await r.start()
                self.addCleanup(stopper(r))
                ports[n] = (await r.node.listening).getHost().port

            async def write(name: str, count: int, prefix: str) -> int:
                node = replicas[name].node
                records = await gatherResults(
                    [
                        node.multicast(kv.encode_command("set", f"{prefix}{i}", name))
                        for i in range(count)
                    ]
                )
                return max(int(r.index) for r in records)

            await gatherResults(
                [Deferred.fromCoroutine(write(n, 200, f"{n}-")) for n in names]
            )
            await replicas["c"].stop()
            last = await write("a", 50, "while-c-is-down-")
            fresh = replica("c", f"tcp:{ports['c']}:interface=127.0.0.1")
            replicas["c"] = fresh
            await fresh.start()
            self.addCleanup(stopper(fresh))
            await wait_until(
                reactor,
                lambda: fresh.store.restored == 1,
                what="c restoring the store",
            )
            status = fresh.node.status()
            self.assertEqual(status.restored_bytes, fresh.node.restored_bytes)
            self.assertGreater(status.restored_bytes, 0)
            self.assertEqual(status.caught_up_records, 0)
            self.assertEqual(fresh.store.data["while-c-is-down-7"], "a")
            self.assertEqual(fresh.store.data["c-3"], "c")
            self.assertGreaterEqual(fresh.store.applied, last)
            await wait_until(
                reactor,
                lambda: (
                    fresh.node.membership.state == "normal"
                    and fresh.node.view.members == ("a", "b", "c")
                ),
                what="c back in the view",
            )
            last = max(
                await gatherResults(
                    [Deferred.fromCoroutine(write(n, 30, "after-")) for n in names]
                )
            )
            await wait_until(
                reactor,
                lambda: all(r.store.applied >= last for r in replicas.values()),
                what="every replica applying the last writes",
            )
            digests = {r.store.digest() for r in replicas.values()}
            self.assertEqual(len(digests), 1)
            self.assertEqual(fresh.store.data, replicas["a"].store.data)

        return Deferred.fromCoroutine(go())


def stopper(replica: Any) -> Any:
    return lambda: Deferred.fromCoroutine(replica.stop())
