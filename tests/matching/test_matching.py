"""Match keys agree with vcrpy's own matchers, which stay the reference."""

from __future__ import annotations

import pytest
from vcr import matchers as vcr_matchers
from vcr.request import Request as VcrRequest

from cassette_proxy.matching.matchers import PROJECTIONS, Lookup, Matcher

JSON = {"Content-Type": "application/json"}
U = "https://ai.api.cloud.yandex.net/v1/responses/resp_1/cancel"

PAIRS = [
    (VcrRequest("POST", U, b"", JSON), VcrRequest("POST", U, b"", {})),
    (VcrRequest("POST", U, b"", {}), VcrRequest("GET", U, b"", {})),
    (VcrRequest("POST", U + "?a=1&b=2", b"", {}), VcrRequest("POST", U + "?b=2&a=1", b"", {})),
    (VcrRequest("POST", U + "?a=1", b"", {}), VcrRequest("POST", U + "?a=2", b"", {})),
    (VcrRequest("POST", U, b'{"a":1,"b":2}', JSON), VcrRequest("POST", U, b'{"b":2,"a":1}', JSON)),
    (VcrRequest("POST", U, b'{"a":1}', JSON), VcrRequest("POST", U, b'{"a":2}', JSON)),
    (VcrRequest("POST", U, b"plain", {}), VcrRequest("POST", U, b"plain", {})),
    (
        VcrRequest("POST", U.replace("resp_1", "resp_a%2Fb"), b"", {}),
        VcrRequest("POST", U.replace("resp_1", "resp_a/b"), b"", {}),
    ),
    (VcrRequest("POST", U, b"", {}), VcrRequest("POST", U.replace("https", "http"), b"", {})),
    (
        VcrRequest("POST", U, b"", {}),
        VcrRequest("POST", U.replace(".net/", ".net:443/"), b"", {}),
    ),
    (VcrRequest("POST", "https://h", b"", {}), VcrRequest("POST", "https://h/", b"", {})),
]


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
@pytest.mark.parametrize(("one", "other"), PAIRS)
def test_keys_agree_with_vcrpys_matcher(name: str, one: VcrRequest, other: VcrRequest) -> None:
    matcher = Matcher([name])
    vcrpy_says = vcr_matchers.requests_match(one, other, [getattr(vcr_matchers, name)])
    assert (matcher.key(one) == matcher.key(other)) is vcrpy_says


def test_differences_use_vcrpys_messages() -> None:
    matcher = Matcher(["method", "path"])
    one = VcrRequest("GET", U, b"", {})
    other = VcrRequest("POST", U.replace("resp_1", "resp_2"), b"", {})
    assert matcher.differences(one, other) == [
        ("method", "GET != POST"),
        ("path", "/v1/responses/resp_1/cancel != /v1/responses/resp_2/cancel"),
    ]


@pytest.mark.parametrize(
    "uri",
    [
        "https://ai.api.cloud.yandex.net/v1/responses/resp_1/cancel",
        "http://127.0.0.1:8080/v1/x?b=2&a=1&a=0",
        "https://h",
        "https://h:443/p;params?q=%2F#frag",
        "http://[::1]:9/v1/responses?include=a&include=b",
    ],
)
def test_projections_parse_once_and_agree_with_vcrpys_properties(uri: str) -> None:
    """The key parses the URI once; each part is what vcrpy's own property gives."""
    request = VcrRequest("POST", uri, b'{"b": 1, "a": 2}', {})
    key = Matcher(["scheme", "host", "port", "path", "query"]).key(request)
    assert key == (
        request.scheme,
        request.host,
        request.port,
        request.path or "/",
        tuple(request.query),
    )


@pytest.mark.parametrize(("one", "other"), PAIRS)
def test_a_lookup_has_the_key_of_the_request_it_stands_for(
    one: VcrRequest, other: VcrRequest
) -> None:
    """A replay hit is found with a Lookup (no vcrpy Request built): same key, every matcher."""
    matcher = Matcher(sorted(PROJECTIONS))
    for request in (one, other):
        body = request.body if isinstance(request.body, bytes) else (request.body or b"")
        assert matcher.key(Lookup(request.method, request.uri, body)) == matcher.key(request)
