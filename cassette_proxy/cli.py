"""The command line, kept thin: options come from :class:`cassette_proxy.settings.Settings`
(their help is the field descriptions), values are validated there, and domain errors are printed
once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import click
from pydantic import AnyHttpUrl, ValidationError

from cassette_proxy import __version__
from cassette_proxy.errors import StartupError
from cassette_proxy.serving.serve import serve
from cassette_proxy.settings import ENV_PREFIX, Settings
from cassette_proxy.tools.audit import Filters, parse_status, parse_time, summarise
from cassette_proxy.tools.audit.document import render_json as render_audit_json
from cassette_proxy.tools.audit.gates import FORMS, Gate
from cassette_proxy.tools.audit.html import render_html
from cassette_proxy.tools.audit.report import Report
from cassette_proxy.tools.audit.text import render_text as render_audit
from cassette_proxy.tools.files import NoCassettes, cassette_paths
from cassette_proxy.tools.progress import Progress
from cassette_proxy.tools.report import FailOn, JsonReport, TextReport, check_all, redact_all

SOURCES = ("upstream", "cassette", "proxy")
VERDICTS = ("passed", "failed", "skipped")
CLI_FIELDS = [name for name, info in Settings.model_fields.items() if not info.exclude]


METAVARS = {
    "upstream": "URL",
    "host": "ADDRESS",
    "port": "PORT",
    "cassette": "PATH",
    "shutdown_timeout": "SECONDS",
    "match_on": "MATCHERS",
    "log_file": "PATH",
    "upstream_timeout": "SECONDS",
    "upstream_idle_timeout": "SECONDS",
    "max_body_size": "BYTES",
    "max_capture_size": "BYTES",
    "header_timeout": "SECONDS",
    "keepalive_timeout": "SECONDS",
    "max_connections": "COUNT",
    "replay_speed": "FACTOR",
}


def _metavar(name: str, annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return "[" + "|".join(member.value for member in annotation) + "]"
    return METAVARS.get(name, "VALUE")


def _rendered_default(default: Any) -> str | None:
    """A default as a user would type it (None: no default to show)."""
    if default is None:
        return None
    rendered = str(default)
    if isinstance(default, bool):
        rendered = "on" if default else "off"
    elif isinstance(default, tuple):
        rendered = ",".join(default)
    elif isinstance(default, StrEnum):
        rendered = default.value
    elif isinstance(default, float):
        rendered = f"{default:g}"
    elif isinstance(default, AnyHttpUrl):
        rendered = rendered.rstrip("/")  # pydantic adds a "/" path to a bare origin
    return rendered


def _settings_options(command: Any) -> Any:
    """One option per settings field; values stay strings here and are validated by Settings,
    so a bad one gives the same one-line error whether it came from a flag or the environment."""
    for name in reversed(CLI_FIELDS):
        info = Settings.model_fields[name]
        flag = "--" + name.replace("_", "-")
        default = _rendered_default(info.default)
        shown = f"; default: {default}" if default is not None else ""
        help_text = f"{info.description} [env {ENV_PREFIX}{name.upper()}{shown}]"
        if info.annotation is bool:
            command = click.option(flag, name, is_flag=True, default=None, help=help_text)(command)
        else:
            metavar = _metavar(name, info.annotation)
            command = click.option(flag, name, default=None, metavar=metavar, help=help_text)(
                command
            )
    return command


def _one_line(error: ValidationError, given: dict[str, Any]) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    source = "--" + field.replace("_", "-") if field in given else f"{ENV_PREFIX}{field.upper()}"
    message = first["msg"].removeprefix("Value error, ")
    if field not in CLI_FIELDS and field in Settings.model_fields:  # a secret: never quoted
        return f"invalid value for {source}: {message}"
    value = given.get(field, first.get("input"))
    return f"invalid value {value!r} for {source}: {message}"


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (the proxy's default dependency on Linux and macOS):
    it halves the event loop's cost per request (see README, Performance)."""
    try:
        import uvloop  # noqa: PLC0415 - optional: Windows has no uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def parse_time_option(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time ({exc})") from exc


@click.group()
@click.version_option(__version__, prog_name="cassette-proxy")
def main() -> None:
    """Record/replay reverse proxy for the OpenAI-compatible Responses API."""


