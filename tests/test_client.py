"""
Tests for L{isis_twisted.api.client}: the client's end of the local client
API, over AMP to a L{ClientAPIProtocol} serving a fake node.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, FirstError, fail, gatherResults
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IAddress, IReactorTCP
from twisted.internet.protocol import connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import globalLogPublisher
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.test.iosim import IOPump, connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase, TestCase

from isis_twisted.api.client import (
    BATCH_MESSAGES,
    ClientProtocol,
    HistoryGoneError,
    SubscriptionDroppedError,
    WrongPortError,
    connect,
)
from isis_twisted.api.commands import (
    BATCH_BYTES,
    AlreadySubscribedError,
    BadPayloadError,
    Deliver,
    NodeError,
    Subscribe,
)
from isis_twisted.api.nodecontrol import NodeControl, multicast_each
from isis_twisted.api.server import ClientAPIFactory, ClientAPIProtocol
from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.core.records import pack_records
from isis_twisted.core.wire import Refuse, encode_refuse

MiB = 1 << 20

tcp_reactor = IReactorTCP(reactor)


class FakeSubscription:
    """
    A subscription to a L{FakeNode}.
    """

    def __init__(
        self,
        node: FakeNode,
        first: int,
        callback: Callable[[Any], None],
        flush: Callable[[], None] | None,
        views: bool = False,
    ) -> None:
        self.node = node
        self.first = first
        self.callback = callback
        self.flush = flush
        self.views = views
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.node.subscriptions.remove(self)


class FakeNode:
    """
    A L{NodeControl} without a group: every multicast is delivered in the
    order it came, at once or, with C{hold}, when the test calls L{release}.

    @ivar history: Every delivery (and view change) still held, oldest
        first.
    @ivar pending: Multicasts not yet delivered, with their L{Deferred}s.
    @ivar most_pending: The most multicasts ever pending at once.
    """

    def __init__(
        self, me: str = "a", hold: bool = False, limit: int | None = None
    ) -> None:
        self.me = me
        self.hold = hold
        self.limit = limit
        self.history: list[Record] = []
        self.next_index = 1
        self.oldest = 1
        self.clock = 0
        self.pending: list[tuple[bytes, int, Deferred[Delivery]]] = []
        self.most_pending = 0
        self.received: list[bytes] = []
        self.subscriptions: list[FakeSubscription] = []
        self.fail_with: Exception | None = None
        self.extra_status: dict[str, object] = {}
        self._waiters: list[tuple[int, Deferred[None]]] = []
        self._subscribed: list[Deferred[None]] = []

    def multicast_all(
        self, payloads: Sequence[bytes]
    ) -> Deferred[list[Delivery | BaseException]]:
        return multicast_each(self.multicast, payloads)

    def multicast(self, payload: bytes) -> Deferred[Delivery]:
        if type(payload) is not bytes:
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        if self.limit is not None and len(payload) > self.limit:
            raise ValueError(
                f"payload of {len(payload)} bytes is over the limit of {self.limit}"
            )
        if self.fail_with is not None:
            return fail(self.fail_with)
        self.received.append(payload)
        delivered: Deferred[Delivery] = Deferred()
        self.pending.append(
            (payload, self.next_index - 1 + len(self.pending), delivered)
        )
        self.most_pending = max(self.most_pending, len(self.pending))
        for waiter in [w for w in self._waiters if len(self.pending) >= w[0]]:
            self._waiters.remove(waiter)
            waiter[1].callback(None)
        if not self.hold:
            self.release()
        return delivered

    def when_pending(self, count: int) -> Deferred[None]:
        """
        Fire once C{count} multicasts are pending at once.
        """
        waiter: Deferred[None] = Deferred()
        self._waiters.append((count, waiter))
        return waiter

    def release(self, count: int | None = None) -> None:
        """
        Deliver the oldest C{count} pending multicasts (all by default).
        """
        todo = self.pending[:count]
        del self.pending[: len(todo)]
        for payload, after, delivered in todo:
            delivered.callback(self.deliver(self.me, payload, after))

    def deliver(
        self, sender: str, payload: bytes, after: int | None = None
    ) -> Delivery:
        """
        Deliver a message, as if C{sender} had multicast it.
        """
        self.clock += 1
        record = Delivery(self.next_index, sender, self.clock, payload, after)
        self.next_index += 1
        self.history.append(record)
        # Like a node's turn with one delivery in it.
        for subscription in list(self.subscriptions):
            if record.index >= subscription.first:
                subscription.callback(record)
                if subscription.flush is not None:
                    subscription.flush()
        return record

    def install(self, view: int, members: tuple[str, ...]) -> ViewChange:
        """
        Install a view, as if the group had changed: the record goes to the
        held history and to the subscriptions that asked for views.
        """
        change = ViewChange(view, members, self.next_index)
        self.history.append(change)
        for subscription in list(self.subscriptions):
            if subscription.views and change.index >= subscription.first:
                subscription.callback(change)
                if subscription.flush is not None:
                    subscription.flush()
        return change

    def forget(self, before: int) -> None:
        """
        Drop the held deliveries with an index below C{before}.
        """
        self.history = [r for r in self.history if r.index >= before]
        self.oldest = before

    def subscribe(
        self,
        since: int | None,
        callback: Callable[[Any], None],
        flush: Callable[[], None] | None = None,
        views: bool = False,
    ) -> FakeSubscription:
        if since is not None and since < self.oldest:
            raise HistoryGoneError(
                f"deliveries before index {self.oldest} are no longer held;"
                f" resubscribe from {self.oldest}",
                self.oldest,
            )
        first = self.next_index if since is None else since
        subscription = FakeSubscription(self, first, callback, flush, views)
        for record in self.history:
            if record.index >= first and (views or isinstance(record, Delivery)):
                callback(record)
        if flush is not None:
            flush()
        self.subscriptions.append(subscription)
        waiting, self._subscribed = self._subscribed, []
        for waiter in waiting:
            waiter.callback(None)
        return subscription

    def when_subscribed(self) -> Deferred[None]:
        """
        Fire once the next subscription has been made (and its replay done).
        """
        waiter: Deferred[None] = Deferred()
        self._subscribed.append(waiter)
        return waiter

    def status(self) -> dict[str, object]:
        return {
            "me": self.me,
            "members": ["a", "b", "c"],
            "delivered": self.next_index - 1,
            "pending": len(self.pending),
            "history": {"oldest": self.oldest, "newest": self.next_index - 1},
            **self.extra_status,
        }


class OldSubscribe(amp.Command):
    """
    L{Subscribe} as nodes that predate views declare it.
    """

    commandName = b"Subscribe"
    arguments: ClassVar[list[tuple[bytes, amp.Argument]]] = [
        (b"since", amp.Integer(optional=True))
    ]
    response: ClassVar[list[tuple[bytes, amp.Argument]]] = [(b"first", amp.Integer())]


class OldNode(amp.AMP):
    """
    The client API of a node that predates views: its subscription answers
    without C{views} and pushes one delivery.
    """

    @OldSubscribe.responder
    def subscribe(self, since: int | None) -> dict[str, object]:
        self.callRemote(Deliver, records=pack_records([Delivery(1, "b", 1, b"x")]))
        return {"first": 1}


def _typecheck(node: FakeNode) -> NodeControl:
    # mypy checks here that FakeNode provides NodeControl.
    return node


def connected(
    node: NodeControl,
) -> tuple[ClientProtocol, ClientAPIProtocol, IOPump]:
    """
    A client connected in memory to the client API of C{node}.
    """
    return connectedServerAndClient(
        lambda: ClientAPIFactory(node).buildProtocol(None), ClientProtocol
    )


def result_of(testcase: SynchronousTestCase, pump: IOPump, d: Deferred[Any]) -> Any:
    """
    Pump the connection until C{d} has a result, and return it.
    """
    pump.flush()
    return testcase.successResultOf(d)


class MulticastTests(SynchronousTestCase):
    """
    L{ClientProtocol.multicast} through a L{ClientAPIProtocol}.
    """

    def test_round_trip(self) -> None:
        """
        The client gets the message's delivery record once the node has
        delivered it.
        """
        node = FakeNode(hold=True)
        client, _, pump = connected(node)
        d = client.multicast(b"hello")
        pump.flush()
        self.assertNoResult(d)
        self.assertEqual(node.received, [b"hello"])
        node.deliver("b", b"from b")
        node.release()
        record = result_of(self, pump, d)
        self.assertEqual(record, Delivery(2, "a", 2, b"hello", 0))

    def test_large_payloads(self) -> None:
        """
        Payloads at and beyond AMP's value limit reach the node intact and
        come back with the record.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        payloads = [
            b"",
            b"a" * amp.MAX_VALUE_LENGTH,
            b"b" * (amp.MAX_VALUE_LENGTH + 1),
            bytes(range(256)) * (4 * 1024) + b"!",
        ]
        results = [client.multicast(p) for p in payloads]
        pump.flush()
        self.assertEqual(node.received, payloads)
        records = [self.successResultOf(d) for d in results]
        self.assertEqual([r.payload for r in records], payloads)
        self.assertEqual([r.index for r in records], [1, 2, 3, 4])

    def test_pipelined_in_order(self) -> None:
        """
        Multicasts sent without waiting for answers reach the node in the
        order they were made and are answered in it.
        """
        node = FakeNode(hold=True)
        client, _, pump = connected(node)
        results = [client.multicast(b"%d" % i) for i in range(100)]
        pump.flush()
        self.assertEqual(len(node.pending), 100)
        node.release()
        pump.flush()
        records = [self.successResultOf(d) for d in results]
        self.assertEqual([r.payload for r in records], [b"%d" % i for i in range(100)])
        self.assertEqual([r.index for r in records], list(range(1, 101)))

    def test_payload_refused_synchronously(self) -> None:
        """
        A node raising L{ValueError} for a payload gives the client a
        L{BadPayloadError} with the node's message; the connection stays up.
        """
        node = FakeNode(limit=10)
        client, _, pump = connected(node)
        d = client.multicast(b"x" * 11)
        pump.flush()
        error = self.failureResultOf(d, BadPayloadError).value
        self.assertEqual(str(error), "payload of 11 bytes is over the limit of 10")
        self.assertEqual(result_of(self, pump, client.multicast(b"ok")).index, 1)

    def test_payload_refused_later(self) -> None:
        """
        A multicast whose L{Deferred} fails with L{ValueError} or
        L{TypeError} is a L{BadPayloadError} too.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        node.fail_with = TypeError("no thanks")
        d = client.multicast(b"x")
        pump.flush()
        self.assertEqual(
            str(self.failureResultOf(d, BadPayloadError).value), "no thanks"
        )

    def test_node_failure(self) -> None:
        """
        Any other failure of the node is logged on the node's side and reaches
        the client as a L{NodeError}; the connection stays up.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        node.fail_with = RuntimeError("disk on fire")
        d = client.multicast(b"x")
        pump.flush()
        error = self.failureResultOf(d, NodeError).value
        self.assertIn("disk on fire", str(error))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        node.fail_with = None
        self.assertEqual(result_of(self, pump, client.multicast(b"ok")).index, 1)

    def test_not_bytes(self) -> None:
        """
        The client refuses a payload that is not L{bytes} before sending it.
        """
        client, _, _ = connected(FakeNode())
        self.assertRaises(TypeError, client.multicast, "text")

    def test_connection_lost(self) -> None:
        """
        A multicast still awaiting its answer fails when the connection goes.
        """
        node = FakeNode(hold=True)
        client, _, pump = connected(node)
        d = client.multicast(b"x")
        pump.flush()
        client.close()
        pump.flush()
        self.failureResultOf(d, ConnectionDone)

    def test_answer_after_client_left(self) -> None:
        """
        A multicast delivered after its client hung up is answered into the
        void: nothing is logged, nothing breaks.
        """
        node = FakeNode(hold=True)
        client, _, pump = connected(node)
        d = client.multicast(b"x")
        pump.flush()
        client.close()
        pump.flush()
        self.failureResultOf(d, ConnectionDone)
        node.release()
        pump.flush()
        self.assertEqual(len(node.history), 1)
        self.assertEqual(self.flushLoggedErrors(), [])


