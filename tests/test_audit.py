"""``cassette-proxy audit`` on logs the proxy wrote in the test."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from cassette_proxy.cli import main
from tests import vectors
from tests.client import cancel
from tests.conftest import StartProxy


def audit(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", *args], input=stdin)
    return result.exit_code, result.output


async def make_log(start_proxy: StartProxy, tmp_path: Path) -> Path:
    """A real log: valid cancels, drift, a broken body, a 404 and a miss."""
    proxy = await start_proxy(cassette=tmp_path / "replay.yaml", record_mode="new_episodes")
    for response_id in (vectors.V1_ID, vectors.V2_ID, "resp_drift_1", "resp_drift_2"):
        await cancel(proxy, response_id)
    await cancel(proxy, "resp_broken_1")
    await cancel(proxy, "resp_unknown")
    await proxy.stop()
    return proxy.log_path


async def test_summary_of_a_real_log(start_proxy: StartProxy, tmp_path: Path) -> None:
    log = await make_log(start_proxy, tmp_path)
    code, output = audit("--format", "json", str(log))
    assert code == 0, output
    report: dict[str, Any] = orjson.loads(output)
    assert report["exchanges"] == 6
    assert report["by_route"] == {"cancel": 6}
    assert report["by_status"] == {"200": 5, "404": 1}
    assert report["by_source"] == {"upstream": 6}
    latency = report["latency_ms"]["cancel"]
    assert latency["count"] == 6
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    [failure] = report["validation_failures"]
    assert failure["pointer"] == "/id"
    assert failure["count"] == 1
    assert failure["example"]
    drift = {(d["kind"], d["where"]): d for d in report["drift"]}
    status = drift["unknown_enum", "response /status"]
    assert status["count"] == 2
    assert "paused" in status["message"]
    assert drift["unknown_field", "response /brand_new_field"]["count"] == 2
    assert status["first_seen"] <= report["last"]


async def test_text_report_gz_and_stdin(start_proxy: StartProxy, tmp_path: Path) -> None:
    log = await make_log(start_proxy, tmp_path)
    compressed = tmp_path / "rotated.log.gz"
    compressed.write_bytes(gzip.compress(log.read_bytes()))
    code, output = audit(str(log), str(compressed))
    assert code == 0
    assert "12 exchanges" in output
    assert "Schema drift" in output
    assert "unknown_enum" in output
    code, piped = audit("-", stdin=log.read_bytes())
    assert "6 exchanges" in piped


async def test_a_corrupt_line_is_reported_and_the_rest_counted(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    log = await make_log(start_proxy, tmp_path)
    lines = log.read_bytes().splitlines(keepends=True)
    lines.insert(3, b'{"time": "2026-11-22T00:00:00Z", "event": "exch\n')
    log.write_bytes(b"".join(lines))
    code, output = audit("--format", "json", str(log))
    assert code == 0  # a report, not a gate: corrupt lines are listed, not fatal
    report = orjson.loads(output)
    assert report["exchanges"] == 6
    assert report["corrupt_lines"] == 1
    assert report["corrupt"][0]["line"] == 4
    assert report["corrupt"][0]["file"] == str(log)
    _, text = audit(str(log))
    assert f"{log}:4: not JSON" in text


async def test_since_and_until_select_a_window(start_proxy: StartProxy, tmp_path: Path) -> None:
    log = await make_log(start_proxy, tmp_path)
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    times = [e["time"] for e in events if e["event"] == "exchange"]
    code, output = audit("--format", "json", "--since", times[2], "--until", times[4], str(log))
    report = orjson.loads(output)
    assert report["exchanges"] == len([t for t in times if times[2] <= t < times[4]])
    assert report["left_out"] == 6 - report["exchanges"]
    code, output = audit("--since", "yesterday", str(log))
    assert code == 2
    assert "not an ISO 8601 time" in output


async def test_events_of_the_wrong_shape_are_corrupt_lines_not_a_crash(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    log = await make_log(start_proxy, tmp_path)
    good = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    exchange = next(e for e in good if e["event"] == "exchange")
    broken = [
        exchange | {"status": "abc"},
        exchange | {"status": None},
        exchange | {"validation": ["not", "an", "object"]},
        exchange | {"duration_ms": "x"},
        exchange | {"time": "yesterday"},
        exchange | {"validation": {"response": {"violations": [1]}}},
        exchange | {"validation": {"response": {"violations": [{"kind": ["x"]}]}}},
    ]
    log.write_bytes(log.read_bytes() + b"".join(orjson.dumps(e) + b"\n" for e in broken))
    first_broken = len(good) + 1
    code, output = audit("--format", "json", "--since", "2000-01-01", str(log))
    assert code == 0, output
    report = orjson.loads(output)
    assert report["exchanges"] == 6  # the good ones, all counted
    assert report["corrupt_lines"] == len(broken)
    assert [c["line"] for c in report["corrupt"]] == list(
        range(first_broken, first_broken + len(broken))
    )
    reasons = [c["error"] for c in report["corrupt"]]
    assert reasons[0] == 'not an exchange event: status is "abc", not an integer'
    assert "time 'yesterday' is not an ISO 8601 time" in reasons[4]


async def test_a_truncated_gz_is_reported_and_the_other_files_still_counted(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    log = await make_log(start_proxy, tmp_path)
    whole = gzip.compress(log.read_bytes() * 50)
    truncated = tmp_path / "cut.log.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    code, output = audit("--format", "json", str(truncated), str(log))
    assert code == 0, output
    report = orjson.loads(output)
    [corrupt] = report["corrupt"]
    assert corrupt["file"] == str(truncated)
    assert "cannot be read from here" in corrupt["error"]
    # The whole plain log (6), and the exchanges the .gz held before the cut.
    assert 6 < report["exchanges"] < 6 * 51


def test_a_file_that_is_not_a_log_says_so_and_fails() -> None:
    demo = Path(__file__).parent.parent / "cassettes" / "demo.yaml"
    result = CliRunner().invoke(main, ["audit", str(demo)])
    assert result.exit_code == 1
    assert "no line is a cassette-proxy log event" in result.output
    assert "cassette-proxy cassette check" in result.output
    lines = len(demo.read_text().splitlines())
    assert f"... and {lines - 20:,} more" in result.output  # 20 shown, the rest counted
