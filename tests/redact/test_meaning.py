"""Secrets behind an encoding (issue 22, item 1): a key inside a JSON string that is itself JSON
(a function call's ``arguments``), written with ``\\u`` escapes, percent-encoded in a form body,
or streamed in pieces (argument deltas), is found by what the bytes mean, in every artefact and
by ``cassette check``."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest
import vcr
import yaml
from aiohttp import web
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from vcr.request import Request as VcrRequest

from cassette_proxy.cli import main
from cassette_proxy.redact import fingerprint, meaning, redact_bytes, redact_text, secrets_in
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.journal import journal_path
from cassette_proxy.store.persist import load_cassette, save_cassette
from tests.conftest import StartProxy
from tests.fake_upstream import FakeUpstream
from tests.redact.test_secret_rules import GITHUB_PAT
from tests.stream_upstream import frame, response_object

# The issue's key, assembled so that scanners do not flag this file.
STRIPE = "sk_live_" + "u8jzPde0IgxLd6GncfBAepfJ"
BASE = "https://ai.api.cloud.yandex.net/v1"


def _events(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[5:]) for line in body.splitlines() if line.startswith(b"data:")]


def _arguments_stream(arguments: str, width: int) -> bytes:
    """A function call streamed as the Responses API streams it: its arguments in deltas of
    ``width`` characters, then the whole arguments, the item, and the completed response."""
    item = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "charge",
            "arguments": arguments, "status": "completed"}  # fmt: skip
    done = response_object("resp_tool", "completed") | {"output": [item]}
    shapes: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response_object("resp_tool", "in_progress")}),
        ("response.output_item.added",
         {"output_index": 0, "item": item | {"arguments": "", "status": "in_progress"}}),
        *(
            ("response.function_call_arguments.delta",
             {"item_id": "fc_1", "output_index": 0, "delta": arguments[i : i + width]})
            for i in range(0, len(arguments), width)
        ),
        ("response.function_call_arguments.done",
         {"item_id": "fc_1", "output_index": 0, "arguments": arguments}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": done}),
    ]  # fmt: skip
    return b"".join(
        frame(kind, {"type": kind, "sequence_number": n, **data})
        for n, (kind, data) in enumerate(shapes)
    )


def _joined_deltas(body: bytes) -> str:
    return "".join(
        e["delta"] for e in _events(body) if e["type"] == "response.function_call_arguments.delta"
    )


# -- the issue's reproductions ---------------------------------------------------------------------


def test_the_issues_command_no_longer_prints_the_key() -> None:
    body = json.dumps({"arguments": json.dumps({"stripe": STRIPE})}).encode()
    redacted = redact_bytes(body)
    assert STRIPE.encode() not in redacted
    assert json.loads(json.loads(redacted)["arguments"]) == {"stripe": fingerprint(STRIPE)}


def _nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = {"arguments": json.dumps(value)}
    return value


def _quoted_request() -> str:
    call = {"type": "function_call", "arguments": json.dumps({"stripe": STRIPE})}
    return json.dumps({"input": [call]})


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (json.dumps(_nested({"stripe": STRIPE}, 1)).encode(), "JSON in a JSON string"),
        (json.dumps(_nested({"stripe": STRIPE}, 3)).encode(), "three strings deep"),
        (json.dumps({"k": STRIPE}).replace("_", "\\u005f").encode(), "\\u-escaped"),
        (json.dumps({"k": STRIPE}, ensure_ascii=True).replace("s", "\\u0073").encode(), "\\u0073"),
        (f"note={GITHUB_PAT.replace('_', '%5F')}&x=1".encode(), "percent-encoded form"),
        (f"note={urllib.parse.quote(GITHUB_PAT, safe='')}".encode(), "quote()"),
        (
            json.dumps({"url": f"https://x.test/?n={GITHUB_PAT.replace('_', '%5F')}"}).encode(),
            "a percent-encoded URL in JSON",
        ),
        (
            json.dumps(
                {
                    "error": {
                        "message": "invalid input: "
                        + json.dumps(
                            {
                                "input": [
                                    {
                                        "type": "function_call",
                                        "arguments": json.dumps({"stripe": STRIPE}),
                                    }
                                ]
                            }
                        )
                    }
                }
            ).encode(),
            "a 400 quoting the request",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_key_is_found_however_it_is_encoded(body: bytes, where: str) -> None:
    secret = GITHUB_PAT if "form" in where or "URL" in where or "quote" in where else STRIPE
    redacted = redact_bytes(body)
    assert fingerprint(secret).encode() in redacted, where
    assert [found.replacement for found in secrets_in(body)] == [fingerprint(secret)]
    assert redact_bytes(redacted) == redacted  # redacting twice is redacting once
    assert secrets_in(redacted) == []
    # What the bytes mean no longer holds the key either, at any depth.
    text = urllib.parse.unquote(redacted.decode())
    for _ in range(4):
        text = text.encode().decode("unicode_escape", "replace")
    assert secret not in text


def test_only_the_secret_changes_every_other_byte_is_kept() -> None:
    arguments = json.dumps({"stripe": STRIPE, "note": "line one\nline two \u00e9 \\ end"})
    body = json.dumps({"output": [{"arguments": arguments}], "text": "a\tb"}).encode()
    redacted = redact_bytes(body)
    assert redacted == body.replace(STRIPE.encode(), fingerprint(STRIPE).encode())


def test_a_key_streamed_in_argument_deltas_is_found_whatever_the_split() -> None:
    arguments = json.dumps({"amount": 12, "stripe": STRIPE, "memo": 'a "quoted"\nline'})
    for width in (1, 2, 3, 5, 7, 11, 40):
        body = _arguments_stream(arguments, width)
        redacted = redact_bytes(body)
        assert STRIPE.encode() not in redacted, width
        joined = _joined_deltas(redacted)
        # The deltas still join into the redacted arguments the done events carry.
        done = next(
            e for e in _events(redacted) if e["type"] == "response.function_call_arguments.done"
        )
        assert joined == done["arguments"], width
        assert json.loads(joined)["stripe"] == fingerprint(STRIPE)
        for piece in range(len(STRIPE) - 5):  # no piece of the key is left anywhere
            assert STRIPE[piece : piece + 6] not in joined or STRIPE[piece : piece + 6] in (
                fingerprint(STRIPE)
            )
        assert redact_bytes(redacted) == redacted
        # cassette check counts each place the key is: the deltas, and the three whole ones.
        assert len(secrets_in(body)) == 4


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=12))
def test_deltas_cut_anywhere_never_leave_the_key(cuts: list[int]) -> None:
    arguments = json.dumps({"stripe": STRIPE, "n": "x\\y"})
    points = sorted({min(cut, len(arguments)) for cut in cuts} | {len(arguments)})
    pieces, last = [], 0
    for point in points:
        if point > last:
            pieces.append(arguments[last:point])
            last = point
    frames = [
        frame("response.function_call_arguments.delta",
              {"type": "response.function_call_arguments.delta", "item_id": "fc_1",
               "output_index": 0, "delta": piece, "sequence_number": n})
        for n, piece in enumerate(pieces)
    ]  # fmt: skip
    body = b"".join(frames)
    redacted = redact_bytes(body)
    joined = _joined_deltas(redacted)
    assert STRIPE not in joined
    if len(pieces) > 1 or "\\" in arguments:
        assert json.loads(joined) == {"stripe": fingerprint(STRIPE), "n": "x\\y"}


def test_two_items_streamed_together_are_joined_each_on_its_own() -> None:
    first, second = json.dumps({"stripe": STRIPE}), json.dumps({"q": "weather in Oslo"})
    frames = []
    for n in range(max(len(first), len(second)) // 4 + 1):
        for item, arguments in (("fc_1", first), ("fc_2", second)):
            piece = arguments[n * 4 : n * 4 + 4]
            if piece:
                frames.append(
                    frame("response.function_call_arguments.delta",
                          {"type": "response.function_call_arguments.delta", "item_id": item,
                           "output_index": int(item[-1]), "delta": piece})
                )  # fmt: skip
    redacted = redact_bytes(b"".join(frames))
    by_item: dict[str, str] = {}
    for event in _events(redacted):
        by_item[event["item_id"]] = by_item.get(event["item_id"], "") + event["delta"]
    assert json.loads(by_item["fc_1"]) == {"stripe": fingerprint(STRIPE)}
    assert by_item["fc_2"] == second


def test_text_and_headers_are_read_by_meaning_too() -> None:
    encoded = GITHUB_PAT.replace("_", "%5F")
    assert GITHUB_PAT.replace("_", "%5F") not in redact_text(f"/v1/x?note={encoded}")
    assert redact_text(f"/v1/x?note={encoded}") == f"/v1/x?note={fingerprint(GITHUB_PAT)}"


# -- bounded work ----------------------------------------------------------------------------------


def _hostile_bodies() -> Iterator[tuple[str, bytes]]:
    yield "backslashes", b"\\" * 200_000
    yield "backslashes and quotes", b'"\\' * 100_000
    yield "strings in strings, 14 deep", json.dumps(_nested({"a": "b"}, 14)).encode()
    yield "many escaped strings", b"[" + b",".join([b'"a\\nb"'] * 50_000) + b"]"
    yield "percent everywhere", b"%41" * 100_000
    yield (
        "deltas",
        b"".join(frame("x.delta", {"type": "x.delta", "delta": "\\%41"}) for _ in range(5_000)),
    )
    yield "an unclosed string", b'"' + b"\\n" * 100_000


@pytest.mark.parametrize(("name", "body"), list(_hostile_bodies()), ids=lambda v: str(v)[:20])
def test_the_views_read_a_bounded_multiple_of_the_body(
    name: str, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanned: list[int] = []
    real = meaning.find  # type: ignore[attr-defined]  # the rules' pass, counted here

    def counting(data: bytes) -> Any:
        scanned.append(len(data))
        return real(data)

    monkeypatch.setattr(meaning, "find", counting)
    meaning.hits(body)
    between = len(meaning._BETWEEN)
    limit = len(body) + max(meaning.BUDGET * len(body), 64 * 1024) * (1 + between)
    assert sum(scanned) <= limit, name
    assert len(scanned) <= 1 + meaning.MAX_DEPTH  # one pass per level of views


# -- cassette check and redact ---------------------------------------------------------------------


def _unredacted_tool_cassette(path: Path) -> None:
    """What vcrpy (or an older proxy) recorded: a key in tool-call arguments, in the request,
    the response, and the argument deltas of a stream."""
    arguments = json.dumps({"stripe": STRIPE, "amount": 12})
    request = {
        "model": "m",
        "input": [
            {"type": "function_call", "call_id": "c", "name": "charge", "arguments": arguments}
        ],
    }
    item = {"id": "fc_1", "type": "function_call", "call_id": "c", "name": "charge",
            "arguments": arguments, "status": "completed"}  # fmt: skip
    save_cassette(
        path,
        [
            Interaction(
                VcrRequest("POST", f"{BASE}/responses", orjson.dumps(request), {}),
                200,
                "OK",
                (("Content-Type", "application/json"),),
                orjson.dumps(response_object("resp_1", "completed") | {"output": [item]}),
            ),
            Interaction(
                VcrRequest("POST", f"{BASE}/responses", b'{"model":"m","stream":true}', {}),
                200,
                "OK",
                (("Content-Type", "text/event-stream"),),
                _arguments_stream(arguments, 3),
            ),
        ],
    )


def test_check_finds_a_key_inside_tool_call_arguments_and_redact_removes_it(
    tmp_path: Path,
) -> None:
    cassette = tmp_path / "tools.yaml"
    _unredacted_tool_cassette(cassette)
    assert STRIPE in cassette.read_text()
    checked = CliRunner().invoke(main, ["cassette", "check", "--format", "json", str(cassette)])
    assert checked.exit_code == 1, checked.output
    [report] = orjson.loads(checked.output)["cassettes"]
    pointers = sorted(f["pointer"] for f in report["findings"] if f["kind"] == "secret")
    assert pointers == [
        "/interactions/0/request/body",
        "/interactions/0/response/body",
        *["/interactions/1/response/body"] * 4,  # the deltas, the done event, item, response
    ]
    redacted = CliRunner().invoke(main, ["cassette", "redact", str(cassette)])
    assert redacted.exit_code == 0, redacted.output
    assert STRIPE not in cassette.read_text()
    again = CliRunner().invoke(main, ["cassette", "check", "--fail-on", "secrets", str(cassette)])
    assert again.exit_code == 0, again.output
    interactions = load_cassette(cassette)
    assert interactions is not None
    stream = interactions[1].body
    assert json.loads(_joined_deltas(stream))["stripe"] == fingerprint(STRIPE)
    with vcr.use_cassette(str(cassette), record_mode="none") as loaded:  # vcrpy still loads it
        assert len(loaded.data) == 2


# -- end to end: a real recording ----------------------------------------------------------------


class ToolCallUpstream(FakeUpstream):
    """Answers ``POST /v1/responses`` with a function call whose arguments hold the key: as
    JSON, as a stream of argument deltas (``"stream": true``), or, for ``model: "quote"``, a 400
    that quotes the request, as upstreams do; anything else as the fake upstream does."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST" or request.path != "/v1/responses":
            return await super().handle(request)
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:  # the form body: echoed, as an error would quote it
            return web.json_response({"echo": raw.decode()})
        arguments = json.dumps({"stripe": STRIPE, "amount": 12})
        if body.get("model") == "quote":
            message = f"invalid input: {raw.decode()}"
            error = {"message": message, "type": "invalid_request_error", "code": None,
                     "param": "input"}  # fmt: skip
            return web.json_response({"error": error}, status=400)
        if body.get("stream"):
            return web.Response(
                body=_arguments_stream(arguments, 3), content_type="text/event-stream"
            )
        item = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "charge",
                "arguments": arguments, "status": "completed"}  # fmt: skip
        return web.json_response(response_object("resp_tool", "completed") | {"output": [item]})


