"""
Tests for L{isis_twisted.net.options}: addresses and counts as operators type
them.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.net.options import (
    byte_size,
    dial_description,
    listen_description,
    whole_number,
)


class ListenTests(SynchronousTestCase):
    def test_bare_port_is_loopback_only(self) -> None:
        self.assertEqual(listen_description("9001"), "tcp:9001:interface=127.0.0.1")
        self.assertEqual(listen_description(" 0 "), "tcp:0:interface=127.0.0.1")

    def test_descriptions_kept(self) -> None:
        for text in ["tcp:9001:interface=0.0.0.0", "unix:/run/a.sock"]:
            self.assertEqual(listen_description(text), text)

    def test_unusable(self) -> None:
        for text, words in [
            ("70000", "not a TCP port"),
            ("nope:1", "neither a port number nor an endpoint description"),
            ("", "neither"),
        ]:
            with self.assertRaises(ValueError) as caught:
                listen_description(text)
            self.assertIn(words, str(caught.exception))


class DialTests(SynchronousTestCase):
    def test_short_forms(self) -> None:
        self.assertEqual(dial_description("9101"), "tcp:host=127.0.0.1:port=9101")
        self.assertEqual(
            dial_description("db-1.example:9002"), "tcp:host=db-1.example:port=9002"
        )

    def test_descriptions_kept(self) -> None:
        for text in [
            "tcp:example.com:9101",
            "tcp:host=10.0.0.2:port=9001",
            "unix:path=/run/isis.sock",
        ]:
            self.assertEqual(dial_description(text), text)

    def test_unusable(self) -> None:
        for text, words in [
            ("0", "not a TCP port"),
            ("host:70000", "not a TCP port"),
            ("what", "neither HOST:PORT"),
            ("nonsense:x", "neither HOST:PORT"),
        ]:
            with self.assertRaises(ValueError) as caught:
                dial_description(text)
            self.assertIn(words, str(caught.exception))


class WholeNumberTests(SynchronousTestCase):
    def test_numbers(self) -> None:
        self.assertEqual(whole_number("--n", "12", 1), 12)
        self.assertEqual(whole_number("--n", 100_000, 0), 100000)
        self.assertEqual(whole_number("--n", "1_000", 0), 1000)

    def test_mistakes(self) -> None:
        with self.assertRaises(UsageError) as caught:
            whole_number("--window", "x", 1)
        self.assertEqual(
            str(caught.exception), "--window takes a whole number, not 'x'"
        )
        with self.assertRaises(UsageError) as caught:
            whole_number("--window", "0", 1)
        self.assertEqual(str(caught.exception), "--window must be 1 or more, not 0")


class ByteSizeTests(SynchronousTestCase):
    def test_sizes(self) -> None:
        for text, size in [
            ("65536", 65536),
            ("64MiB", 64 << 20),
            ("64M", 64 << 20),
            ("2G", 2 << 30),
            ("512k", 512 << 10),
            ("1_000", 1000),
            ("3gib", 3 << 30),
        ]:
            self.assertEqual(byte_size("--retain-bytes", text, 0), size, text)

    def test_mistakes_are_one_sentence(self) -> None:
        for text in ("", "lots", "-1", "1.5G", "3T", "MiB"):
            with self.assertRaises(UsageError) as e:
                byte_size("--retain-bytes", text, 0)
            self.assertIn("--retain-bytes takes a size in bytes", str(e.exception))
        with self.assertRaises(UsageError) as e:
            byte_size("--retain-bytes", "1k", 4096)
        self.assertIn("4096 bytes or more", str(e.exception))
