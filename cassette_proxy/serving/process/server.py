"""The HTTP server under the proxy application: its connections, their limits, and requests
aiohttp's parser rejects.

- **Timeouts** (nginx's): a request's headers must arrive whole within ``--header-timeout``
  (60 s) of their first byte, and an idle keep-alive connection is closed after
  ``--keepalive-timeout`` (75 s), so slowloris and forgotten connections give their sockets back.
- **A cap on open connections** (``--max-connections``). Beyond it a new connection takes the
  place of another, chosen as nginx frees "reusable" connections and Envoy resets the streams
  that cost it most, in this order: the longest idle keep-alive connection; the oldest one still
  sending its headers; one that has sent nothing for :data:`~cassette_proxy.serving.body.GRACE`;
  and the request whose body comes slowest, below ``--body-min-rate``. A connection given
  up is answered (a 503 ``proxy_overloaded`` in the OpenAI envelope, ``x-should-retry: true``;
  its request may be unread in the kernel's buffer, so it is never closed silently) and logged
  as ``connection_evicted``. If none may be given up, the new connection gets the same 503 and
  a ``connection_refused`` line. A connection answered before its request was read whole
  lingers as nginx's does (what the client still sends is dropped until it closes, is quiet for
  :data:`LINGER_QUIET`, or :data:`LINGER_MOST` has passed), so a client still sending reads its
  answer rather than a reset; past :data:`REFUSING_MAX` such connections (a burst, each holding
  a file descriptor) one is closed at once, after what it sent so far is read.

aiohttp keeps the per-connection state these need in private attributes (``_messages``,
``_request_in_progress``, the server's ``_connections``); they are read here, in this one
module, and pinned by tests (``tests/serving/process/test_server.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
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

from cassette_proxy.errors import HTTPRefusal, ProxyOverloaded, ShutdownCut
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
from cassette_proxy.serving.body import GRACE, BodyRead
from cassette_proxy.serving.observers.log import AuditLog

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
    body_min_rate: int = 500


Overloaded = ProxyOverloaded  # the answer to a connection the cap has no room for
# After an answer given without the request read whole, the connection is kept open, what the
# client still sends read and dropped, until it closes, sends nothing for LINGER_QUIET, or for
# LINGER_MOST in all (nginx's lingering_close, lingering_timeout and lingering_time): closed
# with data unread, the kernel would reset it, and a client still sending lose its answer.
LINGER_QUIET: Final = 1.0
LINGER_MOST: Final = 10.0
# Connections lingering so, at most; past it (a burst, each holding a file descriptor), one is
# closed at once, with what it had sent read and dropped first so that the close is a FIN.
REFUSING_MAX: Final = 16


@dataclass(slots=True)
class _Pool:
    """What the server's connections share: how many are being closed after an answer."""

    refusing: int = 0


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
    pool: _Pool
    body_read: BodyRead | None = None  # the request body being read, while it is
    _header_timer: asyncio.TimerHandle | None = None
    _refused = False
    _closing: asyncio.TimerHandle | None = None
    _lingering_since = 0.0
    _accepted = 0.0  # when the connection was accepted (loop time)
    _head_started = 0.0  # when the head being received began
    _active = 0.0  # when bytes last came
    _answered = 0  # responses finished; aiohttp's _request_count counts the heads received

    @property
    def idle(self) -> bool:
        """Open, and every request it sent answered: idle, or still sending its headers. (Not
        aiohttp's own state: between a head's parsing and its handler's start, it has neither
        a message waiting nor a request in progress.)"""
        return self.transport is not None and self._request_count == self._answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._accepted = self._active = self._loop.time()

    def place_in_line(self, now: float) -> tuple[int, float] | None:
        """Where this connection stands among those that may make room for a new one (the
        least first), or None if it may not: its rank (0 idle after a request, 1 still sending
        its headers, 2 silent for :data:`GRACE` since accepted, 3 a body read for as long and
        slower than --body-min-rate) and, within it, the oldest (or slowest) first. A connection
        accepted a moment ago may hold a whole request the loop has not read yet: in a burst,
        the newest connection is refused rather than an older one given up (first come, first
        served)."""
        if self._refused or self.transport is None or self.transport.is_closing():
            return None  # on its way out already
        if self.idle:
            if self._header_timer is not None:  # a head on its way: what slowloris holds
                return 1, self._head_started
            if self._answered:
                return 0, self._active
            return (2, self._accepted) if now - self._accepted >= GRACE else None
        body = self.body_read
        if body is not None and body.slow(now, self.limits.body_min_rate):
            return 3, body.rate(now)
        return None

    def make_room(self, rank: int, answer: bytes) -> None:
        """Give the connection up for a new one: answered 503 as it stands (a body being read
        ends in the middleware's answer), and logged."""
        why = (
            "idle after its request",
            "still sending its headers",
            "nothing sent since accepted",
            "a request body slower than --body-min-rate",
        )[rank]
        self.audit_log.lifecycle(
            "connection_evicted",
            reason=why,
            limit=self.limits.max_connections,
            seconds=round(self._loop.time() - self._accepted, 3),
        )
        if rank == 3 and self.body_read is not None:
            self.body_read.evict()
        else:
            self.refuse(answer)

    def refuse(self, answer: bytes) -> None:
        """Answer without reading (more of) a request, then linger: what the client still
        sends is dropped, and the connection closes when it closes, sends nothing for
        :data:`LINGER_QUIET`, or after :data:`LINGER_MOST`."""
        if self._refused:
            return
        self._refused = True
        self.pool.refusing += 1
        transport = self.transport
        if transport is None:
            return
        if self.pool.refusing > REFUSING_MAX:  # a burst: no file descriptor to keep it open
            _drop_what_came(transport)
            transport.write(answer)
            self.force_close()  # the answer is flushed first
            return
        if answer:
            transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        self._lingering_since = self._active = self._loop.time()
        self._closing = self._loop.call_later(LINGER_QUIET, self._linger)

    def _linger(self) -> None:
        now = self._loop.time()
        quiet_until = self._active + LINGER_QUIET
        until = min(quiet_until, self._lingering_since + LINGER_MOST)
        if now >= until:
            self._closing = None
            self.force_close()
        else:
            self._closing = self._loop.call_at(until, self._linger)

    def data_received(self, data: bytes) -> None:
        self._active = self._loop.time()
        if self._refused:  # read and dropped: the answer has gone
            return
        if self._header_timer is None and self.idle:  # the first byte of a request's head
            self._head_started = self._active
            self._header_timer = self._loop.call_later(
                self.limits.header_timeout, self._headers_too_slow
            )
        super().data_received(data)
        if self._messages and self._header_timer is not None:  # the head is whole
            self._header_timer.cancel()
            self._header_timer = None

    def eof_received(self) -> None:
        if self._refused:  # the client has its answer and is done
            self.force_close()

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        """aiohttp's, and then, for an answer given while the body was still coming (too
        large, too slow, given up for a new client), the end of the connection as a refusal's
        (:meth:`refuse`): aiohttp would read on for 10 s whatever the client sends, and count
        the connection as one of the cap's meanwhile."""
        sent = await super().finish_response(request, resp, start_time)
        self._answered += 1
        if not resp.keep_alive and not request.content.is_eof() and self.transport is not None:
            self.refuse(b"")
        return sent

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
        if self._closing is not None:
            self._closing.cancel()
            self._closing = None
        if self._refused:
            self._refused = False
            self.pool.refusing -= 1
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


