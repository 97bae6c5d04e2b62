"""Secrets never reach a log line or a cassette.

Credential headers keep their scheme and lose their value, which is replaced by a short fingerprint
(``Api-Key sha256:1a2b3c4d``): enough to tell two keys apart in an audit, useless to an attacker.
Everywhere else (the path and query, bodies, other headers, the reason phrase) secrets are found
by the rules of :mod:`cassette_proxy.redact.rules` (gitleaks' rule set, and credential-named
parameters and JSON fields), in the bytes as they are and in what they mean (JSON strings
unescaped, percent-encoding decoded, streamed deltas joined), and get the same treatment.
Redaction is deterministic, so a redacted request still matches its recording.

- :mod:`cassette_proxy.redact.names`: names whose value is a credential;
- :mod:`cassette_proxy.redact.rules`: the rules, compiled into one RE2 set;
- :mod:`cassette_proxy.redact.detect`: where the secrets are in some bytes;
- :mod:`cassette_proxy.redact.meaning`: where they are behind an encoding;
- here: what replaces them, per channel.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cassette_proxy.kept import remembered
from cassette_proxy.redact.meaning import Hit, hits
from cassette_proxy.redact.names import is_credential_name

COOKIE_HEADERS: Final = frozenset({"cookie", "set-cookie"})
# A credential header holding only one of these words has nothing secret to hide.
BARE_SCHEMES: Final = frozenset({"bearer", "api-key", "basic"})
_FINGERPRINT: Final = re.compile(r"^sha256:[0-9a-f]{8}$")


def fingerprint(secret: str) -> str:
    """``sha256:`` and the first 8 hex digits of the secret's SHA-256."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def fingerprint_bytes(secret: bytes) -> str:
    return "sha256:" + hashlib.sha256(secret).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    replacement: bytes | None  # None: the fingerprint of the bytes replaced
    meaning: int  # the length of the secret it is part of


def _edits(found: list[Hit]) -> list[_Edit]:
    """What replaces each secret, in order, not overlapping: a secret's fingerprint (of what it
    means) where its first bytes are, and nothing where the rest of it is (a secret spread over
    streamed deltas). Of two edits of the same bytes, the one of the longer secret wins (a
    delta that ends inside a key can look like a shorter key of its own); overlapping secrets
    become one, fingerprinted as it stands."""
    edits = sorted(
        (
            _Edit(
                start,
                end,
                fingerprint_bytes(hit.secret).encode() if i == 0 else b"",
                len(hit.secret),
            )
            for hit in found
            for i, (start, end) in enumerate(hit.ranges)
        ),
        key=lambda edit: (edit.start, -edit.end, -edit.meaning),
    )
    merged: list[_Edit] = []
    for edit in edits:
        if merged and edit.start < merged[-1].end:
            last = merged[-1]
            if edit.end > last.end:
                merged[-1] = _Edit(last.start, edit.end, None, 0)
        else:
            merged.append(edit)
    return merged


def _redacted(data: bytes, found: list[Hit]) -> bytes:
    out, last = [], 0
    for edit in _edits(found):
        replacement = edit.replacement
        if replacement is None:
            replacement = fingerprint_bytes(data[edit.start : edit.end]).encode()
        out += [data[last : edit.start], replacement]
        last = edit.end
    out.append(data[last:])
    return b"".join(out)


def redact_bytes(body: bytes) -> bytes:
    """Every secret in ``body`` replaced by its fingerprint; ``body`` itself if it holds none.

    Any bytes: a body that is not UTF-8 is scanned all the same. A small body is often
    redacted twice (for the cassette and for the log), so the last few are remembered."""
    if not body:
        return body
    if len(body) <= _REMEMBERED_SIZE:
        redacted = _remembered(body)
        return body if redacted == body else redacted
    return scanned(body)


def scanned(body: bytes) -> bytes:
    """:func:`redact_bytes`, always scanning (what a body never seen before costs)."""
    found = hits(body)
    return _redacted(body, found) if found else body


_REMEMBERED_SIZE: Final = 4096
_remembered: Final = functools.lru_cache(maxsize=256)(scanned)


def _encoded(text: str) -> tuple[bytes, str]:
    """``text`` as the bytes it came from, and the error handler that turns them back: aiohttp
    keeps bytes that are not UTF-8 as lone surrogates (surrogateescape); a lone surrogate of
    another origin (a JSON ``\\ud800``) needs surrogatepass."""
    try:
        return text.encode("utf-8", "surrogateescape"), "surrogateescape"
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass"), "surrogatepass"


def redact_text(text: str) -> str:
    """Every secret in ``text`` replaced by its fingerprint; ``text`` itself if it holds none."""
    if not text:
        return text
    data, errors = _encoded(text)
    found = hits(data)
    return _redacted(data, found).decode("utf-8", errors) if found else text


