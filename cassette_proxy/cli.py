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
import orjson
from pydantic import AnyHttpUrl, ValidationError

from cassette_proxy import __version__
from cassette_proxy.audit import Progress, parse_time, summarise
from cassette_proxy.audit import render_text as render_audit
from cassette_proxy.cassette_check import check_cassette, redact_cassette, render_json, render_text
from cassette_proxy.errors import StartupError
from cassette_proxy.serve import serve
from cassette_proxy.settings import ENV_PREFIX, Settings

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
    "max_body_size": "BYTES",
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


@cassette.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def cassette_check(paths: tuple[Path, ...], fmt: str) -> None:
    """Validate every interaction, confirm vcrpy loads the file, and scan it for secrets.

    Exits 1 if any error-level finding (a broken contract, a secret, a file vcrpy cannot
    load), so it can gate CI.
    """
    reports = [check_cassette(path) for path in paths]
    click.echo(render_json(reports) if fmt == "json" else render_text(reports), nl=False)
    if any(report.count("error") for report in reports):
        sys.exit(1)


@cassette.command("redact")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def cassette_redact(path: Path) -> None:
    """Replace every secret in the cassette, atomically, keeping every other byte."""
    try:
        result = redact_cassette(path)
    except StartupError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    if result.secrets == 0:
        click.echo(f"{path}: no secrets found; left unchanged")
    else:
        click.echo(f"{path}: {result.secrets} secret(s) replaced ({result.rewritten})")


@main.command()
@click.argument("logs", nargs=-1, required=True)
@click.option("--since", type=parse_time_option, help="Only exchanges at or after (ISO 8601).")
@click.option("--until", type=parse_time_option, help="Only exchanges before (ISO 8601).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def audit(logs: tuple[str, ...], since: datetime | None, until: datetime | None, fmt: str) -> None:
    """Summarise JSON-lines traffic logs (plain, .gz, or - for stdin)."""
    for log in logs:
        if log != "-" and not Path(log).is_file():
            raise click.BadParameter(f"{log!r} is not a file", param_hint="LOGS")
    summary = summarise(
        logs, since=since, until=until, progress=Progress(enabled=sys.stderr.isatty())
    )
    if fmt == "json":
        click.echo(orjson.dumps(summary.as_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_audit(summary), nl=False)
    if summary.events == 0 and summary.corrupt_count > summary.broken_files:
        click.echo(
            "Error: no line is a cassette-proxy log event; audit reads the JSON lines of "
            "serve --log-file (a cassette is checked with: cassette-proxy cassette check)",
            err=True,
        )
        sys.exit(1)
