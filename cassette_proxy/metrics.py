"""Prometheus metrics, served at ``GET /_proxy/metrics`` in the text exposition format.

Each application has its own registry, so several proxies in one process (a test run) never
share counters. Labels are route names, statuses, sources and error kinds: never a path, an id
or a header value, so nothing secret and nothing unbounded reaches a label.
"""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from cassette_proxy.exchange import CASSETTE, Exchange

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Seconds: a replay answers in well under a millisecond, an upstream in up to minutes.
BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
UPSTREAM_ERRORS: Final = {
    "upstream_unreachable": "unreachable",
    "upstream_broken": "broken",
    "upstream_timeout": "timeout",
}


class Metrics:
    """The proxy's counters and histograms, fed once per exchange."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "cassette_proxy_requests",
            "Exchanges by route, status and source (upstream, cassette or proxy).",
            ["route", "status", "source"],
            registry=r,
        )
        self.duration = Histogram(
            "cassette_proxy_request_duration_seconds",
            "Time from the request's arrival to the response, by route.",
            ["route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "cassette_proxy_upstream_duration_seconds",
            "Time the upstream took to answer, by route.",
            ["route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.violations = Counter(
            "cassette_proxy_validation_violations",
            "Contract violations found, by route, side (request or response) and severity.",
            ["route", "side", "severity"],
            registry=r,
        )
        self.replay = Counter(
            "cassette_proxy_replay",
            "Cassette lookups by result (hit or miss).",
            ["result"],
            registry=r,
        )
        self.recorded = Counter(
            "cassette_proxy_recorded_interactions",
            "Interactions recorded into the cassette.",
            registry=r,
        )
        self.upstream_errors = Counter(
            "cassette_proxy_upstream_errors",
            "Upstream failures by kind (unreachable, broken, timeout).",
            ["kind"],
            registry=r,
        )

        # Each label set's child, once: prometheus_client's labels() takes a lock and checks
        # its arguments on every call, which showed in the request path's profile.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, exchange: Exchange, status: int, duration_ms: float) -> None:
        route = exchange.route.name
        self._child(self.requests, route, str(status), exchange.source).inc()
        self._child(self.duration, route).observe(duration_ms / 1000)
        if exchange.upstream_ms is not None:
            self._child(self.upstream_duration, route).observe(exchange.upstream_ms / 1000)
        for side, check in (
            ("request", exchange.request_check),
            ("response", exchange.response_check),
        ):
            for violation in check.violations:
                self._child(self.violations, route, side, violation.severity).inc()
        code = exchange.error.code if exchange.error is not None else None
        if exchange.source == CASSETTE:
            self._child(self.replay, "hit").inc()
        elif code == "cassette_miss":
            self._child(self.replay, "miss").inc()
        if exchange.recorded:
            self.recorded.inc()
        if code in UPSTREAM_ERRORS:
            self._child(self.upstream_errors, UPSTREAM_ERRORS[code]).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