class MulticastBatchTests(SynchronousTestCase):
    """
    L{ClientProtocol.multicast_many} and the gathering L{ClientProtocol.multicast}
    of a client with a clock: several payloads per L{MulticastBatch} call.
    """

    def test_many_in_one_call(self) -> None:
        """
        C{multicast_many} sends its payloads in one call, which the node
        takes in order; each gets its own record, with its payload.
        """
        node = FakeNode(hold=True)
        client, _, pump = connected(node)
        payloads = [b"%d" % i for i in range(300)] + [b""]
        results = client.multicast_many(payloads)
        sent = b"".join(pump.clientIO.stream)
        self.assertEqual(sent.count(b"MulticastBatch"), 1)
        self.assertEqual(sent.count(b"_ask"), 1)
        pump.flush()
        self.assertEqual(node.received, payloads)
        node.release(100)
        pump.flush()
        # One answer for the whole batch, once its last message is delivered.
        self.assertNoResult(results[0])
        node.release()
        pump.flush()
        records = [self.successResultOf(d) for d in results]
        self.assertEqual([r.payload for r in records], payloads)
        self.assertEqual([r.index for r in records], list(range(1, 302)))

    def test_split_by_size(self) -> None:
        """
        Payloads beyond one batch's bytes or count go in further calls; a
        10 MiB payload and an empty one arrive intact.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        big = bytes(range(256)) * (40 * 1024)
        payloads = [b"", big, b"x"] + [b"y"] * (BATCH_MESSAGES + 1)
        results = client.multicast_many(payloads)
        pump.flush()
        self.assertEqual(node.received, payloads)
        records = [self.successResultOf(d) for d in results]
        self.assertEqual([r.payload for r in records], payloads)
        self.assertEqual(records[1].payload, big)

    def test_partial_failure(self) -> None:
        """
        A payload the node refuses fails on its own L{Deferred}, as a
        L{BadPayloadError}; the others of the batch are delivered.
        """
        node = FakeNode(limit=3)
        client, _, pump = connected(node)
        results = client.multicast_many([b"ok", b"too long", b"ok2"])
        pump.flush()
        self.assertEqual(self.successResultOf(results[0]).index, 1)
        error = self.failureResultOf(results[1], BadPayloadError).value
        self.assertIn("over the limit of 3", str(error))
        self.assertEqual(self.successResultOf(results[2]).payload, b"ok2")

    def test_node_failures_not_logged_per_message(self) -> None:
        """
        Messages the node fails are each failed with a L{NodeError} saying
        why, and nothing is logged per message.
        """
        node = FakeNode()
        node.fail_with = RuntimeError("no room")
        client, _, pump = connected(node)
        results = client.multicast_many([b"a"] * 50)
        pump.flush()
        for d in results:
            self.assertIn("no room", str(self.failureResultOf(d, NodeError).value))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_not_bytes(self) -> None:
        """
        A payload that is not bytes is refused before anything is sent.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        self.assertRaises(TypeError, client.multicast_many, [b"a", "b"])
        pump.flush()
        self.assertEqual(node.received, [])

    def test_connection_lost(self) -> None:
        """
        Every message of a batch in flight fails when the connection is lost.
        """
        node = FakeNode(hold=True)
        client, _, pump = connected(node)
        results = client.multicast_many([b"a", b"b"])
        pump.flush()
        client.transport.loseConnection()  # type: ignore[union-attr]
        pump.flush()
        for d in results:
            self.failureResultOf(d)

    def test_all_in_one_deferred(self) -> None:
        """
        C{multicast_all} gives one L{Deferred} for payloads spread over
        several calls: it fires once all are settled, with each payload's
        record or refusal in order.
        """
        node = FakeNode(limit=3)
        client, _, pump = connected(node)
        payloads = [b"ok", b"too long"] + [b"y"] * (BATCH_MESSAGES + 1)
        results = client.multicast_all(payloads)
        sent = b"".join(pump.clientIO.stream)
        self.assertEqual(sent.count(b"MulticastBatch"), 2)
        pump.flush()
        got = self.successResultOf(results)
        self.assertEqual(len(got), len(payloads))
        first, refused, *rest = got
        assert isinstance(first, Delivery)
        self.assertEqual((first.index, first.payload), (1, b"ok"))
        self.assertIsInstance(refused, BadPayloadError)
        self.assertIn("over the limit of 3", str(refused))
        self.assertEqual(
            [(r.index, r.payload) for r in rest if isinstance(r, Delivery)],
            [(i, b"y") for i in range(2, BATCH_MESSAGES + 3)],
        )
        self.assertRaises(TypeError, client.multicast_all, [b"a", "b"])

    def test_all_fails_with_the_connection(self) -> None:
        """
        C{multicast_all} fails with the connection's own error, not a
        wrapper.
        """
        node = FakeNode(hold=True)
        client, _, pump = connected(node)
        results = client.multicast_all([b"a", b"b"])
        pump.flush()
        client.transport.loseConnection()  # type: ignore[union-attr]
        pump.flush()
        failure = self.failureResultOf(results)
        self.assertNotIsInstance(failure.value, FirstError)

    def test_gathered_per_turn(self) -> None:
        """
        With a clock, C{multicast} gathers the payloads of one turn into one
        call, sent when the clock moves on.
        """
        node = FakeNode()
        clock = Clock()
        client, _, pump = connectedServerAndClient(
            lambda: ClientAPIFactory(node).buildProtocol(None),
            lambda: ClientProtocol(clock),
        )
        results = [client.multicast(b"%d" % i) for i in range(5)]
        pump.flush()
        self.assertEqual(node.received, [])
        clock.advance(0)
        pump.flush()
        records = [self.successResultOf(d) for d in results]
        self.assertEqual([r.payload for r in records], [b"%d" % i for i in range(5)])
        # multicast_many sends what was gathered first, keeping the order.
        first = client.multicast(b"first")
        rest = client.multicast_many([b"second"])
        pump.flush()
        self.assertEqual(node.received[-2:], [b"first", b"second"])
        self.assertEqual(
            self.successResultOf(first).index + 1, self.successResultOf(rest[0]).index
        )


