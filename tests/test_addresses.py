"""
Tests for L{isis_twisted.core.addresses}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.addresses import AddressBook


class AddressBookTests(SynchronousTestCase):
    def book(self) -> AddressBook:
        return AddressBook("a", "abc", {"b": "b:1", "c": ""}, own="a:1")

    def test_configured(self) -> None:
        book = self.book()
        self.assertEqual(list(book), [("a", "a:1"), ("b", "b:1")])
        self.assertIsNone(book.get("c"))
        self.assertEqual(book.of("cba"), (("a", "a:1"), ("b", "b:1")))

    def test_learn(self) -> None:
        book = self.book()
        version = book.version
        book.learn([("c", "c:1"), ("d", "d:1"), ("a", "elsewhere"), ("e", "")])
        self.assertEqual(book.get("c"), "c:1")
        self.assertEqual(book.get("d"), "d:1")
        self.assertEqual(book.get("a"), "a:1")
        self.assertIsNone(book.get("e"))
        self.assertEqual(book.version, version + 2)
        book.learn([("d", "d:2")])
        self.assertEqual(book.get("d"), "d:1")
        book.learn([("d", "d:2"), ("b", "b:2"), ("c", "c:2")], settled=True)
        self.assertEqual([book.get(n) for n in "bcd"], ["b:1", "c:1", "d:2"])
        self.assertEqual(book.version, version + 3)
        book.learn([("d", "d:2")], settled=True)
        self.assertEqual(book.version, version + 3)

    def test_forget(self) -> None:
        book = self.book()
        book.learn([("d", "d:1")])
        book.forget("d")
        book.forget("b")
        book.forget("zz")
        self.assertIsNone(book.get("d"))
        self.assertEqual(book.get("b"), "b:1")
