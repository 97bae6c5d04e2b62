"""A streaming stand-in for the Responses API, for the benchmark.

python scripts/sse_upstream.py PORT

- ``POST /v1/responses``: a Server-Sent Events stream of ``events`` events (query, default 20)
  ``gap_ms`` apart (query, default 50), in the Responses API's shapes;
- ``GET /big?size=N``: N bytes (0: without end) of octets in 64 KiB writes;
- ``GET /bomb``: about 1 MiB of gzip that inflates to 1 GiB.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import zlib

import orjson
import uvloop
from aiohttp import web
from fast_upstream import BODY

BLOCK = b"x" * 65536


def frame(number: int, kind: str, extra: dict[str, object]) -> bytes:
    data = orjson.dumps({"type": kind, "sequence_number": number, **extra})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


async def stream(request: web.Request) -> web.StreamResponse:
    count = int(request.query.get("events", "20"))
    gap = float(request.query.get("gap_ms", "50")) / 1000
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    # A whole Response, as the service sends it in lifecycle events (fast_upstream's cancel body).
    body = orjson.loads(BODY) | {"status": "in_progress", "output": [], "background": False}
    await response.write(frame(0, "response.created", {"response": body}))
    for number in range(1, count - 1):
        if gap:
            await asyncio.sleep(gap)
        delta = {"item_id": "msg_1", "output_index": 0, "content_index": 0, "logprobs": []}
        await response.write(
            frame(number, "response.output_text.delta", {**delta, "delta": f" word{number}"})
        )
    if gap:
        await asyncio.sleep(gap)
    done = body | {"status": "completed"}
    await response.write(frame(count - 1, "response.completed", {"response": done}))
    await response.write_eof()
    return response


async def big(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", "0"))
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if size:
        response.content_length = size
    await response.prepare(request)
    sent = 0
    try:
        while size == 0 or sent < size:
            part = BLOCK if size == 0 else BLOCK[: size - sent]
            await response.write(part)
            sent += len(part)
        await response.write_eof()
    except ConnectionError:
        pass
    return response


def make_bomb() -> bytes:
    chunk = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * 1024 + deflate.flush() + struct.pack("<II", crc, 0)


BOMB = make_bomb()


async def bomb(request: web.Request) -> web.StreamResponse:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    return web.Response(body=BOMB, headers=headers)


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/responses", stream)
    app.router.add_get("/big", big)
    app.router.add_get("/bomb", bomb)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
                loop=uvloop.new_event_loop())  # fmt: skip


if __name__ == "__main__":
    main()
