"""``audit`` at real size: lines read without their bodies give what whole parsing gives, the
percentiles hold within 1%, the streaming fields are read (and old lines without them still
count), and a million lines take the memory a hundred thousand do."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.models.events import MessageRecord
from cassette_proxy.tools.audit import summarise
from cassette_proxy.tools.audit.document import render_json
from cassette_proxy.tools.audit.histogram import Histogram
from cassette_proxy.tools.audit.reading import LineParser
from cassette_proxy.tools.audit.report import Report
from cassette_proxy.tools.audit.summary import BadEvent, Summary
from tests import log_lines
from tests.conftest import StartProxy
from tests.tools.test_audit import make_logs


def whole_parse_summary(path: Path) -> Summary:
    """The reference: every line parsed whole, the events added one by one."""
    summary = Summary(files=[str(path)])
    for number, line in enumerate(path.read_bytes().splitlines(keepends=True), start=1):
        summary.lines += 1
        event = orjson.loads(line)
        summary.events += 1
        if event["event"] == "exchange":
            try:
                summary.add(event)
            except BadEvent as exc:
                summary.note_corrupt(str(path), number, f"not an exchange event: {exc}")
    return summary


def tricky_lines() -> list[bytes]:
    """Lines that look like the fast path's cut points in places it must not cut."""
    decoys = {"request": {"a": 1}, "validation": {"b": 2}, "verdict": "x",
              "text": '",\\"validation\\":{\\"},\\"verdict\\":'}  # fmt: skip
    strict = log_lines.exchange(
        1, status=502, error="contract_violation", original_status=200,
        original=MessageRecord({}, decoys, 10), verdict="failed",
    )  # fmt: skip
    plain = log_lines.exchange(2)
    as_dict = orjson.loads(log_lines.line(plain))
    old = {k: v for k, v in as_dict.items() if k not in ("ttfb_ms", "stream", "not_recorded")}
    return [
        log_lines.line(strict),  # a body with "validation" after the real one
        log_lines.line(log_lines.exchange(3, response=MessageRecord({}, decoys, 9))),
        log_lines.line(log_lines.exchange(4, request=MessageRecord({}, decoys, 9))),
        log_lines.line(log_lines.exchange(5, response=MessageRecord({}, "x", 9, truncated=True))),
        log_lines.line(log_lines.exchange(6, not_recorded="response over --max-capture-size")),
        log_lines.line(log_lines.stream_exchange(14, complete=False)),
        orjson.dumps(dict(sorted(as_dict.items()))) + b"\n",  # another key order
        json.dumps(as_dict, indent=1).replace("\n", "").encode() + b"\n",  # spaces
        orjson.dumps(old) + b"\n",  # written before the streaming fields
        log_lines.line(replace(plain, id="decoy", status=404)),
    ]


