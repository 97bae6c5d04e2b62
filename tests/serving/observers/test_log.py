"""The audit log: one JSON line per exchange, its fields, its redaction, and lifecycle events."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import orjson
import pytest
from aiohttp import web
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from cassette_proxy.contract import Checked, classify
from cassette_proxy.models.http import ProxyRequest, ProxyResponse
from cassette_proxy.models.violations import Violation
from cassette_proxy.serving.exchange import CASSETTE, Exchange
from cassette_proxy.serving.observers.log import BODY_LIMIT, now
from tests import vectors
from tests.client import OPENAI_HEADERS, TIMEOUT, post
from tests.conftest import DUMMY_KEY, StartProxy

FINGERPRINT = re.compile(r"sha256:[0-9a-f]{8}")


def fingerprint(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


async def test_one_exchange_is_one_complete_line(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    before = datetime.now(UTC)
    answer = await post(proxy, f"/v1/responses/{vectors.V1_ID}/cancel")
    after = datetime.now(UTC)
    assert answer.status == 200
    lines = proxy.log_path.read_bytes().splitlines()
    assert len(lines) == 1  # without a cassette there is no lifecycle event: one exchange
    [line] = proxy.exchanges()
    assert line["event"] == "exchange"

    logged_at = datetime.fromisoformat(line["time"])
    assert logged_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= logged_at <= after + timedelta(seconds=1)
    assert re.fullmatch(r"[0-9a-f]{32}", line["id"])
    assert line["method"] == "POST"
    assert line["path"] == f"/v1/responses/{vectors.V1_ID}/cancel"
    assert line["route"] == "cancel"
    assert line["response_id"] == vectors.V1_ID
    assert line["status"] == 200
    assert line["source"] == "upstream"
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert isinstance(line["upstream_ms"], int | float)
    assert 0 <= line["upstream_ms"] <= line["duration_ms"]

    request = line["request"]
    assert request["headers"]["authorization"].startswith("Bearer sha256:")
    assert request["body"] is None
    assert request["size"] == 0
    response = line["response"]
    assert response["headers"]["x-request-id"] == answer.headers["x-request-id"]
    assert response["headers"]["content-type"].startswith("application/json")
    assert response["body"] == vectors.V1  # embedded as JSON, not as a string
    assert response["size"] == len(vectors.V1_BODY)

    assert line["validation"]["request"]["verdict"] == "passed"
    assert line["validation"]["response"]["verdict"] == "passed"
    assert line["verdict"] == "passed"
    assert line["error"] is None


async def test_json_request_body_is_embedded_and_ids_are_unique(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    payload = {"model": "gpt://folder/yandexgpt/latest", "input": "hi", "n": [1, 2]}
    for _ in range(3):
        await post(
            proxy,
            "/v1/chat/completions",
            headers={"Content-Type": "application/json"},
            data=orjson.dumps(payload),
        )
    lines = proxy.exchanges()
    assert len(lines) == 3
    assert len({line["id"] for line in lines}) == 3
    for line in lines:
        assert line["route"] == "passthrough"
        assert line["response_id"] is None
        assert line["request"]["body"] == payload
        assert line["response"]["body"]["object"] == "echo"
        assert line["verdict"] == "skipped"


async def test_authorization_is_logged_as_scheme_and_stable_fingerprint(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    first_key = "sk-" + "first-secret-key-0123456789abcdef"  # fake; split for secret scanners
    other_key = "sk-" + "other-secret-key-0123456789abcdef"
    for key in (first_key, first_key, other_key):
        await post(
            proxy,
            f"/v1/responses/{vectors.V1_ID}/cancel",
            headers={"Authorization": f"Bearer {key}"},
        )
    logged = [line["request"]["headers"]["authorization"] for line in proxy.exchanges()]
    assert logged[0] == f"Bearer {fingerprint(first_key)}"
    assert logged[0] == logged[1]
    assert logged[2] == f"Bearer {fingerprint(other_key)}"
    assert logged[2] != logged[0]
    text = proxy.log_path.read_text()
    assert first_key not in text
    assert other_key not in text


async def test_api_key_scheme_is_redacted(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    key = "AQVN" + "1234567890abcdefghijklmnopqrstuv"  # fake; split for secret scanners
    await post(
        proxy, f"/v1/responses/{vectors.V1_ID}/cancel", headers={"Authorization": f"Api-Key {key}"}
    )
    [line] = proxy.exchanges()
    assert line["request"]["headers"]["authorization"] == f"Api-Key {fingerprint(key)}"
    assert line["validation"]["request"]["violations"] == []
    assert key not in proxy.log_path.read_text()


async def test_upstream_set_cookie_is_redacted(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    answer = await post(proxy, f"/v1/responses/{vectors.V1_ID}/cancel")
    # The client gets the upstream's header unchanged: redaction is for the log only.
    assert "s3cr3t-cookie-value" in answer.headers["Set-Cookie"]
    [line] = proxy.exchanges()
    cookie = line["response"]["headers"]["set-cookie"]
    assert cookie == f"session={fingerprint('s3cr3t-cookie-value')}; Path=/; HttpOnly"
    assert "s3cr3t-cookie-value" not in proxy.log_path.read_text()


async def test_large_body_is_truncated_with_a_marker(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    body = orjson.dumps({"input": "x" * (BODY_LIMIT + 10_000)})
    assert len(body) > 64 * 1024
    answer = await post(
        proxy, "/v1/responses", headers={"Content-Type": "application/json"}, data=body
    )
    assert answer.status == 200
    [line] = proxy.exchanges()
    logged = line["request"]["body"]
    assert logged["truncated"] is True
    assert logged["size"] == len(body)
    assert len(logged["head"]) < len(body)
    assert body.decode().startswith(logged["head"])
    assert line["request"]["size"] == len(body)
    assert len(proxy.log_path.read_bytes()) < len(body)


async def test_cassette_lifecycle_events_carry_counts(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "life.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await post(recording, f"/v1/responses/{vectors.V1_ID}/cancel")
    await post(recording, f"/v1/responses/{vectors.V2_ID}/cancel")
    await recording.stop()
    events = [line for line in recording.log_lines() if line["event"] != "exchange"]
    assert [e["event"] for e in events] == ["cassette_opened", "cassette_closed"]
    opened, closed = (e["detail"] for e in events)
    assert opened["cassette"] == str(cassette)
    assert opened["record_mode"] == "once"
    assert opened["interactions"] == 0
    assert closed["recorded"] == 2
    assert closed["played"] == 0
    assert closed["recorded_never_played"] == 0
    for event in events:
        datetime.fromisoformat(event["time"])

    replaying = await start_proxy(cassette=cassette, record_mode="none")
    await post(replaying, f"/v1/responses/{vectors.V2_ID}/cancel")
    await replaying.stop()
    lines = replaying.log_lines()
    assert [line["event"] for line in lines] == ["cassette_opened", "exchange", "cassette_closed"]
    assert lines[0]["detail"]["interactions"] == 2
    assert lines[1]["source"] == "cassette"
    assert lines[1]["upstream_ms"] is None
    closed = lines[2]["detail"]
    assert closed["recorded"] == 0
    assert closed["played"] == 1
    assert closed["recorded_never_played"] == 1


async def test_body_too_large_is_logged_as_made_by_the_proxy(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(max_body_size=1000)
    answer = await post(proxy, "/v1/responses", data=b"x" * 5000)
    assert answer.status == 413
    [line] = proxy.exchanges()
    assert line["status"] == 413
    assert line["source"] == "proxy"
    assert line["error"] == "request_too_large"
    assert line["response"]["body"] == orjson.loads(answer.body)
    assert line["upstream_ms"] is None


async def test_cassette_miss_is_logged_as_made_by_the_proxy(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(cassette=tmp_path / "empty.yaml", record_mode="none")
    answer = await post(proxy, f"/v1/responses/{vectors.V1_ID}/cancel")
    assert answer.status == 501
    [line] = proxy.exchanges()
    assert line["status"] == 501
    assert line["source"] == "proxy"
    assert line["error"] == "cassette_miss"
    assert line["response"]["body"]["error"]["type"] == "cassette_miss"
    assert line["response_id"] == vectors.V1_ID


async def test_health_is_not_logged(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(proxy.url + "/_proxy/health") as response,
    ):
        assert response.status == 200
    await post(proxy, f"/v1/responses/{vectors.V1_ID}/cancel")
    assert [line["path"] for line in proxy.exchanges()] == [f"/v1/responses/{vectors.V1_ID}/cancel"]


def _all_values(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _all_values(value)]
    if isinstance(node, list):
        return [v for value in node for v in _all_values(value)]
    return [node]


async def test_every_fingerprint_in_a_line_has_the_documented_shape(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    await post(
        proxy,
        f"/v1/responses/{vectors.V1_ID}/cancel",
        headers={"Authorization": f"Bearer {DUMMY_KEY}", "Cookie": "a=1; b=2"},
    )
    [line] = proxy.exchanges()
    strings = [v for v in _all_values(line) if isinstance(v, str) and "sha256:" in v]
    assert len(strings) >= 3  # authorization, cookie, set-cookie
    for value in strings:
        for found in re.findall(r"sha256:\S*", value):
            assert FINGERPRINT.fullmatch(found.rstrip(";,"))


def test_now_is_iso_8601_utc_to_the_millisecond() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    stamps = [now() for _ in range(3)]
    after = datetime.now(UTC) + timedelta(milliseconds=1)
    for stamp in stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
        assert before <= datetime.fromisoformat(stamp.replace("Z", "+00:00")) <= after


@hypothesis.settings(max_examples=2000)
@hypothesis.given(
    st.floats(min_value=1e9, max_value=4e9)
    | st.integers(min_value=10**9, max_value=4 * 10**9).flatmap(
        lambda second: st.sampled_from([second - 5e-7, second - 1e-7, second, second + 4e-7])
    )
)
def test_now_formats_a_stamp_as_datetime_does_even_at_a_seconds_edge(stamp: float) -> None:
    """The cached text up to the seconds must never pair with the wrong second, nor a rounding
    give 1000 milliseconds."""
    expected = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: stamp)
        assert now() == expected.replace("+00:00", "Z")


async def test_a_replayed_body_is_logged_as_the_upstream_sent_it_on_every_play(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """A replay's logged body is serialized once per recording; each play's line must still
    carry the body itself (not a marker), as the recording's own line did."""
    cassette = tmp_path / "logged.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    headers = OPENAI_HEADERS | {"OpenAI-Project": vectors.FOLDER}  # project=, as Yandex says
    await post(recording, f"/v1/responses/{vectors.V1_ID}/cancel", headers=headers)
    await recording.stop()
    [recorded] = recording.exchanges()

    replaying = await start_proxy(
        cassette=cassette, record_mode="none", allow_playback_repeats=True
    )
    for _ in range(3):
        await post(replaying, f"/v1/responses/{vectors.V1_ID}/cancel", headers=headers)
    await replaying.stop()
    plays = replaying.exchanges()
    assert [line["source"] for line in plays] == ["cassette"] * 3
    for line in plays:
        assert line["response"]["body"] == recorded["response"]["body"]
        assert line["response"]["body"]["id"] == vectors.V1_ID
        assert line["response"]["size"] == recorded["response"]["size"]


