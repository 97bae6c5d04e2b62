"""``audit`` on logs an attacker wrote (issue 22, items 5, 6, 7 and 10): it never crashes, never
hangs, never writes a control character to a terminal, and its memory, work and output stay
bounded whatever the lines say."""

from __future__ import annotations

import gzip
import html.parser
import re
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.models.events import StreamRecord, ValidationRecord
from cassette_proxy.models.usage import Usage
from cassette_proxy.tools.audit import summarise
from cassette_proxy.tools.audit import summary as summary_module
from cassette_proxy.tools.audit.reading import LINE_LIMIT
from tests.log_lines import exchange, line, stream_exchange

# Sequences a terminal acts on: an OSC window title, an OSC 8 hyperlink, a CR that overwrites
# the line, a bell, a CSI that clears the screen, C1's CSI, and a right-to-left override.
HOSTILE = (
    "\x1b]0;pwned\x07",
    "\x1b]8;;https://evil.test/\x1b\\click\x1b]8;;\x1b\\",
    "ok\rFORGED",
    "\x1b[2J",
    "\u009b31m",
    "gnp.\u202eexe",
    "line\nforged",
)
# What may reach a terminal: printable text, the report's own line feeds, nothing else.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _hostile_log(path: Path) -> None:
    lines = []
    for n, evil in enumerate(HOSTILE):
        violations = [{"pointer": f"/output/0/{evil}", "message": f"unknown field {evil!r}",
                       "severity": "warning", "kind": "unknown_field"},
                      {"pointer": "/status", "message": f"unknown status {evil!r}",
                       "severity": "warning", "kind": "unknown_enum"}]  # fmt: skip
        base = exchange(n)
        lines.append(
            line(
                replace(
                    base,
                    route=f"cancel{evil}",
                    source=f"upstream{evil}",
                    verdict=f"passed{evil}",
                    error=f"code{evil}",
                    id=f"id{evil}",
                    not_recorded=f"reason{evil}",
                    instance=f"sidecar{evil}",
                    model=f"yandexgpt{evil}",
                    tokens=Usage(input=10, cached=2, output=5),
                    validation={"response": ValidationRecord("passed", violations)},
                )
            )
        )
        types = {f"response.{evil}": 1, "response.completed": 1}
        lines.append(line(stream_exchange(n, stream=StreamRecord(2, types, True))))
        lines.append(f"not json {evil}\n".encode())
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_no_control_character_reaches_the_terminal(tmp_path: Path, fmt: str) -> None:
    log = tmp_path / f"evil{HOSTILE[0]}.log"  # a file name is shown too
    _hostile_log(log)
    result = CliRunner().invoke(
        main,
        ["audit", str(log), "--format", fmt, "--fail-on", "errors", "--by-instance"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1  # the gate, crossed: the report itself was written
    for stream in (result.stdout, result.stderr):
        found = _CONTROL.findall(stream)
        assert not found, f"{fmt}: {found[:5]!r}"
    if fmt == "json":
        document = orjson.loads(result.stdout)  # the values themselves are kept, escaped
        assert any(HOSTILE[5] in name for name in document["by_route"])
    if fmt == "text":
        # Every line of the report is one of its own: none was forged by a line feed.
        assert "\nforged" not in result.stdout
        assert "FORGED" in result.stdout  # shown, after a visible \r
        assert "\\x1b]0;pwned\\x07" in result.stdout
        assert "=== instance sidecar\\x1b]0;pwned\\x07 ===" in result.stdout  # --by-instance
        assert "yandexgpt\\x1b]0;pwned\\x07" in result.stdout  # the tokens table


def _dated(when: str, n: int = 0) -> bytes:
    return line(exchange(n, time=when))


@pytest.mark.parametrize(
    "times",
    [
        ["2026-13-45T99:99:00.000Z"],
        ["2026-02-30T10:00:00.000Z", "2026-11-22T07:00:00.000Z"],
        ["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:00.000Z"],
        ["1900-01-01T00:00:00.000Z", "9000-01-01T00:00:00.000Z"],
        ["0000-01-01T00:00:00.000Z", "2026-11-22T07:00:00.000Z"],
    ],
    ids=["month-13", "feb-30", "0001-9999", "1900-9000", "year-0"],
)
@pytest.mark.parametrize("fmt", ["text", "html", "json"])
def test_any_time_a_line_holds_gives_a_report_of_bounded_size(
    tmp_path: Path, times: list[str], fmt: str
) -> None:
    log = tmp_path / "times.log"
    log.write_bytes(b"".join(_dated(when, n) for n, when in enumerate(times)) + _dated(
        "2026-11-22T07:00:01.000Z", 99))  # fmt: skip
    result = CliRunner().invoke(main, ["audit", str(log), "--format", fmt])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    assert len(result.stdout) < 200_000  # 21.9 MB for 1900 .. 9000 before
    if fmt == "text":
        rows = [r for r in result.stdout.splitlines() if re.match(r"  \d{4}-\d\d-\d\dT", r)]
        assert len(rows) <= 48
    summary = summarise([str(log)])
    impossible = [t for t in times if t.startswith(("2026-13", "2026-02-30", "0000"))]
    assert summary.corrupt_count == len(impossible)
    assert all("not an ISO 8601 time" in c.error for c in summary.corrupt)


def test_distinct_values_are_pooled_past_a_cap(tmp_path: Path) -> None:
    """1M distinct sources, verdicts or statuses took 650-955 MB and 46-85 MB of HTML: each
    table keeps at most its cap, the rest pooled as (other)."""
    count = 3 * summary_module.MAX_VALUES
    log = tmp_path / "distinct.log"
    log.write_bytes(
        b"".join(
            line(exchange(n, source=f"s{n}", verdict=f"v{n}", status=100 + n, route=f"r{n}"))
            for n in range(count)
        )
    )
    summary = summarise([str(log)])
    assert summary.exchanges == count
    for name, index in (("status", 1), ("source", 2), ("verdict", 3)):
        values = {key[index] for key in summary.kinds}
        assert len(values) <= summary_module.MAX_VALUES + 1, name
    assert len(summary.kinds) <= summary_module.MAX_KINDS
    assert sum(summary.kinds.values()) == count  # pooled, not dropped
    for fmt in ("text", "html"):
        result = CliRunner().invoke(main, ["audit", str(log), "--format", fmt])
        assert result.exit_code == 0, result.output
        assert len(result.stdout) < 400_000, fmt
        assert "(other)" in result.stdout


def test_the_kinds_of_exchange_kept_are_capped(tmp_path: Path) -> None:
    """Every (route, status, source, verdict) is a row of the route x status table: their
    number is capped too, however the values combine."""
    cap = summary_module.MAX_KINDS
    log = tmp_path / "kinds.log"
    values = summary_module.MAX_VALUES
    log.write_bytes(
        b"".join(
            line(
                exchange(
                    n,
                    route=f"r{n % 900}",
                    source=f"s{n // 900 % values}",
                    verdict=f"v{n // 9000 % 3}",
                )
            )
            for n in range(cap + 5_000)
        )
    )
    summary = summarise([str(log)])
    assert len(summary.kinds) <= cap
    assert sum(summary.kinds.values()) == cap + 5_000


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.longest = 0
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
        else:
            self.longest = max(self.longest, *(len(word) for word in data.split() or [""]))


def test_a_long_or_reversed_name_neither_widens_nor_reverses_the_page(tmp_path: Path) -> None:
    name = "x" * 100_000
    log = tmp_path / "long.log"
    violations = [{"pointer": f"/output/0/{name}", "message": f'unknown field "{name}"',
                   "severity": "warning", "kind": "unknown_field"}]  # fmt: skip
    log.write_bytes(
        line(exchange(0, route=name, validation={"response": ValidationRecord("passed",
                                                                            violations)}))
        + line(exchange(1, route="gnp.\u202eexe", error="x\u2066y"))
    )  # fmt: skip
    result = CliRunner().invoke(main, ["audit", str(log), "--format", "html"])
    assert result.exit_code == 0, result.output
    page = _Page()
    page.feed(result.stdout)
    assert page.longest <= 1_100  # was one word of 100,000 characters (725,653 px wide)
    assert "\u202e" not in result.stdout
    assert "\u2066" not in result.stdout
    assert "overflow-wrap:anywhere" in "".join(page.styles)
    text = CliRunner().invoke(main, ["audit", str(log)])
    assert max(len(row) for row in text.stdout.splitlines()) < 2_500
    assert "\u202e" not in text.stdout


# -- lines and compressed bytes -----------------------------------------------------------------


def _bomb(path: Path, unit: bytes, mib: int) -> None:
    """A gzip file that inflates to ``mib`` MiB of ``unit`` bytes, in milliseconds: after a full
    flush, deflate compresses each MiB of the same bytes to the same block. Its trailer is
    never reached (its CRC is not computed)."""
    chunk = unit * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    path.write_bytes(header + block * mib + deflate.flush() + b"\x00" * 8)


def _peak_rss_mib(*args: str) -> tuple[int, str, float]:
    """Run ``cassette-proxy ARGS`` in a child of a child, and the child's peak RSS."""
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run([sys.executable, '-m', 'cassette_proxy', *sys.argv[1:]],"
        " capture_output=True, text=True, timeout=300)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(done.returncode, peak, sep='\\n')\n"
        "print(done.stdout + done.stderr)\n"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, this package, the test's arguments
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True,
        timeout=320,
    ).stdout  # fmt: skip
    code, peak, output = out.split("\n", 2)
    return int(code), output, int(peak) / 1024


@pytest.mark.slow
@pytest.mark.parametrize(
    ("unit", "what"),
    [(b"\x00", "4 GiB without a newline"), (b"\n", "4 GiB of newlines")],
    ids=["no-newline", "newlines"],
)
def test_a_gzip_bomb_is_stopped_by_the_work_per_compressed_byte(
    tmp_path: Path, unit: bytes, what: str
) -> None:
    bomb = tmp_path / "bomb.log.gz"
    _bomb(bomb, unit, 4096)
    assert bomb.stat().st_size < 8 << 20
    good = tmp_path / "good.log"
    good.write_bytes(line(exchange(1)))
    code, output, peak = _peak_rss_mib("audit", str(bomb), str(good))
    assert code == 0, output  # the other file's exchange is reported
    assert "1 exchanges in" in output, output
    assert "inflates to more than" in output, output
    assert peak < 200, f"{what}: peak RSS {peak:.0f} MiB"  # MemoryError at 4.33 GB before


@pytest.mark.slow
def test_one_huge_line_costs_the_line_limit_not_its_size(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    with log.open("wb") as file:
        file.write(line(exchange(0)))
        block = b"x" * (1 << 20)
        for _ in range(LINE_LIMIT // len(block) * 6):  # six times the limit, in one line
            file.write(block)
        file.write(b"\n" + line(exchange(1)))
    code, output, peak = _peak_rss_mib("audit", str(log))
    assert code == 0, output
    assert "2 exchanges in 3 lines" in output, output
    assert f"{log}:2: longer than" in output, output
    assert peak < 200, f"peak RSS {peak:.0f} MiB"


def test_a_line_at_the_limit_is_still_read(tmp_path: Path) -> None:
    log = tmp_path / "long.gz"
    event = orjson.loads(line(exchange(0)))
    event["response"]["body"] = {"text": "y" * (LINE_LIMIT - 10_000)}
    with gzip.open(log, "wb") as file:
        file.write(orjson.dumps(event) + b"\n" + line(exchange(1)))
    summary = summarise([str(log)])
    assert (summary.exchanges, summary.corrupt_count) == (2, 0)


@pytest.mark.parametrize("fmt", ["text", "html", "json"])
def test_any_number_a_line_holds_gives_a_report(tmp_path: Path, fmt: str) -> None:
    log = tmp_path / "numbers.log"
    log.write_bytes(
        line(exchange(0, duration_ms=1.7e308, upstream_ms=1e300, ttfb_ms=1.7e308))
        + line(exchange(1, duration_ms=-5.0, upstream_ms=5e-324))
        + line(exchange(2, status=18446744073709551615))
        + line(exchange(3, duration_ms=0.0, replay_wait_ms=1e308, source="cassette"))
    )
    result = CliRunner().invoke(main, ["audit", str(log), "--format", fmt, "--fail-on", "p99>1"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1  # the p99 gate: crossed, said, no traceback
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_gzip_bomb_piped_to_stdin_is_stopped_as_one_in_a_file(tmp_path: Path) -> None:
    """`gzip -c log | audit -` is read by content through a real pipe, so the same bound
    applies there (stdin cannot be sought: its first bytes are read and given back)."""
    bomb = tmp_path / "bomb.log.gz"
    _bomb(bomb, b"\n", 1024)
    with bomb.open("rb") as piped:
        done = subprocess.run(
            [sys.executable, "-m", "cassette_proxy", "audit", "-"],
            stdin=piped, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert "inflates to more than" in done.stdout + done.stderr, done.stdout + done.stderr
    good = gzip.compress(line(exchange(1)))
    piped_good = subprocess.run(
        [sys.executable, "-m", "cassette_proxy", "audit", "-"],
        input=good, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert piped_good.returncode == 0, piped_good.stderr
    assert b"1 exchanges in" in piped_good.stdout
