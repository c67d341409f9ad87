"""
The wire format: the only place where bytes become frame objects.

Every frame travels inside a 4-byte big-endian length prefix (Twisted's
C{Int32StringReceiver}); this module encodes and decodes what is inside it.
All integers are big-endian and unsigned.  A frame starts with two bytes,
C{version (u8) = 2, type (u8)}, and goes on by type::

    HELLO  (1): group (u16 length + UTF-8), member (u16 length + UTF-8),
                peer (u16 length + UTF-8), incarnation (u64), received (u64),
                view (u32), count (u16), then count member names (u16
                length + UTF-8 each, sorted), then, only in a group with a
                secret or from a member that gives its address: nonce (u8
                length + bytes; length 0 when there is no secret), then
                only from such a member: address (u16 length + 1 to 1024
                bytes of UTF-8)
    DATA   (2): seq (u64), ack (u64), view (u32), clock (u64),
                count (u32), then count times: stamp (u64), length (u32),
                payload (length bytes); then receipts (u16), then that
                many receipt horizons (u64 each)
    ACK    (3): ack (u64)
    REFUSE (4): reason (u16 length + UTF-8), code (u8; a REFUSE without
                it, as nodes before the code sent, decodes as code 0)
    AUTH   (5): mac (32 bytes)
    CONTROL (6): seq (u64), ack (u64), kind (u8), the control message's
                fields (L{isis_twisted.core.control})
    WHO    (7): group (u16 length + UTF-8)
    HERE   (8): member (u16 length + UTF-8), view (u32), count (u16), then
                count member names (u16 length + UTF-8 each, sorted), then
                addresses (u16 count + name and address each, sorted by
                name)

The byte-by-byte description, with the meaning of every field, is in
docs/wire.md.  Every decoding problem raises a L{WireError} subclass; the
link turns it into "log, count, drop this connection".
"""

from __future__ import annotations

import itertools
import struct
from typing import TYPE_CHECKING

import attrs

from isis_twisted.core.engine import Frame

if TYPE_CHECKING:
    from isis_twisted.core.control import ControlFrame

VERSION = 2
"""
The wire format version this module speaks.  Version 2 added the receipt
horizons to DATA frames.
"""

HELLO, DATA, ACK, REFUSE, AUTH = 1, 2, 3, 4, 5

REFUSED_OTHER = 0
"""
A REFUSE code: any reason not coded below (a restarted member, a second
process with a member's name, a broken handshake), and what a REFUSE
without a code means.
"""

REFUSED_GROUP = 1
"""
A REFUSE code: the connection's HELLO names another group.
"""

REFUSED_SECRET = 2
"""
A REFUSE code: the group-secret check failed, or one side has a secret and
the other none.
"""

REFUSED_NAME = 3
"""
A REFUSE code: a name is wrong: no member of the group, the receiver's own,
meant for another member, or not the one its certificate names.
"""

REFUSED_MEMBERS = 4
"""
A REFUSE code: the two sides were given different member lists.
"""

FATAL_REFUSALS = frozenset({REFUSED_GROUP, REFUSED_SECRET})
"""
The REFUSE codes that no retry can change: a member refused for one of them
by most of its group can never be let in as it was started.
"""
CONTROL = 6
"""
The type of CONTROL frames, the membership protocol's messages.  Their codec
is L{isis_twisted.core.control}; L{decode_any}, which links use, hands them to
it, and L{decode} (the frames of this module only) refuses them.
"""

WHO, HERE = 7, 8
"""
The types of the two frames of a discovery connection: a member that joins
a running group knows only an address, and asks who listens there.
"""

_PREFIX = struct.Struct(">BB")
_DATA_HEAD = struct.Struct(">BBQQIQI")
_MESSAGE_HEAD = struct.Struct(">QI")
_U16 = struct.Struct(">H")
_HELLO_TAIL = struct.Struct(">QQIH")
_HERE_TAIL = struct.Struct(">IH")
_ACK = struct.Struct(">BBQ")
_RECEIPT = struct.Struct(">Q")

