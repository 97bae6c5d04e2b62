"""Recorded timing a hand or a tool broke (issue 22, item 9): a NaN, an infinity, a negative or
an absurd delay replays without timing, never as a 500 or a wait without end."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from vcr.request import Request as VcrRequest

from cassette_proxy.models.http import Timing
from cassette_proxy.sse import decode_all
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.persist import load_cassette, save_cassette, timing_of
from tests.conftest import DUMMY_KEY, StartProxy
from tests.serving.test_streaming import create_body
from tests.serving.test_streaming_processes import proxy_process
from tests.stream_upstream import events

URI = "https://ai.api.cloud.yandex.net/v1/responses"


def _stream_cassette(path: Path) -> bytes:
    body = b"".join(events("resp_timed", ("one", " two", " three")))
    ends = [event.end for event in decode_all(body)]
    timing = Timing(20.0, tuple((end, 5.0 * n) for n, end in enumerate(ends)))
    request = VcrRequest("POST", URI, create_body(), {"Content-Type": "application/json"})
    headers = (("Content-Type", "text/event-stream"),)
    save_cassette(path, [Interaction(request, 200, "OK", headers, body, timing=timing)])
    return body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("headers_ms", ".nan"),
        ("headers_ms", ".inf"),
        ("headers_ms", "-.inf"),
        ("headers_ms", "-20.0"),
        ("headers_ms", "1.0e+300"),
        ("frame", ".nan"),
        ("frame", ".inf"),
        ("frame", "-5.0"),
        ("frame", "1.0e+300"),
    ],
)
async def test_malformed_recorded_timing_replays_without_it(
    start_proxy: StartProxy, tmp_path: Path, field: str, value: str
) -> None:
    cassette = tmp_path / "timed.yaml"
    body = _stream_cassette(cassette)
    text = cassette.read_text()
    if field == "headers_ms":
        broken = text.replace("headers_ms: 20.0", f"headers_ms: {value}")
    else:  # the second frame's time
        broken = re.sub(r"(frames:\n(?:.*\n){3}\s+- )5\.0", rf"\g<1>{value}", text, count=1)
    assert broken != text
    cassette.write_text(broken)
    [interaction] = load_cassette(cassette) or []
    assert interaction.timing is None  # malformed: dropped, the recording kept

    proxy = await start_proxy(
        upstream="https://ai.api.cloud.yandex.net",  # as recorded; replay never forwards
        cassette=cassette,
        record_mode="none",
        replay_timing="recorded",
        allow_playback_repeats=True,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with asyncio.timeout(10):  # a wait without end would hang here
                async with session.post(
                    proxy.url + "/v1/responses",
                    data=create_body(),
                    headers={
                        "Authorization": f"Bearer {DUMMY_KEY}",
                        "Content-Type": "application/json",
                    },
                ) as response:
                    assert response.status == 200, await response.text()
                    assert await response.read() == body
    assert [line["status"] for line in proxy.exchanges()] == [200, 200, 200]
    assert not [line for line in proxy.log_lines() if line["event"] == "internal_error"]


@pytest.mark.parametrize(
    "stored",
    [
        {"headers_ms": 12.5, "frames": [[10, 0.0], [20, 3.5]]},
        {"headers_ms": 0, "frames": []},
        {"headers_ms": 86_400_000.0, "frames": [[1, 86_400_000.0]]},  # a day: the longest kept
    ],
)
def test_sound_timing_is_kept(stored: dict[str, object]) -> None:
    timing = timing_of(stored)
    assert timing is not None
    assert timing.headers_ms == stored["headers_ms"]


@pytest.mark.parametrize(
    "stored",
    [
        {"headers_ms": float("nan")},
        {"headers_ms": 1.0, "frames": [[10, float("inf")]]},
        {"headers_ms": 1.0, "frames": [[-1, 0.0]]},
        {"headers_ms": 1.0, "frames": [[10, 0.0, 3]]},
        {"headers_ms": True},
        {"headers_ms": 86_400_001.0},
    ],
)
def test_unsound_timing_is_dropped(stored: dict[str, object]) -> None:
    assert timing_of(stored) is None


@pytest.mark.slow
async def test_a_nan_in_recorded_timing_is_no_500_in_the_real_process(tmp_path: Path) -> None:
    """``serve`` runs on uvloop, whose timers refuse a NaN (asyncio's took it): the issue's 500."""
    cassette = tmp_path / "timed.yaml"
    body = _stream_cassette(cassette)
    cassette.write_text(cassette.read_text().replace("headers_ms: 20.0", "headers_ms: .nan"))
    log = tmp_path / "log"
    async with proxy_process(
        "https://ai.api.cloud.yandex.net", log, "--cassette", str(cassette),
        "--record-mode", "none", "--replay-timing", "recorded", "--allow-playback-repeats",
    ) as proxy, aiohttp.ClientSession() as session:  # fmt: skip
        for _ in range(2):
            async with asyncio.timeout(10), session.post(
                proxy.url + "/v1/responses",
                data=create_body(),
                headers={"Authorization": f"Bearer {DUMMY_KEY}",
                         "Content-Type": "application/json"},
            ) as response:  # fmt: skip
                assert response.status == 200, await response.text()
                assert await response.read() == body
