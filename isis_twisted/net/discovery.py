"""
Joining a running group from an address: ask who listens there.

A member started with C{--join HOST:PORT} knows neither the names of the
group's members nor the list the group was started with, which every
HELLO must carry.  It dials each address it was given and sends L{Who};
a member answers with L{Here} (its name, its view, the founding list and
the addresses of its view's members) and closes.  The node then asks the
view's members to be added, as a restarted member does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure

from isis_twisted.core.wire import (
    FATAL_REFUSALS,
    Here,
    Refuse,
    Who,
    WireError,
    decode,
    encode_who,
)


@attrs.frozen
class Found:
    """
    A member answered.

    @ivar address: The address it was dialled at.
    @ivar here: Its answer.
    """

    address: str
    here: Here


class NoAnswerError(Exception):
    """
    An address gave no answer: the sentence says why.

    @ivar code: The REFUSE code, if it refused.
    """

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code


class _Asking(Int32StringReceiver):
    """
    One discovery connection: send L{Who}, take L{Here} or a REFUSE.
    """

    MAX_LENGTH = 1 << 20

    def __init__(self, group: str, answer: Deferred[Here]) -> None:
        self.group = group
        self.answer = answer

    def connectionMade(self) -> None:
        self.sendString(encode_who(Who(self.group)))  # type: ignore[no-untyped-call]

    def stringReceived(self, string: bytes) -> None:
        try:
            frame = decode(string)
        except WireError as e:
            self._settle(NoAnswerError(f"it sent a malformed frame: {e}"))
            return
        if isinstance(frame, Here):
            self._settle(frame)
        elif isinstance(frame, Refuse):
            self._settle(NoAnswerError(f"it refused: {frame.reason}", frame.code))
        else:
            self._settle(NoAnswerError("it answered with something other than HERE"))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._settle(
            NoAnswerError(
                "it closed the connection without answering (is it a member of an"
                " older version?)"
            )
        )

    def _settle(self, outcome: Here | NoAnswerError) -> None:
        if self.answer.called:
            return
        if isinstance(outcome, Here):
            self.answer.callback(outcome)
        else:
            self.answer.errback(outcome)
        if self.transport is not None:
            self.transport.loseConnection()


class _AskingFactory(Factory):
    # A line a connection for what the node says itself, once.
    noisy = False

    def __init__(self, group: str, answer: Deferred[Here]) -> None:
        self.group = group
        self.answer = answer

    def buildProtocol(self, addr: object) -> _Asking:
        return _Asking(self.group, self.answer)


def ask(reactor: Any, address: str, group: str, timeout: float) -> Deferred[Found]:
    """
    Ask who listens at C{address} (an endpoint description).

    @param reactor: The reactor (it dials and times the answer).
    @return: Fires with L{Found}, or fails with L{NoAnswerError}.
    """
    answer: Deferred[Here] = Deferred()
    connected: list[_Asking] = []

    def failed(failure: Failure) -> None:
        if not answer.called:
            answer.errback(
                NoAnswerError(f"cannot connect: {failure.getErrorMessage()}")
            )

    def timed_out() -> None:
        if not answer.called:
            answer.errback(NoAnswerError(f"no answer within {timeout:g} s"))

    connecting = clientFromString(reactor, address).connect(
        _AskingFactory(group, answer)
    )
    connecting.addCallbacks(connected.append, failed)
    timer = reactor.callLater(timeout, timed_out)

    def done(result: object) -> object:
        if timer.active():
            timer.cancel()
        connecting.cancel()
        for proto in connected:
            if proto.transport is not None:
                proto.transport.loseConnection()
        return result

    answer.addBoth(done)
    return answer.addCallback(lambda here: Found(address, here))


class Discovery:
    """
    Ask every address in turn until a member answers, backing off between
    rounds; give up with one sentence when every address refused for a
    reason no retry changes (another group).

    @ivar attempts: Rounds tried so far.
    @ivar last_problem: Why the last round found nobody.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        me: str,
        group: str,
        addresses: Sequence[str],
        found: Callable[[Found], None],
        fatal: Callable[[str], None],
        timeout: float = 5.0,
        max_delay: float = 2.0,
    ) -> None:
        """
        @param reactor: The reactor (it dials, and times answers and
            retries).
        @param me: The asking member's name, for log lines.
        @param group: The group it means to join.
        @param addresses: Where members may listen: endpoint descriptions.
        @param found: Called once, with the first answer.
        @param fatal: Called once, with one sentence, if every address
            refused for a reason no retry changes; then it stops.
        @param timeout: Seconds one address has to answer.
        @param max_delay: The longest wait between rounds.
        """
        self.reactor = reactor
        self.me = me
        self.group = group
        self.addresses = list(addresses)
        self._found = found
        self._fatal = fatal
        self.timeout = timeout
        self.max_delay = max_delay
        self.attempts = 0
        self.last_problem: str | None = None
        self._retry: IDelayedCall | None = None
        self._stopped = True

    def start(self) -> None:
        """
        Start asking.
        """
        self._stopped = False
        self._round()

    def stop(self) -> None:
        """
        Stop asking.
        """
        self._stopped = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _round(self) -> None:
        self._retry = None
        self.attempts += 1
        self._next(0, [])

    def _next(self, at: int, problems: list[tuple[str, NoAnswerError]]) -> None:
        if self._stopped:
            return
        if at == len(self.addresses):
            self._nobody(problems)
            return
        address = self.addresses[at]

        def failed(failure: Failure) -> None:
            error = failure.value
            if not isinstance(error, NoAnswerError):
                error = NoAnswerError(failure.getErrorMessage())
            problems.append((address, error))
            self._next(at + 1, problems)

        asking = ask(self.reactor, address, self.group, self.timeout)
        asking.addCallbacks(self._answered, failed)

    def _answered(self, found: Found) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._log.info(
            "member {me!r} found member {member!r} of group {group!r} at {address},"
            " in view {view}",
            me=self.me,
            member=found.here.member,
            group=self.group,
            address=found.address,
            view=found.here.view,
        )
        self._found(found)

    def _nobody(self, problems: list[tuple[str, NoAnswerError]]) -> None:
        sentence = "; ".join(f"{address}: {error}" for address, error in problems)
        if problems and all(e.code in FATAL_REFUSALS for _, e in problems):
            self._stopped = True
            self._fatal(
                f"member {self.me!r} cannot join group {self.group!r}: every --join"
                f" address refused it ({sentence}); start it with the --group of"
                " the other members"
            )
            return
        if sentence != self.last_problem:
            # Said once per kind of failure, not once a round.
            self._log.warn(
                "member {me!r} found no member of group {group!r} to join yet"
                " ({problems}); it goes on asking",
                me=self.me,
                group=self.group,
                problems=sentence,
            )
        self.last_problem = sentence
        delay = min(self.max_delay, 0.1 * 2 ** min(self.attempts, 10))
        self._retry = self.reactor.callLater(delay, self._round)
