"""The OpenTelemetry observer: a server span per exchange, a client span for its upstream call,
and the GenAI metrics, exported over OTLP (imported only when the ``OTEL_*`` variables ask).

- The server span (``{method} {http.route}``) continues the client's W3C ``traceparent`` (and
  whatever ``OTEL_PROPAGATORS`` names), so the app's span and the proxy's join one trace.
- The client span is the upstream call (its GenAI attributes: :mod:`cassette_proxy.otel.genai`);
  the request goes upstream with *its* ``traceparent``, so the service's own spans join too. A
  replayed exchange gets the same client span, marked ``cassette_proxy.replayed``, and nothing
  is sent anywhere.
- ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``, with the conventions'
  buckets, each response's tokens counted once (as ``cassette_proxy_tokens_total``).

Providers belong to the application, not to the process (the pytest plugin runs several), and
are shut down with it, which flushes the batch span processor and the metric reader. The request
path only builds spans, which the batch processor exports from its own thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from yarl import URL

from cassette_proxy import __version__
from cassette_proxy.contract.routes import PASSTHROUGH
from cassette_proxy.errors import StartupError
from cassette_proxy.otel import genai
from cassette_proxy.redact import printable, redact_path
from cassette_proxy.serving.exchange import CASSETTE, Exchange
from cassette_proxy.serving.upstream import OutboundRequest
from cassette_proxy.settings import Settings

SCOPE: Final = "cassette_proxy"
# The conventions' advice for the GenAI histograms' buckets.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TRACE_PARENT_HEADERS: Final = ("traceparent", "tracestate")
_FLUSH_SECONDS: Final = 10.0


@dataclass(slots=True)
class _Spans:
    """One exchange's spans while it runs."""

    server: Span
    context: Context  # the server span's, the client span's parent
    started_ns: int
    client: Span | None = None
    client_started_ns: int = 0


def _route_template(exchange: Exchange) -> str | None:
    contract = exchange.route.contract
    return contract.template if contract is not None else None


def _exporters(environ: Mapping[str, str]) -> tuple[bool, bool]:
    """Whether traces and metrics are exported (``OTEL_TRACES_EXPORTER`` /
    ``OTEL_METRICS_EXPORTER``: ``otlp``, the default, or ``none``)."""
    chosen = []
    for variable in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        value = environ.get(variable, "otlp").strip().lower() or "otlp"
        if value not in {"otlp", "none"}:
            raise StartupError(
                f"{variable}={value!r} is not supported: cassette-proxy exports over OTLP "
                "(otlp, the default) or not at all (none)"
            )
        chosen.append(value == "otlp")
    protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip().lower()
    if protocol not in {"http/protobuf", ""}:
        raise StartupError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: cassette-proxy's otel "
            "extra exports OTLP over HTTP (http/protobuf); point it at the collector's HTTP "
            "port (4318)"
        )
    return chosen[0], chosen[1]


