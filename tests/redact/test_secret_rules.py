"""The secret rules: gitleaks' rule set as vendored, the proxy's own, and the names of
credentials, as :mod:`cassette_proxy.redact` applies them to every channel."""

from __future__ import annotations

import base64
import hashlib
import time
from importlib import resources

import orjson
import pytest

from cassette_proxy.redact import (
    redact_bytes,
    redact_header,
    redact_path,
    redact_text,
    redacted_head,
    secrets_in,
)
from cassette_proxy.redact.names import is_credential_name, is_credential_parameter
from cassette_proxy.redact.rules import PROJECT_RULES, rule_set
from cassette_proxy.serving.observers.log import BODY_LIMIT, TRUNCATED_HEAD, body_record
from tests import vectors


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Fake credentials in the shapes gitleaks knows, assembled at run time so that secret scanners
# do not flag this file.
GITHUB_PAT = "ghp_" + "R7mQ2xK9vL4pT8wN3bZ6cH1jY5fD0sGaE2uW"
STRIPE_KEY = "sk_" + "live_" + "51HxQe2Kb7Lm9Np3Rt5Vw8Yz"
AWS_KEY_ID = "AKIA" + "ZQ3DN5PLQ7RTYWXV"
JWT = ".".join(
    [
        _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"})),
        _b64url(orjson.dumps({"sub": "1234567890", "name": "Jane Roe", "iat": 1516239022})),
        _b64url(hashlib.sha256(b"signature").digest()),
    ]
)
SLACK_TOKEN = "xoxb-" + "2718281828-3141592653589-" + "Qm7Zp2Lk9Wx4Rt8Vn3Bc6Hd1"
OPENAI_KEY = "sk-" + "proj-Zx81QmT4vB7nK2pL9sD3fG6hJ0wE5rY1uI8oA4cV7bN2mXq3Ws"
PASSWORD = "Tr0ub4dor-" + "3"  # short and plain: only its name marks it


def sha(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


# -- the rule set ----------------------------------------------------------------------------------


def test_the_vendored_rule_set_is_gitleaks_whole_with_its_version_and_licence() -> None:
    rules = rule_set()
    ids = {rule.id for rule in rules.rules}
    project = {rule_id for rule_id, *_ in PROJECT_RULES}
    assert len(ids - project) >= 200  # gitleaks' rules, not a hand-picked few
    assert {"github-pat", "stripe-access-token", "aws-access-token", "jwt"} <= ids
    assert rules.version.startswith("v8.")
    folder = resources.files("cassette_proxy.redact")
    assert "MIT License" in folder.joinpath("LICENSE.gitleaks").read_text()


@pytest.mark.parametrize(
    ("secret", "rule"),
    [
        (GITHUB_PAT, "github-pat"),
        (STRIPE_KEY, "stripe-access-token"),
        (AWS_KEY_ID, "aws-access-token"),
        (JWT, "jwt"),
        (SLACK_TOKEN, "slack-bot-token"),
        (OPENAI_KEY, "sk-key"),
    ],
    ids=["ghp", "sk_live", "AKIA", "jwt", "xoxb", "sk-"],
)
def test_token_shapes_are_found_in_text_json_and_bytes_that_are_not_utf8(
    secret: str, rule: str
) -> None:
    text = f"the token {secret} is here"
    assert redact_text(text) == f"the token {sha(secret)} is here"
    [found] = secrets_in(text)
    assert (found.original, found.replacement, found.rule) == (secret, sha(secret), rule)
    document = orjson.dumps({"deep": [{"note": secret}], "n": 1})
    assert orjson.loads(redact_bytes(document)) == {"deep": [{"note": sha(secret)}], "n": 1}
    # One stray byte made the body "binary", and a binary body used to be stored as it was.
    binary = b"\xff\xfe" + f'{{"note": "{secret}"}}'.encode() + b"\x00\x80"
    redacted = redact_bytes(binary)
    assert secret.encode() not in redacted
    assert redacted == b"\xff\xfe" + f'{{"note": "{sha(secret)}"}}'.encode() + b"\x00\x80"


def test_gitleaks_filters_are_kept_entropy_and_allowlists() -> None:
    low_entropy = "ghp_" + "a" * 36
    documented_example = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's own, allowlisted by gitleaks
    for text in (low_entropy, documented_example):
        assert redact_text(f"x {text} y") == f"x {text} y"


def test_a_body_with_no_keyword_costs_one_scan() -> None:
    body = b'{"output": [{"type": "message", "content": "The weather in Moscow is mild."}]}'
    assert rule_set().candidates(body) == []  # so no rule's own regex runs
    assert redact_bytes(body) is body


@pytest.mark.parametrize(
    "body", list(vectors.CANCELLED.values()) + list(vectors.NOT_FOUND.values())
)
def test_documented_bodies_are_left_alone(body: bytes) -> None:
    assert redact_bytes(body) is body


def test_a_hostile_body_is_scanned_in_linear_time() -> None:
    # Shapes that make backtracking engines explode on the rules' patterns.
    hostile = b'"password":"' * 20_000 + b"eyJ" * 50_000 + b"&key=" * 20_000 + b"a" * 200_000 + b"."
    started = time.perf_counter()
    redact_bytes(hostile)
    assert time.perf_counter() - started < 2.0


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Ocp-Apim-Subscription-Key",
        "X-Auth-Token",
        "Private-Token",
        "X-Amz-Security-Token",
        "Authorization",
        "Proxy-Authorization",
        "X-Api-Key",
        "x-goog-api-key",
        "client_secret",
        "dbPassword",
    ],
)
def test_credential_names(name: str) -> None:
    assert is_credential_name(name)
    assert redact_header(name, PASSWORD) == sha(PASSWORD)


