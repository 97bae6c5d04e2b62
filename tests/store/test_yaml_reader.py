"""proxy.yaml_reader gives exactly what vcrpy's YAML loader gives, and refuses what it refuses."""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from vcr.serializers import yamlserializer

from cassette_proxy.store import yaml_reader

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([ROOT / "cassettes" / "demo.yaml", *(ROOT / "tests" / "examples").rglob("*.yaml")])


def plain(value: Any) -> Any:
    """``value`` with file-like bodies (which compare by identity) replaced by their bytes."""
    if isinstance(value, io.BytesIO):
        return ("BytesIO", value.getvalue())
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(item) for item in value)
    return value


def both(text: str) -> tuple[Any, Any]:
    """What the fast reader and vcrpy's loader make of ``text``; the fast reader gets it as bytes
    too (as load_cassette passes it), with the same result."""
    fast = plain(yaml_reader.deserialize(text))
    assert plain(yaml_reader.deserialize(text.encode("utf-8"))) == fast
    return fast, plain(yamlserializer.deserialize(text))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_cassettes_read_as_vcrpy_reads_them(path: Path) -> None:
    fast, vcrpy = both(path.read_text(encoding="utf-8"))
    assert fast == vcrpy
    assert fast["interactions"]


# Scalars that YAML resolves to something other than a string when plain, or that need quoting.
TRICKY = st.sampled_from(
    ["", "~", "null", "Null", "yes", "no", "on", "true", "FALSE", "0", "-1", "0x1F", "0o17",
     "1_000", "1e3", ".inf", "-.Inf", ".nan", "12:30:45", "2026-11-24", "2026-11-24 10:00:00Z",
     "<<", "=", "!", "&a", "*a", "- x", "a: b", "#", "'", '"', "\t", " lead", "trail ", "é✓"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | TRICKY
    | st.binary()
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
)
KEYS = st.none() | st.booleans() | st.integers() | st.text(max_size=12) | TRICKY
DATA = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=25,
)


# vcrpy's dumper, and the proxy's (the same, with text as UTF-8 characters, not escapes).
DUMPERS = [yamlserializer.serialize, yaml_reader.serialize]
DUMPER_IDS = ["vcrpy", "utf-8"]


@pytest.mark.parametrize("dump", DUMPERS, ids=DUMPER_IDS)
@settings(max_examples=300, deadline=None)
@given(DATA)
def test_any_document_vcrpys_dumper_writes_reads_back_the_same(
    dump: Callable[[Any], str], data: Any
) -> None:
    text = dump({"interactions": [{"response": {"body": data}}]})
    fast, vcrpy = both(text)
    assert fast == vcrpy


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1, 2]\nb: *x\n",  # anchors and aliases
        "base: &b {k: 1}\nderived:\n  <<: *b\n  j: 2\n",  # merge keys
        "t: !!python/tuple [1, 2]\n",  # vcrpy's benign python tags on collections
        "s: !!python/str abc\nu: !!python/unicode def\n",
        "b: !!python/object/new:_io.BytesIO\n  state: !!python/tuple [!!binary aGk=, 0, null]\n",
        "s: !!set {a: null}\n",
        "",
        "just a scalar",
        "- a\n- b\n",
    ],
)
def test_unusual_documents_give_vcrpys_result(text: str) -> None:
    fast, vcrpy = both(text)
    assert fast == vcrpy
    assert type(fast) is type(vcrpy)


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system [echo pwned]\n",  # code execution: refused
        "a: !!python/name:os.system\n",
        "a: 1\n---\nb: 2\n",  # more than one document
        "a: [1, 2\n",  # not YAML
        "a: !!int not-a-number\n",  # vcrpy raises a plain ValueError here
        "? [1, 2]\n: unhashable key\n",
    ],
)
def test_what_vcrpy_refuses_is_refused_with_vcrpys_error(text: str) -> None:
    with pytest.raises((yaml.YAMLError, ValueError)) as theirs:
        yamlserializer.deserialize(text)
    for source in (text, text.encode("utf-8")):
        with pytest.raises((yaml.YAMLError, ValueError)) as ours:
            yaml_reader.deserialize(source)
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value).replace("<byte string>", "<unicode string>") == str(theirs.value)


