"""``cassette-proxy audit`` on logs the proxy wrote in the test: the first questions an auditor
asks, the filters and the ``--fail-on`` thresholds, each checked against the log lines."""

from __future__ import annotations

import gzip
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from cassette_proxy.cli import main
from tests import vectors
from tests.client import cancel, post
from tests.conftest import StartProxy
from tests.serving.test_upstream import closed_port

Event = dict[str, Any]


def audit(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", *args], input=stdin)
    return result.exit_code, result.output


def audit_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["audit", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = orjson.loads(result.stdout)
    return document


def exchanges_in(*logs: Path) -> list[Event]:
    return [
        event
        for log in logs
        for event in map(orjson.loads, log.read_bytes().splitlines())
        if event["event"] == "exchange"
    ]


async def make_logs(start_proxy: StartProxy, tmp_path: Path) -> list[Path]:
    """Three real logs: a recording run (valid cancels, drift, a broken body, a 404, a 409, a
    pass-through call), a replay (a hit and a miss), and a proxy whose upstream is down."""
    cassette = tmp_path / "replay.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="new_episodes")
    for response_id in (vectors.V1_ID, vectors.V2_ID, "resp_drift_1", "resp_drift_2",
                        "resp_broken_1", "resp_unknown", "resp_conflict_1"):  # fmt: skip
        await cancel(recording, response_id)
    await post(recording, "/v1/files")
    await recording.stop()
    replay = await start_proxy(cassette=cassette, record_mode="none")
    await cancel(replay, vectors.V1_ID)
    await cancel(replay, "resp_never_recorded")
    await replay.stop()
    down = await start_proxy(upstream=f"http://127.0.0.1:{closed_port()}")
    await cancel(down, vectors.V1_ID)
    await cancel(down, vectors.V2_ID)
    await down.stop()
    return [recording.log_path, replay.log_path, down.log_path]


def went_wrong(event: Event) -> bool:
    return bool(event["error"]) or event["status"] >= 500 or event["verdict"] == "failed"


def nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


async def test_the_first_questions_are_answered_as_the_log_says(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    logs = await make_logs(start_proxy, tmp_path)
    events = exchanges_in(*logs)
    report = audit_json(*map(str, logs))
    assert report["exchanges"] == len(events) == 12

    # Errors by the proxy's code, with their status, as logged.
    codes = Counter((e["error"], e["status"]) for e in events if e["error"])
    assert codes == {("upstream_unreachable", 502): 2, ("cassette_miss", 501): 1}
    assert {(c["code"], c["status"]): c["count"] for c in report["errors_by_code"]} == codes
    assert report["errors"] == sum(map(went_wrong, events)) == 4  # and the broken body

    # Every warning kind, not only drift: the 409 is an undocumented status.
    kinds = Counter(
        v["kind"]
        for e in events
        for side in e["validation"].values()
        for v in side["violations"]
        if v["severity"] == "warning"
    )
    assert kinds["undocumented_status"] == 1
    assert report["warnings_by_kind"] == dict(kinds)
    assert {w["kind"] for w in report["warnings"]} >= {"undocumented_status", "missing"}

    # Route x status.
    route_status: dict[str, Counter[str]] = {}
    for e in events:
        route_status.setdefault(e["route"], Counter())[str(e["status"])] += 1
    assert report["route_status"] == route_status
    assert route_status["cancel"]["502"] == 2
    assert route_status["passthrough"] == {"200": 1}

    # Requests and errors per minute.
    minutes = Counter(e["time"][:16] for e in events)
    assert {m["minute"]: m["requests"] for m in report["per_minute"]} == minutes
    assert sum(m["errors"] for m in report["per_minute"]) == 4

    # The slowest exchanges, with their ids.
    slowest = sorted(events, key=lambda e: -e["duration_ms"])[:10]
    assert [s["id"] for s in report["slowest"]] == [e["id"] for e in slowest]

    # Upstream time, the proxy's own and the replays', per route, within 1% of the exact
    # percentiles. A replay's time is not the proxy's own (a timed replay waits on purpose).
    cancels = [e for e in events if e["route"] == "cancel"]
    forwarded = [e for e in cancels if e["upstream_ms"] is not None]
    replayed = [e for e in cancels if e["source"] == "cassette"]
    own = [e["duration_ms"] - (e["upstream_ms"] or 0) for e in cancels if e not in replayed]
    for key, values in (
        ("upstream_ms", [e["upstream_ms"] for e in forwarded]),
        ("proxy_ms", own),
        ("replay_ms", [e["duration_ms"] for e in replayed]),
        ("latency_ms", [e["duration_ms"] for e in cancels]),
    ):
        row = report[key]["cancel"]
        assert row["count"] == len(values), key
        assert row["max"] == max(values), key
        for p in (50, 90, 99):
            assert row[f"p{p}"] == pytest.approx(nearest_rank(values, p), rel=0.01, abs=1e-3)
    assert report["proxy_ms"]["cancel"]["count"] == 10  # the miss is all the proxy's
    assert report["replay_ms"]["cancel"]["count"] == 1  # the replayed hit


async def test_the_text_report_shows_each_answer(start_proxy: StartProxy, tmp_path: Path) -> None:
    logs = await make_logs(start_proxy, tmp_path)
    code, output = audit(*map(str, logs))
    assert code == 0, output
    slowest = max(exchanges_in(*logs), key=lambda e: e["duration_ms"])
    for expected in (
        "12 exchanges",
        "4 went wrong (33.3%)",
        "By route and status:",
        "Errors by the proxy's code:",
        "2 x upstream_unreachable",
        "Requests and errors per minute",
        "the proxy's own, cassette replays apart (duration_ms - upstream_ms)",
        "cassette replays, the recorded waits of --replay-timing recorded taken out",
        "in the upstream (upstream_ms)",
        "Slowest exchanges:",
        slowest["id"],
        "Warnings by kind:",
        "undocumented_status",
        "HTTP 409 is not documented",
    ):
        assert expected in output, expected


FILTERS: list[tuple[list[str], Callable[[Event], bool]]] = [
    (["--route", "passthrough"], lambda e: e["route"] == "passthrough"),
    (["--status", "5xx"], lambda e: e["status"] >= 500),
    (["--status", "404", "--status", "409"], lambda e: e["status"] in (404, 409)),
    (["--source", "cassette"], lambda e: e["source"] == "cassette"),
    (["--source", "proxy"], lambda e: e["source"] == "proxy"),
    (["--verdict", "failed"], lambda e: e["verdict"] == "failed"),
    (["--verdict", "passed", "--verdict", "skipped"], lambda e: e["verdict"] != "failed"),
    (
        ["--route", "cancel", "--status", "2xx", "--source", "upstream"],
        lambda e: e["route"] == "cancel" and e["status"] < 300 and e["source"] == "upstream",
    ),
]


async def test_each_filter_keeps_what_it_names(start_proxy: StartProxy, tmp_path: Path) -> None:
    logs = await make_logs(start_proxy, tmp_path)
    events = exchanges_in(*logs)
    for args, keep in FILTERS:
        report = audit_json(*args, *map(str, logs))
        kept = [e for e in events if keep(e)]
        assert 0 < len(kept) < len(events), args  # a filter that keeps all proves nothing
        assert report["exchanges"] == len(kept), args
        assert report["left_out"] == len(events) - len(kept), args
        slowest = sorted(kept, key=lambda e: -e["duration_ms"])[:10]
        assert [s["id"] for s in report["slowest"]] == [e["id"] for e in slowest], args
        assert report["filters"], args
    code, output = audit("--status", "abc", str(logs[0]))
    assert code == 2
    assert "give a code such as 502 or a class such as 5xx" in output


async def test_fail_on_thresholds_gate_ci(start_proxy: StartProxy, tmp_path: Path) -> None:
    logs = [str(log) for log in await make_logs(start_proxy, tmp_path)]
    p99 = audit_json(*logs)["latency_ms"]["(all)"]["p99"]
    cases = [
        (["--fail-on", "errors"], 1, "FAILED --fail-on errors: 4 exchanges went wrong"),
        (["--fail-on", "errors>4"], 0, "ok --fail-on errors>4: 4 exchanges went wrong, within"),
        (["--fail-on", "drift"], 1, "FAILED --fail-on drift: 4 drift warnings"),
        (["--route", "passthrough", "--fail-on", "drift"], 0, "ok --fail-on drift: 0 drift"),
        (["--fail-on", "warnings"], 1, "FAILED --fail-on warnings"),
        (["--fail-on", f"p99>{p99 * 2:.3f}"], 0, "ok --fail-on p99>"),
        (["--fail-on", f"p99>{p99 / 2:.3f}"], 1, "FAILED --fail-on p99>"),
        (["--fail-on", "errors>10", "--fail-on", "p50>0"], 1, "FAILED --fail-on p50>0"),
        # A gate over nothing (a mistyped route, say) cannot pass: it would gate nothing.
        (["--route", "cancle", "--fail-on", "errors"], 1,
         "FAILED --fail-on errors: no exchange to judge"),
        (["--route", "cancle", "--fail-on", "p99>800"], 1, "FAILED --fail-on p99>800: no"),
    ]  # fmt: skip
    for args, expected_code, message in cases:
        code, output = audit(*args, *logs)
        assert code == expected_code, (args, output)
        assert message in output, (args, output)
    report = audit_json("--fail-on", "errors>10", *logs)
    assert report["gates"] == [
        {"threshold": "errors>10", "value": 4, "limit": 10, "failed": False, "empty": False}
    ]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, output = audit("--fail-on", "errors", str(empty))
    assert code == 1, output
    assert "no exchange to judge" in output
    assert audit(str(empty))[0] == 0  # without a gate, an empty log is only an empty report
    for bad in ("p99", "latency>5", "errors>x", "errors>1.5"):
        code, output = audit("--fail-on", bad, *logs)
        assert code == 2, bad
        assert "--fail-on" in output


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
    status = drift["unknown_enum", "cancel response /status"]
    assert status["count"] == 2
    assert "paused" in status["message"]
    assert drift["unknown_field", "cancel response /brand_new_field"]["count"] == 2
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
    code, piped = audit("-", stdin=gzip.compress(log.read_bytes()))  # gzip -c log | audit -
    assert code == 0, piped
    assert "6 exchanges" in piped
    # As logrotate names them with dateext, gzipped or not, in a folder.
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    (rotated / "proxy.jsonl-20261207").write_bytes(log.read_bytes())
    (rotated / "proxy.jsonl-20261206.gz").write_bytes(gzip.compress(log.read_bytes()))
    code, output = audit(str(rotated))
    assert code == 0, output
    assert "12 exchanges" in output


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
    demo = Path(__file__).parents[2] / "cassettes" / "demo.yaml"
    result = CliRunner().invoke(main, ["audit", str(demo)])
    assert result.exit_code == 1
    assert "no line is a cassette-proxy log event" in result.output
    assert "cassette-proxy cassette check" in result.output
    lines = len(demo.read_text().splitlines())
    assert f"... and {lines - 20:,} more" in result.output  # 20 shown, the rest counted


async def test_output_goes_to_a_file_or_says_why_it_cannot(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    log = await make_log(start_proxy, tmp_path)
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["audit", "--format", "html", "-o", str(report), str(log)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"{report}: html report of 6 exchanges" in result.stderr
    assert report.read_text().startswith("<!doctype html>")
    missing = tmp_path / "no" / "such" / "folder" / "report.html"
    code, output = audit("-o", str(missing), str(log))
    assert code == 1
    assert f"Could not open file '{missing}': No such file or directory" in output