def _drop_what_came(transport: asyncio.BaseTransport) -> None:
    """Read and drop what the client has sent so far, straight from its socket (the loop has
    not read it yet, and will not: the connection is closed now)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError):  # nothing more there (EAGAIN), or closed
        fd = sock.fileno()
        for _ in range(16):  # at most 1 MiB: a request the proxy refuses is rarely more
            if not os.read(fd, 65536):
                return


class ProxyServer(Server):
    """aiohttp's server, making :class:`ConnectionHandler` for each connection and keeping
    their number within :attr:`Limits.max_connections`."""

    audit_log: AuditLog
    limits: Limits
    pool: _Pool

    def __call__(self) -> RequestHandler:
        # Server.__call__ with our handler class; _loop and _kwargs are what it passes too.
        handler = ConnectionHandler(self, loop=self._loop, **self._kwargs)
        handler.audit_log = self.audit_log
        handler.limits = self.limits
        handler.pool = self.pool
        return handler

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        # Connections being closed after their answer are on their way out: not counted.
        if len(self._connections) - self.pool.refusing <= self.limits.max_connections:
            return
        now = self._loop.time()
        best: tuple[tuple[int, float], ConnectionHandler] | None = None
        for other in self._connections:
            if other is handler or not isinstance(other, ConnectionHandler):
                continue
            place = other.place_in_line(now)
            if place is not None and (best is None or place < best[0]):
                best = place, other
        answer = _overloaded(self.limits.max_connections)
        if best is not None:
            best[1].make_room(best[0][0], answer)
            return
        self.audit_log.lifecycle(
            "connection_refused", reason="max_connections", limit=self.limits.max_connections
        )
        assert isinstance(handler, ConnectionHandler)
        handler.refuse(answer)


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
            settings.header_timeout,
            settings.keepalive_timeout,
            settings.max_connections,
            settings.body_min_rate,
        )
        server.pool = _Pool()
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


@functools.lru_cache(maxsize=4)  # one limit a server: made once, not once a refusal
def _overloaded(limit: int) -> bytes:
    """A whole HTTP response for a connection refused or given up without its request read."""
    body = (
        Overloaded(
            f"cassette-proxy has {limit} connections open, each in a request or newer than a "
            "second (--max-connections); this one was not read, so nothing was forwarded: try "
            "again shortly"
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
