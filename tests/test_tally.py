"""
Tests for the handler example in the docs, C{examples/tally.py}, used the
way the docs say: by module path through L{build_handler}.
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from isis_twisted.app.handlers import HandlerSpecError, build_handler
from isis_twisted.core.engine import Delivery
from isis_twisted.interfaces import IDeliveryHandler, IDeliveryHandlerFactory

EXAMPLES = str(Path(__file__).resolve().parent.parent / "examples")


class TallyTests(SynchronousTestCase):
    def setUp(self) -> None:
        sys.path.insert(0, EXAMPLES)
        self.addCleanup(sys.path.remove, EXAMPLES)
        self.addCleanup(sys.modules.pop, "tally", None)

    def test_by_module_path(self) -> None:
        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        handler = build_handler("tally:tally_factory:2")
        self.assertTrue(verifyObject(IDeliveryHandler, handler))
        for index, (sender, payload) in enumerate(
            [("a", b"xx"), ("b", b"y"), ("a", b"zzz")], 1
        ):
            handler.deliver(Delivery(index, sender, index, payload))
        handler.close()
        tallies = [e["tally"] for e in events if "tally" in e]
        self.assertEqual(
            tallies,
            [
                "a: 1 messages, 2 bytes, b: 1 messages, 1 bytes",
                "a: 2 messages, 5 bytes, b: 1 messages, 1 bytes",
            ],
        )

    def test_factory_and_bad_argument(self) -> None:
        import tally

        self.assertTrue(verifyObject(IDeliveryHandlerFactory, tally.tally_factory))
        with self.assertRaises(HandlerSpecError) as caught:
            build_handler("tally:tally_factory:often")
        self.assertIn("positive whole number", str(caught.exception))
