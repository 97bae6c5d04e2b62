"""A self-contained example of testing code that calls the Responses API through cassette-proxy.

Copy this folder into your project. ``local_upstream`` stands in for the real service so the
example runs anywhere; in your project, drop it and record against the real API instead:

    CASSETTE_PROXY_UPSTREAM_API_KEY=<key> pytest --cassette-record-mode=once
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from cassette_proxy.serving.process.serve import ServerThread

CANCELLED = {
    "id": "resp_example_1",
    "object": "response",
    "created_at": 1755574978,
    "status": "cancelled",
    "background": True,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "model": "gpt://b1gexamplefolder000/yandexgpt/latest",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}


async def cancel(request: web.Request) -> web.Response:
    """POST /v1/responses/{id}/cancel: the cancelled response, or the API's 404."""
    response_id = request.match_info["response_id"]
    if response_id != CANCELLED["id"]:
        return web.json_response(
            {"error": {"message": f"Response with id '{response_id}' not found.",
                       "type": "invalid_request_error", "param": None, "code": None}},
            status=404,
        )  # fmt: skip
    return web.json_response(CANCELLED)


@pytest.fixture(scope="session")
def local_upstream() -> Iterator[str]:
    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/responses/{response_id}/cancel", cancel)
        return app

    server = ServerThread(make_app)
    yield server.start()
    server.stop()


@pytest.fixture
def cassette_proxy_config(local_upstream: str) -> dict[str, Any]:
    # Record from the local stand-in; with the real API, leave both keys out. The stand-in
    # listens on a new port every run, so requests are matched without host and port.
    return {"upstream": local_upstream, "match_on": "method,scheme,path,query,body"}
