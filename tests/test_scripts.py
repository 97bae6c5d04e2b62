"""The README's two set-up commands, ``./scripts/serve`` and ``./scripts/test``, run at once on a
fresh clone: one installs into ``.venv``, the other waits for it, and both go on to run.

The scripts are the real ones, in a copy of the repository's layout; Python is a stand-in that
runs real Python for everything but ``-m venv`` and ``-m pip``, whose pip takes half a second per
install and fails, as two real pips in one ``.venv`` did, when another is installing there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash") or "/bin/bash"

PYTHON = f"""#!{sys.executable}
# The system Python the scripts are given: makes a stand-in .venv, runs real Python otherwise.
import os, pathlib, sys

args = sys.argv[1:]
if args[:2] == ["-m", "venv"]:
    python = pathlib.Path(args[2]) / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(pathlib.Path(__file__).with_name("venv-python").read_text())
    python.chmod(0o755)
    sys.exit(0)
os.execv(sys.executable, [sys.executable, *args])
"""

VENV_PYTHON = f"""#!{sys.executable}
# .venv/bin/python: a pip that installs stand-in tools, and breaks beside another pip.
import os, pathlib, sys, time

args = sys.argv[1:]
if args[:2] != ["-m", "pip"]:
    os.execv(sys.executable, [sys.executable, *args])
venv = pathlib.Path(sys.argv[0]).parent.parent
log = venv.parent / "pip.log"
try:
    busy = os.open(venv / "pip-busy", os.O_CREAT | os.O_EXCL)
except FileExistsError:
    sys.exit("ImportError: cannot import name 'distro' from 'pip._vendor' (another pip)")
with log.open("a") as out:
    out.write("start " + " ".join(args[2:]) + "\\n")
time.sleep(0.5)
for tool in ("cassette-proxy", "ruff", "mypy", "pytest"):
    (venv / "bin" / tool).write_text('#!/bin/sh\\necho "$(basename "$0") $*"\\n')
    (venv / "bin" / tool).chmod(0o755)
with log.open("a") as out:
    out.write("end\\n")
os.close(busy)
os.unlink(venv / "pip-busy")
"""


def fresh_clone(root: Path) -> Path:
    """The scripts and pyproject.toml, laid out as in the repository, without a .venv."""
    shutil.copytree(REPOSITORY / "scripts", root / "scripts")
    shutil.copy(REPOSITORY / "pyproject.toml", root / "pyproject.toml")
    tools = root / "tools"
    tools.mkdir()
    (tools / "python").write_text(PYTHON)
    (tools / "python").chmod(0o755)
    (tools / "venv-python").write_text(VENV_PYTHON)
    return root


@pytest.mark.parametrize("first", ["serve", "test"])
def test_serve_and_test_at_once_on_a_fresh_clone_install_once_each_in_turn(
    tmp_path: Path, first: str
) -> None:
    root = fresh_clone(tmp_path / "clone")
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(root / "tools" / "python")}
    commands = {"serve": ["scripts/serve", "--port", "0"], "test": ["scripts/test", "-q"]}
    second = "test" if first == "serve" else "serve"
    running = {
        name: subprocess.Popen(  # noqa: S603 - the repository's own scripts
            [BASH, *commands[name]],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in (first, second)  # at once: the second starts while the first installs
    }
    results = {name: process.communicate(timeout=60) for name, process in running.items()}
    for name, process in running.items():
        assert process.returncode == 0, (name, results[name])
    assert results["serve"][0] == "cassette-proxy serve --port 0\n"
    assert [line.rstrip() for line in results["test"][0].splitlines()] == [
        "== ruff",
        "ruff check .",
        "ruff format --check .",
        "== mypy",
        "mypy",
        "== pytest",
        "pytest -q",
    ]
    log = (root / "pip.log").read_text().splitlines()
    # Never two pips at once: every start is followed by its end.
    assert log[::2] == [line for line in log if line.startswith("start")], log
    assert log[1::2] == ["end"] * (len(log) // 2), log
    installs = [line.removeprefix("start install --quiet ") for line in log[::2]]
    dev = f"--editable {root}[dev]"
    # The dev flavour serves both: once it is in, serve installs nothing more.
    assert installs[-1] == dev, installs
    assert installs.count(dev) == 1, installs
