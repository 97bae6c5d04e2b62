"""``cassette check`` and ``cassette redact`` apply the proxy's secret rules to every channel of
a cassette written by something that did not redact (vcrpy, an older proxy, a hand edit)."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import vcr
from click.testing import CliRunner
from vcr.request import Request as VcrRequest

from cassette_proxy.cli import main
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.persist import load_cassette, save_cassette
from tests.redact.test_redact import BROTLI_WITH_A_KEY, OPENAI_KEY, PLAIN_SECRET
from tests.redact.test_secret_rules import AWS_KEY_ID, GITHUB_PAT, JWT, PASSWORD, STRIPE_KEY

SECRETS = (OPENAI_KEY, PLAIN_SECRET, AWS_KEY_ID, GITHUB_PAT, JWT, PASSWORD, STRIPE_KEY)
BASE = "https://ai.api.cloud.yandex.net/v1"


def _interaction(
    uri: str,
    *,
    request_headers: dict[str, str] | None = None,
    request_body: bytes | None = None,
    reason: str = "OK",
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
    body: bytes = b"{}",
) -> Interaction:
    request = VcrRequest("POST", uri, request_body, request_headers or {})
    return Interaction(request, 200, reason, headers, body)


def _leaky_cassette(path: Path) -> None:
    save_cassette(
        path,
        [
            _interaction(f"{BASE}/reason", reason=f"OK {OPENAI_KEY}"),
            _interaction(
                f"{BASE}/binary",
                body=b"\xff" + f'{{"note": "{GITHUB_PAT}"}}'.encode(),
                headers=(("Content-Type", "application/octet-stream"),),
            ),
            _interaction(
                f"{BASE}/named?password={PASSWORD}&client_secret={PLAIN_SECRET}",
                request_headers={"X-Auth-Token": PLAIN_SECRET, "Private-Token": PASSWORD},
                request_body=orjson.dumps({"input": [{"api_key": PLAIN_SECRET}]}),
                headers=(("Content-Type", "application/json"), ("X-Amz-Security-Token", "x1")),
                body=orjson.dumps({"user": {"password": PASSWORD}, "jwt": JWT}),
            ),
            _interaction(
                f"{BASE}/gzip",
                headers=(("Content-Type", "application/json"), ("Content-Encoding", "gzip")),
                body=gzip.compress(orjson.dumps({"keys": [STRIPE_KEY, AWS_KEY_ID]})),
            ),
            _interaction(
                f"{BASE}/br",
                headers=(("Content-Type", "application/json"), ("Content-Encoding", "br")),
                body=BROTLI_WITH_A_KEY,
            ),
        ],
    )


def _findings(path: Path) -> tuple[int, dict[str, tuple[str, str]]]:
    result = CliRunner().invoke(main, ["cassette", "check", "--format", "json", str(path)])
    [report] = orjson.loads(result.output)["cassettes"]
    found = {
        f["pointer"]: (f["severity"], f["message"])
        for f in report["findings"]
        if f["kind"] == "secret"
    }
    return result.exit_code, found


def test_check_finds_secrets_in_every_channel_and_redact_removes_them(tmp_path: Path) -> None:
    cassette = tmp_path / "leaky.yaml"
    _leaky_cassette(cassette)
    code, found = _findings(cassette)
    assert code == 1
    errors = {pointer for pointer, (severity, _) in found.items() if severity == "error"}
    assert errors == {
        "/interactions/0/response/status/message",  # the reason phrase
        "/interactions/1/response/body",  # a body that is not UTF-8
        "/interactions/2/request/uri",  # password= and client_secret=
        "/interactions/2/request/headers/X-Auth-Token",
        "/interactions/2/request/headers/Private-Token",
        "/interactions/2/request/body",  # a JSON field, deep down
        "/interactions/2/response/headers/X-Amz-Security-Token",
        "/interactions/2/response/body",
        "/interactions/3/response/body",  # gzip: decoded to be scanned
    }
    assert "(jwt)" in found["/interactions/2/response/body"][1]  # names the rule...
    severity, message = found["/interactions/4/response/body"]
    assert severity == "warning"
    assert "not scanned for secrets" in message
    assert "Content-Encoding: br" in message
    for secret in SECRETS:
        assert secret[:12] not in str(found)  # ...and never quote the secret

    result = CliRunner().invoke(main, ["cassette", "redact", str(cassette)])
    assert result.exit_code == 0, result.output
    text = cassette.read_text()
    for secret in SECRETS:
        assert secret not in text
    interactions = load_cassette(cassette)
    assert interactions is not None
    for interaction in interactions[:4]:
        for secret in SECRETS:
            assert secret.encode() not in interaction.body
            assert secret not in interaction.reason
    # The gzip body is stored decoded, as the proxy records bodies; the br one as it was.
    assert dict(interactions[3].headers).get("Content-Encoding") is None
    assert orjson.loads(interactions[3].body)["keys"][0].startswith("sha256:")
    assert interactions[4].body == BROTLI_WITH_A_KEY
    code, found = _findings(cassette)
    assert code == 0
    assert list(found) == ["/interactions/4/response/body"]
    with vcr.use_cassette(str(cassette), record_mode="none") as loaded:
        assert len(loaded) == 5
