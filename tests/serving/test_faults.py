"""Faults on demand: each action through the real proxy, seen by the real ``openai`` client, in
pass-through, recording and replay, and logged as such."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest
import yaml
from aiohttp.test_utils import TestServer

from cassette_proxy.models.faults import FaultRule
from cassette_proxy.serving.faults import Faults
from cassette_proxy.sse import decode_all
from tests import vectors
from tests.client import cancel
from tests.conftest import DUMMY_KEY, RunningProxy, StartProxy
from tests.fake_upstream import FakeUpstream
from tests.serving.control.admin import call
from tests.stream_upstream import StreamUpstream

CANCEL = "/v1/responses/*/cancel"
TIMEOUT = aiohttp.ClientTimeout(total=30)


@pytest.fixture
async def stream_url(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    server = await aiohttp_server(StreamUpstream().app(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def install(proxy: RunningProxy, **rule: Any) -> dict[str, Any]:
    answer = await call(proxy.url, "POST", "/_proxy/faults", rule)
    assert answer.status == 201, answer.body
    installed: dict[str, Any] = answer.json()["faults"][-1]
    return installed


def _stream(proxy: RunningProxy) -> tuple[BaseException | None, list[str]]:
    """A streamed create with the openai client: the error it raised (if any), and the event
    types it saw."""
    client = openai.OpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0)
    seen: list[str] = []
    with client:
        try:
            for event in client.responses.create(model="stream-ok", input="x", stream=True):
                seen.append(event.type)
        except (openai.APIError, openai.APIConnectionError) as exc:
            return exc, seen
    return None, seen


async def _read_into(response: aiohttp.ClientResponse, received: bytearray) -> None:
    async for data in response.content.iter_any():
        received += data


# -- answering in the upstream's place -------------------------------------------------------


async def test_a_status_fault_answers_in_the_envelope_the_service_writes(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(admin=True)
    await install(proxy, path=CANCEL, status=503, times=1)
    answer = await cancel(proxy, vectors.V1_ID)
    assert answer.status == 503
    assert answer.headers["X-Proxy-Source"] == "proxy"
    assert "x-should-retry" not in answer.headers  # the client decides, as for the service's
    error = answer.error()
    assert (error["type"], error["code"]) == ("server_error", None)
    assert error["message"].endswith(
        " (injected by cassette-proxy: fault rule 1, for * /v1/responses/*/cancel)"
    )
    assert fake_upstream.cancels == 0  # answered in its place: nothing forwarded
    assert (await cancel(proxy, vectors.V1_ID)).status == 200  # it fired its one time
    first, second = proxy.exchanges()
    assert first["fault"] == {"rule": 1, "action": "status", "delay_ms": None,
                              "applied": True, "note": None}  # fmt: skip
    assert (first["source"], first["status"]) == ("proxy", 503)
    assert second["fault"] is None


async def test_a_status_fault_sends_the_rules_own_error_and_headers(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(admin=True)
    own = {"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}
    await install(proxy, status=429, headers={"Retry-After": "7", "x-should-retry": "false"},
                  error=own)  # fmt: skip
    answer = await cancel(proxy, vectors.V1_ID)
    assert (answer.status, answer.headers["Retry-After"]) == (429, "7")
    assert answer.headers["x-should-retry"] == "false"
    assert answer.error() == {**own, "param": None}

    def call_with_the_client() -> openai.RateLimitError:
        client = openai.OpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY)
        with client, pytest.raises(openai.RateLimitError) as caught:
            client.responses.cancel(vectors.V1_ID)
        return caught.value

    error = await asyncio.to_thread(call_with_the_client)  # x-should-retry: false, so no retry
    assert (error.code, error.message) == ("rate_limit_exceeded", "Error code: 429 - slow down")
    assert len(proxy.exchanges()) == 2


async def test_a_one_shot_429_is_retried_by_the_client_with_its_retry_after(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(admin=True)
    await install(proxy, path=CANCEL, times=1, status=429, headers={"Retry-After": "1"})

    def cancel_with_retries() -> str:
        with openai.OpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
            return client.responses.cancel(vectors.V1_ID).status or ""

    assert await asyncio.to_thread(cancel_with_retries) == "cancelled"
    faulted, retried = proxy.exchanges()
    assert (faulted["status"], retried["status"]) == (429, 200)
    assert retried["request"]["headers"]["x-stainless-retry-count"] == "1"
    assert fake_upstream.cancels == 1
    assert (await call(proxy.url, "GET", "/_proxy/faults")).json()["faults"] == []


async def test_a_fault_in_replay_leaves_the_recording_to_the_retry(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.yaml"
    recording = await start_proxy(cassette=cassette)
    assert (await cancel(recording, vectors.V1_ID)).status == 200
    await recording.stop()
    proxy = await start_proxy(cassette=cassette, record_mode="none", admin=True)
    await install(proxy, path=CANCEL, times=1, status=500)

    def cancel_with_retries() -> str:
        with openai.OpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
            return client.responses.cancel(vectors.V1_ID).status or ""

    assert await asyncio.to_thread(cancel_with_retries) == "cancelled"  # the one recording
    assert [e["source"] for e in proxy.exchanges()] == ["proxy", "cassette"]
    assert fake_upstream.cancels == 1


async def test_a_reset_reaches_the_client_as_a_connection_error_and_is_retried(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(admin=True)
    await install(proxy, path=CANCEL, reset=True, times=1)

    def cancel(retries: int) -> str:
        client = openai.OpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=retries)
        with client:
            return client.responses.cancel(vectors.V1_ID).status or ""

    assert await asyncio.to_thread(cancel, 2) == "cancelled"
    await install(proxy, path=CANCEL, reset=True, times=1)
    with pytest.raises(openai.APIConnectionError):
        await asyncio.to_thread(cancel, 0)
    lines = proxy.exchanges()
    assert [(e["status"], e["error"]) for e in lines] == [
        (444, "fault_reset"), (200, None), (444, "fault_reset")
    ]  # fmt: skip
    assert lines[0]["fault"]["action"] == "reset"


async def test_a_delay_holds_the_headers_back(start_proxy: StartProxy) -> None:
    """A client whose timeout is shorter than the delay times out; the next call is served."""
    proxy = await start_proxy(admin=True)
    await install(proxy, path=CANCEL, delay_ms=3000, times=1)

    def cancel(timeout: float) -> str:
        client = openai.OpenAI(
            base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0, timeout=timeout
        )
        with client:
            return client.responses.cancel(vectors.V1_ID).status or ""

    with pytest.raises(openai.APITimeoutError):
        await asyncio.to_thread(cancel, 0.3)
    assert await asyncio.to_thread(cancel, 10) == "cancelled"
    first, second = proxy.exchanges()
    assert first["error"] == "client_disconnected"  # it left during the delay: nothing forwarded
    assert first["fault"] == {"rule": 1, "action": "delay", "delay_ms": 3000.0,
                              "applied": True, "note": None}  # fmt: skip
    assert second["fault"] is None


# -- event streams -------------------------------------------------------------------------


async def test_an_error_event_mid_stream_reaches_the_client_as_its_api_error(
    start_proxy: StartProxy, stream_url: str
) -> None:
    proxy = await start_proxy(upstream=stream_url, admin=True)
    await install(proxy, method="POST", path="/v1/responses", error_after_events=3, times=1)
    error, seen = await asyncio.to_thread(_stream, proxy)
    assert isinstance(error, openai.APIError)
    assert seen == ["response.created", "response.in_progress", "response.output_item.added"]
    assert error.code == "server_error"
    assert "injected by cassette-proxy: fault rule 1" in error.message
    [line] = proxy.exchanges()
    assert (line["status"], line["source"], line["error"]) == (200, "upstream", "server_error")
    assert line["fault"]["action"] == "stream_error"
    assert (line["stream"]["events"], line["stream"]["complete"]) == (3, False)
    error, seen = await asyncio.to_thread(_stream, proxy)
    assert error is None
    assert seen[-1] == "response.completed"


async def test_a_stream_fault_with_the_rules_own_error(
    start_proxy: StartProxy, stream_url: str
) -> None:
    proxy = await start_proxy(upstream=stream_url, admin=True)
    own = {"code": "rate_limit_exceeded", "message": "Too many tokens", "type": "tokens"}
    await install(proxy, path="/v1/responses", error_after_events=0, error=own)
    error, seen = await asyncio.to_thread(_stream, proxy)
    assert seen == []
    assert isinstance(error, openai.APIError)
    assert (error.code, error.message, error.type) == ("rate_limit_exceeded", "Too many tokens",
                                                       "tokens")  # fmt: skip


async def test_a_cut_stream_reaches_the_client_as_a_broken_connection(
    start_proxy: StartProxy, stream_url: str
) -> None:
    proxy = await start_proxy(upstream=stream_url, admin=True)
    await install(proxy, path="/v1/responses", cut_after_events=2)
    received = bytearray()
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(
            proxy.url + "/v1/responses",
            data=orjson.dumps({"model": "stream-ok", "input": "x", "stream": True}),
        ) as response,
    ):
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await _read_into(response, received)
    assert [e.type for e in decode_all(bytes(received))] == [
        "response.created", "response.in_progress"
    ]  # fmt: skip
    [line] = proxy.exchanges()
    assert (line["error"], line["fault"]["action"]) == ("fault_cut", "stream_cut")


async def test_stretched_gaps_deliver_the_whole_stream(
    start_proxy: StartProxy, stream_url: str, tmp_path: Path
) -> None:
    """The stream arrives whole, more slowly; in a recording mode it is still not recorded."""
    cassette = tmp_path / "c.yaml"
    proxy = await start_proxy(upstream=stream_url, admin=True, cassette=cassette)
    await install(proxy, path="/v1/responses", gap_ms=20)
    error, seen = await asyncio.to_thread(_stream, proxy)
    assert error is None
    assert seen[0] == "response.created"
    assert seen[-1] == "response.completed"
    [line] = proxy.exchanges()
    assert line["fault"]["action"] == "gaps"
    assert line["not_recorded"] == "fault rule 1 acted on it"
    frames = line["stream"]["events"]
    assert frames == len(seen)
    await proxy.stop()
    assert not cassette.exists() or yaml.safe_load(cassette.read_text())["interactions"] == []


async def test_a_stream_fault_acts_on_a_replayed_stream(
    start_proxy: StartProxy, stream_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "stream.yaml"
    recording = await start_proxy(upstream=stream_url, cassette=cassette)
    assert (await asyncio.to_thread(_stream, recording))[0] is None
    await recording.stop()
    proxy = await start_proxy(
        upstream=stream_url, cassette=cassette, record_mode="none", admin=True
    )
    await install(proxy, path="/v1/responses", error_after_events=2, times=1)
    error, seen = await asyncio.to_thread(_stream, proxy)
    assert isinstance(error, openai.APIError)
    assert seen == ["response.created", "response.in_progress"]
    # It used no recording up (as it recorded none): the one recording is still there.
    error, seen = await asyncio.to_thread(_stream, proxy)
    assert (error, seen[-1]) == (None, "response.completed")
    faulted, replayed = proxy.exchanges()
    assert (faulted["source"], faulted["error"]) == ("cassette", "server_error")
    assert (replayed["source"], replayed["fault"]) == ("cassette", None)
    state = (await call(proxy.url, "GET", "/_proxy/cassette")).json()["cassette"]
    assert (state["played"], state["unused"]) == (1, 0)


async def test_a_stream_fault_on_a_body_that_is_not_a_stream_says_so(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(admin=True)
    await install(proxy, path=CANCEL, error_after_events=1, times=1)
    assert (await cancel(proxy, vectors.V1_ID)).status == 200
    [line] = proxy.exchanges()
    assert line["fault"]["applied"] is False
    assert line["fault"]["note"] == "the response is not an event stream"


async def test_a_stream_that_ends_before_the_rules_count_says_so(
    start_proxy: StartProxy, stream_url: str
) -> None:
    proxy = await start_proxy(upstream=stream_url, admin=True)
    await install(proxy, path="/v1/responses", cut_after_events=500)
    error, _ = await asyncio.to_thread(_stream, proxy)
    assert error is None
    [line] = proxy.exchanges()
    assert line["fault"]["applied"] is False
    assert "before the 500 the rule waits for" in line["fault"]["note"]


# -- which requests, how often ----------------------------------------------------------------


async def test_rules_match_on_method_path_glob_and_cassette_name(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(admin=True, cassette_dir=tmp_path / "dir", record_mode="all")
    await install(proxy, method="GET", path=CANCEL, status=500)  # never: cancel is a POST
    await install(proxy, path="/v1/other/*", status=502)
    await install(proxy, path=CANCEL, cassette="only-me", status=503)
    assert (await cancel(proxy, vectors.V1_ID)).status == 200
    answer = await call(proxy.url, "POST", f"/v1/responses/{vectors.V1_ID}/cancel", cassette="x")
    assert answer.status == 200
    answer = await call(proxy.url, "POST", f"/v1/responses/{vectors.V1_ID}/cancel",
                        cassette="only-me")  # fmt: skip
    assert answer.status == 503
    assert (await call(proxy.url, "GET", "/v1/other/a/b")).status == 502  # * matches "/" too


async def test_a_rule_names_a_cassette_as_the_header_does(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """``NAME`` and ``NAME.yaml`` are one cassette for the header, so for a rule too; a name
    the header would refuse is refused when the rule is installed (it could never fire)."""
    proxy = await start_proxy(admin=True, cassette_dir=tmp_path / "dir", record_mode="all")
    await install(proxy, path=CANCEL, cassette="par/w1.yaml", status=503, times=1)
    answer = await call(proxy.url, "POST", f"/v1/responses/{vectors.V1_ID}/cancel",
                        cassette="par/w1")  # fmt: skip
    assert answer.status == 503
    for bad in ("../x", "par/../x", ".hidden"):
        refused = await call(proxy.url, "POST", "/_proxy/faults", {"status": 500, "cassette": bad})
        assert refused.status == 400, bad
        assert "is not a cassette name" in refused.error()["message"]


def test_a_probability_with_a_seed_fires_the_same_requests_every_run() -> None:
    def fired() -> list[int]:
        faults = Faults()
        faults.install(FaultRule(status=500, probability=0.3, seed=7))
        return [n for n in range(200) if faults.take("POST", "/v1/responses", None) is not None]

    first = fired()
    assert first == fired()
    assert 40 <= len(first) <= 80  # about 60 of 200: draws, not every request


def test_times_counts_each_firing_and_the_rule_goes_when_spent() -> None:
    changes: list[bool] = []
    faults = Faults(lambda: changes.append(bool(faults)))
    faults.install(FaultRule(status=500, times=2))
    assert [faults.take("GET", "/x", None) is not None for _ in range(3)] == [True, True, False]
    assert not faults
    assert changes == [True, False]  # the request path is told when there are no rules left


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"status": 200}, "rule (status): Input should be greater than or equal to 400"),
        ({"status": 500, "reset": True}, "a rule does one thing, and this one says status and"),
        ({"path": "/x"}, "the rule does nothing"),
        ({"headers": {"A": "b"}, "delay_ms": 1}, "headers go with a status answer"),
        ({"status": 429, "headers": {"A": "b\r\nX-Injected: 1"}}, "must be printable ASCII"),
        ({"status": 500, "path": "v1/responses"}, "must start with /"),
        ({"status": 500, "colour": "red"}, "rule (colour): Extra inputs are not permitted"),
        ([{"status": 500}, {"delay_ms": -1}], "rule 1 (delay_ms): Input should be greater than 0"),
        (b"[", "is not JSON"),
        ({"gap_ms": 5, "reset": True}, "a reset connection has no stream to stretch"),
        ({"status": 500, "seed": 1}, "give probability too"),
    ],
)
async def test_a_bad_rule_is_refused_naming_what_is_wrong(
    start_proxy: StartProxy, rule: Any, says: str
) -> None:
    proxy = await start_proxy(admin=True)
    answer = await call(proxy.url, "POST", "/_proxy/faults", rule)
    assert answer.status == 400
    assert answer.headers["X-Proxy-Source"] == "proxy"
    assert says in answer.error()["message"]
    assert (await call(proxy.url, "GET", "/_proxy/faults")).json()["faults"] == []


async def test_rules_are_listed_removed_one_by_one_and_cleared(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(admin=True)
    answer = await call(
        proxy.url, "POST", "/_proxy/faults", [{"status": 500}, {"delay_ms": 5, "times": 3}]
    )
    assert answer.status == 201
    listed = (await call(proxy.url, "GET", "/_proxy/faults")).json()["faults"]
    assert [(f["id"], f["fired"], f["remaining"]) for f in listed] == [(1, 0, None), (2, 0, 3)]
    assert listed[1]["rule"]["delay_ms"] == 5.0
    assert (await call(proxy.url, "DELETE", "/_proxy/faults/1")).json()["removed"] == 1
    assert (await call(proxy.url, "DELETE", "/_proxy/faults/1")).status == 404
    cleared = await call(proxy.url, "DELETE", "/_proxy/faults")
    assert cleared.json() == {"faults": [], "removed": 1}
    assert (await cancel(proxy, vectors.V1_ID)).status == 200


async def test_faults_given_at_start_act_without_the_control_api(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(faults=[{"path": CANCEL, "status": 503, "times": 1}])
    assert (await cancel(proxy, vectors.V1_ID)).status == 503
    assert (await cancel(proxy, vectors.V1_ID)).status == 200
    assert (await call(proxy.url, "GET", "/_proxy/faults")).status == 404  # no --admin
