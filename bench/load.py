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


class _Window:
    """
    What both loads share: how many messages to send, how many may be
    unanswered at once, and where their latencies go.

    @ivar sent: How many messages were sent so far.
    @ivar latency: Each message's time until its answer.
    """

    def __init__(
        self,
        messages: int,
        window: int,
        latency: LatencyHistogram,
        after: Callable[[], None],
    ) -> None:
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

    def _pump(self) -> None:
        raise NotImplementedError()


class WindowedLoad(_Window):
    """
    Sends C{messages} copies of a payload through C{send}, one per call,
    keeping at most C{window} of them unanswered.
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
        super().__init__(messages, window, latency, after)
        self._send = send
        self._payload = payload

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


class BatchedLoad(_Window):
    """
    Sends C{messages} messages through C{send} in calls of at most C{batch}
    messages each, keeping at most C{window} messages unanswered (so
    several calls are in flight when the window holds several batches).
    Every message of a call is given the call's time until its answer as
    its latency.
    """

    def __init__(
        self,
        send: Callable[[int], Deferred[Any]],
        messages: int,
        batch: int,
        window: int,
        latency: LatencyHistogram,
        after: Callable[[], None] = lambda: None,
    ) -> None:
        """
        @param send: Multicasts as many messages as it is given (all alike,
            so only their number is passed); its L{Deferred} fires once all
            of them are delivered here.
        @param batch: The most messages in one call; a window that is not a
            multiple of it is topped up with smaller calls.
        @param latency: Where each message's time until its call's answer
            goes.
        @param after: Called after each round of sending, to notice the end.
        """
        super().__init__(messages, window, latency, after)
        self._send_batch = send
        self._batch = batch

    def _answered(self, _: object, started: float, count: int) -> None:
        self._in_flight -= count
        self.latency.record(time.perf_counter() - started, count)
        self._pump()

    def _pump(self) -> None:
        while self.sent < self._messages and self._in_flight < self._window:
            count = min(
                self._batch,
                self._messages - self.sent,
                self._window - self._in_flight,
            )
            self.sent += count
            self._in_flight += count
            self._send_batch(count).addCallback(
                self._answered, time.perf_counter(), count
            )
        self._after()