def test_ordinary_cassettes_take_the_fast_path_and_unusual_ones_vcrpys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    vcrpy_load = yamlserializer.deserialize

    def spy(text: str) -> Any:
        calls.append(text)
        return vcrpy_load(text)

    monkeypatch.setattr(yamlserializer, "deserialize", spy)
    for path in SHIPPED:
        yaml_reader.deserialize(path.read_text(encoding="utf-8"))
    assert calls == [], "an ordinary cassette went through vcrpy's slow loader"
    yaml_reader.deserialize("a: &x 1\nb: *x\n")
    assert len(calls) == 1


@pytest.mark.parametrize(("copies", "refused"), [(99, False), (101, True)])
def test_aliases_may_add_up_to_the_budget_of_nodes_and_no_more(copies: int, refused: bool) -> None:
    # An anchored list of 999 scalars is 1,000 nodes; each alias of it adds 1,000.
    text = "a: &a [" + ",".join(["x"] * 999) + "]\nb: [" + ",".join(["*a"] * copies) + "]\n"
    assert (copies * 1_000 > yaml_reader.ALIAS_BUDGET) is refused
    if refused:
        with pytest.raises(yaml_reader.AliasBomb, match="more than 102,"):
            yaml_reader.deserialize(text)
    else:
        assert len(yaml_reader.deserialize(text)["b"]) == copies


# -- the text fast path: what vcrpy's dumper writes, read line by line ----------------------------


def text_path(text: str | bytes) -> Any:
    """What the line-by-line reader makes of ``text``, or None where it leaves the text to the
    event loop (it must never give a result vcrpy's loader would not)."""
    try:
        return plain(yaml_reader._load_text(text))
    except yaml_reader._Unusual:
        return None
    except yaml.YAMLError:
        return None  # a scalar it cut out does not parse: the event loop, then vcrpy, say why


