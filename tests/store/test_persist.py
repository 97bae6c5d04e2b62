"""Cassette files: vcrpy reads what the proxy writes, the proxy reads what vcrpy writes, and a
file the proxy cannot trust is refused, never overwritten."""

from __future__ import annotations

import asyncio
import copy
import os
import secrets
from pathlib import Path
from typing import Any

import openai
import pytest
import vcr
from hypothesis import given, settings
from hypothesis import strategies as st
from vcr.request import Request as VcrRequest

from cassette_proxy.errors import CassetteFileError
from cassette_proxy.settings import Settings
from cassette_proxy.store import persist
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.persist import (
    CassetteNotReplayable,
    file_state,
    load_cassette,
    read_cassette,
    save_cassette,
    write_atomically,
)
from cassette_proxy.store.recorder import Recorder
from tests import vectors
from tests.conftest import DUMMY_KEY, StartProxy
from tests.fake_upstream import FakeUpstream


async def test_vcrpy_replays_a_cassette_the_proxy_recorded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path, upstream_url: str
) -> None:
    cassette = tmp_path / "by-proxy.yaml"
    # Folders as they are: vcrpy replays the cassette's text, compared with the upstream's.
    proxy = await start_proxy(cassette=cassette, record_mode="once", folder_placeholders=False)
    async with openai.AsyncOpenAI(
        base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0
    ) as client:
        through_proxy = await client.responses.cancel(vectors.V3_ID)
        gzipped = await client.responses.cancel("resp_gzip_1")
    await proxy.stop()
    received = len(fake_upstream.received)

    def replay_with_vcrpy() -> tuple[openai.types.responses.Response, ...]:
        with vcr.use_cassette(str(cassette), record_mode="none"):
            # Straight at the upstream's URL: vcrpy answers from the proxy's cassette.
            client = openai.OpenAI(base_url=upstream_url + "/v1", api_key="x", max_retries=0)
            with client:
                return (
                    client.responses.cancel(vectors.V3_ID),
                    client.responses.cancel("resp_gzip_1"),
                )

    by_vcrpy = await asyncio.to_thread(replay_with_vcrpy)
    assert by_vcrpy == (through_proxy, gzipped)
    assert len(fake_upstream.received) == received


async def test_the_proxy_replays_a_cassette_vcrpy_recorded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path, upstream_url: str
) -> None:
    cassette = tmp_path / "by-vcrpy.yaml"

    def record_with_vcrpy() -> tuple[object, ...]:
        with vcr.use_cassette(str(cassette), record_mode="once"):
            client = openai.OpenAI(base_url=upstream_url + "/v1", api_key="x", max_retries=0)
            with client:
                found = client.responses.cancel(vectors.V4_ID)
                gzipped = client.responses.cancel("resp_gzip_2")
                with pytest.raises(openai.NotFoundError) as missing:
                    client.responses.cancel("resp_does_not_exist_123")
                return found, gzipped, missing.value.body

    recorded = await asyncio.to_thread(record_with_vcrpy)
    assert "!!binary" in cassette.read_text()  # vcrpy kept the gzip bytes as they came
    received = len(fake_upstream.received)

    proxy = await start_proxy(cassette=cassette, record_mode="none")
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as client:
        found = await client.responses.cancel(vectors.V4_ID)
        gzipped = await client.responses.cancel("resp_gzip_2")
        with pytest.raises(openai.NotFoundError) as missing:
            await client.responses.cancel("resp_does_not_exist_123")
    assert (found, gzipped, missing.value.body) == recorded
    assert len(fake_upstream.received) == received
    assert {e["source"] for e in proxy.exchanges()} == {"cassette"}
    assert {e["verdict"] for e in proxy.exchanges()} == {"passed"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("interactions: [\n  {request: ", "not a vcrpy cassette"),
        ("!!python/object/apply:os.system ['true']\n", "not a vcrpy cassette"),
        ("version: 1\nnothing: here\n", "not a vcrpy cassette"),
        ("\udcff", "not UTF-8"),
    ],
    ids=["corrupt-yaml", "python-tag", "wrong-shape", "not-utf8"],
)
def test_untrustworthy_cassettes_are_refused_and_left_untouched(
    tmp_path: Path, content: str, reason: str
) -> None:
    cassette = tmp_path / "bad.yaml"
    cassette.write_bytes(content.encode("utf-8", "surrogateescape"))
    before = cassette.read_bytes()
    settings = Settings(cassette=cassette, record_mode="all")
    with pytest.raises(CassetteFileError, match=reason) as caught:
        Recorder(settings)
    assert str(cassette) in str(caught.value)
    assert cassette.read_bytes() == before


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    cassette = tmp_path / "atomic.yaml"
    interaction = Interaction(
        vcr.request.Request("POST", "https://h/v1/responses/x/cancel", b"", {}),
        200,
        "OK",
        (("Content-Type", "application/json"),),
        vectors.V1_BODY,
    )
    save_cassette(cassette, [interaction])
    save_cassette(cassette, [interaction, interaction])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.yaml"]
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert [i.body for i in loaded] == [vectors.V1_BODY, vectors.V1_BODY]
    # A private cassette stays private when it is rewritten (saved again, or redacted).
    cassette.chmod(0o600)
    save_cassette(cassette, [interaction])
    assert cassette.stat().st_mode & 0o777 == 0o600


