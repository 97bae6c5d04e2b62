"""Every response shape vcrpy's stubs have written replays through the proxy as vcrpy replays it.

Cassettes in today's shape are recorded in the test by vcrpy's own stubs (requests, httpx,
aiohttp) from a loopback aiohttp server. Older shapes, from stubs that cannot run here (tornado,
httpx's before vcrpy 6, aiohttp's before 4.1, httpcore's), are built as those stubs built them
(their code is quoted beside each) and written with vcrpy's own serializer. Each replays through
the real proxy with the status, reason, headers and body that vcrpy's stub for it replays:
computed by that stub's own code where it imports here (``VCRHTTPResponse``, the httpx and
aiohttp stubs), by its quoted lines for tornado.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import io
import json
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
import httpx2
import openai
import pytest
import requests
import vcr
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import event, given, reject, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from vcr.persisters.filesystem import FilesystemPersister
from vcr.request import Request as VcrRequest
from vcr.serialize import serialize
from vcr.serializers import jsonserializer, yamlserializer
from vcr.stubs import VCRHTTPResponse, aiohttp_stubs, httpx_stubs

from cassette_proxy.errors import CassetteFileError
from cassette_proxy.matching.matchers import PROJECTIONS, Matcher, body_bytes
from cassette_proxy.models.http import HOP_BY_HOP
from cassette_proxy.store.cassette import Cassette, Interaction
from cassette_proxy.store.persist import (
    CassetteNotReplayable,
    load_cassette,
    save_cassette,
    vcrpy_serializer_for,
)
from cassette_proxy.tools.check import (
    CassetteReport,
    RedactResult,
    check_cassette,
    redact_cassette,
)
from cassette_proxy.tools.report import TextReport
from tests import vectors
from tests.conftest import StartProxy

Stub = Literal["http.client", "httpx", "aiohttp", "tornado"]
TEXT_BODY = '{"text": "привет"}'.encode()
BINARY_BODY = bytes(range(256))


async def shape_upstream(request: web.Request) -> web.Response:
    """A response with a reason of its own, a repeated header and a non-ASCII body."""
    if request.path.endswith("/binary"):
        return web.Response(body=BINARY_BODY, content_type="application/octet-stream")
    if request.path.endswith("/gzip"):
        return web.Response(
            body=gzip.compress(TEXT_BODY),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
    response = web.Response(status=203, reason="Shape Test", body=TEXT_BODY)
    response.headers.add("Content-Type", "application/json")
    response.headers.add("X-Multi", "one")
    response.headers.add("X-Multi", "two")
    return response


@pytest.fixture
async def shapes_url(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", shape_upstream)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


@dataclass(frozen=True)
class Replayed:
    status: int
    reason: str
    headers: dict[str, list[str]]  # lower-case name -> values, in order
    body: bytes


def _grouped(items: Any) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(str(name).lower(), []).append(str(value))
    return grouped


async def replayed_by_vcrpy(stub: Stub, request: VcrRequest, response: Any) -> Replayed:
    """What vcrpy's ``stub`` makes of a response vcrpy's loader handed it."""
    response = copy.deepcopy(response)  # the stubs change what they are given
    if stub == "http.client":  # requests, urllib3, boto3, httplib2
        played = VCRHTTPResponse(response)
        return Replayed(played.status, played.reason, _grouped(played.getheaders()), played.read())
    if stub == "httpx":
        real = httpx_stubs._deserialize_response(response, httpx2)
        return Replayed(
            real.status_code, real.reason_phrase, _grouped(real.headers.multi_items()), real.read()
        )
    if stub == "aiohttp":
        built = aiohttp_stubs.build_response(request, response, [])
        return Replayed(built.status, built.reason, _grouped(built.headers.items()), built._body)
    # vcr/stubs/tornado_stubs.py (tornado is not installed here), which then builds tornado's
    # HTTPResponse(code=status.code, reason=status.message, headers, buffer=body.string):
    #     recorded_headers = vcr_response["headers"]
    #     if isinstance(recorded_headers, dict):
    #         recorded_headers = recorded_headers.items()
    #     for k, vs in recorded_headers:
    #         for v in vs:
    #             headers.add(k, v)
    recorded_headers = response["headers"]
    if isinstance(recorded_headers, dict):
        recorded_headers = recorded_headers.items()
    pairs = [(k, v) for k, vs in recorded_headers for v in vs]
    status = response["status"]
    return Replayed(status["code"], status["message"], _grouped(pairs), response["body"]["string"])


async def replayed_by_proxy(url: str) -> Replayed:
    async with aiohttp.ClientSession() as session, session.get(url, allow_redirects=False) as got:
        headers = [(n, v) for n, v in got.headers.items() if not n.lower().startswith("x-proxy-")]
        return Replayed(got.status, got.reason or "", _grouped(headers), await got.read())


def assert_same_replay(proxy: Replayed, by_vcrpy: Replayed) -> None:
    assert (proxy.status, proxy.reason, proxy.body) == (
        by_vcrpy.status,
        by_vcrpy.reason,
        by_vcrpy.body,
    )
    for name, values in by_vcrpy.headers.items():
        if name not in HOP_BY_HOP:  # framing is the proxy's own: it recomputes Content-Length
            assert proxy.headers.get(name) == values, name
    if "content-encoding" not in proxy.headers:  # else it counts the bytes before decoding
        assert proxy.headers["content-length"] == [str(len(proxy.body))]


# -- how each shape is made -----------------------------------------------------------------------

Maker = Callable[[Path, str], Awaitable[None] | None]  # recorded live, or hand-made


def write_with_vcrpy(path: Path, uri: str, response: dict[str, Any]) -> None:
    """One interaction written by vcrpy's own serializer, as a stub's response dict is saved."""
    request = VcrRequest("GET", uri, None, {"Accept": "*/*"})
    cassette = {"requests": [request], "responses": [response]}
    path.write_text(serialize(cassette, vcrpy_serializer_for(path)))


def use_cassette(path: Path) -> Any:
    """vcrpy recording ``path``, with the serializer its suffix names."""
    serializer = "json" if path.suffix == ".json" else "yaml"
    return vcr.use_cassette(str(path), record_mode="all", serializer=serializer)


async def recorded_by_requests(path: Path, url: str) -> None:
    def record() -> None:
        with use_cassette(path), requests.Session() as session:
            session.get(url, timeout=10).raise_for_status()

    await asyncio.to_thread(record)


async def recorded_by_httpx(path: Path, url: str) -> None:
    def record() -> None:
        with use_cassette(path), httpx2.Client() as client:
            client.get(url).raise_for_status()

    await asyncio.to_thread(record)


async def recorded_by_aiohttp(path: Path, url: str) -> None:
    with use_cassette(path):
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            await response.read()


def tornado_pairs(path: Path, url: str) -> None:
    # vcr/stubs/tornado_stubs.py, on record:
    #     headers = [(k, response.headers.get_list(k)) for k in response.headers]
    #     vcr_response = {"status": {"code": response.code, "message": response.reason},
    #                     "headers": headers, "body": {"string": response.body},
    #                     "url": response.effective_url}
    headers = [("Content-Type", ["application/json"]), ("X-Multi", ["one", "two"])]
    write_with_vcrpy(
        path,
        url,
        {
            "status": {"code": 203, "message": "Shape Test"},
            "headers": headers,
            "body": {"string": TEXT_BODY},
            "url": url,
        },
    )


def httpx_before_vcrpy_6(path: Path, url: str) -> None:
    # vcr/stubs/httpx_stubs.py of vcrpy 4.1-5.1, _to_serialized_response:
    #     {"status_code": httpx_response.status_code,
    #      "http_version": httpx_response.http_version,
    #      "headers": _transform_headers(httpx_response),  # name -> [values], raw names
    #      "content": httpx_response.content.decode("utf-8", "ignore")}
    headers = {"content-type": ["application/json"], "x-multi": ["one", "two"]}
    write_with_vcrpy(
        path,
        url,
        {
            "status_code": 203,
            "http_version": "HTTP/1.1",
            "headers": headers,
            "content": TEXT_BODY.decode(),
        },
    )


def httpx_before_vcrpy_6_gzip(path: Path, url: str) -> None:
    # The same stub kept the upstream's Content-Encoding beside the content httpx had decoded;
    # vcrpy's httpx stub drops the label on replay (vcr.filters.decode_response).
    headers = {
        "content-encoding": ["gzip"],
        "content-type": ["application/json"],
        "content-length": ["34"],
    }
    write_with_vcrpy(
        path,
        url,
        {"status_code": 200, "http_version": "HTTP/1.1", "headers": headers, "content": "{}"},
    )


def aiohttp_before_vcrpy_4_1(path: Path, url: str) -> None:
    # vcr/stubs/aiohttp_stubs/__init__.py of vcrpy 3.0-4.0:
    #     def _serialize_headers(headers):
    #         return {str(k): v for k, v in headers.items()}   # one string per name
    headers = {"Content-Type": "application/json", "X-Multi": "two"}
    write_with_vcrpy(
        path,
        url,
        {
            "status": {"code": 203, "message": "Shape Test"},
            "headers": headers,
            "body": {"string": TEXT_BODY},
        },
    )


def aiohttp_without_body(path: Path, url: str) -> None:
    # vcr/stubs/aiohttp_stubs.py, record_response: `body = {}` when aiohttp has none to read
    # (vcrpy 2.1-4.0: for each redirect it followed); build_response reads
    # vcr_response["body"].get("string", b"").
    write_with_vcrpy(
        path,
        url,
        {
            "status": {"code": 302, "message": "Found"},
            "headers": {"Location": ["/elsewhere"]},
            "body": {},
        },
    )


def httpcore_without_reason(path: Path, url: str) -> None:
    # vcr/stubs/httpcore_stubs.py of vcrpy 8.0-8.1, _serialize_response: the reason is None
    # when the response has no reason_phrase extension (HTTP/2 has none).
    write_with_vcrpy(
        path,
        url,
        {
            "status": {"code": 203, "message": None},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": TEXT_BODY},
        },
    )


def python2_era_tags(path: Path, url: str) -> None:
    # vcrpy 1.x on Python 2 dumped with PyYAML's full dumper: unicode strings are tagged
    # !!python/unicode, byte strings !!python/str; vcrpy's safe loader still reads both.
    path.write_text(
        "interactions:\n"
        "- request:\n"
        "    body: null\n"
        "    headers:\n"
        "      !!python/unicode 'Accept': [!!python/unicode '*/*']\n"
        "    method: !!python/unicode 'GET'\n"
        f"    uri: !!python/unicode '{url}'\n"
        "  response:\n"
        '    body: {string: !!python/str \'{"text": "py2"}\'}\n'
        "    headers:\n"
        "      !!python/unicode 'Content-Type': [!!python/unicode 'application/json']\n"
        "      !!python/unicode 'X-Multi': [!!python/unicode 'one', !!python/unicode 'two']\n"
        "    status: {code: 200, message: !!python/unicode 'OK'}\n"
        "version: 1\n"
    )


SHAPES: dict[str, tuple[Maker, Stub, str]] = {
    # id: (how the cassette is made, the vcrpy stub that replays it, the cassette's suffix)
    "requests": (recorded_by_requests, "http.client", ".yaml"),
    "requests-binary-body": (recorded_by_requests, "http.client", ".yaml"),
    "httpx": (recorded_by_httpx, "httpx", ".yaml"),
    "httpx-gzip-binary": (recorded_by_httpx, "httpx", ".yaml"),
    "httpx-json": (recorded_by_httpx, "httpx", ".json"),
    "aiohttp": (recorded_by_aiohttp, "aiohttp", ".yaml"),
    "tornado-tuple-pairs": (tornado_pairs, "tornado", ".yaml"),
    "tornado-pairs-json": (tornado_pairs, "tornado", ".json"),
    "httpx-before-6": (httpx_before_vcrpy_6, "httpx", ".yaml"),
    "httpx-before-6-json": (httpx_before_vcrpy_6, "httpx", ".json"),
    "httpx-before-6-gzip-label": (httpx_before_vcrpy_6_gzip, "httpx", ".yaml"),
    "aiohttp-before-4.1-strings": (aiohttp_before_vcrpy_4_1, "aiohttp", ".yaml"),
    "aiohttp-no-body": (aiohttp_without_body, "aiohttp", ".yaml"),
    "httpcore-null-reason": (httpcore_without_reason, "httpx", ".yaml"),
    "python2-tags": (python2_era_tags, "http.client", ".yaml"),
}
PATHS = {"requests-binary-body": "/binary", "httpx-gzip-binary": "/gzip"}


async def make_shape(shape: str, tmp_path: Path, shapes_url: str) -> tuple[Path, str, Stub]:
    make, stub, suffix = SHAPES[shape]
    path = tmp_path / f"{shape}{suffix}"
    url = f"{shapes_url}/shape{PATHS.get(shape, '/' + shape)}"
    recording = make(path, url)
    if recording is not None:
        await recording
    return path, url, stub


async def vcrpy_replay_of(path: Path, stub: Stub) -> Replayed:
    requests_, responses, *_ = FilesystemPersister.load_cassette(path, vcrpy_serializer_for(path))
    return await replayed_by_vcrpy(stub, requests_[0], responses[0])


@pytest.mark.parametrize("shape", SHAPES)
async def test_each_shape_replays_through_the_proxy_as_vcrpys_stub_replays_it(
    shape: str, start_proxy: StartProxy, shapes_url: str, tmp_path: Path
) -> None:
    cassette, url, stub = await make_shape(shape, tmp_path, shapes_url)
    by_vcrpy = await vcrpy_replay_of(cassette, stub)

    proxy = await start_proxy(cassette=cassette, record_mode="none", upstream=shapes_url)
    through_proxy = await replayed_by_proxy(proxy.url + url.removeprefix(shapes_url))

    assert_same_replay(through_proxy, by_vcrpy)
    assert [e["source"] for e in proxy.exchanges()] == ["cassette"]
    report = check_cassette(cassette)
    assert report.vcrpy_loads
    assert [f for f in report.findings if f.kind == "load"] == []


def test_the_hand_made_shapes_are_the_ones_their_stubs_wrote(tmp_path: Path) -> None:
    """What the issue reported: tagged pairs (lists in JSON), and httpx's old keys."""
    tornado_pairs(tmp_path / "t.yaml", "http://h/x")
    assert "- !!python/tuple" in (tmp_path / "t.yaml").read_text()
    tornado_pairs(tmp_path / "t.json", "http://h/x")
    data = jsonserializer.deserialize((tmp_path / "t.json").read_text())
    assert data["interactions"][0]["response"]["headers"][1] == ["X-Multi", ["one", "two"]]
    httpx_before_vcrpy_6(tmp_path / "h.yaml", "http://h/x")
    data = yamlserializer.deserialize((tmp_path / "h.yaml").read_text())
    response = data["interactions"][0]["response"]
    assert set(response) == {"status_code", "http_version", "headers", "content"}