def test_a_cassette_as_the_proxy_writes_it_is_read_line_by_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Type": ["application/json"], "x-request-id": ["req_1"]},
        "body": {"string": '{"id": "resp_1", "text": "' + "word " * 60 + '"}'},
    }
    request = {
        "method": "POST",
        "uri": "http://127.0.0.1:8000/v1/responses/resp_1/cancel",
        "body": "",
        "headers": {"Authorization": ["Bearer sha256:00000000"]},
    }
    text = yamlserializer.serialize(
        {"interactions": [{"request": request, "response": response}] * 3, "version": 1}
    )

    def no_event_loop(text: str | bytes) -> Any:
        raise AssertionError("the ordinary cassette went through the event loop")

    monkeypatch.setattr(yaml_reader, "_load", no_event_loop)
    assert yaml_reader.deserialize(text.encode("ascii")) == yamlserializer.deserialize(text)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_cassettes_are_read_line_by_line(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text_path(text) == plain(yamlserializer.deserialize(text))


@pytest.mark.parametrize("dump", DUMPERS, ids=DUMPER_IDS)
@settings(max_examples=300, deadline=None)
@given(DATA)
def test_what_vcrpys_dumper_writes_reads_line_by_line_as_vcrpy_reads_it(
    dump: Callable[[Any], str], data: Any
) -> None:
    text = dump({"interactions": [{"response": {"body": data}}]})
    fast = text_path(text)
    assert fast is None or fast == plain(yamlserializer.deserialize(text))
    assert text_path(text.encode("utf-8")) == fast  # bytes, as a cassette is read


def test_a_cassette_in_another_script_is_written_as_text_and_read_line_by_line() -> None:
    """Russian (or any) text is written as it is, read back by vcrpy's loader, and still takes
    the fast path; what YAML cannot hold raw is escaped and goes to libyaml."""
    data = {"interactions": [{"response": {"body": {"string": "Привет, мир — «ответ» 🙂"}}}]}
    text = yaml_reader.serialize(data)
    assert "Привет, мир — «ответ»" in text  # libyaml's dumper still escapes U+1F642
    assert "\\u" not in text
    assert yamlserializer.deserialize(text) == data
    assert text_path(text.encode("utf-8")) == data
    odd = yaml_reader.serialize({"s": "a\u2028b\x85c\ufeffd"})
    assert yamlserializer.deserialize(odd) == {"s": "a\u2028b\x85c\ufeffd"}
    assert yaml_reader.deserialize(odd.encode("utf-8")) == {"s": "a\u2028b\x85c\ufeffd"}


# Edits a hand (or a tool) makes to a line; each may keep the text YAML, or not.
EDITS = [
    lambda line: " " + line,
    lambda line: line[1:],
    lambda line: line + " # a comment",
    lambda line: "# a comment\n" + line,
    lambda line: line + "\n",
    lambda line: line + " ",
    lambda line: line.replace(": ", ":  ", 1),
    lambda line: line.replace(": ", ":\n    ", 1),
    lambda line: line.replace(": ", ":\n", 1),
    lambda line: line.replace(" ", "\n  ", 1),
    lambda line: line.replace("- ", "-   ", 1),
    lambda line: line.replace("- ", "- - ", 1),
    lambda line: line.replace("- ", "", 1),
    lambda line: line.replace("'", "", 1),
    lambda line: line.replace("'", '"', 1),
    lambda line: line.replace("'", "''", 1),
    lambda line: line.replace(" ", "\t", 1),
    lambda line: line.replace(" ", " &x ", 1),
    lambda line: line.replace(" ", " *x ", 1),
    lambda line: line.replace(":", "", 1),
    lambda line: line + ":",
    lambda line: line + "\r",
    lambda line: line + "\x07",
    lambda line: line[: len(line) // 2],
    lambda line: line + "\n" + line,
    lambda line: "---\n" + line,
    lambda line: line + "\n...",
]


@settings(max_examples=400, deadline=None)
@given(
    DATA,
    st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(range(len(EDITS)))), max_size=3),
)
def test_edited_cassettes_read_line_by_line_as_vcrpy_reads_them_or_go_to_libyaml(
    data: Any, edits: list[tuple[int, int]]
) -> None:
    lines = yaml_reader.serialize({"interactions": [{"response": {"body": data}}]}).split("\n")
    for at, edit in edits:
        lines[at % len(lines)] = EDITS[edit](lines[at % len(lines)])
    text = "\n".join(lines)
    fast = text_path(text)
    if fast is not None:
        assert fast == plain(yamlserializer.deserialize(text))


@pytest.mark.parametrize(
    "text",
    [
        "a:\n  b: 'x\n  y'\n",  # a quoted scalar going on at its key's column
        "a: 'x'\n  b\n",
        "a: 'x': y\n",
        "a: b: c\n",
        "a:\n- x\n  - y\n",
        "- a: 1\n  a: 2\n",  # a duplicate key: vcrpy's loader keeps the last value
        "a: !!binary |\n  aGk=\na: []\n",  # the same, after a value cut out
        "a: 1 # a comment\n",
        "a: |\n  x\n   y\nb: 2\n",
        "a: 'x\n\n   \n  y  '\n",
        "? a\n: b\n",
        "a:\n  - x\n  -\n  - 'y'\n",
        "just a scalar\n",
        "a: b\n# a comment \x07\n",  # YAML refuses the control, in a comment too
        "a: b\r\nc: d\r\n",
        "a: x\n  y\n\n  z\nb: 1\n",  # a plain scalar folded over lines
        'a: "x\\ty"\nb: "\\u00e9"\n',
    ],
)
def test_texts_the_dumper_does_not_write_read_as_vcrpy_reads_them(text: str) -> None:
    try:
        theirs = plain(yamlserializer.deserialize(text))
    except (yaml.YAMLError, ValueError):
        assert text_path(text) is None
        return
    fast = text_path(text)
    assert fast is None or fast == theirs
    assert plain(yaml_reader.deserialize(text)) == theirs
