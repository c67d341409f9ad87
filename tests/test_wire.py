"""
Tests for L{isis_twisted.core.wire}: the frame codec.
"""

from __future__ import annotations

import time
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import Frame
from isis_twisted.core.wire import (
    ACK,
    CONTROL,
    DATA,
    DATA_OVERHEAD,
    HELLO,
    MAX_MEMBERS,
    MAX_NAME,
    MAX_U64,
    MESSAGE_OVERHEAD,
    RECEIPT_SIZE,
    REFUSE,
    REFUSED_GROUP,
    REFUSED_SECRET,
    VERSION,
    Ack,
    Auth,
    BadFieldError,
    Data,
    Hello,
    Here,
    Refuse,
    TrailingBytesError,
    TruncatedFrameError,
    UnknownFrameTypeError,
    UnsupportedVersionError,
    Who,
    WireError,
    WireFrame,
    data_head,
    data_overhead,
    decode,
    encode,
    encode_ack,
    encode_body,
    encode_data,
    encode_hello,
    encode_refuse,
)

MAX_U32 = (1 << 32) - 1
MIB = 1 << 20


def u8(n: int) -> bytes:
    return n.to_bytes(1, "big")


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def name(raw: bytes) -> bytes:
    """
    A length-prefixed name field holding exactly C{raw}.
    """
    return u16(len(raw)) + raw


def hello_bytes(
    group: bytes,
    member: bytes,
    peer: bytes = b"p",
    incarnation: int = 1,
    members: tuple[bytes, ...] = (),
) -> bytes:
    """
    A HELLO frame built by hand, so its names may be invalid.
    """
    return (
        u8(VERSION)
        + u8(HELLO)
        + name(group)
        + name(member)
        + name(peer)
        + u64(incarnation)
        + u64(0)
        + u32(0)
        + u16(len(members))
        + b"".join(map(name, members))
    )


def bad_hellos(bad: bytes) -> list[bytes]:
    """
    HELLO frames with C{bad} in each of the three name positions in turn,
    the other names valid.
    """
    return [
        hello_bytes(bad, b"m", b"p"),
        hello_bytes(b"g", bad, b"p"),
        hello_bytes(b"g", b"m", bad),
    ]


# One frame of each type, small enough to cut at every byte.
SAMPLES: list[WireFrame] = [
    Hello("chat", "alice", "bob", 0x0123456789ABCDEF, 7),
    Hello("gröup", "mémber-☃-𝄞", "𝄞-pëer", MAX_U64, MAX_U64),
    Hello("chat", "alice", "bob", 1, 2, b"", MAX_U32, ("alice", "bob", "é")),
    Data(3, 2, Frame(1, 9, ((8, b"hi"), (9, b"")))),
    Data(1, 0, Frame(0, 0, ())),
    Data(MAX_U64, MAX_U64, Frame(MAX_U32, MAX_U64, ((MAX_U64, b"\x00\xff"),))),
    Ack(0),
    Ack(MAX_U64),
    Refuse(""),
    Refuse("wrong group: 'chat' ≠ 'news'"),
]


