"""
Tests for L{isis_twisted.net.certs}: group certificates for mutual TLS.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.app.cli import main
from isis_twisted.net.certs import CertificateError, load_identity, write_group_certs


class CertsTests(SynchronousTestCase):
    def test_write_and_load(self) -> None:
        where = Path(self.mktemp())
        written = write_group_certs(where, ["a", "b"])
        self.assertEqual(
            sorted(p.name for p in written), ["a.pem", "b.pem", "ca.key.pem", "ca.pem"]
        )
        self.assertEqual((where / "a.pem").stat().st_mode & 0o777, 0o600)
        identity = load_identity(where, "a")
        self.assertEqual(identity.name, "a")
        # Signed by the group's CA.
        own = identity.own.original.to_cryptography()
        ca = identity.ca.original.to_cryptography()
        self.assertEqual(own.issuer, ca.subject)

    def test_nothing_overwritten(self) -> None:
        where = Path(self.mktemp())
        write_group_certs(where, ["a"])
        before = (where / "a.pem").read_bytes()
        with self.assertRaises(CertificateError) as caught:
            write_group_certs(where, ["a", "b"])
        self.assertIn("not overwriting", str(caught.exception))
        self.assertEqual((where / "a.pem").read_bytes(), before)
        self.assertFalse((where / "b.pem").exists())

    def test_load_mistakes(self) -> None:
        where = Path(self.mktemp())
        write_group_certs(where, ["a"])
        with self.assertRaises(CertificateError) as caught:
            load_identity(where, "z")
        self.assertIn("cannot read", str(caught.exception))
        (where / "b.pem").write_bytes((where / "a.pem").read_bytes())
        with self.assertRaises(CertificateError) as caught:
            load_identity(where, "b")
        self.assertIn("is the certificate of 'a', not of 'b'", str(caught.exception))

    def test_isis_certs_command(self) -> None:
        where = self.mktemp()
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", err)
        exit = self.assertRaises(SystemExit, main, ["certs", "--dir", where, "a", "b"])
        self.assertEqual(exit.code, 0)
        self.assertEqual(len(out.getvalue().splitlines()), 4)
        exit = self.assertRaises(SystemExit, main, ["certs", "--dir", where, "a"])
        self.assertEqual(exit.code, 2)
        self.assertIn("isis certs: not overwriting", err.getvalue())
