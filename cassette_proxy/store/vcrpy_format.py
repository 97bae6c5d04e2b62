"""vcrpy's cassette format: every response shape its stubs have written, read as they read it.

vcrpy's loader (``vcr.serialize.deserialize``) checks the top level and builds the requests; a
response stays the dict that the stub which recorded it wrote, and only that stub's replay reads
it. Since vcrpy 1.0 the stubs have written these shapes, and the proxy reads each one the way
the stub that replays it does:

- **status**: ``status: {code, message}`` (every stub; ``message`` is null in cassettes of the
  httpcore stub before vcrpy 8.2, and httpx then takes the phrase of the code, as aiohttp does
  here). The httpx stub of vcrpy 4.1-5.x wrote ``status_code`` beside ``http_version``,
  ``headers`` and ``content`` instead: read as ``vcr.stubs.httpx_stubs`` reads it, through
  ``vcr.filters.decode_response`` (a body labelled gzip or deflate is inflated if it is
  compressed, the label dropped and ``Content-Length`` set to the body's length).
- **headers**: a mapping of names to lists of values (every stub today); a mapping of names to
  one string (the aiohttp stub up to vcrpy 4.0); a list of ``[name, [values]]`` pairs, tagged
  ``!!python/tuple`` in YAML (the tornado stub). Header bytes (``!!binary``) are read as httpx
  reads them (ASCII, else UTF-8, else Latin-1); an obsolete line folding (a line break followed
  by a space or tab) is read as one space, as RFC 9112 section 5.2 allows.
- **body**: ``body: {string: ...}`` holding text (encoded as UTF-8, as vcrpy's
  ``compat.convert_to_bytes`` does), ``!!binary`` bytes (base64 in the YAML) or null;
  ``body: {}`` (the aiohttp stub, for a response without one); ``content`` text in the old httpx
  format; and, though no stub wrote it, plain text or bytes as ``body`` itself.

A response none of vcrpy's stubs could replay either (no status, a code that is not a number), a
header the proxy cannot send (a line break in it), or a request it cannot match (a method that
is not text, a port out of range) is :class:`UnusableInteraction`, with where and what.
(:mod:`cassette_proxy.store.persist` builds the interactions, and writes today's shape, which every
stub of vcrpy 9 reads: ``status: {code, message}``, a mapping of names to lists of values,
``body: {string: ...}``.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from vcr.filters import decode_response
from vcr.request import Request as VcrRequest

from cassette_proxy.matching.matchers import body_bytes

Location = tuple[str | int, ...]

_FOLDING: Final = re.compile(r"\r?\n[ \t]+")
_LINE_BREAK: Final = re.compile(r"[\r\n]")
_NOT_A_NAME: Final = re.compile(r"[\x00-\x20:\x7f]")  # what cannot stand in a header name


class UnusableInteraction(Exception):
    """What vcrpy loads but the proxy cannot replay: where (a path in the cassette), and why."""

    def __init__(self, where: Location, problem: str) -> None:
        super().__init__(problem)
        self.where = where
        self.problem = problem

    def within(self, *outer: str | int) -> UnusableInteraction:
        """The same, located from further out (``"interactions", 3`` before ``"response"``)."""
        return UnusableInteraction((*outer, *self.where), self.problem)

    @property
    def pointer(self) -> str:
        return "/" + "/".join(str(step) for step in self.where)


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """A recorded response as the proxy replays it, whatever shape it was stored in."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _grouped(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return grouped


def read_response(response: Any) -> RecordedResponse:
    """A response vcrpy's loader handed over, in any of the shapes its stubs wrote."""
    where: Location = ("response",)
    if not isinstance(response, dict):  # YAML and JSON give dicts
        raise UnusableInteraction(
            where, f"the response is {_shown(response)}, not a mapping with status, headers, body"
        )
    if "status_code" in response:  # the httpx stub's format of vcrpy 4.1-5.x, read as it reads it
        return _old_httpx_response(where, response)
    status = response.get("status")
    if not isinstance(status, dict) or "code" not in status:
        raise UnusableInteraction(
            (*where, "status"),
            f"the status is {_shown(status)}, where {{code: 200, message: OK}} is expected",
        )
    return RecordedResponse(
        status=_code((*where, "status", "code"), status["code"]),
        reason=_reason((*where, "status", "message"), status.get("message")),
        headers=_flattened((*where, "headers"), response.get("headers")),
        body=_body((*where, "body"), response.get("body")),
    )


def _old_httpx_response(where: Location, response: Mapping[str, Any]) -> RecordedResponse:
    headers = _flattened((*where, "headers"), response.get("headers"))
    body = _text_or_bytes((*where, "content"), response.get("content"))
    decoded = decode_response({"headers": _grouped(headers), "body": {"string": body}})
    return RecordedResponse(
        status=_code((*where, "status_code"), response["status_code"]),
        reason="",  # httpx took the phrase of the code, as aiohttp does for an empty reason
        headers=tuple(
            (name, value) for name, values in decoded["headers"].items() for value in values
        ),
        body=decoded["body"]["string"],
    )


