"""Streaming: responses pass through as they arrive, observed through the tee, recorded with
their timing and replayed event by event, with the real ``openai`` client in every mode."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest
import vcr
import yaml
from aiohttp.test_utils import TestServer

from cassette_proxy.sse import decode_all
from tests.conftest import DUMMY_KEY, RunningProxy, StartProxy
from tests.stream_upstream import StreamUpstream, bomb, events

TIMEOUT = aiohttp.ClientTimeout(total=30)


@pytest.fixture
def upstream() -> StreamUpstream:
    return StreamUpstream()


@pytest.fixture
async def stream_url(
    upstream: StreamUpstream, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> str:
    server = await aiohttp_server(upstream.app(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


def create_body(model: str = "stream-ok", **extra: Any) -> bytes:
    return orjson.dumps({"model": model, "input": "Что такое AI Studio?", "stream": True, **extra})


async def read_events(
    proxy: RunningProxy, model: str = "stream-ok"
) -> tuple[aiohttp.ClientResponse, list[bytes]]:
    """One streamed create through the proxy, as raw HTTP chunks (the wire's framing)."""
    chunks: list[bytes] = []
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(
            proxy.url + "/v1/responses",
            data=create_body(model),
            headers={"Authorization": f"Bearer {DUMMY_KEY}", "Content-Type": "application/json"},
        ) as response,
    ):
        buffer = b""
        async for data, end_of_chunk in response.content.iter_chunks():
            buffer += data
            if end_of_chunk:
                chunks.append(buffer)
                buffer = b""
        if buffer:
            chunks.append(buffer)
    return response, chunks


def exchange_line(proxy: RunningProxy) -> dict[str, Any]:
    [line] = proxy.exchanges()
    return line


# -- passing through ------------------------------------------------------------------------


async def test_each_event_reaches_the_client_before_the_upstream_sends_the_next(
    start_proxy: StartProxy, upstream: StreamUpstream, stream_url: str
) -> None:
    """The upstream sends the next event only once the client has the last one: a proxy that
    held the response back would never finish."""
    proxy = await start_proxy(upstream=stream_url)
    expected = events("resp_stream_0", upstream.words)
    received: list[bytes] = []
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(proxy.url + "/v1/responses", data=create_body("stream-step")) as response,
    ):
        assert response.headers["Content-Type"] == "text/event-stream"
        assert "Content-Length" not in response.headers
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.headers["X-Proxy-Source"] == "upstream"
        assert response.headers["X-Proxy-Validation"] == "pending"
        buffer = b""
        while len(received) < len(expected):
            async with asyncio.timeout(5):  # a held-back event never comes
                buffer += await response.content.readany()
            while b"\n\n" in buffer:
                event, _, buffer = buffer.partition(b"\n\n")
                received.append(event + b"\n\n")
                upstream.step.set()  # only now may the upstream send the next one
    assert received == expected
    line = exchange_line(proxy)
    types = Counter(event.type for event in decode_all(b"".join(expected)))
    assert line["stream"] == {"events": len(expected), "types": types, "complete": True}
    assert line["ttfb_ms"] > 0
    assert line["duration_ms"] >= line["ttfb_ms"]
    assert line["response"]["size"] == sum(map(len, expected))
    assert line["verdict"] == "passed"
    assert line["error"] is None


async def test_a_content_length_is_kept_and_a_large_body_streams_whole(
    start_proxy: StartProxy, upstream: StreamUpstream, stream_url: str
) -> None:
    proxy = await start_proxy(upstream=stream_url, max_capture_size=1 << 20)
    size = 5 << 20
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"{proxy.url}/v1/files/x?size={size}") as response,
    ):
        assert response.headers["Transfer-Encoding"] == "chunked"  # chunked stays chunked
        got = 0
        async for data in response.content.iter_any():
            got += len(data)
    assert got == size
    line = exchange_line(proxy)
    assert line["response"]["size"] == size
    assert line["response"]["truncated"] is True
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(f"{proxy.url}/v1/responses", data=orjson.dumps({"model": "m"})) as response,
    ):
        body = await response.read()
        assert response.headers["Content-Length"] == str(len(body))  # kept as the upstream sent


