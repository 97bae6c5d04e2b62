"""Folder ids and named values: recorded as placeholders, matched as placeholders on both sides,
put back on replay (store/placeholders.py, store/shaping.py), with the real ``openai`` client in
front of a stand-in for Yandex AI Studio (tests/yandex_upstream.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import yaml
from aiohttp.test_utils import TestServer
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from cassette_proxy.models.http import ProxyRequest, ProxyResponse, Timing
from cassette_proxy.settings import Settings
from cassette_proxy.store.journal import journal_path
from cassette_proxy.store.placeholders import (
    FILLED_KEPT,
    Placeholders,
    Substitution,
    folders_in,
    remap,
)
from cassette_proxy.store.recorder import Recorder
from tests.conftest import StartProxy
from tests.yandex_upstream import YandexUpstream

KEY = "AQVN" + "p" * 36
FOLDER_A = "b1gAAAA"
FOLDER_B = "b1gBBBB"


# -- the pieces -----------------------------------------------------------------------------------


def test_folders_are_found_in_every_documented_model_uri_scheme_and_spelling() -> None:
    body = (
        b'{"model": "gpt://b1gone/yandexgpt/latest", "tools": ["emb://b1gtwo/text-search-doc/'
        b'latest", "cls://b1gone/yandexgpt/rc"], "art": "art:\\/\\/b1gthree\\/yandex-art/latest",'
        b' "q": "gpt%3A%2F%2Fb1gfour%2Fyandexgpt", "not": "xgpt://b1gfive/a", "nor": "gpt://b1gsix"}'
    )
    assert folders_in(body) == ["b1gone", "b1gtwo", "b1gthree", "b1gfour"]
    assert folders_in(b'{"model": "yandexgpt"}') == []


def test_a_learned_folder_is_hidden_only_where_it_is_a_whole_token() -> None:
    hide = Substitution(folders=(FOLDER_A, "b1gAA")).hide
    assert hide(b"gpt://b1gAAAA/x b1gAAAA.") == b"gpt://<FOLDER_ID>/x <FOLDER_ID>."
    assert hide(b"xb1gAAAA b1gAAAAx b1gAA_1") == b"xb1gAAAA b1gAAAAx b1gAA_1"
    assert hide(b'"b1gAA"') == b'"<FOLDER_ID_2>"'


def test_named_values_are_hidden_anywhere_the_longest_first() -> None:
    substitution = Substitution(named=(("ivan", "<USER>"), ("ivan.petrov", "<LOGIN>")))
    assert substitution.hide_text("ivan.petrov and ivanov") == "<LOGIN> and <USER>ov"
    hidden, spans = substitution.hide_spans(b"ab ivan cd")
    assert (hidden, spans) == (b"ab <USER> cd", [(3, 7, 6)])


def test_offsets_move_with_the_replacements() -> None:
    spans = [(3, 7, 6), (10, 12, 1)]  # 4 bytes become 6, then 2 become 1
    assert remap([0, 3, 5, 7, 10, 11, 12, 20], spans) == [0, 3, 9, 9, 12, 13, 13, 21]


def _response(body: bytes, headers: dict[str, str] | None = None) -> ProxyResponse:
    return ProxyResponse(200, "OK", CIMultiDictProxy(CIMultiDict(headers or {})), body)


def test_a_recorded_response_is_filled_once_per_set_of_values() -> None:
    """The hit path's cost: the template is made on first play; a request with values seen
    before gets the very same response object (its checks, frames and log record done once)."""
    placeholders = Placeholders({"TEAM": "ml-platform"})
    recorded = _response(
        b'{"model": "gpt://<FOLDER_ID>/yandexgpt", "team": "<TEAM>", "x": "<OTHER>"}',
        {"x-folder-id": "<FOLDER_ID>", "x-request-id": "req_1"},
    )
    timing = Timing(1.0, ((20, 0.0), (len(recorded.body), 5.0)))
    a = placeholders.of_request(b'{"model": "gpt://b1gAAAA/yandexgpt"}')
    filled, moved = placeholders.filled(recorded, timing, a)
    assert (
        filled.body
        == b'{"model": "gpt://b1gAAAA/yandexgpt", "team": "ml-platform", "x": "<OTHER>"}'
    )
    assert filled.headers["x-folder-id"] == FOLDER_A
    # 20 fell inside the placeholder (17..28): it moves to the end of the folder (17 + 7).
    assert moved == Timing(1.0, ((24, 0.0), (len(filled.body), 5.0)))
    again, _ = placeholders.filled(recorded, None, placeholders.of_request(b"gpt://b1gAAAA/y"))
    assert again is filled
    b, _ = placeholders.filled(recorded, None, placeholders.of_request(b"", "", ["b1gBBBB"]))
    assert b is not filled
    assert b"gpt://b1gBBBB/yandexgpt" in b.body
    # A request that names no folder leaves the folder's placeholder as it is.
    none, _ = placeholders.filled(recorded, None, placeholders.of_request(b""))
    assert b"gpt://<FOLDER_ID>/" in none.body
    for n in range(FILLED_KEPT + 5):  # bounded: at most FILLED_KEPT filled responses kept
        placeholders.filled(recorded, None, placeholders.of_request(b"", "", [f"b1gX{n:04}"]))
    assert len(recorded.memo["template"].kept) == FILLED_KEPT
    plain = _response(b'{"model": "yandexgpt"}')
    assert placeholders.filled(plain, timing, a) == (plain, timing)  # nothing to fill


@settings(max_examples=300, deadline=None)
@given(
    st.text(),
    st.from_regex(r"b1g[a-z0-9]{4,17}", fullmatch=True),
    st.from_regex(r"b1g[A-Z0-9]{4,17}", fullmatch=True),
    st.lists(st.integers(min_value=0, max_value=400), max_size=5),
)
def test_hiding_then_filling_with_the_same_values_gives_back_the_body(
    text: str, folder: str, other: str, offsets: list[int]
) -> None:
    """Whatever surrounds them, a body's folders hidden and filled in again are the body; filled
    with another folder, it names that one wherever it named the first; offsets stay in order."""
    assume("<FOLDER_ID" not in text and folder not in text and other not in text)
    body = f"{text}gpt://{folder}/yandexgpt {text} art://{folder}/x{text}".encode()
    substitution = Placeholders().of_request(body)
    hidden, spans = substitution.hide_spans(body)
    assert folder.encode() not in hidden
    recorded = _response(hidden, {"x-folder-id": "<FOLDER_ID>"})
    timing = Timing(0.0, tuple((min(o, len(hidden)), 1.0) for o in sorted(offsets)))
    filled, moved = Placeholders().filled(recorded, timing, substitution)
    assert filled.body == body
    assert filled.headers["x-folder-id"] == folder
    assert moved is not None
    ends = [end for end, _ in moved.frames]
    assert ends == sorted(ends)
    assert all(end <= len(body) for end in ends)
    assert remap([len(body)], spans) == [len(hidden)]
    theirs, _ = Placeholders().filled(recorded, None, Substitution(folders=(other,)))
    assert theirs.body == body.replace(folder.encode(), other.encode())


# -- through the proxy, with the openai client ----------------------------------------------------


@pytest.fixture
async def yandex(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> tuple[YandexUpstream, str]:
    service = YandexUpstream(KEY)
    server = await aiohttp_server(service.app(), host="127.0.0.1")
    return service, str(server.make_url("")).rstrip("/")


def _ask(base_url: str, folder: str, prompt: str = "Привет", **extra: Any) -> dict[str, Any]:
    """One create and one streamed create with the openai client, configured as Yandex
    documents it; what the client saw."""
    model = f"gpt://{folder}/yandexgpt/latest"
    with openai.OpenAI(api_key=KEY, base_url=base_url, project=folder, max_retries=0) as client:
        raw = client.responses.with_raw_response.create(model=model, input=prompt, **extra)
        answer = raw.parse()
        events = list(client.responses.create(model=model, input=prompt, stream=True, **extra))
    return {
        "model": answer.model,
        "text": answer.output_text,
        "folder_header": raw.headers.get("x-folder-id"),
        "streamed": [event.response.model for event in events if hasattr(event, "response")],
    }


def _everything_in(cassette: Path) -> str:
    return cassette.read_text(encoding="utf-8")


async def test_a_folder_is_never_recorded_and_replays_as_the_clients_own(
    start_proxy: StartProxy, yandex: tuple[YandexUpstream, str], tmp_path: Path
) -> None:
    service, url = yandex
    cassette = tmp_path / "team.yaml"
    recording = await start_proxy(upstream=url, cassette=cassette, record_mode="once")
    live = await asyncio.to_thread(_ask, recording.base_url, FOLDER_A)
    assert live["model"] == live["folder_header"].join(("gpt://", "/yandexgpt/latest"))
    journalled = journal_path(cassette).read_text(encoding="utf-8")
    await recording.stop()
    assert FOLDER_A not in journalled  # durable before the stop, and already hidden
    text = _everything_in(cassette)
    assert FOLDER_A not in text
    interactions = yaml.safe_load(text)["interactions"]
    assert [i["request"]["headers"]["openai-project"] for i in interactions] == [
        ["<FOLDER_ID>"]
    ] * 2
    assert all(i["response"]["headers"]["x-folder-id"] == ["<FOLDER_ID>"] for i in interactions)
    assert "gpt://<FOLDER_ID>/yandexgpt/latest" in interactions[1]["response"]["body"]["string"]

    replaying = await start_proxy(upstream=url, cassette=cassette, record_mode="none")
    replayed = await asyncio.to_thread(_ask, replaying.base_url, FOLDER_B)
    model_b = f"gpt://{FOLDER_B}/yandexgpt/latest"
    assert replayed == {
        "model": model_b,
        "text": live["text"],
        "folder_header": FOLDER_B,
        "streamed": [model_b] * len(live["streamed"]),
    }
    assert len(service.received) == 2  # the replay never reached the service
    assert {line["source"] for line in replaying.exchanges()} == {"cassette"}


async def test_folder_placeholders_can_be_turned_off(
    start_proxy: StartProxy, yandex: tuple[YandexUpstream, str], tmp_path: Path
) -> None:
    _, url = yandex
    cassette = tmp_path / "mine.yaml"
    recording = await start_proxy(
        upstream=url, cassette=cassette, record_mode="once", folder_placeholders=False
    )
    await asyncio.to_thread(_ask, recording.base_url, FOLDER_A)
    await recording.stop()
    assert "<FOLDER_ID>" not in _everything_in(cassette)
    assert f"gpt://{FOLDER_A}/yandexgpt/latest" in _everything_in(cassette)
    replaying = await start_proxy(
        upstream=url, cassette=cassette, record_mode="none", folder_placeholders=False
    )
    with pytest.raises(openai.InternalServerError, match="501"):  # another folder misses
        await asyncio.to_thread(_ask, replaying.base_url, FOLDER_B)


async def test_a_cassette_recorded_before_placeholders_matches_in_any_folder(
    start_proxy: StartProxy, yandex: tuple[YandexUpstream, str], tmp_path: Path
) -> None:
    """Its requests name the folder: matching hides it on the recorded side too, so another
    folder matches; the answers replay as they were recorded (nothing in them to fill)."""
    _, url = yandex
    cassette = tmp_path / "old.yaml"
    recording = await start_proxy(
        upstream=url, cassette=cassette, record_mode="once", folder_placeholders=False
    )
    live = await asyncio.to_thread(_ask, recording.base_url, FOLDER_A)
    await recording.stop()
    replaying = await start_proxy(upstream=url, cassette=cassette, record_mode="none")
    replayed = await asyncio.to_thread(_ask, replaying.base_url, FOLDER_B)
    assert replayed == live


async def test_named_values_are_placeholders_each_member_fills_with_their_own(
    start_proxy: StartProxy, yandex: tuple[YandexUpstream, str], tmp_path: Path
) -> None:
    """A value the recording member's config names is ``<NAME>`` in the cassette; another
    member naming their own value matches it, and gets their own back. Secrets the value
    does not cover are still redacted."""
    service, url = yandex
    cassette = tmp_path / "named.yaml"
    secret = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"  # a Stripe-shaped key, split for scanners
    recording = await start_proxy(
        upstream=url, cassette=cassette, record_mode="once", placeholders={"TEAM": "ml-platform"}
    )
    live = await asyncio.to_thread(
        _ask, recording.base_url, FOLDER_A, "Команда ml-platform", metadata={"token": secret}
    )
    await recording.stop()
    text = _everything_in(cassette)
    assert "ml-platform" not in text
    assert "Команда <TEAM>" in text
    assert secret not in text  # redaction stays on top
    assert live["text"] == "Ответ: Команда ml-platform"

    replaying = await start_proxy(
        upstream=url, cassette=cassette, record_mode="none", placeholders={"TEAM": "search"}
    )
    replayed = await asyncio.to_thread(
        _ask, replaying.base_url, FOLDER_B, "Команда search", metadata={"token": secret}
    )
    assert replayed["text"] == "Ответ: Команда search"
    assert len(service.received) == 2


async def test_a_named_value_written_with_json_escapes_is_a_placeholder_too(
    start_proxy: StartProxy, aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> None:
    """Python's json, PHP and curl by hand write non-ASCII as ``\\u`` escapes: the value
    is the same, and must be hidden and given back the same (it leaked into the cassette, and
    the replaying member got the recording member's value)."""
    service = YandexUpstream(KEY, ascii_only=True)
    server = await aiohttp_server(service.app(), host="127.0.0.1")
    url = str(server.make_url("")).rstrip("/")
    cassette = tmp_path / "escaped.yaml"
    recording = await start_proxy(
        upstream=url, cassette=cassette, record_mode="once", placeholders={"ME": "Иван Петров"}
    )
    asked = {"model": f"gpt://{FOLDER_A}/yandexgpt/latest", "input": "Меня зовут Иван Петров"}
    headers = {"Authorization": f"Api-Key {KEY}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{recording.base_url}/responses", headers=headers, data=json.dumps(asked)
        ) as answer:  # escaped, as curl -d '\u..'
            assert answer.status == 200
            assert "Иван Петров" in (await answer.json())["output"][0]["content"][0]["text"]
        await recording.stop()
        text = _everything_in(cassette)
        assert "Иван" not in text
        assert "\\u0418\\u0432" not in text  # the name, escaped
        assert "\\\\u0418" not in text  # and its escape escaped again by YAML
        assert "<ME>" in text
        replaying = await start_proxy(
            upstream=url, cassette=cassette, record_mode="none", placeholders={"ME": "Пётр Сидоров"}
        )
        mine = asked | {"input": "Меня зовут Пётр Сидоров"}
        async with session.post(f"{replaying.base_url}/responses", headers=headers,
                                data=json.dumps(mine)) as answer:  # fmt: skip
            assert answer.status == 200, await answer.text()
            text = (await answer.json())["output"][0]["content"][0]["text"]
    assert "Пётр Сидоров" in text
    assert "Иван" not in text
    assert len(service.received) == 1


def test_what_placeholders_keep_is_bounded(tmp_path: Path) -> None:
    """A request naming 100 folders hides 16; a client sending long folder headers does not
    fill the lookup memo (only requests of 6 KiB at most are remembered, headers counted)."""
    many = b" ".join(b"gpt://b1g%03d/m" % n for n in range(100))
    substitution = Placeholders().of_request(many)
    assert len(substitution.folders) == 16
    assert substitution.hide(b"gpt://b1g099/m") == b"gpt://b1g099/m"  # left as it is
    recorder = Recorder(Settings(cassette=tmp_path / "c.yaml", record_mode="none"))
    try:
        memo = recorder._key.cache_info  # type: ignore[attr-defined]
        for n in range(50):
            long = f"b1g{n}" + "x" * 7_000
            headers = CIMultiDictProxy(CIMultiDict({"OpenAI-Project": long}))
            recorder.play(ProxyRequest("POST", "/v1/responses", headers, b"{}"))
        assert memo().currsize == 0
        for n in range(1_100):
            headers = CIMultiDictProxy(CIMultiDict({"OpenAI-Project": f"b1g{n}"}))
            recorder.play(ProxyRequest("POST", "/v1/responses", headers, b"{}"))
        assert memo().currsize == 1_024
    finally:
        recorder.close()
