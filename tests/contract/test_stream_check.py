"""The event-stream checker, fed one decoded event at a time as the proxy feeds it."""

from __future__ import annotations

import dataclasses
from typing import Any, get_args

import orjson
import pytest
from openai.types.responses.response_stream_event import ResponseStreamEvent

from cassette_proxy.contract import StreamChecker, classify, stream_checker
from cassette_proxy.contract.check import check_value
from cassette_proxy.contract.events import KNOWN_EVENTS, STREAM_EVENT
from cassette_proxy.models.violations import Violation
from cassette_proxy.sse import decode_all
from tests import vectors

CREATE = classify("POST", "/v1/responses")
RETRIEVE = classify("GET", f"/v1/responses/{vectors.STREAM_ID}")


def checker(route: Any = CREATE) -> StreamChecker:
    found = stream_checker(route, 200)
    assert found is not None
    return found


def run(body: bytes, *, ended: bool = True, route: Any = CREATE) -> list[Violation]:
    """Every finding for a whole stream, events fed one by one, then the end."""
    check = checker(route)
    found = [v for event in decode_all(body) for v in check.check(event)]
    return found + check.finish(ended=ended)


def summary(found: list[Violation]) -> list[tuple[str, str, str]]:
    return [(v.severity, v.kind, v.pointer) for v in found]


def events() -> list[dict[str, Any]]:
    """A private copy of a documented stream's events (no two share a nested object)."""
    stream: list[dict[str, Any]] = orjson.loads(
        orjson.dumps(vectors.text_stream_events(vectors.STREAM_ID, ["a", "b", "c"]))
    )
    return stream


def test_only_streaming_routes_answered_200_get_a_checker() -> None:
    assert stream_checker(CREATE, 200) is not None
    assert stream_checker(RETRIEVE, 200) is not None
    assert stream_checker(CREATE, 400) is None
    assert stream_checker(classify("POST", "/v1/responses/resp_1/cancel"), 200) is None
    assert stream_checker(classify("GET", "/v1/models"), 200) is None


@pytest.mark.parametrize("route", [CREATE, RETRIEVE], ids=["create", "retrieve"])
def test_a_documented_stream_has_no_errors(route: Any) -> None:
    found = run(vectors.TEXT_STREAM, route=route)
    assert [v for v in found if v.severity == "error"] == []
    assert summary(found) == []


def test_the_response_in_a_lifecycle_event_is_checked_with_its_pointer() -> None:
    stream = events()
    stream[-1]["response"]["status"] = 7
    stream[1]["response"]["status"] = "thinking"
    found = summary(run(vectors.sse(stream)))
    assert ("error", "type", "/events/10/response/status") in found
    assert ("warning", "unknown_enum", "/events/1/response/status") in found
    assert len(found) == 2


def test_an_unknown_event_type_is_drift() -> None:
    stream = events()
    stream.insert(4, {"type": "response.output_text.sparkle", "sequence_number": 3})
    for number, event in enumerate(stream):
        event["sequence_number"] = number
    found = run(vectors.sse(stream))
    [drift] = [v for v in found if v.kind == "unknown_type"]
    assert (drift.severity, drift.pointer) == ("warning", "/events/4/type")
    assert '"response.output_text.sparkle"' in drift.message


def test_sequence_numbers_must_increase() -> None:
    stream = events()
    stream[5]["sequence_number"] = 2  # repeats the one two events earlier
    found = run(vectors.sse(stream))
    [error] = [v for v in found if v.severity == "error"]
    assert (error.kind, error.pointer) == ("stream", "/events/5/sequence_number")
    assert "sequence_number 2 does not increase (an earlier event had 4)" in error.message
    # the next event is compared with the highest number so far, not the broken one
    assert not [v for v in found if v.pointer == "/events/6/sequence_number"]


def test_a_missing_sequence_number_is_an_error() -> None:
    stream = events()
    del stream[3]["sequence_number"]
    found = summary(run(vectors.sse(stream)))
    assert found == [("error", "missing", "/events/3/sequence_number")]


@pytest.mark.parametrize(
    "error_event",
    [
        {"type": "error", "code": "server_error", "message": "The model failed.", "param": None},
        {
            "type": "error",
            "error": {
                "type": "server_error",
                "code": "server_error",
                "message": "The model failed.",
                "param": None,
            },
        },
    ],
    ids=["documented flat", "real nested"],
)
def test_error_events_in_both_shapes_end_the_stream(error_event: dict[str, Any]) -> None:
    stream = [*events()[:4], {**error_event, "sequence_number": 4}]
    assert summary(run(vectors.sse(stream))) == []


def test_a_nested_error_event_without_a_message_is_an_error() -> None:
    error = {"type": "server_error", "code": None, "param": None}
    stream = [*events()[:2], {"type": "error", "error": error, "sequence_number": 2}]
    found = summary(run(vectors.sse(stream)))
    assert found == [("error", "missing", "/events/2/error/message")]


def test_a_stream_that_ends_without_a_terminal_event_is_an_error_unless_it_was_cut() -> None:
    body = vectors.sse(events()[:-1])
    [error] = [v for v in run(body) if v.severity == "error"]
    assert (error.kind, error.pointer) == ("stream", "/events")
    assert "ended after 10 events without a terminal event" in error.message
    assert [v for v in run(body, ended=False) if v.severity == "error"] == []
    assert summary(checker().finish(ended=True)) == [("error", "stream", "/events")]


