"""
The node's end of the AMP client API: the protocol that serves what a node
offers its clients (L{NodeControl}) to them.

A node listens on a local endpoint with a L{ClientAPIFactory}; every
connection gets a L{ClientAPIProtocol}, which answers the commands of
L{isis_twisted.api.commands} from the node and pushes the deliveries of
the connection's subscription (see L{isis_twisted.api.subscriberfeed}).  Programs
connect with L{isis_twisted.api.client.connect}.

The node is reached only through L{NodeControl}, so that this module does
not depend on how the node is built.
"""

from __future__ import annotations

import hmac
import json
import struct
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IPushProducer, IReactorTime
from twisted.internet.protocol import ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure
from zope.interface import implementer

from isis_twisted.api.commands import (
    AlreadySubscribedError,
    Authenticate,
    BadPayloadError,
    CannotForceViewError,
    ClientAPIError,
    ForceView,
    Multicast,
    MulticastBatch,
    NodeError,
    NotAuthenticatedError,
    Status,
    Subscribe,
    is_peer_protocol,
)
from isis_twisted.api.nodecontrol import (
    DEFAULT_BACKLOG,
    NodeControl,
    Subscription,
)
from isis_twisted.api.subscriberfeed import SubscriberFeed
from isis_twisted.core.engine import Delivery
from isis_twisted.core.membership import CannotForceError
from isis_twisted.core.records import pack_records, unpack_payloads
from isis_twisted.core.status import status_json
from isis_twisted.core.wire import Refuse, encode_refuse
from isis_twisted.interfaces import HistoryGoneError

__all__ = ["ClientAPIFactory", "ClientAPIProtocol"]

_log = Logger()


# -- serving the node ----------------------------------------------------


_TLS_HANDSHAKE = 0x16


def _delivery_fields(record: Delivery) -> dict[str, object]:
    return {
        "index": record.index,
        "sender": record.sender,
        "clock": record.clock,
        "after": record.after,
    }


