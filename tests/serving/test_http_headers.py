"""Header handling on the request path: what is passed on end to end, and what is logged."""

from __future__ import annotations

import hypothesis
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from cassette_proxy.models.http import HOP_BY_HOP, end_to_end
from cassette_proxy.serving.observers.log import headers_record

NAMES = st.sampled_from(
    [
        "Host", "Authorization", "Content-Type", "Accept", "X-Stainless-Lang", "x-foo", "X-Bar",
        "Connection", "connection", "Keep-Alive", "TE", "Transfer-Encoding", "Upgrade",
        "Content-Length", "Proxy-Authorization", "Trailer", "Set-Cookie",
    ]
)  # fmt: skip
VALUES = st.sampled_from(["close", "keep-alive, X-Foo", " x-bar ,", "1", "Bearer sk-abc", ""])


def reference(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    """RFC 9110 7.6.1, spelled out: drop hop-by-hop fields and those Connection names."""
    named = {
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
        if token.strip()
    }
    return [
        (name, value)
        for name, value in headers.items()
        if name.lower() not in HOP_BY_HOP and name.lower() not in named
    ]


@hypothesis.given(st.lists(st.tuples(NAMES, VALUES), max_size=12))
def test_end_to_end_drops_hop_by_hop_and_connection_named_fields_keeping_order(
    pairs: list[tuple[str, str]],
) -> None:
    headers = CIMultiDictProxy(CIMultiDict(pairs))
    assert list(end_to_end(headers).items()) == reference(headers)


def test_a_logged_header_set_is_the_callers_own() -> None:
    headers = CIMultiDictProxy(CIMultiDict([("Authorization", "Bearer sk-abc"), ("X-A", "1")]))
    first = headers_record(headers)
    assert first["authorization"].startswith("Bearer sha256:")
    first["x-a"] = "changed"
    assert headers_record(headers)["x-a"] == "1"  # remembered, but not shared