async def test_a_stream_that_keeps_sending_outlives_the_header_timeout(
    start_proxy: StartProxy, upstream: StreamUpstream, stream_url: str
) -> None:
    upstream.gap = 0.2
    upstream.words = ("a", "b")
    proxy = await start_proxy(upstream=stream_url, upstream_timeout=0.3, upstream_idle_timeout=1.0)
    started = time.perf_counter()
    response, chunks = await read_events(proxy)
    assert time.perf_counter() - started > 1.0  # longer than both timeouts: it was not cut
    assert response.status == 200
    assert b"".join(chunks) == b"".join(events("resp_stream_0", upstream.words))
    assert exchange_line(proxy)["error"] is None


def _drain(events: Iterable[Any], seen: list[str]) -> None:
    for event in events:
        seen.append(event.type)


def _stream_error(proxy: RunningProxy, model: str) -> tuple[openai.APIError, list[str]]:
    """The error the client raises on a streamed create, and the event types it saw first."""
    client = openai.OpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0)
    seen: list[str] = []
    with client:
        stream = client.responses.create(model=model, input="x", stream=True)
        with pytest.raises(openai.APIError) as caught:
            _drain(stream, seen)
    return caught.value, seen


@pytest.mark.parametrize(
    ("model", "code", "options"),
    [
        ("stream-stall", "upstream_timeout", {"upstream_idle_timeout": 0.5}),
        ("stream-break", "upstream_broken", {}),
    ],
    ids=["stalled", "broken"],
)
async def test_a_stream_that_fails_after_its_headers_ends_with_an_error_event(
    start_proxy: StartProxy,
    stream_url: str,
    tmp_path: Path,
    model: str,
    code: str,
    options: dict[str, Any],
) -> None:
    cassette = tmp_path / "c.yaml"
    proxy = await start_proxy(upstream=stream_url, cassette=cassette, record_mode="all", **options)
    error, seen = await asyncio.to_thread(_stream_error, proxy, model)
    assert seen == ["response.created", "response.in_progress"]
    assert error.code == code
    assert "cassette-proxy" not in (error.type or "")
    line = exchange_line(proxy)
    assert line["status"] == 200
    assert line["source"] == "upstream"
    assert line["error"] == code
    assert line["stream"]["complete"] is False
    assert line["not_recorded"] == "the response did not reach its end"
    await proxy.stop()
    assert not cassette.exists() or yaml.safe_load(cassette.read_text())["interactions"] == []


async def _read_into(response: aiohttp.ClientResponse, received: bytearray) -> None:
    async for data in response.content.iter_any():
        received += data


async def test_a_stream_broken_inside_an_event_is_cut_not_patched(
    start_proxy: StartProxy, stream_url: str
) -> None:
    """An error event written after half an event would be read as part of it (broken JSON):
    then the stream is cut instead, so the client sees an incomplete body, never a bad event."""
    proxy = await start_proxy(upstream=stream_url)
    received = bytearray()
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(proxy.url + "/v1/responses", data=create_body("stream-break-mid")) as response,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            await _read_into(response, received)
    assert b"event: error" not in received
    events = decode_all(bytes(received))
    assert [e.type for e in events] == ["response.created", "response.in_progress"]
    assert exchange_line(proxy)["error"] == "upstream_broken"


async def test_strict_mode_replaces_an_event_that_breaks_the_contract(
    start_proxy: StartProxy, stream_url: str
) -> None:
    proxy = await start_proxy(upstream=stream_url, validation="strict")
    error, seen = await asyncio.to_thread(_stream_error, proxy, "stream-bad")
    assert seen == []  # the first event broke the contract: the client got the error instead
    assert error.code == "contract_violation"
    assert "/events/0/response/id" in error.message
    line = exchange_line(proxy)
    assert line["error"] == "contract_violation"
    assert line["verdict"] == "failed"
    assert line["response"]["size"] > 0  # what the upstream sent, as the auditor needs it