class RoundTripTests(SynchronousTestCase):
    """
    Whatever is encoded decodes to an equal frame.
    """

    def assertRoundTrips(self, frame: WireFrame) -> bytes:
        raw = encode(frame)
        self.assertIsInstance(raw, bytes)
        self.assertEqual(decode(raw), frame)
        return raw

    def test_samples(self) -> None:
        for frame in SAMPLES:
            self.assertRoundTrips(frame)

    def test_hello(self) -> None:
        self.assertRoundTrips(Hello("g", "m", "p", 0, 0))
        self.assertRoundTrips(Hello("g", "m", "p", MAX_U64, MAX_U64))

    def test_hello_non_ascii_names(self) -> None:
        for group, member, peer in [
            ("Gruppe-ä", "Zoë", "Chloé"),
            ("组", "成员", "同伴"),
            ("🙂", "𝄞𝄞", "☃"),
            ("a\x00b", "\u200b", "\x00"),
        ]:
            self.assertRoundTrips(Hello(group, member, peer, 42, 17))

    def test_hello_longest_names(self) -> None:
        """
        Names of exactly L{MAX_NAME} bytes, counted in UTF-8, are fine.
        """
        ascii_name = "a" * MAX_NAME
        wide_name = "é" * 127 + "a"
        self.assertEqual(len(wide_name.encode("utf-8")), MAX_NAME)
        raw = self.assertRoundTrips(Hello(ascii_name, wide_name, ascii_name, 1, 2))
        self.assertEqual(len(raw), 2 + 3 * (2 + MAX_NAME) + 22)
        raw = self.assertRoundTrips(Hello(wide_name, ascii_name, wide_name, 1, 2))
        self.assertEqual(len(raw), 2 + 3 * (2 + MAX_NAME) + 22)
        members = (ascii_name, wide_name)
        raw = self.assertRoundTrips(Hello("g", "m", "p", 1, 2, b"", 0, members))
        self.assertEqual(len(raw), 2 + 3 * 3 + 22 + 2 * (2 + MAX_NAME))

    def test_hello_member_lists(self) -> None:
        """
        A HELLO carries its sender's view id and member list, in sorted
        order, non-ASCII names included; an empty list is a list too.
        """
        for view, members in [
            (0, ()),
            (1, ("a",)),
            (7, ("alice", "bob", "carol")),
            (MAX_U32, ("Zoë", "a", "é", "𝄞")),
            (3, tuple(f"m{i:04}" for i in range(300))),
        ]:
            hello = Hello("g", "a", "b", 1, 2, b"", view, members)
            self.assertRoundTrips(hello)
            self.assertRoundTrips(attrs.evolve(hello, nonce=b"n" * 32))

    def test_data_no_messages(self) -> None:
        raw = self.assertRoundTrips(Data(1, 0, Frame(0, 5)))
        self.assertEqual(len(raw), DATA_OVERHEAD)

    def test_data_empty_payloads(self) -> None:
        frame = Frame(2, 12, ((10, b""), (11, b""), (12, b"")))
        raw = self.assertRoundTrips(Data(4, 3, frame))
        self.assertEqual(len(raw), DATA_OVERHEAD + 3 * MESSAGE_OVERHEAD)

    def test_data_one_mebibyte_payload(self) -> None:
        payload = bytes(range(256)) * (MIB // 256)
        frame = Frame(0, 2, ((1, b"x"), (2, payload)))
        raw = self.assertRoundTrips(Data(9, 8, frame))
        self.assertEqual(len(raw), DATA_OVERHEAD + 2 * MESSAGE_OVERHEAD + 1 + MIB)

    def test_data_max_values(self) -> None:
        frame = Frame(MAX_U32, MAX_U64, ((MAX_U64 - 1, b"a"), (MAX_U64, b"b")))
        self.assertRoundTrips(Data(MAX_U64, MAX_U64, frame))

    def test_data_payloads_are_bytes(self) -> None:
        result = decode(encode(Data(1, 0, Frame(0, 1, ((1, b"abc"),)))))
        assert isinstance(result, Data)
        self.assertIs(type(result.frame.messages[0][1]), bytes)
        self.assertIs(type(result.frame.messages), tuple)

    def test_ack(self) -> None:
        for value in [0, 1, MAX_U64]:
            self.assertRoundTrips(Ack(value))

    def test_refuse(self) -> None:
        for reason in ["", "no", "gruppe ≠ group 🙂", "x" * 1000]:
            for code in [0, REFUSED_GROUP, REFUSED_SECRET, 255]:
                self.assertRoundTrips(Refuse(reason, code))

    def test_refuse_code_out_of_range(self) -> None:
        """
        A code must fit its byte.
        """
        for code in [-1, 256]:
            with self.assertRaises(ValueError):
                encode(Refuse("r", code))

    def test_refuse_without_code(self) -> None:
        """
        A REFUSE that ends after its reason (as nodes sent before the code)
        decodes with code 0.
        """
        raw = u8(VERSION) + u8(REFUSE) + u16(2) + b"no"
        self.assertEqual(decode(raw), Refuse("no", 0))
        self.assertEqual(encode(Refuse("no")), raw + b"\x00")

    def test_refuse_long_reason_cut(self) -> None:
        """
        A reason longer than 1,000 bytes of UTF-8 is cut to 1,000 bytes; the
        frame still decodes.
        """
        raw = encode(Refuse("y" * 5000))
        self.assertEqual(len(raw), 5 + 1000)
        self.assertEqual(decode(raw), Refuse("y" * 1000))

    def test_refuse_cut_inside_character(self) -> None:
        """
        A cut that splits a character leaves a frame that still decodes; the
        broken character becomes U+FFFD.
        """
        raw = encode(Refuse("a" + "é" * 600))
        self.assertEqual(len(raw), 5 + 1000)
        self.assertEqual(decode(raw), Refuse("a" + "é" * 499 + "\ufffd"))

    def test_encode_dispatch(self) -> None:
        """
        L{encode} gives the same bytes as the encoder of each frame type.
        """
        hello = Hello("g", "m", "p", 1, 2)
        data = Data(1, 0, Frame(0, 1, ((1, b"p"),)))
        self.assertEqual(encode(hello), encode_hello(hello))
        self.assertEqual(encode(data), encode_data(data))
        self.assertEqual(encode(Ack(5)), encode_ack(Ack(5)))
        self.assertEqual(encode(Refuse("r")), encode_refuse(Refuse("r")))

    def test_head_plus_body(self) -> None:
        """
        A DATA frame may be built from a per-link head and a shared body.
        """
        frames = [
            Frame(0, 0),
            Frame(3, 10, ((9, b""), (10, b"payload"))),
            Frame(MAX_U32, MAX_U64, ((MAX_U64, b"\xff" * 100),)),
        ]
        for frame in frames:
            body = encode_body(frame)
            for seq, ack in [(1, 0), (2, 7), (MAX_U64, MAX_U64)]:
                whole = encode_data(Data(seq, ack, frame))
                self.assertEqual(data_head(seq, ack, frame) + body, whole)
                self.assertEqual(len(data_head(seq, ack, frame)), DATA_OVERHEAD - 2)
                self.assertEqual(decode(whole), Data(seq, ack, frame))

    def test_body_of_no_messages_is_the_receipt_count(self) -> None:
        self.assertEqual(encode_body(Frame(1, 2)), b"\x00\x00")

    def test_overheads(self) -> None:
        self.assertEqual(DATA_OVERHEAD, 36)
        self.assertEqual(MESSAGE_OVERHEAD, 12)
        self.assertEqual(RECEIPT_SIZE, 8)
        self.assertEqual(data_overhead(1), 36)
        self.assertEqual(data_overhead(5), 36 + 4 * 8)

    def test_data_receipts(self) -> None:
        """
        Receipt horizons round-trip, including none and the largest values,
        and each costs L{RECEIPT_SIZE} bytes.
        """
        for received in [(), (0,), (1, MAX_U64), tuple(range(6))]:
            frame = Frame(0, 9, ((9, b"p"),), received)
            raw = self.assertRoundTrips(Data(1, 0, frame))
            self.assertEqual(
                len(raw),
                DATA_OVERHEAD + MESSAGE_OVERHEAD + 1 + RECEIPT_SIZE * len(received),
            )


DOC = Path(__file__).resolve().parent.parent / "docs" / "wire.md"

# The golden frames, written out byte by byte from the layout in the
# module docstring (and docs/wire.md).
GOLDEN_HELLO = Hello(
    "chat", "alice", "bob", 0x0123456789ABCDEF, 7, b"", 1, ("alice", "bob", "carol")
)
GOLDEN_HELLO_BYTES = bytes.fromhex(
    "02"  # version
    "01"  # type: HELLO
    "0004"  # group length: 4
    "63686174"  # group: "chat"
    "0005"  # member length: 5
    "616c696365"  # member: "alice"
    "0003"  # peer length: 3
    "626f62"  # peer: "bob"
    "0123456789abcdef"  # incarnation
    "0000000000000007"  # received
    "00000001"  # view
    "0003"  # members: 3
    "0005"  # first member's length: 5
    "616c696365"  # "alice"
    "0003"  # second member's length: 3
    "626f62"  # "bob"
    "0005"  # third member's length: 5
    "6361726f6c"  # "carol"
)

GOLDEN_DATA = Data(3, 2, Frame(1, 9, ((8, b"hi"), (9, b"")), (5, 0x0102)))
GOLDEN_DATA_BYTES = bytes.fromhex(
    "02"  # version
    "02"  # type: DATA
    "0000000000000003"  # seq
    "0000000000000002"  # ack
    "00000001"  # view
    "0000000000000009"  # clock
    "00000002"  # count
    "0000000000000008"  # message 1: stamp 8
    "00000002"  # message 1: length 2
    "6869"  # message 1: payload "hi"
    "0000000000000009"  # message 2: stamp 9
    "00000000"  # message 2: length 0
    "0002"  # receipts: 2
    "0000000000000005"  # receipt horizon of the first other member
    "0000000000000102"  # receipt horizon of the second
)

GOLDEN_ACK = Ack(258)
GOLDEN_ACK_BYTES = bytes.fromhex(
    "02"  # version
    "03"  # type: ACK
    "0000000000000102"  # ack
)

GOLDEN_REFUSE = Refuse("né", REFUSED_SECRET)
GOLDEN_REFUSE_BYTES = bytes.fromhex(
    "02"  # version
    "04"  # type: REFUSE
    "0003"  # reason length: 3
    "6ec3a9"  # reason: "né"
    "02"  # code: REFUSED_SECRET
)


class GoldenTests(SynchronousTestCase):
    """
    The exact bytes of known frames: any change to the format fails here.
    """

    def assertGolden(self, frame: WireFrame, raw: bytes) -> None:
        self.assertEqual(encode(frame).hex(), raw.hex())
        self.assertEqual(decode(raw), frame)

    def test_constants(self) -> None:
        self.assertEqual(VERSION, 2)
        self.assertEqual((HELLO, DATA, ACK, REFUSE), (1, 2, 3, 4))
        self.assertEqual(MAX_NAME, 255)
        self.assertEqual(MAX_U64, 2**64 - 1)

    def test_hello(self) -> None:
        self.assertEqual(len(GOLDEN_HELLO_BYTES), 61)
        self.assertGolden(GOLDEN_HELLO, GOLDEN_HELLO_BYTES)

    def test_documented(self) -> None:
        """
        docs/wire.md shows the golden HELLO's bytes, field by field and as a
        hex dump with its length prefix.
        """
        section = DOC.read_text("utf-8").split("### HELLO")[1].split("### DATA")[0]
        blocks = section.split("```")[1::2]
        fields = bytes.fromhex(
            "".join(line[:26] for line in blocks[0].splitlines() if line.strip())
        )
        self.assertEqual(fields, GOLDEN_HELLO_BYTES)
        dump = bytes.fromhex(
            "".join(line[10:59] for line in blocks[1].splitlines() if line[:1] == "0")
        )
        self.assertEqual(dump, u32(len(GOLDEN_HELLO_BYTES)) + GOLDEN_HELLO_BYTES)

    def test_data(self) -> None:
        self.assertEqual(len(GOLDEN_DATA_BYTES), 78)
        self.assertGolden(GOLDEN_DATA, GOLDEN_DATA_BYTES)
        frame = GOLDEN_DATA.frame
        self.assertEqual(data_head(3, 2, frame), GOLDEN_DATA_BYTES[:34])
        self.assertEqual(encode_body(frame), GOLDEN_DATA_BYTES[34:])

    def test_ack(self) -> None:
        self.assertGolden(GOLDEN_ACK, GOLDEN_ACK_BYTES)

    def test_refuse(self) -> None:
        self.assertGolden(GOLDEN_REFUSE, GOLDEN_REFUSE_BYTES)


class DecodeErrorTests(SynchronousTestCase):
    """
    Every problem raises the L{WireError} subclass that names it.
    """

    def assertWireError(self, raw: bytes, kind: type[WireError]) -> WireError:
        """
        Decoding C{raw} raises exactly C{kind}, with a message.
        """
        try:
            result = decode(raw)
        except WireError as e:
            self.assertIs(type(e), kind, f"{raw!r}: {e!r}")
            self.assertTrue(str(e))
            return e
        self.fail(f"{raw!r} decoded to {result!r}, expected {kind.__name__}")

    def test_hierarchy(self) -> None:
        for kind in [
            UnsupportedVersionError,
            UnknownFrameTypeError,
            TruncatedFrameError,
            TrailingBytesError,
            BadFieldError,
        ]:
            self.assertTrue(issubclass(kind, WireError))
        self.assertTrue(issubclass(WireError, Exception))
        self.assertFalse(issubclass(WireError, ValueError))

    def test_empty(self) -> None:
        self.assertWireError(b"", TruncatedFrameError)

    def test_one_byte(self) -> None:
        for byte in [b"\x00", b"\x01", b"\x02", b"\xff"]:
            self.assertWireError(byte, TruncatedFrameError)

    def test_wrong_version(self) -> None:
        for version in [0, 1, 3, 255]:
            for frame in SAMPLES:
                raw = u8(version) + encode(frame)[1:]
                self.assertWireError(raw, UnsupportedVersionError)
            self.assertWireError(u8(version) + u8(HELLO), UnsupportedVersionError)

    def test_version_checked_before_type(self) -> None:
        self.assertWireError(b"\x01\x09", UnsupportedVersionError)

    def test_unknown_type(self) -> None:
        for kind in [0, 9, 127, 255]:
            self.assertWireError(u8(VERSION) + u8(kind), UnknownFrameTypeError)
            self.assertWireError(
                u8(VERSION) + u8(kind) + b"\x00" * 40, UnknownFrameTypeError
            )

    def test_control_type_not_for_links(self) -> None:
        """
        Type 6 is CONTROL (L{isis_twisted.core.control}); L{decode}, which links
        use, refuses it by name until links carry it.
        """
        self.assertEqual(CONTROL, 6)
        error = self.assertWireError(u8(VERSION) + u8(CONTROL), UnknownFrameTypeError)
        self.assertIn("CONTROL", str(error))

    def test_truncated_at_every_cut(self) -> None:
        """
        Every proper prefix of a valid frame of every type is truncated.
        """
        for frame in SAMPLES:
            raw = encode(frame)
            for cut in range(len(raw)):
                if isinstance(frame, Refuse) and cut == len(raw) - 1:
                    # Without its code, a REFUSE is one of an older node.
                    self.assertEqual(decode(raw[:cut]), Refuse(frame.reason))
                    continue
                self.assertWireError(raw[:cut], TruncatedFrameError)

    def test_truncated_large_data(self) -> None:
        """
        A DATA frame with a large payload, cut inside the payload.
        """
        raw = encode(Data(1, 0, Frame(0, 1, ((1, b"z" * MIB),))))
        for cut in [DATA_OVERHEAD + MESSAGE_OVERHEAD, len(raw) // 2, len(raw) - 1]:
            self.assertWireError(raw[:cut], TruncatedFrameError)

    def test_trailing_bytes(self) -> None:
        for frame in SAMPLES:
            raw = encode(frame)
            if isinstance(frame, Hello) and not frame.nonce:
                # After a HELLO's counters comes the optional nonce, so what
                # follows is read as one (SecretFrameTests covers it).
                continue
            for extra in [b"\x00", b"\xff", b"\x01\x01", b"\x00" * 12]:
                self.assertWireError(raw + extra, TrailingBytesError)

    def test_refuse_length_short_of_end(self) -> None:
        """
        One byte after the reason is its code; two are one too many.
        """
        raw = u8(VERSION) + u8(REFUSE) + u16(2) + b"abcd"
        self.assertWireError(raw, TrailingBytesError)

    def test_absurd_message_count(self) -> None:
        """
        A count far beyond what the bytes can hold fails at once, without
        allocating anything for it.
        """
        head = data_head(1, 0, Frame(0, 1))[:-4]
        for count in [MAX_U32, 2**31, 1000]:
            raw = head + u32(count) + encode_body(Frame(0, 1, ((1, b"ab"),)))
            started = time.perf_counter()
            error = self.assertWireError(raw, TruncatedFrameError)
            self.assertLess(time.perf_counter() - started, 0.1)
            self.assertIn(str(count), str(error))

    def test_count_too_high_by_one(self) -> None:
        """
        A count one too high, with enough bytes left for the claimed number of
        message heads, runs into the end inside a message.
        """
        body = encode_body(Frame(0, 2, ((1, b"x" * 12), (2, b""))))
        head = data_head(1, 0, Frame(0, 2))[:-4]
        self.assertWireError(head + u32(3) + body, TruncatedFrameError)
        self.assertEqual(
            decode(head + u32(2) + body),
            Data(1, 0, Frame(0, 2, ((1, b"x" * 12), (2, b"")))),
        )

    def test_count_too_low(self) -> None:
        body = encode_body(Frame(0, 2, ((1, b"x"), (2, b"y"))))
        head = data_head(1, 0, Frame(0, 2))[:-4]
        self.assertWireError(head + u32(1) + body, TrailingBytesError)
        self.assertWireError(head + u32(0) + body, TrailingBytesError)

    def test_payload_length_past_end(self) -> None:
        head = data_head(1, 0, Frame(0, 1, ((1, b""),)))
        for length in [1, 100, MAX_U32]:
            raw = head + u64(1) + u32(length)
            self.assertWireError(raw, TruncatedFrameError)
            self.assertWireError(raw + b"a" * min(length - 1, 99), TruncatedFrameError)

    def test_hand_built_hello(self) -> None:
        """
        L{hello_bytes} builds a valid HELLO from valid names, so the name
        tests below fail only on the name they break.
        """
        self.assertEqual(
            decode(hello_bytes(b"g", b"m", b"p", 5)), Hello("g", "m", "p", 5, 0)
        )
        self.assertEqual(
            decode(hello_bytes(b"g", b"m", b"p", 5, (b"a", b"b"))),
            Hello("g", "m", "p", 5, 0, b"", 0, ("a", "b")),
        )

    def test_bad_member_lists(self) -> None:
        """
        A member list's names are names (1 to 255 bytes of UTF-8), in
        strictly increasing order: one encoding per list.
        """
        for members in [
            (b"",),
            (b"a", b""),
            (b"a" * (MAX_NAME + 1),),
            (b"\xff",),
            (b"b", b"a"),
            (b"a", b"a"),
            (b"a", b"c", b"b"),
            ("é".encode(), b"z"),
        ]:
            error = self.assertWireError(
                hello_bytes(b"g", b"m", b"p", 1, members), BadFieldError
            )
            self.assertIn("member list", str(error))

    def test_member_list_cut_short(self) -> None:
        """
        A count of names beyond what the bytes hold, or a name cut short, is
        truncated, however large the count.
        """
        whole = hello_bytes(b"g", b"m", b"p", 1, (b"a", b"bc"))
        head = whole[: -(2 + 2 + 1 + 2 + 2)]
        for count in [3, 1000, 65535]:
            self.assertWireError(head + u16(count) + whole[-7:], TruncatedFrameError)
        self.assertWireError(whole[:-1], TruncatedFrameError)

    def test_empty_names(self) -> None:
        for raw in bad_hellos(b""):
            error = self.assertWireError(raw, BadFieldError)
            self.assertIn("0 bytes long", str(error))
        self.assertWireError(hello_bytes(b"", b"", b""), BadFieldError)

    def test_bad_name_named(self) -> None:
        """
        The error names the field that is wrong: group, member or peer.
        """
        for raw, what in zip(bad_hellos(b""), ["group", "member", "peer"], strict=True):
            error = self.assertWireError(raw, BadFieldError)
            self.assertTrue(str(error).startswith(f"the {what} "), str(error))

    def test_too_long_names(self) -> None:
        long = b"a" * (MAX_NAME + 1)
        for raw in bad_hellos(long) + bad_hellos(b"a" * 65535):
            self.assertWireError(raw, BadFieldError)
        for raw in bad_hellos(b"a" * MAX_NAME):
            self.assertIsInstance(decode(raw), Hello)

    def test_name_length_past_end(self) -> None:
        """
        A name whose length runs past the end of the frame is truncated, even
        when that length is also above L{MAX_NAME}, in every name position.
        """
        prefix = u8(VERSION) + u8(HELLO)
        for names_before in [b"", name(b"g"), name(b"g") + name(b"m")]:
            for size in [1, 10, MAX_NAME + 1, 65535]:
                raw = prefix + names_before + u16(size) + b"x" * (size - 1)
                self.assertWireError(raw, TruncatedFrameError)

    def test_hello_counters_missing(self) -> None:
        """
        A HELLO whose three names are whole but whose counters are cut short
        is truncated, not a bad field.
        """
        whole = hello_bytes(b"g", b"m", b"p")
        names_end = 2 + 3 * (2 + 1)
        self.assertEqual(len(whole), names_end + 22)
        for cut in [names_end, names_end + 8, names_end + 16, len(whole) - 1]:
            error = self.assertWireError(whole[:cut], TruncatedFrameError)
            self.assertIn("counters", str(error))

    def test_invalid_utf8_names(self) -> None:
        for bad in [
            b"\xff",
            b"\x80",
            b"abc\xc3",  # cut inside a character
            b"\xc0\x80",  # overlong NUL
            b"\xed\xa0\x80",  # a surrogate
            b"\xf4\x90\x80\x80",  # above U+10FFFF
        ]:
            for raw in bad_hellos(bad):
                self.assertWireError(raw, BadFieldError)

    def test_refuse_reason_not_utf8(self) -> None:
        """
        A REFUSE reason is only words for a log: bytes that are not UTF-8 are
        replaced, not refused.
        """
        raw = u8(VERSION) + u8(REFUSE) + name(b"a\xffb")
        self.assertEqual(decode(raw), Refuse("a\ufffdb"))


class EncodeErrorTests(SynchronousTestCase):
    """
    The encoder refuses names the decoder would refuse.
    """

    def test_empty_names(self) -> None:
        with self.assertRaises(ValueError):
            encode(Hello("", "m", "p", 1, 0))
        with self.assertRaises(ValueError):
            encode(Hello("g", "", "p", 1, 0))
        with self.assertRaises(ValueError) as caught:
            encode(Hello("g", "m", "", 1, 0))
        self.assertIn("peer", str(caught.exception))

    def test_too_long_names(self) -> None:
        for long in ["a" * (MAX_NAME + 1), "é" * 128, "🙂" * 64]:
            self.assertGreater(len(long.encode("utf-8")), MAX_NAME)
            with self.assertRaises(ValueError):
                encode(Hello(long, "m", "p", 1, 0))
            with self.assertRaises(ValueError):
                encode_hello(Hello("g", long, "p", 1, 0))
            with self.assertRaises(ValueError):
                encode_hello(Hello("g", "m", long, 1, 0))

    def test_unencodable_names(self) -> None:
        with self.assertRaises(ValueError):
            encode(Hello("\ud800", "m", "p", 1, 0))
        with self.assertRaises(ValueError):
            encode(Hello("g", "m", "\udfff", 1, 0))

    def test_bad_member_lists(self) -> None:
        """
        The encoder refuses a member list the decoder would refuse: a bad
        name, an unsorted list, a repeated name, or too many names.
        """
        for members in [
            ("",),
            ("a" * (MAX_NAME + 1),),
            ("b", "a"),
            ("a", "a"),
            tuple(f"{i:05}" for i in range(MAX_MEMBERS + 1)),
        ]:
            with self.assertRaises(ValueError) as caught:
                encode(Hello("g", "m", "p", 1, 0, b"", 0, members))
            self.assertIn("member list", str(caught.exception))


# -- hypothesis --------------------------------------------------------------

u64s = st.integers(min_value=0, max_value=MAX_U64)
u32s = st.integers(min_value=0, max_value=MAX_U32)
# At most 63 characters is at most 252 bytes of UTF-8: always a valid name.
names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=63)
# At most 250 characters is at most 1,000 bytes: never cut.
reasons = st.text(st.characters(exclude_categories=["Cs"]), max_size=250)
messages = st.tuples(u64s, st.binary(max_size=64))
frames = st.builds(Frame, u32s, u64s, st.lists(messages, max_size=8).map(tuple))

member_lists = st.lists(names, max_size=6, unique=True).map(
    lambda found: tuple(sorted(found))
)
# Without a nonce: a HELLO cut before its optional nonce is a whole HELLO,
# so only these are cut at every byte (SecretFrameTests covers nonces).
hellos = st.builds(
    Hello, names, names, names, u64s, u64s, st.just(b""), u32s, member_lists
)
nonce_hellos = st.builds(
    Hello,
    names,
    names,
    names,
    u64s,
    u64s,
    st.binary(min_size=1, max_size=64),
    u32s,
    member_lists,
)
datas = st.builds(Data, u64s, u64s, frames)
acks = st.builds(Ack, u64s)
refuses = st.builds(Refuse, reasons, st.integers(min_value=0, max_value=255))
addresses = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60)
address_hellos = st.builds(
    Hello,
    names,
    names,
    names,
    u64s,
    u64s,
    st.binary(max_size=64),
    u32s,
    member_lists,
    addresses,
)
heres = st.builds(
    Here,
    names,
    u32s,
    member_lists,
    st.dictionaries(names, addresses, max_size=4).map(
        lambda d: tuple(sorted(d.items()))
    ),
)
wire_frames: st.SearchStrategy[WireFrame] = st.one_of(
    hellos,
    address_hellos,
    datas,
    acks,
    refuses,
    st.builds(Who, names),
    heres,
)

