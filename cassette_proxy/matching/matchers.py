"""Finding a recorded interaction without scanning the cassette.

vcrpy's matchers (``vcr.matchers``) compare two requests; vcrpy scans the whole cassette with
them for every request. Each matcher used here is an equality of one projection of the request,
so the projections together make a hashable key and lookup is a dict access. vcrpy's own matcher
functions still explain a miss, so its messages are reused verbatim; the body and headers are
explained here, as text (vcrpy's diff shows JSON with ``\\uXXXX`` escapes) and without the fields
``--match-ignore`` leaves out (:mod:`cassette_proxy.matching.ignore`).

``headers`` compares the request headers as recorded (redacted, placeholders in), all of them as
vcrpy's matcher does, or only those named (``--match-headers``). Custom matchers (functions, in
the pytest plugin) are vcrpy's: ``f(r1, r2)`` raising ``AssertionError`` or returning False on a
mismatch; they cannot be keyed, so they are asked about the recordings the key found.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import ParseResult, parse_qsl, urlparse

import orjson
from vcr import matchers as vcr_matchers
from vcr.request import Request as VcrRequest
from vcr.util import read_body

from cassette_proxy.errors import HookFailed
from cassette_proxy.json_cost import too_dense
from cassette_proxy.kept import dumps_kept
from cassette_proxy.matching.ignore import Ignore
from cassette_proxy.matching.volatile import Change, volatile_changes
from cassette_proxy.models.http import DATA_LOGGING_HEADER, data_logging_refused

Key = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class Lookup:
    """What matching reads of a request (its method, URI and body, and its headers when a
    matcher reads them), without the rest of a vcrpy ``Request``: a replay hit is found without
    building one."""

    method: str
    uri: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


CustomMatcher = Callable[[Any, Any], Any]


def body_bytes(request: VcrRequest) -> bytes:
    """The body as sent. vcrpy's aiohttp stub records the object given to ``json=`` (a mapping or
    a list) as it was, and aiohttp sends ``json.dumps`` of it."""
    body = read_body(request) or b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, Mapping | list | tuple):
        return json.dumps(body).encode("utf-8")
    if not isinstance(body, bytes | bytearray):
        raise TypeError(f"a body of type {type(body).__name__}")
    return bytes(body)


def _json_of(body: bytes) -> Any:
    """The body's JSON, or :data:`NOT_JSON`; JSON too dense to parse affordably
    (:func:`~cassette_proxy.json_cost.too_dense`) is not parsed, and matched by its bytes."""
    if (body[:1] in {b"{", b"[", b'"'} or body[:1].isdigit()) and not too_dense(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return NOT_JSON


NOT_JSON: Final = object()


NOTHING_IGNORED: Final = Ignore()


def _canonical_body(request: VcrRequest, ignore: Ignore = NOTHING_IGNORED) -> Hashable:
    """The body as canonical JSON when it is JSON (without the ignored fields), else its bytes
    (empty and absent are equal)."""
    body = body_bytes(request)
    document = _json_of(body)
    if document is NOT_JSON:
        return ("raw", body)
    if ignore:
        document, _ = ignore.strip(document)
    return ("json", dumps_kept(document, option=orjson.OPT_SORT_KEYS))


def _header_pairs(request: VcrRequest | Lookup) -> list[tuple[str, str]]:
    """The request's headers as ``(lowercased name, value)``; vcrpy's ``HeadersDict`` keeps one
    value a name."""
    if isinstance(request, Lookup):
        return [(name.lower(), value) for name, value in request.headers]
    return [(name.lower(), str(value)) for name, value in request.headers.items()]


def _headers_of(
    request: VcrRequest | Lookup, names: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    pairs = _header_pairs(request)
    if names:
        pairs = [(name, value) for name, value in pairs if name in names]
    return tuple(sorted(pairs))


def _uri(request: VcrRequest, parsed: ParseResult) -> str:
    uri: str = request.uri
    if parsed.path:
        return uri
    authority = f"{parsed.scheme}://{parsed.netloc}"
    return authority + "/" + uri[len(authority) :] if uri.startswith(authority) else uri


@functools.lru_cache(maxsize=256)
def _host_port(scheme: str, netloc: str) -> tuple[str | None, int | None]:
    """vcrpy's ``Request.host`` and ``Request.port`` (the URI's port, else the scheme's default)
    for one authority: a cassette has a handful, so each is parsed once."""
    parsed = urlparse(f"{scheme}://{netloc}")
    port = parsed.port
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    return parsed.hostname, port


def _query(parsed: ParseResult) -> Hashable:
    return tuple(sorted(parse_qsl(parsed.query))) if parsed.query else ()


_DEFAULT_PORTS: Final = {"https": 443, "http": 80}

# Each projection is vcrpy's ``Request`` property of that name, given the URI parsed once:
# vcrpy's properties parse it again on every access, five times for the default matchers.
Projection = Callable[[VcrRequest, ParseResult], Hashable]
PROJECTIONS: Final[dict[str, Projection]] = {
    "method": lambda r, _: r.method,
    "scheme": lambda _, p: p.scheme,
    "host": lambda _, p: _host_port(p.scheme, p.netloc)[0],
    "port": lambda _, p: _host_port(p.scheme, p.netloc)[1],
    "path": lambda _, p: p.path or "/",
    "query": lambda _, p: _query(p),
    "uri": _uri,
    "body": lambda r, _: _canonical_body(r),
    "raw_body": lambda r, _: body_bytes(r),
}


class Matcher:
    """The configured ``match_on`` list: a key for lookup, vcrpy's words for a miss."""

    def __init__(
        self,
        match_on: Sequence[str],
        *,
        ignore: Ignore = NOTHING_IGNORED,
        headers: tuple[str, ...] = (),
        custom: Sequence[CustomMatcher] = (),
    ) -> None:
        self.names = tuple(match_on)
        self.ignore = ignore
        self.headers = tuple(name.lower() for name in headers)
        self.custom = tuple(custom)
        self._projections = [self._projection(name) for name in self.names]
        self._vcr_matchers: list[Callable[[Any, Any], Any]] = [
            self._explainer(name) for name in self.names
        ]

    def _projection(self, name: str) -> Projection:
        if name == "body" and self.ignore:
            return lambda r, _: _canonical_body(r, self.ignore)
        if name == "headers":
            return lambda r, _: _headers_of(r, self.headers)
        return PROJECTIONS[name]

    def _explainer(self, name: str) -> Callable[[Any, Any], Any]:
        """vcrpy's matcher of that name, or this module's where its words would mislead."""
        if name == "body":
            return self._explain_body
        if name == "headers":
            return self._explain_headers
        if name == "raw_body":
            return _explain_raw_body
        return getattr(vcr_matchers, name)  # type: ignore[no-any-return]

    @property
    def shown(self) -> tuple[str, ...]:
        """The matchers by name, custom ones by their function's."""
        return self.names + tuple(getattr(f, "__name__", repr(f)) for f in self.custom)

    def key(self, request: VcrRequest | Lookup) -> Key:
        parsed = urlparse(request.uri)
        return tuple([project(request, parsed) for project in self._projections])

    def accepts(self, request: VcrRequest, recorded: VcrRequest) -> bool:
        """Whether every custom matcher takes ``recorded`` for ``request`` (vcrpy's rule: a
        matcher that returns None or a true value, and raises no ``AssertionError``)."""
        try:
            return all(vcr_matchers._evaluate_matcher(f, request, recorded)[0] for f in self.custom)
        except Exception as exc:  # vcrpy's rule takes AssertionError only: the rest is a bug
            raise HookFailed(
                "custom matcher", exc, "the request was neither answered nor forwarded"
            ) from exc

    def differences(self, request: VcrRequest, recorded: VcrRequest) -> list[tuple[str, str]]:
        """``(matcher, message)`` for each matcher that fails, in vcrpy's own words."""
        matchers = zip(self.shown, self._vcr_matchers + list(self.custom), strict=True)
        try:
            results = [
                (name, *vcr_matchers._evaluate_matcher(function, request, recorded))
                for name, function in matchers
            ]
        except RecursionError:  # vcrpy's body matcher parses JSON recursively
            return [
                (name, "differs (a body nested too deeply to compare in detail)")
                for name, ours, theirs in zip(
                    self.names, self.key(request), self.key(recorded), strict=True
                )
                if ours != theirs
            ]
        return [(name, message or "differs") for name, match, message in results if not match]

    def volatile_changes(self, request: VcrRequest, recorded: VcrRequest) -> list[Change] | None:
        """How the JSON bodies differ, if only in values that change from run to run (the
        ignored fields left out)."""
        new, old = _json_of(body_bytes(request)), _json_of(body_bytes(recorded))
        if new is NOT_JSON or old is NOT_JSON:
            return None
        if self.ignore:
            new, old = self.ignore.strip(new)[0], self.ignore.strip(old)[0]
        return volatile_changes(new, old)

    def _explain_body(self, request: VcrRequest, recorded: VcrRequest) -> None:
        """vcrpy's ``body`` matcher for a body the key compares: the diff as text, without the
        ignored fields (and naming them). Never a recording's body sent with
        x-data-logging-enabled: false: the answer of a miss is logged (unless this request asked
        not to be), and may go to another client."""
        ours, theirs = body_bytes(request), body_bytes(recorded)
        hidden = _not_shown(ours, theirs) if withheld(recorded) else None
        new, old = _json_of(ours), _json_of(theirs)
        if new is NOT_JSON or old is NOT_JSON:
            if (ours or b"") != (theirs or b""):
                raise AssertionError(hidden or vcr_matchers._body_diff(ours, theirs))
            return
        left_out: dict[str, None] = {}
        if self.ignore:
            new, removed_new = self.ignore.strip(new)
            old, removed_old = self.ignore.strip(old)
            left_out = dict.fromkeys(removed_new + removed_old)
        if new == old:
            return
        if hidden is not None:
            raise AssertionError(hidden)
        diff = vcr_matchers._body_diff(_text(new), _text(old))
        if left_out:
            diff += f"\n(not compared, as match_ignore says: {', '.join(left_out)})"
        raise AssertionError(diff)

    def _explain_headers(self, request: VcrRequest, recorded: VcrRequest) -> None:
        ours, theirs = _headers_of(request, self.headers), _headers_of(recorded, self.headers)
        if ours == theirs:
            return
        mine, others = dict(ours), dict(theirs)
        changed = [
            f"{name}: {others.get(name, '(absent)')!r} recorded, {mine.get(name, '(absent)')!r} now"
            for name in sorted(mine.keys() | others.keys())
            if mine.get(name) != others.get(name)
        ]
        raise AssertionError("; ".join(changed))


def _explain_raw_body(request: VcrRequest, recorded: VcrRequest) -> None:
    """vcrpy's ``raw_body`` matcher, without its diff for a withheld recording."""
    if withheld(recorded):
        ours, theirs = body_bytes(request), body_bytes(recorded)
        if (ours or b"") != (theirs or b""):
            raise AssertionError(_not_shown(ours, theirs))
        return
    vcr_matchers.raw_body(request, recorded)


def _not_shown(ours: bytes | None, theirs: bytes | None) -> str:
    return (
        f"the bodies differ ({len(ours or b'')} bytes in this request, {len(theirs or b'')} "
        f"recorded); not shown, since the recording asked not to be logged "
        f"({DATA_LOGGING_HEADER}: false)"
    )


def withheld(request: VcrRequest) -> bool:
    """Whether the request asked not to be logged (``x-data-logging-enabled: false``)."""
    value = request.headers.get(DATA_LOGGING_HEADER)
    if isinstance(value, list):  # a cassette's headers hold lists of values
        value = value[0] if value else None
    return data_logging_refused(value if isinstance(value, str) else None)


def _text(document: Any) -> str:
    """JSON as a reader wants it in a diff: indented, keys sorted, text as text."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
