"""``cassette check`` and ``cassette redact`` on files an attacker chose (issue 22, items 5 and
8): special files, huge files, and cassettes whose names and values hold terminal sequences.
Real processes, real FIFOs, ``/dev/zero``."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from vcr.request import Request as VcrRequest

from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.persist import save_cassette
from cassette_proxy.tools.files import MAX_CASSETTE_SIZE
from tests import vectors
from tests.tools.test_audit_hostile import HOSTILE

_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
URI = "https://ai.api.cloud.yandex.net/v1/responses/resp_1/cancel"


def _limited() -> None:
    """In the child: 1 GiB of address space, so reading /dev/zero whole fails fast here
    instead of taking the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """``cassette-proxy ARGS`` in a process of its own (a hang is a timeout, not a stuck test)."""
    done = subprocess.run(  # noqa: S603 - this interpreter, this package, the test's arguments
        [sys.executable, "-m", "cassette_proxy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limited,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["check", "redact"])
def test_dev_zero_is_one_line_not_a_memory_error(command: str) -> None:
    code, out, err = run("cassette", command, "/dev/zero")
    assert code == 1
    assert "Traceback" not in out + err
    assert "MemoryError" not in out + err
    said = [line for line in (out + err).splitlines() if "'/dev/zero' is not" in line]
    assert len(said) == 1, out + err
    assert "is not a regular file (a character device)" in said[0]


def _cassette(path: Path) -> None:
    save_cassette(
        path,
        [
            Interaction(
                VcrRequest("POST", URI, None, {}),
                200,
                "OK",
                (("Content-Type", "application/json"),),
                vectors.V1_BODY,
            )
        ],
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", ["check", "redact"])
def test_a_fifo_in_a_folder_is_named_and_never_opened(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "cassettes"
    folder.mkdir()
    _cassette(folder / "a.yaml")
    os.mkfifo(folder / "f.yaml")  # nothing ever writes to it: opening it would wait for ever
    code, out, err = run("cassette", command, str(folder), timeout=60)
    assert code == 1, out + err  # the FIFO is reported, and makes the run fail
    assert f"{folder / 'f.yaml'}" in out + err
    assert "not a regular file (a FIFO)" in out + err
    assert f"{folder / 'a.yaml'}: " in out  # the real cassette was still done


def test_a_file_over_the_size_bound_is_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:  # sparse: no disk used
        file.truncate(MAX_CASSETTE_SIZE + 1)
    code, out, err = run("cassette", "check", "--format", "json", str(big))
    assert code == 1
    [report] = orjson.loads(out)["cassettes"]
    [finding] = report["findings"]
    assert finding["kind"] == "load"
    assert f"over the {MAX_CASSETTE_SIZE // (1 << 20)} MiB" in finding["message"]
    code, out, err = run("cassette", "redact", str(big))
    assert code == 1
    assert "over the" in err


def _hostile_cassette(path: Path) -> None:
    interactions = []
    for n, evil in enumerate(HOSTILE):
        body = orjson.loads(vectors.V1_BODY)
        body[f"field{evil}"] = 1
        body["status"] = f"paused{evil}"
        interactions.append(
            Interaction(
                VcrRequest("POST", URI.replace("resp_1", f"resp_{n}"), None, {}),
                200,
                "OK",
                (
                    ("Content-Type", "application/json"),
                    (f"X-Evil-{n}", f"v{evil}".replace("\r", "").replace("\n", "")),
                ),
                orjson.dumps(body),
            )
        )
    stream = (
        f"event: response.{HOSTILE[0]}\ndata: "
        + '{"type": "response.x\\u001b]0;t\\u0007", "sequence_number": 0}\n\n'
    )
    interactions.append(
        Interaction(
            VcrRequest(
                "POST", "https://ai.api.cloud.yandex.net/v1/responses", b'{"model":"m"}', {}
            ),
            200,
            "OK",
            (("Content-Type", "text/event-stream"),),
            stream.encode(),
        )
    )
    save_cassette(path, interactions)


@pytest.mark.parametrize("args", [[], ["--verbose"], ["--format", "json"]])
def test_no_control_character_reaches_the_terminal(tmp_path: Path, args: list[str]) -> None:
    cassette = tmp_path / f"evil{HOSTILE[0]}.yaml"  # the file's name is shown too
    _hostile_cassette(cassette)
    code, out, err = run("cassette", "check", *args, str(cassette))
    assert code in {0, 1}, out + err
    assert "unknown" in out  # the findings are there, shown safely
    for stream in (out, err):
        found = _CONTROL.findall(stream)
        assert not found, f"{args}: {found[:5]!r}"
    code, out, err = run("cassette", "redact", str(cassette))
    assert not _CONTROL.findall(out + err)
