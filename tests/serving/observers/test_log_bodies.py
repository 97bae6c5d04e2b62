"""What of the bodies reaches the log: --log-bodies full|head|none, and nothing for a request sent
with ``x-data-logging-enabled: false`` whatever the setting, while recording is unaffected."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cassette_proxy.serving.observers.log import HEAD_LIMIT
from cassette_proxy.store.persist import load_cassette
from tests import vectors
from tests.client import OPENAI_HEADERS, cancel, post
from tests.conftest import StartProxy

PROMPT = "my diary entry: the spare key is under the blue flowerpot"
CREATE = orjson.dumps({"model": "gpt://b1gfolder/yandexgpt/rc", "input": PROMPT * 20})
WITHHOLD = {**OPENAI_HEADERS, "x-data-logging-enabled": "false"}


async def test_bodies_are_logged_whole_by_default(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    await cancel(proxy, vectors.V1_ID)
    [line] = proxy.exchanges()
    assert line["bodies"] == "full"
    assert line["response"]["body"]["id"] == vectors.V1_ID


async def test_head_shows_the_first_bytes_of_each_body(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(log_bodies="head")
    await post(proxy, "/v1/responses/whatever", data=CREATE)  # pass-through: echoed
    await cancel(proxy, vectors.V1_ID)
    echo, cancelled = proxy.exchanges()
    assert echo["bodies"] == cancelled["bodies"] == "head"
    body = echo["request"]["body"]
    assert (body["truncated"], body["size"]) == (True, len(CREATE))
    # At most the first 512 bytes, cut between words (a cut never keeps part of a token).
    assert CREATE.decode().startswith(body["head"])
    assert HEAD_LIMIT - 64 < len(body["head"]) <= HEAD_LIMIT
    shown = cancelled["response"]["body"]
    assert (shown["truncated"], shown["size"]) == (True, len(vectors.V1_BODY))
    assert HEAD_LIMIT - 64 < len(shown["head"]) <= HEAD_LIMIT
    assert echo["response"]["body"] == {"object": "echo", "method": "POST",
                                        "path": "/v1/responses/whatever"}  # fmt: skip  # short


@pytest.mark.parametrize("shift", ["", "x", "xx", "xxx"])  # the cut falls anywhere in a word
async def test_a_head_in_another_script_ends_between_characters(
    start_proxy: StartProxy, shift: str
) -> None:
    proxy = await start_proxy(log_bodies="head")
    prompt = shift + "Привет! Расскажи кратко, что умеет облачная платформа. " * 50
    sent = orjson.dumps({"model": "gpt://b1gfolder/yandexgpt/rc", "input": prompt})
    await post(proxy, "/v1/responses/whatever", data=sent)
    [line] = proxy.exchanges()
    head = line["request"]["body"]["head"]
    assert "\ufffd" not in head
    assert sent.decode().startswith(head)
    assert HEAD_LIMIT - 64 < len(head.encode()) <= HEAD_LIMIT


async def test_none_logs_sizes_only(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(log_bodies="none")
    await post(proxy, "/v1/responses/whatever", data=CREATE)
    [line] = proxy.exchanges()
    assert line["bodies"] == "none"
    assert (line["request"]["body"], line["request"]["size"]) == (None, len(CREATE))
    assert line["response"]["body"] is None
    assert line["response"]["size"] > 0
    assert "flowerpot" not in proxy.log_path.read_text()


@pytest.mark.parametrize("value", ["false", "False", " 0 "])
async def test_a_request_that_asks_not_to_be_logged_is_logged_without_bodies_but_recorded(
    start_proxy: StartProxy, tmp_path: Path, value: str
) -> None:
    cassette = tmp_path / "withheld.yaml"
    proxy = await start_proxy(cassette=cassette, record_mode="once")  # --log-bodies full
    headers = {**WITHHOLD, "x-data-logging-enabled": value}
    answer = await post(proxy, "/v1/responses/whatever", data=CREATE, headers=headers)
    assert answer.status == 200
    [line] = proxy.exchanges()
    assert line["bodies"] == "withheld"
    assert line["request"]["body"] is None
    assert line["response"]["body"] is None
    assert line["request"]["size"] == len(CREATE)
    assert "flowerpot" not in proxy.log_path.read_text()
    await proxy.stop()
    [recorded] = load_cassette(cassette) or []  # recording is the user's choice: unaffected
    assert PROMPT.encode() in recorded.request.body


async def test_a_withheld_miss_does_not_log_the_body_its_message_quotes(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """A miss's 501 explains itself with the closest recording, body included (vcrpy's
    matcher message): the answer quotes the prompt, the log line must not."""
    cassette = tmp_path / "near.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await post(recording, "/v1/responses/whatever", data=CREATE)
    await recording.stop()
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    other = orjson.dumps({"model": "gpt://b1gfolder/yandexgpt/rc", "input": PROMPT + "!"})
    answer = await post(replaying, "/v1/responses/whatever", data=other, headers=WITHHOLD)
    assert answer.status == 501
    assert "flowerpot" in answer.error()["message"]  # the client is told everything
    [line] = replaying.exchanges()
    assert (line["error"], line["bodies"]) == ("cassette_miss", "withheld")
    assert "flowerpot" not in replaying.log_path.read_text()


async def test_every_line_names_the_instance(start_proxy: StartProxy, tmp_path: Path) -> None:
    proxy = await start_proxy(instance="sidecar-b", cassette=tmp_path / "c.yaml")
    await cancel(proxy, vectors.V1_ID)
    await proxy.stop()
    lines = proxy.log_lines()
    assert {line["event"] for line in lines} >= {"cassette_opened", "exchange", "cassette_closed"}
    assert {line["instance"] for line in lines} == {"sidecar-b"}


async def test_a_withheld_prompt_in_a_recording_is_not_quoted_by_another_requests_miss(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """Recorded from a request that asked not to be logged, the body is in the cassette (to
    replay it), but a later, ordinary request's miss must not quote it: its 501 is logged."""
    cassette = tmp_path / "near.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await post(recording, "/v1/responses/whatever", data=CREATE, headers=WITHHOLD)
    await recording.stop()
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    other = orjson.dumps({"model": "gpt://b1gfolder/yandexgpt/rc", "input": "hello"})
    answer = await post(replaying, "/v1/responses/whatever", data=other)
    assert answer.status == 501
    message = answer.error()["message"]
    assert "flowerpot" not in message
    assert "the recording asked not to be logged (x-data-logging-enabled: false)" in message
    [line] = replaying.exchanges()
    assert line["bodies"] == "full"
    assert "flowerpot" not in replaying.log_path.read_text()


