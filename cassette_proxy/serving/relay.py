"""Sending a response to the client as it arrives: headers first, then each chunk.

The relay is the request path's last step, for responses from the upstream and the cassette alike.
Chunks go to the client as they come (``write`` waits for a slow client: the transport's
backpressure, so nothing piles up here) and, for an upstream response, through the
:class:`~cassette_proxy.serving.tee.Tee`, which keeps what the log, validation and the recorder
need, within the capture cap. The client's last byte (the final chunk of a ``Content-Length`` body,
the end of a chunked one) is written only after ``conclude`` has run: a response whose recording
fails is never acknowledged. A body that has all arrived with its headers (most JSON answers) goes
out in one write, after ``conclude``: a failed recording is then the proxy's 502.

Once the headers have gone, a failure cannot become an error response. An event stream then
ends with one ``error`` event in the shape the ``openai`` client raises on; any other body is
cut (the connection closed before its end), so the client cannot take it for a whole one. A
client that goes away makes the relay drop the upstream request at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from cassette_proxy.errors import (
    ClientDisconnected,
    ProxyError,
    ResponseRejected,
    UpstreamBroken,
)
from cassette_proxy.models.http import BodyStream, ResponseHead
from cassette_proxy.serving.exchange import Exchange
from cassette_proxy.serving.tee import Captured, Tee

# What aiohttp raises when writing to a client that went away (ClientConnectionResetError).
_GONE: Final = ConnectionError


@dataclass(frozen=True, slots=True)
class Frame:
    """A piece of a body known up front, and when to send it (seconds after the headers)."""

    data: bytes | memoryview
    at: float = 0.0


async def send_known(
    request: web.Request,
    exchange: Exchange,
    head: ResponseHead,
    frames: list[Frame],
    *,
    headers_after: float = 0.0,
) -> web.StreamResponse:
    """A body known up front (a replay): one frame in one write, with its Content-Length, once
    it is due; more frames each written on its own, at its time."""
    if len(frames) <= 1:
        due = headers_after + (frames[0].at if frames else 0.0)
        if due > 0:
            exchange.replay_wait_ms = 0.0
            await _wait(exchange, due)
        return _whole(head, exchange, bytes(frames[0].data) if frames else b"")
    if headers_after > 0 or any(frame.at for frame in frames):
        exchange.replay_wait_ms = 0.0
        await _wait(exchange, headers_after)
    response = _start(head, exchange)
    await _prepare(request, response)
    started = time.perf_counter()
    try:
        for frame in frames:
            wait = frame.at - (time.perf_counter() - started)
            if wait > 0:
                await _wait(exchange, wait)
            await response.write(frame.data)
            exchange.sent += len(frame.data)
        exchange.settle(response)  # logged before the last byte (the end of the chunked body)
        await response.write_eof()
    except _GONE:
        exchange.error = _client_gone(exchange)
    return response


async def _wait(exchange: Exchange, seconds: float) -> None:
    """Sleep on purpose (a replay at the recorded times), counted apart in the log line so the
    audit does not take it for the proxy's own time."""
    if seconds <= 0:
        return
    slept = time.perf_counter()
    await asyncio.sleep(seconds)
    waited = (exchange.replay_wait_ms or 0.0) + (time.perf_counter() - slept) * 1000
    exchange.replay_wait_ms = round(waited, 3)


def _start(head: ResponseHead, exchange: Exchange) -> web.StreamResponse:
    response = exchange.answer = web.StreamResponse(status=head.status, reason=head.reason or None)
    response.headers.extend(head.headers)
    response.headers.update(exchange.labels())
    if head.content_length is not None:
        response.content_length = head.content_length
    return response


def _client_gone(exchange: Exchange) -> ClientDisconnected:
    return ClientDisconnected(
        f"the client went away after {exchange.sent} bytes of the response body; the upstream "
        "request was dropped and nothing was recorded"
    )


async def stream(
    request: web.Request,
    exchange: Exchange,
    body: BodyStream,
    tee: Tee,
    *,
    conclude: Callable[[Captured], None],
    hold: bool = False,
    gate: bool = False,
) -> web.StreamResponse:
    """Relay an upstream response through ``tee``; ``conclude`` runs once the body is whole,
    before the client's last byte (it records, and may raise to refuse the response).

    ``hold`` (strict validation of a whole JSON body) reads the body first, within the
    capture cap, so ``conclude`` can still refuse it with an error response. ``gate`` (strict
    validation of an event stream) passes each event on only once it is checked. A body that
    arrived whole with its headers (not an event stream) is read and sent whole the same way.
    """
    chunks = aiter(body)
    head = tee.head
    # A response that has no body (to HEAD, 204, 304) is whole once its headers are sent.
    bodiless = request.method == "HEAD" or head.status in {204, 304}
    # A body that arrived whole with its headers (most JSON answers) goes out whole too, as
    # one write: streaming it would only cost writes, and its verdict is then in its headers.
    # An event stream keeps its event-by-event writes (and strict gating).
    arrived = not tee.sse and body.arrived()
    # Labelled as if it had streamed (a verdict still ``pending``), so the header does not depend
    # on how the body was cut into packets.
    labels = exchange.labels() if arrived and not hold else None
    try:
        held: list[bytes] = []
        if hold or bodiless or arrived:
            async for chunk in chunks:
                tee.feed(chunk)
                held.append(chunk)
                if tee.truncated:  # too large to check whole: it streams, unchecked
                    break
            else:
                captured = tee.close(ended=True)
                exchange.captured = captured
                conclude(captured)  # raises to refuse: nothing has been sent yet
                if not bodiless:
                    return _whole(head, exchange, b"".join(held), labels)
                response = _start(head, exchange)  # keeps the upstream's Content-Length
                exchange.settle(response)
                await _prepare(request, response)
                await response.write_eof()
                return response
        response = _start(head, exchange)
        await _prepare(request, response)
        relay = _Relay(request, exchange, response, tee, conclude)
        # Events are gated (strict) only where their offsets are the wire's and the body is
        # chunked: a coded stream, or one with a Content-Length, streams unchecked, as it is.
        framed = response.content_length is None  # chunked: the end is the proxy's to write
        gated = _Gate(tee) if gate and tee.sse and tee.identity and framed else None
        await relay.run(chunks, held, gated)
        return response
    finally:
        await body.aclose()