class SubscribeTests(SynchronousTestCase):
    """
    L{ClientProtocol.subscribe} and the L{Deliver} commands that follow.
    """

    def test_since_replays_then_streams(self) -> None:
        """
        A subscription from an index replays the held deliveries from there,
        then passes on every new one, in order.
        """
        node = FakeNode()
        for i in range(5):
            node.deliver("b", b"old %d" % i)
        client, _, pump = connected(node)
        seen: list[Delivery] = []
        d = client.subscribe(3, seen.append)
        self.assertEqual(result_of(self, pump, d), 3)
        self.assertEqual([r.index for r in seen], [3, 4, 5])
        node.deliver("c", b"new", None)
        multicast = client.multicast(b"mine")
        pump.flush()
        self.assertEqual([r.index for r in seen], [3, 4, 5, 6, 7])
        self.assertEqual(seen[-2], Delivery(6, "c", 6, b"new"))
        self.assertEqual(seen[-1], Delivery(7, "a", 7, b"mine", 6))
        self.assertEqual(self.successResultOf(multicast), seen[-1])

    def test_new_only(self) -> None:
        """
        A subscription without C{since} passes on new deliveries only, and
        says which index comes first.
        """
        node = FakeNode()
        node.deliver("b", b"old")
        client, _, pump = connected(node)
        seen: list[Delivery] = []
        self.assertEqual(result_of(self, pump, client.subscribe(None, seen.append)), 2)
        self.assertEqual(seen, [])
        node.deliver("b", b"new")
        pump.flush()
        self.assertEqual([r.payload for r in seen], [b"new"])

    def test_large_payload_pushed(self) -> None:
        """
        Deliveries of any size reach the subscriber intact.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        seen: list[Delivery] = []
        client.subscribe(None, seen.append)
        pump.flush()
        big = b"z" * (MiB + 1)
        node.deliver("b", big)
        pump.flush()
        self.assertEqual([r.payload for r in seen], [big])

    def test_history_gone(self) -> None:
        """
        Asking for deliveries the node no longer holds fails with
        L{HistoryGoneError}, whose message says from where to resume; the
        client may then subscribe again.
        """
        node = FakeNode()
        for i in range(10):
            node.deliver("b", b"%d" % i)
        node.forget(before=7)
        client, _, pump = connected(node)
        seen: list[Delivery] = []
        d = client.subscribe(2, seen.append)
        pump.flush()
        error = self.failureResultOf(d, HistoryGoneError).value
        self.assertEqual(
            str(error),
            "deliveries before index 7 are no longer held; resubscribe from 7",
        )
        self.assertEqual(result_of(self, pump, client.subscribe(7, seen.append)), 7)
        self.assertEqual([r.index for r in seen], [7, 8, 9, 10])

    def test_one_subscription_per_connection(self) -> None:
        """
        A second subscription on one connection is refused, by the client and
        by the node alike; the first goes on.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        seen: list[Delivery] = []
        client.subscribe(None, seen.append)
        pump.flush()
        self.failureResultOf(
            client.subscribe(None, seen.append), AlreadySubscribedError
        )
        # AMP's own Deferred needs its errback before the answer comes.
        refusals: list[Failure] = []
        client.callRemote(Subscribe, since=None).addErrback(refusals.append)
        pump.flush()
        (refusal,) = refusals
        refusal.trap(AlreadySubscribedError)
        node.deliver("b", b"x")
        pump.flush()
        self.assertEqual(len(seen), 1)
        self.assertEqual(len(node.subscriptions), 1)

    def test_cancelled_when_connection_lost(self) -> None:
        """
        The node's subscription is cancelled when the connection goes.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        client.subscribe(None, lambda r: None)
        pump.flush()
        (subscription,) = node.subscriptions
        client.close()
        pump.flush()
        self.assertTrue(subscription.cancelled)
        self.assertEqual(node.subscriptions, [])

    def test_callback_error_logged(self) -> None:
        """
        A callback that raises is logged, and is called again for the next
        delivery.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        seen: list[int] = []

        def callback(record: Delivery) -> None:
            seen.append(record.index)
            if record.index == 1:
                raise ZeroDivisionError()

        client.subscribe(None, callback)
        pump.flush()
        node.deliver("b", b"1")
        node.deliver("b", b"2")
        pump.flush()
        self.assertEqual(seen, [1, 2])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_records_batched_per_turn(self) -> None:
        """
        Records the node passes in one turn reach the client together once
        the node flushes, in order; a batch over L{BATCH_BYTES} goes at
        once.
        """
        node = FakeNode()
        client, _, pump = connected(node)
        seen: list[Delivery] = []
        result_of(self, pump, client.subscribe(None, seen.append))
        sub = node.subscriptions[0]
        records = [Delivery(i, "b", i, b"x%d" % i, None) for i in (1, 2, 3)]
        for record in records:
            sub.callback(record)
        pump.flush()
        self.assertEqual(seen, [])
        assert sub.flush is not None
        sub.flush()
        pump.flush()
        self.assertEqual(seen, records)
        big = Delivery(4, "b", 4, b"." * BATCH_BYTES, 3)
        sub.callback(big)
        pump.flush()
        self.assertEqual(seen, [*records, big])

    def test_views_in_order(self) -> None:
        """
        With C{views}, the callback gets view changes too, in order with the
        deliveries, replayed ones included; the node is asked for them.
        """
        node = FakeNode()
        node.deliver("b", b"1")
        node.install(1, ("a", "b"))
        node.deliver("b", b"2")
        client, _, pump = connected(node)
        seen: list[Record] = []
        self.assertEqual(
            result_of(self, pump, client.subscribe(1, seen.append, views=True)), 1
        )
        self.assertTrue(node.subscriptions[0].views)
        self.assertIs(client.passes_views, True)
        node.deliver("a", b"3")
        node.install(2, ("a",))
        node.deliver("a", b"4")
        pump.flush()
        self.assertEqual(
            seen,
            [
                Delivery(1, "b", 1, b"1"),
                ViewChange(1, ("a", "b"), 2),
                Delivery(2, "b", 2, b"2"),
                Delivery(3, "a", 3, b"3"),
                ViewChange(2, ("a",), 4),
                Delivery(4, "a", 4, b"4"),
            ],
        )

    def test_no_views_unless_asked(self) -> None:
        """
        Without C{views} (as every older client subscribes), the node is not
        asked for view changes and none reach the callback.
        """
        node = FakeNode()
        node.install(1, ("a", "b"))
        node.deliver("b", b"1")
        client, _, pump = connected(node)
        seen: list[Delivery] = []
        result_of(self, pump, client.subscribe(1, seen.append))
        self.assertFalse(node.subscriptions[0].views)
        node.install(2, ("a",))
        node.deliver("a", b"2")
        pump.flush()
        self.assertEqual([type(r) for r in seen], [Delivery, Delivery])
        # An older client's Subscribe has no views argument at all.
        answers: list[dict[str, object]] = []
        other, _, pump = connected(node)
        other.callRemote(Subscribe, since=1).addCallback(answers.append)
        pump.flush()
        self.assertEqual(answers, [{"first": 1, "views": False}])
        self.assertFalse(node.subscriptions[-1].views)

    def test_views_from_older_node(self) -> None:
        """
        A node that predates views answers without C{views}: the client
        logs one warning and passes on the deliveries.
        """

        client, _, pump = connectedServerAndClient(OldNode, ClientProtocol)
        self.assertIsNone(client.passes_views)
        observer = EventLoggingObserver()
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        seen: list[Record] = []
        self.assertEqual(
            result_of(self, pump, client.subscribe(1, seen.append, views=True)), 1
        )
        self.assertEqual(seen, [Delivery(1, "b", 1, b"x")])
        self.assertIs(client.passes_views, False)
        warnings = [e for e in observer if "view changes" in e["log_format"]]
        self.assertEqual(len(warnings), 1)

    def test_dropped_resumes_at_view(self) -> None:
        """
        A view change held in a slow subscriber's backlog counts towards it,
        and when the subscription is dropped with a view change first in the
        backlog, the index to resume from is the view's, so that resuming
        passes the view change again.
        """
        node = FakeNode()
        clock = Clock()
        client, server, pump = connectedServerAndClient(
            lambda: ClientAPIFactory(node, clock, backlog=200).buildProtocol(None),
            ClientProtocol,
        )
        seen: list[Record] = []
        result_of(self, pump, client.subscribe(None, seen.append, views=True))
        server.pauseProducing()
        node.install(1, ("a", "b"))
        node.deliver("b", b"x" * 300)
        pump.flush()
        lost = self.successResultOf(client.when_lost())
        assert isinstance(lost, SubscriptionDroppedError)
        self.assertEqual(lost.resume_from, 1)
        self.assertEqual(seen, [])
        again, _, pump = connected(node)
        result_of(
            self, pump, again.subscribe(lost.resume_from, seen.append, views=True)
        )
        self.assertEqual(seen[0], ViewChange(1, ("a", "b"), 1))

    def test_deliver_without_subscription(self) -> None:
        """
        A L{Deliver} to a client that did not subscribe is ignored.
        """
        client, server, pump = connected(FakeNode())
        server.callRemote(
            Deliver, records=pack_records([Delivery(1, "a", 1, b"x", None)])
        )
        pump.flush()
        self.assertFalse(client.when_lost().called)

    def test_garbage_from_node_is_logged(self) -> None:
        """
        A L{Deliver} whose records cannot be read is logged and dropped;
        the connection and the subscription go on.
        """
        node = FakeNode()
        client, server, pump = connected(node)
        seen: list[Delivery] = []
        result_of(self, pump, client.subscribe(None, seen.append))
        server.callRemote(Deliver, records=b"\x00\x01")
        pump.flush()
        node.deliver("b", b"after")
        pump.flush()
        self.assertEqual([r.payload for r in seen], [b"after"])
        self.assertFalse(client.when_lost().called)


