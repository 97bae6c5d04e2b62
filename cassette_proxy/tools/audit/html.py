"""The audit as one self-contained HTML page (``--format html``): the text report's content,
with charts where a picture reads faster than a table.

The page has no script and loads nothing: styles are inline, charts are inline SVG
(:mod:`cassette_proxy.tools.audit.svg`, which says why no plotting library). It holds aggregates
only, so its size does not depend on the log's: long lists are cut at :data:`ROWS` rows, with
the number left out (``--format json`` has them all). Log values are untrusted: escaped as
markup, their control and bidirectional characters shown as escapes, and cut (a name in a cell
that does not wrap at :data:`~cassette_proxy.tools.shown.NAME` characters, other text at
:data:`~cassette_proxy.tools.shown.TEXT`), and any long word breaks, so no value can widen the
page or reverse the text around it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cassette_proxy import __version__
from cassette_proxy.tools.audit import svg
from cassette_proxy.tools.audit.report import Report, instance_table, token_table
from cassette_proxy.tools.audit.summary import OTHER_STATUS, Summary
from cassette_proxy.tools.audit.svg import esc, number
from cassette_proxy.tools.audit.tables import (
    LATENCIES,
    STREAM_TTFB_ABOVE,
    Finding,
    LatencyRow,
    Tables,
    time_series,
)
from cassette_proxy.tools.shown import NAME, PATH, TEXT, shown

ROWS = 200  # rows of a findings table shown
STATUS_COLUMNS = 20  # statuses shown as columns of the route x status table; more are summed
POINTERS = 25  # bars in the violations-by-pointer chart
TIME_BARS = 240  # columns in the requests-over-time chart

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#222;margin:0;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 10px}
h3{font-size:15px;margin:14px 0 6px}
section{background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:16px 18px;margin:16px 0}
.meta{color:#555;margin:0}
.cards{display:flex;flex-wrap:wrap;gap:12px;background:none;border:0;padding:0}
.card{flex:1 1 120px;background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:10px 14px}
.card b{display:block;font-size:22px}
.card.bad b{color:#c0392b}
.card span{color:#555;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{font-weight:600;color:#444;background:#fafbfc}
td{white-space:nowrap}td.w{white-space:normal;overflow-wrap:anywhere}
p,h3,li{overflow-wrap:anywhere}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;word-break:break-all}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:8px 20px}
.ok{color:#2e7d32}.failed{color:#c0392b;font-weight:600}
.note{color:#666;font-size:12px}
svg{max-width:100%;height:auto;display:block}
footer{color:#888;font-size:12px;text-align:center;padding:8px}
"""


def render_html(report: Report) -> str:
    summary, tables = report.summary, report.tables
    parts = [
        _header(summary),
        _cards(summary, tables),
        _gates(report),
        _over_time(summary),
        _traffic(tables),
        _errors(summary, tables),
        _latency(tables),
        _tokens(report),
        _instances(report),
        _slowest(tables),
        _streams(tables),
        _findings(tables),
        _capture(summary, tables),
        _corrupt(summary),
    ]
    title = f"cassette-proxy audit: {summary.exchanges:,} exchanges"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body><main>"
        + "".join(part for part in parts if part)
        + f"<footer>cassette-proxy {esc(__version__)} audit</footer></main></body></html>\n"
    )


def _tokens(report: Report) -> str:
    if not report.tables.tokens:
        return ""
    headers, rows, unpriced = token_table(report)
    missing = ", ".join(map(shown, unpriced))
    note = _note(f"No price in the price table for: {missing}.") if unpriced else ""
    return _section(
        "tokens",
        "Tokens by model, route and source",
        _note(
            "Each response counted once; input includes cached, output includes reasoning; "
            "tokens a cassette replayed were spent when they were recorded, and are not priced."
        ),
        _table(headers, rows, lambda i: i >= 3),
        note,
    )


def _instances(report: Report) -> str:
    if not report.instances:
        return ""
    headers, rows = instance_table(report)
    return _section("instances", "By instance", _table(headers, rows, lambda i: i >= 1))