async def test_a_client_that_hangs_up_drops_the_upstream_request(
    start_proxy: StartProxy, upstream: StreamUpstream, stream_url: str
) -> None:
    proxy = await start_proxy(upstream=stream_url)
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"{proxy.url}/v1/endless?size=0") as response,
    ):
        got = 0
        while got < 1 << 20:
            got += len(await response.content.readany())
    # The client is gone: the upstream's writes stop soon after, and the body never ends.
    async with asyncio.timeout(10):
        while not proxy.exchanges():
            await asyncio.sleep(0.02)
    sent = upstream.sent[0]
    await asyncio.sleep(0.3)
    assert upstream.sent[0] == sent
    assert upstream.finished == [False]
    line = exchange_line(proxy)
    assert line["error"] == "client_disconnected"
    assert line["status"] == 200


async def test_a_gzip_bomb_costs_the_cap_and_reaches_the_client_as_sent(
    start_proxy: StartProxy, stream_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.yaml"
    proxy = await start_proxy(upstream=stream_url, cassette=cassette, record_mode="all")
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False) as session,
        session.get(f"{proxy.url}/bomb") as response,
    ):
        assert response.headers["Content-Encoding"] == "gzip"
        assert await response.read() == bomb()
    line = exchange_line(proxy)
    assert line["response"]["truncated"] is True
    assert line["response"]["size"] == len(bomb())
    assert "larger than --max-capture-size" in line["not_recorded"]
    await proxy.stop()
    assert yaml.safe_load(cassette.read_text() if cassette.exists() else "{}") in (
        {},
        {"interactions": [], "version": 1},
    )


# -- the real client, in every mode ----------------------------------------------------------


def _use_the_client(base_url: str) -> list[str]:
    """Everything an app does with streams: create(stream=True), the stream() helper, and
    retrieve(stream=True); the text each saw."""
    texts = []
    with openai.OpenAI(base_url=base_url, api_key=DUMMY_KEY, max_retries=0) as client:
        deltas = [
            event.delta
            for event in client.responses.create(model="stream-ok", input="x", stream=True)
            if event.type == "response.output_text.delta"
        ]
        texts.append("".join(deltas))
        with client.responses.stream(model="stream-ok", input="x") as stream:
            texts.append(stream.get_final_response().output_text)
        retrieved = client.responses.retrieve("resp_stream_0", stream=True)
        texts.append(
            next(e.response.output_text for e in retrieved if e.type == "response.completed")
        )
    return texts


async def _use_the_async_client(base_url: str) -> list[str]:
    texts = []
    async with openai.AsyncOpenAI(base_url=base_url, api_key=DUMMY_KEY, max_retries=0) as client:
        stream = await client.responses.create(model="stream-ok", input="x", stream=True)
        texts.append(
            "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])
        )
        async with client.responses.stream(model="stream-ok", input="x") as helper:
            texts.append((await helper.get_final_response()).output_text)
    return texts


@pytest.mark.parametrize("timing", ["off", "recorded"])
async def test_the_openai_client_streams_in_every_mode(
    start_proxy: StartProxy, upstream: StreamUpstream, stream_url: str, tmp_path: Path, timing: str
) -> None:
    text = "".join(upstream.words)
    passing = await start_proxy(upstream=stream_url)
    assert await asyncio.to_thread(_use_the_client, passing.base_url) == [text] * 3
    assert await _use_the_async_client(passing.base_url) == [text] * 2

    cassette = tmp_path / "streams.yaml"
    recording = await start_proxy(upstream=stream_url, cassette=cassette, record_mode="all")
    assert await asyncio.to_thread(_use_the_client, recording.base_url) == [text] * 3
    assert await _use_the_async_client(recording.base_url) == [text] * 2
    assert all(line["source"] == "upstream" for line in recording.exchanges())
    await recording.stop()

    replaying = await start_proxy(
        upstream=stream_url, cassette=cassette, record_mode="none", replay_timing=timing
    )
    before = len(upstream.sent)
    assert await asyncio.to_thread(_use_the_client, replaying.base_url) == [text] * 3
    assert await _use_the_async_client(replaying.base_url) == [text] * 2
    assert len(upstream.sent) == before  # offline
    lines = replaying.exchanges()
    assert {line["source"] for line in lines} == {"cassette"}
    assert all(line["stream"]["complete"] for line in lines)