class StatusTests(SynchronousTestCase):
    """
    L{ClientProtocol.status}.
    """

    def test_status(self) -> None:
        """
        The node's status arrives decoded, nested values and all.
        """
        node = FakeNode()
        node.deliver("b", b"x")
        node.extra_status = {"peers": {"b": {"connected": True, "horizon": 3}}}
        client, _, pump = connected(node)
        status = result_of(self, pump, client.status())
        self.assertEqual(status, json.loads(json.dumps(node.status())))
        self.assertEqual(status["peers"], {"b": {"connected": True, "horizon": 3}})

    def test_large_status(self) -> None:
        """
        A status larger than one AMP value arrives whole.
        """
        node = FakeNode()
        node.extra_status = {"notes": "n" * (3 * amp.MAX_VALUE_LENGTH)}
        client, _, pump = connected(node)
        status = result_of(self, pump, client.status())
        self.assertEqual(len(status["notes"]), 3 * amp.MAX_VALUE_LENGTH)

    def test_node_failure(self) -> None:
        """
        A status that cannot be produced is a L{NodeError}, logged by the
        node; the connection stays up.
        """
        node = FakeNode()
        node.extra_status = {"broken": {(1, 2): "a tuple key"}}
        client, _, pump = connected(node)
        d = client.status()
        pump.flush()
        self.failureResultOf(d, NodeError)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
        node.extra_status = {}
        self.assertEqual(result_of(self, pump, client.status())["me"], "a")