def _section(anchor: str, title: str, *content: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{"".join(content)}</section>'


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    numeric: Callable[[int], bool] = lambda _: False,
    wrap: Callable[[int], bool] = lambda _: False,
) -> str:
    """A table; ``numeric`` columns are right-aligned, only ``wrap`` columns break lines."""

    def cell(tag: str, i: int, value: object) -> str:
        kind = ' class="n"' if numeric(i) else ' class="w"' if wrap(i) else ""
        text = f"{value:,}" if isinstance(value, int) else shown(value, TEXT if wrap(i) else NAME)
        return f"<{tag}{kind}>{esc(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _legend(*items: tuple[str, str]) -> str:
    return (
        '<p class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{esc(name)}</span>' for name, c in items)
        + "</p>"
    )


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _more(rows: int, shown_rows: int = ROWS) -> str:
    """What a table cut at ``shown_rows`` left out."""
    more = rows - shown_rows
    return _note(f"... and {more:,} more (--format json lists them all)") if more > 0 else ""


def _status(status: int) -> str:
    return "other" if status == OTHER_STATUS else str(status)


def _header(summary: Summary) -> str:
    span = f", {shown(summary.first)} .. {shown(summary.last)}" if summary.first else ""
    lines = [
        f"{summary.exchanges:,} exchanges in {summary.lines:,} lines from "
        f"{len(summary.files)} file(s){span}"
    ]
    if summary.filters.active:
        lines.append(
            f"Filters: {shown(summary.filters.describe(), TEXT)} "
            f"({summary.left_out:,} exchanges left out)"
        )
    files = ", ".join(shown(f, PATH) for f in summary.files[:5])
    files += " ..." if len(summary.files) > 5 else ""
    lines.append(f"Logs: {files}")
    return (
        "<header><h1>Traffic audit</h1>"
        + "".join(f'<p class="meta">{esc(line)}</p>' for line in lines)
        + "</header>"
    )


def _cards(summary: Summary, tables: Tables) -> str:
    share = 100 * summary.errors / summary.exchanges if summary.exchanges else 0.0
    drift = sum(f.group.count for f in tables.drift)
    failures = sum(f.group.count for f in tables.failures)
    cards = [
        ("Exchanges", f"{summary.exchanges:,}", f"{len(tables.by_route)} route(s)", False),
        ("Went wrong", f"{summary.errors:,}", f"{share:.1f}% of exchanges", summary.errors > 0),
        (
            "p50 / p99, ms",
            f"{number(tables.percentile(50))} / {number(tables.percentile(99))}",
            "the whole exchange",
            False,
        ),
        ("Validation failures", f"{failures:,}", "error-level violations", failures > 0),
        ("Drift warnings", f"{drift:,}", f"{len(tables.drift)} distinct", drift > 0),
    ]
    if tables.streams is not None:
        streams = tables.streams
        cards.append(("Streams", f"{streams.count:,}", f"{streams.complete:,} complete", False))
    return (
        '<section class="cards">'
        + "".join(
            f'<div class="card{" bad" if bad else ""}"><span>{esc(name)}</span><b>{esc(value)}</b>'
            f"<span>{esc(detail)}</span></div>"
            for name, value, detail, bad in cards
        )
        + "</section>"
    )


def _gates(report: Report) -> str:
    if not report.verdicts:
        return ""
    items = "".join(
        f'<li class="{"failed" if v.failed else "ok"}">'
        f"{'FAILED' if v.failed else 'ok'}: {esc(v.explain(report.summary.exchanges))}</li>"
        for v in report.verdicts
    )
    return _section("gates", "Thresholds (--fail-on)", f"<ul>{items}</ul>")


