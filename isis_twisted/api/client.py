"""
The local client API: a node's multicast, subscription and status, over AMP.

A node listens on a local endpoint with a L{ClientAPIFactory}; programs (the
C{isis} command among them) connect with L{connect} and use the returned
L{ClientProtocol}::

    proto = await connect(reactor, "tcp:127.0.0.1:9101")
    record = await proto.multicast(b"hello")
    first = await proto.subscribe(since=1, callback=print)
    first = await proto.subscribe(since=1, callback=print, views=True)

The commands on the wire are L{Multicast}, L{MulticastBatch} (several
payloads in one call, which L{ClientProtocol.multicast} uses when it has a
clock, as L{connect} gives it), L{Subscribe}, L{Deliver} (pushed
by the node after a L{Subscribe}; with C{views}, view changes among the
deliveries) and L{Status}.  Payloads of any length
travel as L{LongBytes}, which splits them over as many AMP values as needed.

The node side is reached only through L{NodeControl}, so that this module
does not depend on how the node is built.  Errors cross the connection as
AMP errors with plain messages: L{BadPayloadError}, L{AlreadySubscribedError}
and L{NodeError} (all L{ClientAPIError}s), and L{HistoryGoneError}, the
node's own error from L{isis_twisted.interfaces}, re-exported here.
"""

from __future__ import annotations

import hmac
import json
import struct
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar, Literal, NoReturn, Protocol, overload

from twisted.internet.defer import Deferred, FirstError, fail, gatherResults
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure
from zope.interface import implementer

from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.core.membership import CannotForceError
from isis_twisted.core.status import NodeStatus, status_json
from isis_twisted.core.wire import VERSION, Refuse, encode_refuse
from isis_twisted.interfaces import HistoryGoneError
from isis_twisted.net.options import dial_description

__all__ = [
    "BATCH_BYTES",
    "BATCH_MESSAGES",
    "AlreadySubscribedError",
    "BadPayloadError",
    "ClientAPIError",
    "ClientAPIFactory",
    "ClientAPIProtocol",
    "ClientProtocol",
    "Deliver",
    "HistoryGoneError",
    "LongBytes",
    "LongText",
    "Multicast",
    "MulticastBatch",
    "NodeControl",
    "NodeError",
    "Status",
    "Subscribe",
    "Subscription",
    "WrongPortError",
    "connect",
    "pack_payloads",
    "pack_records",
    "unpack_payloads",
    "unpack_records",
]

_log = Logger()


# -- what the node offers -------------------------------------------------


class Subscription(Protocol):
    """
    A running subscription to a node's deliveries, as returned by
    L{NodeControl.subscribe}.
    """

    @property
    def first(self) -> int:
        """
        The index of the first delivery the subscription passes to its
        callback.
        """

    def cancel(self) -> None:
        """
        Stop the subscription: its callback is not called again.
        """


class NodeControl(Protocol):
    """
    What the client API needs from a node, and all it uses.
    """

    @property
    def me(self) -> str:
        """
        This member's name.
        """

    def multicast(self, payload: bytes) -> Deferred[Delivery]:
        """
        Multicast C{payload} to the group.

        @param payload: The message's bytes.
        @return: A L{Deferred} that fires with the delivery record once this
            member has delivered the message.  It may instead fail with
            L{TypeError} or L{ValueError} (for example, a payload larger than
            the node accepts).
        @raise TypeError: If the payload is unacceptable (also allowed as a
            failure of the returned L{Deferred}).
        @raise ValueError: Likewise.
        """

    def multicast_all(
        self, payloads: Sequence[bytes]
    ) -> Deferred[list[Delivery | BaseException]]:
        """
        Multicast every payload, in order, with one L{Deferred} for all.

        @return: Fires once every message is delivered or has failed, with
            each one's delivery record or exception, in order.
        """

    def subscribe(
        self,
        since: int | None,
        callback: Callable[[Any], None],
        flush: Callable[[], None] | None = None,
        views: bool = False,
    ) -> Subscription:
        """
        Call C{callback} with deliveries, in order.

        @param since: Replay the held deliveries with index C{since} or more
            before going on with new ones; L{None} for new ones only.
        @param callback: Called with every delivery record, in order (and,
            with C{views}, every L{ViewChange} among them).
        @param flush: Called after the replay and after each group of
            records the node delivered together (each turn), so that the
            subscriber can send them on together.
        @param views: Pass view changes too.  The client API gives this
            argument only when a client asks for view changes.
        @return: The subscription, telling the first index it passes on.
        @raise HistoryGoneError: If C{since} is below the oldest index the
            node still holds; the message says from which index it can
            resume.
        """

    def status(self) -> NodeStatus | Mapping[str, object]:
        """
        The node's state, for people and monitoring: a L{NodeStatus}, or
        (for test doubles) its JSON form or a part of it.
        """