class ConnectionTests(SynchronousTestCase):
    """
    L{ClientProtocol.when_lost} and L{ClientProtocol.close}.
    """

    def test_close(self) -> None:
        """
        L{ClientProtocol.close} ends the connection; L{when_lost} fires then,
        or at once once it has ended.
        """
        client, _, pump = connected(FakeNode())
        waiting = client.when_lost()
        closing = client.close()
        self.assertNoResult(closing)
        pump.flush()
        reason = self.successResultOf(closing)
        self.assertIsInstance(reason, ConnectionDone)
        self.assertIs(self.successResultOf(waiting), reason)
        self.assertIs(self.successResultOf(client.when_lost()), reason)
        self.assertIs(self.successResultOf(client.close()), reason)

    def test_connection_lost_default_reason(self) -> None:
        """
        C{connectionLost} may be called without a reason, as for any
        protocol.
        """
        client, server, _ = connected(FakeNode())
        server.connectionLost()
        client.connectionLost()
        self.assertIs(self.successResultOf(client.when_lost()), connectionDone.value)


class ConnectTests(SynchronousTestCase):
    def test_unusable(self) -> None:
        """
        L{connect} refuses a description that names no client endpoint.
        """
        for text in ["nonsense:x", "tcp:", "tcp:localhost:port"]:
            self.assertRaises(ValueError, connect, reactor, text)


