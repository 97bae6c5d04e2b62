"""SIGHUP reopens the log file at its path (logrotate's postrotate, nginx's USR1), losing no
line: a real process, a real rename, real signals, clients sending all the while."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests import vectors
from tests.processes import running

pytestmark = pytest.mark.slow


def _events(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_sighup_after_a_move_writes_the_next_line_at_the_path_losing_none(
    upstream_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "proxy.jsonl"
    rotated = tmp_path / "proxy.jsonl.1"
    answered = 0
    async with running("--upstream", upstream_url, log_file=log) as proxy:
        process, url = proxy.process, proxy.url
        done = asyncio.Event()

        async def clients() -> None:  # bounded: 400 requests at most, stops when told
            nonlocal answered
            async with aiohttp.ClientSession() as session:
                for _ in range(400):
                    async with session.post(f"{url}/v1/responses/{vectors.V1_ID}/cancel") as r:
                        await r.read()
                        assert r.status == 200
                    answered += 1
                    if done.is_set() and answered >= 60:
                        return

        load = asyncio.create_task(clients())
        while answered < 20:
            await asyncio.sleep(0.01)
        log.rename(rotated)  # logrotate's move: lines keep going to the moved file ...
        at_move = answered
        while answered < at_move + 10:
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGHUP)  # ... until the proxy reopens the path
        async with asyncio.timeout(10):
            while not log.exists():
                await asyncio.sleep(0.01)
        at_hup = answered
        while answered < at_hup + 10:
            await asyncio.sleep(0.01)
        done.set()
        await asyncio.wait_for(load, 30)
        assert process.returncode is None  # SIGHUP used to kill it (exit 129)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    old, new = _events(rotated), _events(log)
    assert new[0]["event"] == "log_reopened"
    assert [e["event"] for e in new if e["event"] != "exchange"][-1] == "stopping"
    exchanges = [e for e in old + new if e["event"] == "exchange"]
    assert len(exchanges) == answered  # every answered request has its line, whole
    assert sum(e["event"] == "exchange" for e in old) >= 30  # before and after the move
    assert sum(e["event"] == "exchange" for e in new) >= 10  # after the reopen, at the path