async def test_the_openai_client_replays_an_old_httpx_format_cassette(
    start_proxy: StartProxy, upstream_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "old-httpx.yaml"
    uri = f"{upstream_url}/v1/responses/{vectors.V1_ID}/cancel"
    request = VcrRequest("POST", uri, b"", {})
    response = {
        "status_code": 200,
        "http_version": "HTTP/1.1",
        "headers": {"content-type": ["application/json"], "x-request-id": ["req_old"]},
        "content": vectors.V1_BODY.decode(),
    }
    cassette.write_text(serialize({"requests": [request], "responses": [response]}, yamlserializer))
    proxy = await start_proxy(cassette=cassette, record_mode="none")
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as client:
        raw = await client.responses.with_raw_response.cancel(vectors.V1_ID)
    assert raw.headers["x-request-id"] == "req_old"
    assert raw.parse().model_dump(mode="json", exclude_unset=True) == json.loads(vectors.V1_BODY)
    assert {e["source"] for e in proxy.exchanges()} == {"cassette"}


def test_interactions_hold_text_headers_in_recorded_order(tmp_path: Path) -> None:
    cassette = tmp_path / "pairs.yaml"
    write_with_vcrpy(
        cassette,
        "http://h/x",
        {
            "status": {"code": 200, "message": "OK"},
            "headers": [("B", ["1", "2"]), ("A", ["3"]), ("b", ["4"])],
            "body": {"string": b"x"},
        },
    )
    [interaction] = load_cassette(cassette) or []
    assert interaction.headers == (("B", "1"), ("B", "2"), ("A", "3"), ("b", "4"))
    assert CIMultiDict(interaction.replay.headers).getall("b") == ["1", "2", "4"]


# -- a cassette the proxy rewrites -----------------------------------------------------------------

OLD_SHAPES = [
    "tornado-tuple-pairs",
    "tornado-pairs-json",
    "httpx-before-6",
    "httpx-before-6-json",
    "httpx-before-6-gzip-label",
    "aiohttp-before-4.1-strings",
    "aiohttp-no-body",
    "httpcore-null-reason",
]


def todays_shape(cassette: Path) -> bool:
    data = vcrpy_serializer_for(cassette).deserialize(cassette.read_text())
    return all(
        set(entry["response"]) - {"timing", "recorded_at"} == {"status", "headers", "body"}  # ours
        and set(entry["response"]["status"]) == {"code", "message"}
        and isinstance(entry["response"]["status"]["message"], str)
        and all(isinstance(v, list) for v in entry["response"]["headers"].values())
        and set(entry["response"]["body"]) == {"string"}
        for entry in data["interactions"]
    )


@pytest.mark.parametrize("shape", OLD_SHAPES)
async def test_recording_into_an_old_shape_rewrites_it_in_todays_which_replays_the_same(
    shape: str, start_proxy: StartProxy, shapes_url: str, tmp_path: Path
) -> None:
    cassette, url, stub = await make_shape(shape, tmp_path, shapes_url)
    assert not todays_shape(cassette)
    by_vcrpy = await vcrpy_replay_of(cassette, stub)
    path = url.removeprefix(shapes_url)

    recording = await start_proxy(
        cassette=cassette, record_mode="new_episodes", upstream=shapes_url
    )
    assert_same_replay(await replayed_by_proxy(recording.url + path), by_vcrpy)
    await replayed_by_proxy(recording.url + "/shape/new-episode")  # a miss: recorded
    await recording.stop()

    assert todays_shape(cassette)
    assert len(FilesystemPersister.load_cassette(cassette, vcrpy_serializer_for(cassette))[0]) == 2
    assert await vcrpy_replay_of(cassette, stub) == by_vcrpy  # the same stub, the same replay
    replaying = await start_proxy(cassette=cassette, record_mode="none", upstream=shapes_url)
    assert_same_replay(await replayed_by_proxy(replaying.url + path), by_vcrpy)


async def test_redacting_an_old_shape_rewrites_it_in_todays(
    start_proxy: StartProxy, shapes_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "tornado-secret.yaml"
    cookie = "session=" + "s3cr3t" + "-tornado-cookie"  # fake; split for scanners
    write_with_vcrpy(
        cassette,
        f"{shapes_url}/shape/secret",
        {
            "status": {"code": 200, "message": "OK"},
            "headers": [("Set-Cookie", [cookie]), ("X-Multi", ["one", "two"])],
            "body": {"string": b"kept"},
            "url": f"{shapes_url}/shape/secret",
        },
    )
    assert [f.pointer for f in check_cassette(cassette).findings] == [
        "/interactions/0/response/headers/Set-Cookie"
    ]
    # The pairs hold no field named Set-Cookie to edit in place: it is re-serialized, as said.
    assert redact_cassette(cassette) == RedactResult(1, "re-serialized")
    assert cookie not in cassette.read_text()
    assert todays_shape(cassette)
    report = check_cassette(cassette)
    assert (report.vcrpy_loads, report.findings) == (True, [])
    proxy = await start_proxy(cassette=cassette, record_mode="none", upstream=shapes_url)
    replayed = await replayed_by_proxy(f"{proxy.url}/shape/secret")
    assert (replayed.status, replayed.body, replayed.headers["x-multi"]) == (
        200,
        b"kept",
        ["one", "two"],
    )


# -- bodies the stubs recorded as objects ---------------------------------------------------------


async def test_a_body_the_aiohttp_stub_recorded_as_given_to_json_matches_what_was_sent(
    start_proxy: StartProxy, shapes_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "json-argument.yaml"
    sent = {"input": "привет", "tools": [1, 2]}
    with use_cassette(cassette):
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{shapes_url}/shape/json", json=sent) as response,
        ):
            await response.read()
    requests_, _ = FilesystemPersister.load_cassette(cassette, yamlserializer)
    assert requests_[0].body == sent  # the stub kept the object, not the bytes aiohttp sent

    for match_on in ("method,path,body", "method,path,raw_body"):
        proxy = await start_proxy(
            cassette=cassette, record_mode="none", upstream=shapes_url, match_on=match_on
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{proxy.url}/shape/json", json=sent) as response,
        ):
            assert (response.status, await response.read()) == (203, TEXT_BODY), match_on


@pytest.mark.parametrize("kept_as", ["json-argument", "file"])
def test_secrets_in_request_bodies_vcrpy_kept_as_objects_are_found_and_redacted(
    tmp_path: Path, kept_as: str
) -> None:
    key = "AQVN" + "abcdefghijklmnopqrstuvwxyz01234"  # fake; split for scanners
    # aiohttp's stub keeps the object given to json=; the http.client stub once kept a file.
    body: Any = (
        {"note": f"Api-Key {key}"}
        if kept_as == "json-argument"
        else io.BytesIO(f"Api-Key {key}".encode())
    )
    cassette = tmp_path / f"{kept_as}.yaml"
    request = VcrRequest("POST", "https://h/v1/responses", body, {})
    # tornado's pairs cannot be edited in place, so the whole cassette is re-serialized.
    cookie = ("Set-Cookie", ["session=" + "s3cr3t-cookie-for-pairs"])
    response = {"status": {"code": 200, "message": "OK"}, "headers": [cookie], "body": {}}
    cassette.write_text(serialize({"requests": [request], "responses": [response]}, yamlserializer))

    found = [f.pointer for f in check_cassette(cassette).findings if f.kind == "secret"]
    assert found == ["/interactions/0/request/body", "/interactions/0/response/headers/Set-Cookie"]
    assert redact_cassette(cassette) == RedactResult(2, "re-serialized")
    assert [f for f in check_cassette(cassette).findings if f.kind == "secret"] == []
    [redacted], _ = FilesystemPersister.load_cassette(cassette, yamlserializer)
    assert type(redacted.body) is type(body)  # vcrpy's aiohttp stub still matches a json= object
    assert b"sha256:" in body_bytes(redacted)


# -- what vcrpy refuses, and what only the proxy cannot replay ------------------------------------

# vcrpy's format before 1.0 (vcrpy's own migration fixtures, tests/fixtures/migration/, shortened).
PRE_1_0 = {
    ".yaml": """\
- request: !!python/object:vcr.request.Request
    body: null
    headers: !!python/object/apply:__builtin__.frozenset
    - - !!python/tuple [accept, '*/*']
    host: httpbin.org
    method: GET
    path: /ip
    port: 80
    protocol: http
  response:
    body: {string: !!python/unicode "{\\n  \\"origin\\": \\"217.122.164.194\\"\\n}"}
    headers: [!!python/unicode "content-type: application/json\\r\\n"]
    status: {code: 200, message: OK}
""",
    ".json": """\
[{"request": {"body": null, "protocol": "http", "method": "GET", "headers": {"accept": "*/*"},
              "host": "httpbin.org", "path": "/ip", "port": 80},
  "response": {"status": {"message": "OK", "code": 200},
               "headers": ["content-type: application/json\\r\\n"],
               "body": {"string": "{\\n  \\"origin\\": \\"217.122.164.194\\"\\n}"}}}]
""",
}


@pytest.mark.parametrize("suffix", PRE_1_0)
async def test_a_cassette_from_before_vcrpy_1_0_is_refused_with_vcrpys_migration_command(
    start_proxy: StartProxy, tmp_path: Path, suffix: str
) -> None:
    cassette = tmp_path / f"old{suffix}"
    cassette.write_text(PRE_1_0[suffix])
    with pytest.raises(ValueError, match=r"older version|problem loading"):
        FilesystemPersister.load_cassette(cassette, vcrpy_serializer_for(cassette))

    with pytest.raises(CassetteFileError) as refused:
        load_cassette(cassette)
    message = str(refused.value)
    assert "\n" not in message
    assert "format from before 1.0" in message
    assert f"'python -m vcr.migration {cassette}'" in message
    assert cassette.read_text() == PRE_1_0[suffix]
    report = check_cassette(cassette)
    assert not report.vcrpy_loads
    assert [f.message for f in report.findings] == [message]

    # The command it names converts the file, and the proxy replays the result.
    migrated = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vcr.migration", str(cassette), stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, stderr = await migrated.communicate()
    assert b"[OK]" in stderr
    proxy = await start_proxy(cassette=cassette, record_mode="none", upstream="http://httpbin.org")
    replayed = await replayed_by_proxy(f"{proxy.url}/ip")
    assert (replayed.status, replayed.body) == (200, b'{\n  "origin": "217.122.164.194"\n}')


def write_interactions(path: Path, uri: str, responses: list[Any]) -> None:
    requests_ = [VcrRequest("GET", f"{uri}/{i}", None, {}) for i in range(len(responses))]
    path.write_text(serialize({"requests": requests_, "responses": responses}, yamlserializer))


OK_RESPONSE = {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": b"ok"}}


def test_check_says_vcrpy_loads_a_cassette_only_the_proxy_cannot_replay(tmp_path: Path) -> None:
    cassette = tmp_path / "no-status.yaml"
    write_interactions(cassette, "http://h", [OK_RESPONSE, {"headers": {}, "body": {"string": ""}}])
    FilesystemPersister.load_cassette(cassette, yamlserializer)  # vcrpy loads it

    report = check_cassette(cassette)
    assert (report.vcrpy_loads, report.interactions) == (True, 2)
    [finding] = report.findings
    assert (finding.pointer, finding.severity, finding.kind) == (
        "/interactions/1/response/status",
        "error",
        "load",
    )
    assert "vcrpy loads it, but cassette-proxy cannot replay interaction 1" in finding.message
    assert "the status is missing, where {code: 200, message: OK} is expected" in finding.message
    assert "fix or delete that interaction" in finding.message
    text = render_text([report])
    assert f"{cassette}: 2 interactions, vcrpy loads it\n" in text
    assert "vcrpy cannot" not in text


def render_text(reports: list[CassetteReport]) -> str:
    """What ``cassette check`` prints for these reports."""
    out: list[str] = []
    printer = TextReport(out.append)
    for report in reports:
        printer.cassette(report)
    return "".join(out)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("version: 1\ninteractions: [{request: {method: GET, uri: u, body: null}}]\n", "'headers'"),
        ("version: 1\ninteractions: [{response: {}}]\n", "'request'"),
        ("interactions: [ {", "not valid YAML"),
        ("version: 1\ninteractions: !!python/object/apply:os.getcwd []\n", "python/object"),
    ],
    ids=["request-without-headers", "no-request", "corrupt", "python-tag"],
)
def test_check_says_vcrpy_cannot_load_it_when_vcrpys_loader_refuses(
    tmp_path: Path, content: str, problem: str
) -> None:
    cassette = tmp_path / "refused.yaml"
    cassette.write_text(content)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever vcrpy's loader raises
        FilesystemPersister.load_cassette(cassette, yamlserializer)
    report = check_cassette(cassette)
    assert not report.vcrpy_loads
    assert [f.kind for f in report.findings] == ["load"]
    assert problem in report.findings[0].message
    assert "vcrpy cannot load it" in render_text([report])


async def test_serve_refuses_what_it_cannot_replay_in_one_line_without_a_traceback(
    tmp_path: Path,
) -> None:
    cassette = tmp_path / "bad-code.yaml"
    broken = {"status": {"code": "two hundred", "message": "OK"}, "headers": {}, "body": {}}
    write_interactions(cassette, "http://h", [OK_RESPONSE, broken])
    before = cassette.read_bytes()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", "0",
        "--cassette", str(cassette), "--record-mode", "none",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 1
    assert b"Traceback" not in stderr
    [line] = stderr.decode().splitlines()
    assert "vcrpy loads it, but cassette-proxy cannot replay interaction 1" in line
    assert "(/interactions/1/response/status/code)" in line
    assert "'two hundred', where a number from 100 to 999 is expected" in line
    assert cassette.read_bytes() == before


# -- no cassette vcrpy loads makes the proxy fail: any shape, well-formed or not ------------------


def interactions(well_formed: bool) -> st.SearchStrategy[list[tuple[Any, Any]]]:
    """``[(request, response)]`` in any shape the stubs wrote; unless ``well_formed``, also with
    values no stub wrote (numbers for text, line breaks, missing parts) about one time in ten."""

    def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
        return usual if well_formed else st.one_of(*[usual] * 9, odd)

    junk = st.none() | st.booleans() | st.integers(-5, 1200) | st.floats(allow_nan=False)
    printable = st.text("aZ09 ;=/-é✓", max_size=10)
    texts = mostly(
        printable | st.sampled_from(["a\r\n b", "gzip", "200"]),
        st.text(max_size=8) | st.sampled_from(["x\ny", "a\rb", " 204 "]),
    )
    values = mostly(texts | st.binary(max_size=8), junk | st.just("x\ny"))
    names = mostly(
        st.sampled_from(["Content-Type", "X-Multi", "x-multi", "Content-Encoding", "Set-Cookie"]),
        st.sampled_from(["Bad Name", "", "a:b"]) | st.text(max_size=6),
    )
    header_values = mostly(st.lists(texts, max_size=3), values | st.tuples(values, values))
    headers = mostly(
        st.dictionaries(names, header_values, max_size=4)  # today's, or aiohttp's before 4.1
        | st.dictionaries(names, texts, max_size=4)
        | st.lists(st.tuples(names, st.lists(texts, max_size=2)), max_size=4),  # tornado's
        st.lists(st.lists(values, max_size=3), max_size=2) | values,
    )
    bodies = mostly(
        st.fixed_dictionaries({"string": st.none() | texts | st.binary(max_size=8)}) | st.just({}),
        values | st.fixed_dictionaries({"string": st.lists(values, max_size=2)}),
    )
    statuses = mostly(
        st.fixed_dictionaries(
            {"code": mostly(st.integers(100, 599), st.integers(0, 1200) | values)},
            optional={"message": st.none() | texts},
        ),
        values,
    )
    responses = mostly(
        st.fixed_dictionaries(
            {"status": statuses, "headers": headers, "body": bodies}, optional={"url": texts}
        )
        | st.fixed_dictionaries(  # httpx's before vcrpy 6
            {"status_code": mostly(st.integers(100, 599), values), "headers": headers},
            optional={"content": texts, "http_version": texts},
        ),
        st.fixed_dictionaries({}, optional={"status": statuses, "body": bodies}) | values,
    )
    requests_ = st.fixed_dictionaries(
        {
            "method": mostly(st.just("GET"), values),
            "uri": mostly(st.just("http://h/x?q=1"), st.just("http://h:99999/x") | values),
            "body": mostly(
                st.none() | st.binary(max_size=8) | st.text(max_size=8),
                values | st.dictionaries(st.text(max_size=3), values, max_size=2),
            ),
            "headers": mostly(
                st.dictionaries(names, st.lists(texts, min_size=1, max_size=2), max_size=2),
                values,
            ),
        }
    )
    return st.lists(st.tuples(requests_, responses), min_size=1, max_size=2)


def same_interactions(a: list[Interaction], b: list[Interaction]) -> bool:
    def seen(i: Interaction) -> tuple[Any, ...]:
        headers = CIMultiDict(i.headers)
        by_name = {n.lower(): headers.getall(n) for n in headers}
        return (i.request.uri, i.status, i.reason, by_name, i.body)

    return [seen(i) for i in a] == [seen(i) for i in b]


@settings(max_examples=150, deadline=None)
@given(
    entries=interactions(well_formed=True) | interactions(well_formed=False),
    suffix=st.sampled_from([".yaml", ".json"]),
)
def test_whatever_vcrpy_loads_the_proxy_replays_or_refuses_in_one_line(
    tmp_path_factory: pytest.TempPathFactory,
    entries: list[tuple[dict[str, Any], Any]],
    suffix: str,
) -> None:
    folder = tmp_path_factory.mktemp("any-shape")
    cassette = folder / f"any{suffix}"
    document = {"version": 1, "interactions": [{"request": q, "response": r} for q, r in entries]}
    try:
        cassette.write_text(vcrpy_serializer_for(cassette).serialize(document))
    except TypeError:  # vcrpy's JSON serializer refuses bytes
        reject()
    try:
        FilesystemPersister.load_cassette(cassette, vcrpy_serializer_for(cassette))
        vcrpy_loads = True
    except Exception:
        vcrpy_loads = False

    assert check_cassette(cassette).vcrpy_loads is vcrpy_loads
    refused: CassetteFileError | None = None
    try:
        loaded = load_cassette(cassette)
    except CassetteFileError as exc:
        refused = exc
    event(f"vcrpy loads: {vcrpy_loads}, the proxy: {type(refused).__name__}")
    if refused is not None:
        assert "\n" not in str(refused)
        assert isinstance(refused, CassetteNotReplayable) is vcrpy_loads
        return
    assert vcrpy_loads
    assert loaded is not None
    Cassette(cassette, Matcher(tuple(PROJECTIONS)), loaded=loaded)  # every matcher's key
    for interaction in loaded:
        assert 100 <= interaction.status <= 999
        assert not re.search(r"[\r\n]", interaction.reason)
        for name, value in interaction.headers:
            assert re.fullmatch(r"[^\x00-\x20:\x7f]+", name)
            assert isinstance(value, str)
            assert not re.search(r"[\r\n]", value)
        assert isinstance(interaction.body, bytes)
        replayed = interaction.replay  # what the relay sends: aiohttp accepts its status line
        web.Response(
            status=replayed.status,
            reason=replayed.reason or None,
            headers=replayed.headers,
            body=replayed.body,
        )

    # Rewritten (new_episodes, redact), it is today's shape, which vcrpy loads and reads back.
    rewritten = folder / f"rewritten{suffix}"
    save_cassette(rewritten, loaded)
    FilesystemPersister.load_cassette(rewritten, vcrpy_serializer_for(rewritten))
    assert same_interactions(load_cassette(rewritten) or [], loaded)
