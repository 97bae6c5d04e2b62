"""Which JSON bodies the request path parses (:mod:`cassette_proxy.json_cost`), and that the ones
it does not are still matched and replayed, by their bytes."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import orjson
from vcr.request import Request as VcrRequest

from cassette_proxy.json_cost import ALWAYS, MOST_PER_BYTE, VALUE_COST, too_dense
from cassette_proxy.matching.matchers import Matcher
from tests.conftest import StartProxy

DENSE = b"[" + b",".join([b"{}"] * (ALWAYS // 3 + 10)) + b"]"


def test_only_large_and_dense_bodies_go_unparsed() -> None:
    assert too_dense(DENSE)
    assert not too_dense(DENSE[: ALWAYS - 1])  # small: always parsed, whatever its shape
    long_string = orjson.dumps({"input": "x" * (4 * ALWAYS)})
    assert not too_dense(long_string)
    spaced = b"[" + b",".join([b"{" + b" " * 40 + b"}"] * (2 * ALWAYS // 43)) + b"]"
    assert len(spaced) > ALWAYS
    assert not too_dense(spaced)  # one value in 43 bytes: under the bound
    assert VALUE_COST // MOST_PER_BYTE < 43


def test_a_dense_body_is_matched_by_its_bytes() -> None:
    matcher = Matcher(("method", "body"))
    uri = "https://h/v1/responses"
    key = matcher.key(VcrRequest("POST", uri, DENSE, {}))
    assert key[1] == ("raw", DENSE)
    spaced = DENSE.replace(b",", b", ")  # the same JSON, other bytes: another key
    assert matcher.key(VcrRequest("POST", uri, spaced, {})) != key
    small = b'{"b": 1, "a": [1, 2]}'
    assert matcher.key(VcrRequest("POST", uri, small, {}))[1] == ("json", b'{"a":[1,2],"b":1}')


async def test_a_dense_body_is_recorded_checked_as_unchecked_and_replayed(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "dense.yaml"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer t"}
    recording = await start_proxy(cassette=cassette, record_mode="all")
    async with aiohttp.ClientSession() as session:
        async with session.post(
            recording.url + "/v1/chat/x", data=io.BytesIO(DENSE), headers=headers
        ) as r:
            recorded = r.status, await r.read()  # the test upstream's own 413: it takes 1 MiB
        assert [line["source"] for line in recording.exchanges()] == ["upstream"]
        await recording.stop()
        replaying = await start_proxy(cassette=cassette, record_mode="none", validation="strict")
        async with session.post(
            replaying.url + "/v1/chat/x", data=io.BytesIO(DENSE), headers=headers
        ) as r:
            assert (r.status, await r.read()) == recorded  # matched by its bytes
            assert r.headers["X-Proxy-Source"] == "cassette"
        async with session.post(
            replaying.url + "/v1/responses", data=io.BytesIO(DENSE), headers=headers
        ) as r:
            assert r.status == 501  # not recorded: a miss, and strict mode did not refuse it
    [created] = [line for line in replaying.exchanges() if line["path"] == "/v1/responses"]
    [warning] = created["validation"]["request"]["violations"]
    assert warning["message"].startswith("not checked: ")
    assert f"about {len(DENSE) // 3:,} values" in warning["message"]
