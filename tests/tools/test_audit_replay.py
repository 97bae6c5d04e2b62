"""``audit`` on replays: a cassette replay's time (which, with ``--replay-timing recorded``,
holds the recorded waits it reproduces) is reported apart from the proxy's own overhead on the
exchanges it forwarded, and the time to the upstream's headers is one table, shown once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import StartProxy
from tests.serving.test_streaming import read_events
from tests.stream_upstream import StreamUpstream
from tests.tools.test_audit import audit, audit_json, exchanges_in
from tests.tools.test_audit_html import html_report, table_rows

GAP = 0.05  # seconds between the recorded stream's events: its replay waits 9 of them


async def timed_replay_logs(
    start_proxy: StartProxy, aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> list[Path]:
    """Real logs: a streamed create recorded from a slow upstream, then replayed with
    ``--replay-timing recorded`` (the replay waits as the upstream did)."""
    upstream = StreamUpstream(gap=GAP, words=("a", "b"))
    server = await aiohttp_server(upstream.app(), host="127.0.0.1")
    url = str(server.make_url("")).rstrip("/")
    cassette = tmp_path / "timed.yaml"
    recording = await start_proxy(upstream=url, cassette=cassette, record_mode="once")
    await read_events(recording)
    await recording.stop()
    replay = await start_proxy(
        upstream=url, cassette=cassette, record_mode="none", replay_timing="recorded"
    )
    await read_events(replay)
    await replay.stop()
    return [recording.log_path, replay.log_path]


def row_text(row: dict[str, Any]) -> str:
    """A latency row of the JSON report as the text report prints it, after the route."""
    return (
        f"{row['count']:>9,} {row['p50']:>9.2f} {row['p90']:>9.2f} "
        f"{row['p99']:>9.2f} {row['max']:>9.2f}"
    )


async def test_a_timed_replays_wait_is_not_the_proxys_own_time(
    start_proxy: StartProxy, aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> None:
    logs = await timed_replay_logs(start_proxy, aiohttp_server, tmp_path)
    events = exchanges_in(*logs)
    [forwarded] = [e for e in events if e["source"] == "upstream"]
    [replayed] = [e for e in events if e["source"] == "cassette"]
    assert replayed["duration_ms"] > 9 * GAP * 1000 * 0.8  # it did wait as recorded
    assert replayed["upstream_ms"] is None

    report = audit_json(*map(str, logs))
    own = report["proxy_ms"]["(all)"]
    assert own["count"] == 1  # the forwarded exchange only
    assert own["max"] == forwarded["duration_ms"] - forwarded["upstream_ms"]
    assert own["max"] < replayed["duration_ms"] / 10
    # The log line says how long the replay waited on purpose; the audit takes it out.
    assert replayed["replay_wait_ms"] > 9 * GAP * 1000 * 0.8
    assert forwarded["replay_wait_ms"] is None
    replays = report["replay_ms"]["(all)"]
    assert replays["count"] == 1
    own_part = replayed["duration_ms"] - replayed["replay_wait_ms"]
    assert replays["max"] == pytest.approx(own_part, abs=0.01)
    assert replays["max"] < replayed["duration_ms"] / 10

    code, output = audit(*map(str, logs))
    assert code == 0, output
    assert "Latency (ms), the proxy's own, cassette replays apart (duration_ms - upstream_ms):" in (
        output
    )
    assert (
        "Latency (ms), cassette replays, the recorded waits of --replay-timing recorded taken "
        "out (duration_ms - replay_wait_ms):"
    ) in output
    assert f"  {'(all)':<24} {row_text(own)}" in output
    assert f"  {'(all)':<24} {row_text(replays)}" in output


async def test_the_time_to_headers_table_is_shown_once(
    start_proxy: StartProxy, aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> None:
    """Every exchange that logged a time to headers is a stream here: the streams' table would
    be the same table again."""
    logs = await timed_replay_logs(start_proxy, aiohttp_server, tmp_path)
    report = audit_json(*map(str, logs))
    ttfb = report["ttfb_ms"]["(all)"]
    assert report["streams"]["ttfb_ms"]["(all)"] == ttfb  # the same exchanges

    # Another table's row could show the same figures by chance: it is counted apart.
    same = sum(
        report.get(name, {}).get("(all)") == ttfb
        for name in ("latency_ms", "upstream_ms", "proxy_ms", "replay_ms")
    )

    code, output = audit(*map(str, logs))
    assert code == 0, output
    assert output.count(f"  {'(all)':<24} {row_text(ttfb)}") == 1 + same, output
    assert "Latency (ms), to the upstream's response headers (ttfb_ms):" in output
    assert "time to the upstream's headers: see the latency table of ttfb_ms" in output

    _, page = html_report(*map(str, logs))
    shown = [f"{ttfb['count']:,}", *(f"{ttfb[p]:.2f}" for p in ("p50", "p90", "p99", "max"))]
    rows = [row for table in page.root.all("table") for row in table_rows(table)]
    assert sum(row == ["(all)", *shown] for row in rows) == 1 + same, rows
