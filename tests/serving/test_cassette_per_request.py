"""A cassette per request (``--cassette-dir``): ``X-Cassette-Proxy-Cassette: NAME`` records to
and replays from ``DIR/NAME.yaml``, each with its own playback position and lock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
import vcr
import yaml

from cassette_proxy.serving.cassettes import MAX_OPEN
from cassette_proxy.store.journal import CassetteLock
from tests import vectors
from tests.client import OPENAI_HEADERS, Answer, cancel, post
from tests.conftest import DUMMY_KEY, RunningProxy, StartProxy
from tests.fake_upstream import FakeUpstream
from tests.serving.control.admin import call

HEADER = "X-Cassette-Proxy-Cassette"


async def cancel_as(proxy: RunningProxy, name: str, response_id: str = vectors.V1_ID) -> Answer:
    return await post(
        proxy, f"/v1/responses/{response_id}/cancel", headers={**OPENAI_HEADERS, HEADER: name}
    )


def entries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def recorded_ids(cassette: Path) -> list[str]:
    return [
        i["request"]["uri"].rsplit("/", 2)[-2]
        for i in yaml.safe_load(cassette.read_text())["interactions"]
    ]


async def test_each_name_records_its_own_cassette_and_the_header_stays_here(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    proxy = await start_proxy(cassette_dir=folder)
    assert (await cancel_as(proxy, "checkout/pays", vectors.V1_ID)).status == 200
    assert (await cancel_as(proxy, "refunds", vectors.V2_ID)).status == 200
    assert (await cancel(proxy, vectors.V3_ID)).status == 200  # no name: pass-through
    assert all(HEADER.lower() not in seen.headers for seen in fake_upstream.received)
    assert [line["cassette"] for line in proxy.exchanges()] == ["checkout/pays", "refunds", None]
    await proxy.stop()  # saves each
    assert recorded_ids(folder / "checkout/pays.yaml") == [vectors.V1_ID]
    assert recorded_ids(folder / "refunds.yaml") == [vectors.V2_ID]
    with vcr.use_cassette(str(folder / "refunds.yaml"), record_mode="none") as by_vcrpy:
        assert len(by_vcrpy) == 1
    recorded = [i["request"] for i in yaml.safe_load((folder / "refunds.yaml").read_text())[
        "interactions"]]  # fmt: skip
    assert all(HEADER not in request["headers"] for request in recorded)


async def test_parallel_workers_keep_their_own_playback_positions(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    recording = await start_proxy(cassette_dir=folder)
    for name in ("worker-1", "worker-2"):
        assert (await cancel_as(recording, name)).status == 200
    await recording.stop()
    proxy = await start_proxy(cassette_dir=folder, record_mode="none")

    def worker(name: str) -> list[str]:
        client = openai.OpenAI(
            base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0,
            default_headers={HEADER: name},
        )  # fmt: skip
        with client:
            first = client.responses.cancel(vectors.V1_ID).status or ""
            with pytest.raises(openai.APIStatusError) as second:  # each played its one
                client.responses.cancel(vectors.V1_ID)
        return [first, str(second.value.status_code)]

    both = await asyncio.gather(
        asyncio.to_thread(worker, "worker-1"), asyncio.to_thread(worker, "worker-2")
    )
    assert list(both) == [["cancelled", "501"], ["cancelled", "501"]]
    assert fake_upstream.cancels == 2  # the recordings only


@pytest.mark.parametrize(
    "name",
    ["../escape", "/etc/passwd", ".hidden", "a/../b", "a//b", "a/./b", "a\\b", "a b", "x" * 201,
     "", "é"],
)  # fmt: skip
async def test_a_name_that_could_leave_the_folder_is_refused_and_nothing_forwarded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path, name: str
) -> None:
    proxy = await start_proxy(cassette_dir=tmp_path / "cassettes")
    answer = await cancel_as(proxy, name)
    assert answer.status == 400
    assert answer.headers["X-Proxy-Source"] == "proxy"
    error = answer.error()
    assert error["code"] == "proxy_cassette_name_refused"
    assert "is not a cassette name" in error["message"]
    assert fake_upstream.received == []
    assert entries(tmp_path) == ["proxy-0.log"]  # no folder, no file made


async def test_a_symlink_out_of_the_folder_is_refused(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "link").symlink_to(outside)
    proxy = await start_proxy(cassette_dir=folder)
    answer = await cancel_as(proxy, "link/case")
    assert answer.status == 400
    assert "is outside --cassette-dir" in answer.error()["message"]
    assert entries(outside) == []
    assert fake_upstream.received == []


async def test_without_a_cassette_dir_the_header_is_refused_saying_how_to_serve_it(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(faults=[{"status": 503, "times": 1}])
    answer = await cancel_as(proxy, "case-1")
    assert answer.status == 400
    assert "started without --cassette-dir" in answer.error()["message"]
    assert fake_upstream.received == []
    assert (await cancel(proxy, vectors.V1_ID)).status == 503  # the rule did not fire on it


async def test_concurrent_first_requests_open_a_cassette_once(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(cassette_dir=tmp_path / "cassettes")
    answers = await asyncio.gather(*(cancel_as(proxy, "shared") for _ in range(10)))
    assert {answer.status for answer in answers} == {200}
    opened = [line for line in proxy.log_lines() if line["event"] == "cassette_opened"]
    assert [(line["detail"]["name"], line["detail"]["by"]) for line in opened] == [
        ("shared", "request")
    ]


async def test_a_name_another_recorder_holds_is_refused_naming_it(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    holder = CassetteLock(folder / "held.yaml")
    assert holder.acquire()
    try:
        proxy = await start_proxy(cassette_dir=folder, admin=True, cassette=folder / "mine.yaml")
        held = await cancel_as(proxy, "held")
        mine = await cancel_as(proxy, "mine")
    finally:
        holder.release()
    assert (held.status, held.error()["code"]) == (409, "cassette_unavailable")
    assert "is being recorded by process" in held.error()["message"]
    assert mine.status == 409
    assert (
        "being recorded by this proxy already, as the proxy's cassette" in (mine.error()["message"])
    )
    assert (await cancel_as(proxy, "held")).status == 200  # free now: opened on this request


async def test_the_control_api_acts_on_a_named_cassette(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    proxy = await start_proxy(cassette_dir=folder, admin=True)
    await cancel_as(proxy, "case")
    saved = await call(proxy.url, "PUT", "/_proxy/cassette", {"record_mode": "none"},
                       cassette="case")  # fmt: skip
    assert saved.json()["name"] == "case"
    assert saved.json()["previous"]["saved"] == 1
    assert (await cancel_as(proxy, "case")).headers["X-Proxy-Source"] == "cassette"
    assert (await cancel_as(proxy, "case")).status == 501
    assert (await call(proxy.url, "POST", "/_proxy/cassette/rewind", cassette="case")).status == 200
    assert (await cancel_as(proxy, "case")).status == 200
    listed = await call(proxy.url, "GET", "/_proxy/cassette")
    assert (listed.json()["cassette"], listed.json()["open"]) == (None, ["case"])
    one = await call(proxy.url, "GET", "/_proxy/exchanges", cassette="case")
    assert [e["cassette"] for e in one.json()["exchanges"]] == ["case"] * 4
    closed = await call(proxy.url, "DELETE", "/_proxy/cassette", cassette="case")
    assert (closed.json()["cassette"], closed.json()["open"]) == (None, [])
    refused = await call(proxy.url, "PUT", "/_proxy/cassette", {"path": "x.yaml"},
                         cassette="case")  # fmt: skip
    assert "header names this cassette: give no 'path'" in refused.error()["message"]


async def test_at_most_max_open_cassettes_stay_open(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """Memory and files are bounded however many names a suite uses: beyond MAX_OPEN, the least
    recently used is saved and closed (and opened again if it is used again)."""
    folder = tmp_path / "cassettes"
    proxy = await start_proxy(cassette_dir=folder, admin=True)
    names = [f"case-{n:03d}" for n in range(MAX_OPEN + 5)]
    for name in names:
        assert (await cancel_as(proxy, name)).status == 200
    state = (await call(proxy.url, "GET", "/_proxy/cassette")).json()
    assert state["open"] == names[5:]
    closed = [line["detail"]["cassette"] for line in proxy.log_lines()
              if line["event"] == "cassette_closed"]  # fmt: skip
    assert closed == [str(folder / f"{name}.yaml") for name in names[:5]]
    assert recorded_ids(folder / "case-000.yaml") == [vectors.V1_ID]


async def test_a_suite_run_again_against_a_long_lived_proxy_is_told_to_rewind(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """All of a cassette played, the second run misses: the advice is the rewind that works on
    a running proxy (a flag would need a restart), and following it replays again."""
    folder = tmp_path / "cassettes"
    recording = await start_proxy(cassette_dir=folder)
    assert (await cancel_as(recording, "suite/w2")).status == 200
    await recording.stop()
    proxy = await start_proxy(admin=True, cassette_dir=folder, record_mode="none")
    assert (await cancel_as(proxy, "suite/w2")).status == 200  # the first run
    missed = await cancel_as(proxy, "suite/w2")  # the second run, on the same proxy
    assert missed.status == 501
    advice = "start its playback over with POST /_proxy/cassette/rewind with " + HEADER
    assert f"{advice}: suite/w2" in missed.error()["message"], missed.error()["message"]
    rewound = await call(proxy.url, "POST", "/_proxy/cassette/rewind", cassette="suite/w2")
    assert rewound.status == 200
    assert (await cancel_as(proxy, "suite/w2")).status == 200


async def test_a_mistyped_name_in_record_mode_none_says_the_cassette_does_not_exist(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    recording = await start_proxy(cassette_dir=folder)
    assert (await cancel_as(recording, "suite/w1")).status == 200
    await recording.stop()
    proxy = await start_proxy(cassette_dir=folder, record_mode="none")
    missed = await cancel_as(proxy, "suite/w1x")
    assert missed.status == 501
    message = missed.error()["message"]
    assert f"cassette {str(folder / 'suite/w1x.yaml')!r} does not exist" in message
    assert f"Did you mean {str(folder / 'suite/w1.yaml')!r}? Check its name" in message
    assert not (folder / "suite/w1x.yaml").exists()  # replaying wrote nothing


async def test_offline_a_mistyped_name_in_record_mode_once_says_what_it_tried_to_record(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """Record mode once records a name it has no file for, so offline a typo reaches for the
    upstream: its 502 says which cassette it was recording, and the nearest one."""
    folder = tmp_path / "cassettes"
    recording = await start_proxy(cassette_dir=folder)
    assert (await cancel_as(recording, "suite/w1")).status == 200
    await recording.stop()
    offline = await start_proxy(upstream="http://127.0.0.1:9", cassette_dir=folder,
                                match_on=("method", "path", "query", "body"))  # fmt: skip
    assert (await cancel_as(offline, "suite/w1")).status == 200  # replayed
    unreachable = await cancel_as(offline, "suite/w1x")
    assert unreachable.status == 502
    message = unreachable.error()["message"]
    assert f"cassette {str(folder / 'suite/w1x.yaml')!r}, which did not exist" in message
    assert f"Did you mean {str(folder / 'suite/w1.yaml')!r}?" in message
