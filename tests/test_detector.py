"""
Tests for L{isis_twisted.core.detector}: suspicion by silence, as pure policy.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.detector import STARTUP_GRACE, FailureDetector, Verdict


class FailureDetectorTests(SynchronousTestCase):
    def detector(self) -> FailureDetector:
        return FailureDetector(suspect_after=3.0, heartbeat=1.0, started=100.0)

    def test_silent_member_suspected_once(self) -> None:
        """
        A member silent for suspect_after is suspected, once, with how long
        it was silent; a member heard lately is not.
        """
        d = self.detector()
        peers = [("b", 102.0), ("c", 104.5)]
        self.assertEqual(d.look(105.0, peers, set()), Verdict((("b", 3.0),), ()))
        self.assertEqual(d.look(105.5, peers, {"b"}), Verdict((), ()))
        self.assertEqual((d.suspicions, d.suspected), (1, {"b": 105.0}))

    def test_never_heard_gets_the_grace(self) -> None:
        """
        A member never heard from since the start is suspected only after
        STARTUP_GRACE times suspect_after.
        """
        d = self.detector()
        grace = 100.0 + STARTUP_GRACE * 3.0
        self.assertEqual(d.look(grace - 0.1, [("b", None)], set()).silent, ())
        self.assertEqual(
            d.look(grace, [("b", None)], set()).silent, (("b", grace - 100.0),)
        )

    def test_heard_again_trusted_together(self) -> None:
        """
        Every suspected member heard within two heartbeats is trusted
        again, whoever suspected it; one heard longer ago is not.
        """
        d = self.detector()
        d.look(110.0, [("b", 105.0), ("c", 105.0)], set())
        verdict = d.look(
            112.0, [("b", 111.5), ("c", 110.5), ("e", 109.0)], {"b", "c", "e"}
        )
        self.assertEqual(verdict, Verdict((), ("b", "c")))
        self.assertEqual(d.suspected, {})

    def test_keep_only(self) -> None:
        """
        Suspicions of members a new view left out are forgotten.
        """
        d = self.detector()
        d.look(110.0, [("b", 105.0), ("c", 105.0)], set())
        d.keep_only(("a", "c"))
        self.assertEqual(set(d.suspected), {"c"})

    def test_hears(self) -> None:
        d = self.detector()
        self.assertTrue(d.hears(99.0, 100.9))
        self.assertFalse(d.hears(99.0, 101.0))
        self.assertFalse(d.hears(None, 100.0))
