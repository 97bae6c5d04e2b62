"""A client for the control API, as a test in any language would use it: plain HTTP and JSON."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tests.client import TIMEOUT, Answer


async def call(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    cassette: str | None = None,
    authorization: str | None = None,
) -> Answer:
    """One request to ``url`` + ``path`` (``/_proxy/...``), with a JSON body if given (bytes
    are sent as they are)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:  # as it is, for tests of what is refused
        headers["Authorization"] = authorization
    if cassette is not None:
        headers["X-Cassette-Proxy-Cassette"] = cassette
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.request(method, url + path, headers=headers, data=data) as response,
    ):
        return Answer(response.status, response.headers, await response.read())
