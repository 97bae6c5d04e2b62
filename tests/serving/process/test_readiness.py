"""Liveness (/_proxy/health, with the pid) and readiness (/_proxy/ready: 503 while starting,
draining after SIGTERM, or unable to write its log)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from cassette_proxy.serving.app import READINESS
from tests import vectors
from tests.client import cancel
from tests.conftest import RunningProxy, StartProxy
from tests.processes import running
from tests.store import test_journal
from tests.store.test_journal import fill

small_disk = test_journal.small_disk  # a 1 MiB tmpfs of its own (the journal's tests' fixture)


async def _get(url: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json(), dict(response.headers)


async def test_health_reports_the_process_and_is_live_while_not_ready(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    status, health, _ = await _get(proxy.url + "/_proxy/health")
    assert status == 200
    assert health["pid"] == os.getpid()
    # Built but never announced as listening (serve marks it): not ready, still alive.
    status, body, headers = await _get(proxy.url + "/_proxy/ready")
    assert status == 503
    assert headers["X-Proxy-Source"] == "proxy"
    assert headers["x-should-retry"] == "true"
    assert body["error"]["code"] == "proxy_not_ready"
    assert "starting" in body["error"]["message"]
    _ready(proxy)
    status, body, _ = await _get(proxy.url + "/_proxy/ready")
    assert (status, body["status"]) == (200, "ready")
    assert proxy.log_lines() == []  # probes are not logged


def _ready(proxy: RunningProxy) -> None:
    proxy.server.app[READINESS].ready()


async def test_a_log_that_cannot_be_written_makes_the_proxy_unready(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(log_file=Path("/dev/full"))  # every write: ENOSPC
    _ready(proxy)
    assert (await cancel(proxy, vectors.V1_ID)).status == 200  # served, but not audited
    status, body, _ = await _get(proxy.url + "/_proxy/ready")
    assert status == 503
    message = body["error"]["message"]
    assert "cannot write its log '/dev/full' (--log-file)" in message
    assert "No space left on device" in message


@pytest.mark.slow
async def test_sigterm_fails_readiness_first_and_serves_through_the_drain_delay(
    upstream_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "proxy.jsonl"
    async with running("--upstream", upstream_url, "--drain-delay", "1.5", log_file=log) as proxy:
        process, url = proxy.process, proxy.url
        assert (await _get(url + "/_proxy/ready"))[0] == 200
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        async with asyncio.timeout(5):
            while (await _get(url + "/_proxy/ready"))[0] != 503:
                await asyncio.sleep(0.02)
        _, body, _ = await _get(url + "/_proxy/ready")
        assert "draining after SIGTERM" in body["error"]["message"]
        assert (await _get(url + "/_proxy/health"))[0] == 200  # alive while draining
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/v1/responses/{vectors.V1_ID}/cancel") as response,
        ):
            assert response.status == 200  # still served
        async with asyncio.timeout(30):
            assert await process.wait() == 0
        assert time.monotonic() - stopped >= 1.4  # it waited the drain delay out
    events = [orjson.loads(line)["event"] for line in log.read_bytes().splitlines()]
    assert events.index("draining") < events.index("exchange") < events.index("stopping")


async def test_readiness_comes_back_once_the_log_can_be_written_again(
    start_proxy: StartProxy, small_disk: Path
) -> None:
    """A real 1 MiB tmpfs filled to the last byte: the log fails, the proxy is unready; once
    there is room, the next probe writes log_recovered and the proxy is ready again."""
    log = small_disk / "proxy.jsonl"
    proxy = await start_proxy(log_file=log)
    _ready(proxy)
    filler = fill(small_disk, leave=0)
    assert (await cancel(proxy, vectors.V1_ID)).status == 200  # its line cannot be written
    status, body, _ = await _get(proxy.url + "/_proxy/ready")
    assert status == 503
    assert "No space left on device" in body["error"]["message"]
    filler.unlink()
    status, _, _ = await _get(proxy.url + "/_proxy/ready")
    assert status == 200
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    [recovered] = [e for e in events if e["event"] == "log_recovered"]
    assert recovered["detail"]["events_lost"] >= 1