# One change to a byte string: flip bits of a byte, cut it, insert bytes, or
# drop bytes.  Positions are taken modulo the length at the time.
mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.integers(0, 255)),
    st.tuples(st.just("drop"), st.integers(min_value=0), st.integers(1, 16)),
)


def mutate(raw: bytes, changes: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(raw)
    for op, where, value in changes:
        at = where % (len(buf) + 1)
        if op == "flip" and buf:
            buf[at % len(buf)] ^= value
        elif op == "cut":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = bytes([value])
        elif op == "drop":
            del buf[at : at + value]
    return bytes(buf)


class PropertyTests(SynchronousTestCase):
    """
    Random frames round-trip; random bytes never raise anything but a
    L{WireError}.
    """

    def assertDecodesOrWireError(self, raw: bytes) -> None:
        """
        C{raw} either decodes, or raises a L{WireError}; any other exception
        fails the test.  What decodes is canonical: it encodes back to C{raw}
        (except a REFUSE, whose reason is decoded leniently).
        """
        try:
            frame = decode(raw)
        except WireError:
            return
        if not isinstance(frame, Refuse):
            self.assertEqual(encode(frame), raw)

    @settings(max_examples=300, deadline=None)
    @given(wire_frames)
    def test_roundTrip(self, frame: WireFrame) -> None:
        raw = encode(frame)
        self.assertEqual(decode(raw), frame)
        if isinstance(frame, Data):
            head = data_head(frame.seq, frame.ack, frame.frame)
            self.assertEqual(head + encode_body(frame.frame), raw)
            self.assertEqual(
                len(raw),
                DATA_OVERHEAD
                + sum(MESSAGE_OVERHEAD + len(p) for _, p in frame.frame.messages),
            )

    @settings(max_examples=200, deadline=None)
    @given(nonce_hellos, st.lists(mutations, max_size=4))
    def test_helloWithNonce(
        self, hello: Hello, changes: list[tuple[str, int, int]]
    ) -> None:
        """
        A HELLO with a nonce round-trips; changed, it decodes to a canonical
        frame or raises a L{WireError}.
        """
        raw = encode(hello)
        self.assertEqual(decode(raw), hello)
        self.assertDecodesOrWireError(mutate(raw, changes))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200))
    def test_arbitraryBytes(self, raw: bytes) -> None:
        self.assertDecodesOrWireError(raw)

    @settings(max_examples=500, deadline=None)
    @given(st.sampled_from([HELLO, DATA, ACK, REFUSE, 0, 5]), st.binary(max_size=200))
    def test_arbitraryBodies(self, kind: int, body: bytes) -> None:
        """
        Random bytes after a valid version and (mostly) valid type byte, so
        that the fuzz gets past the first two checks.
        """
        self.assertDecodesOrWireError(u8(VERSION) + u8(kind) + body)

    @settings(max_examples=500, deadline=None)
    @given(wire_frames, st.lists(mutations, min_size=1, max_size=4))
    def test_mutatedFrames(
        self, frame: WireFrame, changes: list[tuple[str, int, int]]
    ) -> None:
        self.assertDecodesOrWireError(mutate(encode(frame), changes))

    @settings(max_examples=200, deadline=None)
    @given(wire_frames, st.data())
    def test_everyCut(self, frame: WireFrame, data: st.DataObject) -> None:
        raw = encode(frame)
        cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1), label="cut")
        if isinstance(frame, Refuse) and cut == len(raw) - 1:
            # Without its code, a REFUSE is one of an older node.
            self.assertEqual(decode(raw[:cut]), Refuse(frame.reason))
            return
        if isinstance(frame, Hello) and frame.address:
            # The nonce and the address are optional: cut off before either,
            # what is left is a HELLO without it.
            shorter = [
                attrs.evolve(frame, address=""),
                attrs.evolve(frame, nonce=b"", address=""),
            ]
            for without in shorter:
                if cut == len(encode(without)):
                    self.assertEqual(decode(raw[:cut]), without)
                    return
            if not frame.nonce and cut == len(encode(shorter[1])) + 1:
                # A 0 nonce length with nothing after it: not one encoding.
                with self.assertRaises(BadFieldError):
                    decode(raw[:cut])
                return
        with self.assertRaises(TruncatedFrameError):
            decode(raw[:cut])


