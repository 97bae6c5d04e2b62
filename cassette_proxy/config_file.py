"""Options from a TOML file: ``serve --config FILE``, and ``[tool.cassette-proxy]`` in a project's
``pyproject.toml`` (which the pytest plugin reads too).

Keys are the long option names (``record-mode = "none"``, ``log-file = "proxy.jsonl"``,
``placeholder = ["TEAM=acme"]``; the field names, with underscores or plural, are taken too),
values are TOML's own types (``port = 8080``, ``allow-playback-repeats = true``,
``match-on = ["method", "path"]`` or ``"method,path"``). The file only supplies values:
:class:`cassette_proxy.settings.Settings` validates them as it does flags and variables, which
win over the file. A file named ``pyproject.toml`` is read from its
``[tool.cassette-proxy]`` table, any other file from its top level.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cassette_proxy.errors import StartupError

TABLE: Final = "cassette-proxy"  # [tool.cassette-proxy] in pyproject.toml
PYPROJECT: Final = "pyproject.toml"
# Credentials, read from the environment only, never from a file that may be committed or shared.
CREDENTIALS: Final = frozenset({"upstream_api_key", "admin_token"})
NEVER_IN_A_FILE: Final = CREDENTIALS | {"config"}


class ConfigFileError(StartupError):
    """The options file cannot be read (exit 1), or names an option that does not exist
    (``usage``: exit 2, like a bad flag)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def option_name(field: str) -> str:
    """``record_mode`` as a file and the command line spell it: ``record-mode``."""
    return field.replace("_", "-")


def where(path: Path) -> str:
    """The file (and table) a value came from, as messages name it."""
    return f"[tool.{TABLE}] of {path}" if path.name == PYPROJECT else str(path)


def read_table(path: Path) -> dict[str, Any]:
    """The raw table of options in ``path`` (``{}`` for a ``pyproject.toml`` without one)."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigFileError(
            f"cannot read the options file {str(path)!r} (--config): {exc.strerror or exc}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:  # a mistake in what was given, as a bad flag is
        raise ConfigFileError(
            f"{str(path)!r} is not valid TOML (--config): {exc}", usage=True
        ) from exc
    if path.name != PYPROJECT:
        return document
    tool = document.get("tool", {})
    table = tool.get(TABLE, {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigFileError(f"{where(path)} is not a table", usage=True)
    return table


def flag(field: str, info: Any) -> str:
    """The option's own name, as a file and the command line spell it: the field's
    (``record-mode``), or the singular a repeatable one declares in its ``json_schema_extra``
    (``placeholder`` for ``placeholders``)."""
    extra = getattr(info, "json_schema_extra", None)
    declared = extra.get("flag") if isinstance(extra, dict) else None
    return option_name(declared if isinstance(declared, str) else field)


def flags(known: Mapping[str, Any]) -> dict[str, str]:
    """The field each option's own name stands for, where they differ (field names spelt with
    underscores, as keys are read)."""
    found: dict[str, str] = {}
    for field, info in known.items():
        name = flag(field, info).replace("-", "_")
        if name != field:
            found[name] = field
    return found


def options(table: Mapping[str, Any], known: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """``table``'s values by field name (``known``: the settings' fields); a key that names no
    option (or one a file may not set) is refused, naming it and the options that exist."""
    fields = set(known) - NEVER_IN_A_FILE
    aliases = flags(known)
    spelled_as = {field: flag for flag, field in aliases.items()}

    def shown(field: str) -> str:  # as the command line spells it
        return option_name(spelled_as.get(field, field))

    found: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in table.items():
        field = str(key).replace("-", "_")
        field = aliases.get(field, field)
        if field in NEVER_IN_A_FILE:
            raise ConfigFileError(
                f"{key!r} in {where(path)} is not taken from a file: "
                + (
                    "a credential is read from the environment only "
                    f"(CASSETTE_PROXY_{field.upper()}), so it never lands in a file that may be "
                    "committed or shared"
                    if field in CREDENTIALS
                    else "a file cannot name another options file"
                ),
                usage=True,
            )
        if field not in fields:
            names = ", ".join(sorted(shown(name) for name in fields))
            raise ConfigFileError(
                f"unknown option {key!r} in {where(path)}; keys are the long option names: {names}",
                usage=True,
            )
        if field in found:
            raise ConfigFileError(
                f"{where(path)} sets {shown(field)} twice ({spelled[field]!r} and {key!r})",
                usage=True,
            )
        found[field], spelled[field] = value, str(key)
    return found


def load(path: Path, known: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``path`` sets, by field name."""
    return options(read_table(path), known, path)
