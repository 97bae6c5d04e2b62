"""A real aiohttp server on loopback that plays every Responses API route.

Unlike :mod:`tests.fake_upstream` (cancel, and an echo for everything else), it answers each route
with a documented body, so the proxy's contract for every route can be tried with the real
``openai`` client. The id in the path picks a variation, so one test can ask for drift or an
error:

- ``resp_ok_*``: the documented body (a completed Response, a deletion object, a list);
- ``resp_field_*``: plus a field no source knows (``brand_new_field``);
- ``resp_enum_*``: ``status`` (or the list's ``object``) set to a value no source knows;
- ``resp_item_*``: an output (or listed) item of a type no source knows;
- ``resp_nomodel_*``: the Response without ``model`` (the deletion without ``deleted``, the
  list without ``has_more``);
- ``resp_wrongtype_*``: ``created_at`` as a string (``deleted`` as a string, ``has_more`` as a
  number);
- ``resp_flat404_*``: 404 with the flat error; anything else: 404 with the enveloped one.

Create answers like ``resp_ok_*`` unless the request's ``metadata.case`` names another variation
(``field``, ``enum``, ``item``, ``nomodel``, ``wrongtype``, or a 400 as ``flat400`` or
``enveloped400``). Deletion answers ``object:
"response.deleted"`` for ids ending in ``_new`` and no ``object`` at all for ids ending in
``_bare``, as servers differ. Every request is kept in ``received``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

from tests import vectors
from tests.fake_upstream import Received

CREATED_ID: Final = "resp_ok_created0000000000000000000000000000000001"
VARIATIONS: Final = ("field", "enum", "item", "nomodel", "wrongtype")


def response_body(response_id: str, case: str) -> dict[str, Any]:
    """A completed Response for ``response_id``, varied by ``case``."""
    body = vectors.completed_response(response_id, "Готово.")
    if case == "field":
        body["brand_new_field"] = {"since": "2027"}
    elif case == "enum":
        body["status"] = "paused"
    elif case == "item":
        body["output"].append({"type": "hologram_call", "id": "hg_1", "status": "completed"})
    elif case == "nomodel":
        del body["model"]
    elif case == "wrongtype":
        body["created_at"] = "yesterday"
    return body


def deletion_body(response_id: str, case: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": response_id, "object": "response", "deleted": True}
    if response_id.endswith("_new"):
        body["object"] = "response.deleted"
    elif response_id.endswith("_bare"):
        del body["object"]
    if case == "field":
        body["brand_new_field"] = 1
    elif case == "enum":
        body["object"] = "response.purged"
    elif case == "nomodel":
        del body["deleted"]
    elif case == "wrongtype":
        body["deleted"] = "yes"
    return body


def input_items_body(response_id: str, case: str) -> dict[str, Any]:
    suffix = response_id.removeprefix("resp_")
    user = {
        "id": f"msg_in_{suffix}",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Что такое AI Studio?"}],
        "status": "completed",
    }
    answer = copy.deepcopy(vectors.completed_response(response_id, "Платформа.")["output"][0])
    data: list[dict[str, Any]] = [answer, user]
    body: dict[str, Any] = {
        "object": "list",
        "data": data,
        "first_id": answer["id"],
        "last_id": user["id"],
        "has_more": False,
    }
    if case == "field":
        body["brand_new_field"] = 1
    elif case == "enum":
        body["object"] = "page"
    elif case == "item":
        data.append({"type": "hologram_call", "id": "hg_1"})
    elif case == "nomodel":
        del body["has_more"]
    elif case == "wrongtype":
        body["has_more"] = 0
    return body


def _case_of(response_id: str) -> str:
    kind = response_id.removeprefix("resp_").partition("_")[0]
    return kind if kind in VARIATIONS else "ok"


def _json(status: int, body: object) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"x-request-id": "req_responses_upstream"},
    )


@dataclass
class ResponsesUpstream:
    received: list[Received] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/responses", self.create)
        app.router.add_get("/v1/responses/{id}", self.retrieve)
        app.router.add_delete("/v1/responses/{id}", self.delete)
        app.router.add_post("/v1/responses/{id}/cancel", self.cancel)
        app.router.add_get("/v1/responses/{id}/input_items", self.input_items)
        return app

    async def _keep(self, request: web.Request) -> bytes:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append(Received(request.method, request.raw_path, headers, body))
        return body

    async def create(self, request: web.Request) -> web.Response:
        params = orjson.loads(await self._keep(request) or b"{}")
        metadata = params.get("metadata") or {}
        case = metadata.get("case", "ok") if isinstance(metadata, dict) else "ok"
        if case in ("flat400", "enveloped400"):
            error = {
                "message": "Invalid 'model': the model URI names no folder.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "invalid_value",
            }
            return _json(400, error if case == "flat400" else {"error": error})
        return _json(200, response_body(CREATED_ID, case))

    async def retrieve(self, request: web.Request) -> web.Response:
        await self._keep(request)
        return self._by_id(request, response_body)

    async def delete(self, request: web.Request) -> web.Response:
        await self._keep(request)
        return self._by_id(request, deletion_body)

    async def input_items(self, request: web.Request) -> web.Response:
        await self._keep(request)
        return self._by_id(request, input_items_body)

    async def cancel(self, request: web.Request) -> web.Response:
        await self._keep(request)
        return self._by_id(request, lambda rid, case: vectors.V4 | {"id": rid})

    def _by_id(
        self, request: web.Request, make: Callable[[str, str], dict[str, Any]]
    ) -> web.Response:
        response_id = request.match_info["id"]
        if response_id.startswith("resp_flat404"):
            return _json(404, vectors.V5B)
        if not response_id.startswith(tuple(f"resp_{case}_" for case in ("ok", *VARIATIONS))):
            return _json(404, orjson.loads(vectors.not_found(response_id)))
        return _json(200, make(response_id, _case_of(response_id)))