@pytest.mark.parametrize("withheld", [False, True])
@pytest.mark.parametrize("body", [b"", b'{"reason": "done"}'])
@pytest.mark.parametrize("violations", [[], [("/query/x", 'unknown parameter "x"')]])
def test_a_line_made_of_pre_serialized_parts_is_the_line_made_of_values(
    withheld: bool, body: bytes, violations: list[tuple[str, str]]
) -> None:
    """A log that only serializes gets a replay's records pre-serialized, once per recording,
    header set and verdict; its line must be byte for byte the line the values make."""
    route = classify("POST", f"/v1/responses/{vectors.V1_ID}/cancel")
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {DUMMY_KEY}"}))
    recorded = ProxyResponse(
        200, "OK", CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"})),
        vectors.V1_BODY,
    )  # fmt: skip
    found = [
        Violation(pointer=pointer, message=message, severity="warning", kind="unknown_field")
        for pointer, message in violations
    ]
    for play in range(3):  # the first play makes the parts, the others reuse them
        exchange = Exchange(route, "POST", f"/v1/responses/{vectors.V1_ID}/cancel")
        exchange.request = ProxyRequest("POST", exchange.raw_path, headers, body)
        exchange.source, exchange.response, exchange.withheld = CASSETTE, recorded, withheld
        exchange.request_check = Checked(found)
        exchange.response_check = Checked()
        answer = web.Response(status=200)
        values = exchange.event(answer, 1.0, serialized_only=False)
        parts = exchange.event(answer, 1.0, serialized_only=True)
        assert isinstance(parts.response, orjson.Fragment), play
        assert orjson.dumps(parts) == orjson.dumps(values), play


def test_exchange_ids_are_unique_across_threads_and_forks() -> None:
    """Ids come from a pool of the system's randomness: no two exchanges share one, whether
    made on several threads (the plugin serves from one) or in processes forked from one
    another (--workers), whose pools must not be the same."""
    route = classify("GET", "/v1/responses/x")
    made: list[str] = []

    def make() -> None:
        made.extend(Exchange(route, "GET", "/v1/responses/x").id for _ in range(1000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == len(made) == 4000
    assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made[:10])
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(writer, Exchange(route, "GET", "/v1/responses/x").id.encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    child = os.read(reader, 64).decode()
    os.close(reader)
    parent = Exchange(route, "GET", "/v1/responses/x").id
    assert child != parent
    assert child not in made
