"""The cancel contract check: vectors, severities, pointers and messages."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from cassette_proxy.contract import check as check_module
from cassette_proxy.contract import classify
from cassette_proxy.contract.base import UnknownVariant
from cassette_proxy.contract.response import Response
from cassette_proxy.contract.validation import check_status_and_body
from cassette_proxy.models.violations import Violation
from tests import vectors

JSON = "application/json"
CANCEL = classify("POST", "/v1/responses/resp_1/cancel")


def check(
    body: dict[str, Any] | list[Any] | bytes, status: int = 200, content_type: str | None = JSON
) -> list[Violation]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return check_status_and_body(CANCEL, status, raw, content_type)


def errors(found: list[Violation]) -> list[Violation]:
    return [v for v in found if v.severity == "error"]


def warnings(found: list[Violation]) -> list[Violation]:
    return [v for v in found if v.severity == "warning"]


def fresh(body: bytes) -> dict[str, Any]:
    """A private, mutable copy of a vector."""
    data: dict[str, Any] = orjson.loads(body)
    return data


def summary(found: list[Violation]) -> list[tuple[str, str, str]]:
    return [(v.severity, v.kind, v.pointer) for v in found]


# ---------------------------------------------------------------------------------------------
# The reference vectors
# ---------------------------------------------------------------------------------------------

USAGE_MISSING = ("warning", "missing", "/usage")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(vectors.V1_BODY, [USAGE_MISSING], id="V1"),
        pytest.param(vectors.V2_BODY, [USAGE_MISSING], id="V2"),
        pytest.param(vectors.V3_BODY, [USAGE_MISSING], id="V3"),
        pytest.param(vectors.V4_BODY, [], id="V4"),
    ],
)
def test_cancelled_vectors_pass_with_only_the_expected_drift(
    body: bytes, expected: list[tuple[str, str, str]]
) -> None:
    # V1-V3 omit usage (real servers do, on cancelled responses). V4 sends
    # cache_write_tokens, which the seed does not name but the client declares: not drift.
    assert summary(check(body)) == expected


@pytest.mark.parametrize("body", [vectors.V5A_BODY, vectors.V5B_BODY], ids=["V5a", "V5b"])
def test_both_404_shapes_are_accepted(body: bytes) -> None:
    assert check(body, status=404) == []


def test_404_helper_builds_v5a() -> None:
    assert vectors.not_found("resp_does_not_exist_123") == vectors.V5A_BODY


def test_usage_null_is_a_warning_naming_real_servers() -> None:
    body = fresh(vectors.V1_BODY) | {"usage": None}
    found = check(body)
    assert summary(found) == [("warning", "null", "/usage")]
    assert "real servers" in found[0].message
    assert "real servers omit it or send null" in found[0].message


def test_usage_missing_says_why_it_is_only_a_warning() -> None:
    (found,) = check(vectors.V1_BODY)
    assert "real servers" in found.message
    assert "real servers omit it or send null" in found.message


def test_null_on_an_optional_field_is_silent_as_in_the_client() -> None:
    body = fresh(vectors.V4_BODY) | {"user": None, "status": None, "text": None}
    assert check(body) == []


def test_null_on_a_required_field_is_an_error() -> None:
    body = fresh(vectors.V4_BODY) | {"tools": None, "model": None}
    found = check(body)
    assert summary(found) == [("error", "type", "/model"), ("error", "type", "/tools")]
    assert found[0].message == "expected string, got null"


def test_a_missing_model_is_an_error() -> None:
    body = fresh(vectors.V4_BODY)
    del body["model"]
    found = check(body)
    assert summary(found) == [("error", "missing", "/model")]
    assert found[0].message == 'missing required field "model"'


def test_cache_write_tokens_missing_is_a_warning_saying_why() -> None:
    body = fresh(vectors.V4_BODY)
    del body["usage"]["input_tokens_details"]["cache_write_tokens"]
    [found] = check(body)
    assert (found.severity, found.kind) == ("warning", "missing")
    assert found.pointer == "/usage/input_tokens_details/cache_write_tokens"
    assert "the openai client (3.x) requires it" in found.message


def test_openai_cancel_example_shape_passes() -> None:
    # OpenAI's own example: usage and user null, output_text without logprobs.
    body = fresh(vectors.V2_BODY) | {"usage": None, "user": None}
    del body["output"][0]["content"][0]["logprobs"]
    found = check(body)
    assert errors(found) == []
    assert {v.pointer for v in found} == {"/usage"}


def test_status_is_optional() -> None:
    body = fresh(vectors.V1_BODY)
    del body["status"]
    assert summary(check(body)) == [USAGE_MISSING]


# ---------------------------------------------------------------------------------------------
# Errors: missing required fields and wrong types
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "object", "created_at", "output", "parallel_tool_calls"])
def test_missing_required_top_level_field_is_an_error(field: str) -> None:
    body = fresh(vectors.V4_BODY)
    del body[field]
    found = errors(check(body))
    assert summary(found) == [("error", "missing", f"/{field}")]
    assert found[0].message == f'missing required field "{field}"'


def test_missing_required_nested_field_points_into_the_item() -> None:
    body = fresh(vectors.V3_BODY)
    del body["output"][1]["call_id"]
    assert summary(errors(check(body))) == [("error", "missing", "/output/1/call_id")]


def test_wrong_type_deep_in_the_tree_has_the_exact_pointer() -> None:
    body = fresh(vectors.V2_BODY)
    body["output"][0]["content"][0]["text"] = 12
    found = errors(check(body))
    assert summary(found) == [("error", "type", "/output/0/content/0/text")]
    assert found[0].message == "expected string, got integer 12"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("created_at", "12", 'expected number, got string "12"'),
        ("parallel_tool_calls", 1, "expected boolean, got integer 1"),
        ("max_output_tokens", "2048", 'expected integer, got string "2048"'),
        ("max_output_tokens", 2048.5, "expected integer, got number 2048.5"),
        ("id", None, "expected string, got null"),
        ("output", {}, "expected array, got object"),
    ],
)
def test_strict_types(field: str, value: object, message: str) -> None:
    body = fresh(vectors.V2_BODY) | {field: value}
    found = errors(check(body))
    assert summary(found) == [("error", "type", f"/{field}")]
    assert found[0].message == message


def test_a_float_field_accepts_an_integer() -> None:
    body = fresh(vectors.V1_BODY) | {"temperature": 1, "created_at": 1755574978}
    assert errors(check(body)) == []


def test_wrong_type_in_usage_details() -> None:
    body = fresh(vectors.V4_BODY)
    body["usage"]["output_tokens_details"]["reasoning_tokens"] = True
    assert summary(errors(check(body))) == [
        ("error", "type", "/usage/output_tokens_details/reasoning_tokens")
    ]


def test_union_tags_do_not_leak_into_pointers() -> None:
    # The Chat Completions shape of tool_choice: a "function" key that matches no documented
    # field, and no top-level "name".
    body = fresh(vectors.V1_BODY) | {"tool_choice": {"type": "function", "function": {"name": "f"}}}
    assert summary(errors(check(body))) == [("error", "missing", "/tool_choice/name")]


def test_output_item_that_is_not_an_object() -> None:
    body = fresh(vectors.V1_BODY) | {"output": ["hello"]}
    found = errors(check(body))
    assert summary(found) == [("error", "type", "/output/0")]
    assert found[0].message == 'expected object, got string "hello"'


def test_output_item_without_type() -> None:
    body = fresh(vectors.V1_BODY) | {"output": [{"id": "x"}]}
    assert summary(errors(check(body))) == [("error", "missing", "/output/0/type")]


def test_200_body_that_is_a_json_array_is_an_error() -> None:
    found = check([vectors.V1])
    assert summary(found) == [("error", "type", "")]
    assert found[0].message == "expected object, got array"


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b"", b'{"id": '])
def test_non_json_body_is_an_error(body: bytes) -> None:
    assert summary(check(body)) == [("error", "body", "")]


def test_404_with_a_broken_envelope() -> None:
    body = {"error": {"type": 404}}
    assert summary(check(body, status=404)) == [
        ("error", "missing", "/error/message"),
        ("error", "type", "/error/type"),
    ]


# ---------------------------------------------------------------------------------------------
# Drift: warnings
# ---------------------------------------------------------------------------------------------


def test_unknown_top_level_field_is_a_warning() -> None:
    body = fresh(vectors.V4_BODY) | {"brand_new_field": {"flagged": False}}
    found = check(body)
    assert summary(found) == [("warning", "unknown_field", "/brand_new_field")]
    assert found[0].message == 'unknown field "brand_new_field" (not in the documented contract)'


def test_unknown_nested_field_is_a_warning_with_an_escaped_pointer() -> None:
    body = fresh(vectors.V2_BODY)
    body["output"][0]["phase"] = "final_answer"  # the client declares it: not drift
    body["output"][0]["content"][0]["a/b~c"] = 1
    assert summary(check(body)) == [
        ("warning", "unknown_field", "/output/0/content/0/a~1b~0c"),
        USAGE_MISSING,
    ]


def test_unknown_status_is_a_warning() -> None:
    body = fresh(vectors.V1_BODY) | {"status": "paused"}
    found = [v for v in check(body) if v.kind == "unknown_enum"]
    assert summary(found) == [("warning", "unknown_enum", "/status")]
    assert found[0].message == (
        'unknown status "paused"; documented: '
        "completed, failed, in_progress, cancelled, queued, incomplete"
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("object",), "response.v2"),
        (("truncation",), "middle"),
        (("service_tier",), "turbo"),
        (("tool_choice",), "sometimes"),
        (("reasoning", "effort"), "extreme"),
        (("output", 0, "role"), "user"),
        (("output", 0, "status"), "paused"),
    ],
)
def test_unknown_enum_values_are_warnings(path: tuple[str | int, ...], value: str) -> None:
    body = fresh(vectors.V2_BODY)
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    pointer = "".join(f"/{step}" for step in path)
    assert summary(check(body)) == [("warning", "unknown_enum", pointer), USAGE_MISSING]


def test_unknown_output_item_type_is_a_warning_not_an_error() -> None:
    body = fresh(vectors.V1_BODY)
    body["output"] = [{"type": "brand_new_item", "id": "bn_1", "payload": [1, 2]}]
    found = check(body)
    assert summary(found) == [("warning", "unknown_type", "/output/0/type"), USAGE_MISSING]
    assert found[0].message.startswith('unknown output item type "brand_new_item"; documented: ')
    assert "custom_tool_call" in found[0].message


def test_unknown_tool_type_is_a_warning() -> None:
    body = fresh(vectors.V3_BODY)
    body["tools"].append({"type": "hologram", "name": "ns", "tools": []})
    found = check(body)
    assert summary(found) == [("warning", "unknown_type", "/tools/1/type"), USAGE_MISSING]
    assert found[0].message.startswith('unknown tool type "hologram"')


def test_unknown_content_and_annotation_types_are_warnings() -> None:
    body = fresh(vectors.V2_BODY)
    content = body["output"][0]["content"]
    content[0]["annotations"] = [{"type": "page_citation", "page": 3}]
    content.append({"type": "output_audio", "data": "…"})
    assert summary(check(body)) == [
        ("warning", "unknown_type", "/output/0/content/0/annotations/0/type"),
        ("warning", "unknown_type", "/output/0/content/1/type"),
        USAGE_MISSING,
    ]


def test_documented_nulls_are_silent() -> None:
    body = fresh(vectors.V1_BODY) | {"conversation": None, "prompt": None, "output_text": None}
    assert summary(check(body)) == [USAGE_MISSING]


def test_non_json_content_type_is_a_warning() -> None:
    assert summary(check(vectors.V5B_BODY, status=404, content_type="text/plain")) == [
        ("warning", "body", "")
    ]
    assert check(vectors.V5B_BODY, status=404, content_type="application/json; charset=utf-8") == []


# ---------------------------------------------------------------------------------------------
# Statuses the route does not document
# ---------------------------------------------------------------------------------------------


def test_400_is_documented_409_is_not() -> None:
    body = {
        "error": {
            "message": "Cannot cancel a completed response.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert check(body, status=400) == []
    found = check(body, status=409)
    assert summary(found) == [("warning", "undocumented_status", "")]
    assert found[0].message.startswith(
        "HTTP 409 is not documented for /v1/responses/{response_id}/cancel (documented: 200, 400"
    )


def test_findings_on_undocumented_statuses_are_downgraded() -> None:
    found = check(b"<html>upstream timeout</html>", status=504, content_type="text/html")
    assert summary(found) == [("warning", "undocumented_status", ""), ("warning", "body", "")]
    found = check({"error": {"message": 1}}, status=409)
    assert summary(found) == [
        ("warning", "undocumented_status", ""),
        ("warning", "type", "/error/message"),
        ("warning", "missing", "/error/type"),
    ]


def test_conflict_helper_is_a_well_formed_error_body() -> None:
    assert summary(check(vectors.conflict("resp_x"), status=409)) == [
        ("warning", "undocumented_status", "")
    ]


# ---------------------------------------------------------------------------------------------
# Every documented variant validates cleanly
# ---------------------------------------------------------------------------------------------

OUTPUT_ITEMS: list[dict[str, Any]] = [
    {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [
            {
                "type": "output_text",
                "text": "See the sources.",
                "annotations": [
                    {"type": "file_citation", "file_id": "file_1", "index": 0, "filename": "a.md"},
                    {
                        "type": "url_citation",
                        "url": "https://yandex.cloud/en/docs/ai-studio",
                        "start_index": 0,
                        "end_index": 3,
                        "title": "AI Studio",
                    },
                    {
                        "type": "container_file_citation",
                        "container_id": "cntr_1",
                        "file_id": "file_2",
                        "start_index": 4,
                        "end_index": 7,
                        "filename": "plot.png",
                    },
                    {"type": "file_path", "file_id": "file_3", "index": 1},
                ],
                "logprobs": [
                    {
                        "token": "See",
                        "logprob": -0.01,
                        "bytes": [83, 101, 101],
                        "top_logprobs": [{"token": "See", "logprob": -0.01, "bytes": [83]}],
                    }
                ],
            },
            {"type": "refusal", "refusal": "I can't help with that."},
        ],
    },
    {
        "type": "file_search_call",
        "id": "fs_1",
        "status": "searching",
        "queries": ["pricing"],
        "results": None,
    },
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Moscow"}',
    },
    {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {
            "type": "search",
            "query": "yandex cloud",
            "sources": [{"type": "url", "url": "https://yandex.cloud"}],
        },
    },
    {
        "type": "web_search_call",
        "id": "ws_2",
        "status": "in_progress",
        "action": {"type": "open_page", "url": "https://yandex.cloud"},
    },
    {
        "type": "web_search_call",
        "id": "ws_3",
        "status": "failed",
        "action": {"type": "find_in_page", "url": "https://yandex.cloud", "pattern": "GPU"},
    },
    {
        "type": "computer_call",
        "id": "cu_1",
        "call_id": "call_2",
        "action": {"type": "screenshot"},
        "pending_safety_checks": [{"id": "sc_1", "code": "malicious_instructions", "message": ""}],
        "status": "in_progress",
    },
    {
        "type": "reasoning",
        "id": "rs_1",
        "encrypted_content": None,
        "summary": [{"type": "summary_text", "text": "Thinking."}],
        "content": [{"type": "reasoning_text", "text": "Step one."}],
        "status": "incomplete",
    },
    {"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAA", "created_by": "model"},
    {"type": "image_generation_call", "id": "ig_1", "status": "generating", "result": None},
    {
        "type": "code_interpreter_call",
        "id": "ci_1",
        "status": "interpreting",
        "container_id": "cntr_1",
        "code": "print(1)",
        "outputs": None,
    },
    {
        "type": "local_shell_call",
        "id": "ls_1",
        "call_id": "call_3",
        "action": {
            "type": "exec",
            "command": ["ls", "-la"],
            "timeout_ms": None,
            "working_directory": None,
            "env": {"LANG": "C"},
            "user": None,
        },
        "status": "in_progress",
    },
    {
        "type": "shell_call",
        "id": "sh_1",
        "call_id": "call_4",
        "action": {"commands": ["ls"], "timeout_ms": 1000, "max_output_length": None},
        "status": "completed",
        "created_by": "model",
    },
    {
        "type": "shell_call_output",
        "id": "sho_1",
        "call_id": "call_4",
        "output": [{"stdout": "a\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}],
        "max_output_length": None,
        "status": "completed",
    },
    {
        "type": "apply_patch_call",
        "id": "ap_1",
        "call_id": "call_5",
        "status": "completed",
        "operation": {"type": "update_file", "path": "a.py", "diff": "@@ -1 +1 @@"},
    },
    {
        "type": "apply_patch_call_output",
        "id": "apo_1",
        "call_id": "call_5",
        "status": "failed",
        "output": "conflict",
    },
    {
        "type": "mcp_call",
        "id": "mcp_1",
        "server_label": "docs",
        "name": "ask",
        "arguments": "{}",
        "output": None,
        "error": None,
        "status": "calling",
        "approval_request_id": None,
    },
    {
        "type": "mcp_list_tools",
        "id": "mcpl_1",
        "server_label": "docs",
        "tools": [{"name": "ask", "description": None, "input_schema": {"type": "object"}}],
        "error": None,
    },
    {
        "type": "mcp_approval_request",
        "id": "mcpr_1",
        "server_label": "docs",
        "name": "ask",
        "arguments": "{}",
    },
    {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_6", "name": "grep", "input": "x"},
    # The client's other items, beyond the seed
    {
        "type": "function_call_output",
        "id": "fco_1",
        "call_id": "call_1",
        "output": "+3°C",
        "status": "completed",
    },
    {
        "type": "computer_call_output",
        "id": "cco_1",
        "call_id": "call_2",
        "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AAAA"},
        "status": "completed",
    },
    {"type": "program", "id": "pg_1", "call_id": "call_7", "code": "f()", "fingerprint": "ab"},
    {
        "type": "program_output",
        "id": "pgo_1",
        "call_id": "call_7",
        "result": "1",
        "status": "completed",
    },
    {
        "type": "tool_search_call",
        "id": "tsc_1",
        "arguments": {"query": "weather"},
        "execution": "server",
        "status": "completed",
    },
    {
        "type": "tool_search_output",
        "id": "tso_1",
        "execution": "server",
        "status": "completed",
        "tools": [{"type": "function", "name": "f", "parameters": None, "strict": True}],
    },
    {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": [{"type": "shell"}]},
    {"type": "local_shell_call_output", "id": "lso_1", "output": "ok"},
    {
        "type": "mcp_approval_response",
        "id": "mar_1",
        "approval_request_id": "mcpr_1",
        "approve": True,
    },
    {
        "type": "custom_tool_call_output",
        "id": "ctco_1",
        "call_id": "call_6",
        "output": [{"type": "input_text", "text": "found"}],
        "status": "completed",
    },
]

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "name": "f", "description": None, "parameters": None, "strict": None},
    {
        "type": "file_search",
        "vector_store_ids": ["vs_1"],
        "max_num_results": 5,
        "ranking_options": {
            "ranker": "auto",
            "score_threshold": 0,
            "hybrid_search": {"embedding_weight": 0.7, "text_weight": 0.3},
        },
        "filters": None,
    },
    {
        "type": "computer_use_preview",
        "environment": "browser",
        "display_width": 1024,
        "display_height": 768,
    },
    {"type": "computer"},
    {"type": "web_search", "filters": None, "user_location": None, "search_context_size": "low"},
    {"type": "web_search_2025_08_26"},
    {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://mcp.example.com",
        "headers": None,
        "allowed_tools": ["ask"],
        "require_approval": "never",
    },
    {"type": "code_interpreter", "container": {"type": "auto"}},
    {
        "type": "image_generation",
        "model": "gpt-image-1",
        "quality": "auto",
        "size": "1024x1024",
        "output_format": "png",
        "output_compression": 100,
        "moderation": "auto",
        "background": "auto",
        "input_fidelity": None,
        "input_image_mask": {"file_id": "file_4"},
        "partial_images": 0,
    },
    {"type": "local_shell"},
    {"type": "shell"},
    {"type": "custom", "name": "grep", "description": "Search", "format": {"type": "text"}},
    {"type": "web_search_preview", "user_location": None, "search_context_size": "medium"},
    {"type": "web_search_preview_2025_03_11"},
    {"type": "apply_patch"},
    # The client's other tools, beyond the seed
    {"type": "programmatic_tool_calling"},
    {"type": "namespace", "name": "ns", "description": "Tools for docs", "tools": []},
    {"type": "tool_search", "execution": "client", "parameters": None},
]

TOOL_CHOICES: list[Any] = [
    "none",
    "auto",
    "required",
    {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
    {"type": "file_search"},
    {"type": "web_search_preview_2025_03_11"},
    {"type": "function", "name": "f"},
    {"type": "mcp", "server_label": "docs", "name": None},
    {"type": "custom", "name": "grep"},
    {"type": "apply_patch"},
    {"type": "shell"},
]

TEXT_FORMATS: list[dict[str, Any]] = [
    {"type": "text"},
    {"type": "json_object"},
    {
        "type": "json_schema",
        "name": "answer",
        "description": "An answer",
        "schema": {"type": "object", "properties": {}},
        "strict": True,
    },
]


def test_every_documented_output_item_and_tool_validates_cleanly() -> None:
    body = fresh(vectors.V4_BODY) | {"output": OUTPUT_ITEMS, "tools": TOOLS}
    assert check(body) == []


@pytest.mark.parametrize("tool_choice", TOOL_CHOICES)
def test_every_tool_choice_variant_validates_cleanly(tool_choice: Any) -> None:
    body = fresh(vectors.V1_BODY) | {"tool_choice": tool_choice}
    assert summary(check(body)) == [USAGE_MISSING]


@pytest.mark.parametrize("text_format", TEXT_FORMATS, ids=lambda f: str(f["type"]))
def test_every_text_format_validates_cleanly(text_format: dict[str, Any]) -> None:
    body = fresh(vectors.V1_BODY) | {"text": {"format": text_format, "verbosity": "low"}}
    assert summary(check(body)) == [USAGE_MISSING]


def test_the_full_documented_response_validates_cleanly() -> None:
    body = fresh(vectors.V4_BODY) | {
        "user": "user-42",
        "safety_identifier": None,
        "prompt_cache_key": None,
        "prompt_cache_retention": "24h",
        "max_tool_calls": 4,
        "prompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Moscow"}},
        "error": {"code": "server_error", "message": "The server had an error."},
        "incomplete_details": {"reason": "max_output_tokens"},
        "output_text": "Первые три пункта плана:",
        "conversation": {"id": "conv_1"},
        "top_logprobs": 0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0,
        "reasoning": {"effort": "high", "summary": "concise", "generate_summary": None},
    }
    assert check(body) == []


def test_json_schema_format_requires_its_schema() -> None:
    body = fresh(vectors.V1_BODY) | {"text": {"format": {"type": "json_schema", "name": "a"}}}
    assert summary(errors(check(body))) == [("error", "missing", "/text/format/schema")]


# ---------------------------------------------------------------------------------------------
# The drift walk is compiled per model; it must find what a plain loop over the plan finds
# ---------------------------------------------------------------------------------------------


def _plain_drift(model: BaseModel, pointer: str, out: list[Violation]) -> None:
    """The drift walk as a loop over each model's plan: what the compiled walkers unroll."""
    if isinstance(model, UnknownVariant):
        check_module._unknown_variant(model, pointer, out)
        return
    for field in check_module._walked(type(model)):
        absent = field.attr not in model.model_fields_set
        value = None if absent else getattr(model, field.attr)
        here = pointer + field.token
        if value is None:
            if field.tolerated is not None:
                out.append(check_module._broken_requirement(field, here, absent))
            continue
        if field.allowed:
            check_module._enums(field, value, here, out)
        if field.nested:
            _plain_drift_value(value, here, out)
    check_module._extras(model, pointer, out)