def check_request(request: VcrRequest) -> None:
    """What matching, redaction and a rewrite need of a request vcrpy built. Header values
    vcrpy kept as bytes or numbers are made text, in place."""
    where: Location = ("request",)
    if not isinstance(request.method, str):
        raise UnusableInteraction((*where, "method"), f"the method is {_shown(request.method)}")
    if not isinstance(request.uri, str):
        raise UnusableInteraction((*where, "uri"), f"the uri is {_shown(request.uri)}")
    if ":" in request.parsed_uri.netloc:
        try:
            request.port  # noqa: B018 - parses the port, which matching needs
        except ValueError as exc:
            raise UnusableInteraction((*where, "uri"), f"the uri's port: {exc}") from exc
    body = request.body
    if body is not None and type(body) is not bytes:
        try:  # what matching makes of it: a file's bytes, chunks joined, aiohttp's json= object
            body_bytes(request)
        except (TypeError, ValueError) as exc:
            raise UnusableInteraction(
                (*where, "body"), f"the body is {_shown(body)}, not bytes, text or JSON"
            ) from exc
    # The values as vcrpy's HeadersDict keeps them, without its slow Mapping methods.
    odd = [(n, v) for n, v in request.headers._store.values() if type(v) is not str]
    for name, value in odd:  # !!binary values (boto3's requests), or a hand-edited number
        request.headers[name] = _header_text((*where, "headers", name), value, "the value")


def _code(where: Location, code: Any) -> int:
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 999:
        raise UnusableInteraction(
            where, f"the status code is {_shown(code)}, where a number from 100 to 999 is expected"
        )
    return code


def _reason(where: Location, reason: Any) -> str:
    if reason is None:
        return ""
    text = _header_text(where, reason, "the reason phrase")
    if _LINE_BREAK.search(text):
        raise UnusableInteraction(where, f"the reason phrase {text!r} holds a line break")
    return text


def _flattened(where: Location, headers: Any) -> tuple[tuple[str, str], ...]:
    """``(name, value)`` pairs, in recorded order, from any of the stubs' header shapes."""
    if headers is None:
        return ()
    if isinstance(headers, dict):
        items: Iterable[tuple[Any, Any]] = headers.items()
    elif isinstance(headers, list | tuple):
        items = _pairs(where, headers)
    else:
        raise UnusableInteraction(
            where, f"the headers are {_shown(headers)}, not a mapping or a list of pairs"
        )
    # Loading 10,000 interactions reads about 100,000 values, nearly all text without a line
    # break under a name seen before: those are taken as they are, with no further call.
    pairs: list[tuple[str, str]] = []
    for raw_name, values in items:
        name = raw_name
        if type(raw_name) is not str or raw_name not in _FIELD_NAMES:
            name = _field_name(_located(where, headers, raw_name), raw_name)
        for value in values if type(values) is list or type(values) is tuple else (values,):
            if type(value) is str and "\r" not in value and "\n" not in value:
                pairs.append((name, value))
            else:
                at = _located(where, headers, raw_name)
                pairs.append((name, _header_value(at, name, value)))
    return tuple(pairs)


def _pairs(where: Location, headers: list[Any] | tuple[Any, ...]) -> Iterable[tuple[Any, Any]]:
    """The tornado stub's ``[name, [values]]`` pairs."""
    for position, item in enumerate(headers):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise UnusableInteraction(
                (*where, position), f"the header {_shown(item)} is not a [name, [values]] pair"
            )
        yield item[0], item[1]


def _located(where: Location, headers: Any, name: Any) -> Location:
    """Where header ``name`` is: under its name in a mapping, its position in a list."""
    if isinstance(headers, dict):
        return (*where, str(name))
    found = (i for i, item in enumerate(headers) if item[0] is name)
    return (*where, next(found, "?"))


_FIELD_NAMES: Final[set[str]] = set()  # names seen to be valid, up to _FIELD_NAMES_KEPT
_FIELD_NAMES_KEPT: Final = 4096


def _field_name(where: Location, name: Any) -> str:
    text = _header_text(where, name, "a header name")
    if not text or _NOT_A_NAME.search(text):
        raise UnusableInteraction(where, f"the header name {text!r} is not an HTTP field name")
    if len(_FIELD_NAMES) < _FIELD_NAMES_KEPT:
        _FIELD_NAMES.add(text)
    return text


def _header_value(where: Location, name: str, value: Any) -> str:
    text = _FOLDING.sub(" ", _header_text(where, value, f"header {name!r}"))
    if _LINE_BREAK.search(text):
        raise UnusableInteraction(
            where, f"header {name!r} holds a line break, which HTTP cannot send"
        )
    return text


def _header_text(where: Location, value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")  # ASCII is UTF-8
        except UnicodeDecodeError:
            return value.decode("latin-1")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a hand-edited `Content-Length: [42]`
    raise UnusableInteraction(where, f"{what} is {_shown(value)}, where text is expected")


def _body(where: Location, body: Any) -> bytes:
    if isinstance(body, dict):
        return _text_or_bytes((*where, "string"), body.get("string"))
    return _text_or_bytes(where, body)


def _text_or_bytes(where: Location, value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            # Text vcrpy's compat left as it is: lone surrogates, bytes a decoder escaped.
            return value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise UnusableInteraction(where, f"the body is not valid text ({exc.reason})") from exc
    raise UnusableInteraction(
        where, f"the body is {_shown(value)}, where text or bytes is expected"
    )


def _shown(value: Any) -> str:
    """A value as a message quotes it: short, with its type where that is the point."""
    if value is None:
        return "missing"
    if isinstance(value, Mapping):
        return f"a mapping with keys {', '.join(map(str, value)) or '(none)'}"
    if isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__} value"