def multicast_each(
    multicast: Callable[[bytes], Deferred[Delivery]], payloads: Sequence[bytes]
) -> Deferred[list[Delivery | BaseException]]:
    """
    L{NodeControl.multicast_all} made of one C{multicast} per payload, for a
    node (or a test double) without a batch path of its own.
    """
    calls: list[Deferred[Delivery | BaseException]] = []
    for payload in payloads:
        try:
            d = multicast(payload)
        except (TypeError, ValueError) as e:
            calls.append(Deferred())
            calls[-1].callback(e)
            continue
        calls.append(d.addErrback(_exception))
    return gatherResults(calls)


def _exception(failure: Failure) -> BaseException:
    value = failure.value
    return value if value is not None else RuntimeError("failed")


# -- errors ---------------------------------------------------------------


class ClientAPIError(Exception):
    """
    The node answered a client API request with an error.  The message says
    what went wrong, in plain words.
    """


class BadPayloadError(ClientAPIError):
    """
    The node refused to multicast a payload (wrong type, or too large).
    """


class NotAuthenticatedError(ClientAPIError):
    """
    The node requires a client token and this connection has not given the
    right one.
    """


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


class AlreadySubscribedError(ClientAPIError):
    """
    A connection asked for a second subscription; each connection carries one.
    """


class WrongPortError(ClientAPIError):
    """
    What answered speaks the members' peer protocol: the address is a
    member's peer port, not its client API port.
    """


def _peer_protocol(data: bytes) -> bool:
    # A peer frame: a u32 length under 64 KiB for a first frame (so two zero
    # bytes), then the wire version.  An AMP box starts with the length of
    # its first key, never zero.
    return data[:2] == b"\x00\x00" and (len(data) < 5 or data[4] == VERSION)


_TLS_HANDSHAKE = 0x16


class NodeError(ClientAPIError):
    """
    The node failed to carry out a request, for a reason other than the ones
    with errors of their own.  The node logs the details.
    """


# -- argument types -------------------------------------------------------

_CHUNK = amp.MAX_VALUE_LENGTH


def _python_name(name: bytes) -> str:
    # The keyword AMP uses for an argument, as amp._wireNameToPythonIdentifier
    # (private) computes it.
    return name.replace(b"-", b"_").decode("ascii")


def _chunk_key(name: bytes, number: int) -> bytes:
    return b"%s.%d" % (name, number)


class LongBytes(amp.Argument):
    """
    A byte string of any length.

    AMP caps every value at L{amp.MAX_VALUE_LENGTH} bytes, so the string is
    split into chunks of that size: the first goes under the argument's own
    name, the following ones under C{NAME.1}, C{NAME.2} and so on.  The empty
    string is one empty value.
    """

    def __init__(self, optional: bool = False) -> None:
        """
        @param optional: Whether the argument may be left out (as L{None}).
        """
        # amp.Argument.__init__ does only this; it is not called because it
        # is unannotated.
        self.optional = optional

    def toBox(
        self,
        name: bytes,
        strings: MutableMapping[bytes, bytes],
        objects: MutableMapping[str, object],
        proto: amp.AMP | None,
    ) -> None:
        """
        Move the value named C{name} from C{objects} into C{strings}, in
        chunks.

        @raise TypeError: If the value is of the wrong type.
        """
        value = objects.pop(_python_name(name), None)
        if value is None:
            if not self.optional:
                raise TypeError(f"argument {name.decode()!r} is required")
            return
        data = self.to_bytes(value)
        strings[name] = data[:_CHUNK]
        for number, start in enumerate(range(_CHUNK, len(data), _CHUNK), 1):
            strings[_chunk_key(name, number)] = data[start : start + _CHUNK]

    def fromBox(
        self,
        name: bytes,
        strings: MutableMapping[bytes, bytes],
        objects: MutableMapping[str, object],
        proto: amp.AMP | None,
    ) -> None:
        """
        Join the chunks of the value named C{name} from C{strings} and store
        the result in C{objects}.

        @raise KeyError: If the argument is required and absent.
        """
        key = _python_name(name)
        first = strings.pop(name, None)
        if first is None:
            if not self.optional:
                raise KeyError(name)
            objects[key] = None
            return
        chunks = [first]
        number = 1
        while (chunk := strings.pop(_chunk_key(name, number), None)) is not None:
            chunks.append(chunk)
            number += 1
        objects[key] = self.from_bytes(b"".join(chunks))

    def to_bytes(self, value: object) -> bytes:
        """
        Encode a value before it is split; here, check that it is L{bytes}.

        @raise TypeError: If C{value} is not L{bytes}.
        """
        if type(value) is not bytes:
            raise TypeError(f"expected bytes, not {type(value).__name__}")
        return value

    def from_bytes(self, data: bytes) -> object:
        """
        Decode a value once its chunks are joined; here, return it as it is.
        """
        return data