class SecretFrameTests(SynchronousTestCase):
    """
    The group-secret parts: HELLO's optional nonce and the AUTH frame.
    """

    def test_hello_nonce_round_trip(self) -> None:
        hello = Hello("g", "a", "b", 1, 2, b"n" * 32)
        raw = encode(hello)
        self.assertEqual(raw, encode(Hello("g", "a", "b", 1, 2)) + b"\x20" + b"n" * 32)
        self.assertEqual(decode(raw), hello)

    def test_hello_without_nonce_unchanged(self) -> None:
        self.assertEqual(
            decode(encode(Hello("g", "a", "b", 1, 2))), Hello("g", "a", "b", 1, 2, b"")
        )

    def test_bad_nonces(self) -> None:
        base = encode(Hello("g", "a", "b", 1, 2))
        self.assertWireError(base + b"\x00", BadFieldError)
        self.assertWireError(base + b"\x41" + b"x" * 65, BadFieldError)
        self.assertWireError(base + b"\x05abc", TruncatedFrameError)
        # After a nonce, what follows is an address.
        self.assertWireError(base + b"\x01ab", TruncatedFrameError)
        self.assertWireError(base + b"\x01a\x00\x01xz", TrailingBytesError)
        with self.assertRaises(ValueError):
            encode(Hello("g", "a", "b", 1, 2, b"x" * 65))

    def test_auth(self) -> None:
        auth = Auth(bytes(range(32)))
        raw = encode(auth)
        self.assertEqual(raw, b"\x02\x05" + bytes(range(32)))
        self.assertEqual(decode(raw), auth)
        self.assertWireError(raw[:-1], TruncatedFrameError)
        self.assertWireError(raw + b"x", TrailingBytesError)
        with self.assertRaises(ValueError):
            encode(Auth(b"short"))

    def assertWireError(self, raw: bytes, kind: type[WireError]) -> None:
        with self.assertRaises(kind):
            decode(raw)


