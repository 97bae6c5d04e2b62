"""Test vectors: cancel bodies (reference ``responses-api.md`` section 6), and event streams.

Each vector is a dict plus the exact wire bytes (``*_BODY``, compact JSON as in the reference).
The dicts are shared: copy one (``copy.deepcopy`` or ``orjson.loads(V1_BODY)``) before changing it.

Checked as cancel's 200 (:mod:`cassette_proxy.contract.validation`), V1-V4 have no errors and no
drift. V1-V3 have one warning each: they omit ``usage`` (real servers do, on cancelled responses).
V4's ``usage.input_tokens_details.cache_write_tokens`` is not in the seed, but the client declares
it, so it is not drift. V5a and V5b are both accepted as 404 bodies, with no findings.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

# The folder the vectors' model URIs name (``gpt://<FOLDER>/...``): a client configured as Yandex
# documents it sends it as ``OpenAI-Project`` (``openai.OpenAI(project=FOLDER)``).
FOLDER: Final = "b1gexamplefolder000"

V1: Final[dict[str, Any]] = {
    "id": "resp_68a3f0c2d41c8190b5e6f3a2c9d7e1f00a1b2c3d4e5f6a7b",
    "object": "response",
    "created_at": 1755574978,
    "status": "cancelled",
    "background": True,
    "completed_at": None,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "model": "gpt://b1gexamplefolder000/yandexgpt/latest",
    "output": [],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "service_tier": "default",
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": 0,
    "top_p": 1.0,
    "truncation": "disabled",
    "metadata": {},
}
"""Background response cancelled while queued/in_progress: empty ``output``, no ``usage``."""

V2: Final[dict[str, Any]] = {
    "id": "resp_67cb71b351908190a308f3859487620d06981a8637e6bc44",
    "object": "response",
    "created_at": 1741386163,
    "status": "cancelled",
    "background": True,
    "completed_at": None,
    "error": None,
    "incomplete_details": None,
    "instructions": "Answer in Russian.",
    "max_output_tokens": 2048,
    "model": "gpt://b1gexamplefolder000/yandexgpt/latest",
    "output": [
        {
            "type": "message",
            "id": "msg_67cb71b3c2b0819084d481baaaf148f206981a8637e6bc44",
            "status": "in_progress",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Кратко: облачная платформа предоставляет более 20 моделей",
                    "annotations": [],
                    "logprobs": [],
                }
            ],
        }
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": True,
    "temperature": 0.3,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "metadata": {"job": "summary-42"},
}
"""Cancelled with a partial assistant message (OpenAI's own cancel example, plus ``logprobs``)."""

V3: Final[dict[str, Any]] = {
    "id": "resp_0d2f8a1b9c3e4f5061728394a5b6c7d8e9f0a1b2c3d4e5f6",
    "object": "response",
    "created_at": 1755575101,
    "status": "cancelled",
    "background": True,
    "completed_at": None,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "gpt://b1gexamplefolder000/qwen3-235b-a22b-fp8/latest",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_0d2f8a1b9c3e4f50617283940001",
            "summary": [
                {
                    "type": "summary_text",
                    "text": "The user asks for the weather; call get_weather for Moscow.",
                }
            ],
            "status": "completed",
        },
        {
            "type": "function_call",
            "id": "fc_0d2f8a1b9c3e4f50617283940002",
            "call_id": "call_Q2x7mN4pL8sV1tR6",
            "name": "get_weather",
            "arguments": '{"city":"Moscow","unit":"celsius"}',
            "status": "completed",
        },
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
                "additionalProperties": False,
            },
            "strict": True,
        }
    ],
    "top_p": 1.0,
    "truncation": "disabled",
    "metadata": {},
}
"""Cancelled after a ``reasoning`` and a ``function_call`` item; the function tool is echoed."""

V4: Final[dict[str, Any]] = {
    "id": "resp_5a6b7c8d9e0f11223344556677889900aabbccddeeff0011",
    "object": "response",
    "created_at": 1755575233,
    "status": "cancelled",
    "background": True,
    "completed_at": None,
    "error": None,
    "incomplete_details": None,
    "instructions": "You are a concise assistant.",
    "max_output_tokens": 4096,
    "model": "gpt://b1gexamplefolder000/yandexgpt/rc",
    "output": [
        {
            "type": "message",
            "id": "msg_5a6b7c8d9e0f1122334455667788",
            "status": "incomplete",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Первые три пункта плана:",
                    "annotations": [],
                    "logprobs": [],
                }
            ],
        }
    ],
    "parallel_tool_calls": False,
    "previous_response_id": "resp_4f5e6d7c8b9a00112233445566778899aabbccddeeff0011",
    "reasoning": {"effort": "low", "summary": None},
    "service_tier": "default",
    "store": True,
    "temperature": 0.6,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "none",
    "tools": [],
    "top_p": 0.9,
    "truncation": "auto",
    "usage": {
        "input_tokens": 1840,
        "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 0},
        "output_tokens": 96,
        "output_tokens_details": {"reasoning_tokens": 64},
        "total_tokens": 1936,
    },
    "metadata": {"tenant": "acme", "trace": "7f3c"},
}
"""Cancelled with ``usage`` populated (including ``cache_write_tokens``, newer than the seed)."""

