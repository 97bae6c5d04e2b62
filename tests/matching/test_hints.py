"""The control API's advice: the PUT that loaded a cassette, again, with one option changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cassette_proxy.matching.hints import ControlHints
from cassette_proxy.settings import SECRET_OPTIONS

GIVEN = {"path": "suite/case.yaml", "record_mode": "none", "match_ignore": ["/user"],
         "placeholders": {"CUSTOMER": "cus-7a3f9c2e41d8"}}  # fmt: skip
HINTS = ControlHints.of("PUT /_proxy/cassette with X-Cassette-Proxy-Cassette: checkout/a", GIVEN,
                        SECRET_OPTIONS)  # fmt: skip


def _put_in(advice: str) -> dict[str, Any]:
    line = "PUT /_proxy/cassette with X-Cassette-Proxy-Cassette: checkout/a "
    assert line in advice
    body, _ = json.JSONDecoder().raw_decode(advice[advice.index(line) + len(line) :])
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(
    ("hint", "changed"),
    [
        (HINTS.repeats, {"allow_playback_repeats": True}),
        (HINTS.record, {"record_mode": "new_episodes"}),
        (HINTS.record_more, {"record_mode": "new_episodes"}),
        (HINTS.rerecord, {"record_mode": "once"}),
        (HINTS.key, {"record_auth_failures": True}),
        (lambda: HINTS.other_upstream("https://llm.example", ("method", "path")),
         {"match_on": ["method", "path"]}),
        (lambda: HINTS.ignore(["/metadata/trace", "/user"]),
         {"match_ignore": ["/metadata/trace", "/user"]}),
        (lambda: HINTS.placeholder(["/input"]),
         {"placeholders": {"NAME": "<the value this run uses>"}}),
    ],
    ids=["repeats", "record", "record_more", "rerecord", "key", "other_upstream", "ignore",
         "placeholder"],
)  # fmt: skip
def test_each_hint_is_the_same_put_with_its_option_changed(
    hint: Callable[[], str], changed: dict[str, Any]
) -> None:
    advice = hint()
    assert "--" not in advice.replace("--upstream", "")  # no flag of serve's but the upstream
    assert "cus-7a3f9c2e41d8" not in advice  # a placeholder's value is never repeated
    body = _put_in(advice)
    without_secrets = {key: value for key, value in GIVEN.items() if key != "placeholders"}
    assert body == without_secrets | changed
    assert 'adding "placeholders" (CUSTOMER) as you gave them before' in advice


def test_a_put_without_secrets_is_repeated_whole() -> None:
    hints = ControlHints.of("PUT /_proxy/cassette", {"path": "a.yaml"}, SECRET_OPTIONS)
    assert hints.record() == (
        'To record it, load it again with "record_mode": "new_episodes" (keeps what is recorded) '
        'or "all" (re-records): PUT /_proxy/cassette {"path": "a.yaml", "record_mode": '
        '"new_episodes"}.'
    )
    assert "cus-" not in repr(HINTS)  # the object itself holds no secret value