async def _prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Send the headers."""
    try:
        await response.prepare(request)
    except ConnectionError as exc:  # the client left while the upstream answered
        raise ClientDisconnected(
            "the client went away before the response's headers could be sent; the upstream "
            "request was dropped and nothing was recorded"
        ) from exc
    except ValueError as exc:  # a header value aiohttp will not send (a control character)
        raise UpstreamBroken(
            f"the upstream's response headers cannot be passed on ({exc}); nothing was sent"
        ) from exc


def _whole(
    head: ResponseHead, exchange: Exchange, data: bytes, labels: dict[str, str] | None = None
) -> web.Response:
    response = web.Response(
        status=head.status, reason=head.reason or None, headers=head.headers, body=data
    )
    response.headers.update(labels or exchange.labels())
    exchange.answer = response
    exchange.sent = len(data)
    return response


class _Relay:
    """One response on its way, after its headers have gone."""

    def __init__(
        self,
        request: web.Request,
        exchange: Exchange,
        response: web.StreamResponse,
        tee: Tee,
        conclude: Callable[[Captured], None],
    ) -> None:
        self.request = request
        self.exchange = exchange
        self.response = response
        self.tee = tee
        self.conclude = conclude

    async def run(
        self, chunks: AsyncIterator[bytes], held: list[bytes], gated: _Gate | None
    ) -> None:
        length = self.response.content_length if not self.response.chunked else None
        exchange = self.exchange
        try:
            for chunk in held:  # what strict validation read before it let the body stream
                await self.write(chunk)
            async for chunk in chunks:
                if gated is not None:
                    if await gated.pass_on(self, chunk):
                        return  # an event broke the contract: replaced by an error event
                    continue
                self.tee.feed(chunk)
                if length is not None and exchange.sent + len(chunk) >= length:
                    self.finish()  # the last byte waits for the recording
                await self.write(chunk)
            if gated is not None:
                await gated.flush(self)
            if exchange.captured is None:
                self.finish()
            await self.response.write_eof()
        except (_GONE, asyncio.CancelledError) as exc:  # CancelledError: aiohttp saw it first
            if exchange.error is None:  # not already cut for a reason (a shutdown deadline)
                exchange.error = _client_gone(exchange)
            self.cut()
            if isinstance(exc, asyncio.CancelledError):
                raise
        except ProxyError as error:  # the upstream failed mid-body, or the recording did
            exchange.error = error
            self.cut()
            await self.end_with(error)

    async def write(self, data: bytes) -> None:
        await self.response.write(data)
        self.exchange.sent += len(data)

    def finish(self) -> None:
        """The body is whole: record it and log the exchange, before the client's last byte."""
        self.exchange.captured = self.tee.close(ended=True)
        self.conclude(self.exchange.captured)
        self.exchange.settle(self.response)

    def cut(self) -> None:
        if self.exchange.captured is None:
            self.exchange.captured = self.tee.close(ended=False)

    async def end_with(self, error: ProxyError, *, between_events: bool = False) -> None:
        """After the headers: an event stream gets one ``error`` event and ends, when the client
        has whole events only and the body is chunked; any other body is cut, so the client
        cannot mistake it for a whole one (nor read the error into a half-sent event)."""
        framed = self.response.content_length is None  # else the length is already promised
        if framed and (between_events or self.tee.between_events) and error.error_event:
            try:
                await self.write(error.sse_event(self.tee.last_sequence + 1))
                await self.response.write_eof()
            except _GONE:
                pass
            return
        if self.request.transport is not None:
            self.request.transport.close()


class _Gate:
    """Strict validation of an event stream: bytes go on only up to the end of the last event
    checked clean; the first event with an error is replaced by an ``error`` event."""

    def __init__(self, tee: Tee) -> None:
        self.tee = tee
        self.pending = bytearray()
        self.start = 0  # stream offset of pending[0]

    async def pass_on(self, relay: _Relay, chunk: bytes) -> bool:
        """Take a chunk; True once the stream was ended for an event that broke the contract."""
        self.pending += chunk
        cleared = self.start
        for event, found in self.tee.feed(chunk):
            errors = [v for v in found if v.severity == "error"]
            if errors:
                await self._release(relay, cleared)
                rejected = ResponseRejected(relay.response.status, errors, event=event.index)
                relay.exchange.error = rejected
                relay.cut()
                await relay.end_with(rejected, between_events=True)  # only whole events went
                return True
            cleared = event.end
        if self.tee.events is None:  # past the cap nothing is checked: the rest goes as it is
            cleared = self.start + len(self.pending)
        await self._release(relay, cleared)
        return False

    async def _release(self, relay: _Relay, upto: int) -> None:
        count = upto - self.start
        if count > 0:
            await relay.write(bytes(self.pending[:count]))
            del self.pending[:count]
            self.start = upto

    async def flush(self, relay: _Relay) -> None:
        """At the end: bytes after the last event (a partial one, a comment) go on as they are."""
        await self._release(relay, self.start + len(self.pending))