async def test_cancelling_a_background_stream_while_it_is_open(
    start_proxy: StartProxy, upstream: StreamUpstream, stream_url: str
) -> None:
    proxy = await start_proxy(upstream=stream_url)

    async def consume() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0)
        async with client:
            stream = await client.responses.create(
                model="stream-step", input="x", stream=True, background=True
            )
            return [event async for event in stream]

    reader = asyncio.create_task(consume())
    await asyncio.wait_for(upstream.stepped.wait(), 10)  # the stream is open
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0)
    async with client:
        cancelled = await client.responses.cancel("resp_stream_0")
    assert cancelled.status == "cancelled"
    upstream.step.set()
    seen = await asyncio.wait_for(reader, 10)
    assert seen[-1].type == "response.incomplete"
    assert seen[-1].response.status == "cancelled"
    assert upstream.cancelled == {"resp_stream_0"}


# -- recording and replaying streams ---------------------------------------------------------


async def test_a_recorded_stream_replays_event_by_event_and_loads_in_vcrpy(
    start_proxy: StartProxy, upstream: StreamUpstream, stream_url: str, tmp_path: Path
) -> None:
    upstream.gap = 0.05
    cassette = tmp_path / "stream.yaml"
    # Folders as they are: vcrpy replays the cassette's text, compared with the live stream.
    recording = await start_proxy(
        upstream=stream_url, cassette=cassette, record_mode="once", folder_placeholders=False
    )
    _, recorded_chunks = await read_events(recording)
    wire = b"".join(recorded_chunks)
    await recording.stop()

    stored = yaml.safe_load(cassette.read_text())["interactions"][0]["response"]
    assert stored["body"]["string"].encode() == wire  # vcrpy's format: the whole stream
    timing = stored["timing"]
    assert timing["headers_ms"] > 0
    assert [end for end, _ in timing["frames"]] == [e.end for e in decode_all(wire)]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(timing["frames"])]
    assert min(gaps) > 30  # ~50 ms between events, as they arrived

    replaying = await start_proxy(
        upstream=stream_url, cassette=cassette, record_mode="none", folder_placeholders=False
    )
    response, chunks = await read_events(replaying)
    assert response.headers["X-Proxy-Source"] == "cassette"
    assert response.headers["X-Proxy-Validation"] == "passed"
    assert chunks == events("resp_stream_0", upstream.words)  # one HTTP chunk per event

    # vcrpy itself loads the cassette and replays the stream to the openai client.
    def replay_with_vcrpy() -> list[str]:
        with (
            vcr.use_cassette(str(cassette), record_mode="none"),
            openai.OpenAI(base_url=stream_url + "/v1", api_key="x", max_retries=0) as client,
        ):
            stream = client.responses.create(model="stream-ok", input="x", stream=True)
            return [event.type for event in stream]

    assert await asyncio.to_thread(replay_with_vcrpy) == [e.type for e in decode_all(wire)]


async def test_replay_reproduces_the_recorded_timing_scaled(
    start_proxy: StartProxy, upstream: StreamUpstream, stream_url: str, tmp_path: Path
) -> None:
    upstream.gap = 0.12
    upstream.words = ("a",)
    cassette = tmp_path / "timed.yaml"
    recording = await start_proxy(upstream=stream_url, cassette=cassette, record_mode="once")
    await read_events(recording)
    await recording.stop()
    frames = yaml.safe_load(cassette.read_text())["interactions"][0]["response"]["timing"]["frames"]
    recorded = [b - a for (_, a), (_, b) in itertools.pairwise(frames)]

    for speed in (1.0, 2.0):
        proxy = await start_proxy(
            upstream=stream_url,
            cassette=cassette,
            record_mode="none",
            replay_timing="recorded",
            replay_speed=speed,
            allow_playback_repeats=True,
        )
        arrivals = []
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.post(proxy.url + "/v1/responses", data=create_body()) as response,
        ):
            async for _, end_of_chunk in response.content.iter_chunks():
                if end_of_chunk:
                    arrivals.append(time.perf_counter() * 1000)
        replayed = [b - a for a, b in itertools.pairwise(arrivals)]
        # Loose here (a loaded CI machine); scripts/bench measures the 10 ms promise.
        for want, got in zip(recorded, replayed, strict=True):
            assert abs(got - want / speed) < 60, (speed, recorded, replayed)