class Telemetry:
    """The :class:`cassette_proxy.otel.Tracer` that exports to OTLP."""

    def __init__(
        self,
        settings: Settings,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider | None,
        *,
        capture: bool,
    ) -> None:
        self.settings = settings
        self.capture = capture
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer = tracer_provider.get_tracer(SCOPE, __version__)
        upstream = URL(settings.upstream_base)
        self.provider = genai.provider_name(upstream.host or "")
        self.server = genai.server_attributes(upstream)
        self.instance = settings.instance_name
        self.token_usage: Histogram | None = None
        self.duration: Histogram | None = None
        if meter_provider is not None:
            meter = meter_provider.get_meter(SCOPE, __version__)
            self.token_usage = meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            )
            self.duration = meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )

    @classmethod
    def from_environment(cls, settings: Settings, environ: Mapping[str, str]) -> Telemetry:
        traces, metrics = _exporters(environ)
        detected = OTELResourceDetector().detect().attributes
        resource = Resource.create(
            {
                "service.name": "cassette-proxy",
                "service.version": __version__,
                "service.instance.id": settings.instance_name,
                **detected,
            }
        )
        tracer_provider = TracerProvider(resource=resource)
        if traces:
            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        meter_provider = None
        if metrics:
            readers: list[MetricReader] = [PeriodicExportingMetricReader(OTLPMetricExporter())]
            meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        return cls(settings, tracer_provider, meter_provider, capture=genai.capture_wanted(environ))

    # -- the request path ------------------------------------------------------------------

    def _begin(self, exchange: Exchange, started_ns: int) -> _Spans:
        """The exchange's server span, continuing the client's trace."""
        carrier: Mapping[str, str] = exchange.request.headers if exchange.request else {}
        parent = propagate.extract(carrier)
        template = _route_template(exchange)
        attributes: dict[str, Any] = {
            "http.request.method": exchange.method,
            "url.path": printable(redact_path(exchange.raw_path.partition("?")[0]))[:1024],
            "cassette_proxy.instance": self.instance,
            "cassette_proxy.exchange_id": exchange.id,
        }
        if template is not None:
            attributes["http.route"] = template
        server = self.tracer.start_span(
            f"{exchange.method} {template}" if template else exchange.method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=started_ns,
        )
        spans = exchange.trace = _Spans(server, trace.set_span_in_context(server), started_ns)
        exchange.trace_id = format(server.get_span_context().trace_id, "032x")
        return spans

    def _client(self, exchange: Exchange, spans: _Spans, started_ns: int) -> Span:
        """The upstream call's span (a GenAI span for the routes that answer a Response)."""
        route = exchange.route.name
        operation = genai.OPERATIONS.get(route)
        attributes: dict[str, Any] = {**self.server, "http.request.method": exchange.method}
        request = exchange.request
        facts = genai.request_facts(route, request.body if request else b"")
        attributes.update(facts)
        if operation is not None:
            attributes["gen_ai.operation.name"] = operation
            attributes["gen_ai.provider.name"] = self.provider
            attributes["openai.api.type"] = "responses"
            model = facts.get("gen_ai.request.model")
            name = f"{operation} {model}" if model else operation
        else:
            name = exchange.method if route == PASSTHROUGH else f"{exchange.method} {route}"
        spans.client = self.tracer.start_span(
            name,
            context=spans.context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=started_ns,
        )
        spans.client_started_ns = started_ns
        return spans.client

    def forwarding(self, exchange: Exchange, request: OutboundRequest) -> OutboundRequest:
        now = time.time_ns()
        spans = exchange.trace or self._begin(exchange, now - int(exchange.watch.ms() * 1e6))
        client = self._client(exchange, spans, now)
        headers: CIMultiDict[str] = CIMultiDict(request.headers)
        for name in _TRACE_PARENT_HEADERS:  # the client's own are replaced by the call's
            headers.popall(name, None)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(client))
        headers.extend(carrier)
        return OutboundRequest(request.method, request.url, CIMultiDictProxy(headers), request.body)

    def finished(self, exchange: Exchange, status: int, duration_ms: float) -> None:
        now = time.time_ns()
        spans = exchange.trace
        if spans is None:
            spans = self._begin(exchange, now - int(duration_ms * 1e6))
            if exchange.source == CASSETTE:  # the call a replay stands in for
                self._client(exchange, spans, spans.started_ns)
        error = exchange.error.code if exchange.error is not None else None
        replayed = exchange.source == CASSETTE
        if spans.client is not None:
            self._end_client(exchange, spans, now, replayed=replayed)
        server = spans.server
        server.set_attribute("http.response.status_code", status)
        server.set_attribute("cassette_proxy.source", exchange.source)
        server.set_attribute("cassette_proxy.verdict", exchange.verdict.value)
        if replayed:
            server.set_attribute("cassette_proxy.replayed", True)
        if error is not None or status >= 500:
            server.set_attribute("error.type", error or str(status))
            server.set_status(Status(StatusCode.ERROR, error))
        server.end(end_time=now)

    def _end_client(self, exchange: Exchange, spans: _Spans, now: int, *, replayed: bool) -> None:
        client = spans.client
        assert client is not None
        answered = exchange.answered
        attributes = genai.answer_attributes(answered)
        if exchange.ttfb_ms is not None and exchange.captured is not None:
            frames = exchange.captured.timing.frames
            first = exchange.ttfb_ms + (frames[0][1] if frames else 0.0)
            if exchange.captured.stream is not None:
                attributes["gen_ai.response.time_to_first_chunk"] = round(first / 1000, 6)
        if replayed:
            attributes["cassette_proxy.replayed"] = True
            attributes["cassette_proxy.source"] = CASSETTE
        status = self._upstream_status(exchange)
        if status is not None:
            attributes["http.response.status_code"] = status
        error = exchange.error.code if exchange.error is not None else None
        if error is None and status is not None and status >= 400:
            error = str(status)
        if error is not None:
            attributes["error.type"] = error
        if self.capture and not exchange.withheld:
            attributes.update(self._content(exchange))
        client.set_attributes(attributes)
        if error is not None:
            client.set_status(Status(StatusCode.ERROR, error))
        upstream_ms = exchange.upstream_ms
        ended = now
        if upstream_ms is not None and not replayed:
            ended = min(now, spans.started_ns + int(upstream_ms * 1e6))
            ended = max(ended, spans.client_started_ns)
        client.end(end_time=ended)
        self._measure(exchange, attributes, (ended - spans.client_started_ns) / 1e9, error)

    @staticmethod
    def _upstream_status(exchange: Exchange) -> int | None:
        if exchange.captured is not None:
            return exchange.captured.response.status
        if exchange.response is not None:
            return exchange.response.status
        return None

    def _content(self, exchange: Exchange) -> dict[str, str]:
        """The opted-in message content (never for a withheld exchange: see the caller)."""
        found: dict[str, str] = {}
        request = exchange.request
        if request is not None and exchange.route.name == "create":
            messages, system = genai.input_messages(request.body)
            if messages is not None:
                found["gen_ai.input.messages"] = messages
            if system is not None:
                found["gen_ai.system_instructions"] = system
        response = exchange.captured.response if exchange.captured else exchange.response
        if response is not None and response.status == 200 and exchange.answered is not None:
            try:
                body = response.decoded_body()
            except ValueError:
                return found
            output = genai.output_messages(body, response.headers.get("Content-Type"))
            if output is not None:
                found["gen_ai.output.messages"] = output
        return found

    def _measure(
        self, exchange: Exchange, attributes: Mapping[str, Any], seconds: float, error: str | None
    ) -> None:
        operation = genai.OPERATIONS.get(exchange.route.name)
        if operation is None or self.duration is None or self.token_usage is None:
            return
        common: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": self.provider,
            **self.server,
        }
        request = exchange.request
        requested = genai.request_facts(exchange.route.name, request.body if request else b"")
        for key, value in (*requested.items(), *attributes.items()):
            if key in {"gen_ai.request.model", "gen_ai.response.model"}:
                common[key] = value
        if exchange.source == CASSETTE:
            common["cassette_proxy.replayed"] = True
        self.duration.record(seconds, {**common, **({"error.type": error} if error else {})})
        tokens = exchange.tokens
        if tokens is not None:
            self.token_usage.record(tokens.input, {**common, "gen_ai.token.type": "input"})
            self.token_usage.record(tokens.output, {**common, "gen_ai.token.type": "output"})

    async def close(self) -> None:
        """Export what is buffered and stop (off the event loop: exporting blocks)."""
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self.tracer_provider.force_flush(int(_FLUSH_SECONDS * 1000))
        self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown(timeout_millis=_FLUSH_SECONDS * 1000)
