"""The pytest plugin, used the way a user would: through ``pytester`` runs of real test files.

The upstream runs on a thread (:class:`cassette_proxy.serving.process.serve.ServerThread`),
because the inner pytest runs block this thread; the inner tests use the real ``openai``
client, sync and async.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cassette_proxy.serving.process.serve import ServerThread
from cassette_proxy.store.journal import CassetteLock
from tests import vectors
from tests.fake_upstream import FakeUpstream
from tests.read_only import read_only_folder, snapshot
from tests.stream_upstream import StreamUpstream

pytestmark = pytest.mark.slow

SYNC_TEST = f"""
import openai

def test_cancel(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="dummy", max_retries=0) as client:
        assert client.responses.cancel("{vectors.V2_ID}").status == "cancelled"
    assert cassette_proxy.url.startswith("http://127.0.0.1:")
    assert cassette_proxy.url.endswith("/v1")
    if cassette_proxy.record_mode == "none":
        assert (cassette_proxy.played, cassette_proxy.recorded) == (1, 0)
        assert cassette_proxy.played_interactions[0].status == 200
    else:
        assert (cassette_proxy.played, cassette_proxy.recorded) == (0, 1)
        assert cassette_proxy.recorded_interactions[0].status == 200
    assert [e.source for e in cassette_proxy.exchanges] == [
        "cassette" if cassette_proxy.record_mode == "none" else "upstream"
    ]
    assert cassette_proxy.exchanges[0].response.body["status"] == "cancelled"  # values, as logged
"""

ASYNC_TEST = f"""
import openai
import pytest

@pytest.mark.asyncio
async def test_cancel_async(cassette_proxy):
    async with openai.AsyncOpenAI(
        base_url=cassette_proxy.url, api_key="dummy", max_retries=0
    ) as client:
        response = await client.responses.cancel("{vectors.V3_ID}")
    assert response.output[1].name == "get_weather"
"""

AIOHTTP_TEST = f"""
import openai

async def test_cancel_under_pytest_aiohttp(cassette_proxy, aiohttp_client):
    async with openai.AsyncOpenAI(
        base_url=cassette_proxy.url, api_key="dummy", max_retries=0
    ) as client:
        response = await client.responses.cancel("{vectors.V1_ID}")
    assert response.status == "cancelled"
