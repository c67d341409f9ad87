"""
Tests for L{isis_twisted.core.framing}: length-prefixed frames out of a byte
stream, on their own (no sockets, no reactor, no
L{isis_twisted.net.connection}).
"""

from __future__ import annotations

import itertools
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.framing import PREFIX, FrameReader, TooLong
from isis_twisted.core.handshake import HANDSHAKE_MAX_FRAME, amp_box, looks_like_amp

_LENGTH = struct.Struct(">I")


def prefixed(*frames: bytes) -> bytes:
    """
    C{frames} as they are on the wire, each after its 4-byte length.
    """
    return b"".join(_LENGTH.pack(len(frame)) + frame for frame in frames)


def drain(reader: FrameReader, limit: int) -> list[bytes]:
    """
    Every whole frame C{reader} holds, up to the first L{None}.

    @raise AssertionError: On a L{TooLong}.
    """
    frames: list[bytes] = []
    while (frame := reader.next(limit)) is not None:
        assert not isinstance(frame, TooLong), frame
        frames.append(frame)
    return frames


def assert_empty(case: SynchronousTestCase, reader: FrameReader) -> None:
    """
    C{reader} holds nothing.
    """
    case.assertEqual(reader.buffered, 0)
    case.assertEqual(reader.unframed, b"")


