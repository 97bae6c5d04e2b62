"""Reading vcrpy's YAML cassettes quickly, with vcrpy's own loader as the authority.

vcrpy loads a cassette with ``yaml.load`` and its safe ``_CassetteLoader``: libyaml parses, then
PyYAML composes a node graph and its pure-Python constructor builds the data. For a cassette of
10,000 interactions that took 4.5 s and six times the file's size in memory, almost all of it
composing and constructing. Here the objects are built straight from libyaml's event stream, with
no node graph and one call per event, which is about six times faster and keeps the memory close
to that of the result.

The fast path covers what cassettes hold: mappings, sequences and scalars with the standard tags
(resolved by PyYAML's own resolver and built by vcrpy's loader's own constructors). Anything else
(anchors and aliases, merge keys, ``!!python/...`` collections, more than one document, a key
that is not a scalar), and any error, makes the whole text go through vcrpy's deserializer
instead, so the result, and every refusal (``!!python/object`` tags included), is exactly vcrpy's.
"""

from __future__ import annotations

from typing import Any, Final

import yaml
from vcr.serializers import yamlserializer
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
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


class _Unusual(Exception):
    """The text uses something only vcrpy's full loader handles."""


def deserialize(cassette_string: str) -> Any:
    """Like ``vcr.serializers.yamlserializer.deserialize``, only faster on ordinary cassettes."""
    if not LIBYAML:
        return yamlserializer.deserialize(cassette_string)
    try:
        return _load(cassette_string)
    except Exception:  # unusual, or broken: vcrpy's loader decides, and words any refusal
        return yamlserializer.deserialize(cassette_string)


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


class _Builder:
    """Assembles the document as values complete: each goes into the innermost open container."""

    __slots__ = ("containers", "keys", "root")

    def __init__(self) -> None:
        self.containers: list[Any] = []  # the open mappings and sequences, innermost last
        self.keys: list[Any] = []  # for each open container: the key waiting for its value
        self.root: Any = None

    def open(self, event: MappingStartEvent | SequenceStartEvent) -> None:
        mapping = type(event) is MappingStartEvent
        if event.anchor is not None or event.tag not in (_MAP_TAGS if mapping else _SEQ_TAGS):
            raise _Unusual
        self.containers.append({} if mapping else [])
        self.keys.append(_NO_KEY)

    def close(self) -> None:
        if self.keys.pop() is not _NO_KEY:
            raise _Unusual  # a key without a value: not a well-formed stream, let vcrpy say so
        self.add(self.containers.pop())

    def add(self, value: Any) -> None:
        if not self.containers:
            self.root = value
            return
        container = self.containers[-1]
        if type(container) is list:
            container.append(value)
        elif self.keys[-1] is _NO_KEY:
            if isinstance(value, list | dict):
                raise _Unusual  # PyYAML's "found unhashable key"
            self.keys[-1] = value
        else:
            container[self.keys[-1]] = value
            self.keys[-1] = _NO_KEY


def _load(text: str) -> Any:
    parser = CParser(text)
    builder = _Builder()
    documents = 0
    try:
        while True:
            event = parser.get_event()
            if isinstance(event, ScalarEvent):
                builder.add(_scalar(event))
            elif isinstance(event, MappingStartEvent | SequenceStartEvent):
                builder.open(event)
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                builder.close()
            elif isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Unusual  # vcrpy's yaml.load refuses more than one document
            elif isinstance(event, AliasEvent):
                raise _Unusual
            elif event is None or isinstance(event, StreamEndEvent):
                return builder.root
            # stream start and document end carry nothing
    finally:
        parser.dispose()
