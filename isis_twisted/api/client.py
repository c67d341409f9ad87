"""
The client's end of the local client API: multicast, subscribe and ask for
the status of a node, over AMP.

A node listens on a local endpoint with an
L{isis_twisted.api.server.ClientAPIFactory}; programs (the C{isis} command
among them) connect with L{connect} and use the returned
L{ClientProtocol}::

    proto = await connect(reactor, "tcp:127.0.0.1:9101")
    record = await proto.multicast(b"hello")
    first = await proto.subscribe(since=1, callback=print)
    first = await proto.subscribe(since=1, callback=print, views=True)

L{ClientProtocol.multicast} sends several payloads in one
L{MulticastBatch} when it has a clock, as L{connect} gives it; the commands
and their packing are in L{isis_twisted.api.commands}.

Errors are L{ClientAPIError}s (those the commands declare are in
L{isis_twisted.api.commands}; L{SubscriptionDroppedError} and
L{WrongPortError} are the client's own), and L{HistoryGoneError}, the
node's own error from L{isis_twisted.interfaces}, re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

from twisted.internet.defer import Deferred, FirstError, fail, gatherResults
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure

from isis_twisted.api.commands import (
    BATCH_BYTES,
    AlreadySubscribedError,
    Authenticate,
    BadPayloadError,
    ClientAPIError,
    Deliver,
    ForceView,
    Multicast,
    MulticastBatch,
    NodeError,
    Status,
    Subscribe,
    SubscriptionDropped,
    is_peer_protocol,
)
from isis_twisted.core.engine import Delivery, Record
from isis_twisted.core.records import pack_payloads, unpack_records
from isis_twisted.interfaces import HistoryGoneError
from isis_twisted.net.options import dial_description

__all__ = [
    "BATCH_MESSAGES",
    "ClientAPIError",
    "ClientProtocol",
    "HistoryGoneError",
    "SubscriptionDroppedError",
    "WrongPortError",
    "connect",
]

_log = Logger()


# -- errors ---------------------------------------------------------------


class SubscriptionDroppedError(ClientAPIError):
    """
    The node ended this connection's subscription because the client read
    its deliveries too slowly.  The message says from which index to
    resubscribe.

    @ivar resume_from: The first index the client did not get.
    """

    def __init__(self, message: str, resume_from: int) -> None:
        super().__init__(message)
        self.resume_from = resume_from


class WrongPortError(ClientAPIError):
    """
    What answered speaks the members' peer protocol: the address is a
    member's peer port, not its client API port.
    """


def _call_remote(
    proto: amp.AMP, command: type[amp.Command], **arguments: object
) -> Deferred[dict[str, Any]]:
    """
    Send C{command}, one that is answered, and return a L{Deferred} for the
    answer.

    The answer comes on a L{Deferred} of our own: AMP appends an errback that
    drops the connection to its L{Deferred} when an error answer arrives, so
    a caller who adds its errback later would lose both the error and the
    connection.
    """
    sent = proto.callRemote(command, **arguments)  # type: ignore[no-untyped-call]
    answer: Deferred[dict[str, Any]] = Deferred()
    if sent is not None:
        sent.chainDeferred(answer)
    return answer


BATCH_MESSAGES = 1024
"""
The most payloads L{ClientProtocol} puts in one L{MulticastBatch}.
"""


def _batch_bounds(payloads: Sequence[bytes]) -> list[tuple[int, int]]:
    """
    Where to cut C{payloads} into L{MulticastBatch} calls: about
    L{BATCH_BYTES} or L{BATCH_MESSAGES} each, at least one payload each.
    """
    bounds = []
    start = size = 0
    for end, payload in enumerate(payloads):
        if end > start and (
            size + len(payload) > BATCH_BYTES or end - start >= BATCH_MESSAGES
        ):
            bounds.append((start, end))
            start, size = end, 0
        size += len(payload)
    if start < len(payloads):
        bounds.append((start, len(payloads)))
    return bounds


# -- the client's side ----------------------------------------------------


class ClientProtocol(amp.AMP):
    """
    A client's end of a connection to a node's client API.

    Make one with L{connect}, or connect an instance to any client endpoint.

    @ivar passes_views: Whether the node passes view changes to this
        connection's subscription: L{None} until a subscription that asked
        for them is answered, then false for a node that predates them.
    """

    passes_views: bool | None = None

    def __init__(self, clock: IReactorTime | None = None) -> None:
        """
        A protocol not yet connected, with no subscription.

        @param clock: If given, L{multicast} gathers the payloads of one
            reactor turn and sends them as one L{MulticastBatch} at the end
            of it; without one, each is a L{Multicast} of its own.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self._clock = clock
        self._queued: list[tuple[bytes, Deferred[Delivery]]] = []
        self._queue_call: IDelayedCall | None = None
        self._callback: Callable[[Any], None] | None = None
        self._dropped: SubscriptionDroppedError | None = None
        self._lost: BaseException | None = None
        self._waiting: list[Deferred[BaseException]] = []

    def multicast(self, payload: bytes) -> Deferred[Delivery]:
        """
        Multicast C{payload} through the node.

        Calls may be made without waiting for earlier ones to be answered;
        the node takes them in the order they were made.

        @param payload: The message's bytes, of any length.
        @return: A L{Deferred} that fires with the delivery record once the
            node has delivered the message, or fails with L{BadPayloadError},
            L{NodeError}, or a connection error.
        @raise TypeError: If C{payload} is not L{bytes}.
        """
        if type(payload) is not bytes:
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        if self._clock is not None:
            waiting: Deferred[Delivery] = Deferred()
            self._queued.append((payload, waiting))
            if self._queue_call is None:
                self._queue_call = self._clock.callLater(0, self._send_queued)
            return waiting
        answer = _call_remote(self, Multicast, payload=payload)
        return answer.addCallback(
            lambda fields: Delivery(
                fields["index"],
                fields["sender"],
                fields["clock"],
                payload,
                fields["after"],
            )
        )

    def multicast_many(self, payloads: Sequence[bytes]) -> list[Deferred[Delivery]]:
        """
        Multicast several payloads through the node, in this order, in as
        few L{MulticastBatch} calls as their size allows (about
        L{BATCH_BYTES} or L{BATCH_MESSAGES} per call).

        Payloads that L{multicast} gathered and has not sent yet go first.

        @param payloads: The messages' bytes, each of any length.
        @return: One L{Deferred} per payload, in order, each as
            L{multicast} returns it.
        @raise TypeError: If a payload is not L{bytes}; nothing is sent.
        """
        for payload in payloads:
            if type(payload) is not bytes:
                raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        self._send_queued()
        waiting: list[Deferred[Delivery]] = [Deferred() for _ in payloads]
        self._send_batches(list(zip(payloads, waiting, strict=True)))
        return waiting

    def multicast_all(
        self, payloads: Sequence[bytes]
    ) -> Deferred[list[Delivery | BadPayloadError | NodeError]]:
        """
        Multicast several payloads through the node, in this order, as
        L{multicast_many} does, with one L{Deferred} for all of them: the
        cheap way to send many, with no Deferred per message.

        @param payloads: The messages' bytes, each of any length.
        @return: A L{Deferred} that fires once every payload is settled
            with, per payload in order, its delivery record or the error
            the node refused it with (L{BadPayloadError}, L{NodeError}); it
            fails only with a connection error, and then for all of them.
        @raise TypeError: If a payload is not L{bytes}; nothing is sent.
        """
        for payload in payloads:
            if type(payload) is not bytes:
                raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        self._send_queued()
        calls = [
            self._call_batch(payloads[start:end])
            for start, end in _batch_bounds(payloads)
        ]
        gathered = gatherResults(calls, consumeErrors=True)

        def joined(
            parts: list[list[Delivery | BadPayloadError | NodeError]],
        ) -> list[Delivery | BadPayloadError | NodeError]:
            return [result for part in parts for result in part]

        def first(failure: Failure) -> Failure:
            # The connection's error itself, not gatherResults' wrapper.
            if isinstance(failure.value, FirstError):
                return failure.value.subFailure
            return failure

        return gathered.addCallbacks(joined, first)

    def _call_batch(
        self, payloads: Sequence[bytes]
    ) -> Deferred[list[Delivery | BadPayloadError | NodeError]]:
        answer = _call_remote(self, MulticastBatch, payloads=pack_payloads(payloads))

        def answered(
            fields: dict[str, Any],
        ) -> list[Delivery | BadPayloadError | NodeError]:
            records = iter(
                r for r in unpack_records(fields["records"]) if isinstance(r, Delivery)
            )
            failures = {
                position: (kind, message)
                for position, kind, message in json.loads(fields["failures"])
            }
            out: list[Delivery | BadPayloadError | NodeError] = []
            for position, payload in enumerate(payloads):
                failure = failures.get(position)
                if failure is None:
                    r = next(records)
                    out.append(Delivery(r.index, r.sender, r.clock, payload, r.after))
                elif failure[0] == "BAD_PAYLOAD":
                    out.append(BadPayloadError(failure[1]))
                else:
                    out.append(NodeError(failure[1]))
            return out

        return answer.addCallback(answered)

    def _send_queued(self) -> None:
        if self._queue_call is not None:
            if self._queue_call.active():
                self._queue_call.cancel()
            self._queue_call = None
        queued, self._queued = self._queued, []
        if self._lost is not None:
            for _, waiting in queued:
                waiting.errback(self._lost)
            return
        self._send_batches(queued)

    def _send_batches(self, items: Sequence[tuple[bytes, Deferred[Delivery]]]) -> None:
        payloads = [payload for payload, _ in items]
        for start, end in _batch_bounds(payloads):
            self._send_batch(items[start:end])

    def _send_batch(self, items: Sequence[tuple[bytes, Deferred[Delivery]]]) -> None:
        def answered(results: list[Delivery | BadPayloadError | NodeError]) -> None:
            for result, (_, waiting) in zip(results, items, strict=True):
                if isinstance(result, Delivery):
                    waiting.callback(result)
                else:
                    waiting.errback(result)

        def failed(failure: Failure) -> None:
            for _, waiting in items:
                waiting.errback(failure)

        self._call_batch([payload for payload, _ in items]).addCallbacks(
            answered, failed
        )

    @overload
    def subscribe(
        self,
        since: int | None,
        callback: Callable[[Delivery], None],
        views: Literal[False] = False,
    ) -> Deferred[int]: ...

    @overload
    def subscribe(
        self,
        since: int | None,
        callback: Callable[[Record], None],
        views: bool,
    ) -> Deferred[int]: ...

    def subscribe(
        self,
        since: int | None,
        callback: Callable[[Any], None],
        views: bool = False,
    ) -> Deferred[int]:
        """
        Receive the node's deliveries: the held ones from index C{since} on,
        then every new one, in order.

        C{callback} may be called before the returned L{Deferred} fires (for
        the replayed deliveries).  If it raises, the error is logged and the
        next delivery is still passed to it.  A connection carries one
        subscription; it ends when the connection does.

        With C{views}, C{callback} is also called with a
        L{ViewChange<isis_twisted.core.engine.ViewChange>} for every view
        the node installs, in order with the deliveries: after the last
        delivery of the view before and before the first of the new one,
        whose index the record carries.  A replay from C{since} includes
        the held view changes whose index is C{since} or more.  A node too
        old to pass view changes ignores the request: the deliveries come
        all the same, and a warning is logged once.

        @param since: The index to start from, or L{None} for new deliveries
            only.
        @param callback: Called with every delivery record (and, with
            C{views}, every view change).
        @param views: Whether to pass view changes too.
        @return: A L{Deferred} that fires with the first index C{callback}
            will see, or fails with L{HistoryGoneError} (the message says
            from which index the node can replay), L{AlreadySubscribedError},
            L{NodeError} or a connection error.
        """
        if self._callback is not None:
            return fail(AlreadySubscribedError("this connection is already subscribed"))
        self._callback = callback
        answer = (
            _call_remote(self, Subscribe, since=since, views=True)
            if views
            else _call_remote(self, Subscribe, since=since)
        )

        def subscribed(fields: dict[str, Any]) -> int:
            if views:
                self.passes_views = bool(fields.get("views"))
            if views and not self.passes_views:
                _log.warn(
                    "the node does not pass view changes (it predates them);"
                    " only its deliveries follow"
                )
            return int(fields["first"])

        def refused(failure: Failure) -> Failure:
            self._callback = None
            return failure

        return answer.addCallbacks(subscribed, refused)

    def authenticate(self, token: bytes) -> Deferred[None]:
        """
        Give the node's client token (first, when the node requires one).

        @return: A L{Deferred} that fires when the node took it, or fails
            with
            L{NotAuthenticatedError<isis_twisted.api.commands.NotAuthenticatedError>}.
        """
        return _call_remote(self, Authenticate, token=token).addCallback(lambda _: None)

    def force_view(self, without: Sequence[str] | None = None) -> Deferred[list[str]]:
        """
        Ask the node to close its blocked view without the members named
        (or every member it suspects): see L{ForceView}.

        @return: A L{Deferred} that fires with the members of the view it
            proposed, or fails with
            L{CannotForceViewError<isis_twisted.api.commands.CannotForceViewError>}.
        """
        kwargs = {} if without is None else {"without": list(without)}
        return _call_remote(self, ForceView, **kwargs).addCallback(
            lambda fields: list(fields["members"])
        )

    def status(self) -> Deferred[dict[str, object]]:
        """
        Ask for the node's status.

        @return: A L{Deferred} that fires with the node's status, decoded from
            JSON, or fails with L{NodeError} or a connection error.
        """
        answer = _call_remote(self, Status)

        def decode(fields: dict[str, Any]) -> dict[str, object]:
            status = json.loads(fields["status"])
            if not isinstance(status, dict):
                raise NodeError("the node's status is not a JSON object")
            return status

        return answer.addCallback(decode)

    @Deliver.responder
    def _deliver(self, records: bytes) -> dict[str, object]:
        if self._callback is None:
            return {}
        try:
            batch = unpack_records(records)
        except ValueError as e:
            _log.error("the node sent deliveries that cannot be read: {e}", e=e)
            return {}
        for record in batch:
            callback = self._callback
            if callback is None:
                break
            try:
                callback(record)
            except Exception:
                _log.failure(
                    "delivery callback failed on index {index}", index=record.index
                )
        return {}

    _sniffed = False
    _wrong_port: WrongPortError | None = None

    @property
    def heard_from_node(self) -> bool:
        """
        Whether anything at all has arrived on this connection.
        """
        return self._sniffed

    def dataReceived(self, data: bytes) -> None:
        """
        Before the first box, recognise a member's peer port: it greets (or
        refuses) in the peer protocol, which AMP would misread.
        """
        if not self._sniffed:
            self._sniffed = True
            if is_peer_protocol(data):
                self._wrong_port = WrongPortError(
                    "this address is a member's peer port, not its client API"
                    " port: give --node the member's --client-port"
                )
                assert self.transport is not None
                self.transport.abortConnection()  # type: ignore[attr-defined]
                return
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    @SubscriptionDropped.responder
    def _subscription_dropped(self, resume_from: int, reason: str) -> dict[str, object]:
        self._callback = None
        self._dropped = SubscriptionDroppedError(reason, resume_from)
        return {}

    def when_lost(self) -> Deferred[BaseException]:
        """
        Wait for the connection to end.

        @return: A L{Deferred} that fires once the connection has ended (at
            once if it already has), with the exception saying why: for
            example L{ConnectionDone} when it was closed cleanly, or
            L{SubscriptionDroppedError} when the node dropped a subscriber
            that read too slowly.
        """
        waiting: Deferred[BaseException] = Deferred()
        if self._lost is not None:
            waiting.callback(self._lost)
        else:
            self._waiting.append(waiting)
        return waiting

    def close(self) -> Deferred[BaseException]:
        """
        Close the connection.

        @return: What L{when_lost} returns.
        """
        if self._lost is None and self.transport is not None:
            self.transport.loseConnection()
        return self.when_lost()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Fail the outstanding requests and fire the L{when_lost} waiters.
        """
        self._callback = None
        if self._wrong_port is not None:
            self._lost = self._wrong_port
            reason = Failure(self._wrong_port)  # type: ignore[no-untyped-call]
        elif self._dropped is not None:
            self._lost = self._dropped
        else:
            self._lost = reason.value if reason.value is not None else ConnectionDone()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(self._lost)


def connect(reactor: object, description: str) -> Deferred[ClientProtocol]:
    """
    Connect to a node's client API.

    @param reactor: The reactor to connect with; it must provide the
        interface the endpoint needs (L{IReactorTCP} for C{tcp:}, ...).
    @param description: A client endpoint description (see
        L{clientFromString}), C{HOST:PORT}, or a bare port number on
        127.0.0.1 (see L{dial_description}).
    @return: A L{Deferred} that fires with the connected protocol, or fails
        with the connection error.
    @raise ValueError: If C{description} is not a usable client endpoint
        description.
    """
    text = dial_description(description)
    try:
        endpoint = clientFromString(reactor, text)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{text!r} is not a usable client endpoint: {e}") from e
    clock = reactor if IReactorTime.providedBy(reactor) else None
    connected: Deferred[ClientProtocol] = connectProtocol(
        endpoint,
        ClientProtocol(clock),
    )
    return connected