class WholeFrameTests(SynchronousTestCase):
    """
    L{FrameReader.next} gives whole frames, in order, as soon as they are
    whole.
    """

    def test_prefix_size(self) -> None:
        """
        The prefix is a 4-byte length, as L{Int32StringReceiver}'s.
        """
        self.assertEqual(PREFIX, 4)

    def test_one_feed(self) -> None:
        """
        Frames that arrive in one piece, an empty one among them, come out
        in order, and then nothing is held.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"one", b"", b"three"))
        self.assertEqual(reader.next(100), b"one")
        self.assertEqual(reader.next(100), b"")
        self.assertEqual(reader.next(100), b"three")
        self.assertIsNone(reader.next(100))
        assert_empty(self, reader)

    def test_nothing_fed(self) -> None:
        """
        A new reader, or one fed nothing, has no frame and holds nothing.
        """
        reader = FrameReader()
        self.assertIsNone(reader.next(100))
        reader.feed(b"")
        self.assertIsNone(reader.next(100))
        assert_empty(self, reader)

    def test_byte_by_byte(self) -> None:
        """
        Fed one byte at a time, a frame comes out with its last byte and not
        before, and what is held meanwhile is the bytes of it so far.
        """
        stream = prefixed(b"hello", b"world!")
        reader = FrameReader()
        frames: list[bytes] = []
        for at in range(len(stream)):
            reader.feed(stream[at : at + 1])
            got = drain(reader, 100)
            frames += got
            if at + 1 == 9:
                self.assertEqual(got, [b"hello"])
            elif at + 1 == len(stream):
                self.assertEqual(got, [b"world!"])
            else:
                self.assertEqual(got, [])
            start = len(prefixed(*frames))
            self.assertEqual(reader.unframed, stream[start : at + 1])
            self.assertEqual(reader.buffered, at + 1 - start)
        self.assertEqual(frames, [b"hello", b"world!"])
        assert_empty(self, reader)

    def test_remainder_kept(self) -> None:
        """
        Two frames and the start of a third arrive in one piece, and the
        rest of the third in the next: all three come out, whole.  (A reader
        that dropped what was left of the joined buffer after the frames it
        gave would lose the third's start.)
        """
        third = b"third frame, in two pieces"
        stream = prefixed(b"first", b"second", third)
        cut = len(prefixed(b"first", b"second")) + 7
        reader = FrameReader()
        reader.feed(stream[:cut])
        self.assertEqual(reader.next(100), b"first")
        self.assertEqual(reader.next(100), b"second")
        self.assertIsNone(reader.next(100))
        self.assertEqual(reader.unframed, stream[len(stream) - len(third) - 4 : cut])
        self.assertEqual(reader.buffered, 7)
        reader.feed(stream[cut:])
        self.assertEqual(reader.next(100), third)
        self.assertIsNone(reader.next(100))
        assert_empty(self, reader)

    def test_fed_between_frames(self) -> None:
        """
        Bytes fed while frames of an earlier piece are still being handed
        out join what is left of it, in order.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"a", b"b") + prefixed(b"c")[:3])
        self.assertEqual(reader.next(100), b"a")
        self.assertEqual(reader.unframed, prefixed(b"b") + prefixed(b"c")[:3])
        self.assertEqual(reader.buffered, 5 + 3)
        reader.feed(prefixed(b"c")[3:] + prefixed(b"d"))
        self.assertEqual(drain(reader, 100), [b"b", b"c", b"d"])
        assert_empty(self, reader)

    def test_large_frame_in_pieces(self) -> None:
        """
        A frame much larger than the pieces it arrives in comes out whole
        once its last piece arrives, with the frame after it.
        """
        big = bytes(range(256)) * 1024
        stream = prefixed(big, b"after")
        # Every byte of the large frame but its last.
        last = PREFIX + len(big) - 1
        reader = FrameReader()
        for start in range(0, last, 4096):
            reader.feed(stream[start : min(start + 4096, last)])
            self.assertTrue(reader.next(len(big)) is None)
        self.assertEqual(reader.buffered, last)
        reader.feed(stream[last:])
        self.assertEqual(drain(reader, len(big)), [big, b"after"])

    def test_limit_exact(self) -> None:
        """
        A frame exactly at the limit is taken; one byte over, it is not.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"x" * 10))
        self.assertEqual(reader.next(10), b"x" * 10)
        reader.feed(prefixed(b"x" * 11))
        self.assertEqual(reader.next(10), TooLong(11, False, prefixed(b"x" * 11)))

    def test_limit_per_call(self) -> None:
        """
        The limit applies to the frame it is given with: one raised after a
        frame (as the handshake does) takes a larger next frame that the
        lower one would refuse.
        """
        stream = prefixed(b"small", b"L" * 50)
        reader = FrameReader()
        reader.feed(stream)
        self.assertEqual(reader.next(10), b"small")
        self.assertEqual(reader.next(50), b"L" * 50)
        again = FrameReader()
        again.feed(stream)
        self.assertEqual(again.next(10), b"small")
        self.assertEqual(again.next(49), TooLong(50, False, prefixed(b"L" * 50)))


class TooLongTests(SynchronousTestCase):
    """
    A frame whose length is over the limit: L{TooLong}, and nothing held.
    """

    def test_first(self) -> None:
        """
        A first frame over the limit is L{TooLong} as soon as its prefix is
        there, C{first}, with every byte held from it on; then nothing is
        held, and nothing more comes out.
        """
        stream = _LENGTH.pack(1000) + b"some of it"
        reader = FrameReader()
        reader.feed(stream[:2])
        self.assertIsNone(reader.next(999))
        reader.feed(stream[2:])
        self.assertEqual(reader.next(999), TooLong(1000, True, stream))
        assert_empty(self, reader)
        self.assertIsNone(reader.next(999))
        assert_empty(self, reader)

    def test_after_frames(self) -> None:
        """
        Over the limit after frames were taken is not C{first}, and holds
        only the bytes from that frame on, from a piece of its own or of the
        same piece as the frames before.
        """
        over = _LENGTH.pack(500) + b"rest"
        reader = FrameReader()
        reader.feed(prefixed(b"fine") + over)
        self.assertEqual(reader.next(100), b"fine")
        self.assertEqual(reader.next(100), TooLong(500, False, over))
        assert_empty(self, reader)

        apart = FrameReader()
        apart.feed(prefixed(b"fine"))
        self.assertEqual(apart.next(100), b"fine")
        self.assertIsNone(apart.next(100))
        apart.feed(over[:3])
        apart.feed(over[3:])
        self.assertEqual(apart.next(100), TooLong(500, False, over))
        assert_empty(self, apart)

    def test_amp_box(self) -> None:
        """
        A client's AMP box, read as a frame before the handshake, is over
        L{HANDSHAKE_MAX_FRAME} from its first bytes, and the L{TooLong}
        holds the whole box, which looks like AMP.
        """
        box = amp_box({b"_ask": b"1", b"_command": b"Status"})
        reader = FrameReader()
        reader.feed(box)
        result = reader.next(HANDSHAKE_MAX_FRAME)
        assert isinstance(result, TooLong)
        self.assertTrue(result.first)
        self.assertEqual(result.start, box)
        self.assertTrue(looks_like_amp(result.start))

    def test_discard(self) -> None:
        """
        L{FrameReader.discard} forgets whole frames and parts alike, whether
        they were joined for reading or not.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"a", b"b") + b"\x00\x00")
        self.assertEqual(reader.next(100), b"a")
        reader.discard()
        assert_empty(self, reader)
        self.assertIsNone(reader.next(100))
        self.assertIsNone(reader.peek(100))
        assert_empty(self, reader)
        partial = FrameReader()
        partial.feed(prefixed(b"partial")[:5])
        partial.feed(b"al")
        self.assertIsNone(partial.next(100))
        partial.discard()
        assert_empty(self, partial)
        self.assertIsNone(partial.peek(100))

    def test_fed_after_discard(self) -> None:
        """
        A reader fed again after L{FrameReader.discard} frames afresh: the
        length the discarded frame wanted is forgotten with it.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"x" * 50)[:10])
        self.assertIsNone(reader.next(100))
        reader.discard()
        reader.feed(prefixed(b"ok"))
        self.assertEqual(reader.next(100), b"ok")


class PeekTests(SynchronousTestCase):
    """
    L{FrameReader.peek}: the next frame, not taken.
    """

    def test_not_taken(self) -> None:
        """
        A peeked frame is still the next one, and peeking again gives it
        again.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"first", b"second"))
        self.assertEqual(reader.peek(100), b"first")
        self.assertEqual(reader.peek(100), b"first")
        self.assertEqual(reader.buffered, len(prefixed(b"first", b"second")))
        self.assertEqual(drain(reader, 100), [b"first", b"second"])

    def test_after_next(self) -> None:
        """
        After frames were taken from a piece, peek gives the next one of it.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"first", b"second"))
        self.assertEqual(reader.next(100), b"first")
        self.assertEqual(reader.peek(100), b"second")
        self.assertEqual(reader.unframed, prefixed(b"second"))
        self.assertEqual(reader.next(100), b"second")

    def test_across_pieces(self) -> None:
        """
        A frame that arrived in several pieces is peeked whole.
        """
        stream = prefixed(b"in pieces")
        reader = FrameReader()
        for at in range(len(stream)):
            self.assertIsNone(reader.peek(100))
            reader.feed(stream[at : at + 1])
        self.assertEqual(reader.peek(100), b"in pieces")
        self.assertEqual(reader.next(100), b"in pieces")

    def test_over_limit(self) -> None:
        """
        A frame over the limit is not peeked, and stays held.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"x" * 20))
        self.assertIsNone(reader.peek(19))
        self.assertEqual(reader.peek(20), b"x" * 20)
        self.assertEqual(reader.buffered, 24)