@pytest.fixture
def fake_upstream() -> FakeUpstream:
    return ToolCallUpstream()


def _leaves(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for value in document.values():
            yield from _leaves(value)
    elif isinstance(document, list):
        for value in document:
            yield from _leaves(value)
    elif isinstance(document, str | bytes):
        text = document.decode("utf-8", "replace") if isinstance(document, bytes) else document
        yield text
        yield urllib.parse.unquote(text)


async def test_no_artefact_of_a_recorded_run_holds_a_key_in_tool_call_arguments(
    start_proxy: StartProxy, fake_upstream: ToolCallUpstream, tmp_path: Path
) -> None:
    cassette = tmp_path / "tools.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="all")
    client = openai.AsyncOpenAI(base_url=recording.base_url, api_key="dummy", max_retries=0)
    arguments = json.dumps({"stripe": STRIPE})
    tool_input = [{"type": "function_call", "call_id": "c", "name": "charge",
                   "arguments": arguments}]  # fmt: skip
    created = await client.responses.create(model="m", input=tool_input)  # type: ignore[arg-type]
    call = created.output[0]
    assert call.type == "function_call"
    assert STRIPE in call.arguments
    async with await client.responses.create(model="m", input="go", stream=True) as stream:
        events = [event async for event in stream]
    assert STRIPE in "".join(getattr(e, "delta", "") for e in events)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="quote", input=tool_input)  # type: ignore[arg-type]
    form = f"note={GITHUB_PAT.replace('_', '%5F')}&grant_type=client_credentials"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            recording.base_url + "/responses",
            data=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as posted,
    ):
        assert await posted.json() == {"echo": form}
    journal = journal_path(cassette).read_bytes()
    await client.close()
    await recording.stop()

    artefacts = {
        "the journal": journal,
        "the cassette": cassette.read_bytes(),
        "the log": recording.log_path.read_bytes(),
    }
    for where, data in artefacts.items():
        for text in _leaves(data):
            assert STRIPE[:12] not in text, where
            assert GITHUB_PAT[:12] not in text, where
    for line in recording.log_lines():
        for text in _leaves(line):
            assert STRIPE[:12] not in text
            assert GITHUB_PAT[:12] not in text
    for interaction in yaml.safe_load(cassette.read_text())["interactions"]:
        for text in _leaves(interaction):
            assert STRIPE[:12] not in text
            assert GITHUB_PAT[:12] not in text
        # The stored length is the redacted body's (a fingerprint is shorter than the key).
        response = interaction["response"]
        [length] = response["headers"]["Content-Length"]
        assert int(length) == len(response["body"]["string"].encode())

    # The redacted recordings replay: the same requests match, and the streamed arguments
    # still join into the (redacted) arguments the done event carries.
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    async with openai.AsyncOpenAI(base_url=replaying.base_url, api_key="d", max_retries=0) as c:
        again = await c.responses.create(model="m", input=tool_input)  # type: ignore[arg-type]
        replayed_call = again.output[0]
        assert replayed_call.type == "function_call"
        assert json.loads(replayed_call.arguments) == {"stripe": fingerprint(STRIPE), "amount": 12}
        async with await c.responses.create(model="m", input="go", stream=True) as stream:
            replayed = [event async for event in stream]
    joined = "".join(getattr(e, "delta", "") for e in replayed)
    done = next(e for e in replayed if e.type == "response.function_call_arguments.done")
    assert joined == getattr(done, "arguments", None)
    assert json.loads(joined)["stripe"] == fingerprint(STRIPE)
    assert {line["source"] for line in replaying.exchanges()} == {"cassette"}