@implementer(IPushProducer)
class ClientAPIProtocol(amp.AMP):
    """
    The node's end of one client connection: answers L{Multicast},
    L{Subscribe} and L{Status} from the node, and pushes
    L{Deliver<isis_twisted.api.commands.Deliver>} commands for the
    connection's subscription.

    A subscriber that stops reading is not allowed to grow the node's
    memory: once the connection's write buffer is full, deliveries wait in a
    backlog of at most C{backlog} bytes; past that the subscription is
    dropped with a
    L{SubscriptionDropped<isis_twisted.api.commands.SubscriptionDropped>}
    notice saying from which index to resubscribe, and the connection
    closed (see L{SubscriberFeed}).

    @ivar node: The node the connection controls.
    """

    _log = Logger()

    def __init__(
        self,
        node: NodeControl,
        clock: IReactorTime | None = None,
        backlog: int = DEFAULT_BACKLOG,
        token: bytes | None = None,
    ) -> None:
        """
        @param node: The node the connection controls.
        @param clock: For the grace period of a dropped subscriber (default:
            the global reactor).
        @param backlog: The most bytes of deliveries held for a subscriber
            that is not reading.
        @param token: If given, every command but L{Authenticate} is refused
            until the connection has given this token.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self.node = node
        self._token = token
        self._authenticated = token is None
        self._subscription: Subscription | None = None
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self._feed = SubscriberFeed(self, clock, backlog, self._cancel_subscription)

    _sniffed = False

    def dataReceived(self, data: bytes) -> None:
        """
        Before the first box, tell a member that dialed this port as a peer
        what it did, in its own protocol, and close.
        """
        if not self._sniffed:
            self._sniffed = True
            if is_peer_protocol(data) or data[:1] == bytes([_TLS_HANDSHAKE]):
                self._wrong_protocol(tls=data[:1] == bytes([_TLS_HANDSHAKE]))
                return
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def _wrong_protocol(self, tls: bool) -> None:
        assert self.transport is not None
        reason = (
            f"this is the client API port of member {self.node.me!r}, not its"
            " peer port; --peers must name the peer port (--port)"
        )
        if not tls:
            refusal = encode_refuse(Refuse(reason))
            self.transport.write(struct.pack(">I", len(refusal)) + refusal)
        factory = self.factory
        seen = factory.wrong_protocol if isinstance(factory, ClientAPIFactory) else 0
        if not seen:
            # Once per listening port: a misdirected member redials forever.
            self._log.warn(
                "a member at {peer} dialed the client API port as a peer port;"
                " its --peers must name this member's --port (counted from now"
                " on, not logged again)",
                peer=self.transport.getPeer(),
            )
        if isinstance(factory, ClientAPIFactory):
            factory.wrong_protocol += 1
        self.transport.loseConnection()

    def connectionMade(self) -> None:
        """
        Hear from the transport when the client stops reading.
        """
        super().connectionMade()  # type: ignore[no-untyped-call]
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]

    def pauseProducing(self) -> None:
        """
        The connection's write buffer is full: hold deliveries back.
        """
        self._feed.pause()

    def resumeProducing(self) -> None:
        """
        The client read: send what was held back.
        """
        self._feed.resume()

    def stopProducing(self) -> None:
        """
        The connection is going; L{connectionLost} follows.
        """

    @Authenticate.responder
    def authenticate(self, token: bytes) -> dict[str, object]:
        """
        Check the client token.

        @raise NotAuthenticatedError: If it is not the node's token.
        """
        if self._token is not None and not hmac.compare_digest(token, self._token):
            peer = self.transport.getPeer() if self.transport is not None else None
            self._log.warn("refused a wrong client token from {peer}", peer=peer)
            raise NotAuthenticatedError("wrong client token")
        self._authenticated = True
        return {}

    def _require_token(self) -> None:
        if not self._authenticated:
            raise NotAuthenticatedError(
                "this node requires a client token (isis --token-file)"
            )

    @Multicast.responder
    def multicast(self, payload: bytes) -> Deferred[dict[str, object]]:
        """
        Multicast C{payload} through the node; answer once it is delivered.

        @raise BadPayloadError: If the node refuses the payload.
        @raise NodeError: If the node fails otherwise.
        @raise NotAuthenticatedError: If a token is required and not given.
        """
        self._require_token()
        try:
            delivered = self.node.multicast(payload)
        except Exception as e:
            raise _node_error(e, "multicast") from None

        def refused(failure: Failure) -> NoReturn:
            assert failure.value is not None
            raise _node_error(failure.value, "multicast", failure)

        return delivered.addCallbacks(_delivery_fields, refused)

    @MulticastBatch.responder
    def multicast_batch(self, payloads: bytes) -> Deferred[dict[str, object]]:
        """
        Multicast every payload of the batch through the node, in order;
        answer once each is delivered or has failed.

        @raise BadPayloadError: If the batch cannot be read.
        @raise NotAuthenticatedError: If a token is required and not given.
        """
        self._require_token()
        try:
            batch = unpack_payloads(payloads)
        except ValueError as e:
            raise BadPayloadError(f"the batch cannot be read: {e}") from None

        def answered(
            results: list[Delivery | BaseException],
        ) -> dict[str, object]:
            return self._batch_answer(
                [r if isinstance(r, Delivery) else self._refusal(r) for r in results]
            )

        return self.node.multicast_all(batch).addCallback(answered)

    def _refusal(self, error: BaseException | None) -> tuple[str, str]:
        # Many messages of a batch often fail for one reason (back-pressure,
        # a stopping node): each is answered, and the node's log gets the
        # unexpected ones only, through _node_error, never a line per
        # expected refusal.
        if isinstance(error, TypeError | ValueError):
            return ("BAD_PAYLOAD", str(error))
        return ("NODE_ERROR", f"the node failed to multicast: {error}")

    def _batch_answer(
        self, outcomes: Sequence[Delivery | tuple[str, str] | None]
    ) -> dict[str, object]:
        records = [o for o in outcomes if isinstance(o, Delivery)]
        failures = [
            [position, o[0], o[1]]
            for position, o in enumerate(outcomes)
            if isinstance(o, tuple)
        ]
        return {
            "records": pack_records(records, payloads=False),
            "failures": json.dumps(failures),
        }

    @Subscribe.responder
    def subscribe(
        self, since: int | None, views: bool | None = None
    ) -> dict[str, object]:
        """
        Subscribe this connection to the node's deliveries (and, with
        C{views}, its view changes).

        @raise HistoryGoneError: If C{since} is older than the node holds.
        @raise AlreadySubscribedError: If the connection is already subscribed.
        @raise NodeError: If the node fails otherwise.
        @raise NotAuthenticatedError: If a token is required and not given.
        """
        self._require_token()
        if self._subscription is not None:
            raise AlreadySubscribedError(
                "this connection is already subscribed; open another connection"
                " for a second subscription"
            )
        feed = self._feed
        try:
            if views:
                subscription = self.node.subscribe(
                    since, feed.push, feed.flush, views=True
                )
            else:
                subscription = self.node.subscribe(since, feed.push, feed.flush)
        except HistoryGoneError:
            raise
        except Exception as e:
            raise _node_error(e, "subscribe") from None
        self._subscription = subscription
        feed.flush()
        return {"first": subscription.first, "views": bool(views)}

    @Status.responder
    def status(self) -> dict[str, object]:
        """
        Answer with the node's status as JSON text.

        @raise NodeError: If the node fails, or its status is not
            JSON-serialisable.
        @raise NotAuthenticatedError: If a token is required and not given.
        """
        self._require_token()
        try:
            # default=str: a stray non-JSON value should not cost the
            # operator the whole status.
            text = json.dumps(status_json(self.node.status()), default=str)
        except Exception as e:
            raise _node_error(e, "status") from None
        return {"status": text}

    @ForceView.responder
    def force_view(self, without: list[str] | None = None) -> dict[str, object]:
        """
        Force a view change on the node (C{isis force-view}).

        @raise CannotForceViewError: If the node refuses, with why.
        @raise NotAuthenticatedError: If a token is required and not given.
        """
        self._require_token()
        # Not part of NodeControl: only a whole node has a membership.
        force: Callable[[list[str] | None], Sequence[str]] | None = getattr(
            self.node, "force_view", None
        )
        if force is None:
            raise CannotForceViewError("this node has no views to force")
        try:
            members = force(without)
        except CannotForceError as e:
            raise CannotForceViewError(str(e)) from None
        except Exception as e:
            raise _node_error(e, "force a view change") from None
        return {"members": list(members)}

    def _cancel_subscription(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.cancel()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Cancel the connection's subscription, if any.
        """
        self._feed.close()
        self._cancel_subscription()
        # Past amp.AMP's connectionLost (and makeConnection, below): each
        # logs a line per connection at level info, a pair per isis command.
        amp.BinaryBoxProtocol.connectionLost(self, reason)  # type: ignore[no-untyped-call]
        self.transport = None

    def makeConnection(self, transport: Any) -> None:
        """
        Connect, without amp.AMP's line in the log.
        """
        amp.BinaryBoxProtocol.makeConnection(self, transport)  # type: ignore[no-untyped-call]


