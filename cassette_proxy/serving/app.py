"""The aiohttp application: state, routes, and the one middleware every exchange passes.

The middleware is the one place where errors become responses (before a response's headers have
gone; after, :mod:`cassette_proxy.serving.relay` ends it) and where the exchange is logged, once its
last byte has gone. ``X-Proxy-Source`` and ``X-Proxy-Validation`` come from the exchange
(:meth:`~cassette_proxy.serving.exchange.Exchange.labels`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import traceback
from collections.abc import AsyncIterator
from functools import partial
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from cassette_proxy import otel
from cassette_proxy.contract import classify
from cassette_proxy.errors import (
    ClientDisconnected,
    HTTPRefusal,
    InternalError,
    ProxyError,
    ProxyMethodNotAllowed,
    ProxyRouteNotFound,
)
from cassette_proxy.matching.hints import REWIND, Hints, ServeHints
from cassette_proxy.models.errors import ErrorBody, ErrorEnvelope
from cassette_proxy.models.events import MessageRecord
from cassette_proxy.models.http import DATA_LOGGING_HEADER, data_logging_refused
from cassette_proxy.redact import redact_path
from cassette_proxy.redact.rules import rule_set
from cassette_proxy.serving.cassettes import Cassettes, log_closed, log_opened
from cassette_proxy.serving.exchange import PROXY, SOURCE_HEADER, VALIDATION_HEADER, Exchange
from cassette_proxy.serving.handler import Pipeline, handle, refuse_foreign_target
from cassette_proxy.serving.observers.log import AuditLog
from cassette_proxy.serving.observers.metrics import CONTENT_TYPE, Metrics
from cassette_proxy.serving.observers.recent import RecentExchanges
from cassette_proxy.serving.observers.tokens import TokenLedger
from cassette_proxy.serving.process.peers import Peers
from cassette_proxy.serving.process.readiness import Readiness
from cassette_proxy.serving.upstream import AiohttpTransport, Timeouts, Transport
from cassette_proxy.settings import Settings
from cassette_proxy.store.filters import RecordFilters
from cassette_proxy.store.recorder import Recorder

PIPELINE = web.AppKey("pipeline", Pipeline)
METRICS = web.AppKey("metrics", Metrics)
AUDIT_LOG = web.AppKey("audit_log", AuditLog)
EXCHANGE = web.RequestKey("exchange", Exchange)
READINESS = web.AppKey("readiness", Readiness)
TOKENS = web.AppKey("tokens", TokenLedger)
PEERS = web.AppKey("peers", Peers)  # the other workers, with --workers

__all__ = ["SOURCE_HEADER", "VALIDATION_HEADER", "build_app", "error_response"]

OWN_SEGMENT = "_proxy"  # the first path segment of the proxy's own routes; never forwarded
OWN_PREFIX = f"/{OWN_SEGMENT}/"
CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection first
CONTROL_ROUTES = (  # with serve --admin (cassette_proxy.serving.control)
    "GET|PUT|DELETE /_proxy/cassette, POST /_proxy/cassette/rewind, "
    "GET|DELETE /_proxy/exchanges, GET|POST|DELETE /_proxy/faults, DELETE /_proxy/faults/{id}"
)


def error_response(error: ProxyError) -> web.Response:
    headers = {"Content-Type": "application/json"}
    # The openai client retries 408, 409, 429 and >= 500 unless told otherwise; only a broken
    # or slow upstream is worth another try.
    if error.retryable is not None:
        headers["x-should-retry"] = "true" if error.retryable else "false"
    headers.update(error.headers)
    response = web.Response(status=error.status, body=error.envelope().to_json(), headers=headers)
    if error.closes:  # a body was left unread: the connection ends with the answer
        response.force_close()
    return response


def as_proxy_error(exc: Exception, request: web.Request) -> ProxyError:
    """Any exception from a handler as the error the proxy answers with."""
    if isinstance(exc, ProxyError):
        return exc
    if isinstance(exc, web.HTTPException):  # aiohttp's own refusal, answered in our envelope
        return HTTPRefusal(
            exc.status,
            f"cassette-proxy cannot route {request.method} {request.raw_path[:200]!r}: "
            f"{exc.reason}",
        )
    # A bug: still answered in the envelope, and logged with its traceback.
    request.app[AUDIT_LOG].lifecycle(
        "internal_error",
        method=request.method,
        path=redact_path(request.raw_path),
        traceback=traceback.format_exc(),
    )
    return InternalError(
        f"cassette-proxy failed unexpectedly ({type(exc).__name__}); this is a bug, and the "
        "traceback is in the proxy's log as an internal_error event"
    )


@web.middleware
async def exchange_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    exchange = Exchange(
        classify(request.method, request.raw_path.partition("?")[0]),
        request.method,
        request.raw_path,
    )
    request[EXCHANGE] = exchange
    exchange.settle = partial(_settle, request.app, exchange)
    exchange.withheld = data_logging_refused(request.headers.get(DATA_LOGGING_HEADER))
    try:
        refuse_foreign_target(request)
        response = await handler(request)
    except asyncio.CancelledError:  # the client went away (aiohttp cancels its handler)
        if exchange.error is None:
            exchange.error = ClientDisconnected(
                "the client went away before the response was complete; the upstream request "
                "was dropped and nothing was recorded"
            )
        # nginx's 499 for an exchange whose client left before any response was sent.
        exchange.settle(exchange.answer or web.Response(status=CLIENT_CLOSED))
        raise
    except Exception as exc:  # every failure becomes an answer, here and only here
        exchange.error = as_proxy_error(exc, request)
        exchange.source = PROXY
        response = _answer(request, exchange.error)
    if response is not exchange.answer:  # the relay labels what it sends; the rest is ours
        response.headers.update(exchange.labels())
    exchange.settle(response)  # unless the relay did, before the response's last byte
    return response


# The answer when even an error's answer cannot be made (out of memory or file descriptors, say):
# made once, at import, so that it needs nothing then.
_LAST_RESORT: Final = InternalError(
    "cassette-proxy could not make its answer to this request (the process may be out of file "
    "descriptors or memory); the reason is in the proxy's log as an internal_error event"
)
_LAST_RESORT_BODY: Final = ErrorEnvelope(  # no secret to redact in it: not redacted
    ErrorBody(_LAST_RESORT.message, _LAST_RESORT.error_type, None, _LAST_RESORT.code)
).to_json()


def _answer(request: web.Request, error: ProxyError) -> web.Response:
    """The answer for ``error``; should making it fail, the last-resort envelope."""
    try:
        return error_response(error)
    except Exception:  # whatever failed, the client still gets an envelope
        with contextlib.suppress(Exception):
            request.app[AUDIT_LOG].lifecycle(
                "internal_error",
                method=request.method,
                path=redact_path(request.raw_path),
                traceback=traceback.format_exc(),
            )
        headers = {"Content-Type": "application/json", "x-should-retry": "false"}
        response = web.Response(status=_LAST_RESORT.status, body=_LAST_RESORT_BODY, headers=headers)
        response.force_close()
        return response


def _settle(app: web.Application, exchange: Exchange, response: web.StreamResponse) -> None:
    """Metrics and the log line for one exchange, once: before its last byte leaves, so a client
    that has its answer finds the exchange in the log."""
    if exchange.settled or not exchange.logged:
        return
    exchange.settled = True
    try:
        _account(app, exchange, response)
    except Exception as exc:  # the answer still goes out; the failure goes to stderr
        sys.stderr.write(f"cassette-proxy: cannot log an exchange: {exc!r}\n")


def _account(app: web.Application, exchange: Exchange, response: web.StreamResponse) -> None:
    """Tokens, spans, metrics and the log line for one exchange."""
    duration_ms = exchange.watch.ms()
    pipeline = app[PIPELINE]
    log = app[AUDIT_LOG]
    settings = pipeline.settings
    event = exchange.event(
        response,
        duration_ms,
        serialized_only=log.serialized_only,
        bodies=settings.log_bodies,
        instance=settings.instance_name,
    )
    # The token accounting reads the body the log line has just parsed, when it has it.
    logged = event.response.body if isinstance(event.response, MessageRecord) else None
    app[TOKENS].account(exchange, logged=logged)
    if pipeline.tracer is not None:
        try:
            pipeline.tracer.finished(exchange, response.status, duration_ms)
        except Exception as exc:  # a span lost is not worth the log line: said on stderr
            sys.stderr.write(f"cassette-proxy: cannot end an exchange's spans: {exc!r}\n")
    if exchange.answered is not None:
        event.model = exchange.answered.model
    event.tokens, event.trace_id = exchange.tokens, exchange.trace_id
    app[METRICS].observe(exchange, response.status, duration_ms)
    log.write(event)


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    return await handle(request.app[PIPELINE], request[EXCHANGE], request)


async def health_handler(request: web.Request) -> web.StreamResponse:
    request[EXCHANGE].logged = False
    pipeline = request.app[PIPELINE]
    settings = pipeline.settings
    recorder = pipeline.recorder  # the cassette loaded now (the control API may change it)
    body = {
        "status": "ok",
        "pid": os.getpid(),
        "instance": settings.instance_name,
        "mode": "pass-through" if recorder is None else recorder.mode.value,
        "upstream": settings.upstream_base,
        "validation": settings.validation.value,
        "cassette": str(recorder.path) if recorder else None,
        "interactions": len(recorder.cassette) if recorder else 0,
        "recorded": len(recorder.cassette.recorded) if recorder else 0,
        "played": recorder.cassette.played if recorder else 0,
    }
    return web.json_response(body)


async def ready_handler(request: web.Request) -> web.StreamResponse:
    """200 when ready to serve what it was configured for, else 503 saying why (not logged)."""
    request[EXCHANGE].logged = False
    request.app[READINESS].check(request.app[AUDIT_LOG])
    return web.json_response({"status": "ready", "pid": os.getpid()})


async def metrics_handler(request: web.Request) -> web.StreamResponse:
    request[EXCHANGE].logged = False
    metrics = request.app[METRICS]
    peers = request.app.get(PEERS)
    if peers is not None:  # --workers: this worker's counts and every other one's, summed
        summed = Metrics()
        summed.absorb(metrics.snapshot())
        for snapshot in await peers.gather():
            summed.absorb(snapshot)
        metrics = summed
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def internal_not_found(request: web.Request) -> web.StreamResponse:
    allowed = await _methods_of_own_route(request)
    if allowed:
        raise ProxyMethodNotAllowed(
            f"{request.method} {request.path} is not allowed; it takes {', '.join(allowed)}",
            allowed=allowed,
        )
    control = (
        "; the control API (/_proxy/cassette, /_proxy/exchanges, /_proxy/faults) is served "
        "with serve --admin only"
        if not request.app[PIPELINE].settings.admin
        else ", and the control API's: " + CONTROL_ROUTES
    )
    raise ProxyRouteNotFound(
        f"{request.method} {request.path} is not one of cassette-proxy's own routes; paths under "
        "/_proxy/ are never forwarded. Known: GET /_proxy/health, GET /_proxy/ready, "
        f"GET /_proxy/metrics{control}"
    )


async def _expect(request: web.Request) -> None:
    """``Expect: 100-continue`` gets its interim answer; any other expectation is ignored, as
    nginx does (aiohttp's own 417 would leave before the exchange is logged or enveloped)."""
    if request.headers.get("Expect", "").strip().lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def _methods_of_own_route(request: web.Request) -> list[str]:
    """The methods the proxy's own route at this path takes (none: no such route)."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if any(route.method == "*" for route in resource):  # the catch-alls
            continue
        _, methods = await resource.resolve(request)
        allowed |= methods
    return sorted(allowed)


def build_app(
    settings: Settings,
    *,
    transport: Transport | None = None,
    audit_log: AuditLog | None = None,
    filters: RecordFilters | None = None,
    hints: Hints | None = None,
) -> web.Application:
    """The proxy as an aiohttp application. Opens the cassette now, so a bad one fails here.
    ``filters`` and ``hints``: the pytest plugin's (vcrpy's hooks as functions; advice in its
    words)."""
    # The secret rules are read now: an error's answer redacts its message, and reading them
    # then, out of file descriptors, turned every 502 into aiohttp's bare 500.
    rule_set()
    # With the control API, a miss of recordings all played can be rewound, and says so.
    own = ServeHints(rewind=REWIND) if settings.admin else None
    recorder = Recorder(settings, filters, hints or own) if settings.cassette else None
    try:
        log = audit_log or AuditLog(settings.log_file)
    except BaseException:  # a start-up that fails leaves no lock or journal behind
        if recorder is not None:
            recorder.close()
        raise
    log.instance = settings.instance_name
    timeouts = Timeouts(headers=settings.upstream_timeout, idle=settings.upstream_idle_timeout)
    pipeline = Pipeline(
        settings,
        transport or AiohttpTransport(timeouts, settings.max_connections),
        recorder,
        tracer=otel.telemetry(settings),
    )
    app = web.Application(middlewares=[exchange_middleware], client_max_size=settings.max_body_size)
    app[PIPELINE] = pipeline
    app[AUDIT_LOG] = log
    app[METRICS] = Metrics()
    app[READINESS] = Readiness()
    app[TOKENS] = TokenLedger()
    steering = pipeline.steering
    steering.attach(Cassettes(pipeline, log, filters, hints))
    for rule in settings.faults:
        steering.faults.install(rule)
    app.router.add_get("/_proxy/health", health_handler)
    app.router.add_get("/_proxy/ready", ready_handler)
    app.router.add_get("/_proxy/metrics", metrics_handler)
    if settings.admin:  # the control API and what it reads: loaded and kept only when asked for
        from cassette_proxy.serving.control.routes import add_control_routes  # noqa: PLC0415

        steering.recent = RecentExchanges()
        log.tap = steering.recent.keep
        add_control_routes(app, settings.admin_token)
    app.router.add_route("*", OWN_PREFIX + "{tail:.*}", internal_not_found)
    app.router.add_route("*", "/{tail:.*}", proxy_handler, expect_handler=_expect)
    app.cleanup_ctx.append(_lifecycle)
    if recorder is not None:
        log_opened(log, recorder)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    pipeline = app[PIPELINE]
    log = app[AUDIT_LOG]
    try:
        await pipeline.transport.close()
        if pipeline.tracer is not None:  # the batch processor's last spans, sent now
            await pipeline.tracer.close()
        if pipeline.steering.cassettes is not None:  # per-request ones, and those replaced
            await pipeline.steering.cassettes.close()
        if pipeline.recorder is not None:
            log_closed(log, pipeline.recorder.close())
    finally:
        log.close()