"""


def ini(pytester: pytest.Pytester, extra: str = "") -> None:
    pytester.makeini(
        "[pytest]\n"
        "asyncio_default_fixture_loop_scope = function\n"
        # This process imported the plugin before pytester's run: nothing to rewrite there.
        "filterwarnings =\n"
        "    ignore::pytest.PytestAssertRewriteWarning\n"
        # A user's suite shows the plugin's warnings; this one's makes warnings errors.
        "    default::cassette_proxy.pytest_plugin.CassetteProxyWarning\n" + extra
    )


@pytest.fixture(autouse=True)
def _quiet_ini(pytester: pytest.Pytester) -> None:
    ini(pytester)


@pytest.fixture
def upstream() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    server = ServerThread(fake.app)
    yield fake, server.start()
    server.stop()


def cassette_of(pytester: pytest.Pytester, module: str, test: str) -> Path:
    return pytester.path / "cassettes" / module / f"{test}.yaml"


def test_records_once_then_replays_offline_from_a_sync_test(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, url = upstream
    pytester.makepyfile(test_sync=SYNC_TEST)
    pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}").assert_outcomes(
        passed=1
    )
    cassette = cassette_of(pytester, "test_sync", "test_cancel")
    assert len(yaml.safe_load(cassette.read_text())["interactions"]) == 1
    assert fake.cancels == 1
    # Replay: the default record mode is none. The upstream option stays, because requests
    # are matched on the upstream's scheme, host and port too, but nothing reaches it.
    pytester.runpytest(f"--cassette-upstream={url}").assert_outcomes(passed=1)
    assert fake.cancels == 1


def test_a_test_that_records_nothing_leaves_no_empty_cassette_folder(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    """As vcrpy: a folder appears with the first cassette saved in it, not for a test that
    sent nothing (the lock beside the cassette made cassettes/<module>/ and left it empty)."""
    _, url = upstream
    pytester.makepyfile(
        test_quiet="""
        def test_sends_nothing(cassette_proxy):
            assert cassette_proxy
        """
    )
    pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}").assert_outcomes(
        passed=1
    )
    assert not (pytester.path / "cassettes").exists()
    pytester.makepyfile(test_sync=SYNC_TEST)  # one that records keeps its folder and cassette
    pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}").assert_outcomes(
        passed=2
    )
    assert sorted(p.name for p in (pytester.path / "cassettes").iterdir()) == ["test_sync"]
    assert cassette_of(pytester, "test_sync", "test_cancel").exists()


@pytest.mark.parametrize(
    ("name", "source", "extra"),
    [
        ("test_asyncio", ASYNC_TEST, "asyncio_mode = strict"),
        ("test_aio", AIOHTTP_TEST, "asyncio_mode = auto"),
    ],
    ids=["pytest-asyncio", "pytest-aiohttp"],
)
def test_async_tests_record_and_replay_without_deadlock(
    pytester: pytest.Pytester,
    upstream: tuple[FakeUpstream, str],
    name: str,
    source: str,
    extra: str,
) -> None:
    fake, url = upstream
    ini(pytester, extra)
    pytester.makepyfile(**{name: source})
    recorded = pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
    recorded.assert_outcomes(passed=1)
    pytester.runpytest(f"--cassette-upstream={url}").assert_outcomes(passed=1)
    assert fake.cancels == 1


def test_a_swallowed_miss_still_fails_the_test_with_the_diagnosis(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    _, url = upstream
    pytester.makepyfile(test_sync=SYNC_TEST)
    pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
    pytester.makepyfile(
        test_swallow="""
        import openai, pytest

        @pytest.mark.cassette_proxy(cassette="cassettes/test_sync/test_cancel.yaml")
        def test_swallows(cassette_proxy):
            with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=2) as client:
                try:
                    client.responses.cancel("resp_not_recorded")
                except openai.APIStatusError:
                    pass
        """
    )
    result = pytester.runpytest("test_swallow.py", f"--cassette-upstream={url}")
    result.assert_outcomes(failed=1)  # once: not passed, then an error at teardown
    result.stdout.fnmatch_lines(
        [
            "*_ test_swallows _*",
            "cassette-proxy answered 1 request(s) of this test with an error the code under *",
            "*POST /v1/responses/resp_not_recorded/cancel -> 501 cassette_miss*",
            "*Closest recorded interactions:*",
            f"*{vectors.V2_ID}/cancel (6/7 matchers agree; failed path:*",
            f"*To record it (from {url}):",
            "*CASSETTE_PROXY_UPSTREAM_API_KEY=<key> pytest 'test_swallow.py::test_swallows' "
            f"--cassette-record-mode=new_episodes --cassette-upstream={url}",
        ]
    )
    result.stdout.no_fnmatch_line("* --record-mode *")  # serve's flags are not the plugin's
    result.stdout.no_fnmatch_line("*ERROR at teardown*")


def test_a_swallowed_strict_violation_fails_with_its_pointer(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    _, url = upstream
    pytester.makepyfile(
        test_broken="""
        import openai

        def test_broken(cassette_proxy):
            with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
                try:
                    client.responses.cancel("resp_broken_1")
                except openai.APIStatusError as error:
                    assert error.status_code == 502
        """
    )
    result = pytester.runpytest("--cassette-record-mode=all", f"--cassette-upstream={url}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*502 contract_violation*", "*response /id: *"])


def test_missing_cassette_in_none_mode_says_how_to_record(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sync=SYNC_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*cassettes/test_sync/test_cancel.yaml does not exist and the record mode is 'none'*",
            "*pytest 'test_sync.py::test_cancel' --cassette-record-mode=once*",
        ]
    )


def test_marker_beats_config_fixture_beats_command_line(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    _, url = upstream
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture(scope="module")
        def cassette_proxy_config():
            return {{"upstream": "{url}", "validation": "warn", "record_mode": "all"}}
        """
    )
    pytester.makepyfile(
        test_precedence="""
        import pytest

        def test_config(cassette_proxy):
            assert cassette_proxy.record_mode == "all"          # config over command line
            assert cassette_proxy.settings.validation.value == "warn"
            assert cassette_proxy.cassette.name == "test_config.yaml"

        @pytest.mark.cassette_proxy(record_mode="new_episodes", cassette="custom/tape.yaml")
        def test_marker(cassette_proxy, request):
            assert cassette_proxy.record_mode == "new_episodes"  # marker over config
            assert cassette_proxy.settings.validation.value == "warn"
            assert cassette_proxy.cassette == request.path.parent / "custom" / "tape.yaml"

        class TestGrouped:
            def test_in_class(self, cassette_proxy):
                assert cassette_proxy.cassette.name == "TestGrouped.test_in_class.yaml"

        @pytest.mark.parametrize("n", ["a/b"])
        def test_param(cassette_proxy, n):
            assert cassette_proxy.cassette.name == "test_param[a-b].yaml"
        """
    )
    pytester.runpytest("--cassette-record-mode=none").assert_outcomes(passed=4)


