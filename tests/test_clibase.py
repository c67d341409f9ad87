"""
Tests for L{isis_twisted.app.clibase}: what every C{isis} command shares.
"""

from __future__ import annotations

import io

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.app.clibase import Console


class ConsoleTests(SynchronousTestCase):
    """
    L{Console}.
    """

    def test_broken_pipe(self) -> None:
        """
        Once standard output is closed by its reader, output is dropped and
        L{Console.out} says so.
        """

        class Closed(io.StringIO):
            def write(self, text: str) -> int:
                raise BrokenPipeError()

        c = Console(io.BytesIO(), Closed(), io.StringIO())
        self.assertFalse(c.out("x"))
        self.assertTrue(c.stdout_closed)
        self.assertFalse(c.out("y"))
