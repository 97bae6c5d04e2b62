"""Values a cassette must not hold, recorded as ``<NAME>`` and put back on replay.

Ruby VCR's ``filter_sensitive_data`` and vcrpy's, as a proxy can do it, plus the one value every
request to Yandex AI Studio carries: the folder.

- **Named values** (``--placeholder TEAM=ml-platform``): every occurrence of the text becomes
  ``<TEAM>``.
- **Folder ids**, learned from each request: the folder of each model URI in its body or query
  (``gpt://<folder>/yandexgpt/latest``, and ``emb://``, ``cls://``, ``art://``, the schemes Yandex
  documents, also percent-encoded or with escaped slashes), then the ``OpenAI-Project`` and
  ``x-folder-id`` headers, then the model URIs of its response; each distinct one, in that
  order, becomes ``<FOLDER_ID>``, ``<FOLDER_ID_2>``, ... An occurrence counts only as a whole
  token (``b1gAAAA`` is not replaced inside ``xb1gAAAA``): folder ids are learned, not given, so
  a short one must not rewrite other words.

A :class:`Substitution` hides values (recording: request URI, headers and body; the response's
reason, headers and body, streamed events included; and matching, so both sides show the
placeholders). A recorded response that holds placeholders becomes a :class:`Template` on its
first play: split once into literal parts and placeholders, so a replay costs a join (and, for
values seen before, a dict lookup: the filled response is kept, with all the work done once per
response object, for up to :data:`FILLED_KEPT` sets of values).
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from multidict import CIMultiDict, CIMultiDictProxy

from cassette_proxy.models.http import ProxyResponse, Timing
from cassette_proxy.settings import FOLDER_PLACEHOLDER

FOLDER_HEADERS: Final = ("OpenAI-Project", "x-folder-id")
MODEL_SCHEMES: Final = ("gpt", "emb", "cls", "art")
FILLED_KEPT: Final = 16  # filled responses kept per template (one per replaying folder, say)
# A model URI's folder: after the scheme and "://" (or its percent-encoding, or "\\/\\/" as
# some JSON writers escape slashes), up to the next slash. The separator comes first in the
# pattern, so the regex engine scans for it quickly; the scheme is checked behind it (all
# are three letters).
_SCHEMES: Final = b"|".join(s.encode() for s in MODEL_SCHEMES)
_FOLDER_IN_URI: Final = re.compile(
    rb"(?<=" + _SCHEMES + rb")(?::(?:\\?/){2}|%3[Aa]%2[Ff]%2[Ff])"
    rb"([A-Za-z0-9][A-Za-z0-9_-]*)(?=\\?/|%2[Ff])"
)
_SCHEME_WORD: Final = frozenset(  # what a longer scheme would go on with before "gpt"
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-"
)
_SCHEME_BYTES: Final = frozenset(s.encode() for s in MODEL_SCHEMES)
_FOLDER_ID: Final = re.compile(rb"[A-Za-z0-9][A-Za-z0-9_-]*(?=/)")
_ID_CHARS: Final = "A-Za-z0-9_-"  # what a folder id is made of: a boundary is anything else
_MAX_FOLDERS: Final = 16  # per interaction; a body naming more keeps the rest as they are


def folder_placeholder(number: int) -> str:
    """``<FOLDER_ID>`` for the first folder of an interaction, ``<FOLDER_ID_2>`` ... after."""
    suffix = "" if number == 1 else f"_{number}"
    return f"<{FOLDER_PLACEHOLDER}{suffix}>"


def folders_in(data: bytes) -> list[str]:
    """The folder ids of the model URIs in ``data``, in order, each once."""
    found: dict[str, None] = {}
    at = data.find(b"://")
    while at != -1:  # the usual spelling, found without a regex scan of every position
        if data[at - 3 : at] in _SCHEME_BYTES and (at < 4 or data[at - 4] not in _SCHEME_WORD):
            folder = _FOLDER_ID.match(data, at + 3)
            if folder is not None:
                found.setdefault(folder[0].decode("ascii"))
        at = data.find(b"://", at + 3)
    if b"%3" in data or b":\\/" in data:  # percent-encoded, or with escaped slashes
        for match in _FOLDER_IN_URI.finditer(data):
            before = match.start() - 4  # the character before the three-letter scheme
            if before < 0 or data[before] not in _SCHEME_WORD:  # not "xgpt://"
                found.setdefault(match[1].decode("ascii"))
    return list(found)


@dataclass(frozen=True, slots=True)
class Substitution:
    """Values and the placeholders recorded in their place: named ones, then folders."""

    named: tuple[tuple[str, str], ...] = ()  # (value, "<NAME>")
    folders: tuple[str, ...] = ()  # <FOLDER_ID>, <FOLDER_ID_2>, ... in this order
    # Every value, named ones first, as text and as bytes: asked for on every hide, so made on
    # the first and kept.
    _values: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _bytes: tuple[bytes, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.named or self.folders)

    def with_folders(self, more: Iterable[str]) -> Substitution:
        """This substitution and the folders in ``more`` it does not have yet (appended)."""
        folders = dict.fromkeys(self.folders)
        for folder in more:
            if len(folders) >= _MAX_FOLDERS:
                break
            folders.setdefault(folder)
        return self if len(folders) == len(self.folders) else Substitution(self.named, (*folders,))

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(value, placeholder) for every value hidden."""
        numbered = tuple(
            (folder, folder_placeholder(n)) for n, folder in enumerate(self.folders, start=1)
        )
        return self.named + numbered

    def hide(self, data: bytes) -> bytes:
        """``data`` with every value replaced by its placeholder."""
        if not self or not data or not any(v in data for v in self.encoded_values()):
            return data  # most bodies and paths: none of the values, and no regex run
        pattern, replacements = _byte_pattern(self.named, self.folders)
        if len(replacements) == 1:  # one value (a folder, most often): no call per match
            return pattern.sub(next(iter(replacements.values())), data)
        return pattern.sub(lambda m: replacements[m[0]], data)

    def hide_text(self, text: str) -> str:
        if not self or not text or not any(value in text for value in self.values()):
            return text
        pattern, replacements = _text_pattern(self.named, self.folders)
        if len(replacements) == 1:
            return pattern.sub(next(iter(replacements.values())).replace("\\", "\\\\"), text)
        return pattern.sub(lambda m: replacements[m[0]], text)

    def values(self) -> tuple[str, ...]:
        values = self._values
        if values is None:
            values = tuple(value for value, _ in _spellings(self.named)) + self.folders
            object.__setattr__(self, "_values", values)  # frozen: set once, as a cache
        return values

    def encoded_values(self) -> tuple[bytes, ...]:
        encoded = self._bytes
        if encoded is None:
            encoded = _encoded(self.values())
            object.__setattr__(self, "_bytes", encoded)
        return encoded

    def hide_spans(self, data: bytes) -> tuple[bytes, list[tuple[int, int, int]]]:
        """:meth:`hide`, with each replacement as ``(start, end, new length)`` in ``data``."""
        if not self or not data:
            return data, []
        pattern, replacements = _byte_pattern(self.named, self.folders)
        out: list[bytes] = []
        spans: list[tuple[int, int, int]] = []
        last = 0
        for match in pattern.finditer(data):
            placeholder = replacements[match[0]]
            out += [data[last : match.start()], placeholder]
            spans.append((match.start(), match.end(), len(placeholder)))
            last = match.end()
        if not spans:
            return data, []
        out.append(data[last:])
        return b"".join(out), spans


