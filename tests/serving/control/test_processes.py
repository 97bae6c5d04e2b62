"""A long-lived proxy as a real process, steered from outside: a cassette-per-case suite driven
by a shell script with curl (``docs/curl_suite.sh``), recording then replaying; and a cassette
loaded at run time as durable as one given at start."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import aiohttp
import pytest
import vcr
import yaml

from tests import vectors
from tests.fake_upstream import FakeUpstream
from tests.processes import ProxyProcess, running
from tests.serving.control.admin import call

pytestmark = pytest.mark.slow

SUITE = Path(__file__).resolve().parents[3] / "docs" / "curl_suite.sh"
TOKEN = "curl-suite-token-0123456789abcdef"


async def run_suite(proxy: ProxyProcess, *, record: bool) -> tuple[int, str]:
    """The suite, as a CI job would run it: sh and curl; its exit code and output."""
    assert shutil.which("curl"), "this test drives the proxy with curl, which is not installed"
    env = {"PATH": os.environ["PATH"], "PROXY": proxy.url, "CASSETTE_PROXY_ADMIN_TOKEN": TOKEN}
    if record:
        env["RECORD"] = "1"
    process = await asyncio.create_subprocess_exec(
        "sh", str(SUITE), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_a_long_lived_proxy_runs_a_cassette_per_case_suite_driven_by_curl(
    upstream_url: str, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    env = {"CASSETTE_PROXY_ADMIN_TOKEN": TOKEN}
    serve = ("--upstream", upstream_url, "--admin", "--cassette-dir", str(folder))
    async with running(*serve, "--record-mode", "once", env=env,
                       log_file=tmp_path / "proxy.log") as proxy:  # fmt: skip
        code, output = await run_suite(proxy, record=True)
        assert code == 0, output
        assert output.endswith("all cases passed (all)\n")
        assert fake_upstream.cancels == 6
        code, output = await run_suite(proxy, record=False)  # the same process, replaying
        assert code == 0, output
        assert fake_upstream.cancels == 6  # replayed, every case
        # A case whose cassette is gone fails the suite at its load, naming the check.
        (folder / "cancel-twice.yaml").unlink()
        code, output = await run_suite(proxy, record=False)
        assert code == 1
        assert "FAILED: load: expected 200, got 409" in output
        assert "cancel-twice.yaml' does not exist" in output
        proxy.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proxy.process.wait() == 0
        assert proxy.process.stderr is not None
        said = (await proxy.process.stderr.read()).decode()
    # Recording (record mode once) with the clients' own keys is said first, then where it is.
    keys, listening = said.splitlines()
    assert keys.startswith("cassette-proxy: recording without CASSETTE_PROXY_UPSTREAM_API_KEY")
    assert listening.startswith(f"cassette-proxy listening on {proxy.url} ")
    assert listening.endswith(
        f"; a cassette per request under {folder}; control API at /_proxy/ (token required)"
    )
    for name, count in [("cancel-once", 1), ("worker-a", 1), ("worker-b", 1),
                        ("rate-limited", 1)]:  # fmt: skip
        with vcr.use_cassette(str(folder / f"{name}.yaml"), record_mode="none") as by_vcrpy:
            assert len(by_vcrpy) == count, name
    log = (tmp_path / "proxy.log").read_bytes()
    assert TOKEN.encode() not in log


async def test_a_cassette_loaded_at_run_time_survives_kill_9(
    upstream_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "loaded.yaml"
    async with running("--upstream", upstream_url, "--admin") as proxy:
        loaded = await call(proxy.url, "PUT", "/_proxy/cassette", {"path": str(cassette)})
        assert loaded.status == 200
        answers = [await proxy.cancel(f"resp_killed_{n}") for n in range(5)]
        assert {status for status, _, _ in answers} == {404}
        proxy.process.kill()  # SIGKILL: no chance to save; the journal has them
        await proxy.process.wait()
    assert not cassette.exists()
    async with running("--upstream", upstream_url, "--admin", "--record-mode", "none") as proxy:
        replaying = await call(proxy.url, "PUT", "/_proxy/cassette", {"path": str(cassette)})
        assert replaying.json()["cassette"]["recovered_from_journal"] == 5
        replayed = [await proxy.cancel(f"resp_killed_{n}") for n in range(5)]
        assert [body for _, _, body in replayed] == [body for _, _, body in answers]
    assert len(yaml.safe_load(cassette.read_text())["interactions"]) == 5


async def test_sigterm_saves_every_cassette_loaded_at_run_time(
    upstream_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    async with running(
        "--upstream", upstream_url, "--admin", "--cassette-dir", str(folder)
    ) as proxy:
        await call(proxy.url, "PUT", "/_proxy/cassette", {"path": "loaded.yaml"})
        await proxy.cancel(vectors.V1_ID)
        async with aiohttp.ClientSession() as session:
            for name in ("a", "b"):
                async with session.post(
                    f"{proxy.url}/v1/responses/{vectors.V2_ID}/cancel",
                    headers={"X-Cassette-Proxy-Cassette": name},
                ) as response:
                    assert response.status == 200
        proxy.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proxy.process.wait() == 0
    for name in ("loaded", "a", "b"):
        assert len(yaml.safe_load((folder / f"{name}.yaml").read_text())["interactions"]) == 1