def _over_time(summary: Summary) -> str:
    series = time_series(summary, TIME_BARS)
    if not series.buckets:
        return ""
    per = "minute" if series.width == 1 else f"{series.width} minutes"
    each = "one minute" if series.width == 1 else per
    chart = svg.columns(
        [
            svg.Column(
                b.start[11:] if series.width < 1440 else b.start[:10],
                ((b.requests - b.errors, svg.BLUE), (b.errors, svg.RED)),
                f"{b.start} ({per}): {b.requests:,} requests, {b.errors:,} went wrong",
            )
            for b in series.buckets
        ],
        label="Requests and errors over time",
        unit=f"per {per}",
    )
    busiest = series.busiest
    notes = [
        f"Each column is {each}, from {series.buckets[0].start} to {series.buckets[-1].start}. "
        f"Mean {series.mean_per_minute:,.1f} requests a minute"
        + (f"; busiest minute {busiest.start} with {busiest.requests:,}" if busiest else "")
        + (
            f"; most errors {series.worst.errors:,} at {series.worst.start}"
            if series.worst
            else "; no errors"
        )
        + "."
    ]
    return _section(
        "time",
        "Requests and errors over time",
        _legend(("requests", svg.BLUE), ("went wrong", svg.RED)),
        chart,
        _note(notes[0]),
    )


