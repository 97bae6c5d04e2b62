"""vcrpy's hooks in the pytest plugin, each held against vcrpy's own behaviour: the same calls,
with the same options (the very same dict, functions included), recorded once through vcrpy
(patching the ``openai`` client's httpx, straight at the upstream) and once through the plugin's
proxy; the two cassettes must agree on what each hook changed. Custom matchers are compared by
what each replays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cassette_proxy.serving.process.serve import ServerThread
from cassette_proxy.testing.hooks import HookError, split
from tests.responses_upstream import ResponsesUpstream
from tests.test_pytest_plugin import ini

pytestmark = pytest.mark.slow

CALLS = """
import json, os, openai, pytest, vcr

UPSTREAM = os.environ["UPSTREAM"]


def drop_probe(request):
    if request.path.endswith("/resp_ok_ignored"):
        return None  # the cassette ignores it: sent, never recorded
    request.headers["X-Hooked"] = "request"
    return request


def rewrite_response(response):
    if response["status"]["code"] == 404:
        return None  # not recorded
    body = json.loads(response["body"]["string"])
    body["metadata"] = {"hooked": "yes"}
    response["body"]["string"] = json.dumps(body).encode()
    response["headers"]["X-Hooked"] = ["response"]
    return response


def shout(key, value, request):
    return value.upper()


OPTIONS = dict(
    filter_headers=["x-secret-header", ("x-keep", "KEPT"), ("x-fn", shout)],
    filter_query_parameters=["token2", ("page", "P")],
    filter_post_data_parameters=["user", ("instructions", "INSTRUCTIONS")],
    before_record_request=drop_probe,
    before_record_response=rewrite_response,
)
HEADERS = {"X-Secret-Header": "s1", "X-Keep": "k", "X-Fn": "quiet"}


def calls(base_url):
    with openai.OpenAI(
        base_url=base_url, api_key="dummy", max_retries=0, default_headers=HEADERS
    ) as client:
        client.responses.create(model="m", input="Привет", user="u-1", instructions="be brief")
        client.responses.retrieve("resp_ok_1", extra_query={"token2": "t", "page": "2"})
        client.responses.retrieve("resp_ok_ignored")
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve("resp_missing")


def test_vcrpy():
    with vcr.use_cassette("vcrpy.yaml", record_mode="once", **OPTIONS):
        calls(UPSTREAM + "/v1")


# vcrpy knows no folders: the proxy keeps them as they are here, so the hooks alone differ.
@pytest.mark.cassette_proxy(
    cassette="proxy.yaml", record_mode="once", folder_placeholders=False, **OPTIONS
)
def test_proxy(cassette_proxy):
    calls(cassette_proxy.url)
"""

MATCHING = """
import json, os, openai, pytest, vcr

UPSTREAM = os.environ["UPSTREAM"]


def same_input(r1, r2):
    if json.loads(r1.body)["input"] != json.loads(r2.body)["input"]:
        raise AssertionError("the inputs differ")


def asks(base_url, inputs):
    found = []
    with openai.OpenAI(base_url=base_url, api_key="dummy", max_retries=0) as client:
        for given, user in inputs:
            try:
                found.append(client.responses.create(model="m", input=given, user=user).id)
            except Exception:
                found.append("miss")
    return found


RECORDED = [("Привет", "u-1"), ("Пока", "u-2")]
PROBES = [("Пока", "someone"), ("Привет", "else"), ("Здравствуйте", "u-1")]


def test_vcrpy_records():
    with vcr.use_cassette("vcrpy.yaml", record_mode="once"):
        asks(UPSTREAM + "/v1", RECORDED)


@pytest.mark.cassette_proxy(cassette="proxy.yaml", record_mode="once")
def test_proxy_records(cassette_proxy):
    asks(cassette_proxy.url, RECORDED)


def test_vcrpy_replays():
    my_vcr = vcr.VCR()
    my_vcr.register_matcher("same_input", same_input)
    with my_vcr.use_cassette(
        "vcrpy.yaml", record_mode="none", match_on=["method", "path", "same_input"]
    ):
        found = asks(UPSTREAM + "/v1", PROBES)
    with open("vcrpy.found", "w") as file:
        json.dump(found, file)


@pytest.mark.cassette_proxy(
    cassette="proxy.yaml", record_mode="none", match_on=["method", "path", same_input]
)
def test_proxy_replays(cassette_proxy):
    with open("proxy.found", "w") as file:
        json.dump(asks(cassette_proxy.url, PROBES), file)
