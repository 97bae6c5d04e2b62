"""Every Responses route through the proxy with the real ``openai`` client, sync and async.

The upstream (:mod:`tests.responses_upstream`) plays each route with documented bodies, and with
real drift and real errors on request. Each route is recorded and replayed; the log says which
route it was, what the contract found (severity, kind, pointer), and nothing for documented
bodies: no false drift.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import vcr
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.persist import save_cassette
from tests import vectors
from tests.client import post
from tests.conftest import DUMMY_KEY, RunningProxy, StartProxy
from tests.responses_upstream import CREATED_ID, ResponsesUpstream

MODEL = "gpt://b1gexamplefolder000/yandexgpt/latest"
Found = tuple[str, str, str]  # (severity, kind, pointer)


@pytest.fixture
def responses_upstream() -> ResponsesUpstream:
    return ResponsesUpstream()


@pytest.fixture
async def upstream_server(
    responses_upstream: ResponsesUpstream, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> TestServer:
    """The proxies of this module (``start_proxy``) stand in front of the Responses upstream."""
    return await aiohttp_server(responses_upstream.app(), host="127.0.0.1")


# ---------------------------------------------------------------------------------------------
# One call per route, with the async and the sync client (the sync one on a thread, so the
# proxy on this event loop keeps serving)
# ---------------------------------------------------------------------------------------------

Raw = Any  # openai's LegacyAPIResponse[...]


async def call_async(client: openai.AsyncOpenAI, route: str, response_id: str, case: str) -> Raw:
    responses = client.responses.with_raw_response
    if route == "create":
        return await responses.create(
            model=MODEL, input="Что такое AI Studio?", metadata={"case": case}
        )
    if route == "retrieve":
        return await responses.retrieve(response_id)
    if route == "delete":
        return await responses.delete(response_id)
    if route == "cancel":
        return await responses.cancel(response_id)
    return await client.responses.input_items.with_raw_response.list(response_id)


def call_sync(client: openai.OpenAI, route: str, response_id: str, case: str) -> Raw:
    responses = client.responses.with_raw_response
    if route == "create":
        return responses.create(model=MODEL, input="Что такое AI Studio?", metadata={"case": case})
    if route == "retrieve":
        return responses.retrieve(response_id)
    if route == "delete":
        return responses.delete(response_id)
    if route == "cancel":
        return responses.cancel(response_id)
    return client.responses.input_items.with_raw_response.list(response_id)


async def call(
    proxy: RunningProxy, route: str, response_id: str, *, sync: bool, case: str = "ok"
) -> Raw:
    if sync:
        with openai.OpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0) as client:
            return await asyncio.to_thread(call_sync, client, route, response_id, case)
    async with openai.AsyncOpenAI(
        base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0
    ) as client:
        return await call_async(client, route, response_id, case)


def findings(line: dict[str, Any], side: str = "response") -> list[Found]:
    return [
        (v["severity"], v["kind"], v["pointer"]) for v in line["validation"][side]["violations"]
    ]


ROUTES = ["create", "retrieve", "delete", "cancel", "input_items"]
OK_ID = "resp_ok_0123456789abcdef0123456789abcdef0123456789"


def parsed_id(route: str, raw: Raw) -> str | None:
    """What the client made of the body: the Response's id, or the list's first item's."""
    parsed = raw.parse()
    if route == "delete":
        return None  # the client ignores the deletion object's body
    if route == "input_items":
        return str(parsed.data[0].id)
    return str(parsed.id)


