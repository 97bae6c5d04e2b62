"""The network, behind one seam.

Everything the proxy sends to the upstream goes through :meth:`Transport.send`. The aiohttp
implementation is the only place that knows about sockets, and the only place aiohttp's client
exceptions are translated into :mod:`cassette_proxy.errors`. Tests and replay never need a socket
they did not ask for: replay never calls the transport at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from cassette_proxy.errors import UpstreamBroken, UpstreamTimeout, UpstreamUnreachable
from cassette_proxy.models.http import ProxyResponse, end_to_end

MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """A request as it will be sent upstream: absolute URL, final headers, body."""

    method: str
    url: URL  # built with encoded=True, so percent-encoding reaches the upstream unchanged
    headers: CIMultiDictProxy[str]
    body: bytes


class Transport(Protocol):
    """Sends one request upstream and returns its complete response."""

    async def send(self, request: OutboundRequest) -> ProxyResponse: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """:class:`Transport` over a pooled :class:`aiohttp.ClientSession`.

    Bodies are read raw (``auto_decompress=False``) so the client gets the upstream's bytes
    unchanged; aiohttp adds none of its default headers (User-Agent, Accept...), so the upstream
    sees what the client sent.
    """

    def __init__(self, *, timeout: float, connect_timeout: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(connect_timeout, timeout))
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
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

    async def send(self, request: OutboundRequest) -> ProxyResponse:
        session = self._open()
        where = f"{request.method} {request.url.scheme}://{request.url.host}:{request.url.port}"
        try:
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body or None,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return ProxyResponse(
                    status=response.status,
                    reason=response.reason or "",
                    headers=end_to_end(response.headers),
                    body=body,
                )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"the upstream did not answer {where} within {self._timeout.total:g} s "
                "(--upstream-timeout)"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnreachable(
                f"cannot connect to the upstream for {where}: {exc.os_error.strerror or exc}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(
                f"the upstream broke the connection during {where}: "
                f"{type(exc).__name__}: {exc or 'no detail'}"
            ) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