def test_json_cassettes_use_vcrpys_json_serializer(tmp_path: Path) -> None:
    cassette = tmp_path / "cassette.json"
    interaction = Interaction(
        vcr.request.Request("POST", "https://h/v1/responses/x/cancel", b"", {}),
        404,
        "Not Found",
        (),
        vectors.V5A_BODY,
    )
    save_cassette(cassette, [interaction])
    requests, responses = vcr.serialize.deserialize(
        cassette.read_text(), vcr.serializers.jsonserializer
    )
    assert requests[0].uri == "https://h/v1/responses/x/cancel"
    assert responses[0]["body"]["string"] == vectors.V5A_BODY


def test_an_unreadable_cassette_is_refused(tmp_path: Path) -> None:
    # Running as root, file permissions do not stop a read; a directory in its place does.
    cassette = tmp_path / "unreadable.yaml"
    cassette.mkdir()
    with pytest.raises(CassetteFileError, match="cannot read cassette"):
        Recorder(Settings(cassette=cassette, record_mode="none"))
    assert cassette.is_dir()


def a_recording(marker: str) -> Interaction:
    return Interaction(
        vcr.request.Request("POST", f"https://h/v1/responses/{marker}/cancel", b"", {}),
        200,
        "OK",
        (),
        marker.encode(),
    )