# ---------------------------------------------------------------------------------------------
# Documented bodies: recorded, replayed, and not one finding
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("route", ROUTES)
async def test_each_route_records_and_replays_with_no_finding(
    start_proxy: StartProxy, tmp_path: Path, route: str, sync: bool
) -> None:
    cassette = tmp_path / f"{route}.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once", validation="strict")
    raw = await call(recording, route, OK_ID, sync=sync)
    assert raw.http_response.status_code == 200
    assert raw.headers["x-proxy-source"] == "upstream"
    assert raw.headers["x-proxy-validation"] == "passed"
    recorded_id = parsed_id(route, raw)
    await recording.stop()
    [line] = recording.exchanges()
    assert line["route"] == route
    assert findings(line, "request") == []
    assert findings(line, "response") == []

    replaying = await start_proxy(cassette=cassette, record_mode="none", validation="strict")
    raw = await call(replaying, route, OK_ID, sync=sync)
    assert raw.headers["x-proxy-source"] == "cassette"
    assert raw.headers["x-proxy-validation"] == "passed"
    assert parsed_id(route, raw) == recorded_id
    [line] = replaying.exchanges()
    assert (line["route"], line["verdict"]) == (route, "passed")
    assert findings(line) == []


@pytest.mark.parametrize(
    "suffix", ["", "_new", "_bare"], ids=["response", "response.deleted", "none"]
)
async def test_every_deletion_object_servers_send_passes(
    start_proxy: StartProxy, suffix: str
) -> None:
    proxy = await start_proxy(validation="strict")
    raw = await call(proxy, "delete", OK_ID + suffix, sync=False)
    assert raw.headers["x-proxy-validation"] == "passed"
    assert findings(proxy.exchanges()[0]) == []


# ---------------------------------------------------------------------------------------------
# Drift and errors in bodies: the right severity and pointer, per route
# ---------------------------------------------------------------------------------------------

RESPONSE_CASES: dict[str, Found] = {
    "field": ("warning", "unknown_field", "/brand_new_field"),
    "enum": ("warning", "unknown_enum", "/status"),
    "item": ("warning", "unknown_type", "/output/1/type"),
    "nomodel": ("error", "missing", "/model"),
    "wrongtype": ("error", "type", "/created_at"),
}
CASES: dict[str, dict[str, Found]] = {
    "create": RESPONSE_CASES,
    "retrieve": RESPONSE_CASES,
    "delete": {
        "field": ("warning", "unknown_field", "/brand_new_field"),
        "enum": ("warning", "unknown_enum", "/object"),
        "nomodel": ("error", "missing", "/deleted"),
        "wrongtype": ("error", "type", "/deleted"),
    },
    "input_items": {
        "field": ("warning", "unknown_field", "/brand_new_field"),
        "enum": ("warning", "unknown_enum", "/object"),
        "item": ("warning", "unknown_type", "/data/2/type"),
        "nomodel": ("error", "missing", "/has_more"),
        "wrongtype": ("error", "type", "/has_more"),
    },
}


@pytest.mark.parametrize(
    ("route", "case", "expected"),
    [
        pytest.param(route, case, expected, id=f"{route}-{case}")
        for route, cases in CASES.items()
        for case, expected in cases.items()
    ],
)
async def test_drift_and_errors_are_reported_with_severity_and_pointer(
    start_proxy: StartProxy, route: str, case: str, expected: Found
) -> None:
    proxy = await start_proxy()  # warn: the client still gets the body
    response_id = CREATED_ID if route == "create" else f"resp_{case}_0123456789abcdef"
    raw = await call(proxy, route, response_id, sync=False, case=case)
    assert raw.http_response.status_code == 200
    [line] = proxy.exchanges()
    assert line["route"] == route
    assert findings(line) == [expected]
    verdict = "failed" if expected[0] == "error" else "passed"
    # The response streamed through before it was checked: its verdict is in the log.
    assert (raw.headers["x-proxy-validation"], line["verdict"]) == ("pending", verdict)


@pytest.mark.parametrize("route", ["retrieve", "delete", "input_items", "cancel"])
@pytest.mark.parametrize("shape", ["resp_flat404_x", "resp_gone_x"], ids=["flat", "enveloped"])
async def test_errors_in_both_shapes_are_documented_on_every_route(
    start_proxy: StartProxy, route: str, shape: str
) -> None:
    proxy = await start_proxy(validation="strict")
    with pytest.raises(openai.NotFoundError) as raised:
        await call(proxy, route, shape, sync=False)
    assert raised.value.response.headers["x-proxy-validation"] == "passed"
    [line] = proxy.exchanges()
    assert (line["route"], line["status"], findings(line)) == (route, 404, [])


