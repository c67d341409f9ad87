"""
Who closes a member's view, and when: the suspicions it holds and shares,
its coordinator (the lowest-ranked member of the view it does not suspect,
or itself for a view an operator forces), whether it starts a ballot or
waits for another member's, and when it gives up waiting.

Suspicions only choose who runs a view change and whom it leaves out;
safety never rests on them (DESIGN.md, Membership).

An L{Election} is a part of one L{isis_twisted.core.membership.Membership}
and works through it: the suspects, the members waived and the views forced
are the membership's own attributes, which the node reads; the ballots are
its coordinator's, what counts as a majority is its L{Membership._majority}
(one of the points the mutation tests break), and messages go to its
outbox.  Pure and sans-IO like the membership: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from isis_twisted.core.coordinator import stamps
from isis_twisted.core.memberstates import (
    BLOCKED,
    FLUSHING,
    JOINING,
    NORMAL,
    REMOVED,
)
from isis_twisted.core.views import Inquire, Suspect

if TYPE_CHECKING:
    from isis_twisted.core.membership import Membership


class CannotForceError(Exception):
    """
    A forced view change (L{Membership.force}) was asked for when it cannot
    or need not be made; the message says why in one sentence.
    """


class Election:
    """
    One member's choice of who runs its view's change, and its waiting for
    that member.

    @ivar wait_until: When this member gives up on the member it waits for
        to run the view change, or L{None}.
    """

    def __init__(self, member: Membership) -> None:
        """
        @param member: The membership this is a part of.
        """
        self._member = member
        self.wait_until: float | None = None

    def coordinator(self) -> str | None:
        """
        The member to run the view change, as far as this member knows.
        """
        member = self._member
        if member.waived:
            # The operator chose this member to close the view.
            return member.me
        for name in member.view.members:
            if name not in member.suspects:
                return name
        return None

    def consider(self, now: float, force: bool = False, asked: bool = False) -> None:
        """
        Start (or restart) a ballot if this member is the one to run it;
        otherwise wait for the one who is (see L{tick}).

        @param force: Start a new ballot even if one is running.
        @param asked: Another member waits for a view change: consider one
            even if this member suspects nobody and is not wedged.
        """
        member = self._member
        if member.state in (REMOVED, JOINING):
            return
        joiners = set(member.joiners) - set(member.view.members)
        # Joiners alone start a view change only at its coordinator: a
        # member that waited for one on their account would give up on a
        # coordinator that never heard of them.
        if not (asked or member.suspects or member.engine.wedged) and (
            not joiners or self.coordinator() != member.me
        ):
            return
        members = tuple(
            sorted(
                [m for m in member.view.members if m not in member.suspects]
                + list(joiners)
            )
        )
        ballots = member._ballots
        if not member._majority(members):
            member.state = BLOCKED
            ballots.running = None
            self._wait(now)
            return
        member.state = FLUSHING if member.engine.wedged else NORMAL
        if self.coordinator() != member.me:
            ballots.running = None
            self._wait(now)
            return
        running = ballots.running
        if (
            running is not None
            and not force
            and not member.suspects.intersection(running.members)
        ):
            # A member heard from again does not restart a ballot: that
            # would let a flapping failure detector keep the view change
            # from ever ending.  It is left out, and can join again later.
            return
        ballots.start(members, member._acceptor.promised, now)

    def _wait(self, now: float) -> None:
        if self.wait_until is None:
            self._member.wait_for_coordinator(now)

    def suspect(self, names: Iterable[str]) -> None:
        """
        Suspect C{names} and tell the others, so that the one to run the
        view change learns of it.
        """
        member = self._member
        fresh = tuple(
            sorted(
                n
                for n in set(names)
                if n != member.me
                and n in member.view.members
                and n not in member.suspects
            )
        )
        if fresh:
            member.suspects.update(fresh)
            member._send_all(Suspect(member.view.id, fresh))

    def heard(self, suspect: Suspect, now: float) -> None:
        """
        Another member of the view suspects members: so does this one.
        """
        member = self._member
        fresh = {n for n in suspect.names if n != member.me} - member.suspects
        member.suspects |= fresh & set(member.view.members)
        self.consider(now)

    def trust(self, names: Iterable[str], now: float) -> None:
        """
        Drop the suspicions of C{names} (see L{Membership.trust}).
        """
        member = self._member
        back = member.suspects.intersection(names) - member.leaving
        if not back:
            return
        member.suspects -= back
        if member.state == BLOCKED and not member.suspects and not member.engine.wedged:
            member.state = NORMAL
            self.wait_until = None
        self.consider(now)

    def tick(self, now: float) -> None:
        """
        Run a ballot that did not finish again without the members that did
        not answer, and give up on a coordinator waited for in vain.
        """
        member = self._member
        running = member._ballots.running
        if running is not None and now >= running.deadline:
            self.suspect(running.silent())
            member._ballots.running = None
            self.consider(now, force=True)
        if self.wait_until is not None and now >= self.wait_until:
            self.wait_until = None
            # The member expected to run the view change has not finished
            # it: give up on it.  And ask everyone whether the group went on
            # without this member, which is how a member cut off from the
            # rest learns it was removed.
            waited_for = member._acceptor.promised[1] or self.coordinator()
            if waited_for:
                self.suspect([waited_for])
            held = stamps(member.engine.held())
            for name in member.view.members:
                if name != member.me:
                    member.send(name, Inquire(member.view.id, held))
            self.consider(now, force=True)

    def force(self, now: float, without: Iterable[str] | None) -> tuple[str, ...]:
        """
        Close the view without C{without} by force (see L{Membership.force}).

        @return: The members of the view it proposes.
        @raise CannotForceError: If this member is not blocked, or
            C{without} is empty, names itself or a member not in the view.
        """
        member = self._member
        if member.state != BLOCKED:
            raise CannotForceError(
                f"member {member.me!r} is {member.state}, not blocked: a view"
                " change needs no force"
                + (
                    " (it waits for its own to finish)"
                    if member.state == FLUSHING
                    else ""
                )
            )
        lost = set(member.suspects if without is None else without)
        unknown = sorted(lost - set(member.view.members))
        if unknown:
            verb = "is" if len(unknown) == 1 else "are"
            raise CannotForceError(
                f"{', '.join(map(repr, unknown))} {verb} not in view"
                f" {member.view.id} ({', '.join(member.view.members)})"
            )
        if member.me in lost:
            raise CannotForceError(
                f"member {member.me!r} cannot force a view without itself"
            )
        if not lost:
            raise CannotForceError(
                f"member {member.me!r} suspects no member: name the members"
                " that are gone"
            )
        member.waived = frozenset(lost)
        self.suspect(lost)
        self.consider(now, force=True)
        return tuple(
            sorted(
                [m for m in member.view.members if m not in member.suspects]
                + [j for j in member.joiners if j not in member.view.members]
            )
        )
