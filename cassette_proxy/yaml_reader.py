"""Reading vcrpy's YAML cassettes quickly, with vcrpy's own loader as the authority.

vcrpy loads a cassette with ``yaml.load`` and its safe ``_CassetteLoader``: libyaml parses, then
PyYAML composes a node graph and its pure-Python constructor builds the data. For a cassette of
10,000 interactions (17 MB) that took 4.5 s and about 300 MB, almost all of it composing and
constructing. Here the objects are built straight from libyaml's event stream, with no node
graph and one call per event: about 1 s and 45 MB for the same cassette.

The fast path covers what cassettes hold: mappings, sequences and scalars with the standard tags
(resolved by PyYAML's own resolver and built by vcrpy's loader's own constructors). Anything else
(anchors and aliases, merge keys, ``!!python/...`` collections, more than one document, a key
that is not a scalar), and any error, makes the whole text go through vcrpy's deserializer
instead, so the result, and every refusal (``!!python/object`` tags included), is exactly vcrpy's.

Except one: before vcrpy's loader sees a text with aliases, their expansion is counted from the
event stream. PyYAML shares an aliased object rather than copying it, but anything that walks
the result (``str()``, a conversion) walks every copy: a 501-byte "billion laughs" cassette took
35 s and 2.7 GB. A text whose aliases would add more than :data:`ALIAS_BUDGET` nodes, or twice
its own, is refused with :class:`AliasBomb`, in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import yaml
from vcr.serializers import yamlserializer
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

LIBYAML: Final = yaml.__with_libyaml__  # PyYAML's wheels ship it; without it, vcrpy's loader
if LIBYAML:
    from yaml._yaml import CParser

_STR: Final = "tag:yaml.org,2002:str"
_MAP_TAGS: Final = frozenset({None, "!", "tag:yaml.org,2002:map"})
_SEQ_TAGS: Final = frozenset({None, "!", "tag:yaml.org,2002:seq"})
# Scalar tags whose constructor in vcrpy's loader needs nothing but the scalar itself.
_SCALAR_TAGS: Final = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("null", "bool", "int", "float", "binary", "timestamp", "python/str")
) | {"tag:yaml.org,2002:python/unicode"}

_LOADER: Final = yamlserializer._CassetteLoader("")  # its constructors and resolver, not its parser
_CONSTRUCTORS: Final = {tag: _LOADER.yaml_constructors[tag] for tag in _SCALAR_TAGS}
# A plain scalar needs resolving only if an implicit resolver may claim it: those are keyed by
# the first character ("" for the empty scalar, which is null). PyYAML's safe resolver has no
# wildcard (None) entry; if a future one did, every plain scalar would go through it.
_RESOLVABLE: Final = frozenset(_LOADER.yaml_implicit_resolvers)
_RESOLVE_ALL: Final = None in _RESOLVABLE
_NO_KEY: Final = object()
ALIAS_BUDGET: Final = 100_000  # nodes aliases may add to a document, beyond twice its own


class AliasBomb(yaml.YAMLError):
    """Aliases that would expand the document far beyond its size ("billion laughs")."""


class _Unusual(Exception):
    """The text uses something only vcrpy's full loader handles."""


def deserialize(cassette_string: str | bytes) -> Any:
    """Like ``vcr.serializers.yamlserializer.deserialize``, only faster on ordinary cassettes.

    Give it bytes where you can: libyaml reads UTF-8 bytes as they are, but copies a ``str``
    into UTF-8 first, and holds the copy while it parses."""
    if not LIBYAML:
        _check_aliases(cassette_string)
        return yamlserializer.deserialize(cassette_string)
    try:
        return _load(cassette_string)
    except Exception:  # unusual, or broken: vcrpy's loader decides, and words any refusal
        _check_aliases(cassette_string)
        return yamlserializer.deserialize(cassette_string)


def _events(text: str | bytes) -> Iterator[Event]:
    if not LIBYAML:
        yield from yaml.parse(text, Loader=yaml.SafeLoader)
        return
    parser = CParser(text)
    try:
        while (event := parser.get_event()) is not None:
            yield event
    finally:
        parser.dispose()


