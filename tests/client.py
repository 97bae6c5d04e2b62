"""A raw HTTP client for the tests: one request through a running proxy, fully read.

aiohttp rather than the ``openai`` client where a test needs the exact status, headers and bytes
(the ``openai`` client is used where what a real app sees matters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DUMMY_KEY, RunningProxy

TIMEOUT = aiohttp.ClientTimeout(total=10)
# What the openai client sends with a cancel (section 1 of the reference), less its telemetry.
OPENAI_HEADERS = {
    "Authorization": f"Bearer {DUMMY_KEY}",
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def error(self) -> dict[str, Any]:
        """The OpenAI error envelope's ``error``, checked to have exactly its four keys."""
        envelope = self.json()
        assert set(envelope) == {"error"}
        error: dict[str, Any] = envelope["error"]
        assert set(error) == {"message", "type", "param", "code"}
        return error


async def post(
    proxy: RunningProxy,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    raw: bool = False,
) -> Answer:
    """One POST through the proxy; ``headers`` default to the openai client's, ``raw`` keeps
    the body as sent (no decompression)."""
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=not raw) as session,
        session.post(
            proxy.url + path, headers=OPENAI_HEADERS if headers is None else headers, data=data
        ) as response,
    ):
        return Answer(response.status, response.headers, await response.read())


async def cancel(proxy: RunningProxy, response_id: str, *, raw: bool = False) -> Answer:
    """``POST /v1/responses/{response_id}/cancel``, as the openai client sends it."""
    return await post(proxy, f"/v1/responses/{response_id}/cancel", raw=raw)


async def scrape(proxy: RunningProxy) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.url + "/_proxy/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert DUMMY_KEY not in text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
