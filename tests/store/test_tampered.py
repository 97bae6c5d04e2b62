"""Tampered cassettes and journals: each is refused in one line, or loads into interactions that
match and replay; never a traceback, never a load that blows up later on the request path."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vcr.request import Request as VcrRequest

from cassette_proxy.errors import CassetteFileError
from cassette_proxy.matching.matchers import Matcher
from cassette_proxy.settings import MATCHERS
from cassette_proxy.store.cassette import Cassette, Interaction
from cassette_proxy.store.journal import read_journal
from cassette_proxy.store.persist import load_cassette

CASSETTE: dict[str, Any] = {
    "version": 1,
    "interactions": [
        {
            "request": {
                "method": "POST",
                "uri": "https://h/v1/responses/resp_1/cancel?a=1",
                "body": '{"x": 1}',
                "headers": {"Content-Type": ["application/json"]},
            },
            "response": {
                "status": {"code": 200, "message": "OK"},
                "headers": {"Content-Type": ["application/json"], "X-Id": ["1"]},
                "body": {"string": '{"id": "resp_1"}'},
            },
        }
    ],
}
JOURNAL_RECORD: dict[str, Any] = {
    "request": {
        "method": "POST",
        "uri": "https://h/v1/responses/resp_1/cancel",
        "headers": [["Content-Type", "application/json"]],
        "body": {"text": ""},
    },
    "response": {
        "status": 404,
        "reason": "Not Found",
        "headers": [["X-Id", "1"]],
        "body": {"base64": base64.b64encode(b"\xff\x00").decode()},
    },
}
JOURNAL_HEADER = b'{"journal":2,"record_mode":"new_episodes","match_on":["method","path"]}\n'


def journal_interactions(path: Path) -> list[Interaction]:
    contents = read_journal(path)
    assert contents is not None
    return contents.interactions


def framed(payload: bytes) -> bytes:
    return b"%d %08x %s\n" % (len(payload), zlib.crc32(payload), payload)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of ``node``, itself included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def tampered(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """``document`` with the node at ``path`` replaced by ``value`` (deleted, if it is DELETE)."""
    changed = copy.deepcopy(document)
    if not path:
        return {} if value is DELETE else value
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


DELETE = object()
ODD_VALUES = [
    DELETE, None, True, 0, -1, 99, 600, 10**30, 1.5, float("inf"), float("nan"), "", "x",
    "http://h:port/", "::", [], {}, [1, 2], {"a": 1}, {"string": 5}, {"text": 1},
    {"base64": "not base64!"}, b"\xff\xfe", [["a", "b", "c"]], [[1, 2]],
]  # fmt: skip


def assert_refused_in_one_line_or_usable(load: Callable[[], list[Interaction] | None]) -> None:
    """``load()`` refuses in one line, or what it loads can be matched, explained and replayed."""
    outcome = _outcome(load)
    if isinstance(outcome, CassetteFileError):
        assert "\n" not in str(outcome), str(outcome)
        return
    cassette = Cassette(Path("c.yaml"), Matcher(MATCHERS), loaded=outcome)
    for interaction in outcome:
        assert cassette.play(interaction.request) is not None
        assert interaction.replay.status == interaction.status
    cassette.explain_miss(VcrRequest("GET", "https://other/", b"", {}))


def _outcome(
    load: Callable[[], list[Interaction] | None],
) -> list[Interaction] | CassetteFileError:
    try:
        return load() or []
    except CassetteFileError as refused:
        return refused


def write_cassette(path: Path, document: Any) -> None:
    if path.suffix == ".json":
        path.write_text(json.dumps(document, default=repr))
    else:
        path.write_text(yaml.safe_dump(document))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(paths(CASSETTE)),
    value=st.sampled_from(ODD_VALUES),
    suffix=st.sampled_from([".yaml", ".json"]),
)
def test_a_cassette_with_any_node_changed_is_refused_in_one_line_or_replays(
    tmp_path: Path, path: tuple[Any, ...], value: Any, suffix: str
) -> None:
    cassette = tmp_path / f"tampered{suffix}"
    write_cassette(cassette, tampered(CASSETTE, path, value))
    assert_refused_in_one_line_or_usable(lambda: load_cassette(cassette))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(paths(JOURNAL_RECORD)), value=st.sampled_from(ODD_VALUES))
def test_a_journal_record_with_any_node_changed_is_refused_in_one_line_or_replays(
    tmp_path: Path, path: tuple[Any, ...], value: Any
) -> None:
    journal = tmp_path / "c.yaml.journal"
    record = tampered(JOURNAL_RECORD, path, value)
    # Framed anew, as a tamperer who knows the format would: the checksum does not stop it.
    journal.write_bytes(JOURNAL_HEADER + framed(json.dumps(record, default=repr).encode()))

    assert_refused_in_one_line_or_usable(lambda: journal_interactions(journal))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), kind=st.sampled_from(["cassette", "journal"]))
def test_any_byte_of_a_file_changed_is_refused_in_one_line_or_replays(
    tmp_path: Path, data: st.DataObject, kind: str
) -> None:
    if kind == "cassette":
        path = tmp_path / "c.yaml"
        write_cassette(path, CASSETTE)
    else:
        path = tmp_path / "c.yaml.journal"
        path.write_bytes(JOURNAL_HEADER + framed(orjson.dumps(JOURNAL_RECORD)))
    original = path.read_bytes()
    at = data.draw(st.integers(0, len(original) - 1))
    byte = data.draw(st.binary(min_size=0, max_size=2))
    path.write_bytes(original[:at] + byte + original[at + 1 :])
    if kind == "cassette":
        assert_refused_in_one_line_or_usable(lambda: load_cassette(path))
    else:
        assert_refused_in_one_line_or_usable(lambda: journal_interactions(path))


HEADERS = {"Content-Type": ["application/json"]}


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("deep.yaml", "interactions: " + "[" * 100_000 + "]" * 100_000, "not a vcrpy cassette"),
        ("deep.json", '{"interactions": ' + "[" * 100_000 + "]" * 100_000 + "}", "not a vcrpy"),
        (
            "binary.yaml",
            "interactions:\n- request: {method: GET, uri: 'http://h/', body: !!binary 'no!!',"
            " headers: {}}\n  response: {status: {code: 200, message: OK}, headers: {},"
            " body: {string: ''}}\n",
            "not a vcrpy cassette",
        ),
        (
            "status.yaml",
            "interactions:\n- request: {method: GET, uri: 'http://h/', body: '', headers: {}}\n"
            "  response: {status: {code: .inf, message: OK}, headers: {}, body: {string: ''}}\n",
            "cannot replay interaction 0 .* status code is inf",
        ),
        (
            "port.yaml",
            "interactions:\n- request: {method: GET, uri: 'http://h:http/', body: '', headers: {}}"
            "\n  response: {status: {code: 200, message: OK}, headers: {}, body: {string: ''}}\n",
            "cannot replay interaction 0 .*port",
        ),
    ],
    ids=["deep-yaml", "deep-json", "bad-base64", "infinite-status", "bad-port"],
)
def test_tampered_cassettes_from_the_issue_are_refused_in_one_line(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    cassette = tmp_path / name
    cassette.write_text(text)
    with pytest.raises(CassetteFileError, match=reason) as refused:
        load_cassette(cassette)
    assert "\n" not in str(refused.value)


def billion_laughs(levels: int) -> str:
    """The classic: each level ten aliases of the one before, as a response's reason phrase."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"
    for before, name in itertools.pairwise(names[: levels + 1]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{before}"] * 10) + "]")
    top = names[levels - 1]
    lines.append(
        "interactions:\n- request: {method: GET, uri: 'http://h/', body: '', headers: {}}\n"
        f"  response: {{status: {{code: 200, message: *{top}}}, headers: {{}}, "
        "body: {string: ''}}"
    )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9])
def test_a_billion_laughs_cassette_is_refused_in_one_line_in_under_a_second(
    tmp_path: Path, levels: int
) -> None:
    cassette = tmp_path / "laughs.yaml"
    cassette.write_text(billion_laughs(levels))
    assert len(cassette.read_bytes()) < 600  # the issue's was 501 bytes (9 levels: 10^9 nodes)
    started = time.perf_counter()
    with pytest.raises(CassetteFileError, match="billion laughs") as refused:
        load_cassette(cassette)
    assert time.perf_counter() - started < 1
    assert "\n" not in str(refused.value)


def test_a_few_aliases_still_load_as_vcrpy_loads_them(tmp_path: Path) -> None:
    cassette = tmp_path / "shared.yaml"
    one = CASSETTE["interactions"][0]
    cassette.write_text(
        "version: 1\ninteractions:\n"
        + yaml.safe_dump([one, one])  # the same object twice: PyYAML writes an anchor, an alias
    )
    assert "*id001" in cassette.read_text()
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert len(loaded) == 2