def test_rewrite_deletes_the_cassette_and_records_it_again(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, url = upstream
    pytester.makepyfile(test_sync=SYNC_TEST)
    pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
    cassette = cassette_of(pytester, "test_sync", "test_cancel")
    cassette.write_text(cassette.read_text().replace("cancelled", "canceled"))
    result = pytester.runpytest("--cassette-record-mode=rewrite", f"--cassette-upstream={url}")
    result.assert_outcomes(passed=1)
    assert "canceled" not in cassette.read_text()
    assert fake.cancels == 2


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ('recordmode="once"', "*unknown option(s) recordmode*"),
        ('validation="loud"', "*invalid cassette_proxy option validation='loud': *"),
        ('record_mode="sometimes"', "*record_mode 'sometimes' is not one of *"),
    ],
    ids=["unknown-option", "bad-value", "bad-record-mode"],
)
def test_bad_marker_options_fail_in_one_line_naming_them(
    pytester: pytest.Pytester, options: str, expected: str
) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.cassette_proxy({options})
        def test_bad(cassette_proxy):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([expected])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*pydantic*")


def test_outside_xdist_a_cassette_another_process_records_fails_at_once(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    _, url = upstream
    pytester.makepyfile(test_sync=SYNC_TEST)
    holder = CassetteLock(cassette_of(pytester, "test_sync", "test_cancel"))
    assert holder.acquire()  # as a `cassette-proxy serve` recording it would
    try:
        started = time.monotonic()
        result = pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
        assert time.monotonic() - started < 30  # not the xdist wait
    finally:
        holder.release()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*is being recorded by process*"])


def test_xdist_workers_sharing_a_cassette_take_turns_recording_it(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    """Four tests, one cassette, two workers: one records at a time (the lock), the others
    wait for it; rewrite deletes only the cassette from before the run."""
    fake, url = upstream
    ids = [vectors.V1_ID, vectors.V2_ID, "resp_gzip_1", "resp_chunked_1"]  # all answer 200
    pytester.makepyfile(
        test_shared="\n".join(
            f"""
import time, openai, pytest

@pytest.mark.cassette_proxy(cassette="cassettes/shared.yaml")
def test_{n}(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
        client.responses.cancel("{response_id}")
    time.sleep(0.5)  # hold the cassette, so the other worker has to wait for it
"""
            for n, response_id in enumerate(ids)
        )
    )
    args = ("-n", "2", f"--cassette-upstream={url}")
    for _ in range(2):  # the second run deletes the first run's recording, and records anew
        result = pytester.runpytest_subprocess("--cassette-record-mode=rewrite", *args)
        result.assert_outcomes(passed=4)
        shared = yaml.safe_load((pytester.path / "cassettes" / "shared.yaml").read_text())
        assert len(shared["interactions"]) == 4
    assert fake.cancels == 8
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=4)  # replay, offline
    assert fake.cancels == 8


def test_each_xdist_worker_runs_its_own_proxies(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, url = upstream
    tests = "\n".join(
        SYNC_TEST.replace("def test_cancel(", f"def test_cancel_{n}(") for n in range(6)
    )
    pytester.makepyfile(test_many=tests)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--cassette-record-mode=once", f"--cassette-upstream={url}"
    )
    result.assert_outcomes(passed=6)
    assert fake.cancels == 6
    pytester.runpytest_subprocess("-n", "2", f"--cassette-upstream={url}").assert_outcomes(passed=6)
    assert fake.cancels == 6


def test_the_examples_folder_shows_one_pass_and_one_failure(pytester: pytest.Pytester) -> None:
    examples = Path(__file__).parent / "examples"
    shutil.copytree(examples, pytester.path / "examples")
    result = pytester.runpytest("examples")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_unrecorded_call_fails _*",
            "*record_mode 'none' is set by @pytest.mark.cassette_proxy, which wins over*",
        ]
    )
    result.stdout.no_fnmatch_line("*--cassette-record-mode=new_episodes*")  # would not work here


