"""Forwarding: what reaches the upstream, what reaches the client, and what is refused."""

from __future__ import annotations

import asyncio
import gzip

import aiohttp
import openai
import pytest
from yarl import URL

from tests import vectors
from tests.conftest import DUMMY_KEY, StartProxy
from tests.fake_upstream import FakeUpstream


async def test_openai_client_cancel_passes_through(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy()
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0)
    async with client:
        raw = await client.responses.with_raw_response.cancel(vectors.V2_ID)
    response = raw.parse()
    assert response.id == vectors.V2_ID
    assert response.status == "cancelled"
    assert raw.headers["x-proxy-source"] == "upstream"
    assert raw.headers["x-proxy-validation"] == "pending"
    assert raw.headers["x-request-id"] == "req_00000000000000000000000000000001"
    [seen] = fake_upstream.received
    assert seen.raw_path == f"/v1/responses/{vectors.V2_ID}/cancel"
    assert seen.headers["authorization"] == f"Bearer {DUMMY_KEY}"
    assert seen.body == b""


async def test_sync_openai_client_gets_the_404_as_not_found(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()

    def call() -> openai.NotFoundError:
        client = openai.OpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0)
        with client, pytest.raises(openai.NotFoundError) as caught:
            client.responses.cancel("resp_does_not_exist_123")
        return caught.value

    error = await asyncio.to_thread(call)
    assert error.response.headers["x-proxy-source"] == "upstream"
    assert error.response.headers["x-proxy-validation"] == "pending"
    assert "resp_does_not_exist_123" in error.message


async def test_percent_encoded_id_reaches_upstream_unchanged(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy()
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0)
    async with client:
        with pytest.raises(openai.NotFoundError):
            await client.responses.cancel("resp_a/b")  # the client encodes it as resp_a%2Fb
    [seen] = fake_upstream.received
    assert seen.raw_path == "/v1/responses/resp_a%2Fb/cancel"
    [line] = proxy.exchanges()
    assert line["route"] == "cancel"
    assert line["response_id"] == "resp_a/b"


async def test_other_routes_pass_method_path_query_and_body_unvalidated(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            proxy.url + "/v1/chat/completions?include=a%20b&x=1",
            data=b'{"model":"gpt://folder/yandexgpt/latest","input":"hi"}',
            headers={"Content-Type": "application/json", "Authorization": "Api-Key abc"},
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["X-Proxy-Validation"] == "skipped"
        assert response.headers["X-Proxy-Source"] == "upstream"
        assert (await response.json())["path"] == "/v1/chat/completions?include=a%20b&x=1"
    [seen] = fake_upstream.received
    assert seen.body == b'{"model":"gpt://folder/yandexgpt/latest","input":"hi"}'
    assert seen.headers["content-type"] == "application/json"
    assert proxy.exchanges()[0]["validation"]["response"]["verdict"] == "skipped"


async def test_hop_by_hop_headers_dropped_and_host_is_the_upstreams(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, upstream_url: str
) -> None:
    proxy = await start_proxy()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            proxy.url + f"/v1/responses/{vectors.V1_ID}/cancel",
            headers={
                "Authorization": "Bearer t",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "must not pass",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Host": "evil.example",
                "X-End-To-End": "kept",
            },
        ) as response,
    ):
        assert response.status == 200
    [seen] = fake_upstream.received
    assert "x-hop" not in seen.headers
    assert "keep-alive" not in seen.headers
    assert "te" not in seen.headers
    assert seen.headers["x-end-to-end"] == "kept"
    assert seen.headers["host"] == upstream_url.removeprefix("http://")


INJECTED_KEY = "AQVN" + "-real-looking-yandex-key-1234567890"  # fake; split for secret scanners


async def test_upstream_api_key_replaces_the_clients(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(upstream_api_key=INJECTED_KEY)
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="dummy", max_retries=0)
    async with client:
        await client.responses.cancel(vectors.V1_ID)
    [seen] = fake_upstream.received
    assert seen.headers["authorization"] == f"Api-Key {INJECTED_KEY}"
    log = proxy.log_path.read_text()
    assert INJECTED_KEY not in log
    assert "Bearer dummy" not in log


async def test_gzip_upstream_body_reaches_client_byte_for_byte(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(
            proxy.url + "/v1/responses/resp_gzip_1/cancel",
            headers={"Authorization": "Bearer t", "Accept-Encoding": "gzip"},
        ) as response,
    ):
        raw = await response.read()
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["X-Proxy-Validation"] == "pending"
    assert gzip.decompress(raw) == vectors.V1_BODY
    assert proxy.exchanges()[0]["response"]["body"]["id"] == vectors.V1_ID


async def test_warn_mode_passes_an_invalid_response_unchanged(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(validation="warn")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            proxy.url + "/v1/responses/resp_broken_1/cancel", headers={"Authorization": "Bearer t"}
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["X-Proxy-Validation"] == "pending"
        assert response.headers["X-Proxy-Source"] == "upstream"
        assert (await response.json())["id"] == 12345


async def _raw_http(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), timeout=5)
    writer.close()
    await writer.wait_closed()
    return data


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET http://example.com/v1/models HTTP/1.1",
        b"CONNECT example.com:443 HTTP/1.1",
    ],
)
async def test_open_proxy_requests_are_refused(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, request_line: bytes
) -> None:
    proxy = await start_proxy()
    answer = await _raw_http(
        proxy.url, request_line + b"\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 4"), head
    assert b"X-Proxy-Source: proxy" in head
    assert b'"error"' in body
    assert fake_upstream.received == []


async def test_body_over_the_limit_is_413_and_not_forwarded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(max_body_size=1000)
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy.url + "/v1/responses", data=b"x" * 5000) as response,
    ):
        assert response.status == 413
        assert response.headers["X-Proxy-Source"] == "proxy"
        assert response.headers["x-should-retry"] == "false"
        body = await response.json()
    assert body["error"]["code"] == "request_too_large"
    assert "1000 bytes" in body["error"]["message"]
    assert fake_upstream.received == []


async def test_proxy_paths_are_never_forwarded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy()
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.url + "/_proxy/health") as response:
            health = await response.json()
        async with session.post(proxy.url + "/_proxy/anything/else") as response:
            assert response.status == 404
            assert response.headers["X-Proxy-Source"] == "proxy"
            error = (await response.json())["error"]
        # Escaped, it is the same path to the router: never forwarded either.
        for escaped in ("/%5Fproxy/health", "/%5fproxy/health", "/_%70roxy/health"):
            url = URL(proxy.url + escaped, encoded=True)
            async with session.get(url) as response:
                assert response.status == 200, escaped
                assert (await response.json())["status"] == "ok"
    assert health["status"] == "ok"
    assert health["mode"] == "pass-through"
    assert health["interactions"] == 0
    assert error["code"] == "proxy_route_not_found"
    assert fake_upstream.received == []


async def test_expect_100_continue_is_answered_then_the_body_forwarded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    """curl sends ``Expect: 100-continue`` with bodies over 1 KiB and waits for the interim
    answer: proxied paths skip aiohttp's router, except for these, which its router answers."""
    proxy = await start_proxy()
    host, port = proxy.url.removeprefix("http://").split(":")
    body = b"{}"
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = (
            f"POST /v1/responses/{vectors.V1_ID}/cancel HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {DUMMY_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode())
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        writer.write(body)
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"X-Proxy-Source: upstream" in answer
    assert fake_upstream.cancels == 1
