"""Log lines in the exact shape the proxy writes, built from its own event dataclasses, for audits
of sizes and kinds a test cannot make through a real proxy in time: a million lines, streams,
truncated captures. Deterministic: line ``n`` is always the same line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from cassette_proxy.models.events import (
    ExchangeEvent,
    MessageRecord,
    StreamRecord,
    ValidationRecord,
)
from tests import vectors

START = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
PER_SECOND = 20  # lines a second: a million span about fourteen hours

USAGE_MISSING = {"pointer": "/usage", "message": 'missing required field "usage"',
                 "severity": "warning", "kind": "missing"}  # fmt: skip


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def exchange(n: int, **changes: object) -> ExchangeEvent:
    """The ``n``-th exchange of a pass-through day: mostly 200s, some 404s, drift and errors."""
    kind = n % 20
    status, error, source = 200, None, "upstream"
    upstream_ms: float | None = 1.0 + (n * 7919 % 1000) / 10
    violations: list[dict[str, str]] = [USAGE_MISSING]
    verdict = "passed"
    body: object = orjson.loads(vectors.V1_BODY)
    if kind == 5:
        status, body, violations = 404, orjson.loads(vectors.not_found(f"resp_{n}")), []
    elif kind == 7:
        violations = [USAGE_MISSING, {
            "pointer": f"/output/{n % 3}/brand_new", "severity": "warning", "kind": "unknown_field",
            "message": 'unknown field "brand_new" (not in the documented contract)'}]  # fmt: skip
    elif kind == 11:
        status, error, source, upstream_ms, body = 502, "upstream_unreachable", "proxy", None, None
        violations, verdict = [], "skipped"
    elif kind == 13:
        verdict = "failed"
        violations = [{"pointer": "/id", "message": "expected string, got integer 12345",
                       "severity": "error", "kind": "type"}]  # fmt: skip
    duration = (upstream_ms or 0.0) + 0.4 + (n % 17) / 10
    event = ExchangeEvent(
        time=stamp(START + timedelta(seconds=n / PER_SECOND)),
        id=f"{n:032x}",
        method="POST",
        path=f"/v1/responses/resp_{n % 1000}/cancel",
        route="cancel",
        response_id=f"resp_{n % 1000}",
        status=status,
        source=source,
        duration_ms=round(duration, 3),
        upstream_ms=upstream_ms,
        request=MessageRecord({"authorization": "Bearer sha256:d6a7cd2a"}, None, 0),
        response=MessageRecord({"content-type": "application/json"}, body, 900),
        validation={
            "request": ValidationRecord("passed"),
            "response": ValidationRecord(verdict, violations),
        },
        verdict=verdict,
        error=error,
    )
    return replace(event, **changes)  # type: ignore[arg-type]


def stream_exchange(n: int, *, complete: bool = True, **changes: object) -> ExchangeEvent:
    """A streamed ``POST /v1/responses``: events counted by type, time to headers."""
    deltas = 5 + n // 10 % 10
    types = {"response.created": 1, "response.output_text.delta": deltas}
    if complete:
        types["response.completed"] = 1
    event = replace(
        exchange(n),
        path="/v1/responses",
        route="passthrough",
        response_id=None,
        ttfb_ms=20.0 + n % 30,
        stream=StreamRecord(sum(types.values()), types, complete),
        response=MessageRecord({"content-type": "text/event-stream"}, "event: ...", 4000),
        validation={},
        verdict="skipped",
        error=None if complete else "upstream_broken",
    )
    return replace(event, **changes)  # type: ignore[arg-type]


def line(event: ExchangeEvent) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)


def lines(count: int) -> Iterator[bytes]:
    """``count`` lines: exchanges, every tenth a stream, every third stream broken off."""
    for n in range(count):
        yield line(stream_exchange(n, complete=n % 30 != 4) if n % 10 == 4 else exchange(n))


_MARKS = ("2000-01-01T00:00:00.000Z", "f" * 32, 123456.789, 654321.125)
PERIOD = 60  # lines(n) repeats its kinds of exchange every 60 lines


def _template(n: int) -> list[bytes]:
    """Line ``n`` cut where its time, id, duration_ms and upstream_ms go."""
    event = stream_exchange(n, complete=n % 30 != 4) if n % 10 == 4 else exchange(n)
    forwarded = event.upstream_ms is not None
    event = replace(
        event,
        time=_MARKS[0],
        id=_MARKS[1],
        duration_ms=_MARKS[2],
        upstream_ms=_MARKS[3] if forwarded else None,
    )
    parts = [line(event)]
    for mark in _MARKS if forwarded else _MARKS[:3]:
        head, _, tail = parts.pop().partition(orjson.dumps(mark))
        parts += [head, tail]
    return parts


def many_lines(count: int) -> Iterator[bytes]:
    """``count`` lines of the kinds :func:`lines` makes, with the same times, ids and durations,
    several times faster: each is one of :data:`PERIOD` templates with those filled in (other
    fields, such as the response id, repeat every :data:`PERIOD` lines)."""
    templates = [_template(n) for n in range(PERIOD)]
    n = 0
    for second in range(-(-count // PER_SECOND)):
        day, at = divmod(START.hour * 3600 + second, 86_400)
        prefix = f'"2026-11-{22 + day:02d}T{at // 3600:02d}:{at // 60 % 60:02d}:{at % 60:02d}.'
        for tick in range(min(PER_SECOND, count - n)):
            parts = templates[n % PERIOD]
            time = f'{prefix}{tick * 1000 // PER_SECOND:03d}Z"'.encode()
            upstream = 1.0 + (n * 7919 % 1000) / 10
            if len(parts) == 5:
                duration = round(upstream + 0.4 + n % 17 / 10, 3)
                yield b'%b%b%b"%032x"%b%r%b%r%b' % (
                    parts[0],
                    time,
                    parts[1],
                    n,
                    parts[2],
                    duration,
                    parts[3],
                    upstream,
                    parts[4],
                )
            else:
                duration = round(0.4 + n % 17 / 10, 3)
                yield b'%b%b%b"%032x"%b%r%b' % (
                    parts[0],
                    time,
                    parts[1],
                    n,
                    parts[2],
                    duration,
                    parts[3],
                )
            n += 1
