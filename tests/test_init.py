"""
Tests for the package's public face, L{isis_twisted}.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import isis_twisted


class PublicFaceTests(SynchronousTestCase):
    def test_every_public_name_resolves(self) -> None:
        self.assertEqual(sorted(isis_twisted.__all__), sorted(isis_twisted._WHERE))
        for name in isis_twisted.__all__:
            value = getattr(isis_twisted, name)
            module = __import__(
                f"isis_twisted.{isis_twisted._WHERE[name]}", fromlist=[name]
            )
            self.assertIs(value, getattr(module, name))

    def test_unknown_name(self) -> None:
        with self.assertRaises(AttributeError) as caught:
            isis_twisted.NoSuchThing  # noqa: B018
        self.assertIn("NoSuchThing", str(caught.exception))

    def test_importing_the_engine_loads_no_node(self) -> None:
        """
        The public face loads what is asked for: the pure engine alone does
        not bring in the node and Twisted's networking.
        """
        code = (
            "import sys, isis_twisted.core.engine;"
            " print('isis_twisted.net.node' in sys.modules,"
            " 'twisted.internet.endpoints' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        self.assertEqual(out.stdout.split(), ["False", "False"])

    def test_typed(self) -> None:
        marker = Path(isis_twisted.__file__).with_name("py.typed")
        self.assertTrue(marker.exists())
