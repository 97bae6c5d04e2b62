"""A really read-only folder for tests: a read-only tmpfs mounted there when the tests run as
root (``chmod`` does not stop root, and CI runs as root), ``chmod a-w`` otherwise. A test that
cannot have one is skipped, saying why."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest


def _run(*command: str) -> str | None:
    """Run a mount command; its error, or None if it worked."""
    tool = shutil.which(command[0])
    if tool is None:
        return f"no {command[0]} command"
    done = subprocess.run(  # noqa: S603 - fixed commands on a test's own folder
        [tool, *command[1:]], capture_output=True, text=True, check=False
    )
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


def _writable(folder: Path) -> bool:
    probe = folder / ".write-probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def _chmod_tree(folder: Path, *, writable: bool) -> None:
    paths = [folder, *folder.rglob("*")]
    for path in paths if writable else reversed(paths):
        if path.is_dir():
            path.chmod(0o755 if writable else 0o555)
        else:
            path.chmod(0o644 if writable else 0o444)


@contextlib.contextmanager
def read_only_folder(folder: Path, files: Mapping[str, bytes]) -> Iterator[Path]:
    """``folder`` (created, empty) holding ``files`` (relative paths), then read-only."""
    folder.mkdir(parents=True)
    mounted = os.geteuid() == 0
    if mounted:
        failed = _run("mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(folder))
        if failed:
            pytest.skip(f"running as root, and cannot mount a tmpfs to make read-only: {failed}")
    try:
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        if mounted:
            failed = _run("mount", "-o", "remount,ro", str(folder))
            if failed:
                pytest.skip(f"cannot remount the test's tmpfs read-only: {failed}")
        else:
            _chmod_tree(folder, writable=False)
        if _writable(folder):
            pytest.skip(f"{folder} is still writable after making it read-only")
        yield folder
    finally:
        if mounted:
            if _run("umount", str(folder)):  # busy: detach it now, freed when no longer used
                _run("umount", "-l", str(folder))
        else:
            _chmod_tree(folder, writable=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
