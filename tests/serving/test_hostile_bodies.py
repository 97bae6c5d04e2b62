"""Hostile bodies and a misbehaving upstream (issue 12, round two): no proxy 500, nothing changed
on the way, nothing recorded that the client did not get."""

from __future__ import annotations

import gzip
from pathlib import Path

import aiohttp
import pytest
import yaml

from cassette_proxy.store.journal import journal_path
from tests import vectors
from tests.conftest import StartProxy
from tests.raw_upstream import RawUpstream

pytestmark = pytest.mark.slow


OK_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(vectors.V1_BODY)}\r\n\r\n".encode()
    + vectors.V1_BODY
)


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.read(), response.headers.get("X-Proxy-Source", "")


@pytest.mark.parametrize(
    "body",
    [gzip.compress(b'{"input": "hello"}'), b"this is not gzip at all"],
    ids=["valid-gzip", "not-gzip"],
)
async def test_request_bodies_are_forwarded_byte_for_byte_with_their_coding(
    start_proxy: StartProxy, raw_upstream: RawUpstream, body: bytes
) -> None:
    raw_upstream.reply = OK_REPLY
    proxy = await start_proxy(upstream=raw_upstream.url)
    status, _, source = await post(
        proxy.url + "/v1/responses",
        body,
        {"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert (status, source) == (200, "upstream")
    [seen] = raw_upstream.received
    head, _, forwarded = seen.partition(b"\r\n\r\n")
    assert forwarded == body
    assert b"\r\nContent-Encoding: gzip\r\n" in head


async def test_a_body_nested_a_hundred_thousand_deep_is_a_miss_not_a_500(
    start_proxy: StartProxy, raw_upstream: RawUpstream, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.yaml"
    raw_upstream.reply = OK_REPLY
    recording = await start_proxy(upstream=raw_upstream.url, cassette=cassette, record_mode="once")
    json = {"Content-Type": "application/json"}
    await post(recording.url + "/v1/responses", b'{"input": [[1]]}', json)
    await recording.stop()
    proxy = await start_proxy(upstream=raw_upstream.url, cassette=cassette, record_mode="none")
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body, source = await post(proxy.url + "/v1/responses", deep, json)
    assert (status, source) == (501, "proxy")
    assert b"cassette_miss" in body
    assert not [line for line in proxy.log_lines() if line["event"] == "internal_error"]


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 099 Weird\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nX-Bad: a\x7fb\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["status-099", "header-x01", "header-x7f"],
)
async def test_an_invalid_upstream_response_is_a_502_and_never_recorded(
    start_proxy: StartProxy, raw_upstream: RawUpstream, tmp_path: Path, reply: bytes
) -> None:
    raw_upstream.reply = reply
    cassette = tmp_path / "c.yaml"
    proxy = await start_proxy(upstream=raw_upstream.url, cassette=cassette, record_mode="all")
    status, body, source = await post(proxy.url + "/v1/responses", b"{}", {})
    assert (status, source) == (502, "proxy")
    assert b"upstream_broken" in body
    [line] = proxy.exchanges()
    assert line["error"] == "upstream_broken"
    await proxy.stop()
    assert not cassette.exists() or yaml.safe_load(cassette.read_text())["interactions"] == []
    assert not journal_path(cassette).exists()


async def test_head_keeps_the_upstreams_content_length(
    start_proxy: StartProxy, raw_upstream: RawUpstream
) -> None:
    raw_upstream.reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1234\r\n\r\n"
    )
    proxy = await start_proxy(upstream=raw_upstream.url)
    async with aiohttp.ClientSession() as session, session.head(proxy.url + "/v1/x") as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == "1234"
    assert proxy.exchanges()[0]["status"] == 200