V5A: Final[dict[str, Any]] = {
    "error": {
        "message": "Response with id 'resp_does_not_exist_123' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
}
"""404 in OpenAI's wire shape: the ``{"error": {...}}`` envelope."""

V5B: Final[dict[str, Any]] = {
    "code": "not_found",
    "message": "Response with id 'resp_does_not_exist_123' not found.",
    "param": "response_id",
    "type": "invalid_request_error",
}
"""404 in the flat shape of Yandex's page and the spec's ``Error`` schema."""

V1_BODY: Final = orjson.dumps(V1)
V2_BODY: Final = orjson.dumps(V2)
V3_BODY: Final = orjson.dumps(V3)
V4_BODY: Final = orjson.dumps(V4)
V5A_BODY: Final = orjson.dumps(V5A)
V5B_BODY: Final = orjson.dumps(V5B)

V1_ID: Final[str] = V1["id"]
V2_ID: Final[str] = V2["id"]
V3_ID: Final[str] = V3["id"]
V4_ID: Final[str] = V4["id"]


def not_found(response_id: str) -> bytes:
    """A 404 body in V5a's shape (the OpenAI envelope) naming ``response_id``."""
    message = f"Response with id '{response_id}' not found."
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return orjson.dumps({"error": error})


def conflict(response_id: str) -> bytes:
    """A 409 body, as some OpenAI clones send for a response already in a terminal state.

    The route does not document 409, so a check reports it as ``undocumented_status``.
    """
    message = f"Cannot cancel response '{response_id}': it is already completed."
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return orjson.dumps({"error": error})


CANCELLED: Final = {"V1": V1_BODY, "V2": V2_BODY, "V3": V3_BODY, "V4": V4_BODY}
"""The 200 vectors by name."""

NOT_FOUND: Final = {"V5a": V5A_BODY, "V5b": V5B_BODY}
"""The 404 vectors by name."""


# ---------------------------------------------------------------------------------------------
# Event streams (reference ``streaming.md`` section 2)
# ---------------------------------------------------------------------------------------------


def completed_response(response_id: str, text: str) -> dict[str, Any]:
    """A completed Response with one assistant message saying ``text``, usage included."""
    response = {**V4, "id": response_id, "status": "completed", "background": False}
    response["completed_at"] = response["created_at"] + 2
    response["output"] = [
        {
            "type": "message",
            "id": f"msg_{response_id[5:]}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }
    ]
    return response


def text_stream_events(response_id: str, deltas: list[str]) -> list[dict[str, Any]]:
    """The events of a documented stream that writes ``deltas`` as one message's text."""
    done = completed_response(response_id, "".join(deltas))
    started = {**done, "status": "in_progress", "output": [], "completed_at": None}
    del started["usage"]
    message = done["output"][0]
    item_id = message["id"]
    empty_item = {**message, "status": "in_progress", "content": []}
    empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    place = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0, "item": empty_item},
        {"type": "response.content_part.added", **place, "part": empty_part},
    ]
    events += [
        {"type": "response.output_text.delta", **place, "delta": delta, "logprobs": []}
        for delta in deltas
    ]
    events += [
        {"type": "response.output_text.done", **place, "text": "".join(deltas), "logprobs": []},
        {"type": "response.content_part.done", **place, "part": message["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": done},
    ]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def sse(events: list[dict[str, Any]]) -> bytes:
    """``events`` as the wire sends them: ``event: <type>`` and ``data: <json>`` per frame."""
    return b"".join(
        b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
        for event in events
    )


STREAM_ID: Final = "resp_68a3f0c2d41c8190b5e6f3a2c9d7e1f0stream000001"
TEXT_STREAM: Final = sse(text_stream_events(STREAM_ID, ["Облачная ", "платформа ", "готова."]))
"""A documented stream: created, in_progress, one message in three deltas, completed."""
