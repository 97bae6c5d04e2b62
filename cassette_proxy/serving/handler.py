"""The path a proxied request takes.

    read ─ check request ─ (steer) ─┬─ replay from the cassette ─────────────────┬─ relay: headers,
                                    └─ forward upstream (headers, then the body) ┘  then each chunk
                                                     └─ tee (≤ cap): check, record, log ┘

Each step is one function below; :func:`handle` runs them in order. *Steer*
(:mod:`cassette_proxy.serving.steering`) is taken only when something was installed to change
the path (a fault rule, a cassette being replaced) or the request names its cassette
(``X-Cassette-Proxy-Cassette``): it picks the request's cassette and lets a fault rule act,
before the headers or (:func:`cassette_proxy.serving.faults.faulted_body`) on an event stream's
body.

Nothing is held back: the upstream's headers go to the client when they arrive and its body as
it arrives (:mod:`cassette_proxy.serving.relay`); validation, recording and the log observe a
bounded copy through the tee (:mod:`cassette_proxy.serving.tee`) and conclude before the
client's last byte.
Anything that makes the proxy answer by itself before the headers have gone is raised as a
:class:`cassette_proxy.errors.ProxyError` and turned into a response by the middleware in
:mod:`cassette_proxy.serving.app`; after the headers, the relay ends the response as best it can.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from typing import Final

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from vcr.request import Request as VcrRequest
from yarl import URL

from cassette_proxy import otel
from cassette_proxy.contract import (
    Checked,
    Route,
    check_request,
    check_response,
    stream_checker,
)
from cassette_proxy.errors import (
    ClientDisconnected,
    ContractRejected,
    RefusedTarget,
    ResponseRejected,
    UpstreamUnreachable,
)
from cassette_proxy.models.http import (
    NOT_FORWARDED,
    ProxyRequest,
    ProxyResponse,
    Timing,
    end_to_end,
)
from cassette_proxy.models.violations import Violation
from cassette_proxy.redact import redact_path
from cassette_proxy.serving.body import read_body
from cassette_proxy.serving.exchange import CASSETTE, UPSTREAM, Exchange
from cassette_proxy.serving.faults import Fired, faulted_body
from cassette_proxy.serving.observers.log import BODY_LIMIT
from cassette_proxy.serving.relay import send_known, stream
from cassette_proxy.serving.replay import FramesBody, frames_of, head_of, stream_record
from cassette_proxy.serving.steering import CASSETTE_KEY, Steering
from cassette_proxy.serving.tee import Captured, Tee
from cassette_proxy.serving.upstream import OutboundRequest, Transport, UpstreamResponse
from cassette_proxy.settings import Settings, ValidationMode
from cassette_proxy.sse import decode_all, is_event_stream
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.hygiene import HOOK_DROPPED
from cassette_proxy.store.recorder import Recorder


@dataclass(slots=True)
class Pipeline:
    """What a request needs on its way: settings, the network, and the cassette if any.

    ``recorder`` is the proxy's cassette now: the control API replaces it while the proxy runs
    (:mod:`cassette_proxy.serving.cassettes`), and a request keeps the one it was given."""

    settings: Settings
    transport: Transport
    recorder: Recorder | None
    tracer: otel.Tracer | None = None  # OpenTelemetry, when the OTEL_* variables ask for it
    steering: Steering = field(default_factory=Steering)

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


async def read_request(request: web.Request, settings: Settings) -> ProxyRequest:
    """The client's request, refused if its body is over the limit or comes too slowly
    (:mod:`cassette_proxy.serving.body`)."""
    try:
        body = await read_body(
            request, settings.max_body_size, settings.body_timeout, settings.body_min_rate
        )
    except ConnectionResetError as exc:
        raise ClientDisconnected(
            f"the connection was lost while reading the body of {request.method} "
            f"{redact_path(request.raw_path)[:200]!r}; nothing was forwarded"
        ) from exc
    return ProxyRequest(request.method, request.raw_path, end_to_end(request.headers), body)


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


def check_incoming(pipeline: Pipeline, exchange: Exchange, incoming: ProxyRequest) -> None:
    """The request against the route's contract; strict validation refuses a broken one."""
    if not pipeline.validating:
        return
    exchange.request_check = check_request(
        exchange.route, incoming, injecting_key=pipeline.settings.upstream_api_key is not None
    )
    if pipeline.strict and exchange.request_check.errors:
        raise ContractRejected(exchange.request_check.errors)


