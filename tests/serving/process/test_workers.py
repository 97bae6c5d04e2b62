"""--workers N: N real processes on one port (SO_REUSEPORT), metrics summed on any scrape,
SIGTERM draining all of them, and what several workers cannot do refused in one line."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from cassette_proxy.settings import Settings
from tests import vectors
from tests.fake_upstream import FakeUpstream
from tests.make_demo_cassette import DEMO, DEMO_IDS
from tests.processes import refused_start

pytestmark = pytest.mark.slow


@asynccontextmanager
async def workers(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", "0", "--workers", "2", *args,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        async with asyncio.timeout(60):
            line = (await process.stderr.readline()).decode()
        assert "with 2 workers" in line, line
        yield process, line.split("listening on ", 1)[1].split(" ", 1)[0]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _fresh(url: str, method: str = "GET") -> tuple[int, bytes]:
    """One request on a connection of its own (the kernel picks a worker per connection)."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
        session.request(method, url) as response,
    ):
        return response.status, await response.read()


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


async def test_two_workers_answer_sum_their_metrics_and_stop_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "workers.jsonl"
    args = ("--cassette", str(DEMO), "--record-mode", "none", "--allow-playback-repeats",
            "--log-file", str(log))  # fmt: skip
    async with workers(*args) as (process, url):
        pids: set[int] = set()
        for _ in range(200):  # bounded: the kernel spreads connections by their ports
            status, body = await _fresh(url + "/_proxy/health")
            assert status == 200
            pids.add(orjson.loads(body)["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2
        assert {_parent_of(pid) for pid in pids} == {process.pid}
        for number in range(30):
            status, _ = await _fresh(f"{url}/v1/responses/{DEMO_IDS[number % 4]}/cancel", "POST")
            assert status == 200
        for _ in range(6):  # whichever worker answers the scrape, it reports the sum
            status, body = await _fresh(url + "/_proxy/metrics")
            assert status == 200
            families = text_string_to_metric_families(body.decode())
            requests = sum(
                sample.value
                for family in families
                for sample in family.samples
                if sample.name == "cassette_proxy_requests_total"
            )
            assert requests == 30
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    for pid in pids:  # every worker is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    exchanges = [event for event in events if event["event"] == "exchange"]
    assert len(exchanges) == 30
    assert sum(event["event"] == "stopping" for event in events) == 2
    assert sum(event["event"] == "cassette_closed" for event in events) == 2
    played = sum(
        event["detail"]["played"] for event in events if event["event"] == "cassette_closed"
    )
    assert played == 30  # both workers replayed


async def test_sigterm_drains_the_requests_in_flight_of_every_worker(
    fake_upstream: FakeUpstream, upstream_url: str, tmp_path: Path
) -> None:
    fake_upstream.slow_seconds = 1.0
    args = ("--upstream", upstream_url, "--log-file", str(tmp_path / "log.jsonl"))
    async with workers(*args) as (process, url):
        slow = [
            asyncio.create_task(_fresh(f"{url}/v1/responses/resp_slow_{n}/cancel", "POST"))
            for n in range(6)
        ]
        async with asyncio.timeout(10):
            while fake_upstream.cancels < 6:
                await asyncio.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        answers = await asyncio.wait_for(asyncio.gather(*slow), 30)
        assert [status for status, _ in answers] == [200] * 6  # answered, not cut
        async with asyncio.timeout(30):
            assert await process.wait() == 0


async def _refused(*args: str, code: int = 1) -> str:
    """serve --workers 2's one line; exit 1 for what the files or stdout refuse, 2 for options
    that cannot go together (a usage error, as every bad value is)."""
    returncode, _, stderr = await refused_start("--workers", "2", *args, seconds=60)
    assert returncode == code, stderr.decode()
    [line] = stderr.decode().strip().splitlines()
    return line


async def test_recording_with_several_workers_is_refused_in_one_line(tmp_path: Path) -> None:
    line = await _refused("--port", "0", "--cassette", str(tmp_path / "new.yaml"))
    assert line.startswith("Error: --workers 2 cannot record")
    assert "record with one worker and replay with many" in line
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a tiny folder, once
    for mode in ("all", "new_episodes"):  # whatever the cassette holds: a usage error
        line = await _refused("--port", "0", "--cassette", str(DEMO), "--record-mode", mode, code=2)
        assert line.startswith("Error: --workers 2 cannot record")
        assert f"record mode {mode!r} records" in line


async def test_steering_several_workers_is_refused_in_one_line(tmp_path: Path) -> None:
    line = await _refused("--port", "0", "--admin", "--cassette-dir", str(tmp_path), code=2)
    assert line.startswith("Error: --workers 2 cannot serve --admin and --cassette-dir")


def test_what_several_workers_cannot_serve_is_refused_wherever_it_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment and a config file meet the same check as the flags."""
    monkeypatch.setenv("CASSETTE_PROXY_WORKERS", "3")
    with pytest.raises(ValidationError, match="--workers 3 cannot serve --admin"):
        Settings(admin=True)
    config = tmp_path / "proxy.toml"
    config.write_text('workers = 2\nrecord-mode = "all"\n')
    monkeypatch.delenv("CASSETTE_PROXY_WORKERS")
    with pytest.raises(ValidationError, match="--workers 2 cannot record"):
        Settings(config=config, cassette=DEMO)
    assert Settings(config=config, cassette=DEMO, record_mode="none").workers == 2
    # 'once' would record the cassette again in every worker once it expired.
    with pytest.raises(ValidationError, match="re-record-action record records the cassette"):
        Settings(workers=2, cassette=DEMO, re_record_interval="30d")
    assert Settings(workers=2, cassette=DEMO, re_record_interval="30d", re_record_action="warn")
    assert Settings(workers=2, cassette=DEMO, re_record_interval="30d", record_mode="none")


async def test_a_port_in_use_is_one_line_before_any_worker_starts(tmp_path: Path) -> None:
    log = str(tmp_path / "log.jsonl")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = await _refused(
            "--port", str(port), "--upstream", "http://127.0.0.1:9", "--log-file", log
        )
    assert f"cannot listen on 127.0.0.1:{port}" in line


async def test_several_workers_logging_into_one_pipe_are_refused() -> None:
    line = await _refused("--port", "0", "--upstream", "http://127.0.0.1:9")  # stdout: a pipe
    assert "give --log-file" in line


async def test_a_worker_that_cannot_start_stops_all_with_its_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("interactions: [ {")
    line = await _refused(
        "--port", "0", "--cassette", str(bad), "--record-mode", "none",
        "--log-file", str(tmp_path / "log.jsonl"),
    )  # fmt: skip
    assert line.startswith(f"Error: cassette {str(bad)!r} is not a vcrpy cassette")


def test_vectors_are_what_the_demo_replays() -> None:
    assert vectors.V1_ID in DEMO_IDS


async def _pids(url: str) -> set[int]:
    pids: set[int] = set()
    for _ in range(200):  # bounded
        status, body = await _fresh(url + "/_proxy/health")
        if status == 200:
            pids.add(orjson.loads(body)["pid"])
        if len(pids) == 2:
            break
    return pids


async def test_a_dead_worker_is_replaced_and_sighup_reaches_every_worker(tmp_path: Path) -> None:
    log = tmp_path / "workers.jsonl"
    args = ("--cassette", str(DEMO), "--record-mode", "none", "--allow-playback-repeats",
            "--log-file", str(log))  # fmt: skip
    async with workers(*args) as (process, url):
        first = await _pids(url)
        assert len(first) == 2
        dead = min(first)
        os.kill(dead, signal.SIGKILL)
        assert process.stderr is not None
        async with asyncio.timeout(30):
            said = (await process.stderr.readline()).decode()
        assert f"(pid {dead}) exited with -9; starting another" in said
        async with asyncio.timeout(30):
            while True:
                now = await _pids(url)
                if len(now) == 2 and dead not in now:
                    break
                await asyncio.sleep(0.1)
        rotated = tmp_path / "workers.jsonl.1"
        log.rename(rotated)
        process.send_signal(signal.SIGHUP)
        async with asyncio.timeout(10):
            while not log.exists() or log.read_bytes().count(b'"log_reopened"') < 2:
                await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