def test_a_save_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real" / "c.yaml"
    target.parent.mkdir()
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    save_cassette(link, [a_recording("one")])
    save_cassette(link, [a_recording("one"), a_recording("two")])
    assert link.is_symlink()
    loaded = load_cassette(target)
    assert loaded is not None
    assert [i.body for i in loaded] == [b"one", b"two"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["c.yaml"]  # no temporary left


def test_a_symlink_planted_at_a_temporary_name_is_never_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "c.yaml"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    # The name the proxy used to write to, and the name it will draw first now: both planted.
    (tmp_path / f".c.yaml.{os.getpid()}.tmp").symlink_to(victim)
    names = iter(["guessed", "fresh"])
    monkeypatch.setattr(secrets, "token_hex", lambda _: next(names))
    (tmp_path / ".c.yaml.guessed.tmp").symlink_to(victim)
    save_cassette(cassette, [a_recording("one")])
    assert victim.read_bytes() == b"precious"
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert [i.body for i in loaded] == [b"one"]
    assert not (tmp_path / ".c.yaml.fresh.tmp").exists()


def test_a_write_made_only_if_unchanged_leaves_a_changed_file_alone(tmp_path: Path) -> None:
    cassette = tmp_path / "c.yaml"
    save_cassette(cassette, [a_recording("one")])
    seen = read_cassette(cassette).state
    assert seen is not None
    assert file_state(cassette) == seen
    save_cassette(cassette, [a_recording("edited")])  # someone else's change
    assert not write_atomically(cassette, "version: 1\ninteractions: []\n", only_if=seen)
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert [i.body for i in loaded] == [b"edited"]
    assert write_atomically(cassette, "", only_if=file_state(cassette))
    assert not write_atomically(tmp_path / "absent.yaml", "", only_if=seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


# -- the shapes vcrpy's stubs wrote (tests/store/test_shapes.py replays each through the proxy) --

REQUEST: dict[str, Any] = {"method": "GET", "uri": "https://h/x", "body": None, "headers": {}}
TODAY: dict[str, Any] = {
    "status": {"code": 200, "message": "OK"},
    "headers": {},
    "body": {"string": "ok"},
}


def one_interaction(
    path: Path, response: dict[str, Any], request: dict[str, Any] | None = None
) -> Path:
    """A cassette of one raw interaction, written by vcrpy's YAML serializer."""
    document = {
        "version": 1,
        "interactions": [{"request": request or REQUEST, "response": response}],
    }
    path.write_text(vcr.serializers.yamlserializer.serialize(document))
    return path


@pytest.mark.parametrize(
    ("response", "read"),
    [
        ({**TODAY, "headers": {"X": ["a\r\n b"]}}, {"headers": (("X", "a b"),)}),  # obs-fold
        ({**TODAY, "headers": {"Length": [42]}}, {"headers": (("Length", "42"),)}),
        (
            {**TODAY, "headers": {"X": [b"\xc3\xa9", b"\xe9"]}},
            {"headers": (("X", "é"), ("X", "é"))},
        ),
        ({**TODAY, "headers": None}, {"headers": ()}),
        ({**TODAY, "status": {"code": 201, "message": None}}, {"status": 201, "reason": ""}),
        ({**TODAY, "status": {"code": "404"}}, {"status": 404, "reason": ""}),
        ({**TODAY, "body": {"string": None}}, {"body": b""}),
        ({**TODAY, "body": {}}, {"body": b""}),
        ({**TODAY, "body": "plain"}, {"body": b"plain"}),
        ({**TODAY, "body": {"string": b"\x00\xff"}}, {"body": b"\x00\xff"}),
        ({**TODAY, "url": "https://h/x"}, {"status": 200, "body": b"ok"}),  # tornado's extra key
    ],
    ids=[
        "folded-header",
        "number-header",
        "binary-header",
        "null-headers",
        "null-reason",
        "code-as-text",
        "null-body",
        "empty-body",
        "plain-body",
        "binary-body",
        "extra-key",
    ],
)
def test_readings_of_what_no_stub_wrote_but_a_hand_may_have(
    tmp_path: Path, response: dict[str, Any], read: dict[str, Any]
) -> None:
    [interaction] = load_cassette(one_interaction(tmp_path / "c.yaml", response)) or []
    assert {name: getattr(interaction, name) for name in read} == read


def test_binary_request_header_values_are_read_as_text(tmp_path: Path) -> None:
    # boto3's requests reach vcrpy with bytes header values, which it records as !!binary.
    request = {**REQUEST, "headers": {"X-Amz-Date": [b"20260101T000000Z"]}}
    [interaction] = load_cassette(one_interaction(tmp_path / "c.yaml", TODAY, request)) or []
    assert interaction.request.headers["X-Amz-Date"] == "20260101T000000Z"


@pytest.mark.parametrize(
    ("response", "request_", "pointer", "problem"),
    [
        ({"headers": {}, "body": {}}, None, "/response/status", "the status is missing"),
        ({**TODAY, "status": 200}, None, "/response/status", "the status is 200, where {code"),
        ({**TODAY, "status": {"code": 0}}, None, "/response/status/code", "0, where a number"),
        (
            {**TODAY, "status": {"code": 200, "message": "O\nK"}},
            None,
            "/response/status/message",
            "the reason phrase 'O\\nK' holds a line break",
        ),
        ({**TODAY, "headers": {"X": ["a\nb"]}}, None, "/response/headers/X", "a line break"),
        ({**TODAY, "headers": {"X": [None]}}, None, "/response/headers/X", "is missing, where"),
        ({**TODAY, "headers": {"A B": ["1"]}}, None, "/response/headers/A B", "not an HTTP field"),
        ({**TODAY, "headers": [["X"]]}, None, "/response/headers/0", "not a [name, [values]]"),
        ({**TODAY, "headers": "X: 1"}, None, "/response/headers", "not a mapping or a list"),
        ({**TODAY, "body": [1]}, None, "/response/body", "a list value, where text"),
        ("a response", None, "/response", "the response is 'a response', not a mapping"),
        (TODAY, {**REQUEST, "method": None}, "/request/method", "the method is missing"),
        (TODAY, {**REQUEST, "uri": "https://h:99999/"}, "/request/uri", "Port out of range"),
        (TODAY, {**REQUEST, "body": 7}, "/request/body", "the body is 7, not bytes, text or JSON"),
    ],
    ids=[
        "no-status",
        "status-number",
        "code-zero",
        "reason-line-break",
        "header-line-break",
        "header-null",
        "header-name-space",
        "header-pair-short",
        "headers-text",
        "body-list",
        "response-text",
        "request-method-null",
        "request-port",
        "request-body-number",
    ],
)
def test_what_only_the_proxy_cannot_replay_is_refused_with_where_and_why(
    tmp_path: Path, response: Any, request_: dict[str, Any] | None, pointer: str, problem: str
) -> None:
    cassette = one_interaction(tmp_path / "c.yaml", response, request_)
    vcr.persisters.filesystem.FilesystemPersister.load_cassette(
        cassette, vcr.serializers.yamlserializer
    )  # vcrpy loads it
    with pytest.raises(CassetteNotReplayable) as refused:
        load_cassette(cassette)
    assert refused.value.pointer == "/interactions/0" + pointer
    assert problem in str(refused.value)
    assert "vcrpy loads it, but cassette-proxy cannot replay interaction 0" in str(refused.value)
    assert "\n" not in str(refused.value)


HEADER_NAMES = st.sampled_from(["Accept", "accept", "ACCEPT", "Content-Type", "x-id", ""])
HEADER_VALUES = st.text(max_size=8) | st.binary(max_size=4) | st.integers() | st.none()
METHODS = st.sampled_from(["POST", "GET", ""])
URIS = st.sampled_from(
    ["http://h/p?q=1", "https://h:8443/", "http://h:99999/", "http://[::1]:80/", "h", "http://[::1"]
)
TEXT_OR_BYTES = st.none() | st.text(max_size=8) | st.binary(max_size=8)
# Today's shape (built without vcrpy's __init__), or anything a hand may have written.
REQUEST_FIELDS = st.fixed_dictionaries(
    {
        "method": METHODS,
        "uri": URIS,
        "body": TEXT_OR_BYTES,
        "headers": st.dictionaries(
            HEADER_NAMES, st.lists(st.text(max_size=8), min_size=1, max_size=2), max_size=4
        ),
    }
) | st.fixed_dictionaries(
    {
        "method": METHODS | st.integers() | st.none(),
        "uri": URIS | st.integers(),
        "body": TEXT_OR_BYTES | st.integers(),
        "headers": st.dictionaries(
            HEADER_NAMES | st.integers(),
            st.lists(HEADER_VALUES, max_size=2) | st.tuples(HEADER_VALUES) | HEADER_VALUES,
            max_size=4,
        ),
    },
    optional={"extra": st.just(1)},
)


def built(build: Any, fields: dict[str, Any]) -> Any:
    """What ``build`` makes of a copy of ``fields``: the request's attributes (its headers'
    store), or the error it raises."""
    try:
        request = build(copy.deepcopy(fields))
    except Exception as exc:  # the error is what is compared
        return (type(exc), str(exc))
    attributes = dict(vars(request))
    attributes["_headers"] = (type(attributes["_headers"]), vars(attributes["_headers"]))
    return type(request), attributes


@settings(max_examples=500, deadline=None)
@given(REQUEST_FIELDS)
def test_requests_are_built_as_vcrpy_builds_them(fields: dict[str, Any]) -> None:
    assert built(persist._request, fields) == built(VcrRequest._from_dict, fields)


def test_a_request_in_todays_shape_is_built_without_vcrpys_init(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = {
        "method": "POST",
        "uri": "http://127.0.0.1:8000/v1/responses",
        "body": '{"model": "m"}',
        "headers": {"Content-Type": ["application/json"], "content-type": ["text/plain"]},
    }
    expected = built(VcrRequest._from_dict, fields)
    monkeypatch.setattr(VcrRequest, "_from_dict", None)
    assert built(persist._request, fields) == expected


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_text_in_another_script_is_written_as_characters_and_vcrpy_reads_it(
    tmp_path: Path, suffix: str
) -> None:
    """A cassette of Russian prompts reads as Russian in a review: no ``\\u041f`` escapes,
    in YAML or JSON, and vcrpy's own loader gives the same interactions back."""
    path = tmp_path / f"ru{suffix}"
    body = '{"input": "Привет, мир", "text": "Ответ: «да»"}'.encode()
    request = VcrRequest(
        "POST", "https://h/v1/responses", body, {"Content-Type": "application/json"}
    )
    persist.save_cassette(path, [Interaction(request, 200, "OK", (), body)])
    text = path.read_text(encoding="utf-8")
    assert "Привет, мир" in text
    assert "«да»" in text
    assert "\\u04" not in text.lower()
    requests, responses = vcr.persisters.filesystem.FilesystemPersister.load_cassette(
        str(path), persist.vcrpy_serializer_for(path)
    )
    assert requests[0].body == body
    assert responses[0]["body"]["string"] == body
    [loaded] = load_cassette(path) or []
    assert (loaded.request.body, loaded.body) == (body, body)
