"""OpenTelemetry export against a real OTLP/HTTP receiver on loopback (tests/otlp_receiver.py),
the protobuf the SDK's exporter sends decoded with opentelemetry-proto's classes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cassette_proxy import otel
from cassette_proxy.settings import Settings
from tests import vectors
from tests.conftest import DUMMY_KEY, StartProxy
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.responses_upstream import CREATED_ID, ResponsesUpstream

SERVER, CLIENT = 2, 3  # SpanKind in the OTLP protobuf
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
APP_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{APP_SPAN_ID}-01"
PROMPT = "Tell nobody: the launch code is pelican-7731"
KEY = "AQVN" + "w3f9Kq2LmZ8xR4tY7uB1nC6vD0eH5jP2sG9a"  # a key's shape, built so scanners pass
MODEL_URI = "gpt://b1gexamplefolder000/yandexgpt/rc"


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    async with otlp_receiver() as running:
        yield running


@pytest.fixture
def responses_upstream() -> ResponsesUpstream:
    return ResponsesUpstream()


@pytest.fixture
async def responses_url(
    responses_upstream: ResponsesUpstream, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> str:
    server = await aiohttp_server(responses_upstream.app(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def _spans(receiver: OtlpReceiver, count: int) -> list[ReceivedSpan]:
    async with asyncio.timeout(20):
        while len(receiver.spans) < count:
            await asyncio.sleep(0.02)
    return receiver.spans


def _one(spans: list[ReceivedSpan], kind: int) -> ReceivedSpan:
    [span] = [span for span in spans if span.kind == kind]
    return span


@pytest.mark.slow
async def test_a_request_with_a_traceparent_continues_its_trace_to_the_upstream(
    receiver: OtlpReceiver, responses_upstream: ResponsesUpstream, responses_url: str
) -> None:
    """The issue's "done when", with the real process, the real openai client and a real
    receiver: a span in the app's trace with the GenAI attributes, and the upstream gets a
    traceparent in that trace, the proxy's upstream call as its parent."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", "0",
        "--upstream", responses_url, "--instance", "sidecar-a",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **receiver.environment()},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = None
        async with asyncio.timeout(30):
            while url is None:
                event = orjson.loads(await process.stdout.readline())
                url = event["detail"]["url"] if event["event"] == "listening" else None
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=DUMMY_KEY) as app:
            response = await app.responses.create(
                model=MODEL_URI,
                input="Что такое AI Studio?",
                extra_headers={"traceparent": TRACEPARENT},
            )
        assert response.id == CREATED_ID
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            lines = [orjson.loads(line) for line in (await process.communicate())[0].splitlines()]
        assert process.returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    spans = receiver.spans  # the batch processor was flushed on stop: nothing to wait for
    server, client = _one(spans, SERVER), _one(spans, CLIENT)
    assert server.trace_id == client.trace_id == TRACE_ID
    assert server.parent_span_id == APP_SPAN_ID
    assert client.parent_span_id == server.span_id
    assert server.name == "POST /v1/responses"
    assert client.name == "chat yandexgpt/rc"  # {operation} {model}, no folder id
    attributes = client.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "yandexgpt/rc"
    assert attributes["gen_ai.response.model"] == "yandexgpt/rc"
    assert attributes["gen_ai.response.id"] == CREATED_ID
    assert attributes["gen_ai.usage.input_tokens"] == 1840
    assert attributes["gen_ai.usage.output_tokens"] == 96
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 64
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["server.address"] == "127.0.0.1"
    assert server.resource["service.name"] == "proxy-under-test"
    assert server.resource["service.instance.id"] == "sidecar-a"
    # The upstream joined the same trace, under the proxy's client span.
    [received] = responses_upstream.received
    assert received.headers["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"
    # The log line names the trace, so the line and the spans can be joined.
    [exchange] = [line for line in lines if line["event"] == "exchange"]
    assert exchange["trace_id"] == TRACE_ID
    assert exchange["instance"] == "sidecar-a"
    # GenAI metrics, flushed on stop too.
    usage = receiver.metrics["gen_ai.client.token.usage"]
    by_type = {point[0]["gen_ai.token.type"]: point[1] for point in usage}
    assert by_type == {"input": 1840, "output": 96}
    assert receiver.metrics["gen_ai.client.operation.duration"][0][2] == 1


async def _create(proxy_url: str, *, prompt: str, headers: dict[str, str]) -> None:
    async with openai.AsyncOpenAI(base_url=f"{proxy_url}/v1", api_key=DUMMY_KEY) as client:
        await client.responses.create(
            model=MODEL_URI,
            input=prompt,
            instructions="Be brief.",
            extra_headers=headers,
            extra_body={"temperature": "also " + prompt},  # a value a violation quotes
        )


@pytest.mark.parametrize("withheld", [False, True])
async def test_message_content_only_when_opted_in_and_never_for_a_request_that_asked_not_to(
    receiver: OtlpReceiver,
    responses_url: str,
    start_proxy: StartProxy,
    monkeypatch: pytest.MonkeyPatch,
    withheld: bool,
) -> None:
    for name, value in receiver.environment(
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true"
    ).items():
        monkeypatch.setenv(name, value)
    proxy = await start_proxy(upstream=responses_url)
    headers = {"x-data-logging-enabled": "false"} if withheld else {}
    await _create(proxy.url, prompt=f"{PROMPT} with {KEY}", headers=headers)
    await proxy.stop()  # shuts the providers down: the spans are flushed
    spans = await _spans(receiver, 2)
    everything = repr([span.attributes for span in spans])
    log = proxy.log_path.read_text()
    if withheld:
        assert "pelican" not in everything
        assert "pelican" not in log  # nor in the log line, bodies and violations included
        [exchange] = proxy.exchanges()
        assert exchange["bodies"] == "withheld"
        assert exchange["request"]["body"] is None
        assert exchange["response"]["body"] is None
        assert exchange["request"]["size"] > len(PROMPT)  # sizes stay
        assert exchange["tokens"]["input"] == 1840  # accounting stays
    else:  # opted in: the conventions' content attributes, as JSON
        client = _one(spans, CLIENT)
        messages = orjson.loads(client.attributes["gen_ai.input.messages"])
        [part] = messages[0]["parts"]
        assert messages[0]["role"] == "user"
        assert part["content"].startswith(f"{PROMPT} with sha256:")  # secrets never in a span
        assert KEY not in everything
        system = orjson.loads(client.attributes["gen_ai.system_instructions"])
        assert system == [{"type": "text", "content": "Be brief."}]
        output = orjson.loads(client.attributes["gen_ai.output.messages"])
        assert output[0]["role"] == "assistant"
        assert output[0]["parts"][0]["content"] == "Готово."
        assert "pelican" in log


async def test_no_content_without_opting_in(
    receiver: OtlpReceiver,
    responses_url: str,
    start_proxy: StartProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in receiver.environment().items():
        monkeypatch.setenv(name, value)
    proxy = await start_proxy(upstream=responses_url)
    await _create(proxy.url, prompt=PROMPT, headers={})
    await proxy.stop()
    spans = await _spans(receiver, 2)
    assert "pelican" not in repr([span.attributes for span in spans])
    assert "gen_ai.usage.input_tokens" in _one(spans, CLIENT).attributes


async def test_a_replayed_exchange_is_marked_and_sends_nothing_upstream(
    receiver: OtlpReceiver,
    start_proxy: StartProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name, value in receiver.environment().items():
        monkeypatch.setenv(name, value)
    cassette = tmp_path / "cancel.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    async with openai.AsyncOpenAI(base_url=recording.base_url, api_key=DUMMY_KEY) as client:
        await client.responses.cancel(vectors.V4_ID)
    await recording.stop()
    await _spans(receiver, 2)
    receiver.spans.clear()
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    async with openai.AsyncOpenAI(base_url=replaying.base_url, api_key=DUMMY_KEY) as client:
        await client.responses.cancel(vectors.V4_ID, extra_headers={"traceparent": TRACEPARENT})
    await replaying.stop()
    spans = await _spans(receiver, 2)
    server, client_span = _one(spans, SERVER), _one(spans, CLIENT)
    assert server.trace_id == TRACE_ID
    assert client_span.parent_span_id == server.span_id
    assert client_span.attributes["cassette_proxy.replayed"] is True
    assert server.attributes["cassette_proxy.source"] == "cassette"
    assert client_span.attributes["gen_ai.response.id"] == vectors.V4_ID
    assert client_span.attributes["gen_ai.operation.name"] == "cancel_response"


async def _stream_upstream(request: web.Request) -> web.StreamResponse:
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in vectors.text_stream_events(vectors.STREAM_ID, ["Облачная ", "платформа."]):
        await response.write(vectors.sse([event]))
    await response.write_eof()
    return response


async def test_a_stream_reports_its_tokens_and_time_to_first_chunk(
    receiver: OtlpReceiver,
    start_proxy: StartProxy,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    for name, value in receiver.environment().items():
        monkeypatch.setenv(name, value)
    app = web.Application()
    app.router.add_post("/v1/responses", _stream_upstream)
    upstream = await aiohttp_server(app, host="127.0.0.1")
    proxy = await start_proxy(upstream=str(upstream.make_url("")).rstrip("/"))
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
        stream = await client.responses.create(model=MODEL_URI, input="hi", stream=True)
        [event async for event in stream]
    await proxy.stop()
    client_span = _one(await _spans(receiver, 2), CLIENT)
    attributes = client_span.attributes
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.input_tokens"] == 1840
    assert attributes["gen_ai.response.id"] == vectors.STREAM_ID
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] < 10
    [exchange] = proxy.exchanges()
    assert exchange["tokens"] == {"input": 1840, "cached": 1024, "output": 96, "reasoning": 64}
    assert exchange["model"] == "yandexgpt/rc"


def test_without_an_endpoint_there_is_no_tracer() -> None:
    settings = Settings(upstream="http://127.0.0.1:9")
    assert otel.telemetry(settings, {}) is None
    assert otel.telemetry(settings, {"OTEL_SERVICE_NAME": "x"}) is None
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}
    assert otel.telemetry(settings, disabled) is None


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTLP over HTTP"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "otlp"),
    ],
)
def test_an_exporter_it_cannot_use_stops_start_up_in_one_line(
    variable: str, value: str, said: str
) -> None:
    from cassette_proxy.errors import StartupError  # noqa: PLC0415

    settings = Settings(upstream="http://127.0.0.1:9")
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", variable: value}
    with pytest.raises(StartupError, match=said) as raised:
        otel.telemetry(settings, environ)
    assert "\n" not in str(raised.value)
