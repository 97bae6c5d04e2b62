"""The tables every report format shows, computed once from a :class:`Summary`.

Text, JSON and HTML render the same :class:`Tables`, so they cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cassette_proxy.tools.audit.histogram import Histogram
from cassette_proxy.tools.audit.summary import (
    REPLAYED,
    FindingKey,
    Group,
    RouteLatency,
    SlowExchange,
    Summary,
)
from cassette_proxy.tools.audit.tokens import Prices, TokenCount

ALL: Final = "(all)"
# Said in place of the streams' time to headers when it would repeat the latency table's.
STREAM_TTFB_ABOVE: Final = (
    "time to the upstream's headers: see the latency table of ttfb_ms (every exchange that "
    "logged one is a stream)"
)
PERCENTILES: Final = (50, 90, 99)
# Widths a time bucket may have, in minutes: the smallest that keeps the buckets few is chosen.
_WIDTHS: Final = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
_MINUTE_FORMAT: Final = "%Y-%m-%dT%H:%M"

# Which time of an exchange a latency table shows.
LATENCIES: Final[dict[str, tuple[str, Callable[[RouteLatency], Histogram]]]] = {
    "total": ("the whole exchange (duration_ms)", lambda route: route.total),
    "upstream": ("in the upstream (upstream_ms)", lambda route: route.upstream),
    "own": (
        "the proxy's own, cassette replays apart (duration_ms - upstream_ms)",
        lambda route: route.own,
    ),
    "replay": (
        "cassette replays, the recorded waits of --replay-timing recorded taken out "
        "(duration_ms - replay_wait_ms)",
        lambda route: route.replay,
    ),
    "ttfb": ("to the upstream's response headers (ttfb_ms)", lambda route: route.ttfb),
    "stream_ttfb": ("streams, to the upstream's headers (ttfb_ms)", lambda r: r.stream_ttfb),
}


@dataclass(frozen=True, slots=True)
class LatencyRow:
    route: str
    count: int
    p50: float
    p90: float
    p99: float
    max: float
    histogram: Histogram


@dataclass(frozen=True, slots=True)
class Bucket:
    start: str  # the first minute, YYYY-MM-DDTHH:MM
    requests: int
    errors: int


@dataclass(frozen=True, slots=True)
class TimeSeries:
    width: int  # minutes per bucket
    buckets: list[Bucket]
    busiest: Bucket | None  # the minute with the most requests
    worst: Bucket | None  # the minute with the most errors (None if no errors)
    minutes: int  # from the first minute to the last, inclusive

    @property
    def mean_per_minute(self) -> float:
        return sum(b.requests for b in self.buckets) / self.minutes if self.minutes else 0.0


@dataclass(frozen=True, slots=True)
class Finding:
    key: FindingKey
    group: Group


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    group: Group


@dataclass(frozen=True, slots=True)
class StreamTable:
    count: int
    complete: int
    events_p50: float
    events_p90: float
    events_max: float
    types: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class TokenRow:
    model: str
    route: str
    source: str  # upstream (spent) or cassette (replayed: spent when it was recorded)
    count: TokenCount
    # By the price table; None without one, without a price for the model, or replayed
    cost: float | None

    @property
    def replayed(self) -> bool:
        return self.source == REPLAYED


@dataclass(frozen=True, slots=True)
class Tables:
    statuses: list[int]  # the columns of the route x status table
    route_status: list[tuple[str, dict[int, int], int]]  # route, count per status, total
    by_status: dict[int, int]
    by_route: dict[str, int]
    by_source: list[tuple[str, int]]
    by_verdict: list[tuple[str, int]]
    error_codes: list[ErrorCode]
    latency: dict[str, list[LatencyRow]]  # a key of LATENCIES -> rows, (all) first
    slowest: list[SlowExchange]
    failures: list[Finding]  # error-level violations, most frequent first
    drift: list[Finding]  # drift warnings, earliest first
    warnings: list[Finding]  # every other warning, most frequent first
    warnings_by_kind: list[tuple[str, int]]
    streams: StreamTable | None
    not_recorded: list[tuple[str, int]]
    tokens: list[TokenRow]  # by model, then route, most tokens first

    @classmethod
    def of(cls, summary: Summary, prices: Prices | None = None) -> Tables:
        per_route: dict[str, Counter[int]] = {}
        by_status: Counter[int] = Counter()
        by_source: Counter[str] = Counter()
        by_verdict: Counter[str] = Counter()
        for (route, status, source, verdict), count in summary.kinds.items():
            per_route.setdefault(route, Counter())[status] += count
            by_status[status] += count
            by_source[source] += count
            by_verdict[verdict] += count
        statuses = sorted(by_status)
        route_status = sorted(
            ((route, dict(row), row.total()) for route, row in per_route.items()),
            key=lambda item: (-item[2], item[0]),
        )
        findings = [Finding(key, group) for key, group in summary.findings.items()]
        by_count = sorted(findings, key=lambda f: (-f.group.count, f.key))
        warnings_by_kind: Counter[str] = Counter()
        for finding in findings:
            if finding.key.severity == "warning":
                warnings_by_kind[finding.key.kind] += finding.group.count
        return cls(
            statuses=statuses,
            route_status=route_status,
            by_status=dict(sorted(by_status.items())),
            by_route={route: total for route, _, total in route_status},
            by_source=_most_common(by_source),
            by_verdict=_most_common(by_verdict),
            error_codes=sorted(
                (ErrorCode(code, status, group) for (code, status), group in summary.codes.items()),
                key=lambda e: (-e.group.count, e.code, e.status),
            ),
            latency={name: _latency_rows(summary, pick) for name, (_, pick) in LATENCIES.items()},
            slowest=sorted(summary.slowest, reverse=True),
            failures=[f for f in by_count if f.key.severity == "error"],
            drift=sorted(
                (f for f in findings if f.key.is_drift),
                key=lambda f: (f.group.first_seen, f.key),
            ),
            warnings=[f for f in by_count if f.key.severity != "error" and not f.key.is_drift],
            warnings_by_kind=_most_common(warnings_by_kind),
            streams=_streams(summary),
            not_recorded=_most_common(summary.not_recorded),
            tokens=sorted(
                (
                    TokenRow(
                        model,
                        route,
                        source,
                        count,
                        prices.cost(model, count) if prices and source != REPLAYED else None,
                    )
                    for (model, route, source), count in summary.tokens.items()
                ),
                key=lambda row: (
                    row.replayed,
                    -(row.count.input + row.count.output),
                    row.model,
                    row.route,
                ),
            ),
        )

    def status_columns(self, most: int) -> tuple[list[int], bool]:
        """The statuses a route x status table shows as columns: all of them if they are at
        most ``most``, else the ``most - 1`` with the most exchanges (in order), and True: the
        others are summed in one column."""
        if len(self.statuses) <= most:
            return self.statuses, False
        busiest = sorted(self.by_status, key=lambda status: (-self.by_status[status], status))
        return sorted(busiest[: most - 1]), True

    @property
    def stream_ttfb_apart(self) -> bool:
        """Whether the streams' time to headers is a table of its own: not when every exchange
        that logged a time to headers is a stream (it would be the ``ttfb`` table again)."""
        streams, every = self.latency["stream_ttfb"], self.latency["ttfb"]
        return bool(streams) and streams[0].count != every[0].count

    def percentile(self, p: int) -> float:
        """The whole exchange's ``p``-th percentile over every route."""
        rows = self.latency["total"]
        return rows[0].histogram.percentile(p) if rows else 0.0


