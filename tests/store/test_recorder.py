"""Record modes, FIFO playback, misses and durability, driven through the real proxy."""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
from pathlib import Path
from typing import Any

import hypothesis
import openai
import pytest
import yaml
from hypothesis import strategies as st
from multidict import CIMultiDict
from vcr.request import Request as VcrRequest
from yarl import URL

from cassette_proxy.errors import CassetteFileError, CassetteLocked, RecordingFailed
from cassette_proxy.redact import redact_path
from cassette_proxy.settings import Settings
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.journal import CassetteLock, journal_path
from cassette_proxy.store.persist import load_cassette, save_cassette
from cassette_proxy.store.recorder import Recorder
from cassette_proxy.tools.check import redact_cassette
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
        client = openai.OpenAI(
            base_url=base_url, api_key=DUMMY_KEY, max_retries=0, project=vectors.FOLDER
        )
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


async def test_a_miss_whose_recordings_were_all_played_suggests_what_helps(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The cassette answers this request, once: serving it again, or recording one more, helps;
    re-recording the cassette is not what the reader needs."""
    cassette = tmp_path / "once.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await cancel(recording, vectors.V1_ID)
    await recording.stop()
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    assert (await cancel(replaying, vectors.V1_ID)).status == 200
    spent = await cancel(replaying, vectors.V1_ID)
    assert spent.status == 501
    message = spent.error()["message"]
    assert "matches, but all 1 recorded interaction(s) for it were already played" in message
    assert "(use --allow-playback-repeats to serve them again)" in message
    assert message.endswith(
        "To record one more interaction for it instead, run the proxy with --record-mode "
        "new_episodes (keeps what is recorded and adds the new one)."
    ), message
    assert "re-record" not in message
    assert "--record-mode new_episodes (keeps what is recorded) or all" not in message
    # ... and it does: new_episodes records the second call, and a replay then answers both.
    more = await start_proxy(cassette=cassette, record_mode="new_episodes")
    for _ in range(2):
        assert (await cancel(more, vectors.V1_ID)).status == 200
    await more.stop()
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    for _ in range(2):
        assert (await cancel(replaying, vectors.V1_ID)).status == 200


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
        base_url=recording.base_url, api_key=DUMMY_KEY, max_retries=0, project=vectors.FOLDER
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
        base_url=replaying.base_url, api_key=DUMMY_KEY, max_retries=0, project=vectors.FOLDER
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
    last_record = crashed.splitlines()[-1]
    torn = last_record[: len(last_record) // 2]  # killed mid-write of a third record
    journal_path(cassette).write_bytes(crashed + torn)
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
    """One cancel with the real openai client, configured as Yandex documents (its folder as
    ``project``); the sync one runs in a thread, off this loop."""
    options: dict[str, Any] = {
        "base_url": base_url,
        "api_key": DUMMY_KEY,
        "max_retries": 0,
        "project": vectors.FOLDER,
    }
    if flavour == "sync":

        def call() -> dict[str, Any]:
            with openai.OpenAI(**options) as client:
                return client.responses.cancel(response_id).model_dump()

        return await asyncio.to_thread(call)
    async with openai.AsyncOpenAI(**options) as client:
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


async def test_a_symlink_to_a_cassette_being_recorded_is_refused_and_saves_keep_links(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.yaml"
    link = tmp_path / "link.yaml"
    link.symlink_to(cassette)
    first = await start_proxy(cassette=link, record_mode="new_episodes")
    with pytest.raises(CassetteLocked, match="is being recorded by process"):
        await start_proxy(cassette=cassette, record_mode="new_episodes")
    await cancel(first, vectors.V1_ID)
    await first.stop()
    assert link.is_symlink()  # the save wrote the target, through the link
    assert len(interactions(cassette)) == 1
    second = await start_proxy(cassette=cassette, record_mode="new_episodes")
    with pytest.raises(CassetteLocked):
        await start_proxy(cassette=link, record_mode="all")
    await second.stop()


def clear_text_cassette(path: Path) -> None:
    """A cassette recorded before redaction existed: a key in clear text."""
    leaked = Interaction(
        VcrRequest(
            "POST",
            "https://h/v1/responses/resp_old/cancel",
            b"",
            {"Authorization": f"Bearer {LEAKED_KEY}"},
        ),
        404,
        "Not Found",
        (),
        b"{}",
    )
    save_cassette(path, [leaked])


LEAKED_KEY = "sk-" + "proj-Qw3rTy8uI0oP2aS4dF6gH8jK1lZ3xC5vB7nM9q"


async def test_a_cassette_redacted_while_the_proxy_records_stays_redacted(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "leaky.yaml"
    clear_text_cassette(cassette)
    proxy = await start_proxy(cassette=cassette, record_mode="new_episodes")
    await cancel(proxy, vectors.V1_ID)
    assert redact_cassette(cassette).secrets == 1  # mid-run
    await cancel(proxy, vectors.V2_ID)
    await proxy.stop()
    assert LEAKED_KEY not in cassette.read_text()
    ids = [str(i["request"]["uri"]).split("/")[-2] for i in interactions(cassette)]  # type: ignore[index]
    assert ids == ["resp_old", vectors.V1_ID, vectors.V2_ID]


@pytest.mark.parametrize("mode", ["new_episodes", "all"])
async def test_a_hand_edit_made_while_the_proxy_records_is_kept(
    start_proxy: StartProxy, tmp_path: Path, mode: str
) -> None:
    cassette = tmp_path / "edited.yaml"
    first = await start_proxy(cassette=cassette, record_mode="once")
    for response_id in (vectors.V1_ID, vectors.V2_ID, vectors.V3_ID):
        await cancel(first, response_id)
    await first.stop()
    proxy = await start_proxy(cassette=cassette, record_mode=mode)
    # Mid-run, by hand: the V2 interaction is removed, and V1's recorded reason reworded.
    text = yaml.safe_load(cassette.read_text())
    del text["interactions"][1]
    text["interactions"][0]["response"]["status"]["message"] = "Edited by hand"
    cassette.write_text(yaml.safe_dump(text))
    await cancel(proxy, vectors.V4_ID)
    if mode == "all":
        await cancel(proxy, vectors.V3_ID)  # re-recorded: replaces the file's V3
    await proxy.stop()
    stored = interactions(cassette)
    ids = [str(i["request"]["uri"]).split("/")[-2] for i in stored]  # type: ignore[index]
    if mode == "all":
        assert ids == [vectors.V1_ID, vectors.V4_ID, vectors.V3_ID]
    else:
        assert ids == [vectors.V1_ID, vectors.V3_ID, vectors.V4_ID]
    assert stored[0]["response"]["status"]["message"] == "Edited by hand"  # type: ignore[index]


async def test_an_edit_that_breaks_the_cassette_keeps_the_journal_and_says_so(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "broken.yaml"
    clear_text_cassette(cassette)
    proxy = await start_proxy(cassette=cassette, record_mode="new_episodes")
    await cancel(proxy, vectors.V1_ID)
    cassette.write_text("interactions: [ {")  # a bad edit, mid-run
    with pytest.raises(CassetteFileError) as refused:
        await proxy.stop()
    message = str(refused.value)
    assert "\n" not in message
    assert "not a vcrpy cassette" in message
    assert f"1 interaction recorded in this run stay in {str(journal_path(cassette))!r}" in message
    assert cassette.read_text() == "interactions: [ {"
    clear_text_cassette(cassette)  # fixed
    replaying = await start_proxy(cassette=cassette, record_mode="none")
    assert (await cancel(replaying, vectors.V1_ID)).headers["X-Proxy-Source"] == "cassette"
    assert not journal_path(cassette).exists()


@pytest.mark.slow
async def test_misses_in_a_big_cassette_do_not_hold_up_other_clients(
    start_proxy: StartProxy, tmp_path: Path, upstream_url: str
) -> None:
    """The issue's measurement: clients sending misses took others' hits from 1 ms to 594 ms."""
    cassette = tmp_path / "big.json"
    save_cassette(
        cassette,
        [
            Interaction(
                VcrRequest("POST", f"{upstream_url}/v1/responses/resp_{n}/cancel", b"", {}),
                404,
                "Not Found",
                (("Content-Type", "application/json"),),
                b"{}",
            )
            for n in range(30_000)
        ],
    )
    proxy = await start_proxy(cassette=cassette, record_mode="none", allow_playback_repeats=True)
    numbers = itertools.count()

    async def hit_seconds() -> float:
        started = time.perf_counter()
        answer = await cancel(proxy, f"resp_{next(numbers)}")
        assert answer.status == 404
        return time.perf_counter() - started

    async def hits_beside(others: str, status: int) -> float:
        """The median time of 40 hits while four other clients send ``others``."""
        done = asyncio.Event()
        sent = 0

        async def send() -> None:
            nonlocal sent
            while not done.is_set() and sent < 2_000:  # bounded, whatever happens
                assert (await cancel(proxy, f"{others}{next(numbers)}")).status == status
                sent += 1

        senders = [asyncio.ensure_future(send()) for _ in range(4)]
        await asyncio.sleep(0.05)
        median = statistics.median([await hit_seconds() for _ in range(40)])
        done.set()
        await asyncio.gather(*senders)
        assert sent > 40  # the others really were sent while the hits were timed
        return median

    # The same load both times, but for what the others send: hits, or misses.
    beside_hits = await hits_beside("resp_", 404)
    beside_misses = await hits_beside("resp_miss_", 501)
    assert beside_misses < 6 * beside_hits, (
        f"a hit took {beside_hits * 1e3:.1f} ms beside other hits, "
        f"{beside_misses * 1e3:.1f} ms beside misses"
    )


@pytest.mark.parametrize(
    "upstream", ["http://127.0.0.1:9", "https://api.example.com:443/prefix", "http://h:8080/a/b/"]
)
def test_a_lookup_reads_the_uri_as_the_upstream_url_would(tmp_path: Path, upstream: str) -> None:
    """The lookup joins the upstream and the raw path as strings; yarl, which builds the request
    actually sent (and recorded), must read the same URI from them, whatever the path holds."""
    recorder = Recorder(Settings(cassette=tmp_path / "c.yaml", upstream=upstream))
    try:
        base = recorder.upstream

        @hypothesis.settings(max_examples=400, deadline=None)
        @hypothesis.given(st.lists(st.sampled_from([*"/?#&=;%.aZ9-_~:@!$'()*+, ", "%2F", "é"])))
        def check(parts: list[str]) -> None:
            raw = "/" + "".join(parts)
            got = recorder.lookup("POST", raw, b"")
            url = URL(base + raw, encoded=True)
            assert got.uri == str(url.origin()) + redact_path(url.raw_path_qs)

        check()
    finally:
        recorder.close()


async def test_a_json_answer_replayed_at_its_recorded_time_keeps_its_framing(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """``--replay-timing recorded`` waits the recorded time to headers, then sends a one-frame
    body as it was: in one write, with its Content-Length (not chunked); the log says how long
    it waited on purpose."""
    fake_upstream.slow_seconds = 0.3
    cassette = tmp_path / "slow.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    assert (await cancel(recording, "resp_slow_1")).status == 200
    await recording.stop()

    replaying = await start_proxy(cassette=cassette, record_mode="none", replay_timing="recorded")
    started = time.perf_counter()
    answer = await cancel(replaying, "resp_slow_1")
    waited = time.perf_counter() - started
    assert answer.status == 200
    assert answer.headers["X-Proxy-Source"] == "cassette"
    assert answer.headers["Content-Length"] == str(len(answer.body))
    assert "Transfer-Encoding" not in answer.headers
    assert waited >= 0.25
    [line] = replaying.exchanges()
    assert line["replay_wait_ms"] >= 250


async def test_a_whole_answer_whose_recording_fails_is_the_502_never_the_upstreams(
    start_proxy: StartProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON answer arrives whole with its headers, so the journal write happens before any
    byte goes out: when it fails, the client gets the proxy's 502, not the upstream's answer."""

    def failing(*_: object, **__: object) -> None:
        raise RecordingFailed("the journal write failed: No space left on device (test)")

    monkeypatch.setattr(Recorder, "record", failing)
    proxy = await start_proxy(cassette=tmp_path / "full.yaml", record_mode="all")
    answer = await cancel(proxy, vectors.V1_ID)
    assert (answer.status, answer.headers["X-Proxy-Source"]) == (502, "proxy")
    assert answer.error()["code"] == "recording_failed"
