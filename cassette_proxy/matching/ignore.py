"""Fields of a JSON request body that take no part in ``body`` matching (``--match-ignore``).

Each is a JSON pointer (RFC 6901: ``/metadata/ts``, ``~1`` for ``/`` and ``~0`` for ``~`` in a
name) in which a ``*`` segment stands for any one key or array index (``/input/*/id``), as
WireMock's ``ignoreExtraElements`` and Hoverfly's JSON-path matchers let one say "match the body,
but not these". The fields are removed from both sides before the body is compared (and keyed,
so lookup stays a dict access); a miss's diff names those it left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

WILDCARD: Final = "*"


def _unescaped(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def escaped(segment: str) -> str:
    """A key as a pointer segment."""
    return segment.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True, slots=True)
class Ignore:
    """The configured pointers, split into segments once."""

    pointers: tuple[str, ...] = ()
    _paths: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        paths = tuple(tuple(_unescaped(s) for s in p.split("/")[1:]) for p in self.pointers)
        object.__setattr__(self, "_paths", paths)

    def __bool__(self) -> bool:
        return bool(self.pointers)

    def strip(self, document: Any) -> tuple[Any, list[str]]:
        """``document`` without the ignored fields (a copy where anything is removed; the
        document itself where nothing is), and the pointers of the fields removed, in order."""
        removed: list[str] = []
        for path in self._paths:
            document = _without(document, path, "", removed)
        return document, removed


def _without(node: Any, path: Sequence[str], at: str, removed: list[str]) -> Any:
    """``node`` without what ``path`` names below it (a copy of each container changed)."""
    if not path:
        return node
    if isinstance(node, dict):
        return _without_in_object(node, path, at, removed)
    if isinstance(node, list):
        return _without_in_array(node, path, at, removed)
    return node


def _without_in_object(
    node: dict[str, Any], path: Sequence[str], at: str, removed: list[str]
) -> dict[str, Any]:
    head, rest = path[0], path[1:]
    keys = list(node) if head == WILDCARD else [head] if head in node else []
    if not keys:
        return node
    changed = dict(node)
    for key in keys:
        where = f"{at}/{escaped(key)}"
        if rest:
            changed[key] = _without(node[key], rest, where, removed)
        else:
            del changed[key]
            removed.append(where)
    return changed


def _without_in_array(
    node: list[Any], path: Sequence[str], at: str, removed: list[str]
) -> list[Any]:
    head, rest = path[0], path[1:]
    if head == WILDCARD:
        indices = range(len(node))
    elif head.isdigit() and int(head) < len(node):
        indices = range(int(head), int(head) + 1)
    else:
        return node
    if not rest:  # an array element is left in place as null, so indices keep meaning
        removed.extend(f"{at}/{index}" for index in indices)
        return [None if i in indices else item for i, item in enumerate(node)]
    return [
        _without(item, rest, f"{at}/{i}", removed) if i in indices else item
        for i, item in enumerate(node)
    ]
