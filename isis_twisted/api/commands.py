"""
The client API's wire: the AMP commands a node's client API answers, their
argument types and the errors they declare (records and payloads travel
inside them packed as L{isis_twisted.core.records} packs them).

The commands are L{Multicast}, L{MulticastBatch} (several payloads in one
call), L{Subscribe}, L{Deliver} (pushed by the node after a L{Subscribe};
with C{views}, view changes among the deliveries), L{SubscriptionDropped},
L{Status}, L{ForceView} and L{Authenticate}.  Payloads of any length travel
as L{LongBytes}, which splits them over as many AMP values as needed.

Both ends use this module: the node's in L{isis_twisted.api.server}, the
client's in L{isis_twisted.api.client}.  Errors cross the connection as AMP
errors with plain messages: L{BadPayloadError}, L{AlreadySubscribedError},
L{NodeError}, L{NotAuthenticatedError} and L{CannotForceViewError} (all
L{ClientAPIError}s), and L{HistoryGoneError}, the node's own error from
L{isis_twisted.interfaces}.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import ClassVar

from twisted.protocols import amp

from isis_twisted.core.wire import VERSION
from isis_twisted.interfaces import HistoryGoneError

__all__ = [
    "BATCH_BYTES",
    "AlreadySubscribedError",
    "Authenticate",
    "BadPayloadError",
    "CannotForceViewError",
    "ClientAPIError",
    "Deliver",
    "ForceView",
    "LongBytes",
    "LongText",
    "Multicast",
    "MulticastBatch",
    "NodeError",
    "NotAuthenticatedError",
    "Status",
    "Subscribe",
    "SubscriptionDropped",
    "is_peer_protocol",
]


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


class AlreadySubscribedError(ClientAPIError):
    """
    A connection asked for a second subscription; each connection carries one.
    """


class NodeError(ClientAPIError):
    """
    The node failed to carry out a request, for a reason other than the ones
    with errors of their own.  The node logs the details.
    """


class CannotForceViewError(ClientAPIError):
    """
    The node would not force a view change: it is not blocked, or the
    members named are wrong.  The message says which, in one sentence.
    """


def is_peer_protocol(data: bytes) -> bool:
    """
    Whether C{data}, the first bytes heard on a connection, are in the
    members' peer protocol rather than AMP: a member's peer port answering
    a client, or a member dialing a client API port.
    """
    # A peer frame: a u32 length under 64 KiB for a first frame (so two zero
    # bytes), then the wire version.  An AMP box starts with the length of
    # its first key, never zero.
    return data[:2] == b"\x00\x00" and (len(data) < 5 or data[4] == VERSION)


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


BATCH_BYTES = 256 * 1024
"""
How many bytes of records the node gathers for a subscriber before it sends
them without waiting for the end of its turn.
"""
