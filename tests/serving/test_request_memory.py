"""What a large request body costs the proxy (issue 22, item 12), read from ``/proc`` of a real
``serve`` recording: a 10 MiB ``[{}, {}, ...]`` body cost 370 MB (30 times its size), because it
was parsed for the contract and for matching. Now a body costs a small multiple of its size,
whatever its shape."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cassette_proxy.json_cost import ALWAYS
from cassette_proxy.store.journal import journal_path, read_journal
from tests.serving.test_streaming_processes import MiB, proxy_process

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc"),
]

SIZE = 10 * MiB - 100  # under --max-body-size


def body_of(shape: str) -> bytes:
    if shape == "empty objects":  # the issue's: one value in every 3 bytes
        return b"[" + b",".join([b"{}"] * ((SIZE - 2) // 3)) + b"]"
    if shape == "short messages":  # a long conversation: one value in every 14 bytes
        message = {"role": "user", "content": "please summarise the notes below, briefly."}
        count = SIZE // (len(orjson.dumps(message)) + 1) - 10
        return orjson.dumps({"model": "m", "input": [message] * count})
    return orjson.dumps({"model": "m", "input": "x" * (SIZE - 40)})  # one long string


@pytest.fixture
async def upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"object": "echo"})

    app = web.Application(client_max_size=64 * MiB)
    app.router.add_route("*", "/{tail:.*}", answer)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


@pytest.mark.parametrize("shape", ["empty objects", "short messages", "one long string"])
async def test_a_large_body_costs_a_small_multiple_of_its_size(
    upstream: str, tmp_path: Path, shape: str
) -> None:
    body = body_of(shape)
    cassette = tmp_path / "big.json"
    args = ("--cassette", str(cassette), "--record-mode", "all")
    async with (
        proxy_process(upstream, tmp_path / "log", *args) as proxy,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
    ):

        async def send() -> int:
            async with session.post(
                proxy.url + "/v1/responses",
                data=io.BytesIO(body),
                headers={"Content-Type": "application/json", "Authorization": "Bearer t"},
            ) as response:
                await response.read()
                return response.status

        before = proxy.rss("VmHWM")
        assert await send() == 200
        one = proxy.rss("VmHWM") - before
        # The body read, the copy the recording keeps, the journal's line: not its parse.
        assert one < 6 * len(body), (
            f"{shape}: {one / MiB:.0f} MiB for one {SIZE / MiB:.0f} MiB body"
        )
        assert await asyncio.gather(*(send() for _ in range(4))) == [200] * 4
        five = proxy.rss("VmHWM") - before
        # Five recordings kept for the save, four bodies in flight at once.
        assert five < 20 * len(body), f"{shape}: {five / MiB:.0f} MiB with four clients"
        lines: list[dict[str, Any]] = proxy.exchanges()
    assert len(lines) == 5
    if len(body) > ALWAYS and shape != "one long string":
        [warning] = lines[0]["validation"]["request"]["violations"]
        assert warning["message"].startswith("not checked: ")
        assert warning["severity"] == "warning"
    journalled = read_journal(journal_path(cassette))  # the process was killed: not saved
    assert journalled is not None
    assert len(journalled.interactions) == 5