class JoiningFrameTests(SynchronousTestCase):
    """
    The frames of a member that joins a running group: the address a HELLO
    may carry, and the WHO and HERE of a discovery connection.
    """

    def test_hello_with_address(self) -> None:
        """
        An address follows the nonce; without a secret the nonce's length
        is 0, which is there only when an address follows.
        """
        base = encode(Hello("g", "d", "a", 1, 2))
        plain = Hello("g", "d", "a", 1, 2, address="tcp:host=h:port=9")
        raw = encode(plain)
        self.assertEqual(raw, base + b"\x00" + u16(17) + b"tcp:host=h:port=9")
        self.assertEqual(decode(raw), plain)
        secret = attrs.evolve(plain, nonce=b"n" * 16)
        self.assertEqual(decode(encode(secret)), secret)
        self.assertEqual(
            decode(base + b"\x00" + u16(1) + b"x"), attrs.evolve(plain, address="x")
        )

    def test_bad_addresses(self) -> None:
        base = encode(Hello("g", "d", "a", 1, 2)) + b"\x00"
        self.assertWireError(base + u16(0), BadFieldError)
        self.assertWireError(base + u16(1025) + b"x" * 1025, BadFieldError)
        self.assertWireError(base + u16(1) + b"\xff", BadFieldError)
        self.assertWireError(base + u16(5) + b"x", TruncatedFrameError)
        self.assertWireError(base + b"\x01", TruncatedFrameError)
        with self.assertRaises(ValueError):
            encode(Hello("g", "d", "a", 1, 2, address="x" * 1025))

    def test_who_and_here(self) -> None:
        who = Who("chat")
        self.assertEqual(encode(who), b"\x02\x07" + name(b"chat"))
        self.assertEqual(decode(encode(who)), who)
        here = Here("a", 3, ("a", "b", "c"), (("a", "a:1"), ("d", "d:4")))
        raw = encode(here)
        self.assertEqual(
            raw,
            b"\x02\x08"
            + name(b"a")
            + u32(3)
            + u16(3)
            + name(b"a")
            + name(b"b")
            + name(b"c")
            + u16(2)
            + name(b"a")
            + u16(3)
            + b"a:1"
            + name(b"d")
            + u16(3)
            + b"d:4",
        )
        self.assertEqual(decode(raw), here)
        self.assertEqual(decode(encode(Here("a", 0, ()))), Here("a", 0, ()))
        for cut in range(2, len(raw)):
            self.assertWireError(raw[:cut], TruncatedFrameError)
        self.assertWireError(raw + b"x", TrailingBytesError)
        self.assertWireError(encode(who) + b"x", TrailingBytesError)

    def test_bad_here(self) -> None:
        unsorted = (
            b"\x02\x08" + name(b"a") + u32(0) + u16(0) + u16(2)
            + name(b"b") + u16(1) + b"x" + name(b"a") + u16(1) + b"x"
        )  # fmt: skip
        self.assertWireError(unsorted, BadFieldError)
        for bad in [
            Here("a", 0, ("b", "a")),
            Here("a", 0, (), (("b", "x"), ("a", "x"))),
            Here("a", 0, (), (("a", ""),)),
            Here("a", -1, ()),
        ]:
            with self.assertRaises(ValueError):
                encode(bad)

    def assertWireError(self, raw: bytes, kind: type[WireError]) -> None:
        with self.assertRaises(kind):
            decode(raw)
