"""The proxy as a real process: start-up, signals, crashes, and bad configuration."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import vcr
import yaml

from cassette_proxy.settings import DEFAULT_MATCH_ON
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.journal import Journal, JournalHeader, journal_path
from cassette_proxy.store.persist import load_cassette, save_cassette
from tests import vectors
from tests.fake_upstream import FakeUpstream
from tests.make_demo_cassette import DEMO
from tests.processes import ProxyProcess, files_in, read_events, refused_start, running
from tests.read_only import read_only_folder, snapshot

pytestmark = pytest.mark.slow


async def _stop(proxy: ProxyProcess, sig: signal.Signals = signal.SIGTERM) -> list[dict[str, Any]]:
    proxy.process.send_signal(sig)
    async with asyncio.timeout(30):
        events = [event async for event in read_events(proxy.process)]
        await proxy.process.wait()
    return events


async def test_starts_on_a_free_port_reports_health_and_stops_cleanly_on_sigterm(
    upstream_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "serve.yaml"
    async with running("--upstream", upstream_url, "--cassette", str(cassette)) as proxy:
        async with (
            aiohttp.ClientSession() as session,
            session.get(proxy.url + "/_proxy/health") as response,
        ):
            health = await response.json()
        assert health["mode"] == "once"
        assert health["cassette"] == str(cassette)
        status, headers, _ = await proxy.cancel(vectors.V1_ID)
        assert status == 200
        assert headers["X-Proxy-Source"] == "upstream"
        events = await _stop(proxy)
        assert proxy.process.returncode == 0
    kinds = [e["event"] for e in events]
    assert kinds == ["exchange", "stopping", "cassette_closed"]
    assert events[-1]["detail"]["recorded"] == 1
    assert events[-1]["detail"]["saved"] == 1


async def test_sigterm_lets_in_flight_requests_finish_and_saves_them(
    upstream_url: str, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.slow_seconds = 1.0
    cassette = tmp_path / "drain.yaml"
    async with running("--upstream", upstream_url, "--cassette", str(cassette)) as proxy:
        in_flight = [asyncio.ensure_future(proxy.cancel(f"resp_slow_{n}")) for n in range(4)]
        while fake_upstream.cancels < 4:
            await asyncio.sleep(0.01)
        stopping = asyncio.ensure_future(_stop(proxy))
        answers = await asyncio.gather(*in_flight)
        await stopping
        assert proxy.process.returncode == 0
    assert [status for status, _, _ in answers] == [200] * 4
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert len(loaded) == 4


async def test_kill_9_loses_no_interaction_whose_response_reached_the_client(
    upstream_url: str, tmp_path: Path
) -> None:
    cassette = tmp_path / "killed.yaml"
    ids = [f"resp_killed_{n}" for n in range(24)]
    async with running("--upstream", upstream_url, "--cassette", str(cassette)) as proxy:
        answers = await asyncio.gather(*(proxy.cancel(i) for i in ids))
        assert {status for status, _, _ in answers} == {404}
        proxy.process.kill()  # SIGKILL: no chance to save
        await proxy.process.wait()
    assert not cassette.exists()
    async with running(
        "--upstream", upstream_url, "--cassette", str(cassette), "--record-mode", "none"
    ) as replay:
        replayed = await asyncio.gather(*(replay.cancel(i) for i in ids))
        await _stop(replay)
    assert [body for _, _, body in replayed] == [body for _, _, body in answers]
    with vcr.use_cassette(str(cassette), record_mode="none") as loaded_by_vcrpy:
        assert len(loaded_by_vcrpy) == len(ids)


async def test_kill_9_mid_run_keeps_every_interaction_a_client_was_answered(
    upstream_url: str, tmp_path: Path
) -> None:
    """16 clients record without pause; the proxy is killed while requests are in flight."""
    cassette = tmp_path / "killed-mid-run.yaml"
    answered: dict[str, bytes] = {}
    cut_off: list[aiohttp.ClientError] = []  # how each client's last request ended
    numbers = itertools.count()

    async def client(proxy: ProxyProcess) -> None:
        while True:  # until the proxy dies: bounded by the kill below, and the timeout
            response_id = f"resp_midkill_{next(numbers)}"
            try:
                status, _, body = await proxy.cancel(response_id)
            except aiohttp.ClientError as exc:
                cut_off.append(exc)  # may or may not be recorded, never half
                return
            assert status == 404
            answered[response_id] = body

    log = tmp_path / "proxy.log"
    async with running(
        "--upstream", upstream_url, "--cassette", str(cassette), log_file=log
    ) as proxy:
        clients = [asyncio.ensure_future(client(proxy)) for _ in range(16)]
        async with asyncio.timeout(60):
            while len(answered) < 300:
                await asyncio.sleep(0.002)
            proxy.process.kill()  # SIGKILL, with requests in flight
            await proxy.process.wait()
            await asyncio.gather(*clients)
    sent = next(numbers)
    # A request in flight at the kill loses its connection; one sent after it is refused.
    broken = [e for e in cut_off if not isinstance(e, aiohttp.ClientConnectorError)]
    assert broken, f"no request was in flight when the proxy was killed: {cut_off}"
    async with running(
        "--upstream", upstream_url, "--cassette", str(cassette), "--record-mode", "none",
        log_file=tmp_path / "replay.log",
    ) as replay:  # fmt: skip
        for response_id, body in answered.items():
            status, headers, replayed = await replay.cancel(response_id)
            assert (status, headers["X-Proxy-Source"]) == (404, "cassette"), response_id
            assert replayed == body
        await _stop(replay)
    with vcr.use_cassette(str(cassette), record_mode="none") as loaded_by_vcrpy:
        assert len(answered) <= len(loaded_by_vcrpy) <= sent


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--port", "http"], {}, "invalid value 'http' for --port"),
        (["--record-mode", "sometimes"], {}, "--record-mode"),
        ([], {"CASSETTE_PROXY_RECORD_MODE": "sometimes"}, "CASSETTE_PROXY_RECORD_MODE"),
        (["--match-on", "method,colour"], {}, "unknown matcher 'colour'"),
        (["--cassette", "tape.txt"], {}, "must end in .yaml, .yml or .json"),
        (["--upstream", "not a url"], {}, "--upstream"),
        ([], {"CASSETTE_PROXY_UPSTREAM_TIMEOUT": "-1"}, "CASSETTE_PROXY_UPSTREAM_TIMEOUT"),
        (["--upstream", "http://127.0.0.1:9/v1"], {}, "give it without /v1: http://127.0.0.1:9"),
        ([], {"CASSETTE_PROXY_SHUTDOWN_TIMEOUT": "-1"}, "CASSETTE_PROXY_SHUTDOWN_TIMEOUT"),
    ],
)
async def test_bad_configuration_is_one_line_and_exit_2(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cassette_proxy",
        "serve",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: ")
    assert expected in lines[0]
    assert stdout == b""


async def test_environment_configures_the_proxy(upstream_url: str, tmp_path: Path) -> None:
    log_file = tmp_path / "env.log"
    env = {
        "CASSETTE_PROXY_UPSTREAM": upstream_url,
        "CASSETTE_PROXY_VALIDATION": "strict",
        "CASSETTE_PROXY_LOG_FILE": str(log_file),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            while not log_file.exists() or b"listening" not in log_file.read_bytes():
                await asyncio.sleep(0.05)
        listening = orjson.loads(log_file.read_bytes().splitlines()[0])
        assert listening["detail"]["validation"] == "strict"
        assert listening["detail"]["upstream"] == upstream_url
        proxy = ProxyProcess(process, listening["detail"]["url"])
        status, headers, _ = await proxy.cancel("resp_broken_1")
        assert status == 502  # strict, from the environment
        assert headers["X-Proxy-Source"] == "proxy"
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all", "none"])
async def test_a_corrupt_cassette_stops_start_up_with_exit_1_and_leaves_no_file(
    tmp_path: Path, mode: str
) -> None:
    cassette = tmp_path / "corrupt.yaml"
    cassette.write_text("interactions: [ {")
    code, _, stderr = await refused_start("--cassette", str(cassette), "--record-mode", mode)
    assert code == 1
    [line] = stderr.decode().strip().splitlines()
    assert line.startswith(f"Error: cassette {str(cassette)!r} is not a vcrpy cassette"), line
    assert cassette.read_text() == "interactions: [ {"
    assert files_in(tmp_path) == ["corrupt.yaml"]  # no .lock, no .journal


async def test_a_recorder_that_cannot_open_its_log_leaves_no_file_behind(tmp_path: Path) -> None:
    cassette = tmp_path / "new.yaml"
    code, _, stderr = await refused_start("--cassette", str(cassette), "--log-file", str(tmp_path))
    assert code == 1
    assert stderr.decode().startswith("Error: cannot open the log file")
    assert files_in(tmp_path) == []  # neither new.yaml.lock nor new.yaml.journal


async def test_a_log_file_that_cannot_be_opened_is_one_line_and_exit_1(tmp_path: Path) -> None:
    code, stdout, stderr = await refused_start("--log-file", str(tmp_path))
    assert code == 1
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines  # no traceback
    assert lines[0].startswith("Error: cannot open the log file")
    assert str(tmp_path) in lines[0]
    assert stdout == b""


def _has_ipv6_loopback() -> bool:
    import socket  # noqa: PLC0415 - only this test needs it

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_address_is_announced_as_a_usable_url(upstream_url: str) -> None:
    async with running("--host", "::1", "--upstream", upstream_url) as proxy:
        assert proxy.url.startswith("http://[::1]:")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{proxy.url}/_proxy/health") as response,
        ):
            assert response.status == 200


UNPARSABLE = [  # requests aiohttp's parser rejects, each with a credential in the bad line
    b"GET /v1/models?api_key=sk-proj-LEAKLEAKLEAKLEAK0001\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/responses/r/cancel HTTP/1.1\r\nHost: x\r\n"
    b"Authorization: Bearer sk-proj-LEAKLEAKLEAKLEAK0002\x01\r\n\r\n",
    b"POST /v1/responses/r/cancel HTTP/1.1\r\nHost: x\r\n"
    b"Authorization : Bearer plain-LEAKLEAKLEAK0003\r\n\r\n",
    # Lines over the size limit: aiohttp's LineTooLong quotes their start in its first line.
    b"POST /v1/responses/r/cancel HTTP/1.1\r\nHost: x\r\nAuthorization: Basic LEAK0004"
    + b"A" * 70_000
    + b"\r\n\r\n",
    b"GET /v1/models?api_key=LEAK0005" + b"B" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nCookie: session=LEAK0006\x01\r\n\r\n",
    b"Bearer sk-" + b"LEAK0007abcdefghijklmnop HTTP/1.1\r\nHost: x\r\n\r\n",  # no method
    b"GET LEAK0008-not-a-path HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("parser", ["llhttp", "python"])
async def test_requests_the_parser_rejects_get_the_envelope_and_leak_nothing(
    upstream_url: str, fake_upstream: FakeUpstream, parser: str
) -> None:
    # aiohttp's pure-Python parser (no C extension: PyPy, or AIOHTTP_NO_EXTENSIONS) words its
    # errors differently, some with the raw line in the first line of the message.
    env = {"AIOHTTP_NO_EXTENSIONS": "1"} if parser == "python" else {}
    async with running("--upstream", upstream_url, env=env) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        for raw in UNPARSABLE:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(raw)
            await writer.drain()
            async with asyncio.timeout(10):
                answer = await reader.read()  # the proxy closes the connection after it
            writer.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b" ", 2)[1] == b"400", answer
            assert b"X-Proxy-Source: proxy" in head
            error = orjson.loads(body)["error"]
            assert error["code"] == "proxy_refused_request"
            assert "could not parse the request" in error["message"]
            assert b"LEAK" not in answer
        events = await _stop(proxy)  # the log, on stdout
        assert proxy.process.stderr is not None
        stderr = await proxy.process.stderr.read()
    assert proxy.process.returncode == 0
    assert b"LEAK" not in stderr, stderr
    assert b"Traceback" not in stderr
    assert "LEAK" not in orjson.dumps(events).decode()
    reasons = [e["detail"]["reason"] for e in events if e["event"] == "unparsable_request"]
    assert len(reasons) == len(UNPARSABLE)
    if parser == "llhttp":
        assert reasons[:6] == [
            "Invalid char in url query",
            "Invalid header value char",
            "Invalid header token",
            "LineTooLong",
            "LineTooLong",
            "Invalid header value char",
        ]
    assert fake_upstream.received == []


async def test_a_busy_port_is_one_line_with_a_way_out() -> None:
    import socket  # noqa: PLC0415 - only this test needs it

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, stderr = await refused_start("--port", str(port))  # the last --port wins
    assert code == 1
    [line] = stderr.decode().strip().splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "--port 0 for a free one" in line


async def test_replaying_a_cassette_that_does_not_exist_stops_start_up_in_one_line(
    upstream_url: str, tmp_path: Path
) -> None:
    """It used to warn and then answer health checks with 200 while every request got a 501."""
    missing = tmp_path / "not-yet" / "never-recorded.yaml"
    args = ("--upstream", upstream_url, "--cassette", str(missing), "--record-mode", "none")
    code, stdout, stderr = await refused_start(*args)
    assert code == 1
    [line] = stderr.decode().strip().splitlines()
    assert line.startswith(f"Error: cassette {str(missing)!r} does not exist"), line
    assert "record mode 'none' does not record" in line
    assert "--record-mode once" in line
    assert stdout == b""  # not even a log line
    assert files_in(tmp_path) == []  # not even the cassette's folder


async def test_a_missing_cassette_names_the_nearest_one_in_its_folder(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text("interactions: []\nversion: 1\n")
    code, _, stderr = await refused_start(
        "--cassette", str(tmp_path / "tyop.yaml"), "--record-mode", "none"
    )
    assert code == 1
    [line] = stderr.decode().strip().splitlines()
    assert f"Did you mean {str(tmp_path / 'typo.yaml')!r}? Check the path" in line


async def test_a_body_that_turns_malformed_mid_stream_is_logged_not_called_a_bug(
    upstream_url: str, fake_upstream: FakeUpstream
) -> None:
    """aiohttp does not answer a bad chunk that arrives after the headers: it waits for the
    client, which gives up. The proxy logs that as the client's doing, not an internal error."""
    async with running("--upstream", upstream_url) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(b"zz\r\nnot a chunk\r\n0\r\n\r\n")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), timeout=0.5)  # no answer: aiohttp waits
        writer.close()  # the client gives up
        await writer.wait_closed()
        await asyncio.sleep(0.3)
        events = await _stop(proxy)
    [exchange] = [e for e in events if e["event"] == "exchange"]
    assert exchange["error"] == "client_disconnected"
    assert not [e for e in events if e["event"] == "internal_error"]
    assert fake_upstream.received == []