def time_series(summary: Summary, max_buckets: int) -> TimeSeries:
    """Requests and errors over time, in at most ``max_buckets`` buckets of equal width, however
    far apart the log's times are (0001 and 9999: buckets of many weeks)."""
    if not summary.minutes:
        return TimeSeries(1, [], None, None, 0)
    epoch = datetime(1970, 1, 1)
    offsets = {
        minute: int((datetime.strptime(minute, _MINUTE_FORMAT) - epoch).total_seconds() // 60)
        for minute in summary.minutes
    }
    first = min(offsets.values())
    last = max(offsets.values())
    span = last - first + 1
    width = _width(span, max_buckets)
    origin = first // width * width
    while (last - origin) // width + 1 > max_buckets:  # aligned, one more may be needed
        width = _width(span, max_buckets, wider_than=width)
        origin = first // width * width
    count = (last - origin) // width + 1
    requests = [0] * count
    errors = [0] * count
    for minute, (asked, failed) in summary.minutes.items():
        index = (offsets[minute] - origin) // width
        requests[index] += asked
        errors[index] += failed
    buckets = [
        # A bucket starts at its first minute, or at the log's first if that is later (the
        # aligned start of the first bucket may lie before year 1).
        Bucket(_minute(epoch, max(origin + i * width, first)), requests[i], errors[i])
        for i in range(count)
    ]
    busiest_minute = max(summary.minutes.items(), key=lambda item: (item[1][0], item[0]))
    worst_minute = max(summary.minutes.items(), key=lambda item: (item[1][1], item[0]))
    return TimeSeries(
        width,
        buckets,
        Bucket(busiest_minute[0], *busiest_minute[1]),
        Bucket(worst_minute[0], *worst_minute[1]) if worst_minute[1][1] else None,
        span,
    )


def _width(span: int, max_buckets: int, wider_than: int = 0) -> int:
    """The smallest width (in minutes) of :data:`_WIDTHS`, or past them a whole number of
    weeks, that cuts ``span`` minutes into at most ``max_buckets``."""
    for width in _WIDTHS:
        if width > wider_than and -(-span // width) <= max_buckets:
            return width
    week = _WIDTHS[-1]
    weeks = max(-(-span // (max_buckets * week)), wider_than // week + 1)
    return weeks * week


def _minute(epoch: datetime, offset: int) -> str:
    moment = epoch + timedelta(minutes=offset)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}"
    )


def _latency_rows(summary: Summary, pick: Callable[[RouteLatency], Histogram]) -> list[LatencyRow]:
    routes = {route: pick(latency) for route, latency in sorted(summary.latency.items())}
    rows = [_row(route, histogram) for route, histogram in routes.items() if histogram.counts]
    if rows:
        rows.insert(0, _row(ALL, Histogram.merged(routes.values())))
    return rows


def _row(route: str, histogram: Histogram) -> LatencyRow:
    p50, p90, p99 = (histogram.percentile(p) for p in PERCENTILES)
    return LatencyRow(route, histogram.count, p50, p90, p99, histogram.high, histogram)


def _streams(summary: Summary) -> StreamTable | None:
    streams = summary.streams
    if not streams.count:
        return None
    return StreamTable(
        streams.count,
        streams.complete,
        streams.events.percentile(50),
        streams.events.percentile(90),
        streams.events.high,
        _most_common(streams.types),
    )


def _most_common(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))
