"""``cassette-proxy cassette check|redact``: cassettes and folders of them, checked or redacted."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cassette_proxy.tools.files import NoCassettes, cassette_paths
from cassette_proxy.tools.progress import Progress
from cassette_proxy.tools.report import FailOn, JsonReport, TextReport, check_all, redact_all


@click.group()
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
