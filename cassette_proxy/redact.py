"""Secrets never reach a log line or a cassette.

Credential headers keep their scheme and lose their value, which is replaced by a short fingerprint
(``Api-Key sha256:1a2b3c4d``): enough to tell two keys apart in an audit, useless to an attacker.
Credential-looking tokens anywhere else (query strings, bodies, other headers) get the same
treatment. Redaction is deterministic, so a redacted request still matches its recording.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Final
from urllib.parse import parse_qsl, quote

# Headers whose whole value is a credential (an auth scheme may prefix it).
CREDENTIAL_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key"}
)
COOKIE_HEADERS: Final = frozenset({"cookie", "set-cookie"})
# A credential header holding only one of these words has nothing secret to hide.
BARE_SCHEMES: Final = frozenset({"bearer", "api-key", "basic"})
# Query parameters whose value is a credential.
CREDENTIAL_PARAMS: Final = frozenset(
    {"api_key", "apikey", "api-key", "key", "token", "access_token", "iam_token", "secret"}
)

# Token shapes: OpenAI keys (sk-...), Yandex API keys (AQVN...), Yandex IAM tokens (t1....),
# whatever follows an auth scheme in free text, and credential parameters in URLs and form
# bodies. A value after a scheme must look like a token (12+ characters with a digit or a
# symbol), so prose such as "a Basic explanation" is left alone: recorded bodies must replay
# as the upstream sent them.
_CREDENTIAL_CHARS: Final = r"[A-Za-z0-9._~+/=-]"
_TOKEN: Final = re.compile(
    r"(?P<scheme>\b(?:Bearer|bearer|BEARER|Api-Key|api-key|Basic)\s+)"
    rf"(?P<cred>(?={_CREDENTIAL_CHARS}*[0-9._~+/=-]){_CREDENTIAL_CHARS}{{12,}})"
    r"|(?P<bare>\bsk-[A-Za-z0-9_-]{16,}|\bAQVN[A-Za-z0-9_-]{16,}|\bt1\.[A-Za-z0-9_.-]{16,})"
    r"|(?P<param>(?:^|[?&])(?i:" + "|".join(sorted(map(re.escape, CREDENTIAL_PARAMS))) + r")=)"
    r"(?P<value>[^&#\s'\"]+)",
)
_FINGERPRINT: Final = re.compile(r"^sha256:[0-9a-f]{8}$")


def fingerprint(secret: str) -> str:
    """``sha256:`` and the first 8 hex digits of the secret's SHA-256."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _replace_token(match: re.Match[str]) -> str:
    if match["bare"] is not None:
        return fingerprint(match["bare"])
    prefix, secret = (
        (match["scheme"], match["cred"])
        if match["cred"] is not None
        else (match["param"], match["value"])
    )
    if _FINGERPRINT.match(secret):  # already redacted
        return match[0]
    return prefix + fingerprint(secret)


# Every match of _TOKEN contains one of these; checking for them first is much cheaper than the
# regular expression, and most text (a response body) holds none.
_MARKERS: Final = ("Bearer", "bearer", "BEARER", "Api-Key", "api-key", "Basic", "sk-", "AQVN",
                   "t1.", "=")  # fmt: skip


def redact_text(text: str) -> str:
    """Every credential-looking token in free text replaced by its fingerprint."""
    if not any(marker in text for marker in _MARKERS):
        return text
    return _TOKEN.sub(_replace_token, text)


def token_secrets(text: str) -> list[tuple[str, str]]:
    """``(secret, replacement)`` for every credential-looking token in ``text``, in order."""
    found = []
    for match in _TOKEN.finditer(text):
        replacement = _replace_token(match)
        if replacement != match[0]:
            found.append((match[0], replacement))
    return found


def redact_bytes(body: bytes) -> bytes:
    """:func:`redact_text` for a body; bodies that are not UTF-8 text are returned unchanged."""
    if not body:
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    redacted = redact_text(text)
    return body if redacted == text else redacted.encode("utf-8")


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
    """The value of header ``name`` as it may be logged or recorded (valid Unicode)."""
    value = printable(value)
    lowered = name.lower()
    if lowered in CREDENTIAL_HEADERS:
        return _redact_credential(value)
    if lowered in COOKIE_HEADERS:
        return _redact_cookies(value, set_cookie=lowered == "set-cookie")
    return redact_text(value)


def redact_query(query: str) -> str:
    """A raw query string with credential parameters and tokens fingerprinted.

    The string is left byte-for-byte alone when nothing in it needs redacting.
    """
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    changed = False
    out = []
    for key, value in pairs:
        if key.lower() in CREDENTIAL_PARAMS and value and not _FINGERPRINT.match(value):
            new = fingerprint(value)
        else:
            new = redact_text(value)
        changed |= new != value
        out.append((key, new))
    if not changed:
        return query
    return "&".join(f"{quote(k, safe='')}={quote(v, safe=':')}" for k, v in out)


def redact_path(raw_path: str) -> str:
    """A raw path-and-query with tokens in the path and credentials in the query fingerprinted."""
    path, sep, query = raw_path.partition("?")
    return f"{redact_text(path)}{sep}{redact_query(query)}"