@pytest.mark.parametrize("case", ["flat400", "enveloped400"])
async def test_a_create_error_in_either_shape_is_documented(
    start_proxy: StartProxy, case: str
) -> None:
    proxy = await start_proxy(validation="strict")
    with pytest.raises(openai.BadRequestError) as raised:
        await call(proxy, "create", CREATED_ID, sync=False, case=case)
    assert raised.value.code == "invalid_value"
    assert raised.value.response.headers["x-proxy-validation"] == "passed"
    [line] = proxy.exchanges()
    assert (line["route"], line["status"], findings(line)) == ("create", 400, [])


# ---------------------------------------------------------------------------------------------
# Requests: the body of create, the query of retrieve and input_items
# ---------------------------------------------------------------------------------------------


async def test_create_without_a_model_is_a_request_error(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
        raw = await client.responses.with_raw_response.create(input="hi")
    assert raw.headers["x-proxy-validation"] == "failed"
    [line] = proxy.exchanges()
    assert findings(line, "request") == [("error", "missing", "/body/model")]
    assert findings(line, "response") == []


async def test_strict_mode_refuses_a_create_without_a_model_before_the_upstream(
    start_proxy: StartProxy, responses_upstream: ResponsesUpstream
) -> None:
    proxy = await start_proxy(validation="strict")
    async with openai.AsyncOpenAI(
        base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0
    ) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.responses.create(input="hi", extra_body={"temperature": "warm"})
    assert "/body/model" in raised.value.message
    assert "/body/temperature" in raised.value.message
    assert responses_upstream.received == []


async def test_create_request_fields_are_checked_with_their_models(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
        await client.responses.create(
            model=MODEL,
            input=[
                {"role": "developer", "content": "Answer in Russian."},
                {"role": "user", "content": [{"type": "input_text", "text": "Привет"}]},
                {"type": "function_call_output", "call_id": "call_1", "output": "+3°C"},
            ],
            instructions="Be brief.",
            tools=[{"type": "function", "name": "weather", "parameters": {}, "strict": True}],
            tool_choice="auto",
            text={"format": {"type": "text"}, "verbosity": "low"},
            reasoning={"effort": "low"},
            max_output_tokens=256,
            temperature=0.3,
            top_p=0.9,
            background=False,
            store=True,
            include=["reasoning.encrypted_content"],
            truncation="disabled",
            parallel_tool_calls=True,
            user="user-1",
            extra_body={"brand_new_param": True, "truncation": "middle"},
        )
    [line] = proxy.exchanges()
    assert findings(line, "request") == [
        ("warning", "unknown_enum", "/body/truncation"),
        ("warning", "unknown_field", "/body/brand_new_param"),
    ]


@pytest.mark.parametrize(
    ("route", "query", "expected"),
    [
        ("input_items", {"limit": 500}, [("error", "type", "/query/limit")]),
        ("input_items", {"order": "sideways"}, [("warning", "unknown_enum", "/query/order")]),
        ("input_items", {"limit": 5, "order": "asc", "after": "msg_1"}, []),
        (
            "retrieve",
            {"include": ["bogus.field"]},
            [("warning", "unknown_enum", "/query/include/0")],
        ),
        ("retrieve", {"starting_after": "soon"}, [("error", "type", "/query/starting_after")]),
        ("retrieve", {"include": ["message.output_text.logprobs"], "starting_after": 3}, []),
        ("delete", {"force": "true"}, [("warning", "unknown_field", "/query/force")]),
    ],
)
async def test_query_parameters_are_checked(
    start_proxy: StartProxy, route: str, query: dict[str, Any], expected: list[Found]
) -> None:
    proxy = await start_proxy()
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
        if route == "input_items":
            await client.responses.input_items.list(OK_ID, extra_query=query)
        elif route == "retrieve":
            await client.responses.retrieve(OK_ID, extra_query=query)
        else:
            await client.responses.delete(OK_ID, extra_query=query)
    [line] = proxy.exchanges()
    assert findings(line, "request") == expected


# ---------------------------------------------------------------------------------------------
# Audit and cassette check: per route, and per event type for streams
# ---------------------------------------------------------------------------------------------


async def test_audit_groups_drift_and_failures_per_route(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    for route in ("retrieve", "input_items", "delete"):
        await call(proxy, route, "resp_field_0123456789abcdef", sync=False)
    await call(proxy, "retrieve", "resp_nomodel_0123456789abcdef", sync=False)
    await proxy.stop()
    result = CliRunner().invoke(main, ["audit", "--format", "json", str(proxy.log_path)])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert sorted(d["where"] for d in report["drift"]) == [
        "delete response /brand_new_field",
        "input_items response /brand_new_field",
        "retrieve response /brand_new_field",
    ]
    [failure] = report["validation_failures"]
    assert (failure["where"], failure["pointer"]) == ("retrieve response", "/model")


def test_cassette_check_reports_a_recorded_stream_per_event(tmp_path: Path) -> None:
    events = vectors.text_stream_events(vectors.STREAM_ID, ["Да", "."])
    events[4]["delta"] = 7  # the first delta: a wrong type
    events.insert(6, {"type": "response.output_text.sparkle", "sequence_number": 6})
    for number, event in enumerate(events):
        event["sequence_number"] = number
    cassette = tmp_path / "stream.yaml"
    request = vcr.request.Request(
        "POST",
        "https://ai.api.cloud.yandex.net/v1/responses",
        orjson.dumps({"model": MODEL, "input": "Да?", "stream": True}),
        {"Authorization": "Bearer sha256:0123abcd"},
    )
    headers = (("Content-Type", "text/event-stream"),)
    save_cassette(cassette, [Interaction(request, 200, "OK", headers, vectors.sse(events))])
    result = CliRunner().invoke(main, ["cassette", "check", "--format", "json", str(cassette)])
    assert result.exit_code == 1, result.output  # the wrong type is an error
    found = {
        (f["severity"], f["pointer"]): f["message"]
        for f in orjson.loads(result.output)["cassettes"][0]["findings"]
        if f["kind"] == "contract"
    }
    assert found == {
        ("error", "/interactions/0/response/body/events/4/delta"): (
            "create type: response.output_text.delta: expected string, got integer 7"
        ),
        ("warning", "/interactions/0/response/body/events/6/type"): (
            'create unknown_type: unknown event type "response.output_text.sparkle"; '
            "documented: the Responses API's stream events (reference streaming.md)"
        ),
    }


async def test_a_secret_quoted_by_a_finding_is_fingerprinted(start_proxy: StartProxy) -> None:
    key = "sk-" + "proj-" + "Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz1Xc3Vb5Nm7"
    proxy = await start_proxy(validation="strict")
    async with openai.AsyncOpenAI(
        base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0
    ) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.responses.create(input="hi", extra_body={"max_output_tokens": key})
    assert "/body/max_output_tokens: expected integer, got string" in raised.value.message
    assert "sha256:" in raised.value.message
    assert key not in raised.value.message
    assert key not in proxy.log_path.read_text()


async def test_a_create_body_that_is_not_json_is_a_request_error(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    answer = await post(proxy, "/v1/responses", data=b'{"model": "gpt://f/yandexgpt/latest",')
    assert answer.headers["X-Proxy-Validation"] == "failed"
    [line] = proxy.exchanges()
    [finding] = line["validation"]["request"]["violations"]
    assert (finding["severity"], finding["kind"], finding["pointer"]) == ("error", "body", "/body")
    assert finding["message"].startswith("body is not JSON (")
