"""``cassette-proxy serve``: one option per field of :class:`cassette_proxy.settings.Settings`
(their help is the field descriptions); values are validated there, and domain errors are printed
once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Any

import click
from pydantic import AnyHttpUrl, ValidationError

from cassette_proxy import config_file
from cassette_proxy.config_file import ConfigFileError
from cassette_proxy.errors import StartupError
from cassette_proxy.serving.process.serve import serve
from cassette_proxy.settings import ENV_PREFIX, SECRET_OPTIONS, Settings

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
    "body_timeout": "SECONDS",
    "body_min_rate": "BYTES/S",
    "replay_speed": "FACTOR",
    "instance": "NAME",
    "workers": "COUNT",
    "drain_delay": "SECONDS",
    "config": "FILE",
    "admin_token": "TOKEN",
    "cassette_dir": "DIR",
    "faults": "JSON",
    "match_ignore": "POINTER",
    "match_headers": "NAME",
}
# Defaults that are not a value (None), said in words.
SHOWN_DEFAULTS = {"instance": "the host name"}


def _metavar(name: str, annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return "[" + "|".join(member.value for member in annotation) + "]"
    return METAVARS.get(name, "VALUE")


def _rendered_default(default: Any) -> str | None:
    """A default as a user would type it (None: no default to show)."""
    if default is None or default == ():
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


def _extra(name: str) -> dict[str, Any]:
    extra = Settings.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def flag_of(name: str) -> str:
    """The option's flag: the field's name, or the singular a repeatable one declares."""
    return "--" + config_file.flag(name, Settings.model_fields[name])


def _settings_options(command: Any) -> Any:
    """One option per settings field; values stay strings here and are validated by Settings,
    so a bad one gives the same one-line error whether it came from a flag or the environment.
    A field declared repeatable takes its flag once per value; a switch that is on by default
    is turned off with ``--no-...``."""
    for name in reversed(CLI_FIELDS):
        info = Settings.model_fields[name]
        flag = flag_of(name)
        extra = _extra(name)
        default = SHOWN_DEFAULTS.get(name) or _rendered_default(
            info.default if info.default_factory is None else None
        )
        shown = f"; default: {default}" if default is not None else ""
        if extra.get("repeatable"):
            shown += "; repeatable, comma-separated in the environment"
        help_text = f"{info.description} [env {ENV_PREFIX}{name.upper()}{shown}]"
        if info.annotation is bool:
            flags = f"{flag}/--no-{flag[2:]}" if info.default is True else flag
            command = click.option(flags, name, is_flag=True, default=None, help=help_text)(command)
        else:
            metavar = extra.get("metavar") or _metavar(name, info.annotation)
            command = click.option(
                flag,
                name,
                default=None,
                metavar=metavar,
                help=help_text,
                multiple=bool(extra.get("repeatable")),
            )(command)
    return command


def _source(field: str, given: dict[str, Any]) -> str:
    """Where a value came from, as the one-line error names it: a flag, a variable, the file."""
    if field in given:
        return flag_of(field)
    variable = f"{ENV_PREFIX}{field.upper()}"
    if os.environ.get(variable):
        return variable
    path = given.get("config") or os.environ.get(f"{ENV_PREFIX}CONFIG")
    if path:
        try:
            in_file = field in config_file.load(Path(path), Settings.model_fields)
        except ConfigFileError:
            in_file = False
        if in_file:
            return f"{config_file.option_name(field)} in {config_file.where(Path(path))}"
    return variable


def _one_line(error: ValidationError, given: dict[str, Any]) -> str:
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:  # options that do not go together: the message names them
        return message
    field = str(first["loc"][0])
    source = _source(field, given)
    if field in SECRET_OPTIONS or field not in Settings.model_fields or field not in CLI_FIELDS:
        # a key, a token, values that may be secrets: never quoted
        return f"invalid value for {source}: {message}"
    value = given.get(field, first.get("input"))
    inside = "/".join(str(part) for part in first["loc"][1:])  # a rule of --faults: 0/status
    at = f" (at {inside})" if inside else ""
    return f"invalid value {value!r} for {source}{at}: {message}"


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (the proxy's default dependency on Linux and macOS):
    it halves the event loop's cost per request (see README, Performance)."""
    try:
        import uvloop  # noqa: PLC0415 - optional: Windows has no uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


@click.command(
    "serve",
    epilog=f"Environment only: {ENV_PREFIX}UPSTREAM_API_KEY=<key> makes forwarded requests carry "
    "'Authorization: Api-Key <key>' instead of the client's.",
)
@_settings_options
def serve_command(**options: Any) -> None:
    """Forward, validate, log, and record or replay (with --cassette)."""
    # A repeatable option not given is an empty tuple: unset, so the environment counts.
    given = {name: value for name, value in options.items() if value not in (None, ())}
    try:
        settings = Settings(**given)
    except ValidationError as error:
        click.echo(f"Error: {_one_line(error, given)}", err=True)
        sys.exit(2)
    except ConfigFileError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2 if error.usage else 1)
    try:
        if settings.workers > 1:
            from cassette_proxy.serving.process.workers import supervise  # noqa: PLC0415 - only then

            sys.exit(supervise(settings, run))
        run(serve(settings))
    except StartupError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
