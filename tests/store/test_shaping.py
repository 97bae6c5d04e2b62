"""A request and its answer as the cassette stores them (store/shaping.py): the folders only the
answer names are hidden in the request as well, wherever the request holds them."""

from __future__ import annotations

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from cassette_proxy.models.http import ProxyResponse
from cassette_proxy.settings import Settings
from cassette_proxy.store.placeholders import folder_placeholder
from cassette_proxy.store.shaping import ShapedRequest, Shaper

FOLDER = "b1gAAAA"
PATH = "/v1/responses/resp_1/cancel"


def _shaped(shaper: Shaper, body: bytes, headers: dict[str, str]) -> ShapedRequest:
    substitution = shaper.substitution(body, PATH, "")
    recorded = shaper.request("POST", PATH, body, headers.items(), substitution)
    assert recorded is not None
    return recorded


def _answer() -> ProxyResponse:
    body = orjson.dumps({"id": "resp_1", "model": f"gpt://{FOLDER}/yandexgpt/latest"})
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
    return ProxyResponse(200, "OK", headers, body)


def test_a_folder_only_the_answer_names_is_hidden_where_the_request_holds_it() -> None:
    shaper = Shaper(Settings(upstream="http://127.0.0.1:9"))
    body = orjson.dumps({"note": f"for {FOLDER} only"})  # not a model URI: not learned here
    request = _shaped(shaper, body, {"X-Team-Folder": FOLDER})
    assert FOLDER in request.body.decode()
    assert not request.substitution

    recording = shaper.recording(request, _answer(), None)

    assert recording is not None
    placeholder = folder_placeholder(1)
    recorded = recording.request
    assert isinstance(recorded, ShapedRequest)
    assert recorded.body == orjson.dumps({"note": f"for {placeholder} only"})
    assert recorded.headers["X-Team-Folder"] == placeholder
    assert recorded.substitution.folders == (FOLDER,)
    assert FOLDER not in recording.body.decode()
    assert request.body == body  # the request the proxy forwarded is left as it was


def test_a_folder_the_request_does_not_hold_leaves_it_as_it_was() -> None:
    shaper = Shaper(Settings(upstream="http://127.0.0.1:9"))
    request = _shaped(shaper, b"", {"Authorization": "Bearer x", "Accept": "application/json"})

    recording = shaper.recording(request, _answer(), None)

    assert recording is not None
    recorded = recording.request
    assert isinstance(recorded, ShapedRequest)
    assert recorded is not request  # the exchange's own request keeps its substitution
    assert (recorded.method, recorded.uri, recorded.body) == (
        request.method,
        request.uri,
        request.body,
    )
    assert dict(recorded.headers) == dict(request.headers)
    assert recorded.substitution.folders == (FOLDER,)
    assert not request.substitution
    assert folder_placeholder(1).encode() in recording.body
