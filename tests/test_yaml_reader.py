"""proxy.yaml_reader gives exactly what vcrpy's YAML loader gives, and refuses what it refuses."""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from vcr.serializers import yamlserializer

from cassette_proxy import yaml_reader

ROOT = Path(__file__).resolve().parent.parent
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


@settings(max_examples=300, deadline=None)
@given(DATA)
def test_any_document_vcrpys_dumper_writes_reads_back_the_same(data: Any) -> None:
    text = yamlserializer.serialize({"interactions": [{"response": {"body": data}}]})
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
