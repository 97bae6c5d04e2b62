"""A cassette the proxy cannot load is refused in one line that says what is wrong with it and
what vcrpy's format expects, never in Python's words (``('interactions')``, ``argument of type
'int' is not iterable``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cassette_proxy.errors import CassetteFileError
from cassette_proxy.store.persist import load_cassette

REQUEST = "{method: POST, uri: 'https://x/v1/responses/r/cancel', body: '', headers: {}}"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("c.yaml", "5\n", "the file holds a number; vcrpy's format is a mapping with"),
        ("c.yaml", "- a\n- b\n", "the file holds a list; vcrpy's format"),
        ("c.yaml", "version: 1\nnothing: here\n", "it has no 'interactions' list; vcrpy's"),
        ("c.yaml", "version: 1\ninteractions: 3\n", "it has no 'interactions' list"),
        ("c.yaml", "interactions: [ {", "not valid YAML, did not find expected node content at"),
        (
            "c.yaml",
            "!!python/object/apply:os.system ['true']\n",
            "python/object/apply:os.system' at line 1, column 1; vcrpy's safe loader refuses it",
        ),
        ("c.json", '{"interactions": ', "not valid JSON (Expecting value: line 1"),
        ("c.json", "[1]", "the file holds a list; vcrpy's format"),
    ],
)
def test_a_cassette_that_cannot_load_is_explained(
    tmp_path: Path, name: str, content: str, reason: str
) -> None:
    cassette = tmp_path / name
    cassette.write_text(content)
    with pytest.raises(CassetteFileError) as refused:
        load_cassette(cassette)
    message = str(refused.value)
    assert message.startswith(f"cassette {str(cassette)!r} is not a vcrpy cassette this proxy")
    assert reason in message
    assert message.endswith("It is left untouched: fix it, or move it away to record a new one")
    assert "\n" not in message
    assert "not iterable" not in message
    assert "('interactions')" not in message
