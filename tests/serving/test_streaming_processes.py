"""Streaming's promises that only a real process can prove: memory bounded whatever the upstream
sends or the clients do (read from ``/proc``), and kill -9 while a stream is being recorded."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from cassette_proxy.store.persist import load_cassette
from tests.processes import running
from tests.stream_upstream import StreamUpstream, bomb

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc"),
]

MiB = 1 << 20
BOUND = 64 * MiB  # the bound on RSS growth, whatever the response's size
TIMEOUT = aiohttp.ClientTimeout(total=120)


@dataclass
class Proxy:
    process: asyncio.subprocess.Process
    url: str
    log: Path

    def rss(self, field: str = "VmRSS") -> int:
        """Resident memory (or its peak, ``VmHWM``) in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def exchanges(self) -> list[dict[str, object]]:
        lines = [orjson.loads(line) for line in self.log.read_bytes().splitlines()]
        return [line for line in lines if line["event"] == "exchange"]


@asynccontextmanager
async def proxy_process(upstream: str, log: Path, *args: str) -> AsyncIterator[Proxy]:
    async with running("--upstream", upstream, *args, log_file=log) as proxy:
        yield Proxy(proxy.process, proxy.url, log)


@pytest.fixture
def upstream() -> StreamUpstream:
    return StreamUpstream()


@pytest.fixture
async def stream_url(
    upstream: StreamUpstream, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> str:
    server = await aiohttp_server(upstream.app(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def fetch(url: str, *, keep: int | None = None) -> int:
    """GET ``url``, reading (and dropping) the body; with ``keep``, hang up after that many
    bytes. The bytes read."""
    got = 0
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False) as session,
        session.get(url) as response,
    ):
        async for data in response.content.iter_any():
            got += len(data)
            if keep is not None and got >= keep:
                break
    return got


async def warm(proxy: Proxy) -> int:
    """RSS once the proxy has served a request (code paths imported, pools made)."""
    await fetch(f"{proxy.url}/v1/warm?size=1024")
    return proxy.rss()


async def test_a_response_far_larger_than_the_bound_passes_in_bounded_memory(
    stream_url: str, tmp_path: Path
) -> None:
    size = 256 * MiB  # four times the bound; scripts/bench sends 1 GiB
    async with proxy_process(stream_url, tmp_path / "log") as proxy:
        before = await warm(proxy)
        assert await fetch(f"{proxy.url}/v1/big?size={size}") == size
        growth = proxy.rss("VmHWM") - before
    assert growth < BOUND, f"RSS grew {growth / MiB:.1f} MiB for a {size // MiB} MiB response"


async def test_thirty_clients_that_hang_up_cost_no_more_than_one(
    upstream: StreamUpstream, stream_url: str, tmp_path: Path
) -> None:
    size = 200 * MiB
    async with proxy_process(stream_url, tmp_path / "log") as proxy:
        before = await warm(proxy)
        await fetch(f"{proxy.url}/v1/big?size={size}", keep=MiB)
        one = proxy.rss("VmHWM") - before
        await asyncio.gather(
            *(fetch(f"{proxy.url}/v1/big?size={size}", keep=MiB) for _ in range(30))
        )
        async with asyncio.timeout(20):  # each hang-up is logged once its upstream is dropped
            while len(proxy.exchanges()) < 32:
                await asyncio.sleep(0.05)
        thirty = proxy.rss("VmHWM") - before
        sent = list(upstream.sent)
        await asyncio.sleep(0.5)
        assert upstream.sent == sent, "an upstream request went on after its client left"
    assert not any(upstream.finished[1:])
    # Each dropped request pulled at most what the socket buffers and a few reads hold.
    assert max(sent[1:]) < 32 * MiB, sent
    assert thirty < BOUND, f"30 hang-ups grew RSS {thirty / MiB:.1f} MiB (one: {one / MiB:.1f})"
    assert {line["error"] for line in proxy.exchanges()[1:]} == {"client_disconnected"}


@pytest.mark.parametrize(
    "mode", ["pass-through", "record", "strict"], ids=["pass-through", "record", "strict"]
)
async def test_a_gzip_bomb_leaves_memory_flat_in_every_mode(
    stream_url: str, tmp_path: Path, mode: str
) -> None:
    args = {
        "pass-through": (),
        "record": ("--cassette", str(tmp_path / "c.yaml"), "--record-mode", "all"),
        "strict": ("--validation", "strict"),
    }[mode]
    async with proxy_process(stream_url, tmp_path / "log", *args) as proxy:
        before = await warm(proxy)
        assert await fetch(f"{proxy.url}/bomb") == len(bomb())  # the upstream's bytes, unchanged
        growth = proxy.rss("VmHWM") - before
        [_, line] = proxy.exchanges()
    assert growth < BOUND, f"a 1 MiB bomb grew RSS {growth / MiB:.1f} MiB in {mode}"
    response = line["response"]
    assert isinstance(response, dict)
    assert response["truncated"] is True


async def test_kill_9_while_a_stream_is_recorded_keeps_the_whole_ones_only(
    upstream: StreamUpstream, stream_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "streams.yaml"
    body = orjson.dumps({"model": "stream-ok", "input": "x", "stream": True})
    async with (
        # The stream names a folder its request does not: kept as it is, to compare bytes.
        proxy_process(
            stream_url, tmp_path / "log", "--cassette", str(cassette), "--no-folder-placeholders"
        ) as proxy,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        async with session.post(f"{proxy.url}/v1/responses", data=body) as response:
            whole = await response.read()
        half = orjson.dumps({"model": "stream-step", "input": "y", "stream": True})
        async with session.post(f"{proxy.url}/v1/responses", data=half) as response:
            await upstream.stepped.wait()
            await response.content.readany()  # the first event is through: mid-stream
            proxy.process.send_signal(signal.SIGKILL)
            await proxy.process.wait()
    # A new proxy folds the journal in: the whole stream replays, the cut one was never kept.
    async with (
        proxy_process(
            stream_url,
            tmp_path / "log2",
            "--cassette",
            str(cassette),
            "--record-mode",
            "none",
            "--no-folder-placeholders",
        ) as replaying,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        async with session.post(f"{replaying.url}/v1/responses", data=body) as response:
            assert response.headers["X-Proxy-Source"] == "cassette"
            assert await response.read() == whole
        async with session.post(f"{replaying.url}/v1/responses", data=half) as response:
            assert response.status == 501
    [interaction] = load_cassette(cassette) or []
    assert interaction.timing is not None
