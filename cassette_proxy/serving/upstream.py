"""The network, behind one seam.

Everything the proxy sends to the upstream goes through :meth:`Transport.send`, which returns
once the response's headers are in, with its body as a stream of chunks (httpx's shape). The
aiohttp implementation is the only place that knows about sockets, and the only place aiohttp's
client exceptions are translated into :mod:`cassette_proxy.errors`, for the headers and for the
body alike. Replay never calls the transport at all.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, Protocol

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from cassette_proxy.errors import UpstreamBroken, UpstreamTimeout, UpstreamUnreachable
from cassette_proxy.models.http import BodyStream, ResponseHead, end_to_end
from cassette_proxy.redact import redact_path

MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """A request as it will be sent upstream: absolute URL, final headers, body."""

    method: str
    url: URL  # built with encoded=True, so percent-encoding reaches the upstream unchanged
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """The upstream's answer as soon as its headers are in: the head, the body still to come,
    and how long the headers took."""

    head: ResponseHead
    body: BodyStream
    ttfb_ms: float


class Transport(Protocol):
    """Sends one request upstream; returns once the response's headers are in.

    Errors before the headers raise :class:`~cassette_proxy.errors.UpstreamError`; errors while
    the body is read are raised by the body's iterator, as the same errors.
    """

    async def send(self, request: OutboundRequest) -> UpstreamResponse: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Envoy's shape: connect, then the response's headers, then the longest silence between two
    reads of the body. A stream that keeps sending is never cut; a stalled one is."""

    connect: float = 10.0
    headers: float = 600.0
    idle: float = 300.0


class _Body:
    """The upstream's body, read as it arrives, with the idle timeout between reads."""

    __slots__ = ("_idle", "_request", "_response")

    def __init__(
        self, response: aiohttp.ClientResponse, idle: float, request: OutboundRequest
    ) -> None:
        self._response = response
        self._idle = idle
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                # What has arrived is taken at once; only a read that waits has a deadline.
                chunk = content.read_nowait()
                if not chunk:
                    if content.at_eof():
                        return
                    async with asyncio.timeout(self._idle):
                        chunk = await content.readany()
                    if not chunk:
                        return
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"the upstream sent nothing for {self._idle:g} s in the body of "
                f"{_where(self._request)} (--upstream-idle-timeout)"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(
                f"the upstream broke the connection in the body of {_where(self._request)}: "
                + _describe(exc)
            ) from exc

    def arrived(self) -> bool:
        return self._response.content.is_eof()

    async def aclose(self) -> None:
        # A body read to its end leaves the connection to the pool; one left early closes it,
        # which is how the upstream learns that the client went away.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


# aiohttp sends bytes over 1 MiB in one write and warns (a ResourceWarning, an error where a test
# suite makes warnings errors, as the pytest plugin's users may): those go as a BytesIO, written
# in 64 KiB pieces with the event loop let run between them. It shares the bytes: no copy.
_LARGE_BODY: Final = 1 << 20


def _payload(body: bytes) -> bytes | io.BytesIO | None:
    if not body:
        return None
    return io.BytesIO(body) if len(body) > _LARGE_BODY else body


def _where(request: OutboundRequest) -> str:
    """The request, for a message: method, the upstream's origin and the path, keys in it
    fingerprinted and cut at 200 characters (made only for an error)."""
    url = request.url
    path = redact_path(url.raw_path)
    shown = path[:200] + ("..." if len(path) > 200 else "")
    return f"{request.method} {url.scheme}://{url.host}:{url.port}{shown}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc or 'no detail'}"


class AiohttpTransport:
    """:class:`Transport` over a pooled :class:`aiohttp.ClientSession`.

    Bodies are read raw (``auto_decompress=False``) so the client gets the upstream's bytes
    unchanged; aiohttp adds none of its default headers (User-Agent, Accept...), so the upstream
    sees what the client sent.
    """

    def __init__(self, timeouts: Timeouts, connections: int = 1000) -> None:
        self.timeouts = timeouts
        self.connections = connections  # the pool's bound; more requests wait for a connection
        # Connect is bounded here; the time to headers and the idle time between body reads
        # are bounded in send() and _Body, so no total timeout cuts a long stream.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=timeouts.connect
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections, ttl_dns_cache=300),
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                # Whatever the upstream sends goes through: aiohttp's 8 KiB default would turn
                # a long header (a big Set-Cookie, a trace) into a 502.
                max_line_size=MAX_HEADER_BYTES,
                max_field_size=MAX_HEADER_BYTES,
            )
        return self._session

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        session = self._open()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeouts.headers):
                response = await session.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    data=_payload(request.body),
                    allow_redirects=False,
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise UpstreamUnreachable(
                f"cannot connect to the upstream for {_where(request)} within "
                f"{self.timeouts.connect:g} s"
            ) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"the upstream did not answer {_where(request)} within {self.timeouts.headers:g} s "
                "(--upstream-timeout, the time to the response's headers)"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnreachable(
                f"cannot connect to the upstream for {_where(request)}: "
                f"{exc.os_error.strerror or exc}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(
                f"the upstream broke the connection during {_where(request)}: {_describe(exc)}"
            ) from exc
        ttfb_ms = round((time.perf_counter() - started) * 1000, 3)
        if not 200 <= response.status <= 599:  # 1xx is never final here; 0xx, 6xx are not HTTP
            response.close()
            raise UpstreamBroken(
                f"the upstream answered {_where(request)} with status {response.status:03d}, "
                "which is not a final HTTP status; nothing was passed on"
            )
        if _UNSENDABLE.search("\t".join([response.reason or "", *_flat(response.headers)])):
            response.close()
            raise UpstreamBroken(
                f"the upstream answered {_where(request)} with a control character in its status "
                "line or headers, which cannot be passed on (it could inject headers); nothing "
                "was passed on"
            )
        head = ResponseHead(
            status=response.status,
            reason=response.reason or "",
            headers=end_to_end(response.headers),
            content_length=_declared_length(response),
        )
        return UpstreamResponse(head, _Body(response, self.timeouts.idle, request), ttfb_ms)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# What no HTTP server may send in a header (aiohttp refuses to: header injection); tab is allowed.
_UNSENDABLE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _flat(headers: CIMultiDictProxy[str]) -> list[str]:
    return [text for pair in headers.items() for text in pair]


def _declared_length(response: aiohttp.ClientResponse) -> int | None:
    """The upstream's Content-Length, unless the body was sent chunked (which then wins)."""
    if "chunked" in response.headers.get("Transfer-Encoding", "").lower():
        return None
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None
