"""The issue's reports, end to end: a long-lived proxy steered at run time (issue 23)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import vcr

from tests import vectors
from tests.client import cancel
from tests.conftest import DUMMY_KEY, StartProxy
from tests.fake_upstream import FakeUpstream
from tests.serving.control.admin import call


async def test_a_long_lived_proxy_records_saves_replays_and_rewinds_cassettes_at_run_time(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    proxy = await start_proxy(admin=True)
    cassette = tmp_path / "case-1.yaml"
    loaded = await call(proxy.url, "PUT", "/_proxy/cassette", {"path": str(cassette)})
    assert loaded.status == 200, loaded.body
    assert (await cancel(proxy, vectors.V1_ID)).headers["X-Proxy-Source"] == "upstream"
    # Loading it again to replay saves what was recorded first.
    replaying = await call(
        proxy.url, "PUT", "/_proxy/cassette", {"path": str(cassette), "record_mode": "none"}
    )
    assert replaying.json()["previous"]["saved"] == 1
    with vcr.use_cassette(str(cassette), record_mode="none") as by_vcrpy:
        assert len(by_vcrpy) == 1
    assert (await cancel(proxy, vectors.V1_ID)).headers["X-Proxy-Source"] == "cassette"
    assert (await cancel(proxy, vectors.V1_ID)).status == 501  # played once already
    assert (await call(proxy.url, "POST", "/_proxy/cassette/rewind")).status == 200
    assert (await cancel(proxy, vectors.V1_ID)).headers["X-Proxy-Source"] == "cassette"
    assert fake_upstream.cancels == 1


async def test_a_one_shot_429_fault_makes_the_openai_client_retry_then_succeed(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(admin=True)
    rule = {"path": "/v1/responses/*/cancel", "times": 1, "status": 429,
            "headers": {"Retry-After": "1"}}  # fmt: skip
    assert (await call(proxy.url, "POST", "/_proxy/faults", rule)).status == 201
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
        response = await client.responses.cancel(vectors.V1_ID)
    assert response.status == "cancelled"
    assert [e["status"] for e in proxy.exchanges()] == [429, 200]


async def test_without_admin_the_control_api_answers_404(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    for method, path in [("PUT", "/_proxy/cassette"), ("POST", "/_proxy/faults")]:
        answer = await call(proxy.url, method, path, {})
        assert answer.status == 404
        assert answer.error()["code"] == "proxy_route_not_found"


@pytest.mark.parametrize("token", [None, "wrong-token-wrong-token"])
async def test_with_a_token_the_control_api_refuses_a_request_without_it(
    start_proxy: StartProxy, token: str | None
) -> None:
    proxy = await start_proxy(admin=True, admin_token="right-token-right-token")
    answer = await call(proxy.url, "GET", "/_proxy/cassette", token=token)
    assert answer.status == 401