def _traffic(tables: Tables) -> str:
    statuses, others = tables.status_columns(STATUS_COLUMNS)
    top = max((c for _, row, _ in tables.route_status for c in row.values()), default=1)
    head = "".join(f'<th class="n">{_status(status)}</th>' for status in statuses)
    head += '<th class="n">others</th>' if others else ""
    rows = []
    for route, row, total in tables.route_status[:ROWS]:
        cells = []
        counts = [(status, row.get(status, 0)) for status in statuses]
        if others:
            counts.append((OTHER_STATUS, total - sum(count for _, count in counts)))
        for status, count in counts:
            colour = (
                "228,87,86" if status >= 500 else "245,133,24" if status >= 400 else "76,120,168"
            )
            alpha = 0.08 + 0.5 * count / top if count else 0
            shade = f' style="background:rgba({colour},{alpha:.2f})"' if count else ""
            cells.append(f'<td class="n"{shade}>{count:,}</td>')
        rows.append(
            f'<tr><td>{esc(shown(route))}</td>{"".join(cells)}<td class="n">{total:,}</td></tr>'
        )
    matrix = (
        f'<table><thead><tr><th>route</th>{head}<th class="n">total</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    ) + _more(len(tables.route_status))
    small = "".join(
        f"<div><h3>By {name}</h3>"
        f"{_table([name, 'exchanges'], named[:ROWS], lambda i: i == 1)}{_more(len(named))}</div>"
        for name, named in (("source", tables.by_source), ("verdict", tables.by_verdict))
    )
    return _section("routes", "By route and status", matrix, f'<div class="grid">{small}</div>')


def _errors(summary: Summary, tables: Tables) -> str:
    if not tables.error_codes:
        return _section("errors", "Errors by the proxy's code", _note("None."))
    chart = svg.bars(
        [
            svg.Bar(
                f"{e.code} ({_status(e.status)})",
                e.group.count,
                svg.RED,
                f"{shown(e.code)}, status {_status(e.status)}: {e.group.count:,}",
            )
            for e in tables.error_codes[:POINTERS]
        ],
        label="Errors by the proxy's code",
        label_chars=36,
    )
    table = _table(
        ["code", "status", "count", "first seen", "last seen", "e.g. exchange"],
        [
            (
                e.code,
                _status(e.status),
                e.group.count,
                e.group.first_seen,
                e.group.last_seen,
                e.group.example,
            )
            for e in tables.error_codes[:ROWS]
        ],
        lambda i: i in (1, 2),
    ) + _more(len(tables.error_codes))
    other = summary.errors - sum(e.group.count for e in tables.error_codes)
    note = (
        _note(
            f"{other:,} more went wrong without a code of the proxy's (a 5xx, a failed validation)."
        )
        if other > 0
        else ""
    )
    return _section("errors", "Errors by the proxy's code", chart, table, note)


def _latency_table(rows: list[LatencyRow]) -> str:
    return _table(
        ["route", "count", "p50", "p90", "p99", "max"],
        [
            (r.route, r.count, f"{r.p50:.2f}", f"{r.p90:.2f}", f"{r.p99:.2f}", f"{r.max:.2f}")
            for r in rows[:ROWS]
        ],
        lambda i: i > 0,
    ) + _more(len(rows))


def _latency(tables: Tables) -> str:
    total = tables.latency["total"]
    if not total:
        return _section("latency", "Latency", _note("No exchanges."))
    upstream = {row.route: row for row in tables.latency["upstream"]}
    own = {row.route: row for row in tables.latency["own"]}
    panels = []
    shown_rows = total if len(total) > 2 else total[1:]  # (all) is the one route's twin
    for row in shown_rows[:POINTERS]:
        route = shown(row.route)
        chart = svg.histogram(
            row.histogram.buckets(),
            [svg.Marker("p50", row.p50), svg.Marker("p90", row.p90), svg.Marker("p99", row.p99)],
            label=f"Latency distribution of {route}",
        )
        median_split = ""
        if row.route in upstream and row.route in own:
            in_upstream, in_proxy = upstream[row.route].p50, own[row.route].p50
            median_split = svg.split(
                [("upstream", in_upstream, svg.TEAL), ("proxy", in_proxy, svg.BLUE)],
                label=f"Median time of {route}: upstream and the proxy's own",
                caption=f"medians: upstream {number(in_upstream)} ms, "
                f"the proxy's own {number(in_proxy)} ms",
            )
        panels.append(
            f'<div><h3>{esc(route)} <span class="note">{row.count:,} exchanges</span></h3>'
            f"{chart}{median_split}</div>"
        )
    if len(shown_rows) > POINTERS:
        panels.append(_more(len(shown_rows), POINTERS))
    tables_html = "".join(
        f"<h3>{esc(LATENCIES[name][0].capitalize())}, ms</h3>{_latency_table(tables.latency[name])}"
        for name in ("total", "upstream", "own", "replay", "ttfb")
        if tables.latency[name]
    )
    return _section(
        "latency",
        "Latency",
        _note(
            "The whole exchange's time per route, on a logarithmic axis, with its percentiles. "
            "Under each, the median split into the upstream's time and the proxy's own. "
            "Cassette replays are counted apart, without the waits --replay-timing recorded "
            "makes on purpose (replay_wait_ms). "
            "Percentiles are within 1%."
        ),
        _legend(("upstream", svg.TEAL), ("the proxy's own", svg.BLUE)),
        f'<div class="grid">{"".join(panels)}</div>',
        tables_html,
    )


def _slowest(tables: Tables) -> str:
    if not tables.slowest:
        return ""
    return _section(
        "slowest",
        "Slowest exchanges",
        _table(
            ["ms", "upstream ms", "route", "status", "source", "time", "exchange id", "error"],
            [
                (
                    f"{s.duration_ms:.2f}",
                    f"{s.upstream_ms:.2f}" if s.upstream_ms is not None else "-",
                    s.route,
                    s.status,
                    s.source,
                    s.time,
                    s.id,
                    s.error or "",
                )
                for s in tables.slowest
            ],
            lambda i: i in (0, 1, 3),
        ),
    )


def _streams(tables: Tables) -> str:
    streams = tables.streams
    if streams is None:
        return ""
    chart = svg.bars(
        [
            svg.Bar(name, count, svg.BLUE, f"{shown(name, TEXT)}: {count:,} events")
            for name, count in streams.types[:POINTERS]
        ],
        label="Event types seen",
        label_chars=40,
    )
    if tables.stream_ttfb_apart:
        ttfb = "<h3>Time to the upstream's headers, streams only, ms</h3>" + _latency_table(
            tables.latency["stream_ttfb"]
        )
    else:
        ttfb = _note(STREAM_TTFB_ABOVE.capitalize() + ".") if tables.latency["stream_ttfb"] else ""
    return _section(
        "streams",
        "Streams (text/event-stream)",
        _note(
            f"{streams.count:,} streams, {streams.complete:,} complete, "
            f"{streams.count - streams.complete:,} ended without a terminal event. Events per "
            f"stream: p50 {streams.events_p50:,.0f}, p90 {streams.events_p90:,.0f}, "
            f"max {streams.events_max:,.0f}."
        ),
        "<h3>Event types seen</h3>",
        chart,
        ttfb,
    )


def _findings_table(findings: list[Finding], *, drift: bool = False) -> str:
    rows = [
        (
            f.group.count,
            f.key.kind,
            f.key.where,
            f.key.message,
            f.group.first_seen,
            f.group.example,
        )
        for f in findings[:ROWS]
    ]
    table = _table(
        [
            "count",
            "kind",
            "where",
            "message",
            "first seen" if drift else "seen at",
            "e.g. exchange",
        ],
        rows,
        lambda i: i == 0,
        lambda i: i in (2, 3),
    )
    more = len(findings) - ROWS
    return table + (
        _note(f"... and {more:,} more (--format json lists them all)") if more > 0 else ""
    )


def _findings(tables: Tables) -> str:
    by_pointer: dict[tuple[str, str], int] = {}
    for finding in [*tables.failures, *tables.drift, *tables.warnings]:
        key = finding.key
        category = "error" if key.severity == "error" else "drift" if key.is_drift else "warning"
        where = (key.where, category)
        by_pointer[where] = by_pointer.get(where, 0) + finding.group.count
    colours = {"error": svg.RED, "drift": svg.ORANGE, "warning": svg.GREY}
    top = sorted(by_pointer.items(), key=lambda item: (-item[1], item[0]))[:POINTERS]
    chart = (
        svg.bars(
            [
                svg.Bar(
                    where,
                    count,
                    colours[category],
                    f"{category}s at {shown(where, TEXT)}: {count:,}",
                )
                for (where, category), count in top
            ],
            label="Violations and drift by pointer",
        )
        if top
        else _note("No violations.")
    )
    kinds = _table(["kind", "warnings"], tables.warnings_by_kind[:ROWS], lambda i: i == 1) + _more(
        len(tables.warnings_by_kind)
    )
    return _section(
        "findings",
        "Violations and drift by pointer",
        _legend(
            ("validation errors", svg.RED), ("drift", svg.ORANGE), ("other warnings", svg.GREY)
        ),
        chart,
        "<h3>Validation failures (errors), by pointer and message</h3>",
        _findings_table(tables.failures) if tables.failures else _note("None."),
        "<h3>Schema drift (seen in the wild, not in the documented contract)</h3>",
        _findings_table(tables.drift, drift=True) if tables.drift else _note("None."),
        "<h3>Other warnings, by pointer and message</h3>",
        _findings_table(tables.warnings) if tables.warnings else _note("None."),
        "<h3>Warnings by kind</h3>",
        kinds if tables.warnings_by_kind else _note("None."),
    )


def _capture(summary: Summary, tables: Tables) -> str:
    if not summary.truncated and not tables.not_recorded:
        return ""
    parts = []
    if summary.truncated:
        parts.append(
            _note(
                f"Responses over the capture cap: {summary.truncated:,} (their log lines, "
                "validation and recordings saw only the first part)."
            )
        )
    if tables.not_recorded:
        parts.append(
            _table(
                ["reason", "exchanges"],
                tables.not_recorded[:ROWS],
                lambda i: i == 1,
                lambda i: i == 0,
            )
            + _more(len(tables.not_recorded))
        )
    return _section("capture", "Capture and recording", *parts)


def _corrupt(summary: Summary) -> str:
    if not summary.corrupt_count:
        return ""
    more = summary.corrupt_count - len(summary.corrupt)
    return _section(
        "corrupt",
        f"Corrupt lines: {summary.corrupt_count:,}",
        _note("Not JSON, or not an event the proxy writes; the rest was counted."),
        _table(
            ["file", "line", "why"],
            [(c.source, c.line, c.error) for c in summary.corrupt],
            lambda i: i == 1,
            lambda i: i != 1,
        ),
        _note(f"... and {more:,} more") if more > 0 else "",
    )