class _TrackedProtocol(ClientAPIProtocol):
    def __init__(self, node: NodeControl, lost: Deferred[None]) -> None:
        super().__init__(node)
        self.lost = lost

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        self.lost.callback(None)


class TrackingFactory(ClientAPIFactory):
    """
    A L{ClientAPIFactory} that knows when its connections have ended, so
    that a test can wait for them before it ends.
    """

    def __init__(self, node: NodeControl) -> None:
        super().__init__(node)
        self.lost: list[Deferred[None]] = []
        self.protocols: list[ClientAPIProtocol] = []

    def buildProtocol(self, addr: IAddress | None) -> ClientAPIProtocol:
        lost: Deferred[None] = Deferred()
        self.lost.append(lost)
        proto = _TrackedProtocol(self.node, lost)
        proto.factory = self
        self.protocols.append(proto)
        return proto

    def all_lost(self) -> Deferred[Any]:
        return gatherResults(self.lost)


def listen(testcase: TestCase, node: NodeControl) -> tuple[int, TrackingFactory]:
    """
    Serve the client API of C{node} on a free loopback port until the test
    ends (and its connections with it).

    @return: The port number and the factory.
    """
    factory = TrackingFactory(node)
    port = tcp_reactor.listenTCP(0, factory, interface="127.0.0.1")
    testcase.addCleanup(port.stopListening)
    testcase.addCleanup(factory.all_lost)
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    return address.port, factory


