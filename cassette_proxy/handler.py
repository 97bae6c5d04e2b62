"""The path a proxied request takes.

    read ─ check request ─┬─ replay from the cassette ───────────┬─ check response ─ answer
                          └─ forward upstream ─ record if recording ┘

Each step is one function below; :func:`handle` runs them in order. Anything that makes the
proxy answer by itself is raised as a :class:`cassette_proxy.errors.ProxyError` and turned into a
response by the middleware in :mod:`cassette_proxy.app`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from vcr.request import Request as VcrRequest
from yarl import URL

from cassette_proxy.errors import (
    BodyTooLarge,
    ClientDisconnected,
    ContractRejected,
    RefusedTarget,
    ResponseRejected,
)
from cassette_proxy.exchange import CASSETTE, UPSTREAM, Exchange
from cassette_proxy.log import Stopwatch
from cassette_proxy.models.http import ProxyRequest, ProxyResponse, end_to_end
from cassette_proxy.recorder import Recorder
from cassette_proxy.redact import redact_bytes, redact_header, redact_path
from cassette_proxy.settings import Settings, ValidationMode
from cassette_proxy.upstream import OutboundRequest, Transport
from cassette_proxy.validation import check_request, check_response

# Request headers that describe the hop to the proxy, not the request: never forwarded.
NOT_FORWARDED = frozenset({"host", "expect"})


@dataclass(frozen=True, slots=True)
class Pipeline:
    """What a request needs on its way: settings, the network, and the cassette if any."""

    settings: Settings
    transport: Transport
    recorder: Recorder | None

    @property
    def validating(self) -> bool:
        return self.settings.validation is not ValidationMode.OFF

    @property
    def strict(self) -> bool:
        return self.settings.validation is ValidationMode.STRICT


# Escapes that can spell a dot segment: ".", the separators some servers decode before they
# route ("/" and "\\"), and ";", which starts path parameters some servers drop ("/..;/").
_SEGMENT_ESCAPES: Final = {"2e": ".", "2f": "/", "5c": "\\", "3b": ";"}
_SEGMENT_ESCAPE: Final = re.compile(r"%(2e|2f|5c|3b)", re.IGNORECASE)
_SEPARATOR: Final = re.compile(r"[/\\]")


def has_dot_segment(raw_path: str) -> bool:
    """Whether the path (no query) has a ``.`` or ``..`` segment, spelt plainly, as ``%2e``,
    between encoded slashes or backslashes (``resp%2F..%2Fadmin``), or with path parameters
    (``..;x``, which servers such as Tomcat read as ``..``)."""
    if "." not in raw_path and "%2" not in raw_path.lower():
        return False  # most paths: no dot, nothing encoded that could make one
    decoded = _SEGMENT_ESCAPE.sub(lambda m: _SEGMENT_ESCAPES[m[1].lower()], raw_path)
    return any(part.partition(";")[0] in {".", ".."} for part in _SEPARATOR.split(decoded))


def refuse_foreign_target(request: web.Request) -> None:
    """Refuse what an open proxy would take: CONNECT, absolute-form or authority targets, and
    paths with dot segments, which a server that normalises them would route outside the
    upstream's path (``/api/v1/../../admin``)."""
    if request.method == "CONNECT" or not request.raw_path.startswith("/"):
        raise RefusedTarget(
            f"cassette-proxy is a reverse proxy for one configured upstream, not an open proxy: "
            f"{request.method} {redact_path(request.raw_path)[:200]!r} is refused; send "
            "origin-form requests "
            "such as POST /v1/responses/{id}/cancel"
        )
    if has_dot_segment(request.raw_path.partition("?")[0]):
        raise RefusedTarget(
            f"cassette-proxy refuses {request.method} {redact_path(request.raw_path)[:200]!r}: "
            "its path has a '.' or '..' segment (plain or percent-encoded), which a server that "
            "normalises paths would route outside the upstream's API; nothing was forwarded. "
            "Send the path without dot segments"
        )


