"""Reading vcrpy's YAML cassettes quickly, with vcrpy's own loader as the authority.

vcrpy loads a cassette with ``yaml.load`` and its safe ``_CassetteLoader``: libyaml parses, then
PyYAML composes a node graph and its pure-Python constructor builds the data. For a cassette of
10,000 interactions (17 MB) that took 4.5 s and about 300 MB, almost all of it composing and
constructing. Here the objects are built in one of two faster ways, each giving exactly what
vcrpy's loader gives or leaving the text to the next:

1. Line by line, without libyaml, for text written as vcrpy's dumper writes it (ASCII, block
   style; see "the text fast path" below): about 0.35 s and 35 MB for the same cassette.
2. Straight from libyaml's event stream, with no node graph and one call per event: about
   0.75 s and 45 MB.

The event path covers what cassettes hold: mappings, sequences and scalars with the standard tags
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

import contextlib
import re
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
# What YAML reads as a line break besides "\n" and "\r", and the byte order mark.
_YAML_BREAKS: Final = re.compile("[\x85\u2028\u2029\ufeff]")
_YAML_BREAKS_UTF8: Final = re.compile(b"|".join(c.encode() for c in "\x85\u2028\u2029\ufeff"))


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
    with contextlib.suppress(Exception):  # written otherwise, or broken: the event loop next
        return _load_text(cassette_string)
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
    """vcrpy's own serializer (its safe dumper), writing text as UTF-8 characters: a cassette
    of Russian prompts reads as Russian in a review (``Привет``, not ``\\u041f\\u0440...``).
    YAML is Unicode, so vcrpy's loader reads either the same; characters YAML cannot hold raw
    (controls, line separators, U+FEFF) are still escaped by the dumper."""
    text: str = yaml.dump(cassette_dict, Dumper=yamlserializer._CassetteDumper, allow_unicode=True)
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


# -- the text fast path ---------------------------------------------------------------------------
#
# What vcrpy's dumper writes (block style, ASCII, long scalars folded at 80 columns) is read here
# line by line, without libyaml's events: for 10,000 interactions those (two Mark objects each)
# and the loop over them took about 0.75 s. A line is a mapping entry (``key: value``, ``key:``)
# or a sequence entry (``- value``, ``- key: value``, ``- - value``); a value is a plain scalar,
# a quoted one, ``{}`` or ``[]`` on its line, a single-quoted scalar folded over lines, or a
# container on the lines below. Most lines of a cassette recur (``    method: POST``), and each
# distinct line is taken apart once. The other scalars YAML may spread over lines (double-quoted
# ones with escapes, folded plain ones, ``!!binary |`` blocks) are cut out, their lines
# unchanged, and read by the event loop above all at once, as the entries of one sequence: a
# scalar reads the same there, its lines being deeper than its owner's in both places. Anything
# else (a comment, a tab outside a scalar, an anchor or alias, another tag, a flow collection,
# a duplicate key, anything but printable ASCII) raises :class:`_Unusual`, and the event loop
# reads the whole text instead.

_INDICATORS: Final = frozenset("-?:,[]{}#&*!|>'\"%@`")  # no plain scalar starts with these
_PENDING: Final = object()  # the value of an entry not read yet
_CUT_OUT: Final = object()  # the value of an entry cut out, read after the rest
_DOUBLE_QUOTED: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_SINGLE_QUOTED_REST: Final = re.compile(r"[^']*(?:''[^']*)*'")  # up to the closing quote
_LINES_KEPT: Final = 4096  # distinct lines remembered, taken apart
_LINE_KEPT: Final = 256  # characters at most in a line remembered (long ones rarely recur)

# What follows a line's key or dash: nothing (the value is on the lines below), a value, a plain
# scalar (which deeper lines would continue), an empty mapping or sequence, a single-quoted scalar
# going on below, or a scalar to cut out.
_BELOW, _VALUE, _PLAIN, _MAPPING, _SEQUENCE, _FOLDED, _CUT = range(7)
# A line taken apart: its column, the columns of its dashes, its key's column (-1: none) and
# key, what follows, and that (the value, or the scalar's text).
_Line = tuple[int, tuple[int, ...], int, Any, int, Any]
_UNSEEN: Final[_Line] = (-1, (), -1, None, _BELOW, None)  # a line not taken apart yet


def _plain(value: str) -> Any:
    """A plain scalar as vcrpy's loader builds it (resolved by PyYAML's resolver)."""
    if value and value[0] not in _RESOLVABLE and not _RESOLVE_ALL:
        return value
    tag = _LOADER.resolve(ScalarNode, value, (True, False))
    if tag == _STR:
        return value
    construct = _CONSTRUCTORS.get(tag)
    if construct is None:
        raise _Unusual
    return construct(_LOADER, ScalarNode(tag, value, style=""))


_NULL: Final = _plain("")  # an empty value


def _quote_end(text: str, start: int) -> int:
    """Where the quote closing a single-quoted scalar is in ``text``, or -1 (``''`` is a quote
    inside it)."""
    while (start := text.find("'", start)) != -1:
        if not text.startswith("'", start + 1):
            return start
        start += 2
    return -1


def _is_dash(content: str) -> bool:
    return content[0] == "-" and content[1:2] in ("", " ")


def _printable(line: str) -> bool:
    """Whether ``line`` holds only what YAML allows in a line: printable characters and tabs.
    Anything else (a carriage return, a control, a space that is not " ") is left to libyaml."""
    return line.isprintable() or ("\t" in line and line.replace("\t", " ").isprintable())


def _take_apart(line: str) -> _Line:
    if not _printable(line):
        raise _Unusual
    content = line.lstrip(" ")
    column = len(line) - len(content)
    first = content[0]
    if first == "\t" or (column == 0 and first in "%-." and content[:3] in ("---", "...")):
        raise _Unusual  # a tab, a directive or a document marker
    dashes: list[int] = []
    at = column
    while _is_dash(content):
        dashes.append(at)
        rest = content[1:].lstrip(" ")
        if not rest:
            return column, tuple(dashes), -1, None, _BELOW, None
        at += len(content) - len(rest)
        content = rest
    key_column, key = -1, None
    found = _key(content)
    if found is not None:
        key_column, (key, content) = at, found
        if not content:
            return column, tuple(dashes), key_column, key, _BELOW, None
    return (column, tuple(dashes), key_column, key, *_scalar_text(content))


def _key(content: str) -> tuple[Any, str] | None:
    """``(key, the text after "key:")`` if ``content`` is a mapping entry, None if a scalar."""
    if content[0] == "'":
        end = _quote_end(content, 1)
        if end == -1:
            return None  # a quoted scalar over lines (a key is on one line)
        after = content[end + 1 :]
        if not after.strip(" "):
            return None
        if after[0] != ":" or after[1:2] not in ("", " "):
            raise _Unusual
        return content[1:end].replace("''", "'"), after[1:].lstrip(" ")
    colon = content.find(": ")
    if colon == -1:
        if content[-1] != ":":
            return None
        colon = len(content) - 1
    name = content[:colon]
    if (
        not name
        or colon > 1000  # libyaml allows a simple key 1,024 characters
        or (name[0] in _INDICATORS and not (name[0] == "-" and name[1:2] not in ("", " ")))
        or name[-1] == " "
        or " #" in name
        or "\t" in name
    ):
        raise _Unusual
    return _plain(name), content[colon + 2 :].lstrip(" ")


def _scalar_text(content: str) -> tuple[int, Any]:  # noqa: PLR0911 - one return a kind
    """What a scalar written as ``content`` (the end of its line) is, and its value or text."""
    first = content[0]
    if first == "'":
        close = _quote_end(content, 1)
        if close == -1:
            return _FOLDED, content
        if content[close + 1 :].strip(" "):
            raise _Unusual  # something after the scalar: a comment, or ``'key': value``
        return _VALUE, content[1:close].replace("''", "'")
    if first == '"':
        quoted = _DOUBLE_QUOTED.match(content)
        if quoted is not None and content[quoted.end() :].strip(" "):
            raise _Unusual
        if quoted is None or "\\" in quoted.group():  # escapes, or more lines
            return _CUT, content
        return _VALUE, content[1 : quoted.end() - 1]
    if first in "|>" or content.startswith("!!binary "):
        return _CUT, content
    if content == "{}":
        return _MAPPING, None
    if content == "[]":
        return _SEQUENCE, None
    if (first in _INDICATORS and not (first == "-" and content[1:2] not in ("", " "))) or (
        " #" in content or "\t" in content or ": " in content or content[-1] == ":"
    ):
        raise _Unusual  # an anchor, alias, other tag, flow collection, comment, or not YAML
    return _PLAIN, (_plain(content.rstrip(" ")), content)


def _load_text(source: str | bytes) -> Any:  # noqa: PLR0912, PLR0915 - one loop, as _load
    """The document in ``source``, read line by line; :class:`_Unusual` if it is not written
    as this path reads (see above)."""
    # UTF-8 may hold what YAML takes for a line break (U+0085, U+2028, U+2029) or a byte order
    # mark: those texts go to libyaml. Each line is checked for controls (and, beyond ASCII,
    # for what Python does not call printable) when it is first taken apart.
    if isinstance(source, bytes):
        if not source.isascii() and _YAML_BREAKS_UTF8.search(source):
            raise _Unusual
        text = source.decode("utf-8")
    else:
        if not source.isascii() and _YAML_BREAKS.search(source):
            raise _Unusual
        text = source
    if not text.endswith("\n"):
        text += "\n"
    length = len(text)
    lines: dict[str, _Line | None] = {}
    holder: list[Any] = [_PENDING]  # the root node goes into it
    frames: list[tuple[Any, int]] = []  # the open containers and their columns, innermost last
    # The entry whose value starts on a line below: its container, key or index, the column
    # that value must be right of, and whether it may be a sequence at that column (a mapping's
    # may: the dumper writes them so).
    slot: tuple[Any, Any, int, bool] | None = (holder, 0, -1, False)
    # The last one-line plain scalar (container, key, owner's column, position after its line,
    # text): YAML continues it on deeper lines.
    plain: tuple[Any, Any, int, int, str] | None = None
    cut: list[tuple[Any, Any]] = []  # where the scalars cut out go
    texts: list[str] = []  # and their text, as sequence entries
    container: Any
    key: Any
    position = 0
    while position < length:
        end = text.find("\n", position)
        line = text[position:end]
        position = end + 1
        taken = lines.get(line, _UNSEEN)
        if taken is _UNSEEN:
            content = line.lstrip(" ")
            if content and content[0] != "#":
                taken = _take_apart(line)
            elif _printable(line):
                taken = None
            else:
                raise _Unusual
            if len(lines) < _LINES_KEPT and len(line) <= _LINE_KEPT:
                lines[line] = taken
        if taken is None:
            continue  # an empty line, or a comment
        column, dashes, key_column, name, follows, value = taken
        previous, plain = plain, None
        if slot is not None and (column > slot[2] or (slot[3] and column == slot[2] and dashes)):
            container, key, owner, _ = slot  # the value of that entry starts here
            slot = None
            starts = True
        else:
            if slot is not None:
                slot[0][slot[1]] = _NULL  # an empty value
                slot = None
            while frames[-1][1] > column:
                frames.pop()
                if not frames:
                    raise _Unusual  # left of the root
            container, owner = frames[-1]
            if owner != column:
                if previous is None or previous[2] != owner:
                    raise _Unusual  # deeper than its container, with no scalar to go on
                # The plain scalar on the line before goes on here: cut it out, whole.
                container, key, owner, position, content = previous
                position = _cut(text, position, owner, content, texts)
                cut.append((container, key))
                container[key] = _CUT_OUT
                continue
            if not dashes and type(container) is list:
                frames.pop()  # an indentless sequence ends at its mapping's next key
                if not frames or frames[-1][1] != column or type(frames[-1][0]) is list:
                    raise _Unusual
                container = frames[-1][0]
            key = None
            starts = False
        for dash in dashes:
            if starts:
                new: Any = []
                container[key] = new
                frames.append((new, dash))
                container = new
            elif type(container) is not list:
                raise _Unusual  # an entry where a mapping has its keys
            owner = dash  # the entry's value is right of its dash
            key = len(container)
            container.append(_PENDING)
            starts = True
        if key_column >= 0:
            if starts:
                new = {}
                container[key] = new
                frames.append((new, key_column))
                container = new
            key, owner = name, key_column
            if container.setdefault(key, _PENDING) is not _PENDING:
                raise _Unusual  # a key given twice (vcrpy's loader keeps the last value)
        elif not starts or owner < 0:
            raise _Unusual  # a scalar where a key was due, or a document that is a scalar
        if follows == _VALUE:
            container[key] = value
        elif follows == _BELOW:
            slot = (container, key, owner, key_column >= 0)
        elif follows == _PLAIN:
            container[key] = value[0]
            plain = (container, key, owner, position, value[1])
        elif follows == _FOLDED:
            folded = _folded(text, position - 1 - len(value), owner)
            if folded is None:
                position = _cut(text, position, owner, value, texts)
                cut.append((container, key))
                container[key] = _CUT_OUT
            else:
                container[key], position = folded
        elif follows == _CUT:
            position = _cut(text, position, owner, value, texts)
            cut.append((container, key))
            container[key] = _CUT_OUT
        else:
            container[key] = {} if follows == _MAPPING else []
    if slot is not None:
        slot[0][slot[1]] = _NULL
    root = holder[0]
    if root is _PENDING:
        raise _Unusual
    if texts:
        values = _load("".join(texts))
        if type(values) is not list or len(values) != len(cut):
            raise _Unusual
        for (container, key), read in zip(cut, values, strict=True):
            container[key] = read
    return root


def _folded(text: str, quote: int, owner: int) -> tuple[str, int] | None:
    """The single-quoted scalar opening at ``quote`` and going on over the lines below, folded
    as libyaml folds it (a line break is a space, n empty lines are n line feeds, the spaces
    around a break go), and where the line after it starts. None if it has a tab, a line not
    right of ``owner``, or anything after its closing quote."""
    found = _SINGLE_QUOTED_REST.match(text, quote + 1)
    if found is None:
        return None
    close = found.end()
    end = text.find("\n", close)
    if text[close:end].strip(" "):
        return None
    body = text[quote + 1 : close - 1]
    if "\t" in body:
        return None
    lines = body.split("\n")
    if not all(map(str.isprintable, lines)):
        return None
    last = len(lines) - 1
    chunks = [lines[0].rstrip(" ")]
    breaks = 0
    for number in range(1, last + 1):
        line = lines[number]
        rest = line.lstrip(" ")
        if rest and len(line) - len(rest) <= owner:
            return None
        if number < last:
            rest = rest.rstrip(" ")
            if not rest:
                breaks += 1
                continue
        chunks.append("\n" * breaks if breaks else " ")
        chunks.append(rest)
        breaks = 0
    return "".join(chunks).replace("''", "'"), end + 1


def _cut(text: str, position: int, owner: int, content: str, texts: list[str]) -> int:
    """Cut out the scalar beginning with ``content`` and going on, maybe, on the lines from
    ``position`` right of ``owner``, as an entry of the sequence the event loop reads; where
    the line after it starts."""
    end = position
    length = len(text)
    while end < length:
        line_end = text.find("\n", end)
        line = text[end:line_end]
        rest = line.lstrip(" ")
        if rest and len(line) - len(rest) <= owner:
            break
        end = line_end + 1
    texts.append(f"- {content}\n{text[position:end]}")
    return end
