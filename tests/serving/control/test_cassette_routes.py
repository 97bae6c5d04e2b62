"""``/_proxy/cassette``: loading, saving, replacing and rewinding cassettes in a running proxy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import vcr
import yaml

from cassette_proxy.store.journal import CassetteLock
from tests import vectors
from tests.client import cancel
from tests.conftest import RunningProxy, StartProxy
from tests.fake_upstream import FakeUpstream
from tests.serving.control.admin import call


def interactions(cassette: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = yaml.safe_load(cassette.read_text())["interactions"]
    return found


def uris(cassette: Path) -> list[str]:
    return [i["request"]["uri"].rsplit("/", 2)[-2] for i in interactions(cassette)]


async def put(proxy: RunningProxy, **options: Any) -> dict[str, Any]:
    answer = await call(proxy.url, "PUT", "/_proxy/cassette", options)
    assert answer.status == 200, answer.body
    assert answer.headers["X-Proxy-Source"] == "proxy"
    state: dict[str, Any] = answer.json()
    return state


async def state(proxy: RunningProxy) -> dict[str, Any]:
    answer = await call(proxy.url, "GET", "/_proxy/cassette")
    assert answer.status == 200, answer.body
    found: dict[str, Any] = answer.json()
    return found


async def test_the_state_says_what_is_loaded_its_mode_options_and_counts(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(admin=True)
    assert await state(proxy) == {
        "name": None, "mode": "pass-through", "cassette": None, "previous": None,
        "startup": None, "cassette_dir": None, "open": [],
    }  # fmt: skip
    cassette = tmp_path / "a.yaml"
    loaded = await put(
        proxy, path=str(cassette), allow_playback_repeats=True,
        match_ignore=["/user"], placeholders={"CUSTOMER": "cus-7a3f9c2e41d8"},
    )  # fmt: skip
    assert loaded["mode"] == "once"
    assert loaded["cassette"] == {
        "path": str(cassette), "record_mode": "once", "replays": False, "records": True,
        "options": {"record_mode": "once", "match_on": ["method", "scheme", "host", "port",
                    "path", "query", "body"], "allow_playback_repeats": True,
                    "replay_timing": "off", "replay_speed": 1.0, "match_ignore": ["/user"],
                    "match_headers": [], "placeholders": ["CUSTOMER"],
                    "folder_placeholders": True, "filter_headers": [],
                    "filter_query_parameters": [], "filter_post_data_parameters": [],
                    "record_auth_failures": False, "drop_unused_requests": False,
                    "re_record_interval": None, "re_record_action": "record"},
        "interactions": 0, "recorded": 0, "played": 0, "unused": 0,
        "recordings_in_flight": 0, "recovered_from_journal": 0,
    }  # fmt: skip
    await cancel(proxy, vectors.V1_ID)
    await cancel(proxy, vectors.V2_ID)
    assert (await state(proxy))["cassette"]["recorded"] == 2
    replaying = await put(proxy, path=str(cassette), record_mode="none")
    assert replaying["previous"] == {
        "path": str(cassette), "closed": True, "saved": 2, "loaded": 0, "recorded": 2,
        "played": 0, "never_played": 0, "recordings_in_flight": 0, "error": None,
    }  # fmt: skip
    await cancel(proxy, vectors.V2_ID)
    now = (await state(proxy))["cassette"]
    assert (now["interactions"], now["played"], now["unused"]) == (2, 1, 1)
    health = await call(proxy.url, "GET", "/_proxy/health")  # follows what is loaded
    assert (health.json()["mode"], health.json()["cassette"]) == ("none", str(cassette))


async def test_put_saves_the_cassette_it_replaces_and_vcrpy_loads_it(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    proxy = await start_proxy(admin=True)
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    await put(proxy, path=str(first))
    await cancel(proxy, vectors.V1_ID)
    switched = await put(proxy, path=str(second))
    assert (switched["previous"]["path"], switched["previous"]["saved"]) == (str(first), 1)
    await cancel(proxy, vectors.V2_ID)
    unloaded = await call(proxy.url, "DELETE", "/_proxy/cassette")
    assert unloaded.json()["mode"] == "pass-through"  # no start-up cassette: pass-through
    assert unloaded.json()["previous"]["saved"] == 1
    assert (uris(first), uris(second)) == ([vectors.V1_ID], [vectors.V2_ID])
    for cassette in (first, second):
        with vcr.use_cassette(str(cassette), record_mode="none") as by_vcrpy:
            assert len(by_vcrpy) == 1
    await cancel(proxy, vectors.V3_ID)  # passes through, recorded nowhere
    assert fake_upstream.cancels == 3


async def test_delete_goes_back_to_the_start_up_cassette_read_again(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    startup = tmp_path / "startup.yaml"
    proxy = await start_proxy(admin=True, cassette=startup, record_mode="new_episodes")
    await cancel(proxy, vectors.V1_ID)  # recorded into the start-up cassette
    await put(proxy, path=str(tmp_path / "other.yaml"))
    back = await call(proxy.url, "DELETE", "/_proxy/cassette")
    assert back.json()["cassette"]["path"] == str(startup)
    assert back.json()["startup"] == str(startup)
    assert back.json()["cassette"]["interactions"] == 1  # what it recorded, read from the file
    assert (await cancel(proxy, vectors.V1_ID)).headers["X-Proxy-Source"] == "cassette"
    assert fake_upstream.cancels == 1


async def test_rewind_makes_every_recording_playable_again(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.yaml"
    recording = await start_proxy(cassette=cassette)
    await cancel(recording, vectors.V1_ID)
    await cancel(recording, vectors.V1_ID)
    await recording.stop()
    proxy = await start_proxy(admin=True, cassette=cassette, record_mode="none")
    for _ in range(2):
        assert (await cancel(proxy, vectors.V1_ID)).status == 200
    assert (await cancel(proxy, vectors.V1_ID)).status == 501
    rewound = await call(proxy.url, "POST", "/_proxy/cassette/rewind")
    assert (rewound.json()["cassette"]["played"], rewound.json()["cassette"]["unused"]) == (0, 2)
    bodies = [(await cancel(proxy, vectors.V1_ID)).body for _ in range(2)]
    assert bodies == [i["response"]["body"]["string"].encode() for i in interactions(cassette)]


async def test_rewind_without_a_cassette_says_there_is_nothing_to_rewind(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(admin=True)
    answer = await call(proxy.url, "POST", "/_proxy/cassette/rewind")
    assert answer.status == 409
    assert "no cassette is loaded" in answer.error()["message"]


async def test_replaying_a_cassette_that_does_not_exist_is_refused_as_at_start_up(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(admin=True)
    (tmp_path / "checkout.yaml").write_text("interactions: []\nversion: 1\n")
    before = await state(proxy)
    answer = await call(
        proxy.url, "PUT", "/_proxy/cassette",
        {"path": str(tmp_path / "chekout.yaml"), "record_mode": "none"},
    )  # fmt: skip
    assert answer.status == 409
    assert answer.headers["X-Proxy-Source"] == "proxy"
    message = answer.error()["message"]
    assert "does not exist, and record mode 'none' does not record" in message
    assert f"Did you mean {str(tmp_path / 'checkout.yaml')!r}? Check the path" in message
    assert 'record it first ("record_mode": "once"); nothing changed' in message
    assert await state(proxy) == before
    assert not (tmp_path / "chekout.yaml").exists()


async def test_a_recording_in_flight_finishes_on_the_cassette_it_began_on(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.slow_seconds = 1.0
    proxy = await start_proxy(admin=True)
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    await put(proxy, path=str(first))
    slow = asyncio.ensure_future(cancel(proxy, "resp_slow_1"))
    while fake_upstream.cancels < 1:
        await asyncio.sleep(0.01)
    switching = asyncio.ensure_future(put(proxy, path=str(second)))
    while (await state(proxy))["cassette"]["path"] != str(second):
        await asyncio.sleep(0.01)
    assert (await cancel(proxy, vectors.V2_ID)).status == 200  # served meanwhile, on the new one
    assert not switching.done()  # answered once the old cassette is saved
    switched = await switching
    assert (await slow).status == 200
    assert switched["previous"]["saved"] == 1
    assert uris(first) == ["resp_slow_1"]
    await call(proxy.url, "DELETE", "/_proxy/cassette")
    assert uris(second) == [vectors.V2_ID]


async def test_reloading_the_same_file_waits_for_its_recordings_and_holds_requests(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """One file, one lock: the cassette is closed before it is opened again, so requests that
    come meanwhile wait, and are answered from the file as reloaded."""
    fake_upstream.slow_seconds = 1.0
    cassette = tmp_path / "same.yaml"
    proxy = await start_proxy(admin=True)
    await put(proxy, path=str(cassette))
    slow = asyncio.ensure_future(cancel(proxy, "resp_slow_1"))
    while fake_upstream.cancels < 1:
        await asyncio.sleep(0.01)
    reloading = asyncio.ensure_future(put(proxy, path=str(cassette), record_mode="none"))
    await asyncio.sleep(0.1)
    waiting = asyncio.ensure_future(cancel(proxy, "resp_slow_1"))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # held while the cassette is closed and opened again
    reloaded = await reloading
    assert reloaded["previous"]["saved"] == 1
    assert (await slow).status == 200
    replayed = await waiting
    assert replayed.headers["X-Proxy-Source"] == "cassette"  # the recording it was waiting for
    assert fake_upstream.cancels == 1


async def test_recordings_that_outlast_the_shutdown_timeout_are_saved_when_they_end(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.slow_seconds = 1.5
    proxy = await start_proxy(admin=True, shutdown_timeout=0.2)
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    await put(proxy, path=str(first))
    slow = asyncio.ensure_future(cancel(proxy, "resp_slow_1"))
    while fake_upstream.cancels < 1:
        await asyncio.sleep(0.01)
    # The same file cannot be reopened while it records: refused, and nothing changes.
    refused = await call(proxy.url, "PUT", "/_proxy/cassette", {"path": str(first)})
    assert refused.status == 409
    assert "still has 1 recording(s) in flight after 0.2 s" in refused.error()["message"]
    assert (await state(proxy))["cassette"]["recordings_in_flight"] == 1
    # Another file can: the answer says the last one is not closed yet.
    switched = await put(proxy, path=str(second))
    assert switched["previous"] == {
        "path": str(first), "closed": False, "saved": None, "loaded": None, "recorded": None,
        "played": None, "never_played": None, "recordings_in_flight": 1, "error": None,
    }  # fmt: skip
    assert (await slow).status == 200
    while not first.exists():
        await asyncio.sleep(0.05)
    assert uris(first) == ["resp_slow_1"]
    closed = [line for line in proxy.log_lines() if line["event"] == "cassette_closed"]
    assert [line["detail"]["cassette"] for line in closed] == [str(first)]


async def test_a_cassette_that_cannot_be_opened_leaves_the_loaded_one(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    loaded = tmp_path / "loaded.yaml"
    proxy = await start_proxy(admin=True)
    await put(proxy, path=str(loaded))
    corrupt = tmp_path / "corrupt.yaml"
    corrupt.write_text("interactions: [ {")
    answer = await call(proxy.url, "PUT", "/_proxy/cassette", {"path": str(corrupt)})
    assert answer.status == 409
    error = answer.error()
    assert error["code"] == "cassette_unavailable"
    assert f"cannot open cassette {str(corrupt)!r}" in error["message"]
    assert (await state(proxy))["cassette"]["path"] == str(loaded)
    holder = CassetteLock(tmp_path / "held.yaml")
    assert holder.acquire()
    try:
        held = await call(proxy.url, "PUT", "/_proxy/cassette", {"path": str(holder.cassette)})
    finally:
        holder.release()
    assert held.status == 409
    assert "is being recorded by process" in held.error()["message"]
    # How to replay it instead, in the control API's words (a flag would need a restart).
    path = json.dumps(str(holder.cassette))
    assert (
        f'replay it: PUT /_proxy/cassette {{"path": {path}, "record_mode": "none"}}'
        in (held.error()["message"])
    )
    assert "--record-mode" not in held.error()["message"]
    assert (await state(proxy))["cassette"]["path"] == str(loaded)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"path": "a.txt"}, "invalid cassette option path: Value error, cassette 'a.txt' must"),
        ({"path": "a.yaml", "record_mode": "sometimes"}, "invalid cassette option record_mode"),
        ({"path": "a.yaml", "match_on": ["smell"]}, "unknown matcher 'smell'"),
        (
            {"path": "a.yaml", "upstream": "http://x"},
            "unknown option(s) 'upstream'; a cassette takes allow_playback_repeats, "
            "drop_unused_requests, filter_headers, filter_post_data_parameters, "
            "filter_query_parameters, folder_placeholders, match_headers, match_ignore, "
            "match_on, path, placeholders, re_record_action, re_record_interval, "
            "record_auth_failures, record_mode, replay_speed, replay_timing",
        ),
        ({}, "give the cassette's 'path'"),
        ({"path": 7}, "'path' must be a file name, not 7"),
    ],
)
async def test_bad_options_are_refused_naming_the_option(
    start_proxy: StartProxy, options: dict[str, Any], says: str
) -> None:
    proxy = await start_proxy(admin=True)
    answer = await call(proxy.url, "PUT", "/_proxy/cassette", options)
    assert answer.status == 400
    assert says.replace("Value error, ", "") in answer.error()["message"]
    assert (await state(proxy))["mode"] == "pass-through"


async def test_with_a_cassette_dir_paths_are_under_it_and_cannot_leave_it(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    proxy = await start_proxy(admin=True, cassette_dir=folder)
    loaded = await put(proxy, path="suite/case.yaml")
    assert loaded["cassette"]["path"] == str(folder / "suite/case.yaml")
    assert loaded["cassette_dir"] == str(folder.resolve())
    for outside in ("../escape.yaml", str(tmp_path / "escape.yaml")):
        answer = await call(proxy.url, "PUT", "/_proxy/cassette", {"path": outside})
        assert answer.status == 400
        assert "is outside --cassette-dir" in answer.error()["message"]
    assert not (tmp_path / "escape.yaml").exists()


async def test_options_given_in_a_put_apply_to_that_cassette_only(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.yaml"
    recording = await start_proxy(cassette=cassette)
    await cancel(recording, vectors.V1_ID)
    await recording.stop()
    proxy = await start_proxy(admin=True, record_mode="none")
    await put(proxy, path=str(cassette), allow_playback_repeats=True)
    assert [(await cancel(proxy, vectors.V1_ID)).status for _ in range(3)] == [200] * 3
    await put(proxy, path=str(cassette))  # the proxy's own options again: no repeats
    assert [(await cancel(proxy, vectors.V1_ID)).status for _ in range(2)] == [200, 501]


async def test_a_miss_in_a_cassette_loaded_by_put_advises_the_put_that_records_it(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """The cassette's options are the PUT's, so `serve`'s flags would not reach it: the advice
    is the same PUT with the option changed (the other options kept, a placeholder's value not
    shown), and following it records what missed."""
    cassette = tmp_path / "c.yaml"
    recording = await start_proxy(cassette=cassette)
    await cancel(recording, vectors.V1_ID)
    await recording.stop()
    proxy = await start_proxy(admin=True, record_mode="once")
    given = {
        "path": str(cassette), "record_mode": "none", "match_ignore": "/user,/metadata/trace",
        "placeholders": {"CUSTOMER": "cus-7a3f9c2e41d8"},
    }  # fmt: skip
    await put(proxy, **given)
    missed = await cancel(proxy, vectors.V2_ID)
    assert missed.status == 501
    message = missed.error()["message"]
    assert "--record-mode" not in message
    assert "cus-7a3f9c2e41d8" not in message
    advice = message[message.index("PUT /_proxy/cassette {") + len("PUT /_proxy/cassette ") :]
    again, _ = json.JSONDecoder().raw_decode(advice)
    assert again["record_mode"] == "new_episodes"
    assert again["path"] == str(cassette)
    assert again["match_ignore"] == ["/user", "/metadata/trace"]  # the list the text meant
    assert 'adding "placeholders" (CUSTOMER) as you gave them before' in message
    again["placeholders"] = given["placeholders"]  # as the advice asks: the caller's own value
    await put(proxy, **again)
    assert (await cancel(proxy, vectors.V2_ID)).status == 200
    assert (await state(proxy))["cassette"]["recorded"] == 1


async def test_the_header_on_a_proxy_without_a_cassette_dir_is_refused_by_every_route(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(admin=True)
    routes = [("GET", "/_proxy/cassette"), ("DELETE", "/_proxy/cassette"),
              ("POST", "/_proxy/cassette/rewind"), ("PUT", "/_proxy/cassette")]  # fmt: skip
    for method, path in routes:
        answer = await call(proxy.url, method, path, {} if method == "PUT" else None, cassette="a")
        assert answer.status == 400, (method, answer.body)
        message = answer.error()["message"]
        assert "started without --cassette-dir" in message
        assert "nothing was forwarded" not in message  # a control request forwards nothing
        assert "nothing changed" in message


async def test_rewinding_a_per_request_cassette_not_open_yet_opens_it_and_shows_it(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """A suite rewinds its cassettes before it runs: the first time, on a fresh proxy, they
    are not open yet; the answer shows each as its first request would find it (a mistyped
    name: no file, no interactions)."""
    recording = await start_proxy(cassette_dir=tmp_path)
    assert (await call(recording.url, "POST", f"/v1/responses/{vectors.V1_ID}/cancel",
                       cassette="suite/a")).status == 200  # fmt: skip
    await recording.stop()
    proxy = await start_proxy(admin=True, cassette_dir=tmp_path, record_mode="none")
    for name, interactions in (("suite/a", 1), ("suite/typo", 0)):
        answer = await call(proxy.url, "POST", "/_proxy/cassette/rewind", cassette=name)
        assert answer.status == 200, answer.body
        state = answer.json()
        assert state["name"] == name
        assert state["cassette"]["path"] == str(tmp_path / f"{name}.yaml")
        assert state["cassette"]["interactions"] == interactions
    assert not (tmp_path / "suite/typo.yaml").exists()


async def test_a_body_that_is_not_json_gets_an_example_of_that_route(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(admin=True)
    faults = await call(proxy.url, "POST", "/_proxy/faults", b"nope")
    assert faults.status == 400
    assert '"status": 429' in faults.error()["message"]
    assert "record_mode" not in faults.error()["message"]
    cassette = await call(proxy.url, "PUT", "/_proxy/cassette", b"nope")
    assert '"record_mode": "none"' in cassette.error()["message"]
