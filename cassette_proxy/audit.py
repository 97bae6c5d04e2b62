"""``cassette-proxy audit``: what the JSON-lines logs say crossed the wire.

Logs are streamed line by line (plain, ``.gz``, or ``-`` for stdin), so the memory needed grows
with the number of distinct routes, pointers and drift findings, plus eight bytes per exchange
for the latency percentiles, never with the size of the bodies. A line that is not JSON, or not
an event this proxy writes (a status that is not a number, say), is reported with its file and
line number, and the rest is still counted; so is a file that breaks off (a truncated ``.gz``).
"""

from __future__ import annotations

import gzip
import re
import sys
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

DRIFT_KINDS: Final = frozenset({"unknown_field", "unknown_enum", "unknown_type"})
PERCENTILES: Final = (50, 90, 99)
CORRUPT_SHOWN: Final = 20
_INDEX: Final = re.compile(r"/\d+(?=/|$)")


def parse_time(value: str) -> datetime:
    """An ISO 8601 time (``2026-11-22``, ``2026-11-22T07:00``, ``...Z``), UTC if unzoned."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def general_pointer(pointer: str) -> str:
    """``/output/3/content/0/text`` -> ``/output/*/content/*/text``: one group per shape."""
    return _INDEX.sub("/*", pointer)


@dataclass(slots=True)
class Group:
    count: int = 0
    first_seen: str = ""
    last_seen: str = ""
    example: str = ""  # the id of one exchange that shows it


@dataclass(slots=True)
class Corrupt:
    source: str
    line: int
    error: str


@dataclass(slots=True)
class Summary:
    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0  # lines that are events of any kind (exchange, lifecycle)
    broken_files: int = 0  # files that could not be read to their end
    exchanges: int = 0
    skipped_by_time: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    latency: dict[str, array[float]] = field(default_factory=dict)
    failures: dict[tuple[str, str, str], Group] = field(default_factory=dict)
    drift: dict[tuple[str, str, str], Group] = field(default_factory=dict)
    corrupt: list[Corrupt] = field(default_factory=list)
    corrupt_count: int = 0
    first: str = ""
    last: str = ""

    def add(self, event: dict[str, Any]) -> None:
        """Count one exchange event; raises :class:`BadEvent` (counting nothing) if it is not
        one this proxy writes."""
        when = _typed(event, "time", str)
        status = _typed(event, "status", int)
        duration = float(_typed(event, "duration_ms", int | float, 0.0))
        violations = [
            (side, violation)
            for side, record in _typed(event, "validation", dict, {}).items()
            for violation in _typed(_mapping(record, f"validation.{side}"), "violations", list, [])
        ]
        for _, violation in violations:
            for key in ("pointer", "message", "severity", "kind"):
                _typed(_mapping(violation, "a violation"), key, str, "")
        self.exchanges += 1
        route = str(event.get("route"))
        self.first = min(self.first, when) if self.first else when
        self.last = max(self.last, when)
        self.by_route[route] += 1
        self.by_status[status] += 1
        self.by_source[str(event.get("source"))] += 1
        self.latency.setdefault("(all)", array("d")).append(duration)
        self.latency.setdefault(route, array("d")).append(duration)
        for side, violation in violations:
            self._violation(f"{route} {side}", violation, when, str(event.get("id", "")))

    def note_corrupt(self, source: str, line: int, error: str) -> None:
        self.corrupt_count += 1
        if len(self.corrupt) < CORRUPT_SHOWN:
            self.corrupt.append(Corrupt(source, line, error))

    def _violation(self, where: str, violation: dict[str, Any], when: str, example: str) -> None:
        """One violation, grouped by route and side (``where``), pointer and message (a stream
        event's message names its event type)."""
        kind = violation.get("kind", "")
        pointer = general_pointer(str(violation.get("pointer", "")))
        if violation.get("severity") == "error":
            groups = self.failures
            key = (where, pointer, str(violation.get("message", "")))
        elif kind in DRIFT_KINDS:
            groups = self.drift
            key = (kind, f"{where} {pointer}", str(violation.get("message", "")))
        else:
            return
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(first_seen=when, example=example)
        group.count += 1
        group.first_seen = min(group.first_seen, when)
        group.last_seen = max(group.last_seen, when)

    def percentiles(self) -> dict[str, dict[str, float]]:
        table = {}
        for route, values in sorted(self.latency.items()):
            ordered = sorted(values)
            row = {f"p{p}": _percentile(ordered, p) for p in PERCENTILES}
            row["max"] = ordered[-1]
            row["count"] = len(ordered)
            table[route] = row
        return table

    def as_json(self) -> dict[str, Any]:
        def groups(found: dict[tuple[str, str, str], Group], names: tuple[str, ...]) -> list[Any]:
            return [
                dict(zip(names, key, strict=True))
                | {"count": g.count, "first_seen": g.first_seen, "example": g.example}
                for key, g in sorted(found.items(), key=lambda item: -item[1].count)
            ]

        return {
            "files": self.files,
            "lines": self.lines,
            "exchanges": self.exchanges,
            "skipped_by_time": self.skipped_by_time,
            "first": self.first or None,
            "last": self.last or None,
            "by_route": dict(self.by_route.most_common()),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_source": dict(self.by_source.most_common()),
            "latency_ms": self.percentiles(),
            "validation_failures": groups(self.failures, ("where", "pointer", "message")),
            "drift": groups(self.drift, ("kind", "where", "message")),
            "corrupt_lines": self.corrupt_count,
            "corrupt": [{"file": c.source, "line": c.line, "error": c.error} for c in self.corrupt],
        }


class BadEvent(ValueError):
    """A JSON object that is not an exchange event as this proxy writes it."""


_NAMES: Final = {str: "a string", int: "an integer", dict: "an object", list: "an array"}


def _typed(event: dict[str, Any], name: str, kind: Any, default: Any = None) -> Any:
    """``event[name]`` if it has the type the proxy writes (``default`` if absent or null)."""
    value = event.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = _NAMES.get(kind, "a number")
        raise BadEvent(f"{name} is {orjson.dumps(value).decode()[:60]}, not {expected}")
    return value


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadEvent(f"{name} is not an object")
    return value


def _percentile(ordered: list[float], p: int) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-p * len(ordered) // 100))
    return ordered[rank - 1]


def _open(source: str) -> BinaryIO | gzip.GzipFile:
    """The log's bytes, decompressed if it is gzip (by content, whatever its name)."""
    if source == "-":
        return sys.stdin.buffer
    path = Path(source)
    with path.open("rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    if compressed:
        return gzip.GzipFile(path, "rb")  # closed by the caller, as is the plain file
    return path.open("rb")


class Progress:
    """A one-line counter on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = 0.0

    def update(self, summary: Summary, source: str) -> None:
        now = time.monotonic()
        if self.enabled and now - self._last > 0.5:
            self._last = now
            sys.stderr.write(
                f"\r{source}: {summary.lines:,} lines, {summary.exchanges:,} exchanges"
            )
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")


def _parse(line: bytes) -> dict[str, Any] | str:
    """The event on a line, or why it is not one."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {str(exc)[:200]}"
    if not isinstance(event, dict):
        return f"a JSON {type(event).__name__}, not an object"
    return event


def _count(
    summary: Summary,
    line: bytes,
    *,
    since: datetime | None,
    until: datetime | None,
    source: str,
    number: int,
) -> None:
    """Count the event on one line, or note why it cannot be counted."""
    event = _parse(line)
    if isinstance(event, str):
        summary.note_corrupt(source, number, event)
        return
    if "event" in event:
        summary.events += 1
    if event.get("event") != "exchange":
        return
    try:
        if since or until:
            value = _typed(event, "time", str)
            try:
                when = parse_time(value)
            except ValueError:
                raise BadEvent(f"time {value[:40]!r} is not an ISO 8601 time") from None
            if (since and when < since) or (until and when >= until):
                summary.skipped_by_time += 1
                return
        summary.add(event)
    except BadEvent as exc:
        summary.note_corrupt(source, number, f"not an exchange event: {exc}")


def summarise(
    sources: Iterable[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> Summary:
    summary = Summary()
    progress = progress or Progress(enabled=False)
    for source in sources:
        summary.files.append(source)
        handle = _open(source)
        number = 0
        try:
            for number, line in enumerate(handle, start=1):
                summary.lines += 1
                if summary.lines % 4096 == 0:
                    progress.update(summary, source)
                if line.strip():
                    _count(summary, line, since=since, until=until, source=source, number=number)
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or damaged .gz, say
            summary.broken_files += 1
            summary.note_corrupt(
                source,
                number + 1,
                f"the file cannot be read from here ({type(exc).__name__}: {exc}); "
                "the lines before it were counted",
            )
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()
    progress.done()
    return summary


def render_text(summary: Summary) -> str:
    out: list[str] = []
    add = out.append
    add(
        f"{summary.exchanges:,} exchanges in {summary.lines:,} lines from "
        f"{len(summary.files)} file(s)"
        + (f", {summary.first} .. {summary.last}" if summary.first else "")
    )
    if summary.skipped_by_time:
        add(f"({summary.skipped_by_time:,} exchanges outside --since/--until left out)")
    for title, counter in (
        ("By route", summary.by_route),
        ("By status", summary.by_status),
        ("By source", summary.by_source),
    ):
        add(f"\n{title}:")
        for key, count in sorted(counter.items(), key=lambda item: (-item[1], str(item[0]))):
            add(f"  {key!s:<24} {count:>10,}")
    add("\nLatency (ms):")
    add(f"  {'route':<24} {'count':>8} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    for route, row in summary.percentiles().items():
        add(
            f"  {route:<24} {int(row['count']):>8,} {row['p50']:>9.2f} {row['p90']:>9.2f} "
            f"{row['p99']:>9.2f} {row['max']:>9.2f}"
        )
    add("\nValidation failures (errors), by pointer and message:")
    if not summary.failures:
        add("  none")
    for (where, pointer, message), group in sorted(
        summary.failures.items(), key=lambda item: -item[1].count
    ):
        add(f"  {group.count:>6,} x {where} {pointer or '/'}: {message}")
        add(f"           e.g. exchange {group.example} at {group.first_seen}")
    add("\nSchema drift (seen in the wild, not in the documented contract):")
    if not summary.drift:
        add("  none")
    for (kind, where, message), group in sorted(
        summary.drift.items(), key=lambda item: (item[1].first_seen, item[0])
    ):
        add(f"  {group.count:>6,} x {kind:<14} {where}: {message}")
        add(f"           first seen {group.first_seen}, e.g. exchange {group.example}")
    if summary.corrupt_count:
        add(
            f"\nCorrupt lines: {summary.corrupt_count:,} (not JSON, or not an event; the rest "
            "was counted)"
        )
        for corrupt in summary.corrupt:
            add(f"  {corrupt.source}:{corrupt.line}: {corrupt.error}")
        if summary.corrupt_count > len(summary.corrupt):
            add(f"  ... and {summary.corrupt_count - len(summary.corrupt):,} more")
    return "\n".join(out) + "\n"