async def test_lines_read_without_bodies_count_as_lines_parsed_whole(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    real = b"".join(log.read_bytes() for log in await make_logs(start_proxy, tmp_path))
    log = tmp_path / "mixed.log"
    log.write_bytes(real + b"".join(tricky_lines()))
    fast = orjson.loads(render_json(Report.of(summarise([str(log)]))))
    whole = orjson.loads(render_json(Report.of(whole_parse_summary(log))))
    assert fast == whole
    assert fast["exchanges"] == 12 + len(tricky_lines())
    assert fast["corrupt_lines"] == 0
    assert fast["truncated"] == 1
    assert fast["not_recorded"] == {"response over --max-capture-size": 1}

    # The fast path is the one taken for lines as the proxy writes them (it leaves the
    # request out), and the whole parse for the others.
    parse = LineParser()
    taken = [
        "request" not in event
        for event in map(parse, real.splitlines(keepends=True))
        if isinstance(event, dict) and event.get("event") == "exchange"
    ]
    assert taken == [True] * 12
    tricky = [parse(line) for line in tricky_lines()]
    assert ["request" not in event for event in tricky if isinstance(event, dict)] == [
        False, True, True, True, True, True, False, False, True, True,
    ]  # fmt: skip


def test_percentiles_are_within_one_percent_in_constant_memory() -> None:
    rng = random.Random(15)  # noqa: S311 - test data, not a secret
    values = [rng.lognormvariate(2, 1.5) for _ in range(100_000)] + [0.0] * 10
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    ordered = sorted(values)
    for p in (1, 50, 90, 99, 99.9):
        exact = ordered[max(1, -(-int(p * 10) * len(ordered) // 1000)) - 1]
        assert histogram.percentile(p) == pytest.approx(exact, rel=0.01), p
    assert histogram.high == max(values)
    assert histogram.count == len(values)
    assert len(histogram.counts) < 1_100


def test_streams_are_reported_and_old_lines_still_count(tmp_path: Path) -> None:
    streams = [log_lines.stream_exchange(n, complete=n != 4) for n in (4, 14, 24)]
    old = orjson.loads(log_lines.line(log_lines.exchange(0)))
    for key in ("ttfb_ms", "stream", "not_recorded"):
        del old[key]
    del old["response"]["truncated"]
    log = tmp_path / "streams.log"
    log.write_bytes(b"".join(map(log_lines.line, streams)) + orjson.dumps(old) + b"\n")
    result = CliRunner().invoke(main, ["audit", "--format", "json", str(log)])
    report = orjson.loads(result.stdout)
    assert report["exchanges"] == 4
    assert report["corrupt_lines"] == 0
    assert report["streams"]["count"] == 3
    assert report["streams"]["complete"] == 2
    types: dict[str, int] = {}
    for event in streams:
        assert event.stream is not None
        for name, count in event.stream.types.items():
            types[name] = types.get(name, 0) + count
    assert report["streams"]["types"] == types
    ttfb = sorted(e.ttfb_ms for e in streams if e.ttfb_ms is not None)
    assert report["streams"]["ttfb_ms"]["passthrough"]["count"] == 3
    assert report["streams"]["ttfb_ms"]["passthrough"]["max"] == ttfb[-1]
    assert report["streams"]["events"]["max"] == max(e.stream.events for e in streams if e.stream)
    assert report["errors_by_code"][0]["code"] == "upstream_broken"  # broke after its headers
    assert report["errors_by_code"][0]["status"] == 200
    text = CliRunner().invoke(main, ["audit", str(log)]).output
    assert "Streams (text/event-stream): 3, 2 complete, 1 ended without a terminal event" in text
    assert "response.output_text.delta" in text


# The peak RSS of this process since its exec: VmHWM, not ru_maxrss, which on Linux also counts
# the peak of the process it was forked from (the test's own).
PEAK_RSS = """
import sys
from pathlib import Path
from cassette_proxy.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    status = Path("/proc/self/status").read_text()
    print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")),
          file=sys.stderr)
"""


def audit_in_a_process(lines: Iterable[bytes], *args: str) -> tuple[dict[str, Any], int]:
    """``audit -`` in its own process, fed through a pipe: its JSON report and peak RSS (KiB)."""
    output: dict[str, bytes] = {}

    def drain(name: str, stream: IO[bytes] | None) -> None:
        assert stream is not None
        output[name] = stream.read()

    with subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", PEAK_RSS, "audit", "-", "--format", "json", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as process:  # fmt: skip
        assert process.stdin is not None
        readers = [threading.Thread(target=drain, args=(name, getattr(process, name)))
                   for name in ("stdout", "stderr")]  # fmt: skip
        for reader in readers:
            reader.start()
        batch: list[bytes] = []
        for line in lines:
            batch.append(line)
            if len(batch) == 10_000:
                process.stdin.write(b"".join(batch))
                batch.clear()
        process.stdin.write(b"".join(batch))
        process.stdin.close()
        process.wait(timeout=300)
        for reader in readers:
            reader.join()
    assert process.returncode == 0, output["stderr"][-2000:]
    return orjson.loads(output["stdout"]), int(output["stderr"].split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_million_lines_take_the_memory_a_hundred_thousand_do() -> None:
    small, small_rss = audit_in_a_process(log_lines.many_lines(100_000))
    large, large_rss = audit_in_a_process(log_lines.many_lines(1_000_000))
    assert small["exchanges"] == 100_000
    assert large["exchanges"] == 1_000_000
    assert large["corrupt_lines"] == 0
    assert sum(m["requests"] for m in large["per_minute"]) == 1_000_000
    assert len(large["per_minute"]) == 1_000_000 // log_lines.PER_SECOND // 60 + 1
    # Flat: the aggregates of ten times the lines (and 834 minutes instead of 84) fit in the
    # same memory, give or take the allocator.
    assert large_rss - small_rss < 4 * 1024, (small_rss, large_rss)
