"""``cassette check`` and ``cassette redact`` on cassettes recorded for real in the test."""

from __future__ import annotations

import gzip
import io
import shlex
from pathlib import Path

import aiohttp
import orjson
import pytest
import vcr
import yaml
from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.redact import fingerprint
from cassette_proxy.store.persist import load_cassette
from cassette_proxy.tools.progress import Progress
from cassette_proxy.tools.report import FailOn, TextReport, check_all
from tests import vectors
from tests.client import cancel
from tests.conftest import StartProxy

OPENAI_KEY = "sk-" + "proj-abcdefghijklmnopqrstuvwxyz012345"  # fake; split for scanners
YANDEX_KEY = "AQVN" + "abcdefghijklmnopqrstuvwxyz01234"  # fake; split for scanners
QUERY_KEY = "q-secret-0123456789"
COOKIE = "s3cr3t-cookie-value"  # the test upstream's Set-Cookie value


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["cassette", "check", *args])
    return result.exit_code, result.output


async def record_leaky_cassette_with_vcrpy(path: Path, upstream_url: str) -> None:
    """vcrpy records what it sees: keys in headers, query, request and response bodies."""
    with vcr.use_cassette(str(path), record_mode="all"):
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{upstream_url}/v1/responses/{vectors.V1_ID}/cancel",
                headers={"Authorization": f"Bearer {OPENAI_KEY}", "OpenAI-Project": YANDEX_KEY},
            ) as response:
                await response.read()
            async with session.post(
                f"{upstream_url}/v1/chat/completions?api_key={QUERY_KEY}",
                json={"input": "hi", "note": f"Api-Key {YANDEX_KEY}"},
                headers={"Authorization": f"Api-Key {YANDEX_KEY}"},
            ) as response:
                await response.read()


async def test_a_proxy_recorded_cassette_passes(start_proxy: StartProxy, tmp_path: Path) -> None:
    cassette = tmp_path / "clean.yaml"
    proxy = await start_proxy(cassette=cassette, record_mode="all")
    for response_id in (vectors.V1_ID, vectors.V4_ID, "resp_missing"):
        await cancel(proxy, response_id)
    await proxy.stop()
    code, output = check(str(cassette))
    assert code == 0, output
    assert f"{cassette}: 3 interactions, vcrpy loads it" in output
    assert "0 errors" in output


async def test_drift_and_broken_bodies_are_reported_with_pointers(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "drift.yaml"
    proxy = await start_proxy(cassette=cassette, record_mode="all")
    await cancel(proxy, "resp_drift_1")
    await cancel(proxy, "resp_broken_1")
    await proxy.stop()
    code, output = check("--format", "json", str(cassette))
    assert code == 1  # the broken body is an error
    [report] = orjson.loads(output)["cassettes"]
    found = {(f["pointer"], f["severity"], f["kind"]) for f in report["findings"]}
    assert ("/interactions/0/response/body/status", "warning", "contract") in found
    assert ("/interactions/0/response/body/brand_new_field", "warning", "contract") in found
    assert ("/interactions/1/response/body/id", "error", "contract") in found


async def test_secrets_are_found_everywhere_they_hide_and_redacted_in_place(
    upstream_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "leaky.yaml"
    await record_leaky_cassette_with_vcrpy(cassette, upstream_url)
    before = cassette.read_text()
    assert OPENAI_KEY in before
    code, output = check("--format", "json", str(cassette))
    assert code == 1
    secrets = {
        f["pointer"]
        for f in orjson.loads(output)["cassettes"][0]["findings"]
        if f["kind"] == "secret"
    }
    assert secrets >= {
        "/interactions/0/request/headers/Authorization",
        "/interactions/0/request/headers/OpenAI-Project",
        "/interactions/0/response/headers/Set-Cookie",
        "/interactions/1/request/uri",
        "/interactions/1/request/body",
        "/interactions/1/request/headers/Authorization",
        "/interactions/1/response/body",  # the upstream echoed the query string
    }
    for secret in (OPENAI_KEY, YANDEX_KEY, QUERY_KEY, "s3cr3t-cookie-value"):
        assert secret not in output

    result = CliRunner().invoke(main, ["cassette", "redact", str(cassette)])
    assert result.exit_code == 0, result.output
    assert "replaced (in place)" in result.output
    after = cassette.read_text()
    for secret in (OPENAI_KEY, YANDEX_KEY, QUERY_KEY, "s3cr3t-cookie-value"):
        assert secret not in after
    # Everything else is byte-for-byte: only lines that held a secret changed.
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), after.splitlines(), strict=True)
        if old != new
    ]
    assert changed
    assert all("sha256:" in new for _, new in changed)
    assert check(str(cassette))[0] == 0
    with vcr.use_cassette(str(cassette), record_mode="none") as loaded:
        assert len(loaded) == 2
    again = CliRunner().invoke(main, ["cassette", "redact", str(cassette)])
    assert "no secrets found; left unchanged" in again.output
    assert cassette.read_text() == after


