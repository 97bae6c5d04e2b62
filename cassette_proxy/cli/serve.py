"""``cassette-proxy serve``: one option per field of :class:`cassette_proxy.settings.Settings`
(their help is the field descriptions); values are validated there, and domain errors are printed
once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from enum import StrEnum
from typing import Any

import click
from pydantic import AnyHttpUrl, ValidationError

from cassette_proxy.errors import StartupError
from cassette_proxy.serving.serve import serve
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
    "upstream_idle_timeout": "SECONDS",
    "max_body_size": "BYTES",
    "max_capture_size": "BYTES",
    "header_timeout": "SECONDS",
    "keepalive_timeout": "SECONDS",
    "max_connections": "COUNT",
    "body_timeout": "SECONDS",
    "body_min_rate": "BYTES/S",
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


@click.command(
    "serve",
    epilog=f"Environment only: {ENV_PREFIX}UPSTREAM_API_KEY=<key> makes forwarded requests carry "
    "'Authorization: Api-Key <key>' instead of the client's.",
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