@functools.lru_cache(maxsize=256)
def _encoded(values: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(value.encode() for value in values)


def _alternatives(named: tuple[tuple[str, str], ...], folders: tuple[str, ...]) -> list[str]:
    """The pattern of each value, longest first (so a value inside another loses to it); a
    folder only as a whole token."""
    values = [(value, re.escape(value)) for value, _ in named]
    # The literal first, its boundary checked after it (a lookbehind of the same literal with
    # one id character before it): a pattern that begins with a literal is searched for as
    # one (sre's prefix scan); one that begins with a lookbehind is tried at every position,
    # 20 us over a 1.5 KB body.
    values += [
        (f, rf"{re.escape(f)}(?<![{_ID_CHARS}]{re.escape(f)})(?![{_ID_CHARS}])") for f in folders
    ]
    return [pattern for _, pattern in sorted(values, key=lambda pair: -len(pair[0]))]


def _spellings(named: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Each named value as written, and as a JSON writer that escapes what is not ASCII writes
    it inside a string (``\\u0418``, lower- or upper-case hex: Python's json, PHP, curl by
    hand): a body the upstream or a client sent that way holds the value just the same."""
    if all(value.isascii() for value, _ in named):
        return named  # most: a team name, an id
    spelled = list(named)
    for value, mark in named:
        if value.isascii():
            continue
        escaped = json.dumps(value)[1:-1]
        upper = _ESCAPE.sub(lambda m: "\\u" + m[1].upper(), escaped)
        spelled += [(spelling, mark) for spelling in dict.fromkeys((escaped, upper))]
    return tuple(spelled)


_ESCAPE: Final = re.compile(r"\\u([0-9a-f]{4})")


@functools.lru_cache(maxsize=256)
def _text_pattern(
    named: tuple[tuple[str, str], ...], folders: tuple[str, ...]
) -> tuple[re.Pattern[str], dict[str, str]]:
    named = _spellings(named)
    replacements = dict(Substitution(named, folders).pairs())
    return re.compile("|".join(_alternatives(named, folders))), replacements


@functools.lru_cache(maxsize=256)
def _byte_pattern(
    named: tuple[tuple[str, str], ...], folders: tuple[str, ...]
) -> tuple[re.Pattern[bytes], dict[bytes, bytes]]:
    pattern, replacements = _text_pattern(named, folders)
    encoded = {k.encode(): v.encode() for k, v in replacements.items()}
    return re.compile(pattern.pattern.encode()), encoded


def remap(offsets: Iterable[int], spans: list[tuple[int, int, int]]) -> list[int]:
    """Offsets into a body, moved to where they fall once ``spans`` (``(start, end, new
    length)``, in order) were replaced; one inside a span goes to the end of its replacement."""
    starts = [start for start, _, _ in spans]
    shifts = [0]
    for start, end, length in spans:
        shifts.append(shifts[-1] + length - (end - start))
    moved = []
    for offset in offsets:
        before = bisect.bisect_right(starts, offset - 1)  # spans starting before the offset
        if before and offset < spans[before - 1][1]:  # inside that span
            start, end, length = spans[before - 1]
            moved.append(end + shifts[before])
        else:
            moved.append(offset + shifts[before])
    return moved


def remapped(timing: Timing | None, spans: list[tuple[int, int, int]]) -> Timing | None:
    """A recording's timing, its frame offsets moved by ``spans``."""
    if timing is None or not spans or not timing.frames:
        return timing
    ends = remap([end for end, _ in timing.frames], spans)
    return Timing(timing.headers_ms, tuple(zip(ends, (at for _, at in timing.frames), strict=True)))


class Placeholders:
    """What this proxy hides: its named values, and whether it learns folders."""

    def __init__(self, named: Mapping[str, str] | None = None, *, folders: bool = True) -> None:
        self.named = dict(named or {})  # NAME -> value
        self.folders = folders
        self._base = Substitution(tuple((value, f"<{name}>") for name, value in self.named.items()))
        names = [re.escape(name) for name in self.named]
        if folders:
            names.append(FOLDER_PLACEHOLDER + r"(?:_\d+)?")
        marks = "|".join(names)
        self._marks = re.compile(rf"<(?:{marks})>".encode()) if names else None

    @property
    def active(self) -> bool:
        return bool(self.named) or self.folders

    def of_request(
        self, body: bytes, query: str = "", headers: Iterable[str | None] = ()
    ) -> Substitution:
        """What hides a request: the named values, and the folders it names (its body's
        model URIs, its query's, then the folder headers' values in ``headers``)."""
        if not self.folders:
            return self._base
        found = folders_in(body)
        if query:
            found += folders_in(query.encode("utf-8", "surrogateescape"))
        found += [value.strip() for value in headers if value and value.strip()]
        return self._base.with_folders(found)

    def of_response(self, substitution: Substitution, body: bytes) -> Substitution:
        """``substitution`` with the folders of the response's model URIs added."""
        return substitution.with_folders(folders_in(body)) if self.folders else substitution

    def filled(
        self, response: ProxyResponse, timing: Timing | None, substitution: Substitution
    ) -> tuple[ProxyResponse, Timing | None]:
        """A recorded response with its placeholders filled from ``substitution`` (the
        replaying request's values), and its timing moved to match; the recorded response
        itself if it holds none."""
        if self._marks is None:
            return response, timing
        template = response.memo.get("template")
        if template is None:
            template = response.memo["template"] = Template.of(response, self._marks)
        if template is False:
            return response, timing
        assert isinstance(template, Template)
        return template.fill(substitution, timing)


def _split(data: bytes, marks: re.Pattern[bytes]) -> tuple[bytes | str, ...]:
    """``data`` as literal bytes and placeholder names (text), in order."""
    parts: list[bytes | str] = []
    last = 0
    for match in marks.finditer(data):
        parts += [data[last : match.start()], match[0].decode("ascii")]
        last = match.end()
    parts.append(data[last:])
    return tuple(part for part in parts if part)


@dataclass
class Template:
    """A recorded response with placeholders, split once."""

    response: ProxyResponse
    body: tuple[bytes | str, ...]
    reason: tuple[bytes | str, ...] | None
    headers: tuple[tuple[str, tuple[bytes | str, ...] | str], ...] | None
    names: frozenset[str]
    # Filled responses by the substitution that filled them, with the spans that moved.
    kept: dict[Substitution, tuple[ProxyResponse, list[tuple[int, int, int]]]] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, response: ProxyResponse, marks: re.Pattern[bytes]) -> Template | bool:
        """The response as a template, or False if it holds no placeholder."""
        body = _split(response.body, marks)
        reason = _split(response.reason.encode(), marks) if "<" in response.reason else None
        headers = tuple(
            (name, _split(value.encode(), marks) if "<" in value else value)
            for name, value in response.headers.items()
        )
        names = {part for part in body if isinstance(part, str)}
        names |= {part for part in reason or () if isinstance(part, str)}
        for _, value in headers:
            if not isinstance(value, str):
                names |= {part for part in value if isinstance(part, str)}
        if not names:
            return False
        with_marks = any(not isinstance(value, str) for _, value in headers)
        return cls(response, body, reason, headers if with_marks else None, frozenset(names))

    def fill(
        self, substitution: Substitution, timing: Timing | None
    ) -> tuple[ProxyResponse, Timing | None]:
        """The response with the values of ``substitution`` in place of its placeholders (one
        with no value stays as it is), and ``timing`` moved to match."""
        kept = self.kept.get(substitution)
        if kept is None:
            values = {placeholder: value.encode() for value, placeholder in substitution.pairs()}
            kept = self._filled(values)
            if len(self.kept) >= FILLED_KEPT:
                self.kept.pop(next(iter(self.kept)))
            self.kept[substitution] = kept
        response, spans = kept
        return response, remapped(timing, spans)

    def _filled(
        self, encoded: Mapping[str, bytes]
    ) -> tuple[ProxyResponse, list[tuple[int, int, int]]]:
        body = _joined(self.body, encoded)
        reason = self.response.reason
        if self.reason is not None:
            reason = _joined(self.reason, encoded).decode("utf-8", "replace")
        headers = self.response.headers
        if self.headers is not None:
            filled: CIMultiDict[str] = CIMultiDict()
            for name, value in self.headers:
                text = value if isinstance(value, str) else _joined(value, encoded).decode()
                filled.add(name, text)
            headers = CIMultiDictProxy(filled)
        spans = []  # where each placeholder was, and how long its value is
        at = 0
        for part in self.body:
            if isinstance(part, str) and part in encoded:
                spans.append((at, at + len(part), len(encoded[part])))
            at += len(part)
        return ProxyResponse(self.response.status, reason, headers, body), spans


def _joined(parts: tuple[bytes | str, ...], values: Mapping[str, bytes]) -> bytes:
    """The parts, each placeholder replaced by its value (or kept, if it has none)."""
    return b"".join(
        part if isinstance(part, bytes) else values.get(part, part.encode()) for part in parts
    )
