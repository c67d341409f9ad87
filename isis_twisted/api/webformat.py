"""
What the HTTP API reads and writes, without any HTTP: request bodies into
payloads, records into JSON, Server-Sent Events and NDJSON lines.

Pure functions, so that every rule about the API's formats is tested
without a server; L{isis_twisted.api.webapi} is the thin layer over them.

A C{POST /messages} body is read by its C{Content-Type}:

  - C{application/octet-stream}, C{text/plain} or none: the whole body is
    one message;
  - C{application/json}: a JSON array of messages (or one message);
  - C{application/x-ndjson} (or C{application/ndjson},
    C{application/jsonl}): one message per line.

In JSON, a message is a string (the message is its UTF-8 bytes) or
C{{"base64": "..."}} (any bytes).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from json.encoder import encode_basestring

from isis_twisted.core.checker import record_fields
from isis_twisted.core.engine import Delivery, Record, ViewChange

__all__ = [
    "JSON_TYPES",
    "NDJSON_TYPES",
    "RAW_TYPES",
    "BodyError",
    "accepted",
    "answer_fields",
    "delivery_line",
    "error_body",
    "json_bytes",
    "media_type",
    "ndjson_line",
    "read_payloads",
    "sse_event",
    "stream_fields",
    "wants_events",
    "wants_ndjson",
]

RAW_TYPES = frozenset({"", "application/octet-stream", "text/plain"})
"""
The media types whose body is one message, as it is.
"""

JSON_TYPES = frozenset({"application/json"})
"""
The media types whose body is a JSON array of messages.
"""

NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl"}
)
"""
The media types whose body is one JSON message per line, and the ones a
reader of the delivery stream may ask for (else it gets Server-Sent Events).
"""

_ITEM_FORM = 'each message is a JSON string (its UTF-8 bytes) or {"base64": "..."}'


class BodyError(Exception):
    """
    A request body the API cannot take, with the HTTP status to answer
    with and a plain sentence saying why.

    @ivar code: The HTTP status code (400 or 415).
    """

    def __init__(self, code: int, sentence: str) -> None:
        super().__init__(sentence)
        self.code = code


def media_type(header: bytes | None) -> str:
    """
    The media type of a C{Content-Type} or C{Accept} entry, lower case,
    without parameters (C{""} when there is none).
    """
    if header is None:
        return ""
    return header.split(b";", 1)[0].strip().decode("latin-1").lower()


def read_payloads(content_type: bytes | None, body: bytes) -> list[bytes]:
    """
    The messages a C{POST /messages} body holds, in order.

    @param content_type: The request's C{Content-Type} header, if any.
    @param body: The request's body.
    @raise BodyError: If the body is not of a type the API reads (415), or
        not what its type says, or holds no message (400).
    """
    kind = media_type(content_type)
    if kind in RAW_TYPES:
        return [body]
    if kind in JSON_TYPES:
        value = _json(body, "the body")
        if isinstance(value, list):
            items = [_payload(item, f"message {n}") for n, item in enumerate(value, 1)]
        elif isinstance(value, str | dict):
            items = [_payload(value, "the message")]
        else:
            raise BodyError(
                400,
                "a JSON body is an array of messages or one message, and "
                + _ITEM_FORM
                + "; to send a JSON document as one message, send it as"
                " text/plain or application/octet-stream",
            )
    elif kind in NDJSON_TYPES:
        strings = _ndjson_strings(body)
        if strings is not None:
            items = strings
        else:
            items = []
            for number, line in enumerate(body.split(b"\n"), 1):
                if line.strip():
                    value = _json(line, f"line {number}")
                    items.append(_payload(value, f"line {number}"))
    elif kind == "application/x-www-form-urlencoded":
        raise BodyError(
            415,
            "the body is a form (curl -d sends one); send the message as"
            " application/octet-stream, e.g. curl --data-binary @FILE -H"
            " 'Content-Type: application/octet-stream'",
        )
    else:
        raise BodyError(
            415,
            f"Content-Type {kind!r} is not one this API reads: send"
            " application/octet-stream or text/plain (the body is one"
            " message), application/json (an array of messages) or"
            " application/x-ndjson (one message per line)",
        )
    if not items:
        raise BodyError(400, "the body holds no message")
    return items


def _ndjson_strings(body: bytes) -> list[bytes] | None:
    """
    The messages of an NDJSON body that holds only JSON strings, parsed as
    one array (a line at a time costs several times more); L{None} for any
    other body, which is then read line by line, to name a bad one.
    """
    lines = [line for line in body.split(b"\n") if line.strip()]
    try:
        values = json.loads(b"[" + b",".join(lines) + b"]")
    except (ValueError, RecursionError):
        return None
    # Each line gives at least one value, so as many values as lines means
    # one each.
    if len(values) != len(lines) or not all(type(v) is str for v in values):
        return None
    try:
        return [v.encode("utf-8") for v in values]
    except UnicodeEncodeError:
        return None


def _json(raw: bytes, what: str) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BodyError(400, f"{what} is not UTF-8") from None
    except ValueError as e:
        raise BodyError(400, f"{what} is not JSON: {e}") from None
    except RecursionError:
        raise BodyError(400, f"{what} is nested too deeply") from None


def _payload(item: object, what: str) -> bytes:
    if isinstance(item, str):
        try:
            return item.encode("utf-8")
        except UnicodeEncodeError:
            raise BodyError(400, f"{what} holds a lone surrogate") from None
    if isinstance(item, dict) and set(item) == {"base64"}:
        data = item["base64"]
        if isinstance(data, str):
            try:
                return base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise BodyError(400, f"{what}'s base64 is not base64") from None
    raise BodyError(400, f"{what} is a {_kind(item)}: {_ITEM_FORM}")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return 'object other than {"base64": ...}'
    return type(value).__name__


def answer_fields(record: Delivery, view: int | None) -> dict[str, object]:
    """
    What a C{POST /messages} answer says of one delivered message (not its
    payload: the client sent it).
    """
    fields: dict[str, object] = {
        "index": record.index,
        "sender": record.sender,
        "clock": record.clock,
        "view": view,
    }
    if record.after is not None:
        fields["after"] = record.after
    return fields


def stream_fields(record: Record, view: int | None) -> dict[str, object]:
    """
    One record of the delivery stream as JSON-ready data: the form the
    C{jsonl:} handler writes (L{isis_twisted.core.checker.record_fields}), a
    delivery with the id of the view it was delivered in added.
    """
    fields = record_fields(record)
    if not isinstance(record, ViewChange):
        fields["view"] = view
    return fields


def delivery_line(record: Delivery, view: int | None) -> bytes:
    """
    C{json_bytes(stream_fields(record, view))}, made faster for the common
    delivery (a UTF-8 payload): the stream writes one per delivery.
    """
    try:
        text = record.payload.decode("utf-8")
    except UnicodeDecodeError:
        return json_bytes(stream_fields(record, view))
    after = b"" if record.after is None else b',"after":%d' % record.after
    return b'{"index":%d,"sender":%s,"clock":%d,"payload":%s%s,"view":%s}' % (
        record.index,
        _string(record.sender),
        record.clock,
        _string(text),
        after,
        b"null" if view is None else b"%d" % view,
    )


def _string(text: str) -> bytes:
    # Escapes what JSON must (quotes, backslashes, control characters) and
    # leaves the rest as it is, as json_bytes does.
    return str(encode_basestring(text)).encode("utf-8")


def sse_event(data: object, event: str | None = None, id: int | None = None) -> bytes:
    """
    One Server-Sent Event whose data is C{data} as one line of JSON.
    """
    head = b""
    if event is not None:
        head += b"event: " + event.encode("ascii") + b"\n"
    if id is not None:
        head += b"id: %d\n" % id
    # json.dumps escapes newlines inside strings: the data is one line.
    return head + b"data: " + json_bytes(data) + b"\n\n"


def ndjson_line(data: object) -> bytes:
    """
    C{data} as one line of NDJSON.
    """
    return json_bytes(data) + b"\n"


def error_body(sentence: str, **extra: object) -> bytes:
    """
    The JSON body of an error answer: C{{"error": sentence, ...}}.
    """
    return json_bytes({"error": sentence, **extra})


def accepted(accept: Sequence[bytes]) -> dict[str, float]:
    """
    The media types an C{Accept} header names, each with its quality
    (C{q}, 1 when not given); those with C{q=0} are refused, so left out.
    """
    types: dict[str, float] = {}
    for header in accept:
        for entry in header.split(b","):
            kind = media_type(entry)
            quality = 1.0
            for parameter in entry.split(b";")[1:]:
                name, _, value = parameter.partition(b"=")
                if name.strip().lower() == b"q":
                    try:
                        quality = float(value)
                    except ValueError:
                        quality = 0.0
            if kind and quality > 0:
                types[kind] = max(quality, types.get(kind, 0.0))
    return types


def wants_ndjson(accept: Sequence[bytes]) -> bool:
    """
    Whether a reader of a stream prefers NDJSON (one of L{NDJSON_TYPES})
    to Server-Sent Events, the default: it names NDJSON with a higher
    quality than C{text/event-stream}.
    """
    types = accepted(accept)
    ndjson = max((types.get(t, 0.0) for t in NDJSON_TYPES), default=0.0)
    return ndjson > types.get("text/event-stream", 0.0)


def wants_events(accept: Sequence[bytes]) -> bool:
    """
    Whether a reader asked for a stream at all (C{text/event-stream} or
    NDJSON) rather than one answer.
    """
    types = accepted(accept)
    return "text/event-stream" in types or any(t in types for t in NDJSON_TYPES)


def json_bytes(data: object) -> bytes:
    """
    C{data} as compact JSON in UTF-8, the form of everything the API
    writes.
    """
    # default=str: a stray value that is not JSON should not cost a reader
    # the whole answer.
    return json.dumps(
        data, ensure_ascii=False, separators=(",", ":"), default=str
    ).encode("utf-8")
