"""The HTTP server under the proxy application: its connections, their limits, and requests
aiohttp's parser rejects.

- **Timeouts** (nginx's): a request's headers must arrive whole within ``--header-timeout``
  (60 s) of their first byte, and an idle keep-alive connection is closed after
  ``--keepalive-timeout`` (75 s), so slowloris and forgotten connections give their sockets back.
- **A cap on open connections** (``--max-connections``). Beyond it a new connection takes the
  place of the oldest one that is not in a request (idle, or still sending its headers), so a
  flood of slow or idle connections cannot starve real clients; if every connection is busy with
  a request, the new one gets a 503 in the OpenAI envelope and is closed.

aiohttp keeps the per-connection state these need in private attributes (``_messages``,
``_request_in_progress``, the server's ``_connections``); they are read here, in this one
module, and pinned by tests (``tests/serving/test_server.py``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.hdrs import EXPECT
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

from cassette_proxy.errors import HTTPRefusal, ProxyError, ShutdownCut
from cassette_proxy.models.violations import Verdict
from cassette_proxy.redact import redact_path
from cassette_proxy.serving.app import (
    AUDIT_LOG,
    EXCHANGE,
    OWN_SEGMENT,
    PIPELINE,
    SOURCE_HEADER,
    VALIDATION_HEADER,
    error_response,
    exchange_middleware,
    proxy_handler,
)
from cassette_proxy.serving.log import AuditLog

_LLHTTP_MESSAGE: Final = re.compile(r"(?P<reason>[A-Za-z][A-Za-z0-9 ,'-]{0,100}):\n\n  b['\"]")
# aiohttp's parser refuses request lines and headers over 8 KiB with a bare text/plain 400,
# before the proxy can answer in its envelope; 64 KiB lets long ids reach the proxy's own checks.
# Request bodies are read as they came: aiohttp would otherwise decompress a gzip-labelled body
# (and fail with a 500 on one that is not gzip), and the proxy would forward it changed.
RUNNER_OPTIONS: Final[dict[str, Any]] = {
    "max_line_size": 64 * 1024,
    "max_field_size": 64 * 1024,
    "auto_decompress": False,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection may hold and for how long."""

    header_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_connections: int = 1000


SERVICE_UNAVAILABLE: Final = 503


class Overloaded(ProxyError):
    status = SERVICE_UNAVAILABLE
    error_type = "proxy_error"
    code = "proxy_overloaded"
    retryable = True


class ConnectionHandler(RequestHandler):
    """aiohttp's handler of one connection, with a header timeout, and with an answer of our
    own for requests its HTTP parser rejects.

    aiohttp answers those itself, before any application code runs, with a text/plain 400 that
    quotes the offending request line or header, and logs a traceback quoting it too: a
    credential in that line would leak to the client, to stderr and to whatever collects it.
    Here they get the OpenAI error envelope like every other refusal, with aiohttp's reason and
    never the raw bytes, and an ``unparsable_request`` event in the audit log, holding only the
    reason, instead of the traceback.
    """

    audit_log: AuditLog
    limits: Limits
    _header_timer: asyncio.TimerHandle | None = None
    _refused = False

    @property
    def idle(self) -> bool:
        """Open, not in a request, and none waiting: idle, or still sending its headers."""
        return self.transport is not None and not self._request_in_progress and not self._messages

    def refuse(self, answer: bytes) -> None:
        """Answer before reading any request, then close once the client has had time to send
        what it was sending (closing a socket with unread data would reset the answer away)."""
        self._refused = True
        if self.transport is not None:
            self.transport.write(answer)
            if self.transport.can_write_eof():
                self.transport.write_eof()
        self._loop.call_later(1.0, self.force_close)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped: the answer has gone
        if self._header_timer is None and self.idle:  # the first byte of a request's head
            self._header_timer = self._loop.call_later(
                self.limits.header_timeout, self._headers_too_slow
            )
        super().data_received(data)
        if self._messages and self._header_timer is not None:  # the head is whole
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.idle and self.transport is not None:
            self.audit_log.lifecycle(
                "connection_closed", reason="header_timeout", seconds=self.limits.header_timeout
            )
            self.force_close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109 - aiohttp's
        """aiohttp's drain, with ``timeout`` as a hard deadline for this connection.

        aiohttp waits ``timeout`` for the request in progress, then cancels it and waits up to
        ``timeout`` again for the handler (2x the grace, or longer for a handler that outlives
        its cancellation: 44 s and 62 s for a 30 s grace were measured). Here a request still
        running at the deadline is cut: its handler is cancelled, its connection closed, and
        nothing of it is recorded."""
        request = self._current_request
        try:
            async with asyncio.timeout(timeout):
                await super().shutdown(timeout)
        except TimeoutError:
            exchange = request.get(EXCHANGE) if request is not None else None
            if exchange is not None:  # logged as cut, not as a client that went away
                exchange.error = ShutdownCut(
                    f"the proxy was stopping, and this request was still running after "
                    f"--shutdown-timeout ({timeout:g} s): it was cut, and nothing of it recorded"
                )
            if request is not None:
                self.audit_log.lifecycle(
                    "request_cut",
                    method=request.method,
                    path=redact_path(request.raw_path),
                    shutdown_timeout=timeout,
                )
            if self._task_handler is not None:
                self._task_handler.cancel()
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        # llhttp's messages are "<reason>:\n\n  b'<the raw line>'\n  ^": the reason is kept.
        # Any other shape may hold request bytes in its first line (LineTooLong: "Got more
        # than 65536 bytes when reading: b'...'"; the pure-Python parser's "Bad HTTP method in
        # status line '<line>'"), so only the exception's class name is used then.
        shaped = _LLHTTP_MESSAGE.match(message or "")
        reason = shaped["reason"] if shaped else type(exc).__name__
        self.audit_log.lifecycle("unparsable_request", status=status, reason=reason)
        response = error_response(
            HTTPRefusal(
                status,
                f"cassette-proxy could not parse the request ({reason}), so nothing was "
                "forwarded; the offending line is not quoted, as it may hold a credential",
            )
        )
        response.headers[SOURCE_HEADER] = "proxy"
        response.headers[VALIDATION_HEADER] = Verdict.SKIPPED.value
        response.force_close()
        return response