async def read_request(request: web.Request, max_body_size: int) -> ProxyRequest:
    """The client's request, refused if its body is over the limit."""
    declared = request.content_length
    if declared is not None and declared > max_body_size:
        raise BodyTooLarge(_too_large(declared, max_body_size))
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BodyTooLarge(_too_large(None, max_body_size)) from exc
    except ConnectionResetError as exc:
        raise ClientDisconnected(
            f"the connection was lost while reading the body of {request.method} "
            f"{redact_path(request.raw_path)[:200]!r}; nothing was forwarded"
        ) from exc
    return ProxyRequest(request.method, request.raw_path, end_to_end(request.headers), body)


def _too_large(size: int | None, limit: int) -> str:
    got = f"is {size} bytes" if size is not None else "is larger"
    return (
        f"request body {got}, over the proxy's limit of {limit} bytes; nothing was forwarded "
        "(raise --max-body-size if this is expected)"
    )


def outbound(incoming: ProxyRequest, settings: Settings) -> OutboundRequest:
    """The request as the upstream gets it: same method, raw path, query and body; the upstream's
    Host; the configured key instead of the client's when one is set."""
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value)
        for name, value in incoming.headers.items()
        if name.lower() not in NOT_FORWARDED
    )
    if settings.upstream_api_key is not None:
        headers["Authorization"] = f"Api-Key {settings.upstream_api_key.get_secret_value()}"
    url = URL(settings.upstream_base + incoming.raw_path, encoded=True)
    return OutboundRequest(incoming.method, url, CIMultiDictProxy(headers), incoming.body)


def as_recorded(request: OutboundRequest) -> VcrRequest:
    """The request as a cassette stores it (and matches it): absolute URI, secrets redacted."""
    url = request.url
    origin = str(url.origin())
    headers = {str(name): redact_header(name, value) for name, value in request.headers.items()}
    return VcrRequest(
        request.method,
        origin + redact_path(url.raw_path_qs),
        redact_bytes(request.body),
        headers,
    )


async def fetch(pipeline: Pipeline, exchange: Exchange, request: OutboundRequest) -> ProxyResponse:
    """Replay the request or forward it (and record it), as the record mode says."""
    recorder = pipeline.recorder
    if recorder is None:
        return await _forward(pipeline, exchange, request)
    recorded_request = as_recorded(request)
    interaction = recorder.play(recorded_request)
    if interaction is not None:
        exchange.source = CASSETTE
        return interaction.replay
    if not recorder.policy.record:
        raise recorder.miss(recorded_request)
    response = await _forward(pipeline, exchange, request)
    recorder.record(recorded_request, response)
    exchange.recorded = True
    return response


async def _forward(
    pipeline: Pipeline, exchange: Exchange, request: OutboundRequest
) -> ProxyResponse:
    watch = Stopwatch()
    try:
        return await pipeline.transport.send(request)
    finally:
        exchange.upstream_ms = watch.ms()


async def handle(pipeline: Pipeline, exchange: Exchange, request: web.Request) -> ProxyResponse:
    """Run one request through the proxy; the response for the client."""
    settings = pipeline.settings
    incoming = await read_request(request, settings.max_body_size)
    exchange.request = incoming
    if pipeline.validating:
        exchange.request_check = check_request(
            exchange.route, incoming, injecting_key=settings.upstream_api_key is not None
        )
        if pipeline.strict and exchange.request_check.errors:
            raise ContractRejected(exchange.request_check.errors)
    response = await fetch(pipeline, exchange, outbound(incoming, settings))
    exchange.response = response
    if exchange.source != CASSETTE:
        exchange.source = UPSTREAM
    if pipeline.validating:
        exchange.response_check = check_response(exchange.route, response)
        if pipeline.strict and exchange.response_check.errors:
            raise ResponseRejected(response.status, exchange.response_check.errors)
    return response
