"""A hand-written HTTP/1.1 upstream on loopback, for what a real server would never send: it
keeps each request's raw bytes (head and ``Content-Length`` body), answers ``reply`` as it is,
and closes the connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class RawUpstream:
    reply: bytes = b""
    url: str = ""
    received: list[bytes] = field(default_factory=list)  # each request as it came

    @property
    def requests(self) -> int:
        return len(self.received)


def _length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


@asynccontextmanager
async def raw_upstream_server() -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            upstream.received.append(head + await reader.readexactly(_length(head)))
            writer.write(upstream.reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    upstream.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield upstream
