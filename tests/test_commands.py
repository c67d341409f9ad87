"""
Tests for L{isis_twisted.api.commands}: the client API's argument types and
how a peer's frame is told apart from AMP.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.protocols import amp
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.api.commands import (
    LongBytes,
    LongText,
    is_peer_protocol,
)
from isis_twisted.core.wire import Hello, Refuse, encode_hello, encode_refuse

MiB = 1 << 20


class LongBytesTests(SynchronousTestCase):
    """
    L{LongBytes} carries byte strings of any length in AMP boxes.
    """

    def roundTrip(self, argument: amp.Argument, value: object) -> tuple[object, Any]:
        """
        Put C{value} in a box under C{b"payload"}, serialise the box to AMP's
        wire format, parse it back and take the value out again.

        @return: The value read back, and the box's strings.
        """
        strings = amp.AmpBox()
        argument.toBox(b"payload", strings, {"payload": value}, None)
        wire = strings.serialize()
        (parsed,) = amp.parseString(wire)
        objects: dict[str, object] = {}
        argument.fromBox(b"payload", parsed, objects, None)
        return objects["payload"], strings

    def test_sizes(self) -> None:
        """
        Empty, exactly one value, one byte over and much more than one value
        all come back as they went, in as many values as needed, none over
        AMP's limit.
        """
        for size, values in [
            (0, 1),
            (amp.MAX_VALUE_LENGTH, 1),
            (amp.MAX_VALUE_LENGTH + 1, 2),
            (MiB + 1, 17),
        ]:
            data = bytes(i % 251 for i in range(size))
            back, strings = self.roundTrip(LongBytes(), data)
            self.assertEqual(back, data, size)
            self.assertEqual(len(strings), values, size)
            self.assertTrue(
                all(len(v) <= amp.MAX_VALUE_LENGTH for v in strings.values())
            )
            self.assertTrue(all(len(k) <= amp.MAX_KEY_LENGTH for k in strings))

    def test_chunk_keys(self) -> None:
        """
        The first chunk goes under the argument's name, the next ones under
        C{NAME.1}, C{NAME.2}, ...
        """
        _, strings = self.roundTrip(LongBytes(), b"x" * (2 * amp.MAX_VALUE_LENGTH + 5))
        self.assertEqual(sorted(strings), [b"payload", b"payload.1", b"payload.2"])
        self.assertEqual(len(strings[b"payload.2"]), 5)

    def test_text_split_inside_a_character(self) -> None:
        """
        L{LongText} splits the UTF-8 bytes anywhere, even inside a character,
        and still decodes the whole.
        """
        text = "é" * amp.MAX_VALUE_LENGTH
        back, strings = self.roundTrip(LongText(), text)
        self.assertEqual(back, text)
        self.assertEqual(len(strings), 2)

    def test_wrong_type(self) -> None:
        """
        Only L{bytes} go as L{LongBytes}, only L{str} as L{LongText}.
        """
        self.assertRaises(TypeError, self.roundTrip, LongBytes(), "text")
        self.assertRaises(TypeError, self.roundTrip, LongText(), b"bytes")

    def test_optional(self) -> None:
        """
        An optional argument may be absent (L{None}); a required one may not.
        """
        strings = amp.AmpBox()
        LongBytes(optional=True).toBox(b"p", strings, {"p": None}, None)
        self.assertEqual(strings, {})
        objects: dict[str, object] = {}
        LongBytes(optional=True).fromBox(b"p", strings, objects, None)
        self.assertEqual(objects, {"p": None})
        self.assertRaises(TypeError, LongBytes().toBox, b"p", strings, {}, None)
        self.assertRaises(KeyError, LongBytes().fromBox, b"p", strings, {}, None)


class PeerProtocolTests(SynchronousTestCase):
    """
    L{is_peer_protocol} tells the members' peer frames from AMP boxes.
    """

    def test_peer_frames(self) -> None:
        """
        A member's HELLO or REFUSE, framed as its link sends it, is the peer
        protocol, and so are its first bytes alone.
        """
        for frame in (
            encode_hello(Hello("g", "b", "a", 7, 0)),
            encode_refuse(Refuse("frame too big")),
        ):
            framed = struct.pack(">I", len(frame)) + frame
            self.assertTrue(is_peer_protocol(framed))
            self.assertTrue(is_peer_protocol(framed[:3]))

    def test_amp_box(self) -> None:
        """
        An AMP box is not the peer protocol.
        """
        box = amp.AmpBox({b"_command": b"Status", b"_ask": b"1"}).serialize()
        self.assertFalse(is_peer_protocol(box))
