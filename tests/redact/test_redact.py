"""Redaction: the rules of :mod:`cassette_proxy.redact`, and no secret in any artefact of a real
run."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.redact import (
    fingerprint,
    redact_bytes,
    redact_header,
    redact_path,
    redact_query,
    redact_text,
)
from cassette_proxy.serving.observers.log import TRUNCATED_HEAD
from cassette_proxy.store.journal import journal_path
from tests import vectors
from tests.conftest import RunningProxy, StartProxy
from tests.fake_upstream import FakeUpstream
from tests.redact.test_secret_rules import AWS_KEY_ID, GITHUB_PAT, JWT, PASSWORD, STRIPE_KEY

TIMEOUT = aiohttp.ClientTimeout(total=10)

# Real-looking (fake) credentials: an OpenAI project key, a Yandex Cloud API key and IAM token.
# Each is assembled from two parts, so secret scanners do not flag this file.
OPENAI_KEY = "sk-" + "proj-Zx81QmT4vB7nK2pL9sD3fG6hJ0wE5rY1uI8oA4cV7bN2mXq3Ws"
YANDEX_KEY = "AQVN" + "3k9Lr0Xq7Tz2Wb5Hc8Ym1Dn4Fp6Gs9Jv2Kx0Lp"
IAM_TOKEN = "t1." + "9euelZqKkJ2Sk5GUyZCSmpCQnZeXx-3rnpWajJHNlZiTzpWanJyUlZuVmw"
# A credential with no recognisable shape: only its position (a credential parameter) marks it.
PLAIN_SECRET = "plain-secret-value-4242"


def sha(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


# -- fingerprints ----------------------------------------------------------------------------------


def test_fingerprint_is_sha256_prefix_and_deterministic() -> None:
    assert fingerprint(OPENAI_KEY) == sha(OPENAI_KEY)
    assert fingerprint(OPENAI_KEY) == fingerprint(OPENAI_KEY)
    assert fingerprint(OPENAI_KEY) != fingerprint(YANDEX_KEY)


# -- headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"Bearer {OPENAI_KEY}", f"Bearer {sha(OPENAI_KEY)}"),
        (f"Api-Key {YANDEX_KEY}", f"Api-Key {sha(YANDEX_KEY)}"),
        (YANDEX_KEY, sha(YANDEX_KEY)),  # no scheme: the whole value is the credential
    ],
    ids=["bearer", "api-key", "no-scheme"],
)
def test_authorization_keeps_the_scheme_and_fingerprints_the_credential(
    value: str, expected: str
) -> None:
    assert redact_header("Authorization", value) == expected
    assert redact_header("authorization", value) == expected


@pytest.mark.parametrize("name", ["Api-Key", "X-Api-Key", "Proxy-Authorization"])
def test_other_credential_headers_are_fingerprinted(name: str) -> None:
    assert redact_header(name, YANDEX_KEY) == sha(YANDEX_KEY)


def test_cookie_values_are_fingerprinted_and_names_kept() -> None:
    redacted = redact_header("Cookie", "session=abc123; theme=dark")
    assert redacted == f"session={sha('abc123')}; theme={sha('dark')}"


def test_set_cookie_keeps_its_attributes() -> None:
    attributes = "; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Secure; HttpOnly"
    redacted = redact_header("Set-Cookie", "session=s3cr3t-cookie-value" + attributes)
    assert redacted == f"session={sha('s3cr3t-cookie-value')}" + attributes


def test_ordinary_headers_are_left_alone() -> None:
    for name, value in [
        ("Content-Type", "application/json; charset=utf-8"),
        ("x-request-id", "req_00000000000000000000000000000001"),
        ("User-Agent", "OpenAI/Python 1.100.0"),
    ]:
        assert redact_header(name, value) == value


def test_token_shaped_values_in_other_headers_are_fingerprinted() -> None:
    assert redact_header("OpenAI-Project", OPENAI_KEY) == sha(OPENAI_KEY)
    assert redact_header("X-Folder-Token", IAM_TOKEN) == sha(IAM_TOKEN)


# -- free text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "replacement"),
    [
        (OPENAI_KEY, sha(OPENAI_KEY)),
        (YANDEX_KEY, sha(YANDEX_KEY)),
        (IAM_TOKEN, sha(IAM_TOKEN)),
        (f"Bearer {PLAIN_SECRET}", f"Bearer {sha(PLAIN_SECRET)}"),
        (f"Api-Key {PLAIN_SECRET}", f"Api-Key {sha(PLAIN_SECRET)}"),
    ],
    ids=["sk", "AQVN", "t1", "bearer", "api-key"],
)
def test_tokens_inside_json_are_fingerprinted(secret: str, replacement: str) -> None:
    document = {"note": f"use {secret} here", "nested": [{"auth": secret}], "n": 1}
    body = orjson.dumps(document)
    redacted = redact_bytes(body)
    assert secret.encode() not in redacted
    assert orjson.loads(redacted) == {
        "note": f"use {replacement} here",
        "nested": [{"auth": replacement}],
        "n": 1,
    }


@pytest.mark.parametrize(
    "body", list(vectors.CANCELLED.values()) + list(vectors.NOT_FOUND.values())
)
def test_documented_bodies_are_not_touched(body: bytes) -> None:
    assert redact_bytes(body) is body


def test_non_utf8_bodies_are_returned_unchanged() -> None:
    body = b"\xff\xfe binary \x00 data"
    assert redact_bytes(body) is body
    assert redact_bytes(b"") == b""


def test_ordinary_prose_is_not_rewritten() -> None:
    text = "Here is a basic explanation of the topic; bearer bonds are another matter."
    assert redact_text(text) == text


# -- query strings and paths -----------------------------------------------------------------------


@pytest.mark.parametrize("param", ["key", "api_key", "apikey", "token", "access_token"])
def test_credential_query_parameters_are_fingerprinted(param: str) -> None:
    redacted = redact_query(f"{param}={PLAIN_SECRET}&model=gpt")
    assert PLAIN_SECRET not in redacted
    assert redacted == f"{param}={sha(PLAIN_SECRET)}&model=gpt"


def test_token_shaped_values_in_other_query_parameters_are_fingerprinted() -> None:
    redacted = redact_query(f"note={OPENAI_KEY}")
    assert redacted == f"note={sha(OPENAI_KEY)}"


@pytest.mark.parametrize(
    "query",
    [
        "include=a%20b&x=1",
        "q=%E2%9C%93&b=a+b&c=%2F&empty=&flag",
        "include[]=reasoning.encrypted_content&limit=20",
        "",
    ],
)
def test_query_with_nothing_to_redact_is_byte_for_byte_identical(query: str) -> None:
    assert redact_query(query) == query
    assert redact_path("/v1/responses/resp_a%2Fb/cancel?" + query) == (
        "/v1/responses/resp_a%2Fb/cancel?" + query
    )


def test_path_and_query_are_both_redacted() -> None:
    redacted = redact_path(f"/v1/files/{OPENAI_KEY}/content?api_key={PLAIN_SECRET}")
    assert redacted == f"/v1/files/{sha(OPENAI_KEY)}/content?api_key={sha(PLAIN_SECRET)}"


# -- idempotence and determinism -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Authorization", f"Bearer {OPENAI_KEY}"),
        ("Authorization", f"Api-Key {YANDEX_KEY}"),
        ("Authorization", YANDEX_KEY),
        ("Cookie", "a=1; b=2"),
        ("Set-Cookie", "session=s3cr3t; Path=/; HttpOnly"),
        ("OpenAI-Project", OPENAI_KEY),
    ],
)
def test_redacting_a_header_twice_is_redacting_it_once(name: str, value: str) -> None:
    once = redact_header(name, value)
    assert once != value
    assert redact_header(name, once) == once
    assert redact_header(name, value) == once  # deterministic


def test_redacting_text_twice_is_redacting_it_once() -> None:
    text = f'{{"a": "Bearer {PLAIN_SECRET}", "b": "{OPENAI_KEY}", "c": "{IAM_TOKEN}"}}'
    once = redact_text(text)
    assert once != text
    assert redact_text(once) == once
    assert redact_text(text) == once


def test_redacting_a_token_shaped_query_twice_is_redacting_it_once() -> None:
    once = redact_query(f"note={OPENAI_KEY}")
    assert redact_query(once) == once


def test_redacting_a_credential_query_twice_is_redacting_it_once() -> None:
    once = redact_path(f"/v1/models?api_key={PLAIN_SECRET}")
    assert redact_path(once) == once


# -- end to end: no artefact of a recorded run holds a secret --------------------------------------


async def _request(
    proxy: RunningProxy,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False) as session,
        session.request(method, proxy.url + path, headers=headers or {}, data=data) as response,
    ):
        return response.status, await response.read()


SECRETS = (OPENAI_KEY, YANDEX_KEY, PLAIN_SECRET, GITHUB_PAT, STRIPE_KEY, AWS_KEY_ID, JWT, PASSWORD)


def _assert_clean(where: str, data: bytes | str) -> None:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    for secret in SECRETS:
        # Its first 12 characters too: what a cut through a key used to leave.
        assert secret[:12] not in text, f"{secret[:4]}... leaked into {where}"


def _leaves(document: Any) -> Iterator[str]:
    """Every string in a parsed journal line or cassette, with base64 and binary bodies
    decoded: a body with one byte that is not UTF-8 is stored that way."""
    if isinstance(document, dict):
        if isinstance(document.get("base64"), str):
            yield base64.b64decode(document["base64"]).decode("utf-8", "replace")
        for key, value in document.items():
            yield str(key)
            yield from _leaves(value)
    elif isinstance(document, list | tuple):
        for item in document:
            yield from _leaves(item)
    elif isinstance(document, bytes):
        yield document.decode("utf-8", "replace")
    else:
        yield str(document)


def _assert_clean_document(where: str, document: Any) -> None:
    for leaf in _leaves(document):
        _assert_clean(where, leaf)


# brotli (quality 11) of {"data": "abc abc ... (200 times) ", "note": "my key is <OPENAI_KEY>"}:
# the key is Huffman-coded inside, so no scan of the bytes can see it. The proxy cannot decode
# br, so it stores the body as it came, and ``cassette check`` says it could not scan it.
BROTLI_WITH_A_KEY = bytes.fromhex(
    "1b7b03f81d056eec0371424130985703f34c7d9968801b71314412a4650c36e05403e10017181416f01b00"
    "0c3e52895fcf1aafaa470050e981b7bd2d5d4d57d7a5d5baa97cb158b0c5e44364760b3fd9dc55267a8d1e"
    "4df4a9509702bb1bec21904dcad42ebee56722bb027f"
)
LONG_BODY = (
    b"x" * (TRUNCATED_HEAD - 12 - 1) + b" " + OPENAI_KEY.encode() + b" " + b"y" * 70_000
)  # over the log's 64 KiB limit, with the key's first 12 characters before the head's cut


class LeakyUpstream(FakeUpstream):
    """The fake upstream, plus answers that carry secrets where a user would not look:
    ``/v1/leaky/{reason,binary,br,long,headers}``."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        kind = request.path.removeprefix("/v1/leaky/")
        if kind == request.path:
            return await super().handle(request)
        if kind == "reason":
            return web.Response(status=200, reason=f"OK {OPENAI_KEY}", body=b"{}")
        if kind == "binary":
            body = b"\xff" + f'{{"note": "{OPENAI_KEY} {GITHUB_PAT}"}}'.encode()
            return web.Response(body=body, content_type="application/octet-stream")
        if kind == "br":
            headers = {"Content-Encoding": "br", "Content-Type": "application/json"}
            return web.Response(body=BROTLI_WITH_A_KEY, headers=headers)
        if kind == "long":
            return web.Response(body=LONG_BODY, content_type="text/plain")
        headers = {
            "X-Auth-Token": JWT,
            "Private-Token": STRIPE_KEY,
            "X-Amz-Security-Token": PLAIN_SECRET,
            "Ocp-Apim-Subscription-Key": GITHUB_PAT,
        }
        document = {"api_key": PLAIN_SECRET, "user": {"password": PASSWORD}, "jwt": JWT}
        return web.json_response(document, headers=headers)