def _node_error(
    error: BaseException, request: str, failure: Failure | None = None
) -> ClientAPIError:
    """
    The error to answer with when the node failed a C{request}: one the
    client is told about, since AMP drops the connection on an error its
    command does not declare.  Unexpected errors are logged here, with
    C{failure} (or else the exception being handled).
    """
    if request == "multicast" and isinstance(error, TypeError | ValueError):
        return BadPayloadError(str(error))
    if isinstance(error, ClientAPIError):
        return error
    _log.failure(
        "client API: the node failed a {request} request", failure, request=request
    )
    return NodeError(f"the node failed to {request}: {error}")


class ClientAPIFactory(ServerFactory):
    """
    Builds the node's end of client connections: listen with it on the
    client API endpoint.

    @ivar node: The node every connection controls.
    @ivar wrong_protocol: How many connections spoke the peer protocol (or
        TLS) here: members whose C{--peers} name this port.
    """

    noisy = False

    def __init__(
        self,
        node: NodeControl,
        clock: IReactorTime | None = None,
        backlog: int = DEFAULT_BACKLOG,
        token: bytes | None = None,
    ) -> None:
        """
        @param node: The node every connection controls.
        @param clock: Passed to every L{ClientAPIProtocol}.
        @param backlog: The most bytes of deliveries held for a subscriber
            that is not reading (see L{ClientAPIProtocol}).
        @param token: The client token every connection must give first, or
            L{None} for none.
        """
        self.node = node
        self.clock = clock
        self.backlog = backlog
        self.token = token
        self.wrong_protocol = 0

    def buildProtocol(self, addr: IAddress | None) -> ClientAPIProtocol:
        """
        A protocol bound to L{node}.
        """
        proto = ClientAPIProtocol(self.node, self.clock, self.backlog, self.token)
        proto.factory = self
        return proto
