"""``cassette-proxy audit``: a report of the proxy's JSON-lines logs, with thresholds for CI."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from cassette_proxy.tools.audit import Filters, parse_status, parse_time, summarise
from cassette_proxy.tools.audit.gates import FORMS, Gate
from cassette_proxy.tools.audit.report import Report
from cassette_proxy.tools.audit.tokens import Prices, PriceTableError
from cassette_proxy.tools.files import NoLogs, log_paths
from cassette_proxy.tools.progress import Progress
from cassette_proxy.tools.shown import PATH, shown

SOURCES = ("upstream", "cassette", "proxy")
VERDICTS = ("passed", "failed", "skipped")


def parse_time_option(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time ({exc})") from exc


AUDIT_EPILOG = f"""\b
Thresholds for --fail-on: {FORMS}
(a bare name means >0; latency is the whole exchange's, over the exchanges the filters keep).
Exit codes: 0 the report was written and no threshold was crossed; 1 a --fail-on threshold was
crossed, or no line is a cassette-proxy log event; 2 a usage error (an unknown option, a log
that is not a file, a folder without logs, a price table that cannot be read)."""


def _renderer(fmt: str) -> Callable[[Report], str]:
    """The renderer of one format, imported only when it is the one asked for."""
    if fmt == "json":
        from cassette_proxy.tools.audit.document import render_json  # noqa: PLC0415

        return render_json
    if fmt == "html":
        from cassette_proxy.tools.audit.html import render_html  # noqa: PLC0415

        return render_html
    from cassette_proxy.tools.audit.text import render_text  # noqa: PLC0415

    return render_text


def _gates(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> list[Gate]:
    try:
        return [Gate.parse(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _prices(_: click.Context, __: click.Parameter, value: Path | None) -> Prices | None:
    if value is None:
        return None
    try:
        return Prices.load(value)
    except PriceTableError as exc:
        raise click.BadParameter(str(exc)) from exc


def _statuses(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> frozenset[str]:
    try:
        return frozenset(parse_status(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("audit", epilog=AUDIT_EPILOG)
@click.argument("logs", nargs=-1, required=True)
@click.option("--since", type=parse_time_option, help="Only exchanges at or after (ISO 8601).")
@click.option("--until", type=parse_time_option, help="Only exchanges before (ISO 8601).")
@click.option(
    "--route",
    "routes",
    multiple=True,
    metavar="NAME",
    help="Only exchanges of this route (cancel, passthrough); repeat for more.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="CODE",
    callback=_statuses,
    help="Only exchanges with this status (502) or class (5xx); repeat for more.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(SOURCES),
    help="Only exchanges answered from here; repeat for more.",
)
@click.option(
    "--verdict",
    "verdicts",
    multiple=True,
    type=click.Choice(VERDICTS),
    help="Only exchanges with this validation verdict; repeat for more.",
)
@click.option(
    "--fail-on",
    "gates",
    multiple=True,
    metavar="THRESHOLD",
    callback=_gates,
    help="Exit 1 if the exchanges cross it (see below); repeat for more.",
)
@click.option(
    "--slowest",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="How many of the slowest exchanges to list.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="html: one self-contained page with charts.",
)
@click.option(
    "--by-instance",
    is_flag=True,
    help="Break the tables down by instance (--instance of each proxy), after the whole.",
)
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_prices,
    metavar="FILE",
    help='A TOML price table (per, [models."<name>"] input, cached, output): the tokens '
    "table then says what they cost. No price is guessed.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of stdout.")  # fmt: skip
def audit(
    *,
    logs: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    routes: tuple[str, ...],
    statuses: frozenset[str],
    sources: tuple[str, ...],
    verdicts: tuple[str, ...],
    gates: list[Gate],
    slowest: int,
    fmt: str,
    by_instance: bool,
    prices: Prices | None,
    output: Path | None,
) -> None:
    """Summarise JSON-lines traffic logs (plain, .gz, folders of them, or - for stdin)."""
    try:
        files = log_paths(logs)
    except NoLogs as exc:
        raise click.BadParameter(str(exc), param_hint="LOGS") from exc
    for log in files:
        if log != "-" and not Path(log).is_file():
            raise click.BadParameter(f"{log!r} is not a file or a folder", param_hint="LOGS")
    filters = Filters(
        frozenset(routes), statuses, frozenset(sources), frozenset(verdicts), since, until
    )
    summary = summarise(
        files,
        filters=filters,
        slowest=slowest,
        progress=Progress.on_terminal(),
        by_instance=by_instance,
    )
    report = Report.of(summary, gates, prices)
    rendered = _renderer(fmt)(report)
    if output is None:
        click.echo(rendered, nl=False)
    else:
        try:
            output.write_text(rendered, encoding="utf-8")
        except OSError as exc:
            raise click.FileError(str(output), hint=exc.strerror or str(exc)) from exc
        click.echo(
            f"{shown(output, PATH)}: {fmt} report of {summary.exchanges:,} exchanges", err=True
        )
    if summary.events == 0 and summary.corrupt_count > summary.broken_files:
        click.echo(
            "Error: no line is a cassette-proxy log event; audit reads the JSON lines of "
            "serve --log-file (a cassette is checked with: cassette-proxy cassette check)",
            err=True,
        )
        sys.exit(1)
    for verdict in report.verdicts:
        click.echo(
            ("FAILED " if verdict.failed else "ok ") + verdict.explain(summary.exchanges), err=True
        )
    if report.failed:
        sys.exit(1)
