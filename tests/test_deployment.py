"""The deployment files the README shows, checked: the config file through the proxy's settings,
the systemd unit with ``systemd-analyze verify``, the Kubernetes manifest's probes, volume,
Secret and arguments (and the proxy run with them), and the logrotate entry run for real
against a running proxy. A check whose tool is not installed is skipped, saying so."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.cli.serve import serve_command
from cassette_proxy.settings import Settings
from tests import vectors
from tests.make_demo_cassette import DEMO
from tests.processes import running

README = Path(__file__).resolve().parent.parent / "README.md"
VENV_BIN = Path(sys.executable).parent


def block(marker: str) -> str:
    """The fenced block that follows ``<!-- marker -->`` in the README."""
    text = README.read_text()
    found = re.search(rf"<!-- {re.escape(marker)} -->\n```[a-z]*\n(.*?)\n```", text, re.DOTALL)
    assert found is not None, f"no <!-- {marker} --> block in README.md"
    return found[1] + "\n"


def settings_of(args: list[str]) -> Settings:
    """``serve ARGS`` as the command line would read them, validated by the settings."""
    context = serve_command.make_context("serve", list(args))
    given = {name: value for name, value in context.params.items() if value is not None}
    return Settings(**given)


def test_the_config_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text(block("proxy.toml"))
    settings = Settings(config=path)
    assert settings.log_bodies.value == "head"
    assert settings.drain_delay == 5


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = block("systemd")
    config = tmp_path / "proxy.toml"
    config.write_text(block("proxy.toml"))
    environment = tmp_path / "environment"
    environment.write_text("CASSETTE_PROXY_UPSTREAM_API_KEY=placeholder\n")
    here = (
        unit.replace("/usr/local/bin/cassette-proxy", str(VENV_BIN / "cassette-proxy"))
        .replace("/etc/cassette-proxy/proxy.toml", str(config))
        .replace("/etc/cassette-proxy/environment", str(environment))
    )
    path = tmp_path / "cassette-proxy.service"
    path.write_text(here)
    done = subprocess.run(  # noqa: S603 - systemd's own checker on the README's unit
        ["systemd-analyze", "verify", str(path)],  # noqa: S607 - found on PATH above
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    complaints = [line for line in done.stderr.splitlines() if path.name in line]
    assert complaints == [], done.stderr
    # The checker does see this file: a broken copy is reported.
    broken = tmp_path / "broken.service"
    broken.write_text(here.replace("Type=exec", "Type=exek"))
    done = subprocess.run(  # noqa: S603
        ["systemd-analyze", "verify", str(broken)],  # noqa: S607
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "broken.service" in done.stderr
    # Its command line is one the proxy takes.
    [command] = re.findall(r"^ExecStart=(.*)$", here, re.MULTILINE)
    settings = settings_of(command.split()[2:])
    assert settings.config == config


def _manifest() -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = yaml.safe_load(block("kubernetes"))
    pod = deployment["spec"]["template"]["spec"]
    [proxy] = [c for c in pod["containers"] if c["name"] == "cassette-proxy"]
    return pod, proxy


def test_the_kubernetes_sidecar_probes_mounts_and_keys_fit_its_arguments() -> None:
    pod, proxy = _manifest()
    args = proxy["args"]
    assert args[0] == "serve"
    settings = settings_of(args[1:])
    port = settings.port
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/_proxy/health", "port": port}
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/_proxy/ready", "port": port}
    [mount] = proxy["volumeMounts"]
    assert mount["readOnly"] is True
    assert settings.cassette is not None
    assert settings.cassette.is_relative_to(mount["mountPath"])
    assert settings.record_mode.value == "none"  # replay writes nothing: a read-only mount
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "configMap" in volume
    env = {item["name"]: item for item in proxy["env"]}
    key = env["CASSETTE_PROXY_UPSTREAM_API_KEY"]
    assert set(key) == {"name", "valueFrom"}  # never a value in the manifest
    assert set(key["valueFrom"]["secretKeyRef"]) == {"name", "key"}
    assert pod["terminationGracePeriodSeconds"] > settings.drain_delay + settings.shutdown_timeout
    [app] = [c for c in pod["containers"] if c["name"] == "app"]
    base_url = {item["name"]: item["value"] for item in app["env"]}["OPENAI_BASE_URL"]
    assert base_url == f"http://127.0.0.1:{port}/v1"


@pytest.mark.slow
async def test_the_kubernetes_sidecar_arguments_run_and_answer_its_probes(tmp_path: Path) -> None:
    """The container's arguments, run here: on loopback and a free port instead of the pod's
    addresses, with the demo cassette where the volume would be."""
    _, proxy = _manifest()
    args = [str(a) for a in proxy["args"][1:]]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = "0"
    args[args.index("--cassette") + 1] = str(DEMO)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        async with asyncio.timeout(30):
            line = (await process.stderr.readline()).decode()
        url = line.split("listening on ", 1)[1].split(" ", 1)[0]
        async with aiohttp.ClientSession() as session:
            for probe in ("livenessProbe", "readinessProbe"):
                async with session.get(url + proxy[probe]["httpGet"]["path"]) as response:
                    assert response.status == 200
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
async def test_the_logrotate_entry_rotates_a_running_proxys_log_losing_nothing(
    upstream_url: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    log = logs / "proxy.jsonl"
    async with running("--upstream", upstream_url, log_file=log) as proxy:
        process, url = proxy.process, proxy.url

        async def request() -> None:
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{url}/v1/responses/{vectors.V1_ID}/cancel") as response,
            ):
                assert response.status == 200

        await request()
        entry = (
            block("logrotate")
            .replace("/var/log/cassette-proxy/proxy.jsonl", str(log))
            .replace(
                "systemctl kill --signal=HUP cassette-proxy.service", f"kill -HUP {process.pid}"
            )
        )
        config = tmp_path / "logrotate.conf"
        config.write_text(entry)
        done = await asyncio.create_subprocess_exec(
            "logrotate", "--force", "--state", str(tmp_path / "state"), str(config),
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            _, stderr = await done.communicate()
        assert done.returncode == 0, stderr
        async with asyncio.timeout(10):
            while not log.exists():
                await asyncio.sleep(0.01)
        await request()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    [rotated] = [path for path in logs.iterdir() if path != log]
    assert re.fullmatch(r"proxy-\d{8}\.jsonl", rotated.name)  # dateext; compressed next time
    exchanges = [
        event
        for path in (rotated, log)
        for event in map(orjson.loads, path.read_bytes().splitlines())
        if event["event"] == "exchange"
    ]
    assert len(exchanges) == 2
    assert orjson.loads(log.read_bytes().splitlines()[0])["event"] == "log_reopened"
    result = CliRunner().invoke(main, ["audit", str(logs), "--format", "json"])
    assert orjson.loads(result.output)["exchanges"] == 2  # audit reads the folder, both files
