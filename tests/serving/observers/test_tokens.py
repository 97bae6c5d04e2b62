"""Tokens by model and type in /_proxy/metrics and the log: each response counted once, from a
JSON body, a stream's final event or a recording; model URIs without their folder id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict, CIMultiDictProxy

from cassette_proxy.contract.routes import classify
from cassette_proxy.models.http import ProxyResponse
from cassette_proxy.models.usage import Answered, Usage, model_name
from cassette_proxy.serving.exchange import CASSETTE, Exchange
from cassette_proxy.serving.observers.metrics import MAX_MODELS, OTHER_MODEL, Metrics
from cassette_proxy.serving.observers.tokens import TokenLedger
from tests import vectors
from tests.client import scrape
from tests.conftest import DUMMY_KEY, StartProxy
from tests.responses_upstream import CREATED_ID, ResponsesUpstream

FOLDER = "b1gexamplefolder000"
MODEL_URI = f"gpt://{FOLDER}/yandexgpt/rc"


@pytest.fixture
async def responses_url(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    server = await aiohttp_server(ResponsesUpstream().app(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


def _tokens(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {
        f"{dict(labels)['model']}/{dict(labels)['type']}/{dict(labels)['source']}": value
        for (name, labels), value in samples.items()
        if name == "cassette_proxy_tokens_total"
    }


async def test_tokens_are_counted_by_model_and_type_once_per_response(
    responses_url: str, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(upstream=responses_url)
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
        created = await client.responses.create(model=MODEL_URI, input="hi")
        await client.responses.retrieve(created.id)  # the same response: not counted again
    samples = await scrape(proxy)
    assert _tokens(samples) == {
        "yandexgpt/rc/input/upstream": 1840,
        "yandexgpt/rc/cached/upstream": 1024,
        "yandexgpt/rc/output/upstream": 96,
        "yandexgpt/rc/reasoning/upstream": 64,
    }
    async with aiohttp.ClientSession() as session, session.get(f"{proxy.url}/_proxy/metrics") as r:
        assert FOLDER not in await r.text()  # no folder id in any label
    create, retrieve = proxy.exchanges()
    assert create["model"] == retrieve["model"] == "yandexgpt/rc"
    assert create["tokens"] == {"input": 1840, "cached": 1024, "output": 96, "reasoning": 64}
    assert retrieve["tokens"] is None  # counted with the create
    assert (create["response_id"], retrieve["response_id"]) == (None, CREATED_ID)


async def test_replayed_tokens_are_counted_apart_from_spent_ones(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "cancel.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    async with openai.AsyncOpenAI(base_url=recording.base_url, api_key=DUMMY_KEY) as client:
        await client.responses.cancel(vectors.V4_ID)
    await recording.stop()
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    async with openai.AsyncOpenAI(base_url=replaying.base_url, api_key=DUMMY_KEY) as client:
        await client.responses.cancel(vectors.V4_ID)
    assert _tokens(await scrape(replaying)) == {
        "yandexgpt/rc/input/cassette": 1840,
        "yandexgpt/rc/cached/cassette": 1024,
        "yandexgpt/rc/output/cassette": 96,
        "yandexgpt/rc/reasoning/cassette": 64,
    }


async def test_a_streamed_response_is_counted_from_its_final_event(
    start_proxy: StartProxy, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(vectors.TEXT_STREAM)
        return response

    app = web.Application()
    app.router.add_post("/v1/responses", stream)
    upstream = await aiohttp_server(app, host="127.0.0.1")
    proxy = await start_proxy(upstream=str(upstream.make_url("")).rstrip("/"), validation="off")
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
        events = await client.responses.create(model=MODEL_URI, input="hi", stream=True)
        [event async for event in events]
    assert _tokens(await scrape(proxy))["yandexgpt/rc/output/upstream"] == 96


def test_model_names_lose_their_folder() -> None:
    assert model_name("gpt://b1gfolder/yandexgpt/latest") == "yandexgpt/latest"
    assert model_name("emb://b1gfolder/text-search-doc/latest") == "text-search-doc/latest"
    assert model_name("gpt://b1gfolder") == "(unnamed)"
    assert model_name("gpt-4o-mini") == "gpt-4o-mini"
    assert model_name("x\x00y") == "x?y"
    assert model_name("m" * 500) == "m" * 100
    assert model_name(None) is None
    assert model_name(12) is None


def test_usage_is_read_as_the_api_reports_it() -> None:
    answered = Answered.of(vectors.V4)
    assert answered is not None
    assert answered.usage == Usage(input=1840, cached=1024, output=96, reasoning=64)
    cancelled = Answered.of_body(vectors.V1_BODY)  # a cancelled Response, without usage
    assert cancelled is not None
    assert (cancelled.model, cancelled.usage, cancelled.status) == (
        "yandexgpt/latest",
        None,
        "cancelled",
    )
    assert Answered.of_body(b'{"error": {"message": "x"}}') is None  # never parsed
    assert Usage.of({"input_tokens": True, "output_tokens": -3}) == Usage()


def _answered_exchange(response_id: str, model: str) -> Exchange:
    body = dict(vectors.V4, id=response_id, model=f"gpt://{FOLDER}/{model}")
    response = ProxyResponse(
        200, "OK", CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"})),
        orjson.dumps(body),
    )  # fmt: skip
    exchange = Exchange(classify("POST", f"/v1/responses/{response_id}/cancel"), "POST", "/")
    exchange.source, exchange.response = CASSETTE, response
    return exchange


def test_what_token_accounting_keeps_is_bounded() -> None:
    """Ids of counted responses: the last REMEMBERED; model labels: MAX_MODELS, then (other)."""
    ledger, metrics = TokenLedger(remembered=1_000), Metrics()
    for number in range(3_000):
        exchange = _answered_exchange(f"resp_{number}", f"model-{number % 250}")
        ledger.account(exchange)
        assert exchange.tokens is not None  # every id is new: every one is counted
        metrics.observe(exchange, 200, 1.0)
    assert len(ledger._counted) == 1_000
    models = {key[0] for key in metrics.tokens.counts}
    assert len(models) == MAX_MODELS + 1
    assert OTHER_MODEL in models
    again = _answered_exchange("resp_2999", "model-1")
    ledger.account(again)
    assert again.tokens is None  # remembered: not counted twice