class LongText(LongBytes):
    """
    A text string of any length, carried as UTF-8 in L{LongBytes} chunks.
    """

    def to_bytes(self, value: object) -> bytes:
        """
        Encode C{value} as UTF-8.

        @raise TypeError: If C{value} is not L{str}.
        """
        if not isinstance(value, str):
            raise TypeError(f"expected str, not {type(value).__name__}")
        return value.encode("utf-8")

    def from_bytes(self, data: bytes) -> object:
        """
        Decode UTF-8.
        """
        return data.decode("utf-8")


# Twisted's amp module is unannotated; these typed doors to it keep the
# unchecked calls in one place each.


def _integer(optional: bool = False) -> amp.Argument:
    return amp.Integer(optional=optional)  # type: ignore[no-untyped-call]


def _unicode() -> amp.Argument:
    return amp.Unicode()  # type: ignore[no-untyped-call]


def _names(optional: bool = False) -> amp.Argument:
    return amp.ListOf(_unicode(), optional=optional)  # type: ignore[no-untyped-call]


def _boolean() -> amp.Argument:
    return amp.Boolean(optional=True)  # type: ignore[no-untyped-call]


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


# -- commands -------------------------------------------------------------

_Schema = list[tuple[bytes, amp.Argument]]
_Errors = dict[type[Exception], bytes]


class Multicast(amp.Command):
    """
    Multicast C{payload}; answered once the node has delivered it, with the
    message's place in the order (and C{after}, what it causally follows).
    """

    arguments: ClassVar[_Schema] = [(b"payload", LongBytes())]
    response: ClassVar[_Schema] = [
        (b"index", _integer()),
        (b"sender", _unicode()),
        (b"clock", _integer()),
        (b"after", _integer(optional=True)),
    ]
    errors: ClassVar[_Errors] = {
        BadPayloadError: b"BAD_PAYLOAD",
        NodeError: b"NODE_ERROR",
        NotAuthenticatedError: b"NOT_AUTHENTICATED",
    }


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


class MulticastBatch(amp.Command):
    """
    Multicast several payloads, packed by L{pack_payloads}, in this order;
    answered once every one of them is delivered or has failed.

    The answer's C{records} are the delivered ones, packed by
    L{pack_records} with empty payloads (the client has them), in the order
    of the payloads that were delivered; C{failures} is a JSON list of
    C{[position, kind, message]} for the others, C{kind} being
    C{"BAD_PAYLOAD"} or C{"NODE_ERROR"}.  One call carries one AMP box and
    one answer for the whole batch, which is what makes a busy client cheap.
    """

    arguments: ClassVar[_Schema] = [(b"payloads", LongBytes())]
    response: ClassVar[_Schema] = [
        (b"records", LongBytes()),
        (b"failures", LongText()),
    ]
    errors: ClassVar[_Errors] = {
        BadPayloadError: b"BAD_PAYLOAD",
        NodeError: b"NODE_ERROR",
        NotAuthenticatedError: b"NOT_AUTHENTICATED",
    }


