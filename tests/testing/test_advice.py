"""Hints that work: the advice a miss (or a recording the proxy declines) ends with is followed
here, and must then make the test pass.

Before (issue 21): following the hint's ``new_episodes`` twice grew a cassette from 1 to 3
near-identical interactions and the next replay still failed; in a multi-turn test,
``new_episodes`` replayed the early turns and sent the upstream an id it never issued, recording
its 404 for good.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import pytest
import yaml

from cassette_proxy.serving.process.serve import ServerThread
from tests.test_pytest_plugin import ini
from tests.yandex_upstream import YandexUpstream

pytestmark = pytest.mark.slow

KEY = "AQVN" + "h" * 36

TURNS = """
import os, openai

MODEL = "gpt://b1gAAAA/yandexgpt/latest"

def test_conversation(cassette_proxy):
    turns = int(os.environ.get("TURNS", "2"))
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", project="b1gAAAA",
                       max_retries=0) as client:
        previous = None
        for turn in range(turns):
            answer = client.responses.create(
                model=MODEL, input=f"Ход {turn}", previous_response_id=previous
            )
            previous = answer.id
"""

TIMESTAMPED = """
import time, openai, pytest

MARK = pytest.mark.cassette_proxy()

@MARK
def test_timestamped(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", project="b1gAAAA",
                       max_retries=0) as client:
        client.responses.create(model="gpt://b1gAAAA/yandexgpt/latest", input="Который час?",
                                metadata={"ts": str(time.time())})
"""


@pytest.fixture(autouse=True)
def _quiet_ini(pytester: pytest.Pytester) -> None:
    ini(pytester)


@pytest.fixture
def yandex(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[YandexUpstream, str]]:
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM_API_KEY", KEY)
    service = YandexUpstream(KEY)
    server = ServerThread(service.app)
    yield service, server.start()
    server.stop()


def hinted_command(output: str) -> list[str]:
    """The pytest command a hint gives, as arguments (the key variable set by the fixture)."""
    found = re.search(r"CASSETTE_PROXY_UPSTREAM_API_KEY=<key> pytest (.*)$", output, re.M)
    assert found is not None, output
    return shlex.split(found[1])


def test_a_turn_that_continues_a_replayed_one_is_not_sent_and_the_hint_records_the_test(
    pytester: pytest.Pytester,
    yandex: tuple[YandexUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, url = yandex
    pytester.makepyfile(test_turns=TURNS)
    upstream = f"--cassette-upstream={url}"
    pytester.runpytest("--cassette-record-mode=once", upstream).assert_outcomes(passed=1)
    assert service.creates == 2
    cassette = pytester.path / "cassettes/test_turns/test_conversation.yaml"
    recorded = cassette.read_text()

    monkeypatch.setenv("TURNS", "3")  # the test grows a third turn
    result = pytester.runpytest("--cassette-record-mode=new_episodes", upstream)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*POST /v1/responses -> 501 cassette_chain_broken",
            "*did not send POST * upstream: it continues resp_*, a response replayed from "
            "cassette *, which the upstream never issued to this run*Only recording the whole "
            "test again works*",
        ]
    )
    assert service.creates == 2  # nothing was sent: no 404 to record
    assert cassette.read_text() == recorded  # and nothing was added

    pytester.runpytest(*hinted_command(result.stdout.str())).assert_outcomes(passed=1)
    assert service.creates == 5  # the whole test, recorded again
    assert len(yaml.safe_load(cassette.read_text())["interactions"]) == 3
    pytester.runpytest(upstream).assert_outcomes(passed=1)  # and it replays
    assert service.creates == 5

    # Replaying (none), the miss says the same, not "record it with new_episodes".
    monkeypatch.setenv("TURNS", "4")
    result = pytester.runpytest(upstream)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*This request continues resp_*, a response replayed from this "
                                 "cassette: recording only this call cannot work*"])  # fmt: skip
    result.stdout.no_fnmatch_line("*new_episodes*")


def test_a_near_duplicate_is_not_recorded_and_the_advice_makes_it_replay(
    pytester: pytest.Pytester, yandex: tuple[YandexUpstream, str]
) -> None:
    service, url = yandex
    pytester.makepyfile(test_ts=TIMESTAMPED)
    upstream = f"--cassette-upstream={url}"
    pytester.runpytest("--cassette-record-mode=once", upstream).assert_outcomes(passed=1)
    cassette = pytester.path / "cassettes/test_ts/test_timestamped.yaml"

    # Replayed, the miss advises ignoring the field, not recording it again.
    result = pytester.runpytest(upstream)
    result.assert_outcomes(failed=1)
    advice = (
        "*It differs from that recording only in values that change from run to run: "
        "/metadata/ts ('*' now, '*' recorded). Recording it again would not help*"
    )
    result.stdout.fnmatch_lines([advice, "*To match it, ignore them: @pytest.mark.cassette_proxy("
                                 "match_ignore=[[]'/metadata/ts'])*"])  # fmt: skip
    result.stdout.no_fnmatch_line("*--cassette-record-mode=new_episodes*")

    # new_episodes does not grow the cassette with it; it says so, and how to make it match.
    for _ in range(2):
        result = pytester.runpytest("--cassette-record-mode=new_episodes", upstream)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*POST /v1/responses -> 200 not recorded*", advice])
        assert len(yaml.safe_load(cassette.read_text())["interactions"]) == 1

    pytester.makepyfile(
        test_ts=TIMESTAMPED.replace(
            "pytest.mark.cassette_proxy()",
            "pytest.mark.cassette_proxy(match_ignore=['/metadata/ts'])",
        )
    )
    pytester.runpytest(upstream).assert_outcomes(passed=1)
    assert service.creates == 3  # the recording, and the two new_episodes runs


IN_PROMPT = """
import time, openai, pytest

