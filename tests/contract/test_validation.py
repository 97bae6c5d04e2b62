"""Validation verdicts as a client sees them through the proxy, and what the log says about them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import yaml

from tests import vectors
from tests.client import cancel, post
from tests.conftest import DUMMY_KEY, RunningProxy, StartProxy
from tests.fake_upstream import SPECIAL, FakeUpstream

AUTH = {"Authorization": f"Bearer {DUMMY_KEY}"}


def only_exchange(proxy: RunningProxy) -> dict[str, Any]:
    [line] = proxy.exchanges()
    return line


def findings(line: dict[str, Any], side: str) -> set[tuple[str, str, str]]:
    """``(kind, pointer, severity)`` of each violation logged for ``side``."""
    return {
        (v["kind"], v["pointer"], v["severity"]) for v in line["validation"][side]["violations"]
    }


@pytest.mark.parametrize(
    ("response_id", "body"),
    [
        (vectors.V1_ID, vectors.V1_BODY),
        (vectors.V2_ID, vectors.V2_BODY),
        (vectors.V3_ID, vectors.V3_BODY),
        (vectors.V4_ID, vectors.V4_BODY),
    ],
    ids=["V1", "V2", "V3", "V4"],
)
async def test_valid_cancel_bodies_pass_with_warnings_only_in_the_log(
    start_proxy: StartProxy, response_id: str, body: bytes
) -> None:
    proxy = await start_proxy()
    answer = await cancel(proxy, response_id)
    assert answer.status == 200
    assert answer.headers["X-Proxy-Validation"] == "pending"
    assert answer.headers["X-Proxy-Source"] == "upstream"
    assert answer.body == body
    line = only_exchange(proxy)
    assert line["verdict"] == "passed"
    assert line["validation"]["request"] == {"verdict": "passed", "violations": []}
    response_check = line["validation"]["response"]
    assert response_check["verdict"] == "passed"
    violations = response_check["violations"]
    for violation in violations:
        assert violation["severity"] == "warning"
        assert violation["pointer"].startswith("/")
        assert violation["message"]
    # V1-V3 omit usage (a documented warning, located by a pointer into the body); V4 has it,
    # and its cache_write_tokens, which the client declares, is not drift.
    expected = [] if response_id == vectors.V4_ID else ["/usage"]
    assert [v["pointer"] for v in violations] == expected


@pytest.mark.parametrize(
    ("response_id", "shape"),
    [("resp_flat404_x", "flat"), ("resp_never_existed_42", "enveloped")],
)
async def test_both_404_shapes_pass(start_proxy: StartProxy, response_id: str, shape: str) -> None:
    proxy = await start_proxy()
    answer = await cancel(proxy, response_id)
    assert answer.status == 404
    assert answer.headers["X-Proxy-Validation"] == "pending"
    body = answer.json()
    if shape == "flat":
        assert body == vectors.V5B
    else:
        assert set(body) == {"error"}
        assert response_id in body["error"]["message"]
    line = only_exchange(proxy)
    assert line["status"] == 404
    assert line["verdict"] == "passed"
    assert line["validation"]["response"] == {"verdict": "passed", "violations": []}


async def test_drift_passes_with_located_warnings(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    answer = await cancel(proxy, "resp_drift_x")
    assert answer.status == 200
    assert answer.headers["X-Proxy-Validation"] == "pending"
    assert answer.body == SPECIAL["resp_drift"][1]
    line = only_exchange(proxy)
    assert line["verdict"] == "passed"
    found = findings(line, "response")
    assert ("unknown_field", "/brand_new_field", "warning") in found
    assert ("unknown_enum", "/status", "warning") in found
    assert all(severity == "warning" for _, _, severity in found)


async def test_broken_body_fails_in_warn_mode_and_passes_unchanged(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(validation="warn")
    answer = await cancel(proxy, "resp_broken_x")
    assert answer.status == 200
    assert answer.headers["X-Proxy-Validation"] == "pending"
    assert answer.headers["X-Proxy-Source"] == "upstream"
    assert answer.body == SPECIAL["resp_broken"][1]
    line = only_exchange(proxy)
    assert line["verdict"] == "failed"
    assert line["validation"]["response"]["verdict"] == "failed"
    assert ("type", "/id", "error") in findings(line, "response")
    assert line["error"] is None
    assert line["original"] is None


async def test_strict_mode_turns_a_broken_body_into_a_proxy_502(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(validation="strict")
    answer = await cancel(proxy, "resp_broken_x")
    assert answer.status == 502
    assert answer.headers["X-Proxy-Source"] == "proxy"
    assert answer.headers["X-Proxy-Validation"] == "failed"
    assert answer.headers["x-should-retry"] == "false"
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "contract_violation"
    assert error["type"] == "upstream_contract_violation"
    assert "/id" in error["message"]
    line = only_exchange(proxy)
    assert line["status"] == 502
    assert line["source"] == "proxy"
    assert line["error"] == "contract_violation"
    assert line["response"]["body"] == answer.json()
    assert line["original_status"] == 200
    assert line["original"]["body"] == orjson.loads(SPECIAL["resp_broken"][1])
    assert line["original"]["body"]["id"] == 12345


async def test_strict_mode_still_records_the_original_response(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "strict.yaml"
    proxy = await start_proxy(validation="strict", cassette=cassette, record_mode="all")
    answer = await cancel(proxy, "resp_broken_x")
    assert answer.status == 502
    await proxy.stop()
    [interaction] = yaml.safe_load(cassette.read_text())["interactions"]
    assert interaction["request"]["uri"].endswith("/v1/responses/resp_broken_x/cancel")
    assert interaction["response"]["status"]["code"] == 200
    assert orjson.loads(interaction["response"]["body"]["string"])["id"] == 12345


async def test_strict_mode_refuses_an_empty_id_without_forwarding(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(validation="strict")
    answer = await post(proxy, "/v1/responses//cancel")
    assert answer.status == 400
    assert answer.headers["X-Proxy-Source"] == "proxy"
    assert answer.headers["X-Proxy-Validation"] == "failed"
    assert answer.headers["x-should-retry"] == "false"
    error = answer.json()["error"]
    assert error["code"] == "contract_violation"
    assert error["type"] == "invalid_request_error"
    assert "/path/response_id" in error["message"]
    assert fake_upstream.received == []
    line = only_exchange(proxy)
    assert line["route"] == "cancel"
    assert line["status"] == 400
    assert line["error"] == "contract_violation"
    assert line["upstream_ms"] is None
    assert ("request", "/path/response_id", "error") in findings(line, "request")


async def test_warn_mode_forwards_an_empty_id_and_fails_it(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(validation="warn")
    answer = await post(proxy, "/v1/responses//cancel")
    assert answer.headers["X-Proxy-Source"] == "upstream"
    assert answer.headers["X-Proxy-Validation"] == "failed"
    [seen] = fake_upstream.received
    assert seen.raw_path == "/v1/responses//cancel"
    line = only_exchange(proxy)
    assert line["verdict"] == "failed"
    assert line["validation"]["request"]["verdict"] == "failed"
    assert ("request", "/path/response_id", "error") in findings(line, "request")


@pytest.mark.parametrize(
    ("headers", "data", "pointer"),
    [
        (AUTH, b'{"reason": "not needed"}', "/body"),
        ({}, None, "/headers/authorization"),
        ({"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}, None, "/headers/authorization"),
    ],
    ids=["body-on-cancel", "no-authorization", "basic-scheme"],
)
async def test_request_warnings_are_logged_and_pass(
    start_proxy: StartProxy,
    fake_upstream: FakeUpstream,
    headers: dict[str, str],
    data: bytes | None,
    pointer: str,
) -> None:
    proxy = await start_proxy()
    answer = await post(proxy, f"/v1/responses/{vectors.V1_ID}/cancel", headers=headers, data=data)
    assert answer.status == 200
    assert answer.headers["X-Proxy-Validation"] == "pending"
    assert len(fake_upstream.received) == 1
    line = only_exchange(proxy)
    assert line["verdict"] == "passed"
    assert line["validation"]["request"]["verdict"] == "passed"
    assert findings(line, "request") == {("request", pointer, "warning")}


async def test_injected_upstream_key_silences_the_auth_warning(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(upstream_api_key="AQVN" + "-injected-proxy-key-00000000000")
    answer = await post(proxy, f"/v1/responses/{vectors.V1_ID}/cancel", headers={})
    assert answer.headers["X-Proxy-Validation"] == "pending"
    [seen] = fake_upstream.received
    assert seen.headers["authorization"].startswith("Api-Key ")
    line = only_exchange(proxy)
    assert line["validation"]["request"] == {"verdict": "passed", "violations": []}


@pytest.mark.parametrize("response_id", [vectors.V1_ID, "resp_broken_x", "resp_drift_x"])
async def test_validation_off_skips_everything(start_proxy: StartProxy, response_id: str) -> None:
    proxy = await start_proxy(validation="off")
    answer = await post(proxy, f"/v1/responses/{response_id}/cancel", headers={}, data=b"{}")
    assert answer.status == 200
    assert answer.headers["X-Proxy-Validation"] == "skipped"
    assert answer.headers["X-Proxy-Source"] == "upstream"
    line = only_exchange(proxy)
    assert line["verdict"] == "skipped"
    assert line["validation"]["request"] == {"verdict": "skipped", "violations": []}
    assert line["validation"]["response"] == {"verdict": "skipped", "violations": []}


async def test_undocumented_409_passes_with_a_warning(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(validation="strict")
    answer = await cancel(proxy, "resp_conflict_x")
    assert answer.status == 409
    assert answer.headers["X-Proxy-Source"] == "upstream"
    assert answer.headers["X-Proxy-Validation"] == "passed"
    assert answer.body == vectors.conflict("resp_conflict_x")
    line = only_exchange(proxy)
    assert line["verdict"] == "passed"
    assert ("undocumented_status", "", "warning") in findings(line, "response")


async def test_sync_openai_client_gets_a_502_in_strict_mode_and_does_not_retry(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(validation="strict")

    def call() -> openai.APIStatusError:
        client = openai.OpenAI(
            base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=2, timeout=10
        )
        with client, pytest.raises(openai.APIStatusError) as caught:
            client.responses.cancel("resp_broken_x")
        return caught.value

    error = await asyncio.wait_for(asyncio.to_thread(call), timeout=30)
    assert error.status_code == 502
    assert error.response.headers["x-proxy-source"] == "proxy"
    assert error.code == "contract_violation"
    assert "/id" in error.message
    assert len(proxy.exchanges()) == 1
    assert len(fake_upstream.received) == 1


async def test_async_openai_client_gets_a_502_in_strict_mode_and_does_not_retry(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(validation="strict")
    client = openai.AsyncOpenAI(
        base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=2, timeout=10
    )
    async with client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.responses.cancel("resp_broken_x")
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.type == "upstream_contract_violation"
    assert len(proxy.exchanges()) == 1
    assert len(fake_upstream.received) == 1
