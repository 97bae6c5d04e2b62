"""An exchange in the words of OpenTelemetry's GenAI semantic conventions: plain attribute
dictionaries (no OpenTelemetry import), so they are tested on their own.

- The upstream call is a CLIENT span ``{gen_ai.operation.name} {gen_ai.request.model}`` with
  ``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.id``,
  ``gen_ai.response.model``, ``gen_ai.usage.*`` (input, output, cache read, reasoning),
  ``gen_ai.response.finish_reasons``, ``gen_ai.response.time_to_first_chunk``, ``error.type``
  and ``server.address``/``server.port``; a replayed exchange is marked
  ``cassette_proxy.replayed``.
- Message content (``gen_ai.input.messages``, ``gen_ai.output.messages``,
  ``gen_ai.system_instructions``, as JSON) only when the user opts in with
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (the variable OpenTelemetry's own
  GenAI instrumentations read), never for a request sent with ``x-data-logging-enabled: false``,
  and with secrets redacted as in the log.

Models are shown without their folder (``yandexgpt/latest``), as in the log and the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from yarl import URL

from cassette_proxy.contract.routes import CANCEL, CREATE, RETRIEVE
from cassette_proxy.models.usage import Answered, model_name
from cassette_proxy.redact import redact_text
from cassette_proxy.sse import TERMINAL_TYPES, decode_all, is_event_stream

CAPTURE_VARIABLE: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_CONTENT: Final = 64 * 1024  # characters of one content attribute; longer ones are cut
# gen_ai.operation.name by route: create is an inference ("chat", as the conventions name the
# OpenAI Responses API's); retrieving and cancelling a response are named for what they do.
OPERATIONS: Final = {CREATE: "chat", RETRIEVE: "retrieve_response", CANCEL: "cancel_response"}
Attributes = dict[str, Any]


def capture_wanted(environ: Mapping[str, str]) -> bool:
    return environ.get(CAPTURE_VARIABLE, "").strip().lower() == "true"


def provider_name(host: str) -> str:
    """``gen_ai.provider.name`` for the upstream: ``yandex`` for Yandex Cloud's hosts,
    ``openai`` otherwise (the API the proxy speaks)."""
    host = host.lower()
    if host.endswith((".yandex.net", ".yandex.cloud", ".yandexcloud.net")):
        return "yandex"
    return "openai"


def server_attributes(upstream: URL) -> Attributes:
    return {"server.address": upstream.host or "", "server.port": upstream.port or 0}


def request_facts(route: str, body: bytes) -> Attributes:
    """What a create request's body says: model, stream, temperature, top_p, max tokens."""
    if route != CREATE or not body:
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    found: Attributes = {}
    model = model_name(parsed.get("model"))
    if model is not None:
        found["gen_ai.request.model"] = model
    if parsed.get("stream") is True:
        found["gen_ai.request.stream"] = True
    for key, attribute in (
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
    ):
        value = parsed.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            found[attribute] = float(value)
    tokens = parsed.get("max_output_tokens")
    if isinstance(tokens, int) and not isinstance(tokens, bool):
        found["gen_ai.request.max_tokens"] = tokens
    return found


def answer_attributes(answered: Answered | None) -> Attributes:
    """``gen_ai.response.*`` and ``gen_ai.usage.*`` of the Response the client got."""
    if answered is None:
        return {}
    found: Attributes = {}
    if answered.response_id is not None:
        found["gen_ai.response.id"] = answered.response_id
    if answered.model is not None:
        found["gen_ai.response.model"] = answered.model
    if answered.finish_reasons:
        found["gen_ai.response.finish_reasons"] = list(answered.finish_reasons)
    usage = answered.usage
    if usage is not None:
        found["gen_ai.usage.input_tokens"] = usage.input
        found["gen_ai.usage.output_tokens"] = usage.output
        found["gen_ai.usage.cache_read.input_tokens"] = usage.cached
        found["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning
    return found


def _text(value: str) -> str:
    return redact_text(value[:MAX_CONTENT])


def _parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as the conventions' parts: text parts, other parts by type."""
    if isinstance(content, str):
        return [{"type": "text", "content": _text(content)}]
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in {"input_text", "output_text", "text"} and isinstance(part.get("text"), str):
            parts.append({"type": "text", "content": _text(part["text"])})
        elif isinstance(kind, str):
            parts.append({"type": kind[:64]})
    return parts


def input_messages(body: bytes) -> tuple[str | None, str | None]:
    """``gen_ai.input.messages`` and ``gen_ai.system_instructions`` of a create request, as
    JSON (None where the request has none)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    messages: list[dict[str, Any]] = []
    given = parsed.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "parts": _parts(given)})
    elif isinstance(given, list):
        for item in given:
            if isinstance(item, dict) and "role" in item:
                role = item.get("role")
                messages.append({"role": str(role)[:32], "parts": _parts(item.get("content"))})
    instructions = parsed.get("instructions")
    system = (
        orjson.dumps([{"type": "text", "content": _text(instructions)}]).decode()
        if isinstance(instructions, str)
        else None
    )
    return (orjson.dumps(messages).decode() if messages else None), system


def output_messages(body: bytes, content_type: str | None) -> str | None:
    """``gen_ai.output.messages`` of a Response body or of a stream's final event, as JSON."""
    response: Any = None
    try:
        if is_event_stream(content_type):
            for event in reversed(decode_all(body)):
                if event.type in TERMINAL_TYPES:
                    parsed = event.json()
                    response = parsed.get("response") if isinstance(parsed, dict) else None
                    break
        else:
            response = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(response, dict) or not isinstance(response.get("output"), list):
        return None
    answered = Answered.of(response)
    finish = answered.finish_reasons[0] if answered and answered.finish_reasons else "stop"
    messages = [
        {"role": "assistant", "parts": _parts(item.get("content")), "finish_reason": finish}
        for item in response["output"]
        if isinstance(item, dict) and item.get("type") == "message"
    ]
    return orjson.dumps(messages).decode() if messages else None
