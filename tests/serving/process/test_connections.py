"""Connections under pressure (issue 22, items 2 to 4), against a real ``serve`` process with
raw sockets: bodies that trickle in, a burst over ``--max-connections``, and a process out of
file descriptors. Every client gets an answer in the OpenAI envelope, and every refusal a log
line; loops are bounded in count and time, and caps are small (20 connections, not 1,000)."""

from __future__ import annotations

import asyncio
import collections
import resource
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from tests import vectors
from tests.fake_upstream import FakeUpstream
from tests.processes import listening_url
from tests.serving.test_streaming_processes import Proxy, proxy_process

pytestmark = pytest.mark.slow

CANCEL = (
    f"POST /v1/responses/{vectors.V1_ID}/cancel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
)


@pytest.fixture
async def upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    fake = FakeUpstream(slow_seconds=1.0)
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


def _address(proxy: Proxy) -> tuple[str, int]:
    host, port = proxy.url.removeprefix("http://").split(":")
    return host, int(port)


class _Client(asyncio.Protocol):
    """One raw connection: what it receives, and when a whole response (or the end) came."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.answered = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        head, found, body = bytes(self.data).partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            None,
        )  # fmt: skip
        if found and length is not None and len(body) >= length and not self.answered.done():
            self.answered.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_result(None)

    async def answer(self, within: float = 20) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of the response (0 and {} if there was none)."""
        async with asyncio.timeout(within):
            await self.answered
        head, _, body = bytes(self.data).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            return 0, {}
        try:
            document = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:  # not the envelope: aiohttp's own text/plain 500, say
            document = {"not json": body[:200].decode(errors="replace")}
        return int(head.split(b" ", 2)[1]), document


async def _connect(proxy: Proxy, request: bytes) -> _Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(_Client, *_address(proxy))
    assert client.transport is not None
    client.transport.write(request)
    return client


async def _trickle(
    proxy: Proxy, declared: int, stop: asyncio.Event, *, every: float = 0.5
) -> tuple[_Client, asyncio.Task[None]]:
    """A request declaring ``declared`` bytes of body and sending one every ``every`` seconds,
    until it is answered (as a slow uploader would), ``stop``, or two minutes."""
    head = f"{CANCEL}Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    client = await _connect(proxy, head.encode())

    async def feed() -> None:
        for _ in range(int(120 / every)):
            await asyncio.sleep(every)
            if stop.is_set() or client.answered.done() or client.transport is None:
                break
            if client.transport.is_closing():
                break
            client.transport.write(b" ")
        if client.transport is not None:
            client.transport.close()

    return client, asyncio.create_task(feed())


async def _cancel(proxy: Proxy, response_id: str = vectors.V1_ID) -> tuple[int, dict[str, Any]]:
    request = (
        f"{CANCEL.replace(vectors.V1_ID, response_id)}Content-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    )
    client = await _connect(proxy, request.encode())
    try:
        return await client.answer()
    finally:
        assert client.transport is not None
        client.transport.close()


def _events(proxy: Proxy) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in proxy.log.read_bytes().splitlines()]


async def test_a_trickling_body_is_cut_at_the_body_timeout_with_408(
    upstream: str, tmp_path: Path
) -> None:
    stop = asyncio.Event()
    async with proxy_process(upstream, tmp_path / "log", "--body-timeout", "1") as proxy:
        client, feeding = await _trickle(proxy, 100_000, stop, every=0.2)
        status, document = await client.answer()
        stop.set()
        await feeding
        assert status == 408, document
        error = document["error"]
        assert error["code"] == "request_timeout"
        assert "--body-timeout (1 s)" in error["message"]
        assert await _cancel(proxy) == (200, orjson.loads(vectors.V1_BODY))  # others served
        lines = proxy.exchanges()
    assert (lines[0]["status"], lines[0]["error"]) == (408, "request_timeout")


async def test_a_body_that_keeps_the_minimum_rate_is_never_cut(
    upstream: str, tmp_path: Path
) -> None:
    args = ("--body-timeout", "1", "--body-min-rate", "1000")
    async with proxy_process(upstream, tmp_path / "log", *args) as proxy:
        body = b"x" * 30_000
        client = await _connect(proxy, f"{CANCEL}Content-Length: {len(body)}\r\n\r\n".encode())
        assert client.transport is not None
        for start in range(0, len(body), 2_000):  # 20 KB/s for 1.5 s: past --body-timeout
            client.transport.write(body[start : start + 2_000])
            await asyncio.sleep(0.1)
        status, _ = await client.answer()
        client.transport.close()
    assert status == 200


