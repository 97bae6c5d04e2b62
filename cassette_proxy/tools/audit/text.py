"""The audit as text, for a terminal: the first questions first, then the findings.

Every value that comes from a log is untrusted: each is written through
:func:`~cassette_proxy.tools.shown.shown` (no control character reaches the terminal, a long
value is cut), and each table is cut at :data:`ROWS` rows (``--format json`` has them all)."""

from __future__ import annotations

from collections.abc import Callable

from cassette_proxy.tools.audit.report import Report, instance_table, token_table
from cassette_proxy.tools.audit.summary import OTHER_STATUS, Summary
from cassette_proxy.tools.audit.tables import (
    LATENCIES,
    STREAM_TTFB_ABOVE,
    Finding,
    LatencyRow,
    Tables,
    time_series,
)
from cassette_proxy.tools.shown import PATH, TEXT, shown

SERIES_ROWS = 48  # at most this many rows of requests over time
BAR = 30  # characters of the longest bar
ROWS = 200  # rows of any other table
STATUS_COLUMNS = 20  # statuses shown as columns; more are summed in one


def render_text(report: Report) -> str:
    out: list[str] = []
    summary, tables = report.summary, report.tables
    _overview(out.append, summary)
    _traffic(out.append, tables)
    _errors(out.append, summary, tables)
    _over_time(out.append, summary)
    _latency(out.append, tables)
    _tokens(out.append, report)
    _slowest(out.append, tables)
    _streams(out.append, tables)
    _findings(out.append, tables)
    _capture(out.append, summary, tables)
    _corrupt(out.append, summary)
    _instances(out.append, report)
    return "\n".join(out) + "\n"


