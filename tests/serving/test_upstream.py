"""Upstream faults: refused connections, silence, broken bodies and bad content codings."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from cassette_proxy.store.journal import journal_path
from tests import vectors
from tests.client import cancel, scrape
from tests.conftest import StartProxy
from tests.fake_upstream import FakeUpstream
from tests.raw_upstream import RawUpstream

TIMEOUT = aiohttp.ClientTimeout(total=15)


def closed_port() -> int:
    """A loopback port that was just bound and released: nothing listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_refused_connection_is_a_retryable_502(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(upstream=f"http://127.0.0.1:{closed_port()}")
    answer = await cancel(proxy, vectors.V1_ID)
    assert answer.status == 502
    assert answer.headers["X-Proxy-Source"] == "proxy"
    assert answer.headers["x-should-retry"] == "true"
    error = answer.error()
    assert error["code"] == "upstream_unreachable"
    assert error["type"] == "upstream_error"
    # It names what was sent where: the path too, not only the upstream's origin.
    assert f"POST http://127.0.0.1:{proxy.settings.upstream.port}/v1/responses/" in error["message"]
    assert f"{vectors.V1_ID}/cancel" in error["message"]
    [line] = proxy.exchanges()
    assert line["status"] == 502
    assert line["source"] == "proxy"
    assert line["error"] == "upstream_unreachable"


async def test_silent_upstream_is_a_quick_504(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.slow_seconds = 30
    proxy = await start_proxy(upstream_timeout=0.5)
    started = time.monotonic()
    answer = await cancel(proxy, "resp_slow_x")
    elapsed = time.monotonic() - started
    assert answer.status == 504
    assert elapsed < 5
    assert answer.headers["X-Proxy-Source"] == "proxy"
    assert answer.headers["x-should-retry"] == "true"
    error = answer.error()
    assert error["code"] == "upstream_timeout"
    assert "0.5" in error["message"]
    [line] = proxy.exchanges()
    assert line["error"] == "upstream_timeout"
    assert line["status"] == 504
    assert line["upstream_ms"] >= 400
    metrics = await scrape(proxy)
    assert metrics["cassette_proxy_upstream_errors_total", (("kind", "timeout"),)] == 1


async def test_a_hanging_request_does_not_block_others(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.slow_seconds = 30
    proxy = await start_proxy(upstream_timeout=2)
    hanging = asyncio.ensure_future(cancel(proxy, "resp_slow_x"))
    async with asyncio.timeout(5):
        while len(fake_upstream.received) < 1:  # the slow one has reached the upstream
            await asyncio.sleep(0.01)
    quick = await asyncio.wait_for(cancel(proxy, vectors.V1_ID), timeout=2)
    assert quick.status == 200
    assert quick.body == vectors.V1_BODY
    assert not hanging.done()
    slow = await asyncio.wait_for(hanging, timeout=10)
    assert slow.status == 504
    assert [line["status"] for line in proxy.exchanges()] == [200, 504]


async def test_connection_reset_mid_body_cuts_the_client_and_is_not_recorded(
    start_proxy: StartProxy, raw_upstream: RawUpstream, tmp_path: Path
) -> None:
    """The status had gone with the headers: the client's body is cut short, so it cannot take
    it for a whole one; the log says what happened; nothing is recorded."""
    partial = vectors.V1_BODY[:100]
    raw_upstream.reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(vectors.V1_BODY)}\r\n\r\n".encode()
        + partial
    )
    cassette = tmp_path / "broken.yaml"
    proxy = await start_proxy(upstream=raw_upstream.url, cassette=cassette, record_mode="all")
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy.url + f"/v1/responses/{vectors.V1_ID}/cancel") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Length"] == str(len(vectors.V1_BODY))
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert raw_upstream.requests == 1
    [line] = proxy.exchanges()
    assert line["error"] == "upstream_broken"
    assert line["source"] == "upstream"
    assert line["status"] == 200
    assert line["response"]["size"] == len(partial)
    assert "did not reach its end" in line["not_recorded"]
    metrics = await scrape(proxy)
    assert metrics["cassette_proxy_upstream_errors_total", (("kind", "broken"),)] == 1
    await proxy.stop()
    if cassette.exists():
        assert yaml.safe_load(cassette.read_text())["interactions"] == []
    assert not journal_path(cassette).exists()
    closed = next(e for e in proxy.log_lines() if e["event"] == "cassette_closed")
    assert closed["detail"]["recorded"] == 0