async def replay(
    pipeline: Pipeline,
    exchange: Exchange,
    request: web.Request,
    interaction: Interaction,
    *,
    recorder: Recorder,
    fired: Fired | None = None,
) -> web.StreamResponse:
    """Answer from the cassette: its checks are done once per recording, its frames sent as
    they were recorded (at once, or at the recorded times of the cassette's options). A stream
    fault makes the frames a body the relay streams, as it streams the upstream's."""
    exchange.source = CASSETTE
    response, timing = replayed(recorder, exchange, interaction)
    exchange.response = response
    stream_record(response)  # the log's summary of a recorded stream, made on first play
    if pipeline.validating:
        exchange.response_check = check_recorded(exchange.route, response)
        if pipeline.strict and exchange.response_check.errors:
            raise ResponseRejected(response.status, exchange.response_check.errors)
    options = recorder.settings
    headers_after, frames = frames_of(
        interaction, options.replay_timing, options.replay_speed, response, timing
    )
    head = head_of(response)
    if fired is not None and fired.rule.streams:
        frames_body = FramesBody(frames)
        body = faulted_body(fired, head, frames_body)
        if body is not frames_body:
            await asyncio.sleep(headers_after)
            tee = Tee(head, pipeline.settings.max_capture_size, None, 0.0, keep=BODY_LIMIT)
            return await stream(request, exchange, body, tee, conclude=lambda _: None)
    return await send_known(request, exchange, head, frames, headers_after=headers_after)


def replayed(
    recorder: Recorder, exchange: Exchange, interaction: Interaction
) -> tuple[ProxyResponse, Timing | None]:
    """The recorded response as this client gets it: its placeholders filled with the
    request's own values (its folder), once per recording and set of values."""
    assert exchange.request is not None
    return recorder.replayed(interaction, exchange.request)


def check_recorded(route: Route, response: ProxyResponse) -> Checked:
    """A recorded response's check, done on its first play and kept with it."""
    if not is_event_stream(response.headers.get("Content-Type")):
        return check_response(route, response)
    checked = response.memo.get("checked:stream")
    if checked is None:
        checker = stream_checker(route, response.status)
        found: list[Violation] = []
        if checker is not None:
            for event in decode_all(response.body):
                found.extend(checker.check(event))
            found.extend(checker.finish(ended=True))
        checked = response.memo["checked:stream"] = Checked(found, checked=checker is not None)
    assert isinstance(checked, Checked)
    return checked


async def forward(
    pipeline: Pipeline, exchange: Exchange, request: OutboundRequest
) -> UpstreamResponse:
    """Send the request upstream; returns when the response's headers are in."""
    exchange.source = UPSTREAM
    if pipeline.tracer is not None:  # the upstream call's span, its traceparent sent along
        request = pipeline.tracer.forwarding(exchange, request)
    try:
        upstream = await pipeline.transport.send(request)
    finally:
        exchange.upstream_ms = exchange.watch.ms()
    exchange.ttfb_ms = upstream.ttfb_ms
    return upstream


async def relay_upstream(
    pipeline: Pipeline,
    exchange: Exchange,
    request: web.Request,
    upstream: UpstreamResponse,
    recorded_request: VcrRequest | None,
    *,
    recorder: Recorder | None = None,
) -> web.StreamResponse:
    """Pass the upstream's response on as it arrives, observed through the tee; recorded in
    ``recorder`` (the request's cassette) when ``recorded_request`` is given."""
    head = upstream.head
    route = exchange.route
    validating = pipeline.validating
    sse = is_event_stream(head.headers.get("Content-Type"))
    checker = stream_checker(route, head.status) if validating and sse else None
    # Strict validation of a whole JSON body must see it before the client does; an event
    # stream is checked event by event on its way instead, and holds nothing back.
    hold = pipeline.strict and route.has_contract and not sse
    # The whole body is kept (up to the cap) only when it will be recorded or checked whole;
    # otherwise only what the log line shows of it.
    whole = recorded_request is not None or (validating and route.has_contract and not sse)
    cap = pipeline.settings.max_capture_size
    tee = Tee(head, cap, checker, upstream.ttfb_ms, keep=cap if whole else BODY_LIMIT)
    exchange.checking = validating and not hold and (checker is not None or route.has_contract)

    def conclude(captured: Captured) -> None:
        exchange.upstream_ms = exchange.watch.ms()
        if validating:
            exchange.response_check = checked_capture(route, captured, streamed=checker)
        if recorded_request is not None:
            assert recorder is not None
            record(recorder, exchange, recorded_request, captured)
        if hold and exchange.response_check.errors:
            raise ResponseRejected(head.status, exchange.response_check.errors)

    response = await stream(
        request, exchange, upstream.body, tee, conclude=conclude, hold=hold, gate=pipeline.strict
    )
    captured = exchange.captured
    if captured is not None and not captured.ended:  # cut: what was seen is still reported
        exchange.upstream_ms = exchange.watch.ms()
        if validating:
            exchange.response_check = checked_capture(route, captured, streamed=checker)
        if recorded_request is not None:
            exchange.not_recorded = captured.recordable
    return response