DATA_OVERHEAD = _DATA_HEAD.size + _U16.size
"""
Bytes a DATA frame takes besides its messages and receipt horizons.
"""

RECEIPT_SIZE = _RECEIPT.size
"""
Bytes each receipt horizon takes in a DATA frame.
"""

MAX_RECEIPTS = 0xFFFF
"""
The most receipt horizons a DATA frame can carry (one per other member).
"""


def data_overhead(members: int) -> int:
    """
    Bytes a DATA frame of a group of C{members} takes besides its messages.
    """
    return DATA_OVERHEAD + RECEIPT_SIZE * max(members - 1, 0)


MESSAGE_OVERHEAD = _MESSAGE_HEAD.size
"""
Bytes each message in a DATA frame takes besides its payload.
"""

MAC_SIZE = 32
"""
The length of an AUTH frame's MAC (HMAC-SHA256).
"""

MAX_NONCE = 64
"""
The longest HELLO nonce, in bytes.
"""

MAX_U64 = (1 << 64) - 1
MAX_MEMBERS = 0xFFFF
"""
The most names a HELLO's member list can hold.
"""

MAX_NAME = 255
"""
The longest group or member name, in UTF-8 bytes.
"""

MAX_ADDRESS = 1024
"""
The longest address (an endpoint description), in bytes of UTF-8.
"""


class WireError(Exception):
    """
    Bytes that are not a valid frame.  The message says what was wrong.
    """


class UnsupportedVersionError(WireError):
    """
    The frame is of a wire format version this module does not speak.
    """


class UnknownFrameTypeError(WireError):
    """
    The frame's type byte names no known frame type.
    """


class TruncatedFrameError(WireError):
    """
    The frame ends before its fields do.
    """


class TrailingBytesError(WireError):
    """
    The frame goes on after its last field.
    """


class BadFieldError(WireError):
    """
    A field holds a value it may not (a name that is not UTF-8, too long, or
    empty).
    """


@attrs.frozen
class Hello:
    """
    The first frame each side of a connection sends.

    @ivar group: The group's name; both sides must agree.
    @ivar member: The sender's member name.
    @ivar peer: The member the sender means to talk to, so that a connection
        that reached the wrong member is refused before anything else.
    @ivar incarnation: A number the sender chose at random when it started;
        a member that restarts without its state comes back with another.
    @ivar received: The highest sequence number the sender holds, without
        gaps, of the DATA frames the other side sent it.
    @ivar nonce: Fresh random bytes for the group-secret challenge, or empty
        in a group without a secret (then it is not on the wire at all).
    @ivar view: The id of the membership view the sender is in.
    @ivar members: The group's founding member list (those it was started
        with), in sorted order: both sides must list the same members.
    @ivar address: Where the sender listens for its peers (an endpoint
        description), from a member the group was not started with, or
        C{""}: the receiver dials it there to check who it is.
    """

    group: str
    member: str
    peer: str
    incarnation: int
    received: int
    nonce: bytes = b""
    view: int = 0
    members: tuple[str, ...] = ()
    address: str = ""


@attrs.frozen
class Who:
    """
    The first frame of a discovery connection: who listens here?

    @ivar group: The group the sender means to join.
    """

    group: str


@attrs.frozen
class Here:
    """
    The answer to a L{Who}, after which the answering side closes the
    connection.

    @ivar member: The answering member's name.
    @ivar view: The id of the view it is in.
    @ivar members: The group's founding member list, sorted (as
        L{Hello.members}).
    @ivar addresses: Where the members of its view listen, as far as it
        knows: C{((name, address), ...)} sorted by name.
    """

    member: str
    view: int
    members: tuple[str, ...]
    addresses: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Data:
    """
    An engine frame on a link.

    @ivar seq: This frame's number on its link (1, 2, 3 ...).
    @ivar ack: The highest sequence number, without gaps, that the sender
        holds of the DATA frames the other side sent it.
    @ivar frame: The engine frame.
    """

    seq: int
    ack: int
    frame: Frame


