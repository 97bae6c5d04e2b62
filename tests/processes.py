"""The proxy as a real process, for tests about processes: started on a free port, its URL read
from its ``listening`` event, killed if a test leaves it running."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.conftest import DUMMY_KEY


class ProxyProcess:
    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    async def cancel(self, response_id: str) -> tuple[int, dict[str, str], bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/v1/responses/{response_id}/cancel",
                headers={"Authorization": f"Bearer {DUMMY_KEY}"},
            ) as response,
        ):
            return response.status, dict(response.headers), await response.read()


async def read_events(process: asyncio.subprocess.Process) -> AsyncIterator[dict[str, Any]]:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        yield orjson.loads(line)


def listening_url(log_file: Path) -> str | None:
    lines = log_file.read_bytes().splitlines() if log_file.exists() else []
    events = (orjson.loads(line) for line in lines)
    return next((e["detail"]["url"] for e in events if e["event"] == "listening"), None)


@asynccontextmanager
async def running(
    *args: str, env: dict[str, str] | None = None, log_file: Path | None = None
) -> AsyncIterator[ProxyProcess]:
    """The proxy as a process. It logs to stdout, read by the test, or to ``log_file`` (for
    runs that log more than a pipe holds while the test is not reading it)."""
    if log_file is not None:
        args = (*args, "--log-file", str(log_file))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cassette_proxy",
        "serve",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        url = None
        async with asyncio.timeout(20):
            if log_file is not None:
                while url is None and process.returncode is None:
                    await asyncio.sleep(0.02)
                    url = listening_url(log_file)
            else:
                async for event in read_events(process):
                    if event["event"] == "listening":
                        url = event["detail"]["url"]
                        break
        assert url is not None, await process.stderr.read()  # type: ignore[union-attr]
        yield ProxyProcess(process, url)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def refused_start(*args: str, seconds: float = 30) -> tuple[int | None, bytes, bytes]:
    """Run ``cassette-proxy serve --port 0 ARGS`` that is expected to stop at start-up."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(seconds):
        stdout, stderr = await process.communicate()
    return process.returncode, stdout, stderr