def checked_capture(route: Route, captured: Captured, *, streamed: object | None) -> Checked:
    """The response's check, from what the tee kept: an event stream's events were checked as
    they came (by ``streamed``, the stream checker, if the route has one); a whole body is
    checked now, unless it was too large to keep."""
    if captured.stream is not None:
        if streamed is None:
            return Checked()
        found = list(captured.violations)
        if captured.overflowed:
            found.append(_unchecked_rest(captured))
        return Checked(found, checked=True)
    if captured.truncated:
        return Checked()
    return check_response(route, captured.response)


def _unchecked_rest(captured: Captured) -> Violation:
    return Violation(
        pointer="",
        message=f"the stream ({captured.size} bytes) is larger than --max-capture-size; "
        "only its first events were checked",
        severity="warning",
        kind="body",
    )


def record(recorder: Recorder, exchange: Exchange, request: VcrRequest, captured: Captured) -> None:
    """Keep the response in the cassette (journalled before the client's last byte), unless it
    is not whole; then the log says why."""
    reason = captured.recordable or recorder.refusal(request, captured.response)
    if reason is not None:
        exchange.not_recorded = reason
        return
    if recorder.record(request, captured.response, captured.timing) is None:
        exchange.not_recorded = f"{HOOK_DROPPED}: the before_record_response hook dropped it"
        return
    exchange.recorded = True


async def handle(
    pipeline: Pipeline, exchange: Exchange, request: web.Request
) -> web.StreamResponse:
    """Run one request through the proxy, as drawn at the top of this module."""
    settings = pipeline.settings
    incoming = await read_request(request, settings)
    exchange.request = incoming
    check_incoming(pipeline, exchange, incoming)
    recorder = pipeline.recorder
    fired = None
    steering = pipeline.steering
    if steering.active or CASSETTE_KEY in incoming.headers:
        recorder, fired = await steering.steer(pipeline, exchange, incoming, request)
    if recorder is not None:
        # A faulted exchange is never recorded, and never uses a recording up either.
        interaction = recorder.play(incoming) if fired is None else recorder.peek(incoming)
        if interaction is not None:
            return await replay(
                pipeline, exchange, request, interaction, recorder=recorder, fired=fired
            )
    outgoing = outbound(incoming, settings)
    recorded_request = None
    if recorder is not None:
        # None: a hook says the cassette ignores this request (forwarded, never recorded).
        recorded_request = recorder.as_recorded(outgoing)
        if recorded_request is not None and not recorder.policy.record:
            raise recorder.miss(recorded_request)
        if recorded_request is not None and fired is not None:
            exchange.not_recorded = f"fault rule {fired.record.rule} acted on it"
            recorded_request = None  # a faulted exchange is never recorded
        if recorded_request is not None:
            recorder.check_forward(recorded_request)
    if recorded_request is None:
        upstream = await forward_faulted(pipeline, exchange, outgoing, fired)
        return await relay_upstream(pipeline, exchange, request, upstream, None)
    assert recorder is not None
    recorder.in_flight += 1  # a cassette replaced meanwhile closes once this is journalled
    try:
        try:
            upstream = await forward(pipeline, exchange, outgoing)
        except UpstreamUnreachable as exc:  # offline, a new cassette's name may be a typo
            exc.message += recorder.recording_new()
            raise
        return await relay_upstream(
            pipeline, exchange, request, upstream, recorded_request, recorder=recorder
        )
    finally:
        recorder.in_flight -= 1


async def forward_faulted(
    pipeline: Pipeline, exchange: Exchange, request: OutboundRequest, fired: Fired | None
) -> UpstreamResponse:
    """:func:`forward`, with a stream fault in the body when a rule fired on the request."""
    upstream = await forward(pipeline, exchange, request)
    if fired is None or not fired.rule.streams:
        return upstream
    return replace(upstream, body=faulted_body(fired, upstream.head, upstream.body))