class LoopbackTests(TestCase):
    """
    L{connect} over real TCP on the loopback interface.
    """

    async def test_round_trip(self) -> None:
        """
        A client connected with a bare port number multicasts, subscribes and
        reads the status.
        """
        node = FakeNode()
        number, factory = listen(self, node)
        client = await connect(reactor, str(number))
        seen: list[Delivery] = []
        self.assertEqual(await client.subscribe(1, seen.append), 1)
        record = await client.multicast(b"y" * (MiB + 1))
        self.assertEqual((record.index, record.sender), (1, "a"))
        status = await client.status()
        self.assertEqual(status["delivered"], 1)
        self.assertEqual(seen, [record])
        await client.close()
        await factory.all_lost()
        self.assertEqual(node.subscriptions, [])

    async def test_refused(self) -> None:
        """
        Connecting where nobody listens fails with the connection error.
        """
        port = tcp_reactor.listenTCP(
            0, ClientAPIFactory(FakeNode()), interface="127.0.0.1"
        )
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        number = address.port
        stopping = port.stopListening()
        assert stopping is not None
        await stopping
        with self.assertRaises(ConnectionRefusedError):
            await connect(reactor, f"tcp:127.0.0.1:{number}")


def framed(frame: bytes) -> bytes:
    """
    C{frame} as a member's link sends it: a u32 length, then the frame.
    """
    return struct.pack(">I", len(frame)) + frame


class WrongPortTests(SynchronousTestCase):
    """
    A client dialing a member's peer port is told so in plain words.
    """

    def test_client_at_a_peer_port(self) -> None:
        """
        A refusal in the peer protocol fails the client's requests, and its
        connection, with a L{WrongPortError} saying which port to give.
        """
        client = ClientProtocol()
        transport = StringTransport()
        client.makeConnection(transport)
        asked = client.status()
        lost = client.when_lost()
        client.dataReceived(framed(encode_refuse(Refuse("frame too big"))))
        self.assertTrue(transport.disconnecting)
        client.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(asked, WrongPortError).value
        self.assertIn("give --node the member's --client-port", str(error))
        self.assertIsInstance(self.successResultOf(lost), WrongPortError)