def test_rewrite_deletes_a_shared_cassette_once_per_run(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    _, url = upstream
    pytester.makepyfile(
        test_shared=f"""
        import openai, pytest

        SHARED = pytest.mark.cassette_proxy(cassette="cassettes/shared.yaml")

        @SHARED
        def test_one(cassette_proxy):
            with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
                client.responses.cancel("{vectors.V1_ID}")

        @SHARED
        def test_two(cassette_proxy):
            with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
                client.responses.cancel("{vectors.V2_ID}")
        """
    )
    args = ("--cassette-record-mode=rewrite", f"--cassette-upstream={url}")
    pytester.runpytest(*args).assert_outcomes(passed=2)
    pytester.runpytest(*args).assert_outcomes(passed=2)
    shared = yaml.safe_load((pytester.path / "cassettes" / "shared.yaml").read_text())
    assert len(shared["interactions"]) == 2
    pytester.runpytest(f"--cassette-upstream={url}").assert_outcomes(passed=2)


def test_a_failing_test_is_reported_once_with_the_proxy_diagnosis(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    _, url = upstream
    pytester.makepyfile(test_sync=SYNC_TEST)
    pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
    pytester.makepyfile(
        test_fails="""
        import openai, pytest

        @pytest.mark.cassette_proxy(cassette="cassettes/test_sync/test_cancel.yaml")
        def test_fails(cassette_proxy):
            with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
                client.responses.cancel("resp_not_recorded")  # raises: the test fails by itself
        """
    )
    result = pytester.runpytest("test_fails.py", f"--cassette-upstream={url}")
    result.assert_outcomes(failed=1)  # not also an error at teardown
    result.stdout.fnmatch_lines(
        [
            "E * openai.InternalServerError: Error code: 501 - *",  # the test's own failure,
            "*- cassette-proxy -*",  # then the proxy's diagnosis
            "cassette-proxy answered 1 request(s) of this test with an error:",
            "*POST /v1/responses/resp_not_recorded/cancel -> 501 cassette_miss*",
            "*Closest recorded interactions:*",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown*")


def test_ini_options_set_the_upstream_and_record_mode_once_for_every_run(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, url = upstream
    ini(pytester, f"cassette_proxy_upstream = {url}\ncassette_proxy_record_mode = once")
    pytester.makepyfile(test_sync=SYNC_TEST)
    pytester.runpytest().assert_outcomes(passed=1)  # records: no flag needed
    assert fake.cancels == 1
    pytester.runpytest("--cassette-record-mode=none").assert_outcomes(passed=1)  # replays
    assert fake.cancels == 1
    cassette = yaml.safe_load(cassette_of(pytester, "test_sync", "test_cancel").read_text())
    assert cassette["interactions"][0]["request"]["uri"].startswith(url)


def test_the_plugin_reads_serve_options_from_the_projects_pyproject(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    """``[tool.cassette-proxy]`` is the table ``serve --config pyproject.toml`` reads: the
    plugin takes a test's options from it (below the ini options and flags) and leaves the
    ones only a sidecar has (port, log file, workers) to ``serve``."""
    fake, url = upstream
    pytester.makefile(
        ".toml",
        pyproject=f"""
        [tool.cassette-proxy]
        upstream = "{url}"
        record-mode = "once"
        allow_playback_repeats = true
        port = 9999
        workers = 4
        """,
    )
    pytester.makepyfile(test_sync=SYNC_TEST)
    pytester.runpytest().assert_outcomes(passed=1)  # recorded from the table's upstream
    assert fake.cancels == 1
    pytester.runpytest("--cassette-record-mode=none").assert_outcomes(passed=1)  # flag wins
    assert fake.cancels == 1


def test_an_unknown_key_in_the_projects_table_fails_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", pyproject='[tool.cassette-proxy]\nrecod-mode = "once"\n')
    pytester.makepyfile(test_sync=SYNC_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)  # at set-up, as a missing cassette
    result.stdout.fnmatch_lines(["*unknown option 'recod-mode' in [[]tool.cassette-proxy] of *"])
    result.stdout.no_fnmatch_line("*During handling*")


HERMETIC_TEST = f"""
import openai, pytest

def call(cassette_proxy, **extra):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
        return client.responses.cancel("{vectors.V2_ID}", **extra).status

@pytest.mark.cassette_proxy(cassette="cassettes/one.yaml")
def test_twice(cassette_proxy):
    assert call(cassette_proxy) == "cancelled"
    assert call(cassette_proxy) == "cancelled"  # recorded once: a miss, unless repeats

@pytest.mark.cassette_proxy(cassette="cassettes/one.yaml")
def test_other_query(cassette_proxy):
    assert call(cassette_proxy, extra_query={{"page": "2"}}) == "cancelled"  # a miss on query
"""


def test_cassette_proxy_variables_do_not_configure_tests_except_the_key(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exports meant for a ``serve`` sidecar must not make tests that should fail pass (or
    record, or reach another upstream); the key is the one variable tests use."""
    fake, url = upstream
    key = "AQVN" + "x" * 36  # built here, so secret scanners do not flag the source
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM_API_KEY", key)
    pytester.makepyfile(
        test_record=f"""
        import openai, pytest

        @pytest.mark.cassette_proxy(cassette="cassettes/one.yaml")
        def test_record(cassette_proxy):
            with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
                client.responses.cancel("{vectors.V2_ID}")
        """
    )
    args = (f"--cassette-upstream={url}",)
    pytester.runpytest("--cassette-record-mode=once", *args).assert_outcomes(passed=1)
    assert fake.received[-1].headers["authorization"] == f"Api-Key {key}"
    for name, value in {
        "MATCH_ON": "method,path",
        "ALLOW_PLAYBACK_REPEATS": "true",
        "RECORD_MODE": "new_episodes",
        "VALIDATION": "off",
        "UPSTREAM": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(f"CASSETTE_PROXY_{name}", value)
    pytester.makepyfile(test_hermetic=HERMETIC_TEST)
    result = pytester.runpytest("test_hermetic.py", *args)
    result.assert_outcomes(failed=2)
    assert fake.cancels == 1  # nothing recorded
    result.stdout.fnmatch_lines(
        [
            "*already played (add allow_playback_repeats=True to @pytest.mark.cassette_proxy(*",
            "*To record one more interaction for it instead (from *):",
            "*pytest 'test_hermetic.py::test_twice' --cassette-record-mode=new_episodes*",
        ]
    )
    result.stdout.no_fnmatch_line("*--allow-playback-repeats*")


def test_a_miss_on_the_upstream_alone_hints_commands_that_work(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    """Recorded from one upstream, replayed with another: the hint names the upstream to replay
    with, and records only with the upstream the test runs with. Both commands are run."""
    fake, recorded_from = upstream
    other = FakeUpstream()
    other_server = ServerThread(other.app)
    other_url = other_server.start()
    try:
        pytester.makepyfile(test_sync=SYNC_TEST)
        pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={recorded_from}")
        result = pytester.runpytest(f"--cassette-upstream={other_url}")
        result.assert_outcomes(failed=1)
        output = result.stdout.str()
        differs = "The closest recording differs only in the upstream: it was recorded from"
        assert f"{differs} {recorded_from}." in output
        replay = re.search(r"To replay it, run pytest '([^']+)' (--cassette-upstream=\S+) ", output)
        assert replay is not None, output
        assert replay.groups() == (
            "test_sync.py::test_cancel",
            f"--cassette-upstream={recorded_from}",
        )
        pytester.runpytest(*replay.groups()).assert_outcomes(passed=1)
        assert (fake.cancels, other.cancels) == (1, 0)
        record = re.search(
            r"CASSETTE_PROXY_UPSTREAM_API_KEY=<key> pytest '([^']+)' (.*)$", output, re.MULTILINE
        )
        assert record is not None, output
        assert record[2] == f"--cassette-record-mode=new_episodes --cassette-upstream={other_url}"
        assert "match_on='method,path,query,body'" in output
    finally:
        other_server.stop()


def test_a_missing_cassette_hint_follows_where_the_record_mode_is_set(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_pinned="""
        import pytest

        @pytest.mark.cassette_proxy(record_mode="none")
        def test_pinned(cassette_proxy):
            pass
        """
    )
    result = pytester.runpytest("--cassette-upstream=http://127.0.0.1:9")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_pinned.yaml does not exist and this test's record_mode 'none' is set by "
            "@pytest.mark.cassette_proxy*set record_mode='once' there and run:",
            "*CASSETTE_PROXY_UPSTREAM_API_KEY=<key> pytest 'test_pinned.py::test_pinned' "
            "--cassette-upstream=http://127.0.0.1:9",
        ]
    )


def test_replay_from_a_read_only_project_writes_nothing(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    """A checkout on a read-only mount: the tests replay (record mode none, and once over an
    existing cassette) without a lock, a journal or a folder."""
    fake, url = upstream
    pytester.makepyfile(
        test_replay=f"""
        import openai

        def test_replay(cassette_proxy):
            with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
                assert client.responses.cancel("{vectors.V2_ID}").status == "cancelled"
            assert cassette_proxy.played + cassette_proxy.recorded == 1
        """
    )
    pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
    files = snapshot(pytester.path)
    assert "cassettes/test_replay/test_replay.yaml" in files
    args = ("-p", "no:cacheprovider", f"--cassette-upstream={url}")
    with read_only_folder(tmp_path / "ro", files) as project:
        for mode in ("none", "once"):
            result = pytester.runpytest(
                "--rootdir", str(project), str(project), f"--cassette-record-mode={mode}", *args
            )
            result.assert_outcomes(passed=1)
        # Recording there cannot work: one line that says why and what to do, no traceback.
        result = pytester.runpytest(
            "--rootdir", str(project), str(project), "--cassette-record-mode=all", *args
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*cassette-proxy could not start: cannot create *test_replay.yaml.lock' beside the "
             "cassette (Read-only file system), which a proxy that records needs: *"]
        )  # fmt: skip
        result.stdout.no_fnmatch_line("*Traceback*")
        assert snapshot(project) == files
    assert fake.cancels == 1


STREAM_TEST = """
import time, openai, pytest

@pytest.mark.cassette_proxy(replay_timing="recorded", replay_speed=2.0)
def test_stream(cassette_proxy):
    assert cassette_proxy.settings.replay_timing.value == "recorded"
    client = openai.OpenAI(base_url=cassette_proxy.url, api_key="dummy", max_retries=0)
    started = time.perf_counter()
    with client:
        stream = client.responses.create(model="stream-ok", input="x", stream=True)
        types = [event.type for event in stream]
    elapsed = time.perf_counter() - started
    assert types[0] == "response.created" and types[-1] == "response.completed"
    # Recorded with 0.1 s between events (11 gaps): live it takes 1.1 s or more; replayed at
    # the recorded times, twice as fast, about 0.55 s (off, it would be a few ms).
    if cassette_proxy.record_mode == "once":
        assert elapsed > 1.0, elapsed
    else:
        assert 0.45 < elapsed < 1.0, elapsed
"""


def test_marker_replays_a_stream_at_its_recorded_timing_scaled(pytester: pytest.Pytester) -> None:
    streaming = StreamUpstream(gap=0.1)
    server = ServerThread(streaming.app)
    url = server.start()
    try:
        pytester.makepyfile(test_stream=STREAM_TEST)
        recorded = pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
        recorded.assert_outcomes(passed=1)
        replayed = pytester.runpytest(f"--cassette-upstream={url}")  # none: offline
        replayed.assert_outcomes(passed=1)
        assert len(streaming.sent) == 1  # the replay never reached the upstream
    finally:
        server.stop()


FAULTS_TEST = f"""
import openai, pytest

CANCEL = "/v1/responses/*/cancel"

@pytest.mark.cassette_proxy(
    faults=[{{"path": CANCEL, "status": 429, "times": 1, "headers": {{"retry-after-ms": "10"}}}}]
)
def test_the_marker_s_fault_is_retried(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="dummy") as client:
        assert client.responses.cancel("{vectors.V2_ID}").status == "cancelled"
    faulted, answered = cassette_proxy.exchanges
    assert (faulted.status, faulted.source, faulted.fault.rule) == (429, "proxy", 1)
    assert (answered.status, answered.fault) == (200, None)

def test_the_fixture_installs_and_clears_faults(cassette_proxy):
    number = cassette_proxy.fault(path=CANCEL, status=503)
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="dummy", max_retries=0) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            client.responses.cancel("{vectors.V2_ID}")
        assert f"fault rule {{number}}" in caught.value.message
        assert cassette_proxy.clear_faults() == 1
        assert client.responses.cancel("{vectors.V2_ID}").status == "cancelled"
    with pytest.raises(ValueError, match=r"invalid fault rule \\(status\\): Input should be"):
        cassette_proxy.fault(status=200)

@pytest.mark.cassette_proxy(
    faults=[{{"path": "/v1/responses", "error_after_events": 2, "times": 1}}]
)
def test_a_stream_fault_in_strict_mode(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="dummy", max_retries=0) as client:
        stream = client.responses.create(model="stream-ok", input="x", stream=True)
        seen = []
        with pytest.raises(openai.APIError) as caught:
            for event in stream:
                seen.append(event.type)
        assert seen == ["response.created", "response.in_progress"]
        assert caught.value.code == "server_error"
        again = client.responses.create(model="stream-ok", input="x", stream=True)
        assert [event.type for event in again][-1] == "response.completed"
    assert [e.source for e in cassette_proxy.exchanges] == [
        "upstream" if cassette_proxy.record_mode == "once" else "cassette"
    ] * 2
"""


def test_faults_from_the_marker_and_the_fixture_in_record_and_replay(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    """The faulted exchanges are never recorded, so the replay run meets the same faults and
    the same recordings."""
    fake, url = upstream
    streaming = StreamUpstream()
    stream_server = ServerThread(streaming.app)
    stream_url = stream_server.start()
    try:
        pytester.makepyfile(test_faults=FAULTS_TEST)
        # The stream test records from the stream upstream; the others from the fake one.
        pytester.makeconftest(
            f"""
            import pytest

            @pytest.fixture
            def cassette_proxy_config(request):
                if "stream" in request.node.name:
                    return {{"upstream": "{stream_url}"}}
                return {{"upstream": "{url}"}}
            """
        )
        recorded = pytester.runpytest("--cassette-record-mode=once")
        recorded.assert_outcomes(passed=3)
        assert fake.cancels == 2
        replayed = pytester.runpytest()
        replayed.assert_outcomes(passed=3)
        assert fake.cancels == 2
        assert len(streaming.sent) == 2  # recording: the faulted stream and the whole one
        for test in ("test_the_marker_s_fault_is_retried",
                     "test_the_fixture_installs_and_clears_faults",
                     "test_a_stream_fault_in_strict_mode"):  # fmt: skip
            cassette = cassette_of(pytester, "test_faults", test)
            assert len(yaml.safe_load(cassette.read_text())["interactions"]) == 1
    finally:
        stream_server.stop()


def test_a_bad_fault_in_the_marker_fails_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.cassette_proxy(faults=[{"status": 500, "colour": "red"}])
        def test_bad(cassette_proxy):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*invalid cassette_proxy option faults=*: Extra inputs are not permitted*"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
