"""
The packing of delivery records and payloads that the client API's AMP
commands carry (L{isis_twisted.api.commands}): flat, length-prefixed bytes,
so that a busy member sends one AMP box per batch, not one per record.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from isis_twisted.core.engine import Delivery, Record, ViewChange

__all__ = ["pack_payloads", "pack_records", "unpack_payloads", "unpack_records"]

_RECORD_HEAD = struct.Struct(">QQqHI")

_VIEW = -2
"""
The C{after} field of a packed view record (a delivery's is -1 or more).
"""


def pack_records(records: Sequence[Record], payloads: bool = True) -> bytes:
    """
    Pack records for the client API's C{Deliver}: per record, index and
    clock (u64), C{after} (i64, -1 for none), the sender's length (u16) and
    the payload's (u32), then the sender in UTF-8 and the payload.

    A L{ViewChange} is packed in the same head: its C{index}, its C{view}
    id in the clock's place, C{after} -2 (which marks a view record), an
    empty sender, and its members as the payload, packed as
    L{pack_payloads} packs payloads (each name in UTF-8).

    @param payloads: Whether to include the payloads of deliveries; without,
        each is packed as if its payload were empty (for the answer to a
        C{MulticastBatch}: the client has them).
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


_PAYLOAD_HEAD = struct.Struct(">I")


def pack_payloads(payloads: Sequence[bytes]) -> bytes:
    """
    Pack payloads for the client API's C{MulticastBatch}: per payload, its
    length (u32) and its bytes.

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
