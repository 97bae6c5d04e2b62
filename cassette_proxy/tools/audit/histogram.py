"""Percentiles of any number of values in constant memory: a log-bucketed histogram.

A value ``v > 0`` is counted in bucket ``floor(log(v) / log(GAMMA))``, and a percentile is read
back as the geometric middle of its bucket, so it is within 1% of the exact nearest-rank value
(``sqrt(GAMMA) - 1``). Durations from a microsecond to a day fit in under 1,100 buckets, however
many exchanges a log holds; the same idea as DDSketch (Masson et al., VLDB 2019), without its
collapsing, which durations never need. The maximum is kept exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

GAMMA: Final = 1.02
_SCALE: Final = 1 / math.log(GAMMA)
ZERO: Final = -(10**6)  # the bucket of zero (and of negative values, counted as zero)


@dataclass(slots=True)
class Histogram:
    counts: dict[int, int] = field(default_factory=dict)  # bucket -> values in it
    high: float = 0.0  # the largest value, exactly

    def add(self, value: float, log: Callable[[float], float] = math.log) -> None:
        if value > self.high:  # noqa: PLR1730 - an if is cheaper than max() per value
            self.high = value
        key = math.floor(log(value) * _SCALE) if value > 0 else ZERO
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: Histogram) -> None:
        self.high = max(self.high, other.high)
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count

    @classmethod
    def merged(cls, parts: Iterable[Histogram]) -> Histogram:
        whole = cls()
        for part in parts:
            whole.merge(part)
        return whole

    def percentile(self, p: float) -> float:
        """The nearest-rank ``p``-th percentile, within 1% (0.0 when empty)."""
        count = self.count
        if not count:
            return 0.0
        rank = max(1, math.ceil(p * count / 100))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return min(value_of(key), self.high)
        return self.high  # not reached: the counts add up to count

    def buckets(self) -> list[tuple[float, float, int]]:
        """``(low, high, count)`` per bucket that holds values, in order (zero as 0..0)."""
        return [
            (0.0, 0.0, count) if key == ZERO else (GAMMA**key, GAMMA ** (key + 1), count)
            for key, count in sorted(self.counts.items())
        ]


def value_of(key: int) -> float:
    """The value a bucket stands for: its geometric middle."""
    return 0.0 if key == ZERO else float(GAMMA ** (key + 0.5))
