"""The proxy's own view of one HTTP request and one HTTP response.

Both are immutable snapshots: what the client sent, and what is (or was) answered, with the body as
it travels on the wire (possibly compressed). Framing and hop-by-hop headers are not part of them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Final

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


def end_to_end(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDictProxy[str]:
    """The headers with hop-by-hop ones removed, including those named in ``Connection``."""
    named = {
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
        if token.strip()
    }
    kept: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered not in HOP_BY_HOP and lowered not in named:
            kept.add(name, value)
    return CIMultiDictProxy(kept)


DECODABLE: Final = frozenset({"gzip", "x-gzip", "deflate"})


class UndecodableBody(ValueError):
    """The body does not decode with the ``Content-Encoding`` it is labelled with."""


def decode_body(headers: CIMultiDictProxy[str], body: bytes) -> bytes:
    """The body with its ``Content-Encoding`` (gzip, deflate or identity) undone.

    Raises :class:`UndecodableBody` for a coding the proxy cannot undo or a body that does not
    decode; callers decide whether that is an error (validation) or not (pass-through).
    """
    coding = headers.get("Content-Encoding", "identity").strip().lower()
    if coding in {"", "identity"} or not body:
        return body
    try:
        if coding in {"gzip", "x-gzip"}:
            return zlib.decompress(body, wbits=zlib.MAX_WBITS | 16)
        if coding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:  # raw deflate without the zlib header, as some servers send
                return zlib.decompress(body, wbits=-zlib.MAX_WBITS)
    except zlib.error as exc:
        raise UndecodableBody(
            f"body labelled Content-Encoding: {coding} does not decode: {exc}"
        ) from exc
    raise UndecodableBody(f"Content-Encoding {coding!r} is not one the proxy can decode")


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
