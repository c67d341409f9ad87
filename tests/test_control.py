"""
Tests for L{isis_twisted.core.control}: the codec of CONTROL frames, which carry
the membership protocol's messages.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.control import (
    ACCEPT,
    ACCEPTED,
    CONTROL_HEAD,
    DECIDE,
    GONE,
    INQUIRE,
    JOIN,
    KINDS,
    MAX_VIEW,
    PROMISE,
    PROPOSE,
    REJECT,
    SUSPECT,
    ControlFrame,
    decode_control,
    encode_control,
)
from isis_twisted.core.engine import (
    MAX_CLOCK,
    Delivery,
    Frame,
    Message,
    StreamPosition,
    ViewChange,
)
from isis_twisted.core.views import (
    NO_BALLOT,
    Accept,
    Accepted,
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
    DATA,
    MAX_ADDRESS,
    MAX_NAME,
    MAX_U64,
    VERSION,
    Ack,
    BadFieldError,
    Data,
    Hello,
    TrailingBytesError,
    TruncatedFrameError,
    UnknownFrameTypeError,
    UnsupportedVersionError,
    WireError,
    WireFrame,
    decode,
    decode_any,
    encode,
)
from tests.test_wire import mutate, mutations, name, u8, u16, u32, u64

MIB = 1 << 20
DOC = Path(__file__).resolve().parent.parent / "docs" / "wire.md"


def framed(raw: bytes) -> bytes:
    """
    C{raw} with its 4-byte length prefix.
    """
    return u32(len(raw)) + raw


def head(kind: int, view: int = 1, seq: int = 3, ack: int = 2) -> bytes:
    """
    The bytes of a CONTROL frame up to and including its view id.
    """
    return u8(VERSION) + u8(CONTROL) + u64(seq) + u64(ack) + u8(kind) + u32(view)


def ballot(number: int, proposer: bytes) -> bytes:
    return u64(number) + name(proposer)


def names(*raws: bytes) -> bytes:
    return u16(len(raws)) + b"".join(name(r) for r in raws)


def stamps(*pairs: tuple[bytes, int]) -> bytes:
    return u16(len(pairs)) + b"".join(name(n) + u64(s) for n, s in pairs)


PROPOSAL = Proposal(("a", "b"), (("a", 5), ("c", 9)), (("a", 5), ("c", 8)))
MESSAGES = (Message("c", 9, b"hi"), Message("a", 4, b""))

SAMPLES: list[Control] = [
    Suspect(1, ("b", "c")),
    Propose(1, (2, "a"), ("a", "b"), (("a", 5), ("b", 258))),
    Promise(1, (2, "a"), (("a", 5),), MESSAGES, None),
    Promise(1, (2, "a"), (("a", 5),), MESSAGES, ((1, "b"), PROPOSAL)),
    Reject(1, (2, "a"), (3, "b")),
    Reject(1, (2, "a"), NO_BALLOT),
    Accept(1, (2, "a"), PROPOSAL, MESSAGES),
    Accepted(1, (2, "a")),
    Decide(1, (2, "a"), PROPOSAL, MESSAGES),
    Inquire(1, (("a", 5), ("b", 7))),
    Gone(1, View(4, ("a", "b"))),
    Gone(1, View(4, ("a", "d")), (("a", "tcp:host=10.0.0.1:port=9001"), ("d", "d:9"))),
    Join(3, 0xFEEDFACECAFEBEEF),
    Join(3, 7, "tcp:host=10.0.0.4:port=9004"),
    Decide(
        4, (5, "a"), attrs.evolve(PROPOSAL, joined=(("c", 7), ("d", 2**64 - 1))), ()
    ),
    Decide(
        4,
        (5, "a"),
        attrs.evolve(PROPOSAL, joined=(("d", 3),), addresses=(("d", "d:9004"),)),
        (),
    ),
    Welcome(4, View(4, ("a", "b", "c")), 81, 1200),
    Welcome(4, View(4, ("a", "é")), 81, 1200, (("é", "unix:/tmp/é.sock"),)),
    Leave(2),
    Fetch(4, StreamPosition()),
    Fetch(4, StreamPosition(80, 3, ("b", 77))),
    Records(
        4,
        (
            Delivery(79, "a", 70, b"x"),
            ViewChange(3, ("a", "b"), 80),
            Delivery(80, "b", 77, b""),
        ),
        False,
    ),
    Records(4, (), True),
    NoRecords(4, 1001, "deliveries before index 1001 are no longer held by 'a'"),
    FetchState(4, 1),
    StateChunk(4, StreamPosition(90, 4, ("a", 81)), 0, b"\x00state", False),
    StateChunk(4, StreamPosition(), 2, b"", True),
    NoState(4, "'a' has 2 state handlers, the joiner 1"),
]


def frame(message: Control, seq: int = 3, ack: int = 2) -> ControlFrame:
    return ControlFrame(seq, ack, message)


class RoundTripTests(SynchronousTestCase):
    """
    Every kind of control message decodes to what was encoded.
    """

    def assertRoundTrip(self, message: Control) -> bytes:
        """
        C{message} in a frame encodes to bytes that decode back to it, by
        L{decode_control} and L{decode_any} alike.
        """
        raw = encode_control(frame(message))
        self.assertEqual(decode_control(raw), frame(message))
        self.assertEqual(decode_any(raw), frame(message))
        return raw

    def test_every_kind(self) -> None:
        seen = set()
        for message in SAMPLES:
            raw = self.assertRoundTrip(message)
            self.assertEqual(raw[:2], bytes([VERSION, CONTROL]))
            self.assertEqual(raw[CONTROL_HEAD - 1], KINDS[type(message)])
            seen.add(type(message))
        self.assertEqual(seen, set(KINDS))

    def test_kinds(self) -> None:
        self.assertEqual(
            [
                KINDS[kind]
                for kind in [
                    Suspect,
                    Propose,
                    Promise,
                    Reject,
                    Accept,
                    Accepted,
                    Decide,
                    Inquire,
                    Gone,
                    Join,
                    Welcome,
                    Leave,
                    Fetch,
                    Records,
                    NoRecords,
                    FetchState,
                    StateChunk,
                    NoState,
                ]
            ],
            list(range(1, 19)),
        )
        self.assertEqual(
            (SUSPECT, PROPOSE, PROMISE, REJECT, ACCEPT, ACCEPTED, DECIDE, INQUIRE),
            tuple(range(1, 9)),
        )
        self.assertEqual(GONE, 9)

    def test_empty_lists(self) -> None:
        empty = Proposal((), (), ())
        empties: list[Control] = [
            Suspect(0, ()),
            Propose(0, (1, "a"), (), ()),
            Promise(0, (1, "a"), (), (), None),
            Promise(0, NO_BALLOT, (), (), (NO_BALLOT, empty)),
            Accept(0, (1, "a"), empty, ()),
            Decide(0, (1, "a"), empty, ()),
            Inquire(0, ()),
            Gone(0, View(0, ())),
        ]
        for message in empties:
            self.assertRoundTrip(message)

    def test_empty_promise_size(self) -> None:
        """
        A promise with nothing to report: head, view, ballot, two empty
        counts and the absent flag.
        """
        raw = encode_control(frame(Promise(0, (1, "a"), (), (), None)))
        self.assertEqual(len(raw), CONTROL_HEAD + 4 + 8 + 3 + 2 + 4 + 1)

    def test_max_values(self) -> None:
        longest = "é" * 127 + "a"
        self.assertEqual(len(longest.encode()), MAX_NAME)
        top: Ballot = (MAX_U64, longest)
        held: Stamps = ((longest, MAX_CLOCK),)
        proposal = Proposal((longest,), held, held)
        extremes: list[Control] = [
            Suspect(MAX_VIEW, (longest,)),
            Propose(MAX_VIEW, top, (longest,), held),
            Promise(
                MAX_VIEW,
                top,
                held,
                (Message(longest, MAX_CLOCK, b"x"),),
                (top, proposal),
            ),
            Reject(MAX_VIEW, top, top),
            Accept(MAX_VIEW, top, proposal, ()),
            Accepted(MAX_VIEW, top),
            Decide(MAX_VIEW, top, proposal, ()),
            Inquire(MAX_VIEW, held),
            Gone(MAX_VIEW, View(MAX_VIEW, (longest,))),
        ]
        for message in extremes:
            raw = encode_control(ControlFrame(MAX_U64, MAX_U64, message))
            self.assertEqual(
                decode_control(raw), ControlFrame(MAX_U64, MAX_U64, message)
            )

    def test_many_names(self) -> None:
        many = tuple(f"m{i:05}" for i in range(2000))
        self.assertRoundTrip(Suspect(3, many))
        self.assertRoundTrip(Inquire(3, tuple((n, i) for i, n in enumerate(many))))

    def test_one_mebibyte_payloads(self) -> None:
        payload = bytes(range(256)) * (MIB // 256)
        big = (Message("a", 1, payload), Message("b", 2, payload[::-1]))
        carriers: list[Control] = [
            Promise(1, (2, "a"), (), big, None),
            Accept(1, (2, "a"), PROPOSAL, big),
            Decide(1, (2, "a"), PROPOSAL, big),
        ]
        for message in carriers:
            raw = self.assertRoundTrip(message)
            self.assertGreater(len(raw), 2 * MIB)

    def test_payloads_are_bytes(self) -> None:
        raw = encode_control(frame(Decide(1, (2, "a"), PROPOSAL, MESSAGES)))
        decided = decode_control(raw).message
        assert isinstance(decided, Decide)
        for m in decided.messages:
            self.assertIs(type(m.payload), bytes)

    def test_no_ballot_bytes(self) -> None:
        """
        The no-ballot value is a zero number and an empty proposer.
        """
        raw = encode_control(frame(Reject(1, (2, "a"), NO_BALLOT)))
        self.assertEqual(raw[-10:], u64(0) + u16(0))
        self.assertEqual(raw[CONTROL_HEAD + 4 : -10], ballot(2, b"a"))

    def test_decode_any_other_frames(self) -> None:
        """
        L{decode_any} decodes every other frame as L{decode} does.
        """
        others: list[WireFrame] = [
            Hello("g", "a", "b", 1, 2),
            Data(1, 0, Frame(0, 3, ((3, b"x"),), (1,))),
            Ack(4),
        ]
        for other in others:
            self.assertEqual(decode_any(encode(other)), other)
        with self.assertRaises(UnknownFrameTypeError):
            decode_any(u8(VERSION) + u8(9))
        with self.assertRaises(UnsupportedVersionError):
            decode_any(u8(1) + u8(CONTROL))

    def test_links_refuse_control(self) -> None:
        """
        L{decode}, which links use, refuses a valid CONTROL frame, saying
        what it is, until links carry them.
        """
        raw = encode_control(frame(SAMPLES[0]))
        with self.assertRaises(UnknownFrameTypeError) as caught:
            decode(raw)
        self.assertIn("CONTROL", str(caught.exception))


GOLDEN_PROPOSE = ControlFrame(
    3, 2, Propose(1, (2, "a"), ("a", "b"), (("a", 5), ("b", 258)))
)
GOLDEN_PROPOSE_BYTES = bytes.fromhex(
    "02"  # version
    "06"  # type: CONTROL
    "0000000000000003"  # seq = 3
    "0000000000000002"  # ack = 2
    "02"  # kind: PROPOSE
    "00000001"  # view = 1
    "0000000000000002"  # ballot number = 2
    "0001"  # ballot proposer length = 1
    "61"  # "a"
    "0002"  # members: 2 names
    "0001"  # length 1
    "61"  # "a"
    "0001"  # length 1
    "62"  # "b"
    "0002"  # held: 2 entries
    "0001"  # length 1
    "61"  # "a"
    "0000000000000005"  # stamp 5
    "0001"  # length 1
    "62"  # "b"
    "0000000000000102"  # stamp 258
)

GOLDEN_DECIDE = ControlFrame(
    4,
    3,
    Decide(
        1,
        (2, "a"),
        Proposal(("a", "b"), (("a", 5), ("c", 9)), (("a", 5), ("c", 8))),
        (Message("c", 9, b"hi"),),
    ),
)
GOLDEN_DECIDE_BYTES = bytes.fromhex(
    "02"  # version
    "06"  # type: CONTROL
    "0000000000000004"  # seq = 4
    "0000000000000003"  # ack = 3
    "07"  # kind: DECIDE
    "00000001"  # view = 1
    "0000000000000002"  # ballot number = 2
    "0001"  # ballot proposer length = 1
    "61"  # "a"
    "0002"  # proposal members: 2 names
    "0001"  # length 1
    "61"  # "a"
    "0001"  # length 1
    "62"  # "b"
    "0002"  # cut: 2 entries
    "0001"  # length 1
    "61"  # "a"
    "0000000000000005"  # up to stamp 5
    "0001"  # length 1
    "63"  # "c"
    "0000000000000009"  # up to stamp 9
    "0002"  # floor: 2 entries
    "0001"  # length 1
    "61"  # "a"
    "0000000000000005"  # stamp 5
    "0001"  # length 1
    "63"  # "c"
    "0000000000000008"  # stamp 8
    "0000"  # joined: none
    "0000"  # the joined members' addresses: none
    "00000001"  # messages: 1
    "0001"  # sender length 1
    "63"  # "c"
    "0000000000000009"  # stamp 9
    "00000002"  # payload length 2
    "6869"  # "hi"
)

GOLDEN_PROMISE = ControlFrame(1, 0, Promise(0, (1, "a"), (), (), None))
GOLDEN_PROMISE_BYTES = bytes.fromhex(
    "02"  # version
    "06"  # type: CONTROL
    "0000000000000001"  # seq = 1
    "0000000000000000"  # ack = 0
    "03"  # kind: PROMISE
    "00000000"  # view = 0
    "0000000000000001"  # ballot number = 1
    "0001"  # ballot proposer length = 1
    "61"  # "a"
    "0000"  # held: 0 entries
    "00000000"  # messages: 0
    "00"  # accepted: absent
)


class GoldenTests(SynchronousTestCase):
    """
    The exact bytes of known frames, the same as in docs/wire.md: any
    change to the format fails here.
    """

    def assertGolden(self, control: ControlFrame, raw: bytes) -> None:
        self.assertEqual(encode_control(control).hex(), raw.hex())
        self.assertEqual(decode_control(raw), control)

    def test_constants(self) -> None:
        self.assertEqual(CONTROL, 6)
        self.assertEqual(CONTROL_HEAD, 19)
        self.assertEqual(MAX_VIEW, 2**32 - 1)

    def test_head_is_data_head(self) -> None:
        """
        A CONTROL frame's seq and ack sit where a DATA frame's do.
        """
        data = encode(Data(3, 2, Frame(1, 9, ())))
        self.assertEqual(GOLDEN_PROPOSE_BYTES[2:18], data[2:18])

    def test_propose(self) -> None:
        self.assertEqual(len(GOLDEN_PROPOSE_BYTES), 66)
        self.assertGolden(GOLDEN_PROPOSE, GOLDEN_PROPOSE_BYTES)

    def test_decide(self) -> None:
        self.assertEqual(len(GOLDEN_DECIDE_BYTES), 115)
        self.assertGolden(GOLDEN_DECIDE, GOLDEN_DECIDE_BYTES)

    def test_promise(self) -> None:
        self.assertEqual(len(GOLDEN_PROMISE_BYTES), 41)
        self.assertGolden(GOLDEN_PROMISE, GOLDEN_PROMISE_BYTES)

    def test_documented(self) -> None:
        """
        docs/wire.md shows these very bytes: its hex dumps of PROPOSE and
        DECIDE, and the pieces of the empty PROMISE, with length prefixes.
        """
        section = DOC.read_text("utf-8").split("## CONTROL (type 6)")[1]
        dumps = [
            bytes.fromhex(
                "".join(line[10:59] for line in block.splitlines() if line[:1] == "0")
            )
            for block in section.split("```")[1::2]
            if block.strip().startswith("00000000")
        ]
        self.assertEqual(
            dumps,
            [framed(GOLDEN_PROPOSE_BYTES), framed(GOLDEN_DECIDE_BYTES)],
        )
        promise = section.split("#### An empty PROMISE")[1]
        pieces = re.findall(r"`((?:[0-9a-f]{2} ?)+)`", promise)
        self.assertEqual(bytes.fromhex("".join(pieces)), framed(GOLDEN_PROMISE_BYTES))


class DecodeErrorTests(SynchronousTestCase):
    """
    Every problem raises the L{WireError} subclass that names it.
    """

    def assertWireError(self, raw: bytes, kind: type[WireError]) -> WireError:
        try:
            result = decode_control(raw)
        except WireError as e:
            self.assertIs(type(e), kind, f"{raw!r}: {e!r}")
            self.assertTrue(str(e))
            return e
        self.fail(f"{raw!r} decoded to {result!r}, expected {kind.__name__}")

    def test_truncated_at_every_cut(self) -> None:
        for message in SAMPLES:
            raw = encode_control(frame(message))
            for cut in range(len(raw)):
                self.assertWireError(raw[:cut], TruncatedFrameError)

    def test_trailing_bytes(self) -> None:
        for message in SAMPLES:
            raw = encode_control(frame(message))
            for extra in [b"\x00", b"\xff" * 9]:
                self.assertWireError(raw + extra, TrailingBytesError)

    def test_unknown_kind(self) -> None:
        for kind in [0, 19, 128, 255]:
            raw = u8(VERSION) + u8(CONTROL) + u64(1) + u64(0) + u8(kind)
            error = self.assertWireError(raw, UnknownFrameTypeError)
            self.assertIn(str(kind), str(error))
            self.assertWireError(raw + b"\x00" * 40, UnknownFrameTypeError)
            with self.assertRaises(UnknownFrameTypeError):
                decode_any(raw)

    def test_wrong_version(self) -> None:
        raw = encode_control(GOLDEN_PROPOSE)
        for version in [0, 1, 3, 255]:
            self.assertWireError(u8(version) + raw[1:], UnsupportedVersionError)
            self.assertWireError(u8(version) + raw[1:2], UnsupportedVersionError)

    def test_not_a_control_frame(self) -> None:
        raw = encode_control(GOLDEN_PROPOSE)
        self.assertWireError(u8(VERSION) + u8(DATA) + raw[2:], UnknownFrameTypeError)

    def test_absurd_counts(self) -> None:
        """
        A count whose entries cannot fit what is left is refused before
        anything is allocated for it, however large it is.
        """
        self.assertWireError(head(SUSPECT) + u16(0xFFFF), TruncatedFrameError)
        self.assertWireError(head(INQUIRE) + u16(0xFFFF), TruncatedFrameError)
        promise = head(PROMISE) + ballot(1, b"a") + stamps()
        error = self.assertWireError(promise + u32(2**32 - 1), TruncatedFrameError)
        self.assertIn(str(2**32 - 1), str(error))

    def test_count_one_too_many(self) -> None:
        valid = head(SUSPECT) + names(b"a", b"b")
        self.assertIsInstance(decode_control(valid).message, Suspect)
        self.assertWireError(
            head(SUSPECT) + u16(3) + name(b"a") + name(b"b"), TruncatedFrameError
        )
        self.assertWireError(
            head(SUSPECT) + u16(1) + name(b"a") + name(b"b"), TrailingBytesError
        )

    def test_payload_past_end(self) -> None:
        raw = (
            head(ACCEPT)
            + ballot(1, b"a")
            + names()
            + stamps()
            + stamps()
            + u16(0)
            + u16(0)
            + u32(1)
            + name(b"a")
            + u64(1)
            + u32(3)
            + b"hi"
        )
        self.assertWireError(raw, TruncatedFrameError)
        self.assertIsInstance(decode_control(raw + b"!").message, Accept)

    def test_unsorted_or_repeated_names(self) -> None:
        for bad in [names(b"b", b"a"), names(b"a", b"a"), names(b"a", b"c", b"b")]:
            self.assertWireError(head(SUSPECT) + bad, BadFieldError)
            self.assertWireError(head(GONE) + u32(2) + bad, BadFieldError)
            self.assertWireError(
                head(PROPOSE) + ballot(1, b"a") + bad + stamps(), BadFieldError
            )
            proposal = bad + stamps() + stamps()
            self.assertWireError(
                head(DECIDE) + ballot(1, b"a") + proposal + u32(0), BadFieldError
            )

    def test_unsorted_or_repeated_stamps(self) -> None:
        for bad in [
            stamps((b"b", 1), (b"a", 1)),
            stamps((b"a", 1), (b"a", 2)),
        ]:
            self.assertWireError(head(INQUIRE) + bad, BadFieldError)
            for proposal in [names() + bad + stamps(), names() + stamps() + bad]:
                self.assertWireError(
                    head(ACCEPT) + ballot(1, b"a") + proposal + u32(0), BadFieldError
                )

    def test_sorted_by_code_point(self) -> None:
        """
        Names sort as Python sorts strings, which is also the order of their
        UTF-8 bytes.
        """
        ordered = ("Z", "a", "é", "\U0001f600")
        self.assertEqual(tuple(sorted(ordered)), ordered)
        raw = head(SUSPECT) + names(*(n.encode() for n in ordered))
        self.assertEqual(decode_control(raw).message, Suspect(1, ordered))

    def test_bad_names(self) -> None:
        for bad, kind in [
            (b"", BadFieldError),
            (b"x" * (MAX_NAME + 1), BadFieldError),
            (b"\xff", BadFieldError),
            (b"\xed\xa0\x80", BadFieldError),  # a surrogate
            (b"\xc0\x80", BadFieldError),  # an overlong NUL
        ]:
            self.assertWireError(head(SUSPECT) + names(bad), kind)
            self.assertWireError(head(INQUIRE) + stamps((bad, 1)), kind)
            message = u32(1) + name(bad) + u64(1) + u32(0)
            self.assertWireError(
                head(PROMISE) + ballot(1, b"a") + stamps() + message + u8(0), kind
            )
            self.assertWireError(head(ACCEPTED) + ballot(1, bad), kind)

    def test_error_names_the_field(self) -> None:
        error = self.assertWireError(head(INQUIRE) + stamps((b"", 1)), BadFieldError)
        self.assertIn("held stamps", str(error))

    def test_length_before_content(self) -> None:
        """
        A name whose length runs past the end is truncated even if that
        length is also too long.
        """
        self.assertWireError(
            head(SUSPECT) + u16(1) + u16(300) + b"x" * 10, TruncatedFrameError
        )

    def test_bad_ballots(self) -> None:
        for bad in [ballot(0, b"a"), ballot(1, b"")]:
            self.assertWireError(head(ACCEPTED) + bad, BadFieldError)
            self.assertWireError(head(REJECT) + ballot(1, b"a") + bad, BadFieldError)
        raw = head(REJECT) + ballot(1, b"a") + ballot(0, b"")
        self.assertEqual(decode_control(raw).message, Reject(1, (1, "a"), NO_BALLOT))

    def test_clocks_above_max(self) -> None:
        self.assertWireError(
            head(INQUIRE) + stamps((b"a", MAX_CLOCK + 1)), BadFieldError
        )
        self.assertWireError(head(INQUIRE) + stamps((b"a", MAX_U64)), BadFieldError)
        message = u32(1) + name(b"a") + u64(MAX_CLOCK + 1) + u32(0)
        self.assertWireError(
            head(PROMISE) + ballot(1, b"a") + stamps() + message + u8(0),
            BadFieldError,
        )
        top = head(INQUIRE) + stamps((b"a", MAX_CLOCK))
        self.assertEqual(decode_control(top).message, Inquire(1, (("a", MAX_CLOCK),)))

    def test_accepted_flag(self) -> None:
        promise = head(PROMISE) + ballot(1, b"a") + stamps() + u32(0)
        for flag in [2, 255]:
            self.assertWireError(promise + u8(flag), BadFieldError)
        self.assertWireError(promise + u8(1), TruncatedFrameError)

    def test_bad_addresses(self) -> None:
        """
        An address in a list is 1 to L{MAX_ADDRESS} bytes of UTF-8, the list
        sorted by name; a joiner's own address may be empty.
        """
        gone = head(GONE) + u32(4) + names(b"a")
        for bad in [b"", b"x" * (MAX_ADDRESS + 1), b"\xff", b"\xed\xa0\x80"]:
            entry = name(b"a") + u16(len(bad)) + bad
            self.assertWireError(gone + u16(1) + entry, BadFieldError)
            if bad:
                self.assertWireError(
                    head(JOIN) + u64(1) + u16(len(bad)) + bad, BadFieldError
                )
        good = name(b"a") + u16(1) + b"x"
        self.assertWireError(gone + u16(2) + good + good, BadFieldError)
        top = b"x" * MAX_ADDRESS
        raw = head(JOIN) + u64(1) + u16(len(top)) + top
        self.assertEqual(decode_control(raw).message, Join(1, 1, top.decode()))
        self.assertEqual(
            decode_control(head(JOIN) + u64(1) + u16(0)).message, Join(1, 1, "")
        )


class EncodeErrorTests(SynchronousTestCase):
    """
    The encoder refuses what the decoder would refuse, with C{ValueError}.
    """

    def assertRefused(self, message: Control, seq: int = 1, ack: int = 0) -> None:
        with self.assertRaises(ValueError) as caught:
            encode_control(ControlFrame(seq, ack, message))
        self.assertTrue(str(caught.exception))

    def test_names(self) -> None:
        for bad in [("b", "a"), ("a", "a"), ("",), ("x" * 256,), ("\udc80",)]:
            self.assertRefused(Suspect(1, bad))
            self.assertRefused(Gone(1, View(2, bad)))
            self.assertRefused(
                Decide(1, (1, "a"), Proposal(bad, (), ()), ()),
            )

    def test_stamps(self) -> None:
        for bad in [(("b", 1), ("a", 1)), (("a", 1), ("a", 2)), (("a", 2**62),)]:
            self.assertRefused(Inquire(1, bad))
            self.assertRefused(Accept(1, (1, "a"), Proposal((), (), bad), ()))
        self.assertRefused(Inquire(1, (("a", -1),)))

    def test_messages(self) -> None:
        for bad in [Message("", 1, b""), Message("a", MAX_CLOCK + 1, b"")]:
            self.assertRefused(Promise(1, (1, "a"), (), (bad,), None))

    def test_numbers(self) -> None:
        self.assertRefused(Suspect(MAX_VIEW + 1, ()))
        self.assertRefused(Suspect(-1, ()))
        self.assertRefused(Gone(1, View(MAX_VIEW + 1, ())))
        self.assertRefused(Suspect(1, ()), seq=MAX_U64 + 1)
        self.assertRefused(Suspect(1, ()), ack=-1)

    def test_addresses(self) -> None:
        latest = View(2, ("a", "b"))
        for bad in [
            (("a", ""),),
            (("a", "x" * (MAX_ADDRESS + 1)),),
            (("a", "\udc80"),),
            (("b", "x"), ("a", "x")),
            (("a", "x"), ("a", "y")),
            (("", "x"),),
        ]:
            self.assertRefused(Gone(1, latest, bad))
            self.assertRefused(Welcome(1, latest, 1, 1, bad))
            proposal = Proposal(("a", "b"), (), (), addresses=bad)
            self.assertRefused(Decide(1, (1, "a"), proposal, ()))
        self.assertRefused(Join(1, 1, "x" * (MAX_ADDRESS + 1)))
        self.assertRefused(Join(1, 1, "\udc80"))

    def test_ballots(self) -> None:
        for bad in [(0, "a"), (1, ""), (MAX_U64 + 1, "a"), (-1, "a")]:
            self.assertRefused(Accepted(1, bad))
            self.assertRefused(Reject(1, (1, "a"), bad))
        for bad in [(0, "a"), (1, "")]:
            self.assertRefused(
                Promise(1, (1, "a"), (), (), (bad, Proposal((), (), ())))
            )


# Strategies.  At most 63 characters is at most 252 bytes of UTF-8.
member_names = st.one_of(
    st.sampled_from(["a", "b", "c", "d", "é"]),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=63),
)
views = st.integers(0, MAX_VIEW)
clocks = st.one_of(st.integers(0, 20), st.integers(0, MAX_CLOCK))
name_lists = st.lists(member_names, unique=True, max_size=4).map(
    lambda ns: tuple(sorted(ns))
)
stamp_lists = st.dictionaries(member_names, clocks, max_size=4).map(
    lambda d: tuple(sorted(d.items()))
)
ballots: st.SearchStrategy[Ballot] = st.one_of(
    st.just(NO_BALLOT),
    st.tuples(st.one_of(st.integers(1, 9), st.integers(1, MAX_U64)), member_names),
)
message_lists = st.lists(
    st.builds(Message, member_names, clocks, st.binary(max_size=32)), max_size=4
).map(tuple)
address_lists = st.dictionaries(
    member_names,
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    max_size=3,
).map(lambda d: tuple(sorted(d.items())))
proposals = st.builds(
    Proposal, name_lists, stamp_lists, stamp_lists, addresses=address_lists
)
controls: st.SearchStrategy[Control] = st.one_of(
    st.builds(Suspect, views, name_lists),
    st.builds(Propose, views, ballots, name_lists, stamp_lists),
    st.builds(
        Promise,
        views,
        ballots,
        stamp_lists,
        message_lists,
        st.one_of(st.none(), st.tuples(ballots, proposals)),
    ),
    st.builds(Reject, views, ballots, ballots),
    st.builds(Accept, views, ballots, proposals, message_lists),
    st.builds(Accepted, views, ballots),
    st.builds(Decide, views, ballots, proposals, message_lists),
    st.builds(Inquire, views, stamp_lists),
    st.builds(Gone, views, st.builds(View, views, name_lists), address_lists),
)
counters = st.one_of(st.integers(0, 9), st.integers(0, MAX_U64))
control_frames = st.builds(ControlFrame, counters, counters, controls)


class PropertyTests(SynchronousTestCase):
    """
    Random control messages round-trip; random and damaged bytes never
    raise anything but a L{WireError}, and what decodes is canonical.
    """

    def assertDecodesOrWireError(self, raw: bytes) -> None:
        """
        C{raw} either decodes, or raises a L{WireError}; any other exception
        fails the test.  What decodes encodes back to C{raw}: there is one
        encoding of each frame.
        """
        try:
            decoded = decode_control(raw)
        except WireError:
            with self.assertRaises(WireError):
                decode_any(raw)
            return
        self.assertEqual(encode_control(decoded), raw)
        self.assertEqual(decode_any(raw), decoded)

    @settings(max_examples=300, deadline=None)
    @given(control_frames)
    def test_roundTrip(self, control: ControlFrame) -> None:
        raw = encode_control(control)
        self.assertEqual(decode_control(raw), control)
        self.assertEqual(decode_any(raw), control)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200))
    def test_arbitraryBytes(self, raw: bytes) -> None:
        self.assertDecodesOrWireError(raw)

    @settings(max_examples=500, deadline=None)
    @given(st.integers(0, 10), st.binary(max_size=200))
    def test_arbitraryBodies(self, kind: int, body: bytes) -> None:
        """
        Random bytes after a valid head and (mostly) valid kind, so that
        the fuzz gets past the first checks.
        """
        self.assertDecodesOrWireError(
            u8(VERSION) + u8(CONTROL) + u64(1) + u64(0) + u8(kind) + body
        )

    @settings(max_examples=500, deadline=None)
    @given(control_frames, st.lists(mutations, min_size=1, max_size=4))
    def test_mutatedFrames(
        self, control: ControlFrame, changes: list[tuple[str, int, int]]
    ) -> None:
        self.assertDecodesOrWireError(mutate(encode_control(control), changes))

    @settings(max_examples=200, deadline=None)
    @given(control_frames, st.data())
    def test_everyCut(self, control: ControlFrame, data: st.DataObject) -> None:
        raw = encode_control(control)
        cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1), label="cut")
        with self.assertRaises(TruncatedFrameError):
            decode_control(raw[:cut])


class JoinMessageTests(SynchronousTestCase):
    """
    The messages of joining and catching up refuse what they cannot carry.
    """

    def test_bad_record_kind(self) -> None:
        raw = encode_control(frame(Records(4, (Delivery(1, "a", 1, b""),), True)))
        kind_at = CONTROL_HEAD + 4 + 4
        for bad in (0, 3, 255):
            broken = raw[:kind_at] + u8(bad) + raw[kind_at + 1 :]
            with self.assertRaises(BadFieldError):
                decode_control(broken)

    def test_bad_flags(self) -> None:
        done = encode_control(frame(Records(4, (), True)))
        with self.assertRaises(BadFieldError):
            decode_control(done[:-1] + u8(2))
        fetch = encode_control(frame(Fetch(4, StreamPosition())))
        with self.assertRaises(BadFieldError):
            decode_control(fetch[:-1] + u8(7))

    def test_reason_not_utf8(self) -> None:
        for message in (NoRecords(4, 1, "ab"), NoState(4, "ab")):
            raw = encode_control(frame(message))
            with self.assertRaises(BadFieldError):
                decode_control(raw[:-2] + b"\xff\xfe")

    def test_state_chunk_cut_short(self) -> None:
        """
        A STATE message whose data is shorter than its length says is
        truncated; a done flag other than 0 or 1 is refused.
        """
        raw = encode_control(frame(StateChunk(4, StreamPosition(), 0, b"abcdef", True)))
        with self.assertRaises(TruncatedFrameError):
            decode_control(raw[:-3])
        with self.assertRaises(BadFieldError):
            decode_control(raw[:-1] + u8(2))