NOW = str(int(time.time() * 1000))  # this run's value, inside the prompt's text


@pytest.mark.cassette_proxy()
def test_clock(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", project="b1gAAAA",
                       max_retries=0) as client:
        client.responses.create(model="gpt://b1gAAAA/yandexgpt/latest",
                                input=f"Сейчас {NOW}, который час?")
"""


def test_a_value_inside_a_prompt_is_advised_a_placeholder_and_then_a_new_recording(
    pytester: pytest.Pytester, yandex: tuple[YandexUpstream, str]
) -> None:
    """The cassette holds the value it was recorded with: a placeholder given afterwards
    matches only once the test is recorded again, so the advice says both, and following
    both makes it replay."""
    _, url = yandex
    upstream = f"--cassette-upstream={url}"
    pytester.makepyfile(test_clock=IN_PROMPT)
    pytester.runpytest("--cassette-record-mode=once", upstream).assert_outcomes(passed=1)
    result = pytester.runpytest(upstream)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*give the value that changes inside /input a placeholder*",
        "*Then, since the cassette holds the value it was recorded with, record it again:*",
        "*--cassette-record-mode=rewrite*",
    ])  # fmt: skip
    pytester.makepyfile(test_clock=IN_PROMPT + """
@pytest.fixture
def cassette_proxy_config():
    return {"placeholders": {"NOW": NOW}}
""")  # fmt: skip
    pytester.runpytest("--cassette-record-mode=rewrite", upstream).assert_outcomes(passed=1)
    pytester.runpytest(upstream).assert_outcomes(passed=1)  # another run, another NOW


def test_fields_ignored_once_in_the_ini_are_ignored_for_every_test(
    pytester: pytest.Pytester, yandex: tuple[YandexUpstream, str]
) -> None:
    service, url = yandex
    ini(pytester, "cassette_proxy_match_ignore =\n    /metadata/ts\n    /user")
    pytester.makepyfile(test_ts=TIMESTAMPED)
    upstream = f"--cassette-upstream={url}"
    pytester.runpytest("--cassette-record-mode=once", upstream).assert_outcomes(passed=1)
    pytester.runpytest(upstream).assert_outcomes(passed=1)  # another ts, ignored
    assert service.creates == 1
