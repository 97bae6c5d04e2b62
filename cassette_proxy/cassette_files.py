"""Which files ``cassette check`` and ``cassette redact`` work on: the paths given, with folders
walked for cassettes as a linter walks for sources."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

SUFFIXES: Final = (".yaml", ".yml", ".json")


class NoCassettes(ValueError):
    """A folder given on the command line holds no cassette."""


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