"""


@pytest.fixture(autouse=True)
def _quiet_ini(pytester: pytest.Pytester) -> None:
    ini(pytester)


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ServerThread(ResponsesUpstream().app)
    url = server.start()
    monkeypatch.setenv("UPSTREAM", url)
    yield url
    server.stop()


def interactions(path: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = yaml.safe_load(path.read_text())["interactions"]
    return found


def header(message: dict[str, Any], name: str) -> list[str] | None:
    values = {key.lower(): value for key, value in message["headers"].items()}.get(name)
    return values if values is None or isinstance(values, list) else [values]


def test_each_recording_hook_changes_what_vcrpy_changes(
    pytester: pytest.Pytester, upstream: str
) -> None:
    pytester.makepyfile(test_calls=CALLS)
    pytester.runpytest(f"--cassette-upstream={upstream}").assert_outcomes(passed=2)
    theirs = interactions(pytester.path / "vcrpy.yaml")
    ours = interactions(pytester.path / "proxy.yaml")
    # before_record_request dropped one request, before_record_response the 404: two each.
    assert len(theirs) == len(ours) == 2
    for vcrpy_one, proxy_one in zip(theirs, ours, strict=True):
        them, us = vcrpy_one["request"], proxy_one["request"]
        assert us["method"] == them["method"]
        assert us["uri"] == them["uri"]  # filter_query_parameters: token2 gone, page=P
        assert orjson.loads(us["body"] or b"null") == orjson.loads(them["body"] or b"null")
        for name in ("x-secret-header", "x-keep", "x-fn", "x-hooked"):  # filter_headers, hook
            assert header(us, name) == header(them, name), name
        assert proxy_one["response"]["body"]["string"] == vcrpy_one["response"]["body"]["string"]
        assert header(proxy_one["response"], "x-hooked") == ["response"]
    create, retrieve = ours
    assert orjson.loads(create["request"]["body"])["instructions"] == "INSTRUCTIONS"
    assert "user" not in orjson.loads(create["request"]["body"])
    assert retrieve["request"]["uri"].endswith("/v1/responses/resp_ok_1?page=P")
    assert header(create["request"], "x-secret-header") is None
    assert header(create["request"], "x-keep") == ["KEPT"]
    assert header(create["request"], "x-fn") == ["QUIET"]
    assert orjson.loads(create["response"]["body"]["string"])["metadata"] == {"hooked": "yes"}


def test_custom_matchers_replay_what_vcrpys_replay(
    pytester: pytest.Pytester, upstream: str
) -> None:
    pytester.makepyfile(test_matching=MATCHING)
    result = pytester.runpytest(f"--cassette-upstream={upstream}")
    # The proxy's replay test also fails: a miss it answered, which it reports (vcrpy raises).
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*same_input: the inputs differ*"])
    vcrpy_found = orjson.loads((pytester.path / "vcrpy.found").read_bytes())
    proxy_found = orjson.loads((pytester.path / "proxy.found").read_bytes())
    assert [f == "miss" for f in proxy_found] == [f == "miss" for f in vcrpy_found]
    assert [f == "miss" for f in proxy_found] == [False, False, True]


def test_hooks_in_a_shape_vcrpy_refuses_are_refused_in_one_line() -> None:
    with pytest.raises(HookError, match="before_record_request takes a function"):
        split({"before_record_request": "not a function"})
    with pytest.raises(HookError, match="filter_headers takes names or"):
        split({"filter_headers": [("a", "b", "c")]})
    with pytest.raises(HookError, match="match_on has only functions"):
        split({"match_on": [lambda a, b: None]})
    plain, filters = split({"filter_headers": ["a", ("b", "B"), ("c", None)], "match_on": "path"})
    assert plain == {"filter_headers": ("a", "b=B", "c"), "match_on": "path"}
    assert filters is None  # all declarative: they go to the settings, as serve's flags would


BROKEN = """
import openai, pytest


def broken_request(request):
    raise KeyError("my request hook broke")


def broken_response(response):
    return response["body"]["string"].encode()  # bytes have no encode: AttributeError


def broken_matcher(r1, r2):
    raise ValueError("my matcher broke")


def ask(base_url):
    with openai.OpenAI(base_url=base_url, api_key="dummy", max_retries=0) as client:
        with pytest.raises(openai.InternalServerError) as raised:
            client.responses.create(model="m", input="hi")
    return raised.value.message


@pytest.mark.cassette_proxy(record_mode="once", before_record_request=broken_request)
def test_request_hook(cassette_proxy):
    assert "before_record_request hook" in ask(cassette_proxy.url)


@pytest.mark.cassette_proxy(record_mode="once", before_record_response=broken_response)
def test_response_hook(cassette_proxy):
    assert "before_record_response hook" in ask(cassette_proxy.url)


@pytest.mark.cassette_proxy(cassette="m.yaml", record_mode="all")
def test_records_one(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="dummy", max_retries=0) as client:
        client.responses.create(model="m", input="hi")


@pytest.mark.cassette_proxy(cassette="m.yaml", match_on=["method", "path", broken_matcher])
def test_matcher(cassette_proxy):
    assert "custom matcher" in ask(cassette_proxy.url)
"""


def test_a_hook_that_raises_is_reported_as_its_own_error_where_it_raised(
    pytester: pytest.Pytester, upstream: str
) -> None:
    pytester.makepyfile(test_broken=BROKEN)
    result = pytester.runpytest(f"--cassette-upstream={upstream}", "-p", "no:randomly")
    # Each client got the 500 it asserts; each test still fails, with the hook's own error.
    result.assert_outcomes(passed=1, failed=3)
    output = result.stdout.str()
    assert "this is a bug" not in output
    for said in (
        "the before_record_request hook (or a filter_* option's function) raised KeyError: "
        "'my request hook broke', at ",
        "test_broken.py:5 in broken_request; the request was neither forwarded nor recorded",
        "the before_record_response hook raised AttributeError: 'bytes' object has no "
        "attribute 'encode', at ",
        "the custom matcher raised ValueError: my matcher broke",
    ):
        assert said in output, said
    # Once per failing test in its report; the short summary repeats the message in full
    # only where pytest sees CI set (it then does not cut lines to the terminal's width).
    failures = output.split("short test summary info")[0]
    assert failures.count("-> 500 hook_failed") == 3


def test_hooks_given_as_a_string_or_a_bad_option_are_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.cassette_proxy(before_record_request="nope")
def test_one(cassette_proxy):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "before_record_request takes a function or a list of functions, not 'nope'" in output
    assert "During handling of the above exception" not in output