@attrs.frozen
class Ack:
    """
    A link-level acknowledgement with nothing else to carry.

    @ivar ack: As L{Data.ack}.
    """

    ack: int


@attrs.frozen
class Auth:
    """
    Proof of the group secret: an HMAC-SHA256, over both sides' HELLOs and
    nonces, that only a holder of the secret can compute.

    @ivar mac: The MAC, L{MAC_SIZE} bytes.
    """

    mac: bytes


@attrs.frozen
class Refuse:
    """
    The last frame before a side drops a connection it will not serve.

    @ivar reason: Why, in plain words.
    @ivar code: Why, for the receiver to act on: one of the C{REFUSED_*}
        codes (a receiver takes a code it does not know as
        L{REFUSED_OTHER}).
    """

    reason: str
    code: int = REFUSED_OTHER


WireFrame = Hello | Data | Ack | Refuse | Auth | Who | Here


def _name(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if not raw or len(raw) > MAX_NAME:
        raise ValueError(f"{what} must be 1 to {MAX_NAME} bytes of UTF-8: {value!r}")
    return _U16.pack(len(raw)) + raw


def encode_hello(hello: Hello) -> bytes:
    """
    Encode a L{Hello}.

    @raise ValueError: If a name is empty or too long, or the member list is
        not sorted without repeats or longer than L{MAX_MEMBERS}.
    """
    members = _names(hello.members)
    tail = [_nonce(hello.nonce, bool(hello.address))]
    if hello.address:
        tail.append(_address(hello.address))
    return b"".join(
        [
            _PREFIX.pack(VERSION, HELLO),
            _name(hello.group, "group"),
            _name(hello.member, "member"),
            _name(hello.peer, "peer"),
            _HELLO_TAIL.pack(
                hello.incarnation, hello.received, hello.view, len(hello.members)
            ),
            members,
            *tail,
        ]
    )


def _names(members: tuple[str, ...]) -> bytes:
    if len(members) > MAX_MEMBERS:
        raise ValueError(f"a member list holds at most {MAX_MEMBERS} names")
    if any(a >= b for a, b in itertools.pairwise(members)):
        raise ValueError(f"a member list must be sorted without repeats: {members}")
    return b"".join(_name(name, "member list's name") for name in members)


def _nonce(nonce: bytes, more: bool) -> bytes:
    if not nonce and not more:
        return b""
    if len(nonce) > MAX_NONCE:
        raise ValueError(f"a nonce is at most {MAX_NONCE} bytes, not {len(nonce)}")
    return bytes([len(nonce)]) + nonce


def encode_who(who: Who) -> bytes:
    """
    Encode a L{Who}.
    """
    return _PREFIX.pack(VERSION, WHO) + _name(who.group, "group")


def encode_here(here: Here) -> bytes:
    """
    Encode a L{Here}.

    @raise ValueError: As L{encode_hello}, for the name and the list.
    """
    if not 0 <= here.view <= 0xFFFFFFFF:
        raise ValueError(f"a view id is 0 to {0xFFFFFFFF}, not {here.view}")
    listed = _names(here.members)
    names = [name for name, _ in here.addresses]
    if len(names) > MAX_MEMBERS or any(a >= b for a, b in itertools.pairwise(names)):
        raise ValueError(f"addresses must be sorted by name: {here.addresses}")
    return b"".join(
        [
            _PREFIX.pack(VERSION, HERE),
            _name(here.member, "member"),
            _HERE_TAIL.pack(here.view, len(here.members)),
            listed,
            _U16.pack(len(here.addresses)),
            *(
                _name(name, "address list's name") + _address(address)
                for name, address in here.addresses
            ),
        ]
    )


def _address(address: str) -> bytes:
    raw = address.encode("utf-8")
    if not 0 < len(raw) <= MAX_ADDRESS:
        raise ValueError(
            f"an address is 1 to {MAX_ADDRESS} bytes of UTF-8: {address!r}"
        )
    return _U16.pack(len(raw)) + raw


def encode_auth(auth: Auth) -> bytes:
    """
    Encode an L{Auth}.

    @raise ValueError: If the MAC is not L{MAC_SIZE} bytes.
    """
    if len(auth.mac) != MAC_SIZE:
        raise ValueError(f"a MAC is {MAC_SIZE} bytes, not {len(auth.mac)}")
    return _PREFIX.pack(VERSION, AUTH) + auth.mac


def encode_body(frame: Frame) -> bytes:
    """
    Encode the part of a DATA frame that is the same on every link: the
    engine frame's messages and receipt horizons.  Join it to a link's head
    with L{data_head}.

    @raise ValueError: If the frame carries more than L{MAX_RECEIPTS}
        receipt horizons.
    """
    pack = _MESSAGE_HEAD.pack
    parts = []
    for stamp, payload in frame.messages:
        parts.append(pack(stamp, len(payload)))
        parts.append(payload)
    received = frame.received
    if len(received) > MAX_RECEIPTS:
        raise ValueError(f"a frame carries at most {MAX_RECEIPTS} receipt horizons")
    parts.append(struct.pack(f">H{len(received)}Q", len(received), *received))
    return b"".join(parts)


def data_head(seq: int, ack: int, frame: Frame) -> bytes:
    """
    Encode the link-specific head of a DATA frame, which L{encode_body}'s
    bytes follow.
    """
    return _DATA_HEAD.pack(
        VERSION, DATA, seq, ack, frame.view, frame.clock, len(frame.messages)
    )


def encode_data(data: Data) -> bytes:
    """
    Encode a L{Data} frame whole.
    """
    return data_head(data.seq, data.ack, data.frame) + encode_body(data.frame)


def encode_ack(ack: Ack) -> bytes:
    """
    Encode an L{Ack}.
    """
    return _ACK.pack(VERSION, ACK, ack.ack)


def encode_refuse(refuse: Refuse) -> bytes:
    """
    Encode a L{Refuse}; a reason longer than 1,000 bytes is cut.

    @raise ValueError: If the code is not 0 to 255.
    """
    if not 0 <= refuse.code <= 0xFF:
        raise ValueError(f"a REFUSE code is 0 to 255, not {refuse.code}")
    raw = refuse.reason.encode("utf-8")[:1000]
    return (
        _PREFIX.pack(VERSION, REFUSE) + _U16.pack(len(raw)) + raw + bytes([refuse.code])
    )


def encode(frame: WireFrame) -> bytes:
    """
    Encode any wire frame.
    """
    if isinstance(frame, Data):
        return encode_data(frame)
    if isinstance(frame, Hello):
        return encode_hello(frame)
    if isinstance(frame, Ack):
        return encode_ack(frame)
    if isinstance(frame, Auth):
        return encode_auth(frame)
    if isinstance(frame, Who):
        return encode_who(frame)
    if isinstance(frame, Here):
        return encode_here(frame)
    return encode_refuse(frame)


def _read_name(raw: bytes, at: int, what: str) -> tuple[str, int]:
    if at + 2 > len(raw):
        raise TruncatedFrameError(f"frame ends before the {what}'s length")
    (size,) = _U16.unpack_from(raw, at)
    at += 2
    if at + size > len(raw):
        raise TruncatedFrameError(f"frame ends inside the {what}")
    if not 0 < size <= MAX_NAME:
        raise BadFieldError(f"the {what} is {size} bytes long, not 1 to {MAX_NAME}")
    try:
        return raw[at : at + size].decode("utf-8"), at + size
    except UnicodeDecodeError as e:
        raise BadFieldError(f"the {what} is not UTF-8") from e


def _read_names(raw: bytes, at: int, count: int) -> tuple[tuple[str, ...], int]:
    members: list[str] = []
    for _ in range(count):
        name, at = _read_name(raw, at, "member list's name")
        if members and name <= members[-1]:
            raise BadFieldError(
                f"the member list is not sorted without repeats ({name!r}"
                f" after {members[-1]!r})"
            )
        members.append(name)
    return tuple(members), at


def _read_address(raw: bytes, at: int) -> tuple[str, int]:
    if at + 2 > len(raw):
        raise TruncatedFrameError("frame ends before the address's length")
    (size,) = _U16.unpack_from(raw, at)
    at += 2
    if at + size > len(raw):
        raise TruncatedFrameError("frame ends inside the address")
    if not 0 < size <= MAX_ADDRESS:
        raise BadFieldError(f"the address is {size} bytes long, not 1 to {MAX_ADDRESS}")
    try:
        return raw[at : at + size].decode("utf-8"), at + size
    except UnicodeDecodeError as e:
        raise BadFieldError("the address is not UTF-8") from e


def decode(raw: bytes) -> WireFrame:
    """
    Decode the bytes inside one length prefix.

    @param raw: The frame's bytes.
    @return: The frame.
    @raise WireError: If the bytes are not one valid frame; the subclass
        says how.
    """
    if len(raw) < 2:
        raise TruncatedFrameError(f"a frame needs at least 2 bytes, got {len(raw)}")
    version, kind = _PREFIX.unpack_from(raw)
    if version != VERSION:
        raise UnsupportedVersionError(
            f"wire format version {version}; this node speaks version {VERSION}"
        )
    if kind == DATA:
        return _decode_data(raw)
    if kind == HELLO:
        group, at = _read_name(raw, 2, "group")
        member, at = _read_name(raw, at, "member")
        peer, at = _read_name(raw, at, "peer")
        if at + _HELLO_TAIL.size > len(raw):
            raise TruncatedFrameError("HELLO frame ends before its counters")
        incarnation, received, view, count = _HELLO_TAIL.unpack_from(raw, at)
        at += _HELLO_TAIL.size
        members, at = _read_names(raw, at, count)
        nonce = b""
        address = ""
        if at < len(raw):
            size = raw[at]
            if size > MAX_NONCE:
                raise BadFieldError(f"the nonce is {size} bytes, not 1 to {MAX_NONCE}")
            if at + 1 + size > len(raw):
                raise TruncatedFrameError("frame ends inside the nonce")
            nonce = raw[at + 1 : at + 1 + size]
            at += 1 + size
            if at < len(raw):
                address, at = _read_address(raw, at)
            elif not size:
                # A zero length says only that an address follows: one
                # encoding per HELLO.
                raise BadFieldError("the nonce is 0 bytes and no address follows")
        _expect_end(raw, at, "HELLO")
        return Hello(
            group,
            member,
            peer,
            incarnation,
            received,
            nonce,
            view,
            members,
            address,
        )
    if kind == WHO:
        group, at = _read_name(raw, 2, "group")
        _expect_end(raw, at, "WHO")
        return Who(group)
    if kind == HERE:
        member, at = _read_name(raw, 2, "member")
        if at + _HERE_TAIL.size > len(raw):
            raise TruncatedFrameError("HERE frame ends before its member list")
        view, count = _HERE_TAIL.unpack_from(raw, at)
        members, at = _read_names(raw, at + _HERE_TAIL.size, count)
        if at + 2 > len(raw):
            raise TruncatedFrameError("HERE frame ends before its addresses")
        (count,) = _U16.unpack_from(raw, at)
        at += 2
        addresses: list[tuple[str, str]] = []
        for _ in range(count):
            name, at = _read_name(raw, at, "address list's name")
            if addresses and name <= addresses[-1][0]:
                raise BadFieldError("the addresses are not sorted by name")
            address, at = _read_address(raw, at)
            addresses.append((name, address))
        _expect_end(raw, at, "HERE")
        return Here(member, view, members, tuple(addresses))
    if kind == ACK:
        if len(raw) < _ACK.size:
            raise TruncatedFrameError("ACK frame is too short")
        _expect_end(raw, _ACK.size, "ACK")
        return Ack(_ACK.unpack_from(raw)[2])
    if kind == REFUSE:
        if len(raw) < 4:
            raise TruncatedFrameError("REFUSE frame is too short")
        (size,) = _U16.unpack_from(raw, 2)
        if 4 + size > len(raw):
            raise TruncatedFrameError("frame ends inside the REFUSE reason")
        reason = raw[4 : 4 + size].decode("utf-8", "replace")
        if 4 + size == len(raw):
            # Sent by a node from before the code: the reason is all.
            return Refuse(reason)
        _expect_end(raw, 5 + size, "REFUSE")
        return Refuse(reason, raw[4 + size])
    if kind == AUTH:
        if len(raw) < 2 + MAC_SIZE:
            raise TruncatedFrameError("AUTH frame is too short")
        _expect_end(raw, 2 + MAC_SIZE, "AUTH")
        return Auth(raw[2:])
    if kind == CONTROL:
        raise UnknownFrameTypeError(
            "a CONTROL frame (type 6), which links do not carry yet"
        )
    raise UnknownFrameTypeError(f"unknown frame type {kind}")


def decode_any(raw: bytes) -> WireFrame | ControlFrame:
    """
    Decode the bytes inside one length prefix, CONTROL frames included:
    what a link reads (L{decode} takes only this module's frames).

    @param raw: The frame's bytes.
    @return: The frame: a L{WireFrame}, or an
        L{isis_twisted.core.control.ControlFrame} for type L{CONTROL}.
    @raise WireError: If the bytes are not one valid frame; the subclass
        says how.
    """
    if len(raw) >= 2 and raw[0] == VERSION and raw[1] == CONTROL:
        # Imported here: the control codec builds on this module.
        from isis_twisted.core.control import decode_control

        return decode_control(raw)
    return decode(raw)


def _decode_data(raw: bytes) -> Data:
    size = len(raw)
    if size < _DATA_HEAD.size:
        raise TruncatedFrameError(f"DATA frame of {size} bytes is too short")
    _, _, seq, ack, view, clock, count = _DATA_HEAD.unpack_from(raw)
    at = _DATA_HEAD.size
    # Every message takes at least its head: an absurd count is caught
    # before anything is allocated for it.
    if count * _MESSAGE_HEAD.size > size - at:
        raise TruncatedFrameError(
            f"DATA frame claims {count} messages but has only {size - at} bytes"
        )
    unpack = _MESSAGE_HEAD.unpack_from
    messages = []
    for _ in range(count):
        if at + _MESSAGE_HEAD.size > size:
            raise TruncatedFrameError("DATA frame ends inside a message head")
        stamp, length = unpack(raw, at)
        at += _MESSAGE_HEAD.size
        end = at + length
        if end > size:
            raise TruncatedFrameError("DATA frame ends inside a payload")
        messages.append((stamp, raw[at:end]))
        at = end
    if at + _U16.size > size:
        raise TruncatedFrameError("DATA frame ends before its receipt horizons")
    (receipts,) = _U16.unpack_from(raw, at)
    at += _U16.size
    if at + receipts * _RECEIPT.size > size:
        raise TruncatedFrameError("DATA frame ends inside its receipt horizons")
    received = struct.unpack_from(f">{receipts}Q", raw, at)
    at += receipts * _RECEIPT.size
    _expect_end(raw, at, "DATA")
    return Data(seq, ack, Frame(view, clock, tuple(messages), received))


def _expect_end(raw: bytes, at: int, what: str) -> None:
    if at != len(raw):
        raise TrailingBytesError(f"{what} frame has {len(raw) - at} bytes too many")
