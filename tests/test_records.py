"""
Tests for L{isis_twisted.core.records}: the packing of records and payloads
inside the client API's commands.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.core.records import (
    pack_payloads,
    pack_records,
    unpack_payloads,
    unpack_records,
)


class RecordPackingTests(SynchronousTestCase):
    """
    L{pack_records} and L{unpack_records}, the body of a
    L{Deliver<isis_twisted.api.commands.Deliver>}.
    """

    def test_round_trip(self) -> None:
        """
        Records of every shape come back as they went.
        """
        records = [
            Delivery(1, "a", 1, b"", None),
            Delivery(2, "b\u00e9", 7, b"\x00" * 70000, 1),
            Delivery(2**40, "c", 2**62 - 1, b"z", 2**40 - 1),
        ]
        self.assertEqual(unpack_records(pack_records(records)), records)
        self.assertEqual(unpack_records(b""), [])

    def test_malformed(self) -> None:
        """
        A batch cut short, or with a sender that is not UTF-8 or a negative
        C{after}, is refused with L{ValueError}.
        """
        data = pack_records([Delivery(1, "a", 1, b"hello", None)])
        for cut in range(1, len(data)):
            self.assertRaises(ValueError, unpack_records, data[:cut])
        bad_sender = data.replace(b"a", b"\xff", 1)
        self.assertNotEqual(bad_sender, data)
        self.assertRaises(ValueError, unpack_records, bad_sender)
        negative = pack_records([Delivery(1, "a", 1, b"", 5)]).replace(
            (5).to_bytes(8, "big"), (-3).to_bytes(8, "big", signed=True)
        )
        self.assertRaises(ValueError, unpack_records, negative)

    def test_views_round_trip(self) -> None:
        """
        View changes, packed among deliveries, come back as they went, in
        place: no members, one, and names that are not ASCII.
        """
        records: list[Record] = [
            Delivery(1, "a", 1, b"x", None),
            ViewChange(1, ("a", "b\u00e9"), 2),
            Delivery(2, "b\u00e9", 3, b"y", None),
            ViewChange(2, ("a",), 3),
            ViewChange(3, (), 3),
        ]
        self.assertEqual(unpack_records(pack_records(records)), records)

    def test_view_malformed(self) -> None:
        """
        A view record cut short, or whose members cannot be read, is refused
        with L{ValueError}.
        """
        data = pack_records([ViewChange(1, ("a", "b"), 5)])
        for cut in range(1, len(data)):
            self.assertRaises(ValueError, unpack_records, data[:cut])
        bad_name = data.replace(b"b", b"\xff")
        self.assertNotEqual(bad_name, data)
        e = self.assertRaises(ValueError, unpack_records, bad_name)
        self.assertIn("view 1", str(e))
        # The member list's own length runs past the record's body.
        bad_list = data.replace(
            (1).to_bytes(4, "big") + b"b", (9).to_bytes(4, "big") + b"b"
        )
        self.assertNotEqual(bad_list, data)
        self.assertRaises(ValueError, unpack_records, bad_list)


class PayloadPackingTests(SynchronousTestCase):
    """
    L{pack_payloads} and L{unpack_payloads}, the body of a
    L{MulticastBatch<isis_twisted.api.commands.MulticastBatch>}.
    """

    def test_packing_round_trip(self) -> None:
        """
        L{unpack_payloads} gives back what L{pack_payloads} packed, and
        refuses a cut packing.
        """
        payloads = [b"", b"\x00\r\n", b"z" * 70000]
        packed = pack_payloads(payloads)
        self.assertEqual(unpack_payloads(packed), payloads)
        self.assertRaises(ValueError, unpack_payloads, packed[:-1])
        self.assertRaises(ValueError, unpack_payloads, packed[:2])
        self.assertRaises(TypeError, pack_payloads, ["text"])