@pytest.fixture
def fake_upstream() -> FakeUpstream:
    return LeakyUpstream()


async def test_no_secret_reaches_any_artefact_of_a_recorded_run(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    cassette = tmp_path / "secrets.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="all")
    calls: list[tuple[str, str, dict[str, str], bytes | None]] = []
    for key, scheme, param in [(OPENAI_KEY, "Bearer", "api_key"), (YANDEX_KEY, "Api-Key", "key")]:
        headers = {
            "Authorization": f"{scheme} {key}",
            "OpenAI-Project": key,
            "Content-Type": "application/json",
        }
        payload = orjson.dumps({"input": f"my key is {key}", "api_key": key})
        calls += [
            ("POST", f"/v1/responses/{vectors.V1_ID}/cancel?{param}={key}", headers, None),
            (
                "POST",
                f"/v1/responses/{vectors.V2_ID}/cancel?{param}={PLAIN_SECRET}",
                headers,
                payload,
            ),
            ("POST", f"/v1/chat/completions?{param}={key}", headers, payload),
        ]
    # Credentials a user would expect to be found: named headers, JSON fields at any depth,
    # query parameters, and token shapes outside an Authorization header.
    named_headers = {
        "Ocp-Apim-Subscription-Key": GITHUB_PAT,
        "X-Auth-Token": JWT,
        "Private-Token": PASSWORD,  # no shape: only the header's name marks it
        "X-Amz-Security-Token": AWS_KEY_ID,
        "Content-Type": "application/json",
    }
    fields = {
        "api_key": PLAIN_SECRET,
        "password": PASSWORD,
        "model": "gpt://b1gexamplefolder000/yandexgpt/latest",  # a create strict mode lets by
        "input": [{"role": "user", "content": "hi", "nested": {"client_secret": PLAIN_SECRET}}],
        "note": f"{JWT} {STRIPE_KEY} {GITHUB_PAT} {AWS_KEY_ID}",
    }
    calls += [
        (
            "POST",
            f"/v1/responses?password={PASSWORD}&client_secret={PLAIN_SECRET}",
            named_headers,
            orjson.dumps(fields),
        ),
        *(("GET", f"/v1/leaky/{kind}", {}, None) for kind in ("reason", "binary", "long")),
        ("GET", "/v1/leaky/br", {}, None),
        ("GET", "/v1/leaky/headers", {}, None),
    ]
    error_bodies: list[bytes] = []
    for method, path, headers, body in calls:
        status, answer = await _request(recording, method, path, headers=headers, data=body)
        assert status == 200, answer
    # A key pasted where the id goes: the upstream's 404 echoes it (that is the upstream's
    # answer, passed on as it is), but the log's path and response_id must not.
    key_as_id = f"/v1/responses/{OPENAI_KEY}/cancel"
    status, _ = await _request(recording, "POST", key_as_id, headers={"Authorization": "Bearer x"})
    assert status == 404
    # The secrets really travelled: the upstream got them, so their absence below means something.
    assert any(OPENAI_KEY in r.headers["authorization"] for r in fake_upstream.received)
    assert any(YANDEX_KEY.encode() in r.body for r in fake_upstream.received)
    assert any(PLAIN_SECRET in r.raw_path for r in fake_upstream.received)

    assert any(
        PASSWORD in r.raw_path and JWT in r.headers["x-auth-token"] for r in fake_upstream.received
    )

    journal = journal_path(cassette)
    assert journal.exists()
    _assert_clean("the journal", journal.read_bytes())
    journal_lines = journal.read_bytes().splitlines()[1:]  # after its header
    assert len(journal_lines) == len(calls) + 1
    for line in journal_lines:  # <length> <crc32> <json> (journal version 2)
        _assert_clean_document("the journal", orjson.loads(line.split(b" ", 2)[2]))
    status, health = await _request(recording, "GET", "/_proxy/health")
    assert status == 200
    _assert_clean("/_proxy/health", health)
    status, metrics = await _request(recording, "GET", "/_proxy/metrics")
    assert status == 200
    assert b"cassette_proxy_requests" in metrics
    _assert_clean("/_proxy/metrics", metrics)
    await recording.stop()

    stored = yaml.safe_load(cassette.read_text())["interactions"]
    assert len(stored) == len(calls) + 1
    _assert_clean("the cassette", cassette.read_bytes())
    _assert_clean_document("the cassette", stored)
    _assert_clean("the recording log", recording.log_path.read_bytes())
    long_line = next(e for e in recording.exchanges() if e["path"] == "/v1/leaky/long")
    assert long_line["response"]["body"]["truncated"] is True
    # The same rules in `cassette check`: nothing left to find, and the br body it cannot
    # read is named, since a secret could hide there.
    checked = CliRunner().invoke(
        main, ["cassette", "check", "--format", "json", "--fail-on", "secrets", str(cassette)]
    )
    assert checked.exit_code == 1, checked.output  # the br body could not be vouched for
    [report] = orjson.loads(checked.output)["cassettes"]
    br_index = next(i for i, item in enumerate(stored) if item["request"]["uri"].endswith("/br"))
    assert [(f["pointer"], f["severity"]) for f in report["findings"] if f["kind"] == "secret"] == [
        (f"/interactions/{br_index}/response/body", "warning")
    ]

    # Replay: the redacted recordings still match the live (secret-bearing) requests, and the
    # proxy's own error messages (a miss, a strict rejection) carry no secret either.
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    for method, path, headers, body in calls:
        status, answer = await _request(replaying, method, path, headers=headers, data=body)
        assert status == 200, answer
    strict = await start_proxy(cassette=cassette, record_mode="none", validation="strict")
    status, answer = await _request(
        strict,
        "POST",
        f"/v1/responses/resp_unrecorded/cancel?api_key={PLAIN_SECRET}",
        headers={"Authorization": f"Bearer {OPENAI_KEY}", "OpenAI-Project": YANDEX_KEY},
        data=orjson.dumps({"api_key": OPENAI_KEY}),
    )
    assert status == 501
    error_bodies.append(answer)
    status, answer = await _request(
        strict,
        "POST",
        f"/v1/responses//cancel?key={YANDEX_KEY}",
        headers={"Authorization": f"Api-Key {YANDEX_KEY}"},
        data=orjson.dumps({"api_key": OPENAI_KEY}),
    )
    assert status == 400
    error_bodies.append(answer)
    status, health = await _request(replaying, "GET", "/_proxy/health")
    _assert_clean("/_proxy/health", health)
    await replaying.stop()
    await strict.stop()
    for answer in error_bodies:
        assert b'"error"' in answer
        _assert_clean("an error message body", answer)
    _assert_clean("the replay log", replaying.log_path.read_bytes())
    _assert_clean("the strict replay log", strict.log_path.read_bytes())
    assert {line["source"] for line in replaying.exchanges()} == {"cassette"}
    assert {line["source"] for line in strict.exchanges()} == {"proxy"}


async def test_schemeless_authorization_is_not_quoted_in_the_log(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    status, _ = await _request(
        proxy,
        "POST",
        f"/v1/responses/{vectors.V1_ID}/cancel",
        headers={"Authorization": OPENAI_KEY},
    )
    assert status == 200
    [line] = proxy.exchanges()
    assert line["request"]["headers"]["authorization"] == sha(OPENAI_KEY)
    _assert_clean("the log", proxy.log_path.read_bytes())


async def _raw_exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_refused_target_does_not_echo_a_credential_parameter(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    assert proxy.server.port is not None
    answer = await _raw_exchange(
        proxy.server.port,
        f"GET http://example.com/v1/models?api_key={PLAIN_SECRET} HTTP/1.1\r\n"
        "Host: example.com\r\nConnection: close\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 400")
    [line] = proxy.exchanges()
    assert line["error"] == "proxy_refused_target"
    _assert_clean("the log", proxy.log_path.read_bytes())
    _assert_clean("the error body", answer)


@pytest.fixture
async def malformed_upstream() -> AsyncIterator[str]:
    """An upstream whose response has a header line aiohttp cannot parse."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nNot A Header Line\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def test_upstream_broken_error_does_not_echo_a_credential_parameter(
    start_proxy: StartProxy, malformed_upstream: str
) -> None:
    proxy = await start_proxy(upstream=malformed_upstream)
    status, answer = await _request(
        proxy,
        "POST",
        f"/v1/responses/{vectors.V1_ID}/cancel?key={PLAIN_SECRET}",
        headers={"Authorization": f"Bearer {OPENAI_KEY}"},
    )
    assert status == 502
    assert orjson.loads(answer)["error"]["code"] == "upstream_broken"
    _assert_clean("the log", proxy.log_path.read_bytes())
    _assert_clean("the error body", answer)


PROSE_BODY = orjson.dumps(
    vectors.V1 | {"instructions": "Give a basic explanation, then the bearer instrument details."}
)


@pytest.fixture
async def prose_upstream(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> str:
    async def cancel(request: web.Request) -> web.Response:
        return web.Response(body=PROSE_BODY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/responses/{id}/cancel", cancel)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def test_recorded_prose_replays_unchanged(
    start_proxy: StartProxy, prose_upstream: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "prose.yaml"
    recording = await start_proxy(upstream=prose_upstream, cassette=cassette, record_mode="once")
    path = f"/v1/responses/{vectors.V1_ID}/cancel"
    auth = {"Authorization": f"Bearer {OPENAI_KEY}", "OpenAI-Project": vectors.FOLDER}
    live = await _request(recording, "POST", path, headers=auth)
    assert live == (200, PROSE_BODY)
    await recording.stop()
    replaying = await start_proxy(upstream=prose_upstream, cassette=cassette, record_mode="none")
    replayed = await _request(replaying, "POST", path, headers=auth)
    assert replayed == live


async def test_a_key_used_as_a_field_or_parameter_name_is_in_no_artefact(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """A credential can be a name as well as a value: sent as a JSON key or a query
    parameter's name, it is found by the contract (an unknown field) and must not come back
    through that finding's pointer or message, in the log, audit or cassette check."""
    pat = "ghp_" + "Xq9LmZ2vT8kR4wN7pB3sY6cH1jF5dG0aE2uK"
    # Longer than a message quotes (60 characters): redacted whole before it is cut.
    fine_grained = "github_pat_" + "11ABCDEFG0" * 8 + "xy"
    cassette = tmp_path / "names.yaml"
    proxy = await start_proxy(cassette=cassette, record_mode="all")
    body = orjson.dumps(
        {"model": "gpt://b1gfolder/yandexgpt/rc", "input": "hi", pat: 1, fine_grained: 2}
    )
    cancel_url = f"{proxy.url}/v1/responses/{vectors.V1_ID}/cancel?{pat}=1"
    async with aiohttp.ClientSession() as session:
        for url, data in ((f"{proxy.url}/v1/responses", body), (cancel_url, b"")):
            async with session.post(url, data=data, headers={"Content-Type": "application/json"}):
                pass
    await proxy.stop()
    log = proxy.log_path.read_text()
    assert '"kind":"unknown_field"' in log  # found, and named by its fingerprint
    checked = CliRunner().invoke(main, ["cassette", "check", str(cassette)])
    audited = CliRunner().invoke(main, ["audit", str(proxy.log_path)])
    artefacts = {"the log": log, "the cassette": cassette.read_text(),
                 "cassette check": checked.output, "audit": audited.output}  # fmt: skip
    for where, text in artefacts.items():
        assert pat[:12] not in text, where
        assert fine_grained[:24] not in text, where
