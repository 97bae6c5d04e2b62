"""Re-create ``cassettes/demo.yaml``: ``python -m tests.make_demo_cassette``.

The demo cassette is recorded by the proxy itself, in front of the project's own test upstream
(:mod:`tests.fake_upstream`, which answers with the reference's documented bodies), using the
real ``openai`` client. Its URIs are then rewritten to the default upstream, so that
``./scripts/serve`` (record mode ``none``, default upstream) replays it offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import replace
from pathlib import Path

import openai
from aiohttp.test_utils import TestServer

from cassette_proxy.serving.app import build_app
from cassette_proxy.settings import Settings
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.persist import load_cassette, save_cassette
from tests import vectors
from tests.fake_upstream import FakeUpstream

DEMO = Path(__file__).resolve().parent.parent / "cassettes" / "demo.yaml"
DEMO_IDS = (vectors.V1_ID, vectors.V2_ID, vectors.V3_ID, vectors.V4_ID)
MISSING_ID = "resp_does_not_exist_123"
HEADER = """\
# cassette-proxy demo cassette (vcrpy format, version 1).
# Recorded by cassette-proxy in front of the project's own test upstream (tests/fake_upstream.py),
# which answers with the documented cancel bodies; no real service or key was involved.
# Re-create it with: .venv/bin/python -m tests.make_demo_cassette
# Replayed by ./scripts/serve with no arguments. Recorded ids:
#   200: {ids}
#   404: {missing}
"""


async def record() -> list[Interaction]:
    upstream = TestServer(FakeUpstream().app(), host="127.0.0.1")
    await upstream.start_server()
    origin = str(upstream.make_url("")).rstrip("/")
    with tempfile.TemporaryDirectory() as work:
        recording = Path(work) / "demo.yaml"
        settings = Settings(
            upstream=origin,
            cassette=recording,
            record_mode="all",
            log_file=Path(work) / "demo.log",
        )
        proxy = TestServer(build_app(settings), host="127.0.0.1")
        await proxy.start_server()
        base_url = str(proxy.make_url("/v1"))
        async with openai.AsyncOpenAI(base_url=base_url, api_key="demo", max_retries=0) as client:
            for response_id in DEMO_IDS:
                await client.responses.cancel(response_id)
            with contextlib.suppress(openai.NotFoundError):
                await client.responses.cancel(MISSING_ID)
        await proxy.close()
        await upstream.close()
        recorded = load_cassette(recording) or []
    default = Settings().upstream_base
    for interaction in recorded:
        interaction.request.uri = interaction.request.uri.replace(origin, default)
    return [replace(i) for i in recorded]  # rebuild the cached replay form


def main() -> None:
    save_cassette(DEMO, asyncio.run(record()))
    header = HEADER.format(ids=", ".join(DEMO_IDS), missing=MISSING_ID)
    DEMO.write_text(header + DEMO.read_text())
    print(f"wrote {DEMO}")


if __name__ == "__main__":
    main()
