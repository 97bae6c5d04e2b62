"""The bundled demo cassette replays offline with ./scripts/serve's defaults."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from aiohttp.test_utils import TestServer

from cassette_proxy.serving.app import build_app
from cassette_proxy.settings import Settings
from tests.make_demo_cassette import DEMO, DEMO_IDS, MISSING_ID


async def test_demo_cassette_replays_every_recorded_call(tmp_path: Path) -> None:
    # What ./scripts/serve runs with no arguments: the default upstream, never reached.
    settings = Settings(cassette=DEMO, record_mode="none", log_file=tmp_path / "demo.log")
    assert settings.upstream_base == "https://ai.api.cloud.yandex.net"
    before = DEMO.read_bytes()
    server = TestServer(build_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        base_url = str(server.make_url("/v1"))
        async with openai.AsyncOpenAI(base_url=base_url, api_key="any", max_retries=0) as client:
            for response_id in DEMO_IDS:
                raw = await client.responses.with_raw_response.cancel(response_id)
                assert raw.parse().id == response_id
                assert raw.headers["x-proxy-source"] == "cassette"
                assert raw.headers["x-proxy-validation"] == "passed"
            with pytest.raises(openai.NotFoundError):
                await client.responses.cancel(MISSING_ID)
    finally:
        await server.close()
    assert DEMO.read_bytes() == before
