"""--config FILE: TOML keyed by the long option names, below flags and the environment; the same
keys in pyproject.toml's [tool.cassette-proxy]; every mistake one line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.settings import LogBodies, RecordMode, Settings


def _file(tmp_path: Path, text: str, name: str = "proxy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_file_sets_options_and_flags_and_the_environment_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(
        tmp_path,
        'record-mode = "none"\nport = 9000\nmatch_on = ["method", "path"]\n'
        'log-bodies = "head"\nallow-playback-repeats = true\ninstance = "sidecar-c"\n',
    )
    settings = Settings(config=path)
    assert settings.record_mode is RecordMode.NONE
    assert (settings.port, settings.match_on) == (9000, ("method", "path"))
    assert settings.log_bodies is LogBodies.HEAD
    assert settings.allow_playback_repeats is True
    assert settings.instance == "sidecar-c"
    monkeypatch.setenv("CASSETTE_PROXY_PORT", "9001")
    assert Settings(config=path).port == 9001  # the environment over the file
    assert Settings(config=path, port=9002).port == 9002  # a flag over both
    monkeypatch.setenv("CASSETTE_PROXY_CONFIG", str(path))  # the file named by a variable
    assert Settings().record_mode is RecordMode.NONE


def test_a_repeatable_option_is_spelled_as_its_flag_or_its_field(tmp_path: Path) -> None:
    flag = _file(tmp_path, 'placeholder = ["TEAM=acme-team-7"]\nmatch-headers = ["Accept"]\n')
    assert Settings(config=flag).placeholders == {"TEAM": "acme-team-7"}
    assert Settings(config=flag).match_headers == ("accept",)  # compared without case
    field = _file(tmp_path, 'placeholders = ["TEAM=acme-team-7"]\n', "field.toml")
    assert Settings(config=field).placeholders == {"TEAM": "acme-team-7"}
    exit_code, output = _serve("--config", str(_file(tmp_path, "placehold = []\n", "x.toml")))
    assert exit_code == 2
    assert "placeholder," in output  # the known keys are listed as the flags spell them
    assert " placeholders," not in output


def test_pyproject_is_read_from_its_tool_table(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        '[project]\nname = "app"\n\n[tool.cassette-proxy]\nvalidation = "strict"\n',
        "pyproject.toml",
    )
    assert Settings(config=path).validation.value == "strict"


def _serve(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["serve", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("text", "code", "said"),
    [
        ('recod-mode = "none"', 2, "unknown option 'recod-mode' in {path}; keys are the long"),
        ('record-mode = "sometimes"', 2, "invalid value 'sometimes' for record-mode in {path}"),
        ("port = 8080\nport_ = 1", 2, "unknown option 'port_'"),
        ('record-mode = "none"\nrecord_mode = "all"', 2, "sets record-mode twice"),
        ('upstream-api-key = "AQVNsecret"', 2, "read from the environment only"),
        ('admin-token = "AQVNsecret"', 2, "(CASSETTE_PROXY_ADMIN_TOKEN)"),
        ("port = [", 2, "is not valid TOML"),
        ('placeholders = ["A=abcdef"]\nplaceholder = ["B=ghijkl"]', 2, "sets placeholder twice"),
    ],
)
def test_every_mistake_in_the_file_is_one_line(
    tmp_path: Path, text: str, code: int, said: str
) -> None:
    path = _file(tmp_path, text)
    exit_code, output = _serve("--config", str(path), "--port", "0")
    [line] = output.strip().splitlines()
    assert exit_code == code, line
    assert said.format(path=path) in line
    assert "AQVNsecret" not in line


def test_a_file_that_cannot_be_read_is_exit_1(tmp_path: Path) -> None:
    exit_code, output = _serve("--config", str(tmp_path / "missing.toml"))
    assert exit_code == 1
    assert "cannot read the options file" in output


@pytest.mark.slow
async def test_serve_runs_with_the_files_options(upstream_url: str, tmp_path: Path) -> None:
    log = tmp_path / "from-file.jsonl"
    path = _file(
        tmp_path, f'upstream = "{upstream_url}"\nport = 0\nlog-file = "{log}"\ninstance = "f"\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--config", str(path),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        async with asyncio.timeout(30):
            line = (await process.stderr.readline()).decode()
        assert f"forwarding to {upstream_url}" in line
        process.terminate()
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert '"instance":"f"' in log.read_text()