def _check_aliases(text: str | bytes) -> None:
    """Raise :class:`AliasBomb` if the aliases in ``text`` would expand it by more than
    :data:`ALIAS_BUDGET` nodes or twice its own; a text that does not parse is left to vcrpy.

    Each node counts 1 plus what it contains, an alias the size of its anchored node (with the
    aliases inside that one): the sizes grow as the document would, but as numbers."""
    anchored: dict[str, int] = {}
    open_sizes: list[tuple[str | None, int]] = [(None, 0)]  # the document's root at the bottom
    nodes = added = 0
    give_up_at = ALIAS_BUDGET + 4 * (len(text) + 1)  # nodes cannot outnumber characters much
    try:
        for event in _events(text):
            if isinstance(event, CollectionStartEvent):
                nodes += 1
                open_sizes.append((event.anchor, 1))
                continue
            if isinstance(event, ScalarEvent):
                nodes += 1
                anchor, size = event.anchor, 1
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                anchor, size = open_sizes.pop()
            elif isinstance(event, AliasEvent):
                anchor, size = None, anchored.get(event.anchor or "", 0)
                added += size
                if added > give_up_at:
                    break
            else:
                continue
            if anchor is not None:
                anchored[anchor] = size
            parent, total = open_sizes[-1]
            open_sizes[-1] = (parent, total + size)
    except yaml.YAMLError:
        return  # not YAML: vcrpy's loader says so, in its words
    expanded = sum(size for _, size in open_sizes)
    if added > give_up_at or expanded - nodes > max(ALIAS_BUDGET, 2 * nodes):
        raise AliasBomb(
            f"its aliases would expand it to more than {max(nodes + added, expanded):,} "
            "nodes, a 'billion laughs' document; refused before loading: expand or remove them"
        )


def serialize(cassette_dict: dict[str, Any]) -> str:
    """vcrpy's own serializer (its safe dumper), unchanged."""
    text: str = yamlserializer.serialize(cassette_dict)
    return text


def _scalar(event: ScalarEvent) -> Any:
    if event.anchor is not None:
        raise _Unusual
    tag, value = event.tag, event.value
    if tag is None or tag == "!":
        plain = event.implicit[0]
        if not plain or (value and value[0] not in _RESOLVABLE and not _RESOLVE_ALL):
            return value
        tag = _LOADER.resolve(ScalarNode, value, event.implicit)
    if tag == _STR:
        return value
    construct = _CONSTRUCTORS.get(tag)
    if construct is None:
        raise _Unusual
    return construct(_LOADER, ScalarNode(tag, value, style=event.style))


def _load(text: str | bytes) -> Any:  # noqa: PLR0912 - one loop over the events; see below
    """Build the document from the event stream.

    One flat loop, on purpose: a cassette is about 50 events per interaction, and moving the
    container handling into methods made loading about 10% slower. ``containers`` are the open
    mappings and sequences, innermost last; ``keys`` holds, for each, the key waiting for its
    value.
    """
    parser = CParser(text)
    containers: list[Any] = []
    keys: list[Any] = []
    root: Any = None
    documents = 0
    try:
        while True:
            event = parser.get_event()
            if isinstance(event, ScalarEvent):
                value = _scalar(event)
            elif isinstance(event, MappingStartEvent | SequenceStartEvent):
                mapping = isinstance(event, MappingStartEvent)
                if event.anchor is not None or event.tag not in (
                    _MAP_TAGS if mapping else _SEQ_TAGS
                ):
                    raise _Unusual
                containers.append({} if mapping else [])
                keys.append(_NO_KEY)
                continue
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                if keys.pop() is not _NO_KEY:
                    raise _Unusual  # a key without a value: not well-formed, let vcrpy say so
                value = containers.pop()
            elif isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Unusual  # vcrpy's yaml.load refuses more than one document
                continue
            elif isinstance(event, AliasEvent):
                raise _Unusual
            elif event is None or isinstance(event, StreamEndEvent):
                return root
            else:  # stream start and document end carry nothing
                continue
            # A value is complete: it goes into the innermost open container.
            if not containers:
                root = value
            elif type(container := containers[-1]) is list:
                container.append(value)
            elif keys[-1] is _NO_KEY:
                if isinstance(value, list | dict):
                    raise _Unusual  # PyYAML's "found unhashable key"
                keys[-1] = value
            else:
                container[keys[-1]] = value
                keys[-1] = _NO_KEY
    finally:
        parser.dispose()