class ProxyServer(Server):
    """aiohttp's server, making :class:`ConnectionHandler` for each connection and keeping
    their number within :attr:`Limits.max_connections`."""

    audit_log: AuditLog
    limits: Limits

    def __call__(self) -> RequestHandler:
        # Server.__call__ with our handler class; _loop and _kwargs are what it passes too.
        handler = ConnectionHandler(self, loop=self._loop, **self._kwargs)
        handler.audit_log = self.audit_log
        handler.limits = self.limits
        return handler

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) <= self.limits.max_connections:
            return
        # The oldest connection not in a request makes room (dicts keep insertion order).
        for other in self._connections:
            if other is not handler and isinstance(other, ConnectionHandler) and other.idle:
                other.force_close()
                return
        self.audit_log.lifecycle(
            "connection_refused", reason="max_connections", limit=self.limits.max_connections
        )
        assert isinstance(handler, ConnectionHandler)
        handler.refuse(_overloaded(self.limits.max_connections))


class ProxyRunner(web.AppRunner):
    """aiohttp's runner for ``app``, serving a proxy application with :class:`ProxyServer`."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        audit_log = self.app.get(AUDIT_LOG)
        if audit_log is None:  # not a proxy (ServerThread also serves test upstreams)
            return server
        # The app's server as aiohttp configured it, given our connection handler: ProxyServer adds
        # no state of its own, so it can take over the instance.
        server.__class__ = ProxyServer
        assert isinstance(server, ProxyServer)
        server.audit_log = audit_log
        settings = self.app[PIPELINE].settings
        server.limits = Limits(
            settings.header_timeout, settings.keepalive_timeout, settings.max_connections
        )
        server.request_handler = _proxied_directly(self.app, server.request_handler)
        return server


def _proxied_directly(
    app: web.Application, general: Callable[[BaseRequest], Awaitable[web.StreamResponse]]
) -> Callable[[BaseRequest], Awaitable[web.StreamResponse]]:
    """The server's request handler: proxied paths go straight to the middleware and the proxy
    handler, skipping aiohttp's router, which for them can only find the catch-all route (its
    resolve and match info were ~7% of a replay's CPU). Paths whose first segment is ``_proxy``
    or holds an escape (``/%5Fproxy/`` is ``/_proxy/`` to the router), and requests with
    ``Expect`` (aiohttp's router answers ``100-continue``), take the application's way, as does
    every request of an application with other middlewares than the proxy's one."""
    if tuple(app.middlewares) != (exchange_middleware,):
        return general
    route = next(route for route in app.router.routes() if route.handler is proxy_handler)
    proxied = UrlMappingMatchInfo({}, route)  # what the router would find, made once
    proxied.add_app(app)
    proxied.freeze()

    async def handle(request: BaseRequest) -> web.StreamResponse:
        first = request.raw_path[1:].partition("/")[0]
        if first == OWN_SEGMENT or "%" in first or EXPECT in request.headers:
            return await general(request)
        proxying = cast(web.Request, request)  # the application's runner makes web.Requests
        proxying._match_info = proxied  # read by request.app, as the router would have set it
        return await exchange_middleware(proxying, proxy_handler)

    return handle


def _overloaded(limit: int) -> bytes:
    """A whole HTTP response for a connection refused before any request was read."""
    body = (
        Overloaded(
            f"cassette-proxy has {limit} connections open, each in a request (--max-connections); "
            "try again shortly"
        )
        .envelope()
        .to_json()
    )
    return (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        + f"{SOURCE_HEADER}: proxy\r\n{VALIDATION_HEADER}: skipped\r\n".encode()
        + b"x-should-retry: true\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
