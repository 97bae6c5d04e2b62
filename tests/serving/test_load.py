"""Load: 10,000 requests at 64 concurrent connections through a real proxy process, in
pass-through, recording and replay. Bounded in count and time; loopback only.

What must hold: no error the upstream did not cause; in recording, exactly one interaction per
request; the proxy's memory flat after warm-up (pass-through, and replaying interactions played
before: under MEMORY_BOUND_MB; recording, and first plays: that plus what each interaction keeps,
under 4 KB each).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from cassette_proxy.store.persist import load_cassette
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.slow

REQUESTS = 10_000
CONCURRENCY = 64
WARM_UP = 2_000
MEMORY_BOUND_MB = 15.0
PER_INTERACTION_KB = 4.0
TIME_LIMIT_S = 240


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def start(log: Path, *args: str) -> tuple[asyncio.subprocess.Process, str]:
    """A proxy process logging to ``log``; its URL, from the ``listening`` event."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", "0", "--log-file", str(log),
        *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(30):
        while (url := listening_url(log)) is None:
            await asyncio.sleep(0.05)
    return process, url


def listening_url(log: Path) -> str | None:
    for line in log.read_bytes().splitlines() if log.exists() else []:
        event = orjson.loads(line)
        if event["event"] == "listening":
            return str(event["detail"]["url"])
    return None


async def stop(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(120):
        await process.communicate()
    assert process.returncode == 0


async def hammer(url: str, pid: int) -> tuple[dict[int, int], float, float]:
    """REQUESTS cancels (distinct ids), CONCURRENCY at a time: statuses, RSS after warm-up and
    at the end (statuses the proxy made itself are also counted under their negative)."""
    statuses: dict[int, int] = {}
    warm_rss = 0.0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(REQUESTS):
        queue.put_nowait(n)
    done = 0
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done, warm_rss
            while not queue.empty():
                n = queue.get_nowait()
                async with session.post(
                    f"{url}/v1/responses/resp_load_{n}/cancel",
                    headers={"Authorization": "Bearer load-test-key"},
                ) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if response.headers.get("X-Proxy-Source") == "proxy":
                        statuses[-response.status] = statuses.get(-response.status, 0) + 1
                done += 1
                if done == WARM_UP:
                    warm_rss = rss_mb(pid)

        async with asyncio.timeout(TIME_LIMIT_S):
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return statuses, warm_rss, rss_mb(pid)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
async def test_ten_thousand_requests_in_every_mode(
    upstream_url: str, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    cassette = tmp_path / "load.json"

    # Pass-through: every answer is the upstream's (its 404 for these ids), none the proxy's.
    process, url = await start(tmp_path / "p.log", "--upstream", upstream_url)
    statuses, warm, end = await hammer(url, process.pid)
    await stop(process)
    assert statuses == {404: REQUESTS}, statuses
    assert end - warm < MEMORY_BOUND_MB, (warm, end)

    # Recording: exactly one interaction per request, and memory bounded by what is recorded.
    process, url = await start(
        tmp_path / "r.log", "--upstream", upstream_url,
        "--cassette", str(cassette), "--record-mode", "all",
    )  # fmt: skip
    statuses, warm, end = await hammer(url, process.pid)
    await stop(process)
    assert statuses == {404: REQUESTS}, statuses
    recorded_after_warm_up = REQUESTS - WARM_UP
    assert end - warm < MEMORY_BOUND_MB + recorded_after_warm_up * PER_INTERACTION_KB / 1024
    loaded = load_cassette(cassette)
    assert loaded is not None
    ids = sorted(str(i.request.uri).split("/")[-2] for i in loaded)
    assert ids == sorted(f"resp_load_{n}" for n in range(REQUESTS))
    upstream_calls = fake_upstream.cancels

    # Replay: every request answered from the cassette, nothing reaches the upstream. An
    # interaction's first play keeps what replaying it takes (its match, verdict, log record):
    # bounded by the cassette; playing them all again adds nothing.
    process, url = await start(
        tmp_path / "c.log", "--upstream", upstream_url,
        "--cassette", str(cassette), "--record-mode", "none", "--allow-playback-repeats",
    )  # fmt: skip
    statuses, warm, end = await hammer(url, process.pid)
    assert statuses == {404: REQUESTS}, statuses
    first_played_after_warm_up = REQUESTS - WARM_UP
    bound = MEMORY_BOUND_MB + first_played_after_warm_up * PER_INTERACTION_KB / 1024
    assert end - warm < bound, (warm, end)
    statuses, _, again = await hammer(url, process.pid)
    await stop(process)
    assert statuses == {404: REQUESTS}, statuses
    assert again - end < MEMORY_BOUND_MB, (end, again)
    assert fake_upstream.cancels == upstream_calls