async def test_a_withheld_recording_is_not_quoted_when_matching_raw_bodies_either(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "raw.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await post(recording, "/v1/responses/whatever", data=CREATE, headers=WITHHOLD)
    await recording.stop()
    replaying = await start_proxy(
        cassette=cassette, record_mode="none", match_on=("method", "path", "raw_body")
    )
    other = orjson.dumps({"model": "gpt://b1gfolder/yandexgpt/rc", "input": "hello"})
    answer = await post(replaying, "/v1/responses/whatever", data=other)
    assert answer.status == 501
    assert "not shown, since the recording asked not to be logged" in answer.error()["message"]
    assert "flowerpot" not in replaying.log_path.read_text()


async def test_a_withheld_requests_unknown_keys_are_masked_in_the_log(
    start_proxy: StartProxy,
) -> None:
    """A key is data too: a prompt sent as a key name reaches the log only through a
    violation's pointer, which a withheld line masks."""
    proxy = await start_proxy()
    model = "gpt://b1gfolder/yandexgpt/rc"
    drift = {"model": model, "input": "hi", "flowerpotdiary": 1}  # one word: data all the same
    broken = {"input": "hi", "metadata": {"flowerpot_diagnosis": 5}}  # no model; a client's key
    for body in (drift, broken):
        await post(proxy, "/v1/responses", data=orjson.dumps(body), headers=WITHHOLD)
    findings = [
        v for line in proxy.exchanges() for v in line["validation"]["request"]["violations"]
    ]
    assert {v["pointer"] for v in findings} >= {"/body/…", "/body/metadata/…", "/body/model"}
    assert any('"model"' in v["message"] for v in findings)  # the contract's words stay
    assert "flowerpot" not in proxy.log_path.read_text()


async def test_a_near_duplicate_of_a_withheld_recording_names_fields_not_values(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """Still found (and still not recorded), but its advice names the field that changed
    without quoting the recording's value."""
    cassette = tmp_path / "near.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    first = {"model": "gpt://b1gfolder/yandexgpt/rc", "input": "hi",
             "metadata": {"ts": "1796637199.8879862"}}  # fmt: skip
    await post(recording, "/v1/responses/whatever", data=orjson.dumps(first), headers=WITHHOLD)
    await recording.stop()
    adding = await start_proxy(cassette=cassette, record_mode="new_episodes")
    again = first | {"metadata": {"ts": "1796637203.0912345"}}
    await post(adding, "/v1/responses/whatever", data=orjson.dumps(again))
    [line] = adding.exchanges()
    assert line["not_recorded"] is not None
    assert "/metadata/ts" in line["not_recorded"]
    assert "1796637199" not in adding.log_path.read_text()