class Subscribe(amp.Command):
    """
    Start receiving deliveries as L{Deliver} commands: the held ones from
    index C{since} on, then every new one; with no C{since}, new ones only.
    With C{views} true, the view changes among them are pushed too, as view
    records (see L{pack_records}).  Answered with the first index that will
    be pushed, and C{views} true when view changes will be.

    A node that predates views ignores the C{views} argument (AMP leaves
    out arguments a responder does not know) and answers without C{views};
    a client that does not ask is never sent a view record, which its
    L{unpack_records} would refuse.
    """

    arguments: ClassVar[_Schema] = [
        (b"since", _integer(optional=True)),
        (b"views", _boolean()),
    ]
    response: ClassVar[_Schema] = [
        (b"first", _integer()),
        (b"views", _boolean()),
    ]
    errors: ClassVar[_Errors] = {
        HistoryGoneError: b"HISTORY_GONE",
        AlreadySubscribedError: b"ALREADY_SUBSCRIBED",
        NodeError: b"NODE_ERROR",
        NotAuthenticatedError: b"NOT_AUTHENTICATED",
    }


class Deliver(amp.Command):
    """
    Deliveries, pushed by the node to a subscribed client: every record the
    node delivered in one turn (up to about L{BATCH_BYTES}), packed by
    L{pack_records}, so that a busy node sends one AMP box per turn rather
    than one per message.  Not answered.
    """

    arguments: ClassVar[_Schema] = [(b"records", LongBytes())]
    requiresAnswer = False


_RECORD_HEAD = struct.Struct(">QQqHI")

_VIEW = -2
"""
The C{after} field of a packed view record (a delivery's is -1 or more).
"""

BATCH_BYTES = 256 * 1024
"""
How many bytes of records the node gathers for a subscriber before it sends
them without waiting for the end of its turn.
"""


def pack_records(records: Sequence[Record], payloads: bool = True) -> bytes:
    """
    Pack records for L{Deliver}: per record, index and clock (u64), C{after}
    (i64, -1 for none), the sender's length (u16) and the payload's (u32),
    then the sender in UTF-8 and the payload.

    A L{ViewChange} is packed in the same head: its C{index}, its C{view}
    id in the clock's place, C{after} -2 (which marks a view record), an
    empty sender, and its members as the payload, packed as
    L{pack_payloads} packs payloads (each name in UTF-8).

    @param payloads: Whether to include the payloads of deliveries; without,
        each is packed as if its payload were empty (for L{MulticastBatch}'s
        answer: the client has them).
    @raise ValueError: If a field does not fit.
    """
    parts: list[bytes] = []
    for r in records:
        if isinstance(r, ViewChange):
            members = pack_payloads([m.encode() for m in r.members])
            try:
                head = _RECORD_HEAD.pack(r.index, r.view, _VIEW, 0, len(members))
            except struct.error as e:
                raise ValueError(
                    f"view {r.view} does not fit the format: {e}"
                ) from None
            parts += (head, members)
            continue
        sender = r.sender.encode()
        after = -1 if r.after is None else r.after
        size = len(r.payload) if payloads else 0
        try:
            head = _RECORD_HEAD.pack(r.index, r.clock, after, len(sender), size)
        except struct.error as e:
            raise ValueError(f"record {r.index} does not fit the format: {e}") from None
        if payloads:
            parts += (head, sender, r.payload)
        else:
            parts += (head, sender)
    return b"".join(parts)


def unpack_records(data: bytes) -> list[Record]:
    """
    The records L{pack_records} packed into C{data}: L{Delivery}s and, from
    a subscription with views, L{ViewChange}s.

    @raise ValueError: If C{data} is not such a packing.
    """
    records: list[Record] = []
    offset = 0
    size = len(data)
    head = _RECORD_HEAD.size
    while offset < size:
        if size - offset < head:
            raise ValueError(f"a record head is cut short at byte {offset}")
        index, clock, after, sender_len, payload_len = _RECORD_HEAD.unpack_from(
            data, offset
        )
        start = offset + head
        end = start + sender_len + payload_len
        if end > size:
            raise ValueError(f"record {index} runs past the end of the batch")
        if after == _VIEW:
            records.append(_unpack_view(index, clock, data[start:end]))
            offset = end
            continue
        try:
            sender = data[start : start + sender_len].decode()
        except UnicodeDecodeError:
            raise ValueError(f"record {index} has a sender that is not UTF-8") from None
        if after < -1:
            raise ValueError(f"record {index} has a negative after: {after}")
        records.append(
            Delivery(
                index,
                sender,
                clock,
                data[start + sender_len : end],
                None if after == -1 else after,
            )
        )
        offset = end
    return records