@dataclass(frozen=True, slots=True)
class Found:
    """A secret in some text: the text, what replaces it, and the rule that found it."""

    original: str
    replacement: str
    rule: str


def secrets_in(data: bytes | str) -> list[Found]:
    """Every secret :func:`redact_bytes` would replace in ``data``, in order, each once however
    many ways it was found. ``original`` is the text the secret is written as in ``data`` (with
    its escapes), or, for one spread over streamed deltas, what it means."""
    raw, errors = _encoded(data) if isinstance(data, str) else (data, "surrogateescape")
    found: list[Found] = []
    covered: list[tuple[int, int]] = []
    for hit in hits(raw):
        start, end = hit.ranges[0]
        if any(low <= start and end <= high for low, high in covered):
            continue  # the same secret, found again in what the bytes mean
        covered += hit.ranges
        written = raw[start:end] if len(hit.ranges) == 1 else hit.secret
        found.append(
            Found(written.decode("utf-8", errors), fingerprint_bytes(hit.secret), hit.rule)
        )
    return found


# Bytes a token may be made of: a cut inside a run of them may be inside a secret.
_TOKEN_BYTES: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=%"
)
_HEAD_MARGIN: Final = 1024  # bytes past the cut that are scanned, so a secret across it is found
_WORD_MOST: Final = 48  # bytes of a word the head's cut leaves out rather than split
_WORD_END: Final = re.compile(r"\w+$")


def redacted_head(body: bytes, size: int) -> bytes:
    """The first ``size`` bytes (at most) of the redacted ``body``, cut between characters and
    between words, never inside a token.

    Redacting only the head would miss a secret the cut goes through (its first characters are
    too short for any rule), so a margin past the cut is redacted too, and a token the cut still
    splits is left out whole. A word in another script (Cyrillic, say) the cut would split is
    left out too, unless it runs on for more than :data:`_WORD_MOST` bytes (text without
    spaces): then the cut is only kept off the middle of a character."""
    window = redact_bytes(body[: size + _HEAD_MARGIN])
    if len(window) <= size:
        return window
    end = size
    while end and window[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte: inside a character
        end -= 1
    if window[end] in _TOKEN_BYTES:
        while end and window[end - 1] in _TOKEN_BYTES:
            end -= 1
    elif window[end] >= 0x80 and window[end : end + 4].decode("utf-8", "ignore")[:1].isalnum():
        tail = window[max(0, end - _WORD_MOST) : end].decode("utf-8", "ignore")
        kept = _WORD_END.sub("", tail)
        if kept:  # the word starts within reach: end before it
            end -= len(tail[len(kept) :].encode())
    return window[:end]


def _redact_credential(value: str) -> str:
    scheme, sep, cred = value.strip().partition(" ")
    cred = cred.strip()
    if sep and cred:
        return f"{scheme} {cred if _FINGERPRINT.match(cred) else fingerprint(cred)}"
    if _FINGERPRINT.match(value) or value.lower() in BARE_SCHEMES:  # nothing secret left
        return value
    return fingerprint(value)


def _redact_cookies(value: str, *, set_cookie: bool) -> str:
    parts = value.split(";")
    # In Set-Cookie only the first pair is the cookie; the rest are attributes (Path, Expires...).
    secret_parts = parts[:1] if set_cookie else parts
    redacted = []
    for part in secret_parts:
        name, sep, cookie = part.partition("=")
        if sep and not _FINGERPRINT.match(cookie):
            cookie = fingerprint(cookie)
        redacted.append(f"{name}={cookie}" if sep else part)
    return ";".join(redacted + parts[len(secret_parts) :])


def printable(value: str) -> str:
    """``value`` as valid Unicode: bytes that were not UTF-8 (kept by aiohttp as surrogates)
    become U+FFFD, so the value can be written to JSON and YAML."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


@functools.lru_cache(maxsize=8192)  # the same headers come with every request
def redact_header(name: str, value: str) -> str:
    """The value of header ``name`` as it may be logged or recorded (valid Unicode).

    A header named like a credential (``Authorization``, ``X-Auth-Token``,
    ``Ocp-Apim-Subscription-Key``...) loses its whole value, an auth scheme aside; cookies
    their values; any other header the secrets in it."""
    value = printable(value)
    lowered = name.lower()
    if lowered in COOKIE_HEADERS:
        return _redact_cookies(value, set_cookie=lowered == "set-cookie")
    if is_credential_name(lowered):
        return _redact_credential(value)
    return redact_text(value)


def redact_query(query: str) -> str:
    """A raw query string with credential parameters and tokens fingerprinted (the raw value,
    percent-encoding and all), and every other byte left as it was."""
    return redact_text(query)


@remembered(maxsize=4096, max_chars=2048)
def redact_path(raw_path: str) -> str:
    """A raw path-and-query with the secrets in it fingerprinted. Remembered (up to 2 KiB): a
    request's path is redacted for its lookup and again for its log line, and replays repeat
    paths."""
    return redact_text(raw_path)
