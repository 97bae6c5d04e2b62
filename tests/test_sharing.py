"""Cassettes a team can share, end to end: a test suite written the way Yandex AI Studio documents
its client (``openai.OpenAI(api_key=..., base_url=..., project=FOLDER)`` and
``model=f"gpt://{FOLDER}/yandexgpt/latest"``), recorded by one member in their folder with their
key, replayed by another (or CI) in another folder with another key or none, under ``pytest``
and ``pytest -n 2``, against a stand-in for the service (:mod:`tests.yandex_upstream`).

Before this worked (issue 21): replayed in another folder, 5 of 5 tests failed, each on a diff
that was only the folder; replayed in the recording folder, 3 of 5 failed on a timestamp, a
random user id and a uuid in the prompt; the cassette held the folder in request and response.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cassette_proxy.serving.process.serve import ServerThread
from tests.test_pytest_plugin import ini
from tests.yandex_upstream import YandexUpstream

pytestmark = pytest.mark.slow

RECORDER_KEY = "AQVN" + "r" * 36  # built here, so secret scanners do not flag the source
RECORDER_FOLDER = "b1gAAAA"
OTHER_FOLDER = "b1gBBBB"

# The team's conftest: what changes from run to run, declared once.
CONFTEST = """
import uuid, pytest

@pytest.fixture(scope="session")
def order_id():
    return str(uuid.uuid4())  # a new order every run, quoted in a prompt

@pytest.fixture
def cassette_proxy_config(order_id):
    return {
        "match_ignore": ["/metadata/ts", "/user", "/safety_identifier"],
        "placeholders": {"ORDER": order_id},
    }
"""

SUITE = """
import os, time, uuid, openai, pytest

FOLDER = os.environ["TEAM_FOLDER"]
MODEL = f"gpt://{FOLDER}/yandexgpt/latest"

def client(cassette_proxy):
    key = os.environ.get("TEAM_KEY", "dummy")
    return openai.OpenAI(api_key=key, base_url=cassette_proxy.url, project=FOLDER, max_retries=0)

def test_plain(cassette_proxy):
    with client(cassette_proxy) as c:
        response = c.responses.create(model=MODEL, input="Привет")
    assert response.model == MODEL
    assert response.output_text == "Ответ: Привет"

def test_timestamp(cassette_proxy):
    with client(cassette_proxy) as c:
        response = c.responses.create(
            model=MODEL, input="Который час?", metadata={"ts": str(time.time())}
        )
    assert response.model == MODEL

def test_random_user(cassette_proxy):
    with client(cassette_proxy) as c:
        response = c.responses.create(
            model=MODEL, input="Кто я?", user=f"user-{uuid.uuid4()}",
            safety_identifier=uuid.uuid4().hex,
        )
    assert response.model == MODEL

def test_order_in_the_prompt(cassette_proxy, order_id):
    with client(cassette_proxy) as c:
        response = c.responses.create(model=MODEL, input=f"Заказ {order_id}: где он?")
    assert response.output_text == f"Ответ: Заказ {order_id}: где он?"

def test_stream(cassette_proxy):
    with client(cassette_proxy) as c:
        events = list(c.responses.create(model=MODEL, input="Поток", stream=True))
    assert events[0].response.model == MODEL
    assert events[-1].type == "response.completed"
    assert events[-1].response.model == MODEL
"""

# The same calls, but one asks something else: a different prompt is still a miss.
ANOTHER_PROMPT = """
import os, openai, pytest

FOLDER = os.environ["TEAM_FOLDER"]

@pytest.mark.cassette_proxy(cassette="cassettes/test_team/test_plain.yaml")
def test_plain(cassette_proxy):
    with openai.OpenAI(api_key="dummy", base_url=cassette_proxy.url, project=FOLDER,
                       max_retries=0) as c:
        c.responses.create(model=f"gpt://{FOLDER}/yandexgpt/latest", input="Пока")
"""


@pytest.fixture(autouse=True)
def _quiet_ini(pytester: pytest.Pytester) -> None:
    ini(pytester)


@pytest.fixture
def yandex() -> Iterator[tuple[YandexUpstream, str]]:
    service = YandexUpstream(RECORDER_KEY)
    server = ServerThread(service.app)
    yield service, server.start()
    server.stop()


def cassettes_text(root: Path) -> str:
    files = sorted((root / "cassettes").rglob("*"))
    assert files, "nothing was recorded"
    return "\n".join(path.read_text() for path in files if path.is_file())


def test_a_suite_recorded_in_one_folder_replays_in_another_with_another_key(
    pytester: pytest.Pytester,
    yandex: tuple[YandexUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, url = yandex
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_team=SUITE)
    upstream = f"--cassette-upstream={url}"

    # One member records, in their folder, with their key (the client holds a dummy one).
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM_API_KEY", RECORDER_KEY)
    monkeypatch.setenv("TEAM_FOLDER", RECORDER_FOLDER)
    pytester.runpytest("--cassette-record-mode=once", upstream).assert_outcomes(passed=5)
    assert service.creates == 5
    text = cassettes_text(pytester.path)
    assert RECORDER_FOLDER not in text  # not in a body, a URI, a header or a streamed event
    assert RECORDER_KEY not in text
    assert RECORDER_KEY[4:12] not in text
    assert "gpt://<FOLDER_ID>/yandexgpt/latest" in text
    assert "<ORDER>" in text
    assert not re.findall(r"Заказ [0-9a-f-]{36}", text)  # the run's order id is nowhere either
    assert "Привет" in text  # and the text is text, not \\u escapes
    assert "\\u04" not in text.lower()
    [plain] = yaml.safe_load((pytester.path / "cassettes/test_team/test_plain.yaml").read_text())[
        "interactions"
    ]
    assert "Ответ: Привет" in plain["response"]["body"]["string"]

    # Another member (or CI): another folder, no key at all; offline, under pytest and -n 2.
    monkeypatch.delenv("CASSETTE_PROXY_UPSTREAM_API_KEY")
    monkeypatch.setenv("TEAM_FOLDER", OTHER_FOLDER)
    monkeypatch.setenv("TEAM_KEY", "AQVN" + "o" * 36)
    pytester.runpytest(upstream).assert_outcomes(passed=5)
    pytester.runpytest_subprocess("-n", "2", upstream).assert_outcomes(passed=5)
    assert service.creates == 5  # nothing reached the service

    # A different prompt is still a miss, and the miss names the difference as text.
    pytester.makepyfile(test_other=ANOTHER_PROMPT)
    result = pytester.runpytest("test_other.py", upstream)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*501 cassette_miss*", '*-  "input": "Привет",', '*+  "input": "Пока",']
    )
    assert service.creates == 5
