"""Ignoring what changes: JSON pointers left out of body matching, the headers matcher, custom
matchers with vcrpy's meaning, and telling a volatile value from a real difference."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from vcr.request import Request as VcrRequest

from cassette_proxy.matching.ignore import Ignore
from cassette_proxy.matching.matchers import Matcher
from cassette_proxy.matching.volatile import volatile_changes
from tests import vectors
from tests.client import OPENAI_HEADERS, post
from tests.conftest import DUMMY_KEY, StartProxy


def request(body: dict[str, Any], headers: dict[str, str] | None = None) -> VcrRequest:
    return VcrRequest(
        "POST", "https://h/v1/responses", orjson.dumps(body), headers or {"X-Tenant": "a"}
    )


def test_pointers_remove_fields_keys_and_indices_and_say_which() -> None:
    ignore = Ignore(("/metadata/ts", "/input/*/id", "/a~1b", "/tags/1", "/missing/x"))
    document = {
        "metadata": {"ts": 1, "job": "j"},
        "input": [{"id": "m1", "text": "a"}, {"text": "b"}],
        "a/b": 1,
        "tags": ["x", "y"],
    }
    stripped, removed = ignore.strip(document)
    assert stripped == {
        "metadata": {"job": "j"},
        "input": [{"text": "a"}, {"text": "b"}],
        "tags": ["x", None],  # an element stays in its place, so later indices keep meaning
    }
    assert removed == ["/metadata/ts", "/input/0/id", "/a~1b", "/tags/1"]
    assert document["metadata"] == {"ts": 1, "job": "j"}  # the original is not changed
    assert Ignore(("/*",)).strip({"a": 1, "b": 2}) == ({}, ["/a", "/b"])


def test_ignored_fields_take_no_part_in_the_key_and_the_diff_names_them() -> None:
    matcher = Matcher(["method", "body"], ignore=Ignore(("/metadata/ts", "/user")))
    recorded = request({"input": "Привет", "metadata": {"ts": "1"}, "user": "u1"})
    same = request({"input": "Привет", "metadata": {"ts": "2"}, "user": "u2"})
    other = request({"input": "Пока", "metadata": {"ts": "3"}, "user": "u3"})
    assert matcher.key(same) == matcher.key(recorded)
    assert matcher.key(other) != matcher.key(recorded)
    [(name, message)] = matcher.differences(other, recorded)
    assert name == "body"
    assert '-  "input": "Привет"' in message  # the text, not \\u041f...
    assert '+  "input": "Пока"' in message
    assert "\\u04" not in message
    assert '"ts"' not in message  # ignored fields are not in the diff
    assert message.endswith("(not compared, as match_ignore says: /metadata/ts, /user)")


def test_the_headers_matcher_compares_the_named_headers_or_all() -> None:
    named = Matcher(["method", "headers"], headers=("x-tenant",))
    everything = Matcher(["method", "headers"])
    a = request({}, {"X-Tenant": "a", "X-Trace": "1"})
    b = request({}, {"x-tenant": "a", "X-Trace": "2"})
    c = request({}, {"X-Tenant": "c", "X-Trace": "1"})
    assert named.key(a) == named.key(b)
    assert named.key(a) != named.key(c)
    assert everything.key(a) != everything.key(b)
    [(name, message)] = named.differences(c, a)
    assert (name, message) == ("headers", "x-tenant: 'a' recorded, 'c' now")


def test_custom_matchers_judge_as_vcrpys_do() -> None:
    def same_tenant(r1: VcrRequest, r2: VcrRequest) -> None:
        if r1.headers["X-Tenant"] != r2.headers["X-Tenant"]:  # as vcrpy's own matchers do
            raise AssertionError("tenants differ")

    def never(r1: VcrRequest, r2: VcrRequest) -> bool:
        return False

    def always(r1: VcrRequest, r2: VcrRequest) -> None:
        return None

    a, c = request({}, {"X-Tenant": "a"}), request({}, {"X-Tenant": "c"})
    assert Matcher(["method"], custom=[same_tenant, always]).accepts(a, a)
    assert not Matcher(["method"], custom=[same_tenant]).accepts(a, c)
    assert not Matcher(["method"], custom=[never]).accepts(a, a)
    differences = Matcher(["method"], custom=[same_tenant, never]).differences(c, a)
    assert differences == [("same_tenant", "tenants differ"), ("never", "differs")]


@pytest.mark.parametrize(
    ("new", "recorded", "kinds"),
    [
        ({"ts": str(time.time())}, {"ts": "1796637199.8879862"}, ["value"]),
        ({"at": "2026-12-07T09:52:59Z"}, {"at": "2026-12-06T08:00:00.123+03:00"}, ["value"]),
        ({"user": f"user-{uuid.uuid4()}"}, {"user": f"user-{uuid.uuid4()}"}, ["value"]),
        ({"s": uuid.uuid4().hex}, {"s": uuid.uuid4().hex}, ["value"]),
        ({"p": f"Заказ {uuid.uuid4()}: где?"}, {"p": f"Заказ {uuid.uuid4()}: где?"}, ["inside"]),
        ({"n": 1796637203}, {"n": 1796637199}, ["value"]),
        ({"p": "Привет"}, {"p": "Пока"}, None),  # a different prompt is a real difference
        ({"p": "Заказ 1"}, {"p": "Заказ 2"}, None),
        ({"ts": "1", "p": "a"}, {"ts": "2", "p": "b"}, None),
        ({"a": [1]}, {"a": [1, 2]}, None),  # another shape
        ({"a": 1}, {"a": 1}, None),  # nothing differs
    ],
)
def test_values_that_change_every_run_are_told_from_real_differences(
    new: dict[str, Any], recorded: dict[str, Any], kinds: list[str] | None
) -> None:
    changes = volatile_changes(new, recorded)
    assert (None if changes is None else [c.kind for c in changes]) == kinds


# -- through the proxy ----------------------------------------------------------------------------


def _create(base_url: str, **extra: Any) -> str:
    with openai.OpenAI(base_url=base_url, api_key=DUMMY_KEY, max_retries=0) as client:
        return str(client.responses.create(model="echo", input="Привет", **extra).id)


async def test_a_proxy_that_ignores_a_field_replays_whatever_it_holds(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "ts.yaml"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await asyncio.to_thread(_create, recording.base_url, metadata={"ts": "1"})
    await recording.stop()
    replaying = await start_proxy(
        cassette=cassette, record_mode="none", match_ignore=("/metadata/ts",)
    )
    await asyncio.to_thread(_create, replaying.base_url, metadata={"ts": "2"})
    with pytest.raises(openai.InternalServerError) as missed:  # another prompt is a miss
        await asyncio.to_thread(_create, replaying.base_url, metadata={"job": "x"})
    assert "(not compared, as match_ignore says: /metadata/ts)" in missed.value.message
    assert [line["source"] for line in replaying.exchanges()] == ["cassette", "proxy"]


async def test_a_proxy_matching_on_named_headers_tells_tenants_apart(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    cassette = tmp_path / "tenants.yaml"
    path = f"/v1/responses/{vectors.V1_ID}/cancel"
    recording = await start_proxy(cassette=cassette, record_mode="once")
    await post(recording, path, headers=OPENAI_HEADERS | {"X-Tenant": "a", "X-Trace": "1"})
    await recording.stop()
    replaying = await start_proxy(
        cassette=cassette,
        record_mode="none",
        match_on=("method", "path", "headers"),
        match_headers=("x-tenant",),
    )
    hit = await post(replaying, path, headers=OPENAI_HEADERS | {"X-Tenant": "a", "X-Trace": "2"})
    miss = await post(replaying, path, headers=OPENAI_HEADERS | {"X-Tenant": "b"})
    assert (hit.status, miss.status) == (200, 501)
    assert "x-tenant: 'a' recorded, 'b' now" in miss.error()["message"]
