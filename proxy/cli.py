"""The command line, kept thin: options come from :class:`proxy.settings.Settings` (their help is
the field descriptions), values are validated there, and domain errors are printed once."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
from pydantic import ValidationError

from proxy import __version__
from proxy.errors import StartupError
from proxy.serve import serve
from proxy.settings import ENV_PREFIX, Settings

CLI_FIELDS = [name for name, info in Settings.model_fields.items() if not info.exclude]


def _settings_options(command: Any) -> Any:
    for name in reversed(CLI_FIELDS):
        info = Settings.model_fields[name]
        flag = "--" + name.replace("_", "-")
        default = info.default
        if isinstance(default, tuple):
            default = ",".join(default)
        help_text = f"{info.description} [env {ENV_PREFIX}{name.upper()}; default: {default}]"
        if info.annotation is bool:
            command = click.option(flag, name, is_flag=True, default=None, help=help_text)(command)
        else:
            command = click.option(flag, name, default=None, help=help_text)(command)
    return command


def _one_line(error: ValidationError, given: dict[str, Any]) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    source = "--" + field.replace("_", "-") if field in given else f"{ENV_PREFIX}{field.upper()}"
    message = first["msg"].removeprefix("Value error, ")
    value = given.get(field, first.get("input"))
    return f"invalid value {value!r} for {source}: {message}"


@click.group()
@click.version_option(__version__, prog_name="cassette-proxy")
def main() -> None:
    """Record/replay reverse proxy for the OpenAI-compatible Responses API."""


@main.command()
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
        asyncio.run(serve(settings))
    except StartupError as error:
        click.echo(f"Error: {type(error).__name__}: {error}", err=True)
        sys.exit(1)


serve_command.name = "serve"