def _plain_drift_value(value: Any, pointer: str, out: list[Violation]) -> None:
    if isinstance(value, BaseModel):
        _plain_drift(value, pointer, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _plain_drift_value(item, f"{pointer}/{index}", out)
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain_drift_value(item, f"{pointer}/{check_module.escape_pointer_token(key)}", out)


def _places(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a parsed body, depth first."""
    found: list[tuple[Any, Any]] = []
    keys = node.keys() if isinstance(node, dict) else range(len(node))
    for key in list(keys):
        found.append((node, key))
        if isinstance(node[key], dict | list):
            found += _places(node[key])
    return found


_ODD_VALUES = st.sampled_from([None, "", "brand_new", "in_progress", "auto", "a/b~c", "Пример"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_compiled_drift_walk_finds_what_the_plan_loop_finds(data: st.DataObject) -> None:
    body = fresh(vectors.V4_BODY) | {"output": OUTPUT_ITEMS, "tools": TOOLS}
    body["reasoning"] = {"effort": "high", "summary": "concise", "generate_summary": None}
    body["usage"] = {  # cache_write_tokens absent: a tolerated requirement broken
        "input_tokens": 1,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 1,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 2,
    }
    body = orjson.loads(orjson.dumps(body))  # a copy of its own: it is changed below
    for _ in range(data.draw(st.integers(1, 3))):  # more would rarely leave the body valid
        places = _places(body)
        container, key = places[data.draw(st.integers(0, len(places) - 1))]
        action = data.draw(st.sampled_from(["set", "drop", "extra", "extra"]))
        if action == "set":
            container[key] = data.draw(_ODD_VALUES)
        elif action == "drop" and isinstance(container, dict):
            del container[key]
        elif action == "extra":  # to the object holding the place: always still valid
            target = container if isinstance(container, dict) else container[key]
            if isinstance(target, dict):
                target[data.draw(st.sampled_from(["x_new", "a/b", "~"]))] = 1
    route = classify("POST", "/v1/responses/resp_1/cancel")
    assert route.contract is not None
    try:
        model = route.contract.success(body)
    except ValidationError:
        reject()  # drift is looked for in bodies that validate (too many rejects fail the test)
    compiled: list[Violation] = []
    check_module._drift(model, "", compiled)
    plain: list[Violation] = []
    _plain_drift(model, "", plain)
    assert compiled == plain


def test_every_contract_model_has_its_walker_before_any_check() -> None:
    # plan_every_model ran when cassette_proxy.contract was imported: nothing compiles on a request
    models = [m for m in check_module._all_models() if m.__module__.startswith("cassette_proxy.")]
    assert len(models) > 100  # (tests declare models of their own: those compile when first met)
    assert all(model in check_module._WALKERS for model in models)
    walker = check_module._WALKERS[Response]
    assert "def walk(model, pointer, out):" in walker.__source__  # type: ignore[attr-defined]
