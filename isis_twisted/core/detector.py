"""
L{FailureDetector}: which members of the view to suspect, and which to
trust again, from when each was last heard.  Pure: the node gives it the
times and acts on what it says (L{isis_twisted.core.membership.Membership}
takes the suspicions; safety never rests on them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import attrs

STARTUP_GRACE = 10
"""
How many times C{suspect_after} a member never heard from since this node
started is given before it is suspected.
"""


@attrs.frozen
class Verdict:
    """
    What one look found.

    @ivar silent: The members to suspect now, each with how long it was
        silent, in the order given.
    @ivar back: The suspected members heard from lately, to trust again.
    """

    silent: tuple[tuple[str, float], ...]
    back: tuple[str, ...]


@attrs.define
class FailureDetector:
    """
    Suspicion by silence.

    A member silent (nothing received on either connection) for
    C{suspect_after} seconds is suspected; one never heard from since the
    start gets L{STARTUP_GRACE} times that, so that members started by hand
    a little apart all make view 0, while one that never comes is still
    left out.  A suspected member (whoever suspected it) heard from within
    two heartbeats is trusted again: an idle link carries a heartbeat every
    C{heartbeat} seconds.

    @ivar suspect_after: Seconds of silence before a suspicion.
    @ivar heartbeat: Seconds between heartbeats on an idle link.
    @ivar started: When this node (last) started.
    @ivar suspected: The members this detector suspects, with when.
    @ivar suspicions: How many suspicions it raised.
    """

    suspect_after: float
    heartbeat: float
    started: float
    suspected: dict[str, float] = attrs.Factory(dict)
    suspicions: int = 0

    def hears(self, last_heard: float | None, now: float) -> bool:
        """
        Whether a member last heard at C{last_heard} is there now.
        """
        return last_heard is not None and now - last_heard < 2 * self.heartbeat

    def look(
        self,
        now: float,
        peers: Iterable[tuple[str, float | None]],
        suspects: Collection[str],
    ) -> Verdict:
        """
        Look at the view's other members.

        @param now: The time.
        @param peers: Each other member of the view with when it was last
            heard (L{None}: never since the start).
        @param suspects: The members suspected now, by anyone.
        @return: Whom to suspect and whom to trust again; the detector
            notes its own suspicions (L{suspected}).
        """
        silent: list[tuple[str, float]] = []
        back: list[str] = []
        for name, heard in peers:
            if heard is None:
                quiet = now - self.started
                if quiet < STARTUP_GRACE * self.suspect_after:
                    continue
            else:
                quiet = now - heard
            if name in suspects:
                if self.hears(heard, now):
                    back.append(name)
                    self.suspected.pop(name, None)
            elif quiet >= self.suspect_after and name not in self.suspected:
                self.suspected[name] = now
                self.suspicions += 1
                silent.append((name, quiet))
        return Verdict(tuple(silent), tuple(back))

    def keep_only(self, members: Collection[str]) -> None:
        """
        A view without some members is installed: forget suspicions of
        those.
        """
        for name in [n for n in self.suspected if n not in members]:
            del self.suspected[name]