def _columns(add: Add, headers: list[str], rows: list[list[object]], text: int = 2) -> None:
    """A table: the first ``text`` columns left-aligned, the others right-aligned figures. Names
    come from the log: shown safely (:func:`~cassette_proxy.tools.shown.shown`)."""
    cells = [
        headers,
        *([f"{v:,}" if isinstance(v, int) else shown(v) for v in row] for row in rows),
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        add(
            "  "
            + "  ".join(
                value.ljust(widths[i]) if i < text else value.rjust(widths[i])
                for i, value in enumerate(row)
            ).rstrip()
        )


def _tokens(add: Add, report: Report) -> None:
    if not report.tables.tokens:
        return
    headers, rows, unpriced = token_table(report)
    add("\nTokens by model, route and source (each response counted once; input includes "
        "cached, output includes reasoning; a cassette's replays are never priced):")  # fmt: skip
    _columns(add, headers, rows, text=3)
    if unpriced:
        add(f"  no price in the price table for: {', '.join(map(shown, unpriced))}")


def _instances(add: Add, report: Report) -> None:
    """--by-instance: a row per instance, then each instance's own tables."""
    if not report.instances:
        return
    add("\nBy instance:")
    headers, rows = instance_table(report)
    _columns(add, headers, rows, text=1)
    for name, part in report.instances:
        add(f"\n=== instance {shown(name)} ===")
        _overview(add, part.summary)
        _traffic(add, part.tables)
        _errors(add, part.summary, part.tables)
        _latency(add, part.tables)
        _tokens(add, part)


Add = Callable[[str], None]


def _cut(add: Add, rows: int) -> None:
    """Say how many rows a table left out."""
    if rows > ROWS:
        add(f"  ... and {rows - ROWS:,} more (--format json lists them all)")


def _status(status: int) -> str:
    return "other" if status == OTHER_STATUS else str(status)


def _overview(add: Add, summary: Summary) -> None:
    span = f", {shown(summary.first)} .. {shown(summary.last)}" if summary.first else ""
    add(
        f"{summary.exchanges:,} exchanges in {summary.lines:,} lines from "
        f"{len(summary.files)} file(s){span}"
    )
    if summary.filters.active:
        filters = shown(summary.filters.describe(), TEXT)
        add(f"Filters: {filters} ({summary.left_out:,} exchanges left out)")
    if summary.exchanges:
        share = 100 * summary.errors / summary.exchanges
        add(
            f"{summary.errors:,} went wrong ({share:.1f}%): the proxy's error code, "
            "a 5xx, or a failed validation"
        )


def _traffic(add: Add, tables: Tables) -> None:
    add("\nBy route and status:")
    statuses, others = tables.status_columns(STATUS_COLUMNS)
    header = "".join(f"{_status(status):>8}" for status in statuses)
    header += f"{'others':>8}" if others else ""
    add(f"  {'route':<24}{header}{'total':>10}")
    for route, row, total in tables.route_status[:ROWS]:
        counts = [row.get(status, 0) for status in statuses]
        counts += [total - sum(counts)] if others else []
        cells = "".join(f"{count:>8,}" for count in counts)
        add(f"  {shown(route):<24}{cells}{total:>10,}")
    _cut(add, len(tables.route_status))
    for title, named in (("By source", tables.by_source), ("By verdict", tables.by_verdict)):
        add(f"\n{title}:")
        for name, count in named[:ROWS]:
            add(f"  {shown(name):<24} {count:>10,}")
        _cut(add, len(named))


def _errors(add: Add, summary: Summary, tables: Tables) -> None:
    add("\nErrors by the proxy's code:")
    if not tables.error_codes:
        add("  none")
    for error in tables.error_codes[:ROWS]:
        group = error.group
        add(
            f"  {group.count:>6,} x {shown(error.code):<28} status {_status(error.status)}, "
            f"{shown(group.first_seen)} .. {shown(group.last_seen)}, "
            f"e.g. exchange {shown(group.example)}"
        )
    _cut(add, len(tables.error_codes))
    other = summary.errors - sum(e.group.count for e in tables.error_codes)
    if other > 0:
        add(f"  {other:>6,} more went wrong without a code of the proxy's (5xx, failed validation)")


def _over_time(add: Add, summary: Summary) -> None:
    series = time_series(summary, SERIES_ROWS)
    if not series.buckets:
        return
    busiest = series.busiest
    assert busiest is not None
    worst = f"; most errors {series.worst.errors:,} at {series.worst.start}" if series.worst else ""
    add(
        f"\nRequests and errors per minute (mean {series.mean_per_minute:,.1f}/min; "
        f"busiest minute {busiest.start} with {busiest.requests:,}{worst}):"
    )
    per = "minute" if series.width == 1 else f"{series.width} minutes"
    columns = f"{'from':<17} {'requests':>9} {'errors':>7} {'req/min':>8} {'err/min':>8}"
    add(f"  {columns}   (each row: {per})")
    top = max(bucket.requests for bucket in series.buckets) or 1
    for bucket in series.buckets:
        bar = "#" * round(BAR * bucket.requests / top)
        add(
            f"  {bucket.start:<17} {bucket.requests:>9,} {bucket.errors:>7,} "
            f"{bucket.requests / series.width:>8,.1f} {bucket.errors / series.width:>8,.1f}   {bar}"
        )


def _latency_table(add: Add, rows: list[LatencyRow]) -> None:
    add(f"  {'route':<24} {'count':>9} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    for row in rows[:ROWS]:
        add(
            f"  {shown(row.route):<24} {row.count:>9,} {row.p50:>9.2f} {row.p90:>9.2f} "
            f"{row.p99:>9.2f} {row.max:>9.2f}"
        )
    _cut(add, len(rows))


def _latency(add: Add, tables: Tables) -> None:
    for name in ("total", "upstream", "own", "replay", "ttfb"):
        rows = tables.latency[name]
        if rows or name == "total":
            add(f"\nLatency (ms), {LATENCIES[name][0]}:")
            _latency_table(add, rows)


def _slowest(add: Add, tables: Tables) -> None:
    if not tables.slowest:
        return
    add("\nSlowest exchanges:")
    add(
        f"  {'ms':>10} {'upstream':>10}  {'route':<14} {'status':>6}  {'source':<9} {'time':<24} id"
    )
    for slow in tables.slowest:
        upstream = f"{slow.upstream_ms:>10.2f}" if slow.upstream_ms is not None else f"{'-':>10}"
        error = f"  ({slow.error})" if slow.error else ""
        add(
            f"  {slow.duration_ms:>10.2f} {upstream}  {shown(slow.route):<14} {slow.status:>6}  "
            f"{shown(slow.source):<9} {shown(slow.time):<24} {shown(slow.id)}{shown(error)}"
        )


def _streams(add: Add, tables: Tables) -> None:
    streams = tables.streams
    if streams is None:
        return
    broken = streams.count - streams.complete
    add(
        f"\nStreams (text/event-stream): {streams.count:,}, {streams.complete:,} complete, "
        f"{broken:,} ended without a terminal event"
    )
    add(
        f"  events per stream: p50 {streams.events_p50:,.0f}, p90 {streams.events_p90:,.0f}, "
        f"max {streams.events_max:,.0f}"
    )
    add("  event types seen:")
    for name, count in streams.types[:ROWS]:
        add(f"    {shown(name):<40} {count:>10,}")
    _cut(add, len(streams.types))
    if tables.stream_ttfb_apart:
        add("  Time to the upstream's headers (ms), streams only:")
        _latency_table(add, tables.latency["stream_ttfb"])
    elif tables.latency["stream_ttfb"]:
        add(f"  {STREAM_TTFB_ABOVE}")


def _finding_lines(add: Add, findings: list[Finding], *, first_seen: bool = False) -> None:
    if not findings:
        add("  none")
    for finding in findings[:ROWS]:
        key, group = finding.key, finding.group
        kind = f"{shown(key.kind):<19} " if key.severity == "warning" else ""
        add(f"  {group.count:>6,} x {kind}{shown(key.where, TEXT)}: {shown(key.message, TEXT)}")
        example, seen = shown(group.example), shown(group.first_seen)
        when = (
            f"first seen {seen}, e.g. exchange {example}"
            if first_seen
            else f"e.g. exchange {example} at {seen}"
        )
        add(f"           {when}")
    _cut(add, len(findings))


def _findings(add: Add, tables: Tables) -> None:
    add("\nValidation failures (errors), by pointer and message:")
    _finding_lines(add, tables.failures)
    add("\nWarnings by kind:")
    if not tables.warnings_by_kind:
        add("  none")
    for kind, count in tables.warnings_by_kind[:ROWS]:
        add(f"  {shown(kind):<24} {count:>10,}")
    _cut(add, len(tables.warnings_by_kind))
    add("\nSchema drift (seen in the wild, not in the documented contract):")
    _finding_lines(add, tables.drift, first_seen=True)
    add("\nOther warnings, by pointer and message:")
    _finding_lines(add, tables.warnings)


def _capture(add: Add, summary: Summary, tables: Tables) -> None:
    if summary.truncated:
        add(
            f"\nResponses over the capture cap: {summary.truncated:,} (their log lines, "
            "validation and recordings saw only the first part)"
        )
    if tables.not_recorded:
        add("\nNot recorded, by reason:")
        for reason, count in tables.not_recorded[:ROWS]:
            add(f"  {count:>6,} x {shown(reason, TEXT)}")
        _cut(add, len(tables.not_recorded))


def _corrupt(add: Add, summary: Summary) -> None:
    if not summary.corrupt_count:
        return
    add(
        f"\nCorrupt lines: {summary.corrupt_count:,} (not JSON, or not an event; the rest "
        "was counted)"
    )
    for corrupt in summary.corrupt:
        add(f"  {shown(corrupt.source, PATH)}:{corrupt.line}: {shown(corrupt.error, TEXT)}")
    if summary.corrupt_count > len(summary.corrupt):
        add(f"  ... and {summary.corrupt_count - len(summary.corrupt):,} more")