class RescanTests(SynchronousTestCase):
    """
    L{FrameReader.rescan}: reading again after it stopped part-way.
    """

    def test_after_stop(self) -> None:
        """
        A reader that last waited for a large frame, and was stopped after
        handing that one out (the connection was held), waits for that
        frame's size until rescanned; then it gives the frames held.
        """
        large = b"L" * 1000
        stream = prefixed(large, b"next")
        reader = FrameReader()
        reader.feed(stream[:500])
        self.assertIsNone(reader.next(2000))
        reader.feed(stream[500:])
        self.assertEqual(reader.next(2000), large)
        # Stopped here, with b"next" unread; more arrives meanwhile.
        reader.feed(prefixed(b"more"))
        self.assertIsNone(reader.next(2000))
        self.assertEqual(reader.unframed, prefixed(b"next", b"more"))
        reader.rescan()
        self.assertEqual(drain(reader, 2000), [b"next", b"more"])
        assert_empty(self, reader)

    def test_rescan_keeps_bytes(self) -> None:
        """
        Rescanning in the middle of a piece, or of a partial frame, keeps
        every byte.
        """
        reader = FrameReader()
        reader.feed(prefixed(b"a", b"b", b"c")[:-1])
        self.assertEqual(reader.next(100), b"a")
        reader.rescan()
        self.assertEqual(reader.unframed, prefixed(b"b", b"c")[:-1])
        self.assertEqual(reader.next(100), b"b")
        self.assertIsNone(reader.next(100))
        reader.rescan()
        self.assertIsNone(reader.next(100))
        reader.feed(b"c")
        self.assertEqual(reader.next(100), b"c")
        assert_empty(self, reader)


frame_lists = st.lists(st.binary(max_size=300), max_size=12)


class ChunkingPropertyTests(SynchronousTestCase):
    """
    However a stream is cut into pieces, the reader gives the same frames.
    """

    @settings(max_examples=200, deadline=None)
    @given(frame_lists, st.data())
    def test_any_chunking(self, frames: list[bytes], data: st.DataObject) -> None:
        """
        Any list of frames, cut anywhere into pieces and read with any limit
        at or above the largest frame (another one at each call), comes out
        as the same frames in order, and nothing is left held.
        """
        stream = prefixed(*frames)
        cuts = sorted(
            data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
        )
        bounds = [0, *cuts, len(stream)]
        largest = max((len(frame) for frame in frames), default=0)
        limits = st.integers(largest, largest + 1000)
        reader = FrameReader()
        out: list[bytes] = []
        for start, end in itertools.pairwise(bounds):
            reader.feed(stream[start:end])
            while (frame := reader.next(data.draw(limits))) is not None:
                assert not isinstance(frame, TooLong)
                out.append(frame)
            # What is held is exactly what no frame took yet.
            taken = len(prefixed(*out))
            self.assertEqual(reader.unframed, stream[taken:end])
            self.assertEqual(reader.buffered, end - taken)
        self.assertEqual(out, frames)
        assert_empty(self, reader)
