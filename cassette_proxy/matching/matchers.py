"""Finding a recorded interaction without scanning the cassette.

vcrpy's matchers (``vcr.matchers``) compare two requests; vcrpy scans the whole cassette with
them for every request. Each matcher used here is an equality of one projection of the request,
so the projections together make a hashable key and lookup is a dict access. vcrpy's own matcher
functions still explain a miss, so its messages are reused verbatim.
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

from cassette_proxy.json_cost import too_dense
from cassette_proxy.kept import dumps_kept

Key = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class Lookup:
    """What matching reads of a request (its method, URI and body), without the rest of a vcrpy
    ``Request``: a replay hit is found without building one."""

    method: str
    uri: str
    body: bytes


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


def _canonical_body(request: VcrRequest) -> Hashable:
    """The body as canonical JSON when it is JSON, else its bytes (empty and absent are equal).
    JSON too dense to parse affordably (:func:`~cassette_proxy.json_cost.too_dense`) is matched
    by its bytes."""
    body = body_bytes(request)
    if (body[:1] in {b"{", b"[", b'"'} or body[:1].isdigit()) and not too_dense(body):
        try:
            return ("json", dumps_kept(orjson.loads(body), option=orjson.OPT_SORT_KEYS))
        except orjson.JSONDecodeError:
            pass
    return ("raw", body)


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

    def __init__(self, match_on: Sequence[str]) -> None:
        self.names = tuple(match_on)
        self._projections = [PROJECTIONS[name] for name in self.names]
        self._vcr_matchers: list[Callable[[Any, Any], Any]] = [
            getattr(vcr_matchers, name) for name in self.names
        ]

    def key(self, request: VcrRequest) -> Key:
        parsed = urlparse(request.uri)
        return tuple([project(request, parsed) for project in self._projections])

    def differences(self, request: VcrRequest, recorded: VcrRequest) -> list[tuple[str, str]]:
        """``(matcher, message)`` for each matcher that fails, in vcrpy's own words."""
        try:
            _, failures = vcr_matchers.get_matchers_results(request, recorded, self._vcr_matchers)
        except RecursionError:  # vcrpy's body matcher parses JSON recursively
            return [
                (name, "differs (a body nested too deeply to compare in detail)")
                for name, ours, theirs in zip(
                    self.names, self.key(request), self.key(recorded), strict=True
                )
                if ours != theirs
            ]
        return [(name, message or "differs") for name, message in failures]