@main.command(
    epilog=f"Environment only: {ENV_PREFIX}UPSTREAM_API_KEY=<key> makes forwarded requests carry "
    "'Authorization: Api-Key <key>' instead of the client's."
)
@_settings_options
def serve_command(**options: Any) -> None:
    """Forward, validate, log, and record or replay (with --cassette)."""
    given = {name: value for name, value in options.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as error:
        click.echo(f"Error: {_one_line(error, given)}", err=True)
        sys.exit(2)
    try:
        run(serve(settings))
    except StartupError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)


serve_command.name = "serve"


@main.group()
def cassette() -> None:
    """Inspect and clean cassettes."""


CHECK_EPILOG = """\b
--fail-on decides what exits 1: secrets (a secret, or a cassette that could not be read, so
was not scanned), errors (the default: any error, secrets and broken contracts and files vcrpy
cannot load), warnings (any finding).
Exit codes: 0 nothing at or above --fail-on; 1 something is; 2 a usage error (an unknown
option, a folder with no cassette)."""


def _cassettes(paths: tuple[Path, ...]) -> list[Path]:
    try:
        return cassette_paths(paths)
    except NoCassettes as exc:
        raise click.BadParameter(str(exc), param_hint="PATHS") from exc


def _write(text: str) -> None:
    click.echo(text, nl=False)


def _warn(text: str) -> None:
    click.echo(text, nl=False, err=True)


@cassette.command("check", epilog=CHECK_EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--fail-on",
    type=click.Choice([gate.value for gate in FailOn]),
    default=FailOn.ERRORS.value,
    show_default=True,
    help="What makes it exit 1 (see below).",
)
@click.option("--verbose", "-v", is_flag=True, help="List every finding, not one line per group.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json keeps every finding.")  # fmt: skip
def cassette_check(paths: tuple[Path, ...], fail_on: str, verbose: bool, fmt: str) -> None:
    """Validate every interaction, confirm vcrpy loads the file, and scan it for secrets.

    PATHS are cassettes or folders, walked for .yaml, .yml and .json cassettes. Findings of one
    shape are grouped into one line, with their count and first interactions.
    """
    gate = FailOn(fail_on)
    reporter = JsonReport(_write) if fmt == "json" else TextReport(_write, verbose=verbose)
    totals = check_all(_cassettes(paths), reporter, gate, Progress.on_terminal())
    if totals.failing(gate):
        sys.exit(1)


@cassette.command("redact")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def cassette_redact(paths: tuple[Path, ...]) -> None:
    """Replace every secret in each cassette, atomically, keeping every other byte.

    PATHS are cassettes or folders, walked for .yaml, .yml and .json cassettes. Exits 1 if a
    cassette could not be read or written (the others are still redacted).
    """
    totals = redact_all(_cassettes(paths), _write, _warn, Progress.on_terminal())
    if totals.failed:
        sys.exit(1)


AUDIT_EPILOG = f"""\b
Thresholds for --fail-on: {FORMS}
(a bare name means >0; latency is the whole exchange's, over the exchanges the filters keep).
Exit codes: 0 the report was written and no threshold was crossed; 1 a --fail-on threshold was
crossed, or no line is a cassette-proxy log event; 2 a usage error (an unknown option, a log
that is not a file)."""


def _gates(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> list[Gate]:
    try:
        return [Gate.parse(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _statuses(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> frozenset[str]:
    try:
        return frozenset(parse_status(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@main.command(epilog=AUDIT_EPILOG)
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
    output: Path | None,
) -> None:
    """Summarise JSON-lines traffic logs (plain, .gz, or - for stdin)."""
    for log in logs:
        if log != "-" and not Path(log).is_file():
            raise click.BadParameter(f"{log!r} is not a file", param_hint="LOGS")
    filters = Filters(
        frozenset(routes), statuses, frozenset(sources), frozenset(verdicts), since, until
    )
    summary = summarise(logs, filters=filters, slowest=slowest, progress=Progress.on_terminal())
    report = Report.of(summary, gates)
    rendered = {"json": render_audit_json, "html": render_html, "text": render_audit}[fmt](report)
    if output is None:
        click.echo(rendered, nl=False)
    else:
        try:
            output.write_text(rendered, encoding="utf-8")
        except OSError as exc:
            raise click.FileError(str(output), hint=exc.strerror or str(exc)) from exc
        click.echo(f"{output}: {fmt} report of {summary.exchanges:,} exchanges", err=True)
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
