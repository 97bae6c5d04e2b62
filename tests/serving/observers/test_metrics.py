"""``GET /_proxy/metrics``: Prometheus counters that follow the traffic, and an exposition that
is the one prometheus_client's own Counter and Histogram give for the same exchanges."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

import prometheus_client
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cassette_proxy.contract import Checked
from cassette_proxy.contract.routes import classify
from cassette_proxy.errors import (
    CassetteMiss,
    ProxyError,
    RecordingFailed,
    UpstreamBroken,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from cassette_proxy.models.violations import Severity, Violation, ViolationKind
from cassette_proxy.serving.exchange import CASSETTE, PROXY, UPSTREAM, Exchange
from cassette_proxy.serving.observers.metrics import BUCKETS, UPSTREAM_ERRORS, Metrics
from tests import vectors
from tests.client import cancel, scrape
from tests.conftest import StartProxy


async def test_metrics_count_requests_replays_recordings_and_failures(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "metrics.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await cancel(recording, vectors.V1_ID)
    await cancel(recording, "resp_broken_1")
    recorded = await scrape(recording)
    await recording.stop()
    assert recorded["cassette_proxy_recorded_interactions_total", ()] == 2
    assert (
        recorded[
            "cassette_proxy_requests_total",
            (("route", "cancel"), ("source", "upstream"), ("status", "200")),
        ]
        == 2
    )
    assert (
        recorded[
            "cassette_proxy_validation_violations_total",
            (("route", "cancel"), ("severity", "error"), ("side", "response")),
        ]
        == 1
    )
    assert recorded["cassette_proxy_upstream_duration_seconds_count", (("route", "cancel"),)] == 2

    replaying = await start_proxy(cassette=cassette, record_mode="none")
    await cancel(replaying, vectors.V1_ID)
    await cancel(replaying, "resp_not_recorded")
    replayed = await scrape(replaying)
    assert replayed["cassette_proxy_replay_total", (("result", "hit"),)] == 1
    assert replayed["cassette_proxy_replay_total", (("result", "miss"),)] == 1
    assert replayed["cassette_proxy_request_duration_seconds_count", (("route", "cancel"),)] == 2
    assert ("cassette_proxy_recorded_interactions_total", ()) in replayed
    assert replayed["cassette_proxy_recorded_interactions_total", ()] == 0


async def test_upstream_errors_are_counted_by_kind(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(upstream="http://127.0.0.1:9")  # nothing listens on port 9
    await cancel(proxy, vectors.V1_ID)
    metrics = await scrape(proxy)
    assert metrics["cassette_proxy_upstream_errors_total", (("kind", "unreachable"),)] == 1
    assert (
        metrics[
            "cassette_proxy_requests_total",
            (("route", "cancel"), ("source", "proxy"), ("status", "502")),
        ]
        == 1
    )


# ---------------------------------------------------------------------------------------------
# The exposition, against prometheus_client's own Counter and Histogram
# ---------------------------------------------------------------------------------------------


class _Reference:
    """How the metrics were kept before they were folded in at scrape time: prometheus_client's
    own ``Counter`` and ``Histogram``, fed the same way. The exposition must not tell them apart."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
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
        self.tokens = Counter(
            "cassette_proxy_tokens",
            "Tokens by model (its folder cut off), type (input, cached, output, reasoning: input"
            " includes cached, output includes reasoning) and source (upstream or cassette);"
            " each response counted once.",
            ["model", "type", "source"],
            registry=r,
        )

    def observe(self, exchange: Exchange, status: int, duration_ms: float) -> None:
        route = exchange.route.name
        self.requests.labels(route, str(status), exchange.source).inc()
        self.duration.labels(route).observe(duration_ms / 1000)
        if exchange.upstream_ms is not None:
            self.upstream_duration.labels(route).observe(exchange.upstream_ms / 1000)
        for side, check in (
            ("request", exchange.request_check),
            ("response", exchange.response_check),
        ):
            for violation in check.violations:
                self.violations.labels(route, side, violation.severity).inc()
        code = exchange.error.code if exchange.error is not None else None
        if exchange.source == CASSETTE:
            self.replay.labels("hit").inc()
        elif code == "cassette_miss":
            self.replay.labels("miss").inc()
        if exchange.recorded:
            self.recorded.inc()
        if code in UPSTREAM_ERRORS:
            self.upstream_errors.labels(UPSTREAM_ERRORS[code]).inc()
        if exchange.tokens is not None:
            model = exchange.answered.model if exchange.answered else None
            for kind, count in exchange.tokens.by_type().items():
                if count:
                    self.tokens.labels(model or "(unknown)", kind, exchange.source).inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


Observation = tuple[Exchange, int, float]

REQUESTS = (
    ("POST", "/v1/responses"),
    ("GET", "/v1/responses/resp_1"),
    ("POST", "/v1/responses/resp_1/cancel"),
    ("DELETE", "/v1/responses/resp_1"),
    ("GET", "/v1/models"),  # pass-through
)
ERRORS: tuple[type[ProxyError] | None, ...] = (
    None,
    CassetteMiss,
    UpstreamUnreachable,
    UpstreamBroken,
    UpstreamTimeout,
    RecordingFailed,
)


