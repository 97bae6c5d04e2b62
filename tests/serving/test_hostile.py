"""Hostile and malformed requests: none may reach another upstream path or host, crash the
proxy, or get a 500 from the proxy itself. Raw sockets, so nothing normalises the bytes first."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import RunningProxy, StartProxy
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.slow


async def send_raw(proxy: RunningProxy, data: bytes) -> bytes:
    host, port = proxy.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1 << 20), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def cancel_request(raw_id: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST /v1/responses/" + raw_id + b"/cancel HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer t\r\nContent-Length: 0\r\nConnection: close\r\n" + extra + b"\r\n"
    )


@pytest.mark.parametrize(
    "raw_id",
    [
        b"..",
        b"resp_a%2Fb",
        b"%2e%2e",
        b"%2e%2e%2f%2e%2e%2fadmin",
        b"resp_%00nul",
        b"resp_%0d%0aX-Injected:%201",
        b"r" * 10_000,
        b"resp_\xff\xfe",
    ],
    ids=["dotdot", "pct-slash", "pct-dotdot", "traversal", "nul", "crlf", "10kb", "non-utf8"],
)
async def test_hostile_ids_reach_only_the_cancel_route_as_sent(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, raw_id: bytes
) -> None:
    proxy = await start_proxy()
    answer = await send_raw(proxy, cancel_request(raw_id))
    status = status_of(answer)
    assert status != 500, answer[:300]
    for seen in fake_upstream.received:
        # What arrives upstream is the same raw path, under the same route: never re-split,
        # decoded or normalised into another path.
        assert seen.raw_path.encode("utf-8", "surrogateescape") == (
            b"/v1/responses/" + raw_id + b"/cancel"
        )
        assert "x-injected" not in seen.headers
    if raw_id == b"resp_\xff\xfe":
        # aiohttp's HTTP parser refuses bytes that cannot be in a URL before the proxy sees
        # the request: a 400, and nothing forwarded.
        assert status == 400
        assert fake_upstream.received == []
    elif raw_id in DOT_SEGMENT_IDS:
        assert status == 400, answer[:300]
        assert b"X-Proxy-Source: proxy" in answer
        assert b"'.' or '..' segment" in answer
        assert fake_upstream.received == []
    elif status:
        assert b"X-Proxy-Source:" in answer


DOT_SEGMENT_IDS = (b"..", b"%2e%2e", b"%2e%2e%2f%2e%2e%2fadmin")


@pytest.mark.parametrize(
    "target",
    [
        b"/../admin",
        b"/v1/../../admin",
        b"/v1/responses/%2e%2e/%2E%2E/%2e%2e/admin/cancel",
        b"/v1/responses/resp%2F..%2F..%2F..%2Fadmin/cancel",
        b"/v1/responses/resp%5C..%5C..%5Cadmin/cancel",
        b"/v1/./responses/resp_1/cancel",
        b"/v1/responses/..;/..;/admin/cancel",
        b"/v1/responses/%2e%2e%3bx/admin/cancel",
    ],
)
async def test_dot_segments_cannot_escape_the_upstreams_path_prefix(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, upstream_url: str, target: bytes
) -> None:
    proxy = await start_proxy(upstream=upstream_url + "/api")
    answer = await send_raw(proxy, b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(answer) == 400, answer[:300]
    assert b"X-Proxy-Source: proxy" in answer
    assert fake_upstream.received == []
    # The same proxy still forwards an ordinary request under the prefix, as sent.
    await send_raw(proxy, cancel_request(b"resp_a%2Fb"))
    assert [r.raw_path for r in fake_upstream.received] == ["/api/v1/responses/resp_a%2Fb/cancel"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        # Both Content-Length and Transfer-Encoding: the classic smuggling shape.
        b"POST /v1/responses/resp_1/cancel HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
        # A chunk size that is not hex.
        b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nhello\r\n0\r\n\r\n",
        # Duplicate Content-Length with different values.
        b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 5\r\n"
        b"\r\nhello",
        # An oversized header.
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        # Absolute-form target and CONNECT.
        b"GET http://169.254.169.254/latest HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n",
        b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n",
    ],
    ids=["cl-and-te", "bad-chunk", "duplicate-cl", "oversized-header", "absolute", "connect"],
)
async def test_malformed_framing_never_reaches_the_upstream(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, request_bytes: bytes
) -> None:
    proxy = await start_proxy()
    answer = await send_raw(proxy, request_bytes)
    assert status_of(answer) in {0, 400, 413, 431}, answer[:300]
    assert fake_upstream.received == []
    # The proxy is still serving.
    healthy = await send_raw(proxy, b"GET /_proxy/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(healthy) == 200


async def test_a_host_header_naming_another_server_changes_nothing(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, upstream_url: str
) -> None:
    proxy = await start_proxy()
    answer = await send_raw(
        proxy,
        b"GET /v1/models HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n",
    )
    assert status_of(answer) == 200
    [seen] = fake_upstream.received
    assert seen.headers["host"] == upstream_url.removeprefix("http://")


async def test_duplicate_headers_are_forwarded_not_merged_or_dropped(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy()
    answer = await send_raw(
        proxy,
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Twice: one\r\nX-Twice: two\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert status_of(answer) == 200
    [line] = proxy.exchanges()
    assert line["request"]["headers"]["x-twice"] == "one, two"