async def test_real_clients_are_answered_while_trickling_bodies_hold_the_cap(
    upstream: str, tmp_path: Path
) -> None:
    """The issue's attack, scaled: 1,000 connections declaring 100,000 bytes and sending one
    every 5 s kept every real request at 503 for 130 s; here 40 such against a cap of 20."""
    stop = asyncio.Event()
    args = ("--max-connections", "20", "--body-timeout", "4")
    async with proxy_process(upstream, tmp_path / "log", *args) as proxy:
        tricklers = [await _trickle(proxy, 100_000, stop) for _ in range(40)]
        await asyncio.sleep(1.5)  # long enough to be measured slower than --body-min-rate
        for _ in range(5):
            assert await _cancel(proxy) == (200, orjson.loads(vectors.V1_BODY))
        # Each trickler is answered in the end: refused at once (over the cap), given up for a
        # real client once it proved slow, or cut at --body-timeout. None is closed unanswered.
        answers = await asyncio.gather(*(client.answer() for client, _ in tricklers))
        stop.set()
        await asyncio.gather(*(task for _, task in tricklers))
        events = _events(proxy)
    statuses = collections.Counter(status for status, _ in answers)
    assert set(statuses) <= {503, 408}, statuses
    codes = {d["error"]["code"] for _, d in answers}
    assert codes <= {"proxy_overloaded", "request_timeout"}
    reasons = collections.Counter(
        e["detail"]["reason"] for e in events if e["event"] == "connection_evicted"
    )
    refused = [e for e in events if e["event"] == "connection_refused"]
    # The first real client took a slow body's place (the next ones, the room it left, or the
    # place of a real client's connection kept alive after its answer, if it had not closed).
    slow = reasons.pop("a request body slower than --body-min-rate", 0)
    assert slow >= 1
    assert set(reasons) <= {"idle after its request"}
    exchanges = [e for e in events if e["event"] == "exchange"]
    given_up = [e for e in exchanges if e["error"] == "proxy_overloaded"]
    assert len(given_up) == slow  # each given-up body: its exchange line, its 503
    assert len(refused) + len(given_up) == statuses[503]
    assert len([e for e in exchanges if e["error"] == "request_timeout"]) == statuses[408]


async def test_a_burst_over_the_cap_answers_every_client(upstream: str, tmp_path: Path) -> None:
    """2,000 simultaneous requests against the default cap of 1,000 left 1,000 closed with no
    answer and no log line; here 60 against 20."""
    async with proxy_process(upstream, tmp_path / "log", "--max-connections", "20") as proxy:
        answers = await asyncio.gather(*(_cancel(proxy, f"resp_slow_{n}") for n in range(60)))
        events = _events(proxy)
    statuses = collections.Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 503}, statuses  # no connection closed without an answer
    assert statuses[200] >= 20
    for status, document in answers:
        if status == 503:
            assert document["error"]["code"] == "proxy_overloaded"
    refusals = [e for e in events if e["event"] in {"connection_refused", "connection_evicted"}]
    assert len(refusals) == statuses[503]  # each refusal, one line
    assert len([e for e in events if e["event"] == "exchange"]) == statuses[200]


def _few_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))


@asynccontextmanager
async def _starved_proxy(upstream: str, log: Path) -> AsyncIterator[tuple[Proxy, list[bytes]]]:
    """``serve`` allowed 300 open files (soft and hard), and what it writes on stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", "0", "--upstream", upstream,
        "--log-file", str(log), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, preexec_fn=_few_files,
    )  # fmt: skip
    stderr: list[bytes] = []
    try:
        url = None
        async with asyncio.timeout(20):
            while url is None:
                await asyncio.sleep(0.05)
                assert process.returncode is None, "the proxy did not start"
                url = listening_url(log)
        yield Proxy(process, url, log), stderr
    finally:
        if process.returncode is None:
            process.terminate()
        _, err = await process.communicate()
        stderr.append(err)


async def test_out_of_file_descriptors_every_client_gets_an_envelope(
    upstream: str, tmp_path: Path
) -> None:
    """The issue: 300 open files and 600 clients gave 201 of them aiohttp's bare 500 and stderr
    804 tracebacks. Here every client gets the proxy's envelope (its answer or a retryable 503),
    every one is logged, and stderr holds one warning, no traceback."""
    async with _starved_proxy(upstream, tmp_path / "log") as (proxy, stderr):
        answers = await asyncio.gather(*(_cancel(proxy, f"resp_slow_{n}") for n in range(600)))
        events = _events(proxy)
    statuses = collections.Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] >= 100
    assert all(d["error"]["code"] == "proxy_overloaded" for s, d in answers if s == 503)
    refused = [e for e in events if e["event"] == "connection_refused"]
    assert len(refused) == statuses[503]
    assert not [e for e in events if e["event"] == "internal_error"]
    [err] = stderr
    assert b"Traceback" not in err
    assert b"the open-file limit is 300, which holds 118 connections" in err
    assert len(err.splitlines()) == 2  # that warning, and the line saying where it listens
