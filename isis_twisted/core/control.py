"""
The codec of CONTROL frames: the membership protocol's messages on a link.

A CONTROL frame has the head of a DATA frame, C{version (u8) = 2, type (u8)
= 6, seq (u64), ack (u64)}, because links number, acknowledge and resend
control frames on the same sequence as DATA frames; then a C{kind (u8)}, 1
to 18, naming one of the eighteen messages of L{isis_twisted.core.views}, and that
message's fields::

    1 SUSPECT   view, names
    2 PROPOSE   view, ballot, members (names), held (stamps)
    3 PROMISE   view, ballot, held (stamps), messages, accepted (optional
                ballot + proposal)
    4 REJECT    view, ballot, promised (ballot)
    5 ACCEPT    view, ballot, proposal, messages
    6 ACCEPTED  view, ballot
    7 DECIDE    view, ballot, proposal, messages
    8 INQUIRE   view, held (stamps)
    9 GONE      view, latest (view id + members), addresses
   10 JOIN      view, incarnation (u64), address (u16 length + 0 to 1024
                bytes of UTF-8)
   11 WELCOME   view, latest (view id + members), first (u64), clock (u64),
                addresses
   12 LEAVE     view
   13 FETCH     view, after (u64 index, u32 view, optional name + u64 stamp)
   14 RECORDS   view, records, done (u8 0 or 1)
   15 NORECORDS view, oldest (u64), reason (u16 length + UTF-8)
   16 FETCHSTATE view, parts (u16)
   17 STATE     view, position (as in FETCH), part (u16), data (u32 length
                + bytes), done (u8 0 or 1)
   18 NOSTATE   view, reason (u16 length + UTF-8)

with view ids u32; names as in L{isis_twisted.core.wire} (u16 length + 1 to 255
bytes of UTF-8); a ballot u64 number + name, where the empty name (length
0) is allowed only in L{NO_BALLOT}, C{(0, "")}; name lists u16 count +
names, strictly increasing; stamps u16 count + (name, u64 stamp), names
strictly increasing, stamps at most L{MAX_CLOCK}; messages u32 count +
(sender name, u64 stamp, u32 length, payload); a proposal its members, cut
and floor and joined (u16 count + (name, u64 incarnation), names strictly
increasing) and the joined members' addresses; addresses u16 count + (name,
u16 length + 1 to 1024 bytes of UTF-8), names strictly increasing; an
optional field a u8 flag, 0 (absent) or 1 (present); records
u32 count + each a u8 kind, 1 a delivery (u64 index, sender name, u64
stamp, u32 length, payload) or 2 a view change (u32 view id, u64 index,
members).

The byte-by-byte description is in docs/wire.md.  Decoding is strict:
every problem raises a L{WireError} subclass, and every value has exactly
one encoding.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import pairwise

import attrs

from isis_twisted.core.engine import (
    MAX_CLOCK,
    Delivery,
    Message,
    Record,
    StreamPosition,
    ViewChange,
)
from isis_twisted.core.views import (
    NO_BALLOT,
    Accept,
    Accepted,
    Addresses,
    Ballot,
    Control,
    Decide,
    Fetch,
    FetchState,
    Gone,
    Inquire,
    Join,
    Leave,
    NoRecords,
    NoState,
    Promise,
    Proposal,
    Propose,
    Records,
    Reject,
    Stamps,
    StateChunk,
    Suspect,
    View,
    Welcome,
)
from isis_twisted.core.wire import (
    CONTROL,
    MAX_ADDRESS,
    MAX_NAME,
    MAX_U64,
    VERSION,
    BadFieldError,
    TrailingBytesError,
    TruncatedFrameError,
    UnknownFrameTypeError,
    UnsupportedVersionError,
)

(
    SUSPECT,
    PROPOSE,
    PROMISE,
    REJECT,
    ACCEPT,
    ACCEPTED,
    DECIDE,
    INQUIRE,
    GONE,
    JOIN,
    WELCOME,
    LEAVE,
    FETCH,
    RECORDS,
    NORECORDS,
    FETCHSTATE,
    STATE,
    NOSTATE,
) = range(1, 19)

KINDS: dict[type[Control], int] = {
    Suspect: SUSPECT,
    Propose: PROPOSE,
    Promise: PROMISE,
    Reject: REJECT,
    Accept: ACCEPT,
    Accepted: ACCEPTED,
    Decide: DECIDE,
    Inquire: INQUIRE,
    Gone: GONE,
    Join: JOIN,
    Welcome: WELCOME,
    Leave: LEAVE,
    Fetch: FETCH,
    Records: RECORDS,
    NoRecords: NORECORDS,
    FetchState: FETCHSTATE,
    StateChunk: STATE,
    NoState: NOSTATE,
}
"""
The kind byte of each control message class.
"""

_HEAD = struct.Struct(">BBQQB")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

CONTROL_HEAD = _HEAD.size
"""
Bytes of a CONTROL frame's head, up to and including its kind byte.
"""

MAX_VIEW = (1 << 32) - 1
"""
The largest view id the wire carries.
"""

MAX_LIST = 0xFFFF
"""
The most names in a name list or entries in a stamps list.
"""

MAX_MESSAGES = (1 << 32) - 1
"""
The most messages one CONTROL frame carries.
"""

MAX_PAYLOAD = (1 << 32) - 1
"""
The longest payload of a message in a CONTROL frame.
"""

# The least bytes one entry takes: what a count is checked against before
# anything is allocated for it.
_MIN_NAME = 2
_MIN_STAMP = _MIN_NAME + 8
_MIN_ADDRESS = _MIN_NAME + 2 + 1
_MIN_MESSAGE = _MIN_NAME + 8 + 4
_MIN_RECORD = 1 + 4 + 8 + 2
_DELIVERY, _VIEW_CHANGE = 1, 2
MAX_REASON = 0xFFFF
"""
The longest reason, in bytes of UTF-8, a NORECORDS message carries.
"""


@attrs.frozen
class ControlFrame:
    """
    A control message on a link.

    @ivar seq: This frame's number on its link, on the sequence DATA frames
        take too.
    @ivar ack: As L{isis_twisted.core.wire.Data.ack}.
    @ivar message: The control message.
    """

    seq: int
    ack: int
    message: Control


# Encoding.  The encoder refuses, with ValueError, any value the decoder
# would refuse, so that what goes out always comes back the same.


def _check(ok: bool, problem: str) -> None:
    if not ok:
        raise ValueError(problem)


def _int(value: int, top: int, what: str) -> None:
    _check(
        type(value) is int and 0 <= value <= top, f"{what} {value!r} is not 0 to {top}"
    )


def _put_name(out: list[bytes], name: str, what: str) -> None:
    raw = name.encode("utf-8")
    _check(
        0 < len(raw) <= MAX_NAME,
        f"{what} must be 1 to {MAX_NAME} bytes of UTF-8: {name!r}",
    )
    out.append(_U16.pack(len(raw)))
    out.append(raw)


def _put_view(out: list[bytes], view: int) -> None:
    _int(view, MAX_VIEW, "view id")
    out.append(_U32.pack(view))


def _put_ballot(out: list[bytes], ballot: Ballot, what: str) -> None:
    number, proposer = ballot
    _int(number, MAX_U64, f"{what} number")
    if ballot == NO_BALLOT:
        out.append(_U64.pack(0) + _U16.pack(0))
        return
    _check(number > 0, f"{what} {ballot!r}: only the no-ballot value has number 0")
    out.append(_U64.pack(number))
    _put_name(out, proposer, f"{what} proposer")


def _put_names(out: list[bytes], names: tuple[str, ...], what: str) -> None:
    _check(len(names) <= MAX_LIST, f"{what} holds more than {MAX_LIST} names")
    _check(
        all(a < b for a, b in pairwise(names)),
        f"{what} must be sorted and unique: {names!r}",
    )
    out.append(_U16.pack(len(names)))
    for name in names:
        _put_name(out, name, f"a name in {what}")


def _put_stamps(
    out: list[bytes], stamps: Stamps, what: str, top: int = MAX_CLOCK
) -> None:
    """
    Names with stamps, or (with C{top} the whole u64 range) with any number.
    """
    _check(len(stamps) <= MAX_LIST, f"{what} holds more than {MAX_LIST} entries")
    names = [name for name, _ in stamps]
    _check(
        all(a < b for a, b in pairwise(names)),
        f"{what} must be sorted by name, each name once: {stamps!r}",
    )
    out.append(_U16.pack(len(stamps)))
    entry = f"a stamp in {what}" if top == MAX_CLOCK else f"a number in {what}"
    for name, stamp in stamps:
        _put_name(out, name, f"a name in {what}")
        _int(stamp, top, entry)
        out.append(_U64.pack(stamp))


def _put_messages(out: list[bytes], messages: tuple[Message, ...]) -> None:
    _check(len(messages) <= MAX_MESSAGES, "too many messages for one frame")
    out.append(_U32.pack(len(messages)))
    for m in messages:
        _put_name(out, m.sender, "a message's sender")
        _int(m.clock, MAX_CLOCK, "a message's stamp")
        _check(len(m.payload) <= MAX_PAYLOAD, "a message's payload is too long")
        out.append(_U64.pack(m.clock) + _U32.pack(len(m.payload)))
        out.append(bytes(m.payload))


def _put_proposal(out: list[bytes], proposal: Proposal) -> None:
    _put_names(out, proposal.members, "the proposal's members")
    _put_stamps(out, proposal.cut, "the proposal's cut")
    _put_stamps(out, proposal.floor, "the proposal's floor")
    # Names with incarnations: laid out as stamps, with the whole u64 range.
    _put_stamps(out, proposal.joined, "the joined list", MAX_U64)
    _put_addresses(out, proposal.addresses, "the joined members' addresses")


def _put_address(out: list[bytes], address: str, what: str, empty: bool) -> None:
    raw = address.encode("utf-8")
    _check(
        (empty or raw != b"") and len(raw) <= MAX_ADDRESS,
        f"{what} must be {0 if empty else 1} to {MAX_ADDRESS} bytes of UTF-8:"
        f" {address!r}",
    )
    out.append(_U16.pack(len(raw)) + raw)


def _put_addresses(out: list[bytes], addresses: Addresses, what: str) -> None:
    _check(len(addresses) <= MAX_LIST, f"{what} holds more than {MAX_LIST} entries")
    _check(
        all(a < b for (a, _), (b, _) in pairwise(addresses)),
        f"{what} must be sorted by name, each name once: {addresses!r}",
    )
    out.append(_U16.pack(len(addresses)))
    for name, address in addresses:
        _put_name(out, name, f"a name in {what}")
        _put_address(out, address, f"an address in {what}", empty=False)


def _put_message(out: list[bytes], message: Control) -> None:
    _put_view(out, message.view)
    if isinstance(message, Suspect):
        _put_names(out, message.names, "the suspects")
    elif isinstance(message, Propose):
        _put_ballot(out, message.ballot, "the ballot")
        _put_names(out, message.members, "the proposed members")
        _put_stamps(out, message.held, "the held stamps")
    elif isinstance(message, Promise):
        _put_ballot(out, message.ballot, "the ballot")
        _put_stamps(out, message.held, "the held stamps")
        _put_messages(out, message.messages)
        if message.accepted is None:
            out.append(_U8.pack(0))
        else:
            out.append(_U8.pack(1))
            _put_ballot(out, message.accepted[0], "the accepted ballot")
            _put_proposal(out, message.accepted[1])
    elif isinstance(message, Reject):
        _put_ballot(out, message.ballot, "the ballot")
        _put_ballot(out, message.promised, "the promised ballot")
    elif isinstance(message, Accept | Decide):
        _put_ballot(out, message.ballot, "the ballot")
        _put_proposal(out, message.proposal)
        _put_messages(out, message.messages)
    elif isinstance(message, Accepted):
        _put_ballot(out, message.ballot, "the ballot")
    elif isinstance(message, Inquire):
        _put_stamps(out, message.held, "the held stamps")
    elif isinstance(message, Gone | Welcome):
        _put_view(out, message.latest.id)
        _put_names(out, message.latest.members, "the latest view's members")
        if isinstance(message, Welcome):
            _int(message.first, MAX_U64, "the first index")
            _int(message.clock, MAX_CLOCK, "the clock")
            out.append(_U64.pack(message.first) + _U64.pack(message.clock))
        _put_addresses(out, message.addresses, "the latest view's addresses")
    elif isinstance(message, Fetch):
        _put_position(out, message.after)
    elif isinstance(message, Records):
        _put_records(out, message.records)
        out.append(_U8.pack(1 if message.done else 0))
    elif isinstance(message, NoRecords):
        _int(message.oldest, MAX_U64, "the oldest index")
        out.append(_U64.pack(message.oldest))
        _put_reason(out, message.reason)
    elif isinstance(message, FetchState):
        _int(message.parts, 0xFFFF, "the number of state handlers")
        out.append(_U16.pack(message.parts))
    elif isinstance(message, StateChunk):
        _put_position(out, message.position)
        _int(message.part, 0xFFFF, "the state handler's place")
        _check(len(message.data) <= MAX_PAYLOAD, "a state chunk is too long")
        out.append(_U16.pack(message.part) + _U32.pack(len(message.data)))
        out.append(bytes(message.data))
        out.append(_U8.pack(1 if message.done else 0))
    elif isinstance(message, NoState):
        _put_reason(out, message.reason)
    elif isinstance(message, Join):
        _int(message.incarnation, MAX_U64, "the incarnation")
        out.append(_U64.pack(message.incarnation))
        _put_address(out, message.address, "the joiner's address", empty=True)
    # LEAVE carries its view id only.


def _put_reason(out: list[bytes], reason: str) -> None:
    raw = reason.encode("utf-8")
    _check(len(raw) <= MAX_REASON, "the reason is too long")
    out.append(_U16.pack(len(raw)) + raw)


def _put_position(out: list[bytes], position: StreamPosition) -> None:
    _int(position.index, MAX_U64, "the position's index")
    out.append(_U64.pack(position.index))
    _put_view(out, position.view)
    if position.last is None:
        out.append(_U8.pack(0))
    else:
        out.append(_U8.pack(1))
        _put_name(out, position.last[0], "the last delivery's sender")
        _int(position.last[1], MAX_CLOCK, "the last delivery's stamp")
        out.append(_U64.pack(position.last[1]))


def _put_records(out: list[bytes], records: tuple[Record, ...]) -> None:
    _check(len(records) <= MAX_MESSAGES, "too many records for one frame")
    out.append(_U32.pack(len(records)))
    for r in records:
        if isinstance(r, Delivery):
            _int(r.index, MAX_U64, "a delivery's index")
            out.append(_U8.pack(_DELIVERY) + _U64.pack(r.index))
            _put_name(out, r.sender, "a delivery's sender")
            _int(r.clock, MAX_CLOCK, "a delivery's stamp")
            _check(len(r.payload) <= MAX_PAYLOAD, "a delivery's payload is too long")
            out.append(_U64.pack(r.clock) + _U32.pack(len(r.payload)))
            out.append(bytes(r.payload))
        else:
            out.append(_U8.pack(_VIEW_CHANGE))
            _put_view(out, r.view)
            _int(r.index, MAX_U64, "a view change's index")
            out.append(_U64.pack(r.index))
            _put_names(out, r.members, "a view change's members")


def encode_control(frame: ControlFrame) -> bytes:
    """
    Encode a L{ControlFrame}.

    @raise ValueError: If a field holds a value the wire cannot carry or a
        decoder would refuse: a name that is empty or too long, a list that
        is not sorted or repeats a name, a stamp above L{MAX_CLOCK}, a
        number out of its field's range.
    """
    _int(frame.seq, MAX_U64, "seq")
    _int(frame.ack, MAX_U64, "ack")
    kind = KINDS[type(frame.message)]
    out = [_HEAD.pack(VERSION, CONTROL, frame.seq, frame.ack, kind)]
    _put_message(out, frame.message)
    return b"".join(out)


# Decoding.


class _Reader:
    """
    A cursor over one frame's bytes that raises typed errors.
    """

    def __init__(self, raw: bytes, at: int) -> None:
        self.raw = raw
        self.at = at

    def left(self) -> int:
        return len(self.raw) - self.at

    def take(self, size: int, what: str) -> bytes:
        if size > self.left():
            raise TruncatedFrameError(f"CONTROL frame ends inside {what}")
        start = self.at
        self.at += size
        return self.raw[start : self.at]

    def unpack(self, shape: struct.Struct, what: str) -> int:
        if shape.size > self.left():
            raise TruncatedFrameError(f"CONTROL frame ends inside {what}")
        (value,) = shape.unpack_from(self.raw, self.at)
        self.at += shape.size
        return int(value)

    def name(self, what: str, empty: bool = False) -> str:
        size = self.unpack(_U16, f"{what}'s length")
        raw = self.take(size, what)
        if size > MAX_NAME or (size == 0 and not empty):
            raise BadFieldError(f"{what} is {size} bytes long, not 1 to {MAX_NAME}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadFieldError(f"{what} is not UTF-8") from e

    def count(self, shape: struct.Struct, least: int, what: str) -> int:
        count = self.unpack(shape, f"the count of {what}")
        # An absurd count is caught before anything is allocated for it.
        if count * least > self.left():
            raise TruncatedFrameError(
                f"CONTROL frame claims {count} {what} but has only {self.left()} bytes"
            )
        return count

    def clock(self, what: str) -> int:
        value = self.unpack(_U64, what)
        if value > MAX_CLOCK:
            raise BadFieldError(f"{what} {value} is above {MAX_CLOCK}")
        return value

    def view(self) -> int:
        return self.unpack(_U32, "the view id")

    def ballot(self, what: str) -> Ballot:
        number = self.unpack(_U64, f"{what}'s number")
        proposer = self.name(f"{what}'s proposer", empty=True)
        if (number == 0) != (proposer == ""):
            raise BadFieldError(
                f"{what} ({number}, {proposer!r}): the number is 0 exactly when "
                "the proposer is empty"
            )
        return (number, proposer)

    def names(self, what: str) -> tuple[str, ...]:
        count = self.count(_U16, _MIN_NAME, what)
        names = tuple(self.name(f"a name in {what}") for _ in range(count))
        _sorted(names, what)
        return names

    def stamps(self, what: str, clocks: bool = True) -> Stamps:
        """
        Names with stamps (or, not C{clocks}, with any u64: incarnations).
        """
        count = self.count(_U16, _MIN_STAMP, what)
        stamps = tuple(
            (
                self.name(f"a name in {what}"),
                self.clock(f"a stamp in {what}")
                if clocks
                else self.unpack(_U64, f"a number in {what}"),
            )
            for _ in range(count)
        )
        _sorted(tuple(name for name, _ in stamps), what)
        return stamps

    def messages(self) -> tuple[Message, ...]:
        count = self.count(_U32, _MIN_MESSAGE, "messages")
        messages = []
        for _ in range(count):
            sender = self.name("a message's sender")
            clock = self.clock("a message's stamp")
            length = self.unpack(_U32, "a message's length")
            messages.append(Message(sender, clock, self.take(length, "a payload")))
        return tuple(messages)

    def proposal(self) -> Proposal:
        members = self.names("the proposal's members")
        cut = self.stamps("the proposal's cut")
        floor = self.stamps("the proposal's floor")
        joined = self.stamps("the joined list", clocks=False)
        addresses = self.addresses("the joined members' addresses")
        return Proposal(members, cut, floor, joined, addresses)

    def address(self, what: str, empty: bool = False) -> str:
        size = self.unpack(_U16, f"{what}'s length")
        raw = self.take(size, what)
        if size > MAX_ADDRESS or (size == 0 and not empty):
            raise BadFieldError(
                f"{what} is {size} bytes long, not {0 if empty else 1} to {MAX_ADDRESS}"
            )
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadFieldError(f"{what} is not UTF-8") from e

    def addresses(self, what: str) -> Addresses:
        count = self.count(_U16, _MIN_ADDRESS, what)
        addresses = tuple(
            (self.name(f"a name in {what}"), self.address(f"an address in {what}"))
            for _ in range(count)
        )
        _sorted(tuple(name for name, _ in addresses), what)
        return addresses

    def flag(self, what: str) -> bool:
        flag = self.unpack(_U8, what)
        if flag > 1:
            raise BadFieldError(f"{what} is {flag}, not 0 or 1")
        return flag == 1

    def position(self) -> StreamPosition:
        index = self.unpack(_U64, "the position's index")
        view = self.view()
        last = None
        if self.flag("the last delivery flag"):
            last = (
                self.name("the last delivery's sender"),
                self.clock("the last delivery's stamp"),
            )
        return StreamPosition(index, view, last)

    def records(self) -> tuple[Record, ...]:
        count = self.count(_U32, _MIN_RECORD, "records")
        records: list[Record] = []
        for _ in range(count):
            kind = self.unpack(_U8, "a record's kind")
            if kind == _DELIVERY:
                index = self.unpack(_U64, "a delivery's index")
                sender = self.name("a delivery's sender")
                clock = self.clock("a delivery's stamp")
                length = self.unpack(_U32, "a delivery's length")
                payload = self.take(length, "a payload")
                records.append(Delivery(index, sender, clock, payload))
            elif kind == _VIEW_CHANGE:
                view = self.view()
                index = self.unpack(_U64, "a view change's index")
                records.append(
                    ViewChange(view, self.names("a view change's members"), index)
                )
            else:
                raise BadFieldError(f"a record's kind is {kind}, not 1 or 2")
        return tuple(records)

    def accepted(self) -> tuple[Ballot, Proposal] | None:
        flag = self.unpack(_U8, "the accepted flag")
        if flag == 0:
            return None
        if flag != 1:
            raise BadFieldError(f"the accepted flag is {flag}, not 0 or 1")
        return (self.ballot("the accepted ballot"), self.proposal())


def _sorted(names: tuple[str, ...], what: str) -> None:
    for a, b in pairwise(names):
        if not a < b:
            raise BadFieldError(
                f"{what} must be sorted and unique, but {b!r} follows {a!r}"
            )


def _suspect(r: _Reader, view: int) -> Control:
    return Suspect(view, r.names("the suspects"))


def _propose(r: _Reader, view: int) -> Control:
    return Propose(
        view,
        r.ballot("the ballot"),
        r.names("the proposed members"),
        r.stamps("the held stamps"),
    )


def _promise(r: _Reader, view: int) -> Control:
    return Promise(
        view,
        r.ballot("the ballot"),
        r.stamps("the held stamps"),
        r.messages(),
        r.accepted(),
    )


def _reject(r: _Reader, view: int) -> Control:
    return Reject(view, r.ballot("the ballot"), r.ballot("the promised ballot"))


def _accept(r: _Reader, view: int) -> Control:
    return Accept(view, r.ballot("the ballot"), r.proposal(), r.messages())


def _accepted(r: _Reader, view: int) -> Control:
    return Accepted(view, r.ballot("the ballot"))


def _decide(r: _Reader, view: int) -> Control:
    return Decide(view, r.ballot("the ballot"), r.proposal(), r.messages())


def _inquire(r: _Reader, view: int) -> Control:
    return Inquire(view, r.stamps("the held stamps"))


def _gone(r: _Reader, view: int) -> Control:
    latest = View(r.view(), r.names("the latest view's members"))
    return Gone(view, latest, r.addresses("the latest view's addresses"))


def _join(r: _Reader, view: int) -> Control:
    incarnation = r.unpack(_U64, "the incarnation")
    return Join(view, incarnation, r.address("the joiner's address", empty=True))


def _welcome(r: _Reader, view: int) -> Control:
    latest = View(r.view(), r.names("the latest view's members"))
    first = r.unpack(_U64, "the first index")
    clock = r.clock("the clock")
    return Welcome(
        view, latest, first, clock, r.addresses("the latest view's addresses")
    )


def _leave(r: _Reader, view: int) -> Control:
    return Leave(view)


def _fetch(r: _Reader, view: int) -> Control:
    return Fetch(view, r.position())


def _records(r: _Reader, view: int) -> Control:
    records = r.records()
    return Records(view, records, r.flag("the done flag"))


def _reason(r: _Reader) -> str:
    size = r.unpack(_U16, "the reason's length")
    try:
        return r.take(size, "the reason").decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadFieldError("the reason is not UTF-8") from e


def _no_records(r: _Reader, view: int) -> Control:
    oldest = r.unpack(_U64, "the oldest index")
    return NoRecords(view, oldest, _reason(r))


def _fetch_state(r: _Reader, view: int) -> Control:
    return FetchState(view, r.unpack(_U16, "the number of state handlers"))


def _state(r: _Reader, view: int) -> Control:
    position = r.position()
    part = r.unpack(_U16, "the state handler's place")
    size = r.unpack(_U32, "the state chunk's length")
    data = r.take(size, "the state chunk")
    return StateChunk(view, position, part, data, r.flag("the done flag"))


def _no_state(r: _Reader, view: int) -> Control:
    return NoState(view, _reason(r))


_DECODERS: dict[int, Callable[[_Reader, int], Control]] = {
    SUSPECT: _suspect,
    PROPOSE: _propose,
    PROMISE: _promise,
    REJECT: _reject,
    ACCEPT: _accept,
    ACCEPTED: _accepted,
    DECIDE: _decide,
    INQUIRE: _inquire,
    GONE: _gone,
    JOIN: _join,
    WELCOME: _welcome,
    LEAVE: _leave,
    FETCH: _fetch,
    RECORDS: _records,
    NORECORDS: _no_records,
    FETCHSTATE: _fetch_state,
    STATE: _state,
    NOSTATE: _no_state,
}


def decode_control(raw: bytes) -> ControlFrame:
    """
    Decode the bytes of one CONTROL frame (inside its length prefix).

    @param raw: The frame's bytes, from its version byte on.
    @return: The frame.
    @raise isis_twisted.core.wire.WireError: If the bytes are not one valid
        CONTROL frame; the subclass says how (an unknown kind is an
        L{UnknownFrameTypeError}).
    """
    if len(raw) >= 2:
        if raw[0] != VERSION:
            raise UnsupportedVersionError(
                f"wire format version {raw[0]}; this node speaks version {VERSION}"
            )
        if raw[1] != CONTROL:
            raise UnknownFrameTypeError(f"frame type {raw[1]} is not CONTROL")
    if len(raw) < _HEAD.size:
        raise TruncatedFrameError(f"CONTROL frame of {len(raw)} bytes is too short")
    _, _, seq, ack, kind = _HEAD.unpack_from(raw)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise UnknownFrameTypeError(f"unknown control message kind {kind}")
    reader = _Reader(raw, _HEAD.size)
    message = decoder(reader, reader.view())
    if reader.left():
        raise TrailingBytesError(f"CONTROL frame has {reader.left()} bytes too many")
    return ControlFrame(seq, ack, message)
