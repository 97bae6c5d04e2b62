"""``GET /_proxy/metrics``: Prometheus counters that follow the traffic."""

from __future__ import annotations

from pathlib import Path

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
