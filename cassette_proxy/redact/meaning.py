"""Secrets behind an encoding: found in what the bytes mean, replaced where the bytes are.

The rules (:mod:`cassette_proxy.redact.detect`) read bytes as they are. That misses a key that
an encoding hides:

- inside a JSON string that is itself JSON (a function call's ``arguments``:
  ``"{\\"stripe\\": \\"sk_live_...\\"}"``), a key ends in ``\\"``, which most of gitleaks' rules
  do not take for the end of a token (they end in a quote, a space or ``\\n``);
- written with ``\\u`` escapes (``sk\\u005flive_...``), it holds no keyword a rule looks for;
- percent-encoded, in a form body or a URL (``ghp%5F...``), neither;
- streamed in pieces (the argument deltas of an event stream), it is in no one piece.

So besides the bytes as they are, the scan reads what they mean, each as a body of its own:

- every JSON string literal that holds an escape, unescaped (recursively: the JSON inside it is
  read the same way, and so is a string inside that);
- the bytes percent-decoded, when they hold a ``%XX``;
- in an event stream, the ``delta`` strings of the ``*.delta`` events of each output item,
  joined in order.

A secret found in a view is mapped back to the bytes it came from and replaced there by the
fingerprint of what it means (one key, one fingerprint, however it was written), so every other
byte is kept and redaction stays deterministic: a redacted request still matches its recording.
A secret spread over several deltas gets its fingerprint in the first piece and is removed from
the others, so the deltas still join into the redacted whole. The views read at most
:data:`BUDGET` times the body's length in all (a body of strings nested in strings in strings
costs no more than that), and nest at most :data:`MAX_DEPTH` deep.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import orjson

from cassette_proxy.redact.detect import find
from cassette_proxy.redact.rules import compile_pattern

MAX_DEPTH: Final = 4  # views of views of ...: a string in a string in a string in a string
BUDGET: Final = 4  # bytes read in views, at most, per byte of the body (and 64 KiB in any case)
_MIN_BUDGET: Final = 64 * 1024

# A JSON string literal from its opening quote: runs without a quote or a backslash, escapes.
_LITERAL: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# JSON's escapes: a surrogate pair, any other \uXXXX, one character.
_ESCAPE: Final = re.compile(
    rb"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|u([0-9a-fA-F]{4})|([\"\\/bfnrt]))"
)
_SIMPLE: Final = {b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"f": b"\f",
                  b"n": b"\n", b"r": b"\r", b"t": b"\t"}  # fmt: skip
_PERCENT: Final = re.compile(rb"%([0-9A-Fa-f]{2})")
# A "delta" member, looked for in a body: RE2 finds a literal by memchr, where ``in`` takes
# about 30 us over 64 KiB for a needle of several bytes (a one-byte one is as fast either way).
_DELTA: Final = compile_pattern('"delta"')
_SEARCHED_BY_RE2: Final = 4096  # bytes from which RE2's call costs less than ``in``'s search
_JSON_STARTS: Final = (b"{", b"[")


def _has_delta(data: bytes) -> bool:
    """Whether ``data`` may be an event stream with deltas (JSON, starting with ``{`` or
    ``[``, is not one, however many ``"delta"`` members it holds)."""
    if data[:1] in _JSON_STARTS:
        return False
    if len(data) < _SEARCHED_BY_RE2:
        return b'"delta"' in data
    return _DELTA.search(data) is not None


# A "delta" member of an event, and its string.
_DELTA_MEMBER: Final = re.compile(rb'"delta"\s*:\s*("[^"\\]*(?:\\.[^"\\]*)*")', re.DOTALL)

Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Hit:
    """A secret: where its bytes are (one range, or several for one spread over deltas), what
    it means (the text the rule found, decoded), and the rule that found it."""

    ranges: tuple[Range, ...]
    secret: bytes
    rule: str

    @property
    def start(self) -> int:
        return self.ranges[0][0]


class Segment(NamedTuple):
    """A run of a view and the bytes it came from. An ``atomic`` one is an escape: no part of
    it maps to less than all of its bytes."""

    start: int  # in the view
    end: int
    raw_start: int  # in the bytes the view reads
    raw_end: int
    atomic: bool


class Mapping:
    """Offsets in a view back to ranges of the bytes it was read from."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self._starts = [segment.start for segment in segments]

    def ranges(self, start: int, end: int) -> list[Range]:
        """The bytes ``view[start:end]`` came from, as few ranges as they allow."""
        found: list[Range] = []
        index = max(bisect.bisect_right(self._starts, start) - 1, 0)
        for segment in self.segments[index:]:
            if segment.start >= end:
                break
            if segment.end <= start:
                continue
            if segment.atomic:
                low, high = segment.raw_start, segment.raw_end
            else:
                low = segment.raw_start + max(start, segment.start) - segment.start
                high = segment.raw_start + min(end, segment.end) - segment.start
            if found and found[-1][1] == low:
                found[-1] = (found[-1][0], high)
            else:
                found.append((low, high))
        return found

    def hit(self, hit: Hit) -> Hit:
        """A hit in the view as a hit in the bytes."""
        ranges: list[Range] = []
        for start, end in hit.ranges:
            for low, high in self.ranges(start, end):
                if ranges and ranges[-1][1] == low:
                    ranges[-1] = (ranges[-1][0], high)
                else:
                    ranges.append((low, high))
        return Hit(tuple(ranges), hit.secret, hit.rule)


class _Budget:
    __slots__ = ("left",)

    def __init__(self, size: int) -> None:
        self.left = max(BUDGET * size, _MIN_BUDGET)

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True


class _View:
    """Some bytes as they mean (a string unescaped, say), and how to map them back to the
    bytes they were read from (made only when a secret is found in them)."""

    __slots__ = ("_make", "_mapping", "data", "parent", "percent")

    def __init__(
        self,
        data: bytes,
        parent: _View | None,
        make: Callable[[], Mapping] | None,
        *,
        percent: bool,
    ) -> None:
        self.data = data
        self.parent = parent
        self.percent = percent  # whether its own percent-decoding is to be read
        self._make = make
        self._mapping: Mapping | None = None

    def in_body(self, hit: Hit) -> Hit:
        """A hit in this view as a hit in the body the views were read from."""
        view: _View | None = self
        while view is not None and view.parent is not None:
            if view._mapping is None:
                assert view._make is not None
                view._mapping = view._make()
            hit = view._mapping.hit(hit)
            view = view.parent
        return hit


# Between views scanned together: a line break either side, so that no rule's match, nor the
# line an allowlist reads, reaches from one view into the next.
_BETWEEN: Final = b"\n\x00\n"


def hits(data: bytes) -> list[Hit]:
    """Every secret in ``data``, as it is and as it means, in order of its first byte."""
    found = [
        Hit(((span.start, span.end),), data[span.start : span.end], span.rule)
        for span in find(data)
    ]
    if b"\\" not in data and b"%" not in data and not _has_delta(data):
        return found  # nothing escaped, encoded or streamed in pieces: the bytes are the text
    budget = _Budget(len(data))
    level = [_View(data, None, None, percent=True)]
    for depth in range(MAX_DEPTH):
        views = [child for view in level for child in _views(view, budget, deltas=depth == 0)]
        if not views:
            break
        found += _scanned(views)
        level = views
    found.sort(key=lambda hit: (hit.start, -hit.ranges[0][1]))
    return found


def _scanned(views: list[_View]) -> list[Hit]:
    """The secrets in ``views``, scanned together in one pass, as hits in the body."""
    starts, position = [], 0
    for view in views:
        starts.append(position)
        position += len(view.data) + len(_BETWEEN)
    found: list[Hit] = []
    for span in find(_BETWEEN.join(view.data for view in views)):
        index = bisect.bisect_right(starts, span.start) - 1
        view = views[index]
        start, end = span.start - starts[index], min(span.end - starts[index], len(view.data))
        if start < end:
            found.append(view.in_body(Hit(((start, end),), view.data[start:end], span.rule)))
    return found


def _views(view: _View, budget: _Budget, *, deltas: bool) -> list[_View]:
    """What ``view``'s bytes mean, each a view of its own: its streamed deltas joined (only in
    the body itself), its escaped JSON strings unescaped, its percent-decoding."""
    data = view.data
    found: list[_View] = []
    streamed: set[int] = set()
    if deltas and _has_delta(data):
        for pieces in _deltas(data).values():
            joined = b"".join(piece.text for piece in pieces)
            if len(pieces) < 2 or not joined or not budget.take(len(joined)):
                continue
            streamed.update(piece.member for piece in pieces)
            make = functools.partial(_joined_mapping, data, pieces)
            found.append(_View(joined, view, make, percent=True))
    if b"\\" in data:
        for start, end in _escaped_literals(data):
            if streamed and _streamed(data, start, streamed):
                continue  # read with the other deltas of its item
            if not budget.take(end - start):
                break
            text = _decoded(data[start:end])
            if text:
                make = functools.partial(_literal_mapping, data, start, end, text)
                found.append(_View(text, view, make, percent=True))
    if view.percent and b"%" in data and _PERCENT.search(data) and budget.take(len(data)):
        decoded = _PERCENT.sub(_unescaped, data)
        found.append(_View(decoded, view, functools.partial(_percent_mapping, data), percent=False))
    return found


def _streamed(data: bytes, literal: int, members: set[int]) -> bool:
    """Whether the string at ``literal`` is the delta of one of the events at ``members``."""
    member = data.rfind(b'"delta"', max(0, literal - 64), literal)
    if member not in members:
        return False
    found = _DELTA_MEMBER.match(data, member)
    return found is not None and found.start(1) == literal


# -- JSON strings ----------------------------------------------------------------------------------


def _escaped_literals(data: bytes) -> Iterator[Range]:
    """The JSON string literals in ``data`` that hold an escape, quotes included.

    Found from each backslash: in JSON a backslash is only ever inside a string, and no quote
    stands between a string's opening quote and its first backslash, so the last quote before
    the first backslash opens the string. Each byte is looked at a bounded number of times, so
    bytes that are not JSON (a Windows path, a run of backslashes, a string never closed) cost
    no more than JSON."""
    floor = 0
    slash = data.find(b"\\")
    while slash >= 0:
        opening = data.rfind(b'"', floor, slash)
        if opening < 0:
            floor = slash + 1
        else:
            literal = _LITERAL.match(data, opening)
            if literal is None:
                # Never closed: every quote after it is escaped, so no string opens later.
                return
            yield opening, literal.end()
            floor = literal.end()
        slash = data.find(b"\\", floor)


def _decoded(literal: bytes) -> bytes | None:
    """A JSON string literal's text as UTF-8 (lone surrogates kept), or None if it is not one."""
    try:
        text = orjson.loads(literal)
    except orjson.JSONDecodeError:
        segmented = _segmented(literal, 0)
        return None if segmented is None else segmented[0]
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else None


def _segmented(literal: bytes, offset: int) -> tuple[bytes, list[Segment]] | None:
    """A literal's text, with where each run of it came from (``offset``: where the literal
    starts in the bytes read); None if an escape is not JSON's."""
    content_start, content_end = 1, len(literal) - 1
    parts: list[bytes] = []
    segments: list[Segment] = []
    at, position = 0, content_start
    for escape in _ESCAPE.finditer(literal, content_start, content_end):
        plain = literal[position : escape.start()]
        if b"\\" in plain:
            return None  # an escape JSON does not have
        if plain:
            segments.append(
                Segment(at, at + len(plain), offset + position, offset + escape.start(), False)
            )
            parts.append(plain)
            at += len(plain)
        high, low, code, simple = escape.groups()
        if simple is not None:
            char = _SIMPLE[simple]
        elif code is not None:
            char = chr(int(code, 16)).encode("utf-8", "surrogatepass")
        else:
            pair = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
            char = chr(pair).encode("utf-8")
        segments.append(
            Segment(at, at + len(char), offset + escape.start(), offset + escape.end(), True)
        )
        parts.append(char)
        at += len(char)
        position = escape.end()
    plain = literal[position:content_end]
    if b"\\" in plain:
        return None
    if plain:
        segments.append(
            Segment(at, at + len(plain), offset + position, offset + content_end, False)
        )
        parts.append(plain)
    return b"".join(parts), segments


def _literal_mapping(data: bytes, start: int, end: int, text: bytes) -> Mapping:
    """Where each byte of the literal ``data[start:end]``'s text (``text``) came from: its
    escapes, or, should they not decode to ``text``, the whole of its content as one."""
    segmented = _segmented(data[start:end], start)
    if segmented is not None and segmented[0] == text:
        return Mapping(segmented[1])
    return Mapping([Segment(0, len(text), start + 1, end - 1, True)])


# -- percent-encoding ------------------------------------------------------------------------------


def _unescaped(escape: re.Match[bytes]) -> bytes:
    return _BYTES[int(escape[1], 16)]


_BYTES: Final = tuple(bytes((value,)) for value in range(256))


def _percent_mapping(data: bytes) -> Mapping:
    """Where each byte of ``data`` percent-decoded came from."""
    segments: list[Segment] = []
    at = position = 0
    for escape in _PERCENT.finditer(data):
        if escape.start() > position:
            length = escape.start() - position
            segments.append(Segment(at, at + length, position, escape.start(), False))
            at += length
        segments.append(Segment(at, at + 1, escape.start(), escape.end(), True))
        at += 1
        position = escape.end()
    if position < len(data):
        segments.append(Segment(at, at + len(data) - position, position, len(data), False))
    return Mapping(segments)


# -- streamed deltas -------------------------------------------------------------------------------


class _Piece(NamedTuple):
    """A delta: where its event's first ``"delta"`` is, where its line ends, and its text."""

    member: int
    end: int
    text: bytes


def _delta_lines(data: bytes) -> tuple[list[tuple[int, int]], list[bytes]]:
    """The ``data:`` lines of an event stream that hold a ``"delta"``: where the first one is
    and where the line ends, and the line's JSON."""
    find, rfind = data.find, data.rfind
    places: list[tuple[int, int]] = []
    lines: list[bytes] = []
    position = 0
    while (found := find(b'"delta"', position)) >= 0:
        start = rfind(b"\n", 0, found) + 1
        end = find(b"\n", found)
        position = end = len(data) if end < 0 else end
        if data.startswith(b"data:", start):
            places.append((found, end))
            lines.append(data[start + 5 : end])
    return places, lines


def _parsed(lines: list[bytes]) -> list[Any]:
    """Each line's JSON (None for one that is not), parsed in one call when all are JSON."""
    try:
        parsed: list[Any] = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        parsed = []
        for line in lines:
            try:
                parsed.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                parsed.append(None)
    return parsed if len(parsed) == len(lines) else [None] * len(lines)


def _deltas(data: bytes) -> dict[tuple[object, ...], list[_Piece]]:
    """The ``delta`` strings of an event stream's ``*.delta`` events, by the item they build
    (event type, item, output, content and summary index), in order."""
    places, lines = _delta_lines(data)
    joined: dict[tuple[object, ...], list[_Piece]] = {}
    for (member, end), event in zip(places, _parsed(lines), strict=True):
        if type(event) is not dict:
            continue
        kind, delta = event.get("type"), event.get("delta")
        if type(kind) is not str or type(delta) is not str or not kind.endswith(".delta"):
            continue
        key = (kind, event.get("item_id"), event.get("output_index"),
               event.get("content_index"), event.get("summary_index"))  # fmt: skip
        try:
            pieces = joined.setdefault(key, [])
        except TypeError:  # an index that is a list, say: not a delta event this API sends
            continue
        pieces.append(_Piece(member, end, delta.encode("utf-8", "surrogatepass")))
    return joined


def _delta_literal(data: bytes, piece: _Piece) -> Range:
    """Where the delta's string is in the stream: the first ``"delta"`` member's string, unless
    it does not decode to the event's delta (that one was in a nested object), then the next
    such member's."""
    member = _DELTA_MEMBER.match(data, piece.member, piece.end)
    if member is not None:
        start, end = member.span(1)
        if data[start + 1 : end - 1] == piece.text:  # no escape in it: most deltas
            return start, end
    for member in _DELTA_MEMBER.finditer(data, piece.member, piece.end):
        start, end = member.span(1)
        if _decoded(data[start:end]) == piece.text:
            return start, end
    raise AssertionError("a delta event without its delta")  # parsed from this very line


def _joined_mapping(data: bytes, pieces: list[_Piece]) -> Mapping:
    segments: list[Segment] = []
    at = 0
    for piece in pieces:
        start, end = _delta_literal(data, piece)
        for segment in _literal_mapping(data, start, end, piece.text).segments:
            segments.append(
                Segment(
                    at + segment.start,
                    at + segment.end,
                    segment.raw_start,
                    segment.raw_end,
                    segment.atomic,
                )
            )
        at += len(piece.text)
    return Mapping(segments)
