"""The traffic behind the README's "Auditing traffic" examples, made for real on loopback.

    .venv/bin/python docs/audit_example.py OUT_DIR [--minutes N]

A stand-in upstream answers cancels (most 200s, a few 404s and 409s, a slow tail); the real
``cassette-proxy serve`` sits in front of it as a sidecar, logging to OUT_DIR/sidecar.log, while
four clients cancel about twenty responses a second. Midway the upstream goes down for a minute
(``upstream_unreachable``), and after it comes back it has "deployed" a new field and a new
status value (drift). A second proxy replays ``cassettes/demo.yaml`` (record mode ``none``) to
OUT_DIR/replay.log: hits and a few misses (``cassette_miss``). Everything is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from fast_upstream import BODY  # noqa: E402

DEMO_IDS = (
    "resp_68a3f0c2d41c8190b5e6f3a2c9d7e1f00a1b2c3d4e5f6a7b",
    "resp_67cb71b351908190a308f3859487620d06981a8637e6bc44",
)
RATE = 20  # cancels a second, over all clients


class Upstream:
    def __init__(self) -> None:
        self.deployed = False  # after the outage: a new field and a new status value
        self.rng = random.Random(11)  # noqa: S311 - traffic, not secrets

    async def cancel(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.rng.lognormvariate(-4.2, 0.6))  # ~15 ms, a long tail
        response_id = request.match_info["response_id"]
        if response_id.startswith("resp_gone"):
            error = {"message": f"Response with id '{response_id}' not found.",
                     "type": "invalid_request_error", "param": None, "code": None}  # fmt: skip
            return web.json_response({"error": error}, status=404)
        if response_id.startswith("resp_busy"):
            error = {"message": "Cannot cancel a response that is completing.", "param": None,
                     "type": "invalid_request_error", "code": "conflict"}  # fmt: skip
            return web.json_response({"error": error}, status=409)
        body = BODY
        if self.deployed and self.rng.random() < 0.3:
            body = orjson.dumps(orjson.loads(BODY) | {"status": "paused", "priority": 2})
        return web.Response(body=body, content_type="application/json")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def serve(upstream: Upstream, port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/v1/responses/{response_id}/cancel", upstream.cancel)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def proxy(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", str(port), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{url}/_proxy/health") as response:
                    if response.status == 200:
                        return process, url
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"the proxy on {url} did not start")


async def client(url: str, ids: list[str], until: float, rate: float) -> None:
    rng = random.Random(url + str(len(ids)))  # noqa: S311 - traffic, not secrets
    headers = {
        "Authorization": "Bearer example-client-key-1234",
        "Content-Type": "application/json",
    }
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < until:
            started = time.monotonic()
            path = f"/v1/responses/{rng.choice(ids)}/cancel"
            async with session.post(url + path, headers=headers) as response:
                await response.read()
            await asyncio.sleep(max(0.0, rng.expovariate(rate) - (time.monotonic() - started)))


async def main(out: Path, minutes: float) -> None:
    upstream, port = Upstream(), free_port()
    runner = await serve(upstream, port)
    sidecar, sidecar_url = await proxy(
        "--upstream", f"http://127.0.0.1:{port}", "--log-file", str(out / "sidecar.log")
    )
    replay, replay_url = await proxy(
        "--cassette", "cassettes/demo.yaml", "--record-mode", "none",
        "--allow-playback-repeats", "--log-file", str(out / "replay.log"),
    )  # fmt: skip
    ids = [f"resp_{n:04d}" for n in range(200)] + ["resp_gone_1", "resp_busy_1"]
    until = time.monotonic() + minutes * 60
    clients = [asyncio.create_task(client(sidecar_url, ids, until, RATE / 4)) for _ in range(4)]
    clients.append(
        asyncio.create_task(client(replay_url, [*DEMO_IDS, "resp_unrecorded"], until, 0.5))
    )
    await asyncio.sleep(minutes * 60 * 0.4)
    await runner.cleanup()  # the upstream goes down ...
    await asyncio.sleep(60)
    upstream.deployed = True
    runner = await serve(upstream, port)  # ... and comes back, changed
    await asyncio.gather(*clients)
    for process in (sidecar, replay):
        process.send_signal(signal.SIGTERM)
        await process.wait()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=5.0)
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    for name in ("sidecar.log", "replay.log"):
        (arguments.out / name).unlink(missing_ok=True)
    asyncio.run(main(arguments.out, arguments.minutes))
