"""Record modes, FIFO playback, misses and durability, driven through the real proxy."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from multidict import CIMultiDict
from vcr.request import Request as VcrRequest

from cassette_proxy.cassette import Interaction
from cassette_proxy.errors import CassetteFileError, CassetteLocked
from cassette_proxy.journal import CassetteLock, journal_path
from cassette_proxy.persist import load_cassette
from cassette_proxy.recorder import Recorder
from cassette_proxy.settings import Settings
from tests import vectors
from tests.client import cancel
from tests.conftest import DUMMY_KEY, StartProxy
from tests.fake_upstream import FakeUpstream


def interactions(path: Path) -> list[dict[str, object]]:
    data = yaml.safe_load(path.read_text())
    assert data["version"] == 1
    result: list[dict[str, object]] = data["interactions"]
    return result


async def test_once_records_a_new_cassette_then_replays_it_offline(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path, upstream_url: str
) -> None:
    cassette = tmp_path / "cassettes" / "cancel.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")

    def calls(base_url: str) -> tuple[str, str]:
        client = openai.OpenAI(base_url=base_url, api_key=DUMMY_KEY, max_retries=0)
        with client:
            found = client.responses.cancel(vectors.V3_ID)
            with pytest.raises(openai.NotFoundError) as missing:
                client.responses.cancel("resp_does_not_exist_123")
        return found.model_dump_json(), missing.value.message

    recorded = await asyncio.to_thread(calls, recording.base_url)
    assert journal_path(cassette).exists()  # durable before the proxy stops
    await recording.stop()
    assert not journal_path(cassette).exists()
    stored = interactions(cassette)
    assert [i["request"]["uri"] for i in stored] == [  # type: ignore[index]
        f"{upstream_url}/v1/responses/{vectors.V3_ID}/cancel",
        f"{upstream_url}/v1/responses/resp_does_not_exist_123/cancel",
    ]
    assert DUMMY_KEY not in cassette.read_text()
    assert "s3cr3t-cookie-value" not in cassette.read_text()
    assert len(fake_upstream.received) == 2

    replaying = await start_proxy(cassette=cassette, record_mode="once")
    replayed = await asyncio.to_thread(calls, replaying.base_url)
    assert replayed == recorded
    assert len(fake_upstream.received) == 2  # nothing reached the upstream
    assert {line["source"] for line in replaying.exchanges()} == {"cassette"}
    await replaying.stop()
    assert len(interactions(cassette)) == 2  # replay never rewrites the file


async def test_replay_is_deterministic_and_fifo(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    cassette = tmp_path / "fifo.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="all")
    first = [await cancel(recording, vectors.V1_ID) for _ in range(3)]
    await recording.stop()
    recorded_ids = [r.headers["x-request-id"] for r in first]
    assert len(set(recorded_ids)) == 3

    answers = []
    for _ in range(2):
        replaying = await start_proxy(cassette=cassette, record_mode="none")
        answers.append([await cancel(replaying, vectors.V1_ID) for _ in range(3)])
        miss = await cancel(replaying, vectors.V1_ID)
        assert miss.status == 501
        await replaying.stop()
    for run in answers:
        assert [r.headers["x-request-id"] for r in run] == recorded_ids
    for one, other in zip(answers[0], answers[1], strict=True):
        assert one.status == other.status
        assert dict(one.headers) == dict(other.headers)
        assert one.body == other.body
    assert len(fake_upstream.received) == 3


async def test_concurrent_replay_serves_each_recording_once(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "concurrent.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="all")
    for _ in range(20):
        await cancel(recording, vectors.V4_ID)
    await recording.stop()
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    answers = await asyncio.gather(*(cancel(replaying, vectors.V4_ID) for _ in range(20)))
    assert sorted(r.headers["x-request-id"] for r in answers) == sorted(
        f"req_{n:032x}" for n in range(1, 21)
    )


async def test_allow_playback_repeats_serves_the_recordings_again(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "repeat.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="all")
    await cancel(recording, vectors.V1_ID)
    await cancel(recording, vectors.V1_ID)
    await recording.stop()
    replaying = await start_proxy(
        cassette=cassette, record_mode="none", allow_playback_repeats=True
    )
    answers = [await cancel(replaying, vectors.V1_ID) for _ in range(5)]
    assert [r.status for r in answers] == [200] * 5
    assert [r.headers["x-request-id"][-1] for r in answers] == ["1", "2", "1", "2", "1"]


async def test_miss_is_501_with_a_diagnosis_and_is_not_retried(
    start_proxy: StartProxy, tmp_path: Path, upstream_url: str
) -> None:
    cassette = tmp_path / "miss.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await cancel(recording, vectors.V1_ID)
    await recording.stop()
    replaying = await start_proxy(cassette=cassette, record_mode="once")
    client = openai.AsyncOpenAI(base_url=replaying.base_url, api_key=DUMMY_KEY, max_retries=2)
    async with client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.responses.cancel("resp_not_recorded")
    error = caught.value
    assert error.status_code == 501
    assert not isinstance(error, openai.NotFoundError)
    assert error.response.headers["x-should-retry"] == "false"
    assert error.response.headers["x-proxy-source"] == "proxy"
    assert error.type == "cassette_miss"
    message = error.message
    assert f"POST {upstream_url}/v1/responses/resp_not_recorded/cancel" in message
    assert str(cassette) in message
    assert "'once'" in message
    assert f"{vectors.V1_ID}/cancel" in message  # the closest recorded interaction
    assert "path:" in message  # ... and the matcher that failed, in vcrpy's words
    assert "--record-mode new_episodes" in message
    assert len(replaying.exchanges()) == 1  # the client did not retry


async def test_none_mode_without_a_cassette_misses_everything(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    proxy = await start_proxy(cassette=tmp_path / "absent.yaml", record_mode="none")
    response = await cancel(proxy, vectors.V1_ID)
    assert response.status == 501
    assert fake_upstream.received == []
    await proxy.stop()
    assert not (tmp_path / "absent.yaml").exists()


async def test_new_episodes_replays_hits_and_records_misses(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    cassette = tmp_path / "episodes.yaml"
    first = await start_proxy(cassette=cassette, record_mode="once")
    await cancel(first, vectors.V1_ID)
    await first.stop()
    second = await start_proxy(cassette=cassette, record_mode="new_episodes")
    hit = await cancel(second, vectors.V1_ID)
    new = await cancel(second, vectors.V2_ID)
    await second.stop()
    assert hit.headers["X-Proxy-Source"] == "cassette"
    assert new.headers["X-Proxy-Source"] == "upstream"
    assert len(fake_upstream.received) == 2
    uris = [str(i["request"]["uri"]) for i in interactions(cassette)]  # type: ignore[index]
    assert [u.split("/")[-2] for u in uris] == [vectors.V1_ID, vectors.V2_ID]


async def test_all_mode_replaces_rerecorded_interactions_and_keeps_the_rest(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    cassette = tmp_path / "all.yaml"
    first = await start_proxy(cassette=cassette, record_mode="all")
    await cancel(first, vectors.V1_ID)
    await cancel(first, vectors.V2_ID)
    await first.stop()
    second = await start_proxy(cassette=cassette, record_mode="all")
    again = await cancel(second, vectors.V1_ID)
    assert again.headers["X-Proxy-Source"] == "upstream"  # all never replays
    await second.stop()
    stored = interactions(cassette)
    ids = [str(i["request"]["uri"]).split("/")[-2] for i in stored]  # type: ignore[index]
    assert ids == [vectors.V2_ID, vectors.V1_ID]
    request_ids = [
        CIMultiDict(i["response"]["headers"])["x-request-id"]  # type: ignore[index]
        for i in stored
    ]
    assert request_ids[1] == ["req_00000000000000000000000000000003"]


@pytest.mark.parametrize("response_id", ["resp_gzip_1", "resp_chunked_1"])
async def test_gzip_is_stored_decoded_and_replays_to_the_openai_client(
    start_proxy: StartProxy, tmp_path: Path, response_id: str
) -> None:
    cassette = tmp_path / "gzip.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    async with openai.AsyncOpenAI(
        base_url=recording.base_url, api_key=DUMMY_KEY, max_retries=0
    ) as client:
        live = await client.responses.cancel(response_id)
    await recording.stop()
    [stored] = interactions(cassette)
    headers = {k.lower() for k in stored["response"]["headers"]}  # type: ignore[index]
    assert "content-encoding" not in headers
    assert "transfer-encoding" not in headers
    assert stored["response"]["body"]["string"].startswith('{"id":"resp_68a3')  # type: ignore[index]
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    async with openai.AsyncOpenAI(
        base_url=replaying.base_url, api_key=DUMMY_KEY, max_retries=0
    ) as client:
        replayed = await client.responses.cancel(response_id)
    assert replayed == live
    assert replayed.id == vectors.V1_ID


async def test_journal_left_by_a_crash_is_folded_in_on_the_next_start(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "crash.yaml"
    first = await start_proxy(cassette=cassette, record_mode="once")
    await cancel(first, vectors.V1_ID)
    await cancel(first, vectors.V2_ID)
    # Simulate the crash: keep the journal as a killed process would leave it.
    crashed = journal_path(cassette).read_bytes()
    await first.stop()
    cassette.unlink()
    journal_path(cassette).write_bytes(crashed + b'{"request": {"method": "PO')  # torn line
    second = await start_proxy(cassette=cassette, record_mode="none")
    assert (await cancel(second, vectors.V2_ID)).headers["X-Proxy-Source"] == "cassette"
    assert not journal_path(cassette).exists()
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert len(loaded) == 2
    opened = next(e for e in second.log_lines() if e["event"] == "cassette_opened")
    assert opened["detail"]["recovered_from_journal"] == 2


async def test_two_proxies_cannot_record_one_cassette(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "shared.yaml"
    first = await start_proxy(cassette=cassette, record_mode="new_episodes")
    with pytest.raises(CassetteFileError, match="is being recorded by process") as refused:
        await start_proxy(cassette=cassette, record_mode="new_episodes")
    assert str(os.getpid()) in str(refused.value)
    # Replaying beside a recording proxy is fine, and leaves its journal alone.
    await cancel(first, vectors.V1_ID)
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    assert journal_path(cassette).exists()
    await replaying.stop()
    await first.stop()
    assert len(interactions(cassette)) == 1
    second = await start_proxy(cassette=cassette, record_mode="new_episodes")  # lock released
    await second.stop()


def test_a_locked_cassette_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    cassette = tmp_path / "big.yaml"
    cassette.write_text("interactions: [ {")  # would fail to parse, if it were parsed
    holder = CassetteLock(cassette)
    assert holder.acquire()
    try:
        with pytest.raises(CassetteLocked, match="is being recorded by process"):
            Recorder(Settings(cassette=cassette, record_mode="all"))
    finally:
        holder.release()


def test_an_unwritable_cassette_folder_stops_start_up(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    with pytest.raises(CassetteFileError, match="cannot create"):
        Recorder(Settings(cassette=blocked / "tape.yaml", record_mode="once"))


async def test_non_utf8_header_bytes_are_recorded_and_logged_not_a_500(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "latin1.yaml"
    proxy = await start_proxy(cassette=cassette, record_mode="once")
    host, port = proxy.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /v1/responses/{vectors.V1_ID}/cancel HTTP/1.1\r\nHost: x\r\n".encode()
        + b"Authorization: Bearer t\r\nX-Name: caf\xe9\r\nContent-Length: 0\r\n"
        + b"Connection: close\r\n\r\n"
    )
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    await proxy.stop()
    [line] = proxy.exchanges()
    assert line["request"]["headers"]["x-name"] == "caf\ufffd"
    assert len(interactions(cassette)) == 1


def test_a_body_in_a_coding_the_proxy_cannot_decode_keeps_its_label() -> None:
    brotli = Interaction(
        VcrRequest("POST", "https://h/v1/responses/x/cancel", b"", {}),
        200,
        "OK",
        (("Content-Encoding", "br"), ("Content-Type", "application/json")),
        b"\x8b\x03\x80{}\x03",
    )
    assert brotli.replay.headers["Content-Encoding"] == "br"


async def _cancel_with_openai(base_url: str, response_id: str, flavour: str) -> dict[str, Any]:
    """One cancel with the real openai client; the sync one runs in a thread, off this loop."""
    if flavour == "sync":

        def call() -> dict[str, Any]:
            with openai.OpenAI(base_url=base_url, api_key=DUMMY_KEY, max_retries=0) as client:
                return client.responses.cancel(response_id).model_dump()

        return await asyncio.to_thread(call)
    async with openai.AsyncOpenAI(base_url=base_url, api_key=DUMMY_KEY, max_retries=0) as client:
        return (await client.responses.cancel(response_id)).model_dump()


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("mode", ["once", "new_episodes", "all"])
async def test_the_openai_client_records_in_every_mode_and_replays_the_same(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path, mode: str, flavour: str
) -> None:
    cassette = tmp_path / "tape.yaml"
    recording = await start_proxy(cassette=cassette, record_mode=mode)
    recorded = await _cancel_with_openai(recording.base_url, vectors.V1_ID, flavour)
    await recording.stop()
    assert recorded["status"] == "cancelled"
    assert fake_upstream.cancels == 1
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    replayed = await _cancel_with_openai(replaying.base_url, vectors.V1_ID, flavour)
    assert replayed == recorded
    assert fake_upstream.cancels == 1  # served from the cassette
    assert [e["source"] for e in replaying.exchanges()] == ["cassette"]
