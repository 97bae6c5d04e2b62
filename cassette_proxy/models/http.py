"""The proxy's own view of one HTTP request and one HTTP response.

A request is read whole (it is bounded by ``--max-body-size``, and matching needs all of it). A
response travels as a :class:`ResponseHead` and a :class:`BodyStream` of chunks, never held
whole; :class:`ProxyResponse` is a response whose body is known whole: recorded in a cassette,
or captured (up to ``--max-capture-size``) for the log, validation and recording. Framing and
hop-by-hop headers are not part of any of them.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from multidict import CIMultiDict, CIMultiDictProxy

# RFC 9110 section 7.6.1, plus the framing headers the proxy recomputes for each side.
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


# Names the per-request cassette (serve --cassette-dir): the proxy's own header.
CASSETTE_HEADER: Final = "X-Cassette-Proxy-Cassette"
# Request headers that describe the hop to the proxy, not the request: never forwarded.
NOT_FORWARDED: Final = frozenset({"host", "expect", CASSETTE_HEADER.lower()})
# Yandex AI Studio's header asking the service not to log a request's data: the proxy logs and
# traces such an exchange without its bodies, and never quotes its body in a message.
DATA_LOGGING_HEADER: Final = "x-data-logging-enabled"
_NO: Final = frozenset({"false", "0", "no", "off"})


def data_logging_refused(value: str | None) -> bool:
    """Whether an ``x-data-logging-enabled`` value asks not to log the data."""
    return value is not None and value.strip().lower() in _NO


MAX_CASSETTE_NAME: Final = 200
# Segments of letters, digits, ".", "_" and "-", not starting with "." (so no "..", no hidden
# file), joined by "/": a name can only name a file under the folder.
_CASSETTE_NAME: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
CASSETTE_NAME_RULE: Final = (
    f"use up to {MAX_CASSETTE_NAME} letters, digits, '.', '_' and '-', in segments joined by "
    "'/' that do not start with '.' (such as checkout/pays-twice)"
)


def cassette_name(name: str) -> str | None:
    """A per-request cassette's name as the proxy knows it, or None if it is not one (see
    :data:`CASSETTE_NAME_RULE`). ``NAME.yaml`` is ``NAME``: both are the file ``NAME.yaml``, so
    one cassette, whichever a request (or a fault rule) gives."""
    if len(name) > MAX_CASSETTE_NAME or not _CASSETTE_NAME.fullmatch(name):
        return None
    return name.removesuffix(".yaml") or name


def end_to_end(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDictProxy[str]:
    """The headers with hop-by-hop ones removed, including those named in ``Connection``."""
    named = {
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
        if token.strip()
    }
    kept: CIMultiDict[str] = CIMultiDict(headers)  # copied in C, order and repeats kept
    for name in HOP_BY_HOP.union(named) if named else HOP_BY_HOP:
        kept.popall(name, None)  # case-insensitively
    return CIMultiDictProxy(kept)


DECODABLE: Final = frozenset({"gzip", "x-gzip", "deflate"})


class UndecodableBody(ValueError):
    """The body does not decode with the ``Content-Encoding`` it is labelled with."""


def content_coding(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> str:
    return headers.get("Content-Encoding", "identity").strip().lower() or "identity"


class BodyDecoder:
    """Undoes a body's ``Content-Encoding`` (gzip, deflate or identity) chunk by chunk, never
    producing more than ``limit`` bytes: a gzip bomb costs at most the limit.

    :meth:`feed` returns the decoded bytes of one chunk (cut at the limit; :attr:`exceeded` then
    says so) and raises :class:`UndecodableBody` for a coding it cannot undo or bytes that do
    not decode.
    """

    __slots__ = ("_first", "_inflate", "_wbits", "coding", "exceeded", "limit", "produced")

    def __init__(self, coding: str, limit: int) -> None:
        if coding not in DECODABLE and coding != "identity":
            raise UndecodableBody(f"Content-Encoding {coding!r} is not one the proxy can decode")
        self.coding = coding
        self.limit = limit
        self.produced = 0
        self.exceeded = False
        self._first = True
        self._wbits = zlib.MAX_WBITS | 16 if coding in {"gzip", "x-gzip"} else zlib.MAX_WBITS
        self._inflate = None if coding == "identity" else zlib.decompressobj(wbits=self._wbits)

    def feed(self, chunk: bytes) -> bytes:
        room = self.limit - self.produced
        if self.exceeded or not chunk:
            return b""
        out = chunk if self._inflate is None else self._inflate_chunk(chunk, room)
        if len(out) > room:
            out = out[:room]
            self.exceeded = True
        elif self._inflate is not None and self._inflate.unconsumed_tail:
            self.exceeded = True  # more output is waiting past the limit
        self.produced += len(out)
        return out

    def _inflate_chunk(self, chunk: bytes, room: int) -> bytes:
        assert self._inflate is not None
        first, self._first = self._first, False
        try:
            out = self._inflate.decompress(chunk, room + 1)
            # A gzip body may be several members one after another (RFC 1952 2.2): each is
            # decoded in turn, as gzip.decompress and browsers do.
            while self._inflate.eof and self._inflate.unused_data and len(out) <= room:
                rest = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=self._wbits)
                out += self._inflate.decompress(rest, room + 1 - len(out))
        except zlib.error as exc:
            if first and self.coding == "deflate":
                # Raw deflate without the zlib header, as some servers send.
                self._inflate = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
                return self._inflate_chunk(chunk, room)
            raise UndecodableBody(
                f"body labelled Content-Encoding: {self.coding} does not decode: {exc}"
            ) from exc
        return out

    def finish(self) -> None:
        """Raise :class:`UndecodableBody` if the coded body ended early (a truncated gzip)."""
        if self._inflate is not None and not self.exceeded and not self._inflate.eof:
            raise UndecodableBody(
                f"body labelled Content-Encoding: {self.coding} ends before its compressed "
                "stream does"
            )


# What a whole body may decode to when nothing smaller is configured (cassettes on load).
DECODE_LIMIT: Final = 256 * 1024 * 1024


def decode_body(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], body: bytes, limit: int = DECODE_LIMIT
) -> bytes:
    """The body with its ``Content-Encoding`` (gzip, deflate or identity) undone.

    Raises :class:`UndecodableBody` for a coding the proxy cannot undo, a body that does not
    decode, or one that decodes to more than ``limit`` bytes; callers decide whether that is an
    error (validation) or not (pass-through).
    """
    coding = content_coding(headers)
    if coding == "identity" or not body:
        return body
    decoder = BodyDecoder(coding, limit)
    decoded = decoder.feed(body)
    if decoder.exceeded:
        raise UndecodableBody(
            f"body labelled Content-Encoding: {coding} decodes to more than {limit} bytes"
        )
    decoder.finish()
    return decoded


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """A request as the client sent it (end-to-end headers only)."""

    method: str
    raw_path: str  # path and query exactly as received, percent-encoding kept
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def path(self) -> str:
        return self.raw_path.partition("?")[0]


@dataclass(frozen=True, slots=True)
class ProxyResponse:
    """A response as it goes to the client (end-to-end headers only; body as on the wire)."""

    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    body: bytes
    # Work that depends only on this response (decoding, validation, its log record), done
    # once: a replayed response is the same object every time it is played.
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def decoded_body(self) -> bytes:
        """The body with its content coding undone (cached); raises :class:`UndecodableBody`."""
        decoded = self.memo.get("decoded")
        if decoded is None:
            decoded = self.memo["decoded"] = decode_body(self.headers, self.body)
        return decoded


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """A response's status line and end-to-end headers, as they go to the client.

    ``content_length`` is the upstream's own (kept, so a client sees the same framing), or None
    for a body sent chunked.
    """

    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    content_length: int | None = None


@dataclass(frozen=True, slots=True)
class Timing:
    """When a response arrived: its headers after the request was sent, then each frame (an
    event of a stream, a chunk of any other body) as ``(end offset in the stored body, ms after
    the headers)``. Kept beside a recording (vcrpy ignores it) and reproduced on replay with
    ``--replay-timing recorded``."""

    headers_ms: float
    frames: tuple[tuple[int, float], ...] = ()


class BodyStream(Protocol):
    """A response body as it arrives: chunks, then the end. ``aclose`` releases what is behind
    it (the upstream connection) whether or not every chunk was read."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def arrived(self) -> bool:
        """Whether the whole body is already here: reading it would not wait."""
        ...

    async def aclose(self) -> None: ...
