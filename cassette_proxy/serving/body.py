"""Reading a request's body within its limits: its size (``--max-body-size``) and its time.

A body that trickles in holds a connection as surely as headers that do. nginx cuts a body whose
client sends nothing for ``client_body_timeout`` (60 s), but a byte every five seconds keeps it;
Apache's ``mod_reqtimeout`` also wants a minimum rate (``MinRate``). The proxy takes Apache's
shape: a body has ``--body-timeout`` seconds from its headers, and each ``--body-min-rate``
bytes received add a second. A client that keeps to the rate (after any start) is never cut; one
that trickles is cut at ``--body-timeout`` with 408 ``request_timeout`` (retryable, and the
connection closed, as nginx does). Under the connection cap, a body arriving slower than the rate
is what a new connection takes the place of (:mod:`cassette_proxy.serving.process.server` calls
:meth:`BodyRead.evict`), answered 503 ``proxy_overloaded``. Either answer goes through the one
middleware that turns errors into answers, and is logged as its exchange.

A body that arrived with its headers (most requests) is read at once, with no timer.
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web
from aiohttp.streams import StreamReader

from cassette_proxy.errors import BodyTooLarge, BodyTooSlow, ProxyOverloaded

# How long a body has been read before its rate counts against it under the connection cap: a
# body whose first bytes are still on their way is not slow yet.
GRACE: Final = 1.0


class BodyRead:
    """A request body being read: since when, how much has come, and how to cut it short."""

    __slots__ = ("content", "evicted", "scope", "started")

    def __init__(self, content: StreamReader, started: float) -> None:
        self.content = content
        self.started = started
        self.evicted = False
        self.scope: asyncio.Timeout | None = None  # the read's deadline, while it runs

    def rate(self, now: float) -> float:
        """Bytes a second since the body's headers."""
        return self.content.total_bytes / max(now - self.started, 1e-9)

    def slow(self, now: float, min_rate: float) -> bool:
        """Whether it has been read for :data:`GRACE` and comes slower than ``min_rate``."""
        return now - self.started >= GRACE and self.rate(now) < min_rate

    def evict(self) -> None:
        """Cut it now: its read ends with :class:`ProxyOverloaded`."""
        self.evicted = True
        if self.scope is not None:
            self.scope.reschedule(asyncio.get_running_loop().time())


def _too_large(size: int | None, limit: int) -> str:
    got = f"is {size} bytes" if size is not None else "is larger"
    return (
        f"request body {got}, over the proxy's limit of {limit} bytes; nothing was forwarded "
        "(raise --max-body-size if this is expected)"
    )


async def _read_some(content: StreamReader) -> bytes:
    """What has come of the body (b"" at its end). aiohttp raises RuntimeError on a connection
    closed while it waits: the client's going away, as a reset is."""
    try:
        return await content.readany()
    except RuntimeError as exc:
        raise ConnectionResetError(str(exc)) from exc


async def read_body(request: web.Request, max_size: int, seconds: float, min_rate: int) -> bytes:
    """The request's body, refused if it is over ``max_size`` bytes or arrives too slowly.
    While it is read, the connection's handler holds it as ``body_read`` (for the cap)."""
    declared = request.content_length
    if declared is not None and declared > max_size:
        raise BodyTooLarge(_too_large(declared, max_size))
    content = request.content
    if content.is_eof():  # it came with its headers: nothing to wait for
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise BodyTooLarge(_too_large(None, max_size)) from exc
    loop = asyncio.get_running_loop()
    reading = BodyRead(content, loop.time())
    # The server's connection handler holds it while it is read (a plain aiohttp one has no
    # place for it: under a plain runner there is no cap to keep).
    holder = request.protocol if hasattr(request.protocol, "body_read") else None
    if holder is not None:
        holder.body_read = reading
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(reading.started + seconds) as scope:
            reading.scope = scope
            while chunk := await _read_some(content):
                size += len(chunk)
                if size > max_size:
                    raise BodyTooLarge(_too_large(None, max_size))
                chunks.append(chunk)
                if not reading.evicted:
                    scope.reschedule(reading.started + seconds + size / min_rate)
    except TimeoutError:
        elapsed = loop.time() - reading.started
        if reading.evicted:
            raise ProxyOverloaded(
                f"cassette-proxy has all of its --max-connections open, and this request's body "
                f"came at {size / elapsed:,.0f} bytes/s, slower than --body-min-rate "
                f"({min_rate:,} bytes/s), so its connection was given to a new client after "
                f"{size:,} bytes in {elapsed:.1f} s; nothing was forwarded: send it again"
            ) from None
        raise BodyTooSlow(
            f"the request body came too slowly: {size:,} bytes in {elapsed:.1f} s, where "
            f"--body-timeout ({seconds:g} s) and --body-min-rate ({min_rate:,} bytes/s) "
            f"allowed {seconds:g} s plus a second for each {min_rate:,} bytes; nothing was "
            "forwarded"
        ) from None
    finally:
        if holder is not None and holder.body_read is reading:
            holder.body_read = None
    return b"".join(chunks)