def _violations(side: str, severities: Sequence[Severity]) -> list[Violation]:
    kind: ViolationKind = "request" if side == "request" else "type"
    return [Violation(pointer="", message="x", severity=s, kind=kind) for s in severities]


def _exchange(
    request: tuple[str, str],
    source: str,
    *,
    upstream_ms: float | None = None,
    error: type[ProxyError] | None = None,
    recorded: bool = False,
    request_violations: Sequence[Severity] = (),
    response_violations: Sequence[Severity] = (),
) -> Exchange:
    method, path = request
    exchange = Exchange(route=classify(method, path), method=method, raw_path=path)
    exchange.source = source
    exchange.upstream_ms = upstream_ms
    exchange.error = error("failed") if error is not None else None
    exchange.recorded = recorded
    exchange.request_check = Checked(_violations("request", request_violations), checked=True)
    exchange.response_check = Checked(_violations("response", response_violations), checked=True)
    return exchange


Samples = list[tuple[str, str, str, list[tuple[str, dict[str, str], float | None]]]]


def _parsed(exposition: bytes) -> Samples:
    """Each family's name, help, type and samples, in order; a ``_created`` sample's value (a
    time of day) as None."""
    return [
        (
            family.name,
            family.documentation,
            family.type,
            [
                (s.name, s.labels, None if s.name.endswith("_created") else s.value)
                for s in family.samples
            ],
        )
        for family in text_string_to_metric_families(exposition.decode())
    ]


def _created(exposition: bytes) -> list[float]:
    return [
        sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
        if sample.name.endswith("_created")
    ]


def _assert_same_as_prometheus_client(observations: Sequence[Observation]) -> None:
    before = time.time()
    ours, reference = Metrics(), _Reference()
    for exchange, status, duration_ms in observations:
        ours.observe(exchange, status, duration_ms)
        reference.observe(exchange, status, duration_ms)
    after = time.time()
    mine, theirs = ours.exposition(), reference.exposition()
    assert _parsed(mine) == _parsed(theirs)
    # Line for line too, once the times of day are out: the same order and formatting.
    created = re.compile(rb"^(\w+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)
    assert created.sub(rb"\1 T", mine) == created.sub(rb"\1 T", theirs)
    assert all(before <= t <= after for t in _created(mine))


def test_created_samples_follow_prometheus_clients_switch() -> None:
    metrics = Metrics()
    metrics.observe(_exchange(("POST", "/v1/responses/resp_1/cancel"), "cassette"), 200, 0.4)
    assert b"_created" in metrics.exposition()
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        assert b"_created" not in metrics.exposition()
    finally:
        prometheus_client.enable_created_metrics()  # type: ignore[no-untyped-call]


def test_no_observations_expose_what_prometheus_client_did() -> None:
    _assert_same_as_prometheus_client([])
    families = {
        family.name for family in text_string_to_metric_families(Metrics().exposition().decode())
    }
    assert "cassette_proxy_recorded_interactions" in families


def test_exposition_is_what_prometheus_client_gave_for_the_same_exchanges() -> None:
    create, retrieve, cancel, _, models = REQUESTS
    recorded = _exchange(
        cancel,
        UPSTREAM,
        upstream_ms=5.0,
        recorded=True,
        request_violations=["warning"],
        response_violations=["error", "warning"],
    )
    observations: list[Observation] = [
        (recorded, 200, 6.0),
        (_exchange(cancel, CASSETTE), 200, 0.4),
        (_exchange(cancel, CASSETTE), 200, 0.5),  # on a bucket's bound: counted in it
        (_exchange(retrieve, PROXY, error=CassetteMiss), 501, 1.0),
        (_exchange(models, PROXY, error=UpstreamUnreachable), 502, 2500.0),
        (_exchange(create, PROXY, upstream_ms=300_000.0, error=UpstreamTimeout), 504, 400_000.0),
        (_exchange(create, UPSTREAM, upstream_ms=0.0), 200, 0.0),
        (recorded, 200, 6.0),  # the same label sets again
    ]
    _assert_same_as_prometheus_client(observations)


durations = st.one_of(
    st.sampled_from([b * 1000 for b in BUCKETS]),  # on the bounds
    st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False),
)
severities = st.lists(st.sampled_from(["error", "warning"]), max_size=3)
observations = st.lists(
    st.tuples(
        st.builds(
            _exchange,
            st.sampled_from(REQUESTS),
            st.sampled_from([UPSTREAM, CASSETTE, PROXY]),
            upstream_ms=st.none() | durations,
            error=st.sampled_from(ERRORS),
            recorded=st.booleans(),
            request_violations=severities,
            response_violations=severities,
        ),
        st.sampled_from([200, 400, 404, 500, 501, 502, 504]),
        durations,
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(observations)
def test_any_exchanges_give_the_exposition_prometheus_client_gave(
    generated: list[Observation],
) -> None:
    _assert_same_as_prometheus_client(generated)
