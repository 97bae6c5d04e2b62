"""Cassette hygiene in the pytest plugin: a failing test's recordings, unused interactions (also
held against vcrpy's ``drop_unused_requests``), a cassette's age, refused keys, and the line
that says a run records with the clients' own keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cassette_proxy.serving.process.serve import ServerThread
from tests import vectors
from tests.fake_upstream import FakeUpstream
from tests.test_pytest_plugin import ini
from tests.yandex_upstream import YandexUpstream

pytestmark = pytest.mark.slow

CANCELS = f"""
import os, openai, pytest, vcr

IDS = {[vectors.V1_ID, vectors.V2_ID, vectors.V3_ID]!r}


def cancel(base_url, *ids):
    with openai.OpenAI(base_url=base_url, api_key="d", max_retries=0) as client:
        return [client.responses.cancel(i).status for i in ids]
"""


@pytest.fixture(autouse=True)
def _quiet_ini(pytester: pytest.Pytester) -> None:
    ini(pytester)


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    server = ServerThread(fake.app)
    url = server.start()
    monkeypatch.setenv("UPSTREAM", url)
    yield fake, url
    server.stop()


def count(cassette: Path) -> int:
    return len(yaml.safe_load(cassette.read_text())["interactions"])


def test_a_failing_test_saves_nothing_it_recorded_unless_asked(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    _, url = upstream
    pytester.makepyfile(
        test_fails=CANCELS
        + """
def test_fails(cassette_proxy):
    cancel(cassette_proxy.url, IDS[0])
    assert False, "the code under test is broken"

@pytest.mark.cassette_proxy(record_on_failure=True)
def test_fails_and_keeps(cassette_proxy):
    cancel(cassette_proxy.url, IDS[0])
    assert False, "the code under test is broken"
"""
    )
    result = pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*the 1 interaction(s) this failing test recorded were not saved to *test_fails.yaml "
         "(record_on_failure=True in @pytest.mark.cassette_proxy(...) keeps them)"]
    )  # fmt: skip
    cassettes = pytester.path / "cassettes" / "test_fails"
    assert not (cassettes / "test_fails.yaml").exists()
    assert not (cassettes / "test_fails.yaml.journal").exists()
    assert count(cassettes / "test_fails_and_keeps.yaml") == 1


def test_unused_interactions_can_fail_a_test_and_are_dropped_as_vcrpy_drops_them(
    pytester: pytest.Pytester, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, url = upstream
    pytester.makepyfile(
        test_unused=CANCELS
        + """
def test_vcrpy_records():
    with vcr.use_cassette("vcrpy.yaml", record_mode="once"):
        cancel(os.environ["UPSTREAM"] + "/v1", *IDS)

@pytest.mark.cassette_proxy(cassette="proxy.yaml", record_mode="once")
def test_proxy_records(cassette_proxy):
    cancel(cassette_proxy.url, *IDS)
"""
    )
    recorded = pytester.runpytest(f"--cassette-upstream={url}")
    recorded.assert_outcomes(passed=2)
    pytester.makepyfile(
        test_unused=CANCELS
        + """
@pytest.mark.cassette_proxy(cassette="proxy.yaml")
def test_plays_two_of_three(cassette_proxy):
    cancel(cassette_proxy.url, IDS[0], IDS[2])

@pytest.mark.cassette_proxy(cassette="proxy.yaml", allow_unused=False)
def test_must_play_all(cassette_proxy):
    cancel(cassette_proxy.url, IDS[0], IDS[2])

def test_vcrpy_drops():
    with vcr.use_cassette("vcrpy.yaml", record_mode="none", drop_unused_requests=True):
        cancel(os.environ["UPSTREAM"] + "/v1", IDS[0], IDS[2])

@pytest.mark.cassette_proxy(cassette="proxy.yaml", drop_unused_requests=True)
def test_proxy_drops(cassette_proxy):
    cancel(cassette_proxy.url, IDS[0], IDS[2])
"""
    )
    result = pytester.runpytest(f"--cassette-upstream={url}", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 interaction(s) of *proxy.yaml were never played by this test, and allow_unused "
            "is False:",
            f"*#1 POST {url}/v1/responses/{vectors.V2_ID}/cancel",
        ]
    )

    def uris(name: str) -> list[str]:
        data = yaml.safe_load((pytester.path / name).read_text())["interactions"]
        return [i["request"]["uri"] for i in data]

    assert uris("proxy.yaml") == uris("vcrpy.yaml")
    assert [u.rsplit("/", 2)[1] for u in uris("proxy.yaml")] == [vectors.V1_ID, vectors.V3_ID]
    assert fake.cancels == 6  # the replays reached nothing


AGED = (
    CANCELS
    + """
