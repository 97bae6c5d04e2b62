"""A real aiohttp server on loopback that streams the Responses API the way the service does.

``POST /v1/responses`` with ``"stream": true`` answers Server-Sent Events (``event: <type>``,
``data: <json>``, a blank line; no ``[DONE]``), the shapes the ``openai`` client parses:
``response.created``, ``.in_progress``, an output message with ``output_text.delta`` events,
then ``response.completed``. ``GET /v1/responses/{id}?stream=true`` streams the same, and
``POST /v1/responses/{id}/cancel`` cancels a response whose stream is open: that stream then
ends at once with a ``response.incomplete`` event whose response has status ``cancelled``.

What each test needs is picked with the request's ``model``:

- ``stream-ok`` (default): ``words`` deltas, ``gap`` seconds apart;
- ``stream-stall``: two events, then silence (for the idle timeout);
- ``stream-break``: two events, then the connection is reset;
- ``stream-break-mid``: two events and half of the third, then the connection is reset;
- ``stream-bad``: ``response.created`` with an ``id`` that is a number (a contract error);
- ``stream-unknown``: an event type no document knows (drift);
- ``stream-step``: each event waits for ``step`` to be set, so a test can prove the first event
  reached the client before the upstream sent the second.

Any other path answers ``size`` bytes (from the query; ``0``: without end) of
``application/octet-stream``, or a 1 MiB gzip bomb at ``/bomb``; ``sent`` counts the body bytes
that left, per request, so tests can see a dropped upstream request stop.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests import vectors

MODEL = "gpt://b1gexamplefolder000/yandexgpt/latest"
WORDS = ("Кратко:", " облачная", " платформа", " предоставляет", " модели")


def response_object(response_id: str, status: str, text: str = "") -> dict[str, Any]:
    """A Response (the reference's V1, with this id, status and output)."""
    body: dict[str, Any] = orjson.loads(vectors.V1_BODY)
    body |= {"id": response_id, "status": status, "background": False}
    if text:
        body["output"] = [message(text, "completed")]
    return body


def message(text: str, status: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}] if text else [],
    }


def frame(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def events(response_id: str, words: tuple[str, ...], *, final: str = "completed") -> list[bytes]:
    """The frames of one streamed response, in order, with increasing sequence numbers."""
    text = "".join(words)
    part = {"type": "output_text", "text": "", "annotations": []}
    item = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    shapes: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response_object(response_id, "in_progress")}),
        ("response.in_progress", {"response": response_object(response_id, "in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": message("", "in_progress")}),
        ("response.content_part.added", {**item, "part": part}),
        *(
            ("response.output_text.delta", {**item, "delta": word, "logprobs": []})
            for word in words
        ),
        ("response.output_text.done", {**item, "text": text, "logprobs": []}),
        ("response.content_part.done", {**item, "part": {**part, "text": text}}),
        ("response.output_item.done", {"output_index": 0, "item": message(text, "completed")}),
        (f"response.{final}", {"response": response_object(response_id, final, text)}),
    ]
    return [
        frame(kind, {"type": kind, "sequence_number": number, **data})
        for number, (kind, data) in enumerate(shapes)
    ]


@dataclass
class StreamUpstream:
    gap: float = 0.0
    words: tuple[str, ...] = WORDS
    step: asyncio.Event = field(default_factory=asyncio.Event)
    stepped: asyncio.Event = field(default_factory=asyncio.Event)  # set when an event has gone
    sent: list[int] = field(default_factory=list)  # body bytes per request
    finished: list[bool] = field(default_factory=list)  # whether each body was sent whole
    cancelled: set[str] = field(default_factory=set)
    sent_at: list[float] = field(default_factory=list)  # when each event left (perf_counter)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/responses", self.create)
        app.router.add_get("/v1/responses/{id}", self.retrieve)
        app.router.add_post("/v1/responses/{id}/cancel", self.cancel)
        app.router.add_get("/bomb", self.bomb)
        app.router.add_route("*", "/{tail:.*}", self.octets)
        return app

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body.get("model", "stream-ok")
        response_id = f"resp_stream_{len(self.sent)}"
        if not body.get("stream"):
            answer = response_object(response_id, "completed", "".join(self.words))
            answer["model"] = MODEL
            return web.json_response(answer)
        return await self.stream(request, response_id, model)

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        response_id = request.match_info["id"]
        if request.query.get("stream") != "true":
            return web.json_response(response_object(response_id, "completed"))
        return await self.stream(request, response_id, "stream-ok")

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        response_id = request.match_info["id"]
        self.cancelled.add(response_id)
        return web.json_response(response_object(response_id, "cancelled"))

    async def stream(
        self, request: web.Request, response_id: str, model: str
    ) -> web.StreamResponse:
        frames = events(response_id, self.words)
        if model == "stream-bad":
            bad = orjson.loads(frames[0].split(b"data: ", 1)[1])
            bad["response"]["id"] = 123
            frames[0] = frame("response.created", bad)
        if model == "stream-unknown":
            frames.insert(2, frame("response.brand_new", {"type": "response.brand_new",
                                                          "sequence_number": 1}))  # fmt: skip
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        index = len(self.sent)
        self.sent.append(0)
        self.finished.append(False)
        for number, data in enumerate(frames):
            if model == "stream-step" and number:
                await self.step.wait()
                self.step.clear()
            elif self.gap and number:
                await asyncio.sleep(self.gap)
            if response_id in self.cancelled:  # ends at once, as the service says it ended
                ended = response_object(response_id, "cancelled")
                await response.write(
                    frame("response.incomplete", {"type": "response.incomplete",
                                                  "sequence_number": number, "response": ended})
                )  # fmt: skip
                break
            await response.write(data)
            self.sent_at.append(time.perf_counter())
            self.sent[index] += len(data)
            self.stepped.set()
            if number == 1 and model == "stream-stall":
                await asyncio.sleep(3600)
            if number == 1 and model == "stream-break":
                assert request.transport is not None
                request.transport.abort()
                return response
            if number == 1 and model == "stream-break-mid":  # half of the next event, then reset
                await response.write(frames[2][: len(frames[2]) // 2])
                await asyncio.sleep(0.05)
                assert request.transport is not None
                request.transport.abort()
                return response
        await response.write_eof()
        self.finished[index] = True
        return response

    async def octets(self, request: web.Request) -> web.StreamResponse:
        """``size`` bytes (0: without end) in 64 KiB writes, chunked."""
        size = int(request.query.get("size", "0"))
        index = len(self.sent)
        self.sent.append(0)
        self.finished.append(False)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        block = b"x" * 65536
        try:
            while size == 0 or self.sent[index] < size:
                part = block if size == 0 else block[: size - self.sent[index]]
                await response.write(part)
                self.sent[index] += len(part)
            await response.write_eof()
            self.finished[index] = True
        except ConnectionError:
            pass  # the proxy dropped the request: what the hang-up tests look for
        return response

    async def bomb(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=bomb(), headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )


@functools.cache
def bomb() -> bytes:
    """About 1 MiB of gzip that inflates to 1 GiB of zeros, built in well under a second: after
    a full flush deflate compresses each MiB of zeros to the same bytes, so one block is
    repeated, and the gzip trailer's CRC is computed over the zeros it stands for."""
    chunk = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * 1024 + deflate.flush() + struct.pack("<II", crc, 0)