async def _listening_line(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    async with asyncio.timeout(20):
        return (await process.stderr.readline()).decode()


@pytest.mark.parametrize("log_to_file", [False, True], ids=["log-on-stdout", "log-file"])
async def test_serve_says_where_it_listens_in_one_line_on_stderr(
    tmp_path: Path, log_to_file: bool
) -> None:
    demo = Path(__file__).parents[3] / "cassettes" / "demo.yaml"
    log = ("--log-file", str(tmp_path / "proxy.log")) if log_to_file else ()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cassette_proxy", "serve", "--port", "0",
        "--cassette", str(demo), "--record-mode", "none", *log,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = await _listening_line(process)
    finally:
        process.terminate()
        _, rest = await process.communicate()
    url = line.split(" ")[3]
    assert line == (f"cassette-proxy listening on {url} (base_url {url}/v1), replaying {demo}\n")
    assert url.startswith("http://127.0.0.1:")
    assert int(url.rsplit(":", 1)[1]) > 0  # the port --port 0 picked
    # One line, and at stop one more: the interactions never played (here, all five).
    uris = [i["request"]["uri"] for i in yaml.safe_load(demo.read_text())["interactions"]]
    unused = ", ".join(f"#{n} POST {uri}" for n, uri in enumerate(uris))
    assert rest.decode() == (
        f"cassette-proxy: 5 of the 5 interactions in {demo} were never played: {unused} "
        "(--drop-unused-requests leaves them out of the file)\n"
    )
    assert process.returncode == 0


async def test_sigterm_stops_an_idle_proxy_within_300_ms(upstream_url: str) -> None:
    took = []
    for _ in range(3):  # the best of three: the machine may be busy with other tests
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cassette_proxy", "serve", "--port", "0",
            "--upstream", upstream_url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await _listening_line(process)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            await process.wait()
        took.append(time.monotonic() - started)
        assert process.returncode == 0
        if took[-1] < 0.3:
            break
    assert min(took) < 0.3, took


async def test_shutdown_timeout_cuts_requests_still_running_and_saves_the_rest(
    upstream_url: str, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A hung upstream: at --shutdown-timeout the request still waiting for it is cut, what was
    recorded before is saved, and the proxy exits 0 (aiohttp alone waited twice the grace)."""
    fake_upstream.slow_seconds = 60  # hung, as far as this test goes
    cassette = tmp_path / "cut.yaml"
    args = ("--upstream", upstream_url, "--cassette", str(cassette), "--shutdown-timeout", "1")
    async with running(*args) as proxy:
        status, _, _ = await proxy.cancel(vectors.V1_ID)
        assert status == 200
        hung = asyncio.ensure_future(proxy.cancel("resp_slow_hung"))
        while fake_upstream.cancels < 2:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        events = await _stop(proxy)
        took = time.monotonic() - started
        assert proxy.process.returncode == 0
    with pytest.raises(aiohttp.ClientError):
        await hung  # cut: the connection is closed without an answer
    assert 1 <= took < 5, took
    kinds = [e["event"] for e in events]
    assert kinds == ["exchange", "stopping", "request_cut", "exchange", "cassette_closed"], kinds
    assert events[2]["detail"]["path"] == "/v1/responses/resp_slow_hung/cancel"
    cut = events[3]  # the cut request is still an exchange of the log, with why it ended
    assert (cut["path"], cut["error"]) == ("/v1/responses/resp_slow_hung/cancel", "shutdown_cut")
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert [i.request.path for i in loaded] == [f"/v1/responses/{vectors.V1_ID}/cancel"]


def _journalled_demo(staging: Path) -> dict[str, bytes]:
    """The demo's first interactions in a cassette, its last recorded one in the journal a
    recorder killed with -9 would have left beside it: the files, by name."""
    interactions = load_cassette(DEMO)
    assert interactions is not None
    save_cassette(staging / "c.yaml", interactions[:-1])
    journal = Journal(journal_path(staging / "c.yaml"), JournalHeader("once", DEFAULT_MATCH_ON))
    journal.append(interactions[-1])
    journal.close()
    return snapshot(staging)


def _response_id(interaction: Interaction) -> str:
    return str(interaction.request.path).split("/")[3]


@pytest.mark.parametrize("mode", ["none", "once"])
@pytest.mark.parametrize("journal", [False, True], ids=["cassette", "cassette-and-journal"])
async def test_replay_from_a_read_only_folder_touches_nothing(
    tmp_path: Path, mode: str, journal: bool
) -> None:
    """A Docker ``:ro`` volume, a ConfigMap, a Nix sandbox: the proxy that will not record
    reads the cassette (and a journal a crashed recorder left) and writes nothing there."""
    files = _journalled_demo(tmp_path) if journal else {"c.yaml": DEMO.read_bytes()}
    loaded = load_cassette(DEMO)
    assert loaded is not None
    with read_only_folder(tmp_path / "ro", files) as ro:
        async with running("--cassette", str(ro / "c.yaml"), "--record-mode", mode) as proxy:
            for interaction in loaded:
                status, headers, body = await proxy.cancel(_response_id(interaction))
                assert (status, headers["X-Proxy-Source"]) == (interaction.status, "cassette")
                assert body == interaction.body
            events = await _stop(proxy)
        assert proxy.process.returncode == 0
        assert snapshot(ro) == files
    assert [e["detail"]["played"] for e in events if e["event"] == "cassette_closed"] == [
        len(loaded)
    ]


async def test_recording_into_a_read_only_folder_is_one_line_saying_what_to_do(
    tmp_path: Path,
) -> None:
    with read_only_folder(tmp_path / "ro", {"c.yaml": DEMO.read_bytes()}) as ro:
        code, _, stderr = await refused_start(
            "--cassette", str(ro / "c.yaml"), "--record-mode", "all"
        )
        assert files_in(ro) == ["c.yaml"]
    assert code == 1
    [line] = stderr.decode().strip().splitlines()
    assert line.startswith(f"Error: cannot create {str(ro / 'c.yaml.lock')!r} beside the cassette")
    assert line.endswith("or replay the cassette (record mode 'none'), which writes nothing")


async def test_serve_takes_the_declarative_hooks_placeholders_and_ignores(
    upstream_url: str, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """``serve``'s equivalents of the plugin's options, from flags and the environment (the
    Python hooks are the plugin's only): recorded and matched as they say, and the start says
    that the clients' own keys are forwarded."""
    cassette = tmp_path / "declared.yaml"
    flags = (
        "--upstream", upstream_url, "--cassette", str(cassette),
        "--filter-headers", "x-secret", "--filter-headers", "x-keep=KEPT",
        "--filter-query-parameters", "token2", "--placeholder", "TEAM=ml-platform",
    )  # fmt: skip
    env = {"CASSETTE_PROXY_MATCH_IGNORE": "/metadata/ts,/user"}
    body = b'{"model": "m", "input": "team ml-platform", "metadata": {"ts": "%s"}, "user": "%s"}'
    headers = {"X-Secret": "s", "X-Keep": "k", "Content-Type": "application/json"}

    async def create(proxy: ProxyProcess, ts: str) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{proxy.url}/v1/echo?token2=t&page=2",
                data=body % (ts.encode(), ts.encode()),
                headers=headers,
            ) as response,
        ):
            return response.status, dict(response.headers)

    async with running(*flags, "--record-mode", "once", env=env) as proxy:
        assert (await create(proxy, "1"))[0] == 200
        await _stop(proxy)
        assert proxy.process.stderr is not None
        started = (await proxy.process.stderr.read()).decode()
    assert "recording without CASSETTE_PROXY_UPSTREAM_API_KEY" in started
    [interaction] = yaml.safe_load(cassette.read_text())["interactions"]
    request = interaction["request"]
    assert "x-secret" not in {name.lower() for name in request["headers"]}
    assert {k.lower(): v for k, v in request["headers"].items()}["x-keep"] == ["KEPT"]
    assert request["uri"] == f"{upstream_url}/v1/echo?page=2"
    assert "ml-platform" not in cassette.read_text()
    assert '"input": "team <TEAM>"' in request["body"]

    async with running(*flags, "--record-mode", "none", env=env) as proxy:
        status, answer = await create(proxy, "2")  # another ts and user: ignored
        assert (status, answer["X-Proxy-Source"]) == (200, "cassette")
    assert len(fake_upstream.received) == 1


async def test_per_request_cassettes_that_may_record_without_a_key_say_so_at_start(
    tmp_path: Path,
) -> None:
    env = {"CASSETTE_PROXY_UPSTREAM_API_KEY": ""}
    for mode, said in (("once", True), ("none", False)):
        flags = ("--cassette-dir", str(tmp_path), "--record-mode", mode)
        async with running(*flags, "--upstream", "http://127.0.0.1:9", env=env) as proxy:
            await _stop(proxy)
            assert proxy.process.stderr is not None
            started = (await proxy.process.stderr.read()).decode()
        line = "recording without CASSETTE_PROXY_UPSTREAM_API_KEY into per-request cassettes"
        assert (line in started) is said, (mode, started)