@pytest.mark.cassette_proxy(cassette="aged.yaml", re_record_interval="1d",
                            re_record_action=os.environ["ACTION"])
def test_aged(cassette_proxy):
    assert cancel(cassette_proxy.url, IDS[0]) == ["cancelled"]
"""
)


@pytest.mark.parametrize("action", ["warn", "fail", "record"])
def test_a_cassette_past_its_re_record_interval_warns_fails_or_is_recorded_again(
    pytester: pytest.Pytester,
    upstream: tuple[FakeUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
    action: str,
) -> None:
    fake, url = upstream
    monkeypatch.setenv("ACTION", action)
    pytester.makepyfile(test_aged=AGED)
    args = (f"--cassette-upstream={url}",)
    pytester.runpytest("--cassette-record-mode=once", *args).assert_outcomes(passed=1)
    cassette = pytester.path / "aged.yaml"
    text = cassette.read_text()
    [stamp] = re.findall(r"recorded_at: '(\S+)'", text)
    cassette.write_text(text.replace(stamp, "2020-01-01T00:00:00Z"))
    # once: it may record, so "record" records the whole cassette again.
    result = pytester.runpytest("--cassette-record-mode=once", *args)
    expired = (
        "*cassette '*aged.yaml' was recorded * days ago (2020-01-01 00:00 UTC), more than its "
        "re_record_interval of 24 hours*"
    )
    if action == "warn":
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([expired, "*--cassette-record-mode=rewrite*"])
        assert "each id the upstream issues" not in result.stdout.str()  # not a broken chain
        assert fake.cancels == 1
    elif action == "fail":
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [f"*could not start: {expired[1:]}, and re_record_action is 'fail'*"]
        )
        assert fake.cancels == 1
    else:
        result.assert_outcomes(passed=1)
        assert fake.cancels == 2  # recorded again
        assert "2020-01-01" not in cassette.read_text()
        assert count(cassette) == 1  # in all: the new recording replaced the old


REFUSED = """
import os, openai

def test_create(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="dummy", max_retries=0) as client:
        try:
            client.responses.create(model="gpt://b1gAAAA/yandexgpt/latest", input="Привет")
        except openai.AuthenticationError:
            pass  # code that swallows a 401

def test_another(cassette_proxy):
    test_create(cassette_proxy)
"""


def test_a_refused_key_is_not_recorded_and_the_run_says_whose_key_it_sent(
    pytester: pytest.Pytester,
) -> None:
    service = YandexUpstream("AQVN" + "z" * 36)
    server = ServerThread(service.app)
    url = server.start()
    try:
        pytester.makepyfile(test_refused=REFUSED)
        result = pytester.runpytest("--cassette-record-mode=once", f"--cassette-upstream={url}")
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(
            [
                "*POST /v1/responses -> 401 not recorded",
                "*not recorded (auth_failure: the upstream answered 401 to a request carrying "
                "the client's own Authorization (no CASSETTE_PROXY_UPSTREAM_API_KEY is set)*",
                "*CASSETTE_PROXY_UPSTREAM_API_KEY=<key> pytest 'test_refused.py::test_create'*",
            ]
        )
        output = result.stdout.str()
        assert output.count("records without CASSETTE_PROXY_UPSTREAM_API_KEY") == 1  # once a run
        assert not list((pytester.path / "cassettes").rglob("*.yaml"))  # nothing recorded
        # The advice, followed as given (with the key the upstream takes), records the test.
        advice = next(line for line in output.splitlines() if "=<key> pytest " in line)
        _, _, command = advice.partition("=<key> pytest ")
        args = [arg.strip("'") for arg in command.split()]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CASSETTE_PROXY_UPSTREAM_API_KEY", service.key)
            pytester.runpytest(*args).assert_outcomes(passed=1)
        replay = pytester.runpytest(f"--cassette-upstream={url}", "-k", "test_create")
        replay.assert_outcomes(passed=1)  # and it replays
        (pytester.path / "cassettes/test_refused/test_create.yaml").unlink()
        marked = REFUSED.replace(
            "def test_create(",
            "@pytest.mark.cassette_proxy(record_auth_failures=True)\ndef test_create(",
        ).replace("import os, openai", "import os, openai, pytest")
        pytester.makepyfile(test_refused=marked)
        result = pytester.runpytest(
            "--cassette-record-mode=once", f"--cassette-upstream={url}", "-k", "test_create"
        )
        result.assert_outcomes(passed=1)
        assert (
            "code: 401" in (pytester.path / "cassettes/test_refused/test_create.yaml").read_text()
        )
    finally:
        server.stop()