def test_cassettes_that_cannot_be_loaded_are_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.yaml"
    corrupt.write_text("interactions: [ {")
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text(
        yaml.safe_dump({"version": 1, "interactions": []})
        + "extra: !!python/object/apply:os.getcwd []\n"
    )
    missing = tmp_path / "missing.yaml"
    code, output = check("--format", "json", str(corrupt), str(tagged), str(missing))
    assert code == 1
    reports = orjson.loads(output)["cassettes"]
    assert [r["vcrpy_loads"] for r in reports] == [False, False, False]
    assert all(r["findings"][0]["kind"] == "load" for r in reports)
    assert load_cassette(missing) is None


async def test_a_log_given_for_a_cassette_is_named_and_sent_to_audit(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """The proxy's own log, checked or redacted by mistake: the advice for a broken cassette
    (fix it, or move it away to record a new one) would be wrong; ``audit`` reads it."""
    proxy = await start_proxy(cassette=tmp_path / "c.yaml", record_mode="once")
    await cancel(proxy, vectors.V1_ID)
    await proxy.stop()
    log = proxy.log_path
    as_json = tmp_path / "proxy log.json"  # a name a folder walk would take for a cassette
    as_json.write_bytes(log.read_bytes())
    rotated = tmp_path / "proxy.log.gz"
    rotated.write_bytes(gzip.compress(log.read_bytes()))
    before = log.read_bytes()
    for path in (log, as_json, rotated):
        code, output = check(str(path))
        assert code == 1, output
        assert (
            f"{str(path)!r} is not a cassette: it looks like cassette-proxy's audit log (JSON "
            'lines with "event" fields, as serve --log-file writes them), and was left '
            f"untouched. Read it with: cassette-proxy audit {shlex.quote(str(path))}"
        ) in " ".join(output.split()), output
        assert "record a new one" not in output
    result = CliRunner().invoke(main, ["cassette", "redact", str(log)])
    assert result.exit_code == 1
    assert "looks like cassette-proxy's audit log" in result.output
    assert "record a new one" not in result.output
    assert log.read_bytes() == before
    # A broken cassette still gets the advice for a cassette.
    corrupt = tmp_path / "corrupt.yaml"
    corrupt.write_text("interactions: [ {")
    code, output = check(str(corrupt))
    assert "move it away to record a new one" in output
    assert "audit log" not in output
    # So does one that starts like gzip but does not inflate (it once raised zlib.error).
    damaged = tmp_path / "damaged.yaml"
    damaged.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(200)))
    code, output = check(str(damaged))
    assert code == 1, output
    assert "vcrpy cannot load it" in output
    assert "audit log" not in output


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
async def test_redact_touches_only_the_field_a_secret_was_found_in(
    upstream_url: str, tmp_path: Path, suffix: str
) -> None:
    # A short, plain credential ("json") that also appears elsewhere in the file, in
    # "application/json": only the Authorization header's value may change.
    cassette = tmp_path / f"short{suffix}"
    serializer = "json" if suffix == ".json" else "yaml"
    with vcr.use_cassette(str(cassette), record_mode="all", serializer=serializer):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{upstream_url}/v1/responses/{vectors.V1_ID}/cancel",
                headers={"Authorization": "json", "Content-Type": "application/json"},
            ) as response,
        ):
            await response.read()
    cassette.chmod(0o600)
    before = cassette.read_text()
    assert before.count("json") > 2
    result = CliRunner().invoke(main, ["cassette", "redact", str(cassette)])
    assert result.exit_code == 0, result.output
    assert "in place" in result.output
    after = cassette.read_text()
    # Exactly two values change: the Authorization header's, and the Set-Cookie value that the
    # test upstream sends. Every other byte stays, "application/json" included.
    quoted = '"{}"' if suffix == ".json" else "- {}\n"
    expected = before.replace(quoted.format("json"), quoted.format(fingerprint("json")), 1)
    expected = expected.replace(COOKIE, fingerprint(COOKIE))
    assert after == expected
    assert after.count("application/json") == before.count("application/json")
    assert cassette.stat().st_mode & 0o777 == 0o600  # a private cassette stays private


