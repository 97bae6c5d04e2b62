"""The server's connections as an attacker and a busy sidecar see them: header and keep-alive
timeouts, the cap on open connections, the open-file limit. Real processes, raw sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestServer

from tests import vectors
from tests.fake_upstream import FakeUpstream
from tests.serving.test_streaming_processes import Proxy, proxy_process

pytestmark = pytest.mark.slow


@pytest.fixture
async def upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    fake = FakeUpstream(slow_seconds=3.0)
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


def _address(proxy: Proxy) -> tuple[str, int]:
    host, port = proxy.url.removeprefix("http://").split(":")
    return host, int(port)


async def request(proxy: Proxy, response_id: str = vectors.V1_ID) -> tuple[int, bytes]:
    """One cancel on a new connection; the status and body."""
    reader, writer = await asyncio.open_connection(*_address(proxy))
    try:
        writer.write(
            f"POST /v1/responses/{response_id}/cancel HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def closed_by_peer(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the proxy closes the connection within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def dribble(proxy: Proxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A slowloris connection: a request line and the start of a header, never finished."""
    reader, writer = await asyncio.open_connection(*_address(proxy))
    writer.write(b"POST /v1/responses/resp_x/cancel HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    await writer.drain()
    return reader, writer


async def test_headers_that_dribble_in_are_cut_at_the_header_timeout(
    upstream: str, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    async with proxy_process(upstream, log, "--header-timeout", "1") as proxy:
        reader, writer = await dribble(proxy)
        started = time.monotonic()

        async def keep_dribbling() -> None:
            for _ in range(50):
                writer.write(b"a")
                await asyncio.sleep(0.1)

        feeding = asyncio.create_task(keep_dribbling())
        assert await request(proxy) == (200, vectors.V1_BODY)  # others are served meanwhile
        assert await closed_by_peer(reader, 5)
        assert 0.9 < time.monotonic() - started < 4
        feeding.cancel()
        writer.close()
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert any(e["event"] == "connection_closed" for e in events)


async def test_an_idle_keep_alive_connection_is_closed(upstream: str, tmp_path: Path) -> None:
    async with proxy_process(upstream, tmp_path / "log", "--keepalive-timeout", "1") as proxy:
        reader, writer = await asyncio.open_connection(*_address(proxy))
        writer.write(
            f"POST /v1/responses/{vectors.V1_ID}/cancel HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Connection: close" not in head  # kept alive
        assert await closed_by_peer(reader, 4)
        writer.close()


async def test_slow_and_idle_connections_cannot_starve_real_clients(
    upstream: str, tmp_path: Path
) -> None:
    async with proxy_process(upstream, tmp_path / "log", "--max-connections", "20") as proxy:
        slow = [await dribble(proxy) for _ in range(60)]
        for _ in range(5):  # each real client takes the place of the oldest slow connection
            assert await request(proxy) == (200, vectors.V1_BODY)
        alive = 0
        for reader, writer in slow:
            if not await closed_by_peer(reader, 0.05):
                alive += 1
            writer.close()
        assert alive <= 20


async def test_a_connection_beyond_the_cap_gets_a_503_when_all_are_busy(
    upstream: str, tmp_path: Path
) -> None:
    async with proxy_process(upstream, tmp_path / "log", "--max-connections", "3") as proxy:
        busy = [asyncio.create_task(request(proxy, f"resp_slow_{n}")) for n in range(3)]
        await asyncio.sleep(1.0)  # all three are in a request, waiting on the upstream
        status, body = await request(proxy)
        assert status == 503
        error = orjson.loads(body)["error"]
        assert error["code"] == "proxy_overloaded"
        assert "--max-connections" in error["message"]
        assert [status for status, _ in await asyncio.gather(*busy)] == [200, 200, 200]


async def test_the_soft_open_file_limit_is_raised_to_the_hard_one(
    upstream: str, tmp_path: Path
) -> None:
    async with proxy_process(upstream, tmp_path / "log") as proxy:
        limits = _limits(proxy.process.pid)
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    soft, hard = line.split()[3:5]
    assert soft == hard


def _limits(pid: int) -> str:
    return Path(f"/proc/{pid}/limits").read_text()
