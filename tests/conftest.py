"""Shared fixtures: a fake upstream on loopback and proxies in front of it.

Everything runs for real: the upstream is an aiohttp server on 127.0.0.1, the proxy is the real
application on another port, and clients (the ``openai`` client, aiohttp) talk TCP to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from cassette_proxy.serving.app import build_app
from cassette_proxy.serving.observers.log import AuditLog
from cassette_proxy.serving.process.server import RUNNER_OPTIONS, ProxyRunner
from cassette_proxy.settings import Settings
from tests.fake_upstream import FakeUpstream
from tests.raw_upstream import RawUpstream, raw_upstream_server

pytest_plugins = ["pytester"]

# tests/examples is a folder for users to copy; one of its tests fails on purpose.
# tests/test_pytest_plugin.py runs it in a sandbox and checks both outcomes.
collect_ignore = ["examples"]

DUMMY_KEY = "sk-dummy-test-key-0000000000000000"


@dataclass
class RunningProxy:
    server: TestServer
    settings: Settings
    log_path: Path

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [orjson.loads(line) for line in self.log_path.read_bytes().splitlines()]

    def exchanges(self) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line["event"] == "exchange"]

    async def stop(self) -> None:
        await self.server.close()


StartProxy = Callable[..., Awaitable[RunningProxy]]


class ProxyTestServer(TestServer):
    """aiohttp's test server, running the application as ``serve`` does (:class:`ProxyRunner`:
    its connection handler, limits and dispatch), not with a plain ``AppRunner``."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return ProxyRunner(self.app, **kwargs)


@pytest.fixture
def fake_upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
async def upstream_server(
    fake_upstream: FakeUpstream, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> TestServer:
    return await aiohttp_server(fake_upstream.app(), host="127.0.0.1")


@pytest.fixture
def upstream_url(upstream_server: TestServer) -> str:
    return str(upstream_server.make_url("")).rstrip("/")


@pytest.fixture
async def start_proxy(upstream_url: str, tmp_path: Path) -> AsyncIterator[StartProxy]:
    """Start a proxy in front of the fake upstream; keyword arguments are Settings fields."""
    started: list[RunningProxy] = []

    async def start(**overrides: Any) -> RunningProxy:
        log_path = tmp_path / f"proxy-{len(started)}.log"
        settings = Settings(**{"upstream": upstream_url, "log_file": log_path, **overrides})
        app: web.Application = build_app(settings, audit_log=AuditLog(settings.log_file))
        server = ProxyTestServer(app, host="127.0.0.1")
        await server.start_server(**RUNNER_OPTIONS)
        running = RunningProxy(server, settings, log_path)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.server.close()


@pytest.fixture
async def raw_upstream() -> AsyncIterator[RawUpstream]:
    """An upstream that sends what a real server would not (tests/raw_upstream.py)."""
    async with raw_upstream_server() as upstream:
        yield upstream