@pytest.mark.parametrize(
    ("bom", "newline"), [("", "\n"), ("\ufeff", "\n"), ("", "\r\n")], ids=["lf", "bom", "crlf"]
)
def test_redact_keeps_every_other_byte_of_a_hand_edited_utf8_cassette(
    tmp_path: Path, bom: str, newline: str
) -> None:
    # vcrpy's dumpers escape non-ASCII; a cassette edited by hand may hold it raw, before the
    # secret (where byte and character offsets differ), after a byte-order mark, with CRLF.
    lines = [
        "interactions:",
        "- request:",
        "    body: 'Привет, ✓ — json'",
        "    headers:",
        "      Authorization:",
        "      - json",
        "    method: POST",
        "    uri: https://ai.api.cloud.yandex.net/v1/responses/r/cancel",
        "  response:",
        "    body:",
        "      string: '{}'",
        "    headers:",
        "      Content-Type:",
        "      - application/json",
        "    status:",
        "      code: 200",
        "      message: OK",
        "version: 1",
    ]
    cassette = tmp_path / "edited.yaml"
    cassette.write_bytes((bom + newline.join(lines) + newline).encode("utf-8"))
    before = cassette.read_bytes()
    result = CliRunner().invoke(main, ["cassette", "redact", str(cassette)])
    assert result.exit_code == 0, result.output
    assert "in place" in result.output
    secret_line = f"      - json{newline}".encode()
    expected = before.replace(secret_line, f"      - {fingerprint('json')}{newline}".encode())
    assert cassette.read_bytes() == expected


# -- at real size: folders, groups, gates ----------------------------------------------------------