@pytest.mark.parametrize(
    "name",
    [
        "Idempotency-Key",
        "Sec-WebSocket-Key",
        "x-ratelimit-remaining-tokens",
        "prompt_cache_key",
        "max_output_tokens",
        "token",  # a logprob's token: text, not a credential
        "Content-Type",
    ],
)
def test_names_that_only_look_like_credentials(name: str) -> None:
    assert not is_credential_name(name)
    assert redact_header(name, PASSWORD) == PASSWORD


def test_parameters_may_also_be_the_generic_names() -> None:
    assert is_credential_parameter("key")
    assert is_credential_parameter("token")
    assert is_credential_parameter("client_secret")
    assert not is_credential_parameter("model")


# -- channels --------------------------------------------------------------------------------------


def test_json_fields_named_like_credentials_are_redacted_at_any_depth() -> None:
    arguments = orjson.dumps({"api_key": PASSWORD}).decode()  # JSON inside a JSON string
    document = {
        "password": PASSWORD,
        "input": [{"tools": [{"type": "mcp", "authorization": f"Bearer {PASSWORD}"}]}],
        "nested": {"deeper": {"client_secret": PASSWORD, "clientSecret": PASSWORD}},
        "output": [{"type": "function_call", "arguments": arguments}],
        "logprobs": [{"token": "Hello", "logprob": -0.1}],
        "prompt_cache_key": "user-1234",
        "usage": {"input_tokens": 12, "output_tokens": 34},
    }
    redacted = orjson.loads(redact_bytes(orjson.dumps(document)))
    assert redacted["password"] == sha(PASSWORD)
    assert redacted["input"][0]["tools"][0]["authorization"] == sha(f"Bearer {PASSWORD}")
    assert redacted["nested"]["deeper"] == {
        "client_secret": sha(PASSWORD),
        "clientSecret": sha(PASSWORD),
    }
    assert PASSWORD not in redacted["output"][0]["arguments"]
    kept = ("logprobs", "prompt_cache_key", "usage")
    assert {k: redacted[k] for k in kept} == {k: document[k] for k in kept}


def test_credential_query_parameters_are_fingerprinted_by_name() -> None:
    path = f"/v1/models?password={PASSWORD}&client_secret={PASSWORD}x&limit=20"
    assert redact_path(path) == (
        f"/v1/models?password={sha(PASSWORD)}&client_secret={sha(PASSWORD + 'x')}&limit=20"
    )


def test_a_reason_phrase_is_free_text() -> None:
    assert redact_text(f"OK {OPENAI_KEY}") == f"OK {sha(OPENAI_KEY)}"


def test_redacting_every_channel_twice_is_redacting_it_once() -> None:
    body = orjson.dumps({"password": PASSWORD, "t": JWT, "gh": GITHUB_PAT, "aws": AWS_KEY_ID})
    once = redact_bytes(body)
    assert once != body
    assert redact_bytes(once) is once
    assert redact_bytes(body) == once  # deterministic: a redacted request still matches


# -- the log's cut ---------------------------------------------------------------------------------


@pytest.mark.parametrize("into_the_key", [1, 12, 30, len(OPENAI_KEY) - 1])
def test_a_key_across_the_logs_cut_leaves_no_part_of_itself(into_the_key: int) -> None:
    start = TRUNCATED_HEAD - into_the_key
    body = b"x" * (start - 1) + b" " + OPENAI_KEY.encode() + b" " + b"y" * BODY_LIMIT
    record = body_record(body, "text/plain")
    assert record["truncated"] is True
    head = record["head"]
    assert head.startswith("x" * (start - 1) + " ")
    # What follows is the key's fingerprint (the cut may split that), or nothing.
    assert (sha(OPENAI_KEY) + " ").startswith(head[start:])


def test_the_head_keeps_what_the_cut_does_not_split() -> None:
    body = b"a b c " * 1000
    assert redacted_head(body, 100) == body[:100]
    key_then_text = f"{OPENAI_KEY} and then plain words ".encode() * 200
    head = redacted_head(key_then_text, 150)
    assert OPENAI_KEY.encode() not in head
    assert head.startswith(sha(OPENAI_KEY).encode() + b" and then")
    assert len(head) <= 150


@pytest.mark.parametrize("at", range(90, 110))
def test_the_head_of_text_in_another_script_ends_between_characters_and_words(at: int) -> None:
    body = ("Привет, мир! Облачная платформа предоставляет модели. " * 40).encode()
    head = redacted_head(body, at)
    assert len(head) <= at
    text = head.decode()  # never a character cut in two
    assert body.decode().startswith(text)
    after = body.decode()[len(text) :]
    assert not (text[-1:].isalnum() and after[:1].isalnum())  # never a word cut in two
    assert len(head) > at - 40  # nor more left out than the word


def test_a_head_in_a_script_without_spaces_still_ends_between_characters() -> None:
    body = ("云计算平台提供模型" * 200).encode()  # no word boundary near the cut
    for at in range(500, 512):
        head = redacted_head(body, at)
        assert len(head) > at - 64
        assert body.decode().startswith(head.decode())


@pytest.mark.parametrize("surrogate", [chr(0xDCFF), chr(0xD800)], ids=["undecodable-byte", "lone"])
def test_text_with_lone_surrogates_keeps_them(surrogate: str) -> None:
    # aiohttp keeps bytes that are not UTF-8 as surrogates; JSON can carry a lone one.
    assert redact_text(f"{surrogate} {OPENAI_KEY}") == f"{surrogate} {sha(OPENAI_KEY)}"
    assert redact_text(f"{surrogate} plain") == f"{surrogate} plain"
