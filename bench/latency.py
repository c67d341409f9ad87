"""
A latency histogram of fixed size, so that a benchmark member recording
millions of latencies does not grow (the memory run measures its RSS).
"""

from __future__ import annotations

import math

#: Buckets per factor of e: about 2 % between neighbouring bucket edges.
_STEPS = 50.0
#: Latencies are kept in microseconds, from 1 us to about 10,000 s.
_BUCKETS = int(math.log(1e10) * _STEPS) + 1


class LatencyHistogram:
    """
    Counts of latencies in logarithmic buckets, about 2 % wide.

    @ivar count: How many latencies were recorded.
    @ivar maximum: The largest, exactly, in seconds.
    """

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.maximum = 0.0

    def record(self, seconds: float, times: int = 1) -> None:
        """
        Count a latency of C{seconds}, C{times} over (the messages of a
        batch answered together share their batch's).
        """
        us = seconds * 1e6
        bucket = int(math.log(us) * _STEPS) if us > 1.0 else 0
        self._counts[min(bucket, _BUCKETS - 1)] += times
        self.count += times
        if seconds > self.maximum:
            self.maximum = seconds

    def counts(self) -> dict[int, int]:
        """
        The buckets that hold anything, for L{merge} in another process.
        """
        return {b: n for b, n in enumerate(self._counts) if n}

    def merge(self, counts: dict[int, int] | dict[str, int], maximum: float) -> None:
        """
        Add another histogram's L{counts} (keys may have become strings in
        JSON) and its maximum in seconds.
        """
        for bucket, n in counts.items():
            self._counts[int(bucket)] += n
            self.count += n
        self.maximum = max(self.maximum, maximum)

    def percentile(self, q: float) -> float:
        """
        The latency, in milliseconds, that a fraction C{q} of them are at or
        below (the upper edge of its bucket, so at most 2 % high).

        @raise ValueError: If nothing was recorded.
        """
        if not self.count:
            raise ValueError("no latencies were recorded")
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for bucket, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                return min(self._edge_ms(bucket), self.maximum * 1000)
        return self.maximum * 1000

    def summary(self) -> dict[str, float]:
        """
        p50, p90, p99 and the maximum, in milliseconds.
        """
        return {
            "p50": self.percentile(0.5),
            "p90": self.percentile(0.9),
            "p99": self.percentile(0.99),
            "max": self.maximum * 1000,
        }

    def cdf(self) -> list[tuple[float, float]]:
        """
        The distribution as (milliseconds, fraction at or below) for every
        bucket that holds anything: what a latency CDF chart plots.
        """
        points = []
        seen = 0
        for bucket, n in enumerate(self._counts):
            if n:
                seen += n
                points.append(
                    (min(self._edge_ms(bucket), self.maximum * 1000), seen / self.count)
                )
        return points

    @staticmethod
    def _edge_ms(bucket: int) -> float:
        return math.exp((bucket + 1) / _STEPS) / 1000