def test_the_order_around_the_stream() -> None:
    stream = events()
    extra = {**stream[4], "sequence_number": 99}
    body = (
        vectors.sse(stream[1:])  # no response.created first
        + vectors.sse([extra])  # after the terminal event
        + b'event: response.completed\ndata: {"type":"nope","sequence_number":100}\n\n'
        + b"data: [DONE]\n\n"
        + b"data: {not json\n\n"
    )
    found = summary(run(body))
    assert found == [
        ("warning", "stream", "/events/0/type"),  # the client's responses.stream() raises
        ("warning", "stream", "/events/10/type"),  # after response.completed
        ("warning", "unknown_type", "/events/11/type"),
        ("warning", "stream", "/events/11"),  # event: line and data's type differ
        ("warning", "stream", "/events/11/type"),
        ("warning", "stream", "/events/12"),  # [DONE]
        ("error", "body", "/events/13"),
    ]


def test_the_checker_holds_no_events() -> None:
    check = checker()
    stream = [{"type": "response.output_text.delta", "sequence_number": n} for n in range(2000)]
    for event in decode_all(vectors.sse(stream)):
        check.check(event)
    held = [getattr(check, name) for name in StreamChecker.__slots__]
    assert all(isinstance(value, int | str | None) or hasattr(value, "name") for value in held)


# ---------------------------------------------------------------------------------------------
# Each event type with its own fields
# ---------------------------------------------------------------------------------------------


def one(event: dict[str, Any], index: int = 12) -> list[tuple[str, str, str]]:
    """The findings for ``event`` fed as the ``index``-th event of a stream already going."""
    check = checker(RETRIEVE)
    [decoded] = decode_all(vectors.sse([event]))
    moved = dataclasses.replace(decoded, index=index)
    return summary(check.check(moved))


def test_a_delta_of_the_wrong_type_is_an_error_at_its_pointer() -> None:
    delta = {**events()[4], "delta": 7}
    assert one(delta) == [("error", "type", "/events/12/delta")]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            {
                "type": "response.output_text.delta",
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "delta": "a",
                "sequence_number": 1,
            },
            [("error", "missing", "/events/12/logprobs")],
            id="text delta without logprobs",
        ),
        pytest.param(
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc",
                "output_index": 1,
                "delta": '{"ci',
                "obfuscation": "x1",
                "sequence_number": 1,
            },
            [],
            id="arguments delta with obfuscation",
        ),
        pytest.param(
            {
                "type": "response.function_call_arguments.done",
                "item_id": "fc",
                "output_index": 1,
                "arguments": 5,
                "sequence_number": 1,
            },
            [("error", "type", "/events/12/arguments")],
            id="arguments done, wrong type",
        ),
        pytest.param(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "sequence_number": 1,
                "item": {"type": "function_call", "call_id": "c", "name": "f"},
            },
            [("error", "missing", "/events/12/item/arguments")],
            id="item checked as an output item",
        ),
        pytest.param(
            {
                "type": "response.content_part.added",
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "sequence_number": 1,
                "part": {"type": "output_text", "text": "", "annotations": [], "sparkle": 1},
            },
            [("warning", "unknown_field", "/events/12/part/sparkle")],
            id="part checked as content",
        ),
        pytest.param(
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "rs",
                "output_index": 0,
                "summary_index": "0",
                "delta": "Think",
                "sequence_number": 1,
            },
            [("error", "type", "/events/12/summary_index")],
            id="summary index as a string",
        ),
        pytest.param(
            {
                "type": "response.web_search_call.searching",
                "item_id": "ws",
                "output_index": 2,
                "sequence_number": 1,
            },
            [],
            id="search progress",
        ),
        pytest.param(
            {
                "type": "response.image_generation_call.partial_image",
                "item_id": "ig",
                "output_index": 0,
                "partial_image_index": 0,
                "sequence_number": 1,
            },
            [("error", "missing", "/events/12/partial_image_b64")],
            id="partial image without its image",
        ),
        pytest.param(
            {"type": "response.mcp_call.failed", "output_index": 0, "sequence_number": 1},
            [("error", "missing", "/events/12/item_id")],
            id="mcp progress without item_id",
        ),
        pytest.param(
            {
                "type": "response.output_text.annotation.added",
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "annotation_index": 0,
                "sequence_number": 1,
                "annotation": {
                    "type": "url_citation",
                    "url": "https://yandex.cloud",
                    "start_index": 0,
                    "end_index": 1,
                    "title": "Y",
                },
            },
            [],
            id="annotation added",
        ),
        pytest.param(
            {
                "type": "response.refusal.done",
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "refusal": None,
                "sequence_number": 1,
            },
            [("error", "type", "/events/12/refusal")],
            id="refusal done with null",
        ),
    ],
)
def test_each_event_type_is_checked_with_its_own_fields(
    event: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    assert one(event) == expected


def test_every_event_type_the_client_knows_is_known() -> None:
    client_types = {
        str(get_args(model.model_fields["type"].annotation)[0])
        for model in get_args(get_args(ResponseStreamEvent)[0])
    }
    assert client_types == KNOWN_EVENTS
    for kind in sorted(client_types):
        found = check_value({"type": kind, "sequence_number": 0}, STREAM_EVENT.validate_python)
        assert [v for v in found if v.kind == "unknown_type"] == [], kind