BAD_GZIP = gzip.compress(vectors.V1_BODY)[:40]  # a gzip header and a torn stream


@pytest.fixture
async def bad_gzip_upstream(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> str:
    async def cancel(request: web.Request) -> web.Response:
        return web.Response(
            body=BAD_GZIP,
            headers={"Content-Encoding": "gzip", "x-request-id": "req_bad_gzip"},
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_post("/v1/responses/{id}/cancel", cancel)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def test_undecodable_gzip_passes_through_unchanged_and_fails_validation(
    start_proxy: StartProxy, bad_gzip_upstream: str
) -> None:
    proxy = await start_proxy(upstream=bad_gzip_upstream, validation="warn")
    answer = await cancel(proxy, vectors.V1_ID, raw=True)
    assert answer.status == 200
    assert answer.body == BAD_GZIP
    assert answer.headers["Content-Encoding"] == "gzip"
    assert answer.headers["x-request-id"] == "req_bad_gzip"
    assert answer.headers["X-Proxy-Source"] == "upstream"
    assert answer.headers["X-Proxy-Validation"] == "pending"
    [line] = proxy.exchanges()
    assert line["status"] == 200
    assert line["verdict"] == "failed"
    assert line["error"] is None
    [violation] = line["validation"]["response"]["violations"]
    assert violation["kind"] == "body"
    assert violation["severity"] == "error"
    assert "gzip" in violation["message"]
    assert line["response"]["body"] == {"binary": True, "size": len(BAD_GZIP)}
    assert line["response"]["size"] == len(BAD_GZIP)


@pytest.mark.parametrize(
    ("content_type", "body", "verdict"),
    [
        (b"application/json", b'{"id": "resp_1", "object": "resp', "failed"),  # invalid JSON
        (b"text/html", vectors.V1_BODY, "passed"),  # right body, wrong Content-Type: a warning
    ],
    ids=["invalid-json", "wrong-content-type"],
)
async def test_odd_bodies_pass_through_unchanged_in_warn_mode(
    start_proxy: StartProxy,
    raw_upstream: RawUpstream,
    content_type: bytes,
    body: bytes,
    verdict: str,
) -> None:
    raw_upstream.reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )  # fmt: skip
    proxy = await start_proxy(upstream=raw_upstream.url)
    answer = await cancel(proxy, vectors.V1_ID)
    assert answer.status == 200
    assert answer.body == body
    assert answer.headers["Content-Type"] == content_type.decode()
    assert answer.headers["X-Proxy-Source"] == "upstream"
    assert answer.headers["X-Proxy-Validation"] == "pending"  # its verdict is in the log
    [line] = proxy.exchanges()
    assert line["verdict"] == verdict
    assert line["validation"]["response"]["violations"][0]["kind"] == "body"


async def test_a_client_that_hangs_up_mid_request_sends_nothing_upstream(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy()
    host, port = proxy.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.2)
    assert fake_upstream.received == []
    assert (await cancel(proxy, vectors.V1_ID)).status == 200  # still serving


async def test_a_client_that_hangs_up_mid_response_leaves_a_whole_recording(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.slow_seconds = 0.5
    cassette = tmp_path / "hangup.yaml"
    proxy = await start_proxy(cassette=cassette, record_mode="all")
    host, port = proxy.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/responses/resp_slow_1/cancel HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer t\r\nContent-Length: 0\r\n\r\n"
    )
    await writer.drain()
    writer.close()  # gone before the upstream answers
    await writer.wait_closed()
    await asyncio.sleep(1.0)
    assert (await cancel(proxy, vectors.V2_ID)).status == 200
    await proxy.stop()
    stored = yaml.safe_load(cassette.read_text())["interactions"]
    # The upstream did answer the first request: it is recorded whole, or not at all.
    assert [i["response"]["status"]["code"] for i in stored] in ([200, 200], [200])
    for interaction in stored:
        assert interaction["response"]["body"]["string"].startswith('{"id":')
