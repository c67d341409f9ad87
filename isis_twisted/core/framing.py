"""
Length-prefixed frames out of a byte stream, as they arrive, with no I/O.

The peer links frame every message with a 4-byte big-endian length, as
L{twisted.protocols.basic.Int32StringReceiver} does, but gather the pieces
of a frame in a list and join them once the frame is whole: Twisted's
version concatenates its whole buffer with every read, which for a 2 MiB
frame arriving in 64 KiB reads copied 32 MiB (the benchmark's 64 KiB
payloads spent most of their time there).
"""

from __future__ import annotations

import struct

import attrs

__all__ = ["LENGTH", "PREFIX", "FrameReader", "TooLong"]

LENGTH = struct.Struct(">I")
"""
A frame's length prefix: what a writer packs before each frame and
L{FrameReader} reads back.
"""

PREFIX = LENGTH.size
"""
The bytes of a frame's length prefix.
"""


@attrs.frozen
class TooLong:
    """
    A frame's length prefix is over the limit.  Nothing more is buffered.

    @ivar length: The length it gives.
    @ivar first: Whether it was the first frame of the stream.
    @ivar start: The bytes buffered from that frame on (its prefix
        included), for a caller that tells what else the stream may be.
    """

    length: int
    first: bool
    start: bytes


class FrameReader:
    """
    Takes a stream's bytes as they arrive and gives back its whole frames.

    Bytes are only joined once they hold a whole frame (or, for a long
    run of small frames, once per read): L{feed} keeps the pieces, L{next}
    joins them when the frame it waits for is all there and then hands out
    frame after frame from that one buffer.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._buffered = 0
        # How many bytes the next frame needs, its prefix included.
        self._wanted = PREFIX
        # The joined buffer being read, and where in it.
        self._buffer: bytes | None = None
        self._offset = 0
        self._taken = 0

    @property
    def buffered(self) -> int:
        """
        How many bytes are held that no frame handed out yet took.
        """
        if self._buffer is not None:
            return len(self._buffer) - self._offset
        return self._buffered

    @property
    def unframed(self) -> bytes:
        """
        The bytes held that are not yet a whole frame (or not yet read).
        """
        if self._buffer is not None:
            return self._buffer[self._offset :]
        return b"".join(self._chunks)

    def feed(self, data: bytes) -> None:
        """
        Bytes arrived.
        """
        self._stop()
        self._chunks.append(data)
        self._buffered += len(data)

    def next(self, limit: int) -> bytes | TooLong | None:
        """
        The next whole frame, if it is all there.

        @param limit: The largest frame to take; it may differ from one call
            to the next (the handshake raises it).
        @return: The frame without its prefix; L{TooLong} if its prefix is
            over C{limit}; L{None} if more bytes are needed first.
        """
        buffer = self._buffer
        if buffer is None:
            if self._buffered < self._wanted:
                return None
            chunks = self._chunks
            buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._buffer = buffer
            self._offset = 0
        offset = self._offset
        size = len(buffer)
        if size - offset < PREFIX:
            self._wanted = PREFIX
            self._stop()
            return None
        (length,) = LENGTH.unpack_from(buffer, offset)
        if length > limit:
            start = buffer[offset:] if offset else buffer
            first = self._taken == 0
            self.discard()
            return TooLong(length, first, start)
        end = offset + PREFIX + length
        if end > size:
            self._wanted = end - offset
            self._stop()
            return None
        self._offset = end
        self._taken += 1
        return buffer[offset + PREFIX : end]

    def peek(self, limit: int) -> bytes | None:
        """
        The next frame, if it is whole and within C{limit}, without taking
        it.
        """
        self._stop()
        chunks = self._chunks
        if len(chunks) > 1:
            chunks[:] = [b"".join(chunks)]
        if not chunks or len(chunks[0]) < PREFIX:
            return None
        buffer = chunks[0]
        (length,) = LENGTH.unpack_from(buffer)
        end = PREFIX + length
        if length > limit or len(buffer) < end:
            return None
        return buffer[PREFIX:end]

    def rescan(self) -> None:
        """
        Look for a frame in what is held at the next L{next}, however much
        the last call said it waited for (reading was stopped part-way).
        """
        self._stop()
        self._wanted = PREFIX

    def discard(self) -> None:
        """
        Forget everything held: the stream is closing.
        """
        self._chunks.clear()
        self._buffered = 0
        self._wanted = PREFIX
        self._buffer = None
        self._offset = 0

    def _stop(self) -> None:
        """
        Put what is left of the joined buffer back as the one piece held.
        """
        buffer = self._buffer
        if buffer is None:
            return
        offset = self._offset
        rest = buffer[offset:] if offset else buffer
        self._buffer = None
        self._offset = 0
        self._chunks[:] = [rest] if rest else []
        self._buffered = len(rest)
