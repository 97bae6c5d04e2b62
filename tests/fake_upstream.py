"""A real aiohttp server that plays Yandex AI Studio's Responses API on loopback.

Cancel answers by id, so each test picks the behaviour it needs:

- an id in ``BODIES`` gets that 200 body (the reference's vectors V1-V4);
- ``resp_gzip_*`` gets V1 gzip-encoded; ``resp_chunked_*`` the same in chunked framing;
  ``resp_flat404_*`` the flat 404; ``resp_drift_*`` V1
  with an extra field and a new status value; ``resp_broken_*`` V1 with ``id`` an integer;
  ``resp_conflict_*`` a 409; ``resp_slow_*`` waits ``slow_seconds`` first;
- anything else gets the enveloped 404 (V5a's shape, naming the id).

Every request it receives is kept in ``received`` with its raw path, headers and body.
"""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from tests import vectors

BODIES: dict[str, bytes] = {
    vectors.V1_ID: vectors.V1_BODY,
    vectors.V2_ID: vectors.V2_BODY,
    vectors.V3_ID: vectors.V3_BODY,
    vectors.V4_ID: vectors.V4_BODY,
}


@dataclass(frozen=True)
class Received:
    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeUpstream:
    received: list[Received] = field(default_factory=list)
    slow_seconds: float = 5.0
    cancels: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            Received(
                request.method,
                request.raw_path,
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        parts = request.raw_path.partition("?")[0].split("/")
        if request.method == "POST" and len(parts) == 5 and parts[1:3] == ["v1", "responses"]:
            self.cancels += 1
            return await self.cancel(request, parts[3])
        # Any other API path: echo what arrived, so pass-through can be checked.
        return web.json_response(
            {"object": "echo", "method": request.method, "path": request.raw_path},
            headers={"x-request-id": "req_echo"},
        )

    async def cancel(self, request: web.Request, raw_id: str) -> web.StreamResponse:
        headers = {
            "x-request-id": f"req_{self.cancels:032x}",
            "x-server-trace-id": "trace-fake",
            "Set-Cookie": "session=s3cr3t-cookie-value; Path=/; HttpOnly",
        }
        if raw_id in BODIES:
            return _json(200, BODIES[raw_id], headers)
        if raw_id.startswith("resp_slow"):
            await asyncio.sleep(self.slow_seconds)
        if raw_id.startswith("resp_chunked"):
            return await self.chunked_gzip(request, headers)
        for prefix, (status, body) in SPECIAL.items():
            if raw_id.startswith(prefix):
                if prefix == "resp_gzip":
                    headers["Content-Encoding"] = "gzip"
                return _json(status, body, headers)
        if raw_id.startswith("resp_conflict"):
            return _json(409, vectors.conflict(raw_id), headers)
        return _json(404, vectors.not_found(raw_id), headers)

    async def chunked_gzip(
        self, request: web.Request, headers: dict[str, str]
    ) -> web.StreamResponse:
        """V1, gzip-encoded, sent in small chunks with Transfer-Encoding: chunked."""
        response = web.StreamResponse(headers={**headers, "Content-Encoding": "gzip"})
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        await response.prepare(request)
        compressed = gzip.compress(vectors.V1_BODY)
        for start in range(0, len(compressed), 100):
            await response.write(compressed[start : start + 100])
        await response.write_eof()
        return response


SPECIAL: dict[str, tuple[int, bytes]] = {
    "resp_gzip": (200, gzip.compress(vectors.V1_BODY)),
    "resp_flat404": (404, vectors.V5B_BODY),
    "resp_drift": (
        200,
        orjson.dumps(orjson.loads(vectors.V1_BODY) | {"status": "paused", "brand_new_field": 1}),
    ),
    "resp_broken": (200, orjson.dumps(orjson.loads(vectors.V1_BODY) | {"id": 12345})),
    "resp_slow": (200, vectors.V1_BODY),
}


def _json(status: int, body: bytes, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=body, headers=headers, content_type="application/json")
