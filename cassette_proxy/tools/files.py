"""Which files ``cassette check`` and ``cassette redact`` work on: the paths given, with folders
walked for cassettes as a linter walks for sources; which of them can be read at all (regular
files, of a bounded size: a FIFO would wait for ever, ``/dev/zero`` would fill the memory); and
whether a file that does not load is the proxy's log, given by mistake."""

from __future__ import annotations

import gzip
import os
import re
import shlex
import stat
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import orjson

SUFFIXES: Final = (".yaml", ".yml", ".json")
# The largest cassette read: loading takes about three times its size in memory (the proxy's
# own cassettes are rarely over a few tens of MiB).
MAX_CASSETTE_SIZE: Final = 256 * 1024 * 1024
_KINDS: Final = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_LINE_READ: Final = 1 << 20  # of a file that is not a cassette, the first line read, at most
_GZIP_MAGIC: Final = b"\x1f\x8b"


class NoCassettes(ValueError):
    """A folder given on the command line holds no cassette."""


# Logs under a folder: .jsonl and .jsonl.gz, and what logrotate makes of them: .jsonl.1,
# .jsonl.2.gz, and with dateext the date before the suffix (proxy-20261207.jsonl.gz, with
# `extension .jsonl`) or after it (.jsonl-20261207, .jsonl-20261207-1765065600.gz).
LOG_NAME: Final = re.compile(r".+\.jsonl([.-]\d[\d-]*)?(\.gz)?")


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
                "ones, .jsonl.1, .jsonl.2.gz, .jsonl-20261207), skipping hidden folders"
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


def unreadable(path: Path) -> str | None:
    """Why ``path`` is not read as a cassette (not a regular file, or over
    :data:`MAX_CASSETTE_SIZE`), in one line; None if it may be (or does not exist, which the
    reader says in its own words). Asked before the file is opened: opening a FIFO waits for a
    writer, and reading a device may not end."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{str(path)!r} cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _KINDS if test(status.st_mode)), "a special file")
        return (
            f"{str(path)!r} is not a regular file ({kind}): cassettes are regular files, so it "
            "was not opened"
        )
    if status.st_size > MAX_CASSETTE_SIZE:
        return (
            f"{str(path)!r} is {status.st_size:,} bytes, over the "
            f"{MAX_CASSETTE_SIZE // (1 << 20)} MiB a cassette may be here, so it was not read "
            "(loading takes about three times its size in memory); split it, or load it with "
            "vcrpy"
        )
    return None


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