def _unpack_view(index: int, view: int, body: bytes) -> ViewChange:
    try:
        members = tuple(name.decode() for name in unpack_payloads(body))
    except UnicodeDecodeError:
        raise ValueError(f"view {view} has a member that is not UTF-8") from None
    except ValueError as e:
        raise ValueError(f"view {view} has unreadable members: {e}") from None
    return ViewChange(view, members, index)


class SubscriptionDropped(amp.Command):
    """
    Pushed by the node, last, before it closes the connection of a
    subscriber that fell too far behind.  Not answered.
    """

    arguments: ClassVar[_Schema] = [
        (b"resume_from", _integer()),
        (b"reason", _unicode()),
    ]
    requiresAnswer = False


class Status(amp.Command):
    """
    Ask for the node's status, answered as JSON text.
    """

    response: ClassVar[_Schema] = [(b"status", LongText())]
    errors: ClassVar[_Errors] = {
        NodeError: b"NODE_ERROR",
        NotAuthenticatedError: b"NOT_AUTHENTICATED",
    }


class CannotForceViewError(ClientAPIError):
    """
    The node would not force a view change: it is not blocked, or the
    members named are wrong.  The message says which, in one sentence.
    """


class ForceView(amp.Command):
    """
    Close a view that lost its majority for good, without the members named
    (all the node suspects, if none are): see
    L{MulticastNode.force_view<isis_twisted.net.node.MulticastNode.force_view>}.
    Answered with the members of the view proposed.
    """

    arguments: ClassVar[_Schema] = [
        (b"without", _names(optional=True)),
    ]
    response: ClassVar[_Schema] = [(b"members", _names())]
    errors: ClassVar[_Errors] = {
        CannotForceViewError: b"CANNOT_FORCE",
        NodeError: b"NODE_ERROR",
        NotAuthenticatedError: b"NOT_AUTHENTICATED",
    }


class Authenticate(amp.Command):
    """
    Give the node's client token; needed first when the node has one.
    """

    arguments: ClassVar[_Schema] = [(b"token", LongBytes())]
    errors: ClassVar[_Errors] = {NotAuthenticatedError: b"NOT_AUTHENTICATED"}


_PAYLOAD_HEAD = struct.Struct(">I")

BATCH_MESSAGES = 1024
"""
The most payloads L{ClientProtocol} puts in one L{MulticastBatch}.
"""


def pack_payloads(payloads: Sequence[bytes]) -> bytes:
    """
    Pack payloads for L{MulticastBatch}: per payload, its length (u32) and
    its bytes.

    @raise TypeError: If a payload is not L{bytes}.
    @raise ValueError: If a payload is 4 GiB or more.
    """
    parts: list[bytes] = []
    for payload in payloads:
        if type(payload) is not bytes:
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        try:
            parts += (_PAYLOAD_HEAD.pack(len(payload)), payload)
        except struct.error:
            raise ValueError(
                f"a payload of {len(payload)} bytes is too large"
            ) from None
    return b"".join(parts)


def unpack_payloads(data: bytes) -> list[bytes]:
    """
    The payloads L{pack_payloads} packed into C{data}.

    @raise ValueError: If C{data} is not such a packing.
    """
    payloads = []
    offset = 0
    size = len(data)
    head = _PAYLOAD_HEAD.size
    while offset < size:
        if size - offset < head:
            raise ValueError(f"a payload length is cut short at byte {offset}")
        (length,) = _PAYLOAD_HEAD.unpack_from(data, offset)
        offset += head
        if size - offset < length:
            raise ValueError(f"a payload is cut short at byte {offset}")
        payloads.append(data[offset : offset + length])
        offset += length
    return payloads


def _delivery_fields(record: Delivery) -> dict[str, object]:
    return {
        "index": record.index,
        "sender": record.sender,
        "clock": record.clock,
        "after": record.after,
    }


# -- the node's side ------------------------------------------------------


DEFAULT_BACKLOG = 8 * 1024 * 1024
"""
How many bytes of deliveries a subscriber may fall behind by before the
node drops its subscription.
"""


