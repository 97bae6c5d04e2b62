"""The audit as one JSON document (``--format json``), for machines: the text report's content,
with the per-minute series at full resolution."""

from __future__ import annotations

from typing import Any

import orjson

from cassette_proxy.tools.audit.report import Report
from cassette_proxy.tools.audit.summary import OTHER_STATUS
from cassette_proxy.tools.audit.tables import Finding, LatencyRow
from cassette_proxy.tools.audit.tokens import TokenCount
from cassette_proxy.tools.shown import json_text


def render_json(report: Report) -> str:
    # The values as the log has them; what a terminal could act on, escaped as \uXXXX.
    return json_text(orjson.dumps(_document(report), option=orjson.OPT_INDENT_2).decode()) + "\n"


def _tokens(count: TokenCount) -> dict[str, int]:
    return {"input": count.input, "cached": count.cached, "output": count.output,
            "reasoning": count.reasoning, "responses": count.responses}  # fmt: skip


def _document(report: Report) -> dict[str, Any]:
    summary, tables = report.summary, report.tables
    streams = tables.streams
    document = {
        "files": summary.files,
        "lines": summary.lines,
        "exchanges": summary.exchanges,
        "filters": summary.filters.describe() or None,
        "left_out": summary.left_out,
        "first": summary.first or None,
        "last": summary.last or None,
        "errors": summary.errors,
        "by_route": tables.by_route,
        "by_status": {_status(status): count for status, count in tables.by_status.items()},
        "by_source": dict(tables.by_source),
        "by_verdict": dict(tables.by_verdict),
        "route_status": {
            route: {_status(status): count for status, count in sorted(row.items())}
            for route, row, _ in tables.route_status
        },
        "errors_by_code": [
            {
                "code": e.code,
                "status": e.status,
                "count": e.group.count,
                "first_seen": e.group.first_seen,
                "last_seen": e.group.last_seen,
                "example": e.group.example,
            }
            for e in tables.error_codes
        ],
        "per_minute": [
            {"minute": minute, "requests": requests, "errors": errors}
            for minute, (requests, errors) in sorted(summary.minutes.items())
        ],
        "latency_ms": _latency(tables.latency["total"]),
        "upstream_ms": _latency(tables.latency["upstream"]),
        "proxy_ms": _latency(tables.latency["own"]),
        "replay_ms": _latency(tables.latency["replay"]),
        "ttfb_ms": _latency(tables.latency["ttfb"]),
        "slowest": [
            {
                "id": s.id,
                "time": s.time,
                "route": s.route,
                "status": s.status,
                "source": s.source,
                "duration_ms": s.duration_ms,
                "upstream_ms": s.upstream_ms,
                "error": s.error,
            }
            for s in tables.slowest
        ],
        "streams": None
        if streams is None
        else {
            "count": streams.count,
            "complete": streams.complete,
            "events": {
                "p50": streams.events_p50,
                "p90": streams.events_p90,
                "max": streams.events_max,
            },
            "types": dict(streams.types),
            "ttfb_ms": _latency(tables.latency["stream_ttfb"]),
        },
        "validation_failures": [_finding(f) for f in tables.failures],
        "drift": [_finding(f) | {"where": f.key.where} for f in tables.drift],
        "warnings": [_finding(f) for f in tables.warnings],
        "warnings_by_kind": dict(tables.warnings_by_kind),
        "truncated": summary.truncated,
        "not_recorded": dict(tables.not_recorded),
        "corrupt_lines": summary.corrupt_count,
        "corrupt": [{"file": c.source, "line": c.line, "error": c.error} for c in summary.corrupt],
        "gates": [
            {
                "threshold": v.gate.text,
                "value": v.value,
                "limit": v.gate.limit,
                "failed": v.failed,
                "empty": v.empty,
            }
            for v in report.verdicts
        ],
        "tokens": [
            {
                "model": row.model,
                "route": row.route,
                "source": row.source,
                **_tokens(row.count),
                "cost": row.cost,
            }
            for row in tables.tokens
        ],
        "currency": report.prices.currency if report.prices else None,
    }
    if report.instances:
        document["instances"] = {name: _document(part) for name, part in report.instances}
    return document


def _status(status: int) -> str:
    return "other" if status == OTHER_STATUS else str(status)


def _latency(rows: list[LatencyRow]) -> dict[str, dict[str, float]]:
    return {
        row.route: {
            "count": row.count,
            "p50": row.p50,
            "p90": row.p90,
            "p99": row.p99,
            "max": row.max,
        }
        for row in rows
    }


def _finding(finding: Finding) -> dict[str, Any]:
    key, group = finding.key, finding.group
    return {
        "severity": key.severity,
        "kind": key.kind,
        "route": key.route,
        "side": key.side,
        "where": f"{key.route} {key.side}",
        "pointer": key.pointer,
        "message": key.message,
        "count": group.count,
        "first_seen": group.first_seen,
        "last_seen": group.last_seen,
        "example": group.example,
    }
