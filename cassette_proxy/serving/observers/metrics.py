"""Prometheus metrics, served at ``GET /_proxy/metrics`` in the text exposition format.

Each application has its own registry, so several proxies in one process (a test run) never
share counters. Labels are route names, statuses, sources and error kinds: never a path, an id
or a header value, so nothing secret and nothing unbounded reaches a label.

The request path only does arithmetic on the proxy's own dicts and lists (an int per label set;
a histogram's buckets as a list of ints, found with ``bisect``); a collector registered on the
registry turns them into prometheus_client's metric families when ``/_proxy/metrics`` is
scraped. Updating prometheus_client's own ``Counter`` and ``Histogram`` children takes a lock
per ``inc()`` and ``observe()``, several times an exchange, which showed in the request path's
profile. The exposition is the one those metrics gave: the same names, help texts, types,
labels, buckets and ``_created`` samples.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any, Final, TypeAlias

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from cassette_proxy.serving.exchange import CASSETTE, Exchange

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Seconds: a replay answers in well under a millisecond, an upstream in up to minutes.
BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
# The ``le`` label of each bucket, as prometheus_client writes it ("1.0", "+Inf").
_LE: Final[tuple[str, ...]] = tuple(
    floatToGoString(b)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    for b in (*BUCKETS, float("inf"))
)
UPSTREAM_ERRORS: Final = {
    "upstream_unreachable": "unreachable",
    "upstream_broken": "broken",
    "upstream_timeout": "timeout",
}

# A label set, in the order of the metric's label names; values become strings at scrape time
# (a status stays an int on the request path).
Key: TypeAlias = tuple[str | int, ...]


MAX_MODELS: Final = 100  # distinct model labels; more are counted as OTHER_MODEL
OTHER_MODEL: Final = "(other)"
UNKNOWN_MODEL: Final = "(unknown)"


def _created_series() -> bool:
    """Whether ``_created`` samples are written: prometheus_client's own switch, which
    ``PROMETHEUS_DISABLE_CREATED_SERIES`` and ``disable_created_metrics()`` turn off."""
    return bool(getattr(prometheus_metrics, "_use_created", True))


class _Counter:
    """A counter's value per label set, and when each label set was first seen (``_created``,
    as prometheus_client reports it)."""

    __slots__ = ("counts", "created", "documentation", "labelnames", "name")

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.counts: dict[Key, int] = {}
        self.created: dict[Key, float] = {}
        if not labelnames:  # prometheus_client shows a counter without labels from the start
            self.counts[()] = 0
            self.created[()] = time.time()

    def inc(self, key: Key, amount: int = 1) -> None:
        try:
            self.counts[key] += amount
        except KeyError:
            self.counts[key] = amount
            self.created[key] = time.time()

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        created = self.created if _created_series() else {}
        for key, count in self.counts.items():
            family.add_metric([str(value) for value in key], count, created=created.get(key))
        return family


class _Buckets:
    """One route's histogram: how many observations fell in each bucket (not cumulative; the
    last is ``+Inf``), their sum, and when the route was first seen."""

    __slots__ = ("counts", "created", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.created = time.time()


class _Histogram:
    """A histogram by route, with :data:`BUCKETS`."""

    __slots__ = ("documentation", "name", "routes")

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.routes: dict[str, _Buckets] = {}

    def observe(self, route: str, seconds: float) -> None:
        buckets = self.routes.get(route)
        if buckets is None:
            buckets = self.routes[route] = _Buckets()
        # The first bucket whose bound is >= seconds: prometheus_client's ``value <= bound``.
        buckets.counts[bisect_left(BUCKETS, seconds)] += 1
        buckets.sum += seconds

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=("route",))
        for route, buckets in self.routes.items():
            cumulative = 0
            points: list[tuple[str, float]] = []
            for le, count in zip(_LE, buckets.counts, strict=True):
                cumulative += count
                points.append((le, cumulative))
            family.add_metric([route], points, buckets.sum)
            if _created_series():
                family.add_sample(f"{self.name}_created", {"route": route}, buckets.created)
        return family


class Metrics(Collector):
    """The proxy's counters and histograms, fed once per exchange, read at scrape time.

    No lock: :meth:`observe` is only called from the event loop's thread, and the scrape
    (:meth:`exposition`, through :meth:`collect`) runs on the same loop, so neither ever sees
    the other half-done.
    """

    def __init__(self) -> None:
        self.requests = _Counter(
            "cassette_proxy_requests",
            "Exchanges by route, status and source (upstream, cassette or proxy).",
            ("route", "status", "source"),
        )
        self.duration = _Histogram(
            "cassette_proxy_request_duration_seconds",
            "Time from the request's arrival to the response, by route.",
        )
        self.upstream_duration = _Histogram(
            "cassette_proxy_upstream_duration_seconds",
            "Time the upstream took to answer, by route.",
        )
        self.violations = _Counter(
            "cassette_proxy_validation_violations",
            "Contract violations found, by route, side (request or response) and severity.",
            ("route", "side", "severity"),
        )
        self.replay = _Counter(
            "cassette_proxy_replay",
            "Cassette lookups by result (hit or miss).",
            ("result",),
        )
        self.recorded = _Counter(
            "cassette_proxy_recorded_interactions",
            "Interactions recorded into the cassette.",
        )
        self.upstream_errors = _Counter(
            "cassette_proxy_upstream_errors",
            "Upstream failures by kind (unreachable, broken, timeout).",
            ("kind",),
        )
        self.tokens = _Counter(
            "cassette_proxy_tokens",
            "Tokens by model (its folder cut off), type (input, cached, output, reasoning: input"
            " includes cached, output includes reasoning) and source (upstream or cassette);"
            " each response counted once.",
            ("model", "type", "source"),
        )
        self._models: set[str] = set()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def observe(self, exchange: Exchange, status: int, duration_ms: float) -> None:
        # Called on the event loop only (see the class): plain dict and list updates, no lock.
        route = exchange.route.name
        self.requests.inc((route, status, exchange.source))
        self.duration.observe(route, duration_ms / 1000)
        if exchange.upstream_ms is not None:
            self.upstream_duration.observe(route, exchange.upstream_ms / 1000)
        for violation in exchange.request_check.violations:
            self.violations.inc((route, "request", violation.severity))
        for violation in exchange.response_check.violations:
            self.violations.inc((route, "response", violation.severity))
        code = exchange.error.code if exchange.error is not None else None
        if exchange.source == CASSETTE:
            self.replay.inc(("hit",))
        elif code == "cassette_miss":
            self.replay.inc(("miss",))
        if exchange.recorded:
            self.recorded.inc(())
        if code in UPSTREAM_ERRORS:
            self.upstream_errors.inc((UPSTREAM_ERRORS[code],))
        tokens = exchange.tokens
        if tokens is not None:
            answered = exchange.answered
            model = self._model_label(answered.model if answered is not None else None)
            source = exchange.source
            for kind, count in tokens.by_type().items():
                if count:
                    self.tokens.inc((model, kind, source), count)

    def _model_label(self, model: str | None) -> str:
        """A model as a label value: upstreams name models, so their number is capped."""
        if model is None:
            return UNKNOWN_MODEL
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return OTHER_MODEL
        self._models.add(model)
        return model

    def _counters(self) -> dict[str, _Counter]:
        return {"requests": self.requests, "violations": self.violations, "replay": self.replay,
                "recorded": self.recorded, "upstream_errors": self.upstream_errors,
                "tokens": self.tokens}  # fmt: skip

    def _histograms(self) -> dict[str, _Histogram]:
        return {"duration": self.duration, "upstream_duration": self.upstream_duration}

    def snapshot(self) -> dict[str, Any]:
        """Every count, as JSON-ready data (for another worker to add to its own)."""
        return {
            "counters": {
                name: [[list(key), count, counter.created.get(key)]
                       for key, count in counter.counts.items()]
                for name, counter in self._counters().items()
            },
            "histograms": {
                name: {route: [b.counts, b.sum, b.created] for route, b in h.routes.items()}
                for name, h in self._histograms().items()
            },
        }  # fmt: skip

    def absorb(self, snapshot: dict[str, Any]) -> None:
        """Add another worker's counts (a :meth:`snapshot`) to these."""
        counters = self._counters()
        for name, rows in snapshot.get("counters", {}).items():
            counter = counters.get(name)
            if counter is None:
                continue
            for key, count, created in rows:
                label = tuple(key)
                counter.counts[label] = counter.counts.get(label, 0) + count
                if created is not None:
                    counter.created[label] = min(counter.created.get(label, created), created)
        histograms = self._histograms()
        for name, routes in snapshot.get("histograms", {}).items():
            histogram = histograms.get(name)
            for route, (counts, total, created) in routes.items() if histogram else ():
                assert histogram is not None
                buckets = histogram.routes.get(route)
                if buckets is None:
                    buckets = histogram.routes[route] = _Buckets()
                    buckets.created = created
                buckets.counts = [a + b for a, b in zip(buckets.counts, counts, strict=True)]
                buckets.sum += total
                buckets.created = min(buckets.created, created)

    def collect(self) -> Iterator[Metric]:
        """The metric families, in the order the exposition has always had them."""
        yield self.requests.family()
        yield self.duration.family()
        yield self.upstream_duration.family()
        yield self.violations.family()
        yield self.replay.family()
        yield self.recorded.family()
        yield self.upstream_errors.family()
        yield self.tokens.family()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
