"""Which files ``cassette check`` and ``cassette redact`` work on: the paths given, with folders
walked for cassettes as a linter walks for sources; and whether a file that does not load is the
proxy's log, given by mistake."""

from __future__ import annotations

import gzip
import os
import re
import shlex
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import orjson

SUFFIXES: Final = (".yaml", ".yml", ".json")
_LINE_READ: Final = 1 << 20  # of a file that is not a cassette, the first line read, at most
_GZIP_MAGIC: Final = b"\x1f\x8b"


class NoCassettes(ValueError):
    """A folder given on the command line holds no cassette."""


# Logs under a folder: .jsonl and .jsonl.gz, and what logrotate makes of them (.jsonl.1,
# .jsonl.2.gz, and with dateext the date before the suffix).
LOG_NAME: Final = re.compile(r".+\.jsonl(\.\d+)?(\.gz)?")


class NoLogs(ValueError):
    """A folder given to ``audit`` holds no log."""


def log_paths(paths: Iterable[str]) -> list[str]:
    """Each log given, in order; a folder is replaced by the logs under it (recursively,
    hidden folders skipped), sorted; ``-`` (stdin) stays. A file named on the command line is
    taken whatever its name."""
    found: list[str] = []
    for given in paths:
        path = Path(given)
        if given == "-" or not path.is_dir():
            found.append(given)
            continue
        under = sorted(
            str(Path(root, name))
            for root, folders, files in _walk_folders(path)
            for name in files
            if not name.startswith(".") and LOG_NAME.fullmatch(name)
        )
        if not under:
            raise NoLogs(
                f"no log under {given!r}: looked for .jsonl and .jsonl.gz files (and rotated "
                "ones, .jsonl.1, .jsonl.2.gz), skipping hidden folders"
            )
        found.extend(under)
    return found


def _walk_folders(folder: Path) -> Iterable[tuple[str, list[str], list[str]]]:
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        yield root, folders, files


def cassette_paths(paths: Iterable[Path]) -> list[Path]:
    """Each path given, in order; a folder is replaced by the cassettes under it, sorted.

    Under a folder, files ending in ``.yaml``, ``.yml`` or ``.json`` count; hidden files and
    folders (``.git``, ``.venv``, a cassette's ``.journal``) are skipped. A file named on the
    command line is taken whatever its name, and one that does not exist is kept, for the
    check to report.
    """
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        under = sorted(_walk(path))
        if not under:
            raise NoCassettes(
                f"no cassette under {str(path)!r}: looked for {', '.join(SUFFIXES)} files, "
                "skipping hidden folders"
            )
        found.extend(under)
    return found


def _walk(folder: Path) -> Iterable[Path]:
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(SUFFIXES):
                yield Path(root, name)


def looks_like_audit_log(path: Path) -> bool:
    """Whether ``path`` (plain or gzip) starts as the proxy's JSON-lines log does: its first line
    is a JSON object with the ``time`` and ``event`` of a log event."""
    try:
        with path.open("rb") as file:
            gzipped = file.read(2) == _GZIP_MAGIC
        with gzip.open(path, "rb") if gzipped else path.open("rb") as file:
            line = file.readline(_LINE_READ)
            while line and not line.strip():
                line = file.readline(_LINE_READ)
        event = orjson.loads(line)
    except (OSError, EOFError, zlib.error, orjson.JSONDecodeError):  # zlib: a damaged gzip body
        return False
    return (
        isinstance(event, dict)
        and isinstance(event.get("event"), str)
        and isinstance(event.get("time"), str)
    )


def audit_log_instead(path: Path) -> str:
    """What to say of an audit log given where a cassette belongs."""
    return (
        f"{str(path)!r} is not a cassette: it looks like cassette-proxy's audit log (JSON lines "
        'with "event" fields, as serve --log-file writes them), and was left untouched. Read it '
        f"with: cassette-proxy audit {shlex.quote(str(path))}"
    )