@implementer(IPushProducer)
class ClientAPIProtocol(amp.AMP):
    """
    The node's end of one client connection: answers L{Multicast},
    L{Subscribe} and L{Status} from the node, and pushes L{Deliver} commands
    for the connection's subscription.

    A subscriber that stops reading is not allowed to grow the node's
    memory: once the connection's write buffer is full, deliveries wait in a
    backlog of at most C{backlog} bytes; past that the subscription is
    dropped with a L{SubscriptionDropped} notice saying from which index to
    resubscribe, and the connection closed.

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
        self._clock: IReactorTime = clock
        self._limit = backlog
        self._blocked = False
        self._backlog: deque[Record] = deque()
        self._backlog_bytes = 0
        self._dropped = False
        # Records gathered in this turn, sent by _flush.
        self._batch: list[Record] = []
        self._batch_bytes = 0

    _sniffed = False

    def dataReceived(self, data: bytes) -> None:
        """
        Before the first box, tell a member that dialed this port as a peer
        what it did, in its own protocol, and close.
        """
        if not self._sniffed:
            self._sniffed = True
            if _peer_protocol(data) or data[:1] == bytes([_TLS_HANDSHAKE]):
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
        self._blocked = True

    def resumeProducing(self) -> None:
        """
        The client read: send what was held back.
        """
        self._blocked = False
        while self._backlog and not self._blocked:
            record = self._backlog.popleft()
            self._backlog_bytes -= _cost(record)
            self._send(record)
        self._flush()

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
        try:
            if views:
                subscription = self.node.subscribe(
                    since, self._push, self._flush, views=True
                )
            else:
                subscription = self.node.subscribe(since, self._push, self._flush)
        except HistoryGoneError:
            raise
        except Exception as e:
            raise _node_error(e, "subscribe") from None
        self._subscription = subscription
        self._flush()
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

    def _push(self, record: Record) -> None:
        if self._dropped:
            return
        if self._blocked or self._backlog:
            self._backlog.append(record)
            self._backlog_bytes += _cost(record)
            if self._backlog_bytes > self._limit:
                self._drop_subscriber()
            return
        self._send(record)

    def _send(self, record: Record) -> None:
        self._batch.append(record)
        self._batch_bytes += _cost(record)
        if self._batch_bytes >= BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        """
        Send the records gathered since the last flush as one L{Deliver}.
        """
        if not self._batch or self._lost_connection:
            return
        batch, self._batch = self._batch, []
        self._batch_bytes = 0
        self.callRemote(  # type: ignore[no-untyped-call]
            Deliver, records=pack_records(batch)
        )

    def _drop_subscriber(self) -> None:
        # What was gathered precedes the backlog: the client gets it first.
        self._flush()
        resume_from = self._backlog[0].index
        self._dropped = True
        self._backlog.clear()
        self._backlog_bytes = 0
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.cancel()
        peer = self.transport.getPeer() if self.transport is not None else None
        self._log.warn(
            "dropped the subscription of the client at {peer}: it read too"
            " slowly; it can resubscribe from index {index}",
            peer=peer,
            index=resume_from,
        )
        self.callRemote(  # type: ignore[no-untyped-call]
            SubscriptionDropped,
            resume_from=resume_from,
            reason=(
                f"the node dropped this subscription because the client read"
                f" too slowly; resubscribe from index {resume_from}"
            ),
        )
        assert self.transport is not None
        self.transport.loseConnection()
        # A client that reads nothing would hold the connection open
        # forever; give it a while to take the notice, then cut it.
        self._clock.callLater(30, self._abort)

    def _abort(self) -> None:
        if self.transport is not None and not self._lost_connection:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    _lost_connection = False

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Cancel the connection's subscription, if any.
        """
        self._lost_connection = True
        self._backlog.clear()
        self._batch.clear()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.cancel()
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


_RECORD_COST = 64
"""
What a delivery costs in the backlog besides its payload (a rough figure).
"""


def _cost(record: Record) -> int:
    if isinstance(record, ViewChange):
        return _RECORD_COST + sum(len(m) + 4 for m in record.members)
    return len(record.payload) + _RECORD_COST


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

        With C{views}, C{callback} is also called with a L{ViewChange} for
        every view the node installs, in order with the deliveries: after
        the last delivery of the view before and before the first of the new
        one, whose index the record carries.  A replay from C{since} includes
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
            with L{NotAuthenticatedError}.
        """
        return _call_remote(self, Authenticate, token=token).addCallback(lambda _: None)

    def force_view(self, without: Sequence[str] | None = None) -> Deferred[list[str]]:
        """
        Ask the node to close its blocked view without the members named
        (or every member it suspects): see L{ForceView}.

        @return: A L{Deferred} that fires with the members of the view it
            proposed, or fails with L{CannotForceViewError}.
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
            if _peer_protocol(data):
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