async def record_with_proxy(start_proxy: StartProxy, path: Path, *ids: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    proxy = await start_proxy(cassette=path, record_mode="all")
    for response_id in ids:
        await cancel(proxy, response_id)
    await proxy.stop()
    return path


async def record_keys_with_vcrpy(path: Path, upstream_url: str, count: int) -> Path:
    """vcrpy records ``count`` cancels of 404s (no contract findings), each with the key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    serializer = "json" if path.suffix == ".json" else "yaml"
    with vcr.use_cassette(str(path), record_mode="all", serializer=serializer):
        async with aiohttp.ClientSession() as session:
            for n in range(count):
                async with session.post(
                    f"{upstream_url}/v1/responses/resp_missing_{n}/cancel",
                    headers={"Authorization": f"Bearer {OPENAI_KEY}"},
                ) as response:
                    await response.read()
    return path


def reported(output: str, root: Path) -> list[str]:
    """The cassettes reported, in order: the first line of each is ``<path>: N interactions``."""
    return [line.split(": ")[0] for line in output.splitlines() if line.startswith(str(root))]


async def test_folders_are_walked_and_each_cassette_reported(
    start_proxy: StartProxy, upstream_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "cassettes"
    clean = await record_with_proxy(start_proxy, root / "a_clean.yaml", "resp_missing")
    drift = await record_with_proxy(start_proxy, root / "sub" / "drift.yml", "resp_drift_1")
    leaky = await record_keys_with_vcrpy(root / "sub" / "deeper" / "leaky.json", upstream_url, 2)
    hidden = await record_keys_with_vcrpy(root / ".git" / "leaky.yaml", upstream_url, 1)
    (root / "notes.txt").write_text("not a cassette")
    (root / "sub" / ".drift.yml.journal").write_text("{}")
    code, output = check(str(root))
    assert code == 1, output  # the leaky one
    # Sorted by path: sub/deeper/ before sub/drift.yml.
    assert reported(output, root) == [str(clean), str(leaky), str(drift)]
    assert str(hidden) not in output
    assert output.splitlines()[-2].startswith("3 cassettes, 4 interactions: 4 errors (4 secrets)")

    _, document = check("--format", "json", str(root), str(hidden))
    paths = [c["path"] for c in orjson.loads(document)["cassettes"]]
    assert paths == [str(clean), str(leaky), str(drift), str(hidden)]  # named, so checked

    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    (empty / ".git" / "x.yaml").write_text("interactions: []")
    code, output = check(str(empty))
    assert code == 2
    assert f"no cassette under '{empty}'" in output
    result = CliRunner().invoke(main, ["cassette", "redact", str(empty)])
    assert result.exit_code == 2


async def test_findings_of_one_shape_are_one_line(upstream_url: str, tmp_path: Path) -> None:
    cassette = await record_keys_with_vcrpy(tmp_path / "many.yaml", upstream_url, 12)
    code, output = check(str(cassette))
    assert code == 1
    secret = f"Bearer {fingerprint(OPENAI_KEY)}"
    assert (
        "      12 x /interactions/*/request/headers/Authorization  [secret] "
        "credential-like value in clear text (header Authorization)\n"
        f"           interactions 0, 1, 2, 3, 4 and 7 more; e.g. would be recorded as '{secret}'\n"
    ) in output
    assert "/interactions/5/" not in output
    assert "errors (24, in 2 groups):" in output  # Authorization and the upstream's Set-Cookie
    assert f"fix the secrets with: cassette-proxy cassette redact {cassette}" in output
    assert len(output.splitlines()) < 12  # 24 findings

    _, verbose = check("--verbose", str(cassette))
    for n in range(12):
        assert (
            f"    /interactions/{n}/request/headers/Authorization  [secret] credential-like "
            f"value in clear text (header Authorization) (would be recorded as '{secret}')"
        ) in verbose
    _, document = check("--format", "json", str(cassette))
    findings = orjson.loads(document)["cassettes"][0]["findings"]
    authorization = [f for f in findings if f["pointer"].endswith("/Authorization")]
    assert len(authorization) == 12
    assert {f["detail"] for f in authorization} == {f"would be recorded as '{secret}'"}
    assert OPENAI_KEY not in output + verbose + document


async def test_fail_on_decides_what_exits_1(
    start_proxy: StartProxy, upstream_url: str, tmp_path: Path
) -> None:
    cassettes = {
        "clean": await record_with_proxy(start_proxy, tmp_path / "clean.yaml", "resp_missing"),
        "warning": await record_with_proxy(start_proxy, tmp_path / "warn.yaml", vectors.V1_ID),
        "contract": await record_with_proxy(start_proxy, tmp_path / "bad.yaml", "resp_broken_1"),
        "secret": await record_keys_with_vcrpy(tmp_path / "leaky.yaml", upstream_url, 1),
        "unreadable": tmp_path / "corrupt.yaml",
    }
    cassettes["unreadable"].write_text("interactions: [ {")
    # What each gate fails on; the default is errors.
    fails = {
        "secrets": {"secret", "unreadable"},
        "errors": {"contract", "secret", "unreadable"},
        "warnings": {"warning", "contract", "secret", "unreadable"},
    }
    for gate, failing in fails.items():
        for name, path in cassettes.items():
            code, output = check("--fail-on", gate, str(path))
            assert code == (1 if name in failing else 0), (gate, name, output)
            verdict = output.splitlines()[-1]
            assert verdict.startswith(f"--fail-on {gate}: {'failed' if code else 'passed'}")
            _, document = check("--format", "json", "--fail-on", gate, str(path))
            assert orjson.loads(document)["failed"] is (code == 1)
    assert check(str(cassettes["contract"]))[0] == 1
    assert check(str(cassettes["warning"]))[0] == 0
    code, output = check("--fail-on", "secrets", str(cassettes["unreadable"]))
    assert "--fail-on secrets: failed (0 secret(s), 1 unreadable cassette(s))" in output


async def test_redact_takes_folders_and_goes_on_past_a_bad_cassette(
    start_proxy: StartProxy, upstream_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "cassettes"
    first = await record_keys_with_vcrpy(root / "a.yaml", upstream_url, 2)
    second = await record_keys_with_vcrpy(root / "sub" / "b.json", upstream_url, 1)
    clean = await record_with_proxy(start_proxy, root / "c.yaml", "resp_missing")
    corrupt = root / "d.yaml"
    corrupt.write_text("interactions: [ {")
    result = CliRunner().invoke(main, ["cassette", "redact", str(root)])
    assert result.exit_code == 1  # the corrupt one
    assert result.stdout.splitlines() == [
        f"{first}: 4 secret(s) replaced (in place)",
        f"{clean}: no secrets found; left unchanged",
        f"{second}: 2 secret(s) replaced (in place)",
        "4 cassettes: 6 secrets replaced in 2 cassettes, 1 left unchanged, 1 could not be redacted",
    ]
    assert f"Error: cassette '{corrupt}'" in result.stderr
    corrupt.unlink()
    assert check("--fail-on", "secrets", str(root))[0] == 0
    for path in (first, second):
        assert OPENAI_KEY not in path.read_text()


def test_progress_is_shown_on_a_terminal_and_erased(tmp_path: Path) -> None:
    demo = Path(__file__).parents[2] / "cassettes" / "demo.yaml"
    copies = [tmp_path / f"{n}.yaml" for n in range(2)]
    for copy in copies:
        copy.write_bytes(demo.read_bytes())
    terminal = io.StringIO()
    written: list[str] = []
    check_all(copies, TextReport(written.append), FailOn.ERRORS, Progress(True, terminal))
    shown = terminal.getvalue()
    assert f"\r\033[K[1/2] checking {copies[0]}" in shown
    assert shown.endswith("\r\033[K")  # erased before each report, and at the end
    assert "\r" not in "".join(written)
    piped = io.StringIO()
    check_all(copies, TextReport(written.append), FailOn.ERRORS, Progress(False, piped))
    assert piped.getvalue() == ""
