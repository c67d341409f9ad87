"""
Load at saturation for a benchmark member: multicast as fast as a window
of unanswered calls allows, timing each call until its answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from latency import LatencyHistogram
from twisted.internet.defer import Deferred


class WindowedLoad:
    """
    Sends C{messages} copies of a payload through C{send}, keeping at most
    C{window} of them unanswered.

    @ivar sent: How many were sent so far.
    @ivar latency: Each call's time until its answer.
    """

    def __init__(
        self,
        send: Callable[[bytes], Deferred[Any]],
        payload: bytes,
        messages: int,
        window: int,
        latency: LatencyHistogram,
        after: Callable[[], None] = lambda: None,
    ) -> None:
        """
        @param send: Multicasts a payload; its L{Deferred} fires once the
            message is delivered here.
        @param latency: Where each call's time until its answer goes.
        @param after: Called after each round of sending, to notice the end.
        """
        self._send = send
        self._payload = payload
        self._messages = messages
        self._window = window
        self._after = after
        self.sent = 0
        self._in_flight = 0
        self.latency = latency

    def start(self) -> None:
        """
        Send the first window.
        """
        self._pump()

    def _answered(self, _: object, started: float) -> None:
        self._in_flight -= 1
        self.latency.record(time.perf_counter() - started)
        self._pump()

    def _pump(self) -> None:
        while self.sent < self._messages and self._in_flight < self._window:
            self.sent += 1
            self._in_flight += 1
            self._send(self._payload).addCallback(self._answered, time.perf_counter())
        self._after()
