"""A stand-in for Yandex AI Studio's Responses API as a team meets it, on loopback.

What the service does that makes a cassette personal, played for real:

- it accepts one key only (``Authorization: Api-Key <key>`` or ``Bearer <key>``) and answers
  any other with a 401 in the OpenAI envelope;
- the folder is in the request's model URI (``gpt://<folder>/yandexgpt/latest``) and, from the
  ``openai`` client's ``project=``, in the ``OpenAI-Project`` header; the two must agree (403);
- every answer names the folder: the Response's ``model`` is the request's URI, streamed
  events included, and the ``x-folder-id`` response header repeats it;
- response ids are random, and ``previous_response_id`` must name one this server issued
  (404 otherwise), as a multi-turn conversation needs;
- the answer is in Russian (UTF-8 text) and quotes the prompt, so a different prompt is a
  different answer.

``POST /v1/responses`` (with ``"stream": true``: Server-Sent Events), ``GET
/v1/responses/{id}`` and ``POST /v1/responses/{id}/cancel``. Every request is kept in
``received``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

from tests import vectors
from tests.fake_upstream import Received

SCHEMES: Final = ("gpt", "emb", "cls", "art")
_MODEL_URI: Final = re.compile(r"^(?:gpt|emb|cls|art)://([^/]+)/")


def json_response(
    body: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    ascii_only: bool = False,
) -> web.Response:
    """JSON as the service sends it: UTF-8 text, not ``\\u`` escapes (``ascii_only``: as
    Python's json writes it by default, every non-ASCII character escaped)."""
    data = json.dumps(body).encode() if ascii_only else orjson.dumps(body)
    return web.Response(body=data, status=status, headers=headers, content_type="application/json")


def error(
    status: int, message: str, code: str, kind: str = "invalid_request_error"
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_response(body, status=status)


def answer_text(prompt: str) -> str:
    return f"Ответ: {prompt}"


def prompt_of(params: dict[str, Any]) -> str:
    given = params.get("input")
    if isinstance(given, str):
        return given
    texts = []
    for item in given if isinstance(given, list) else ():
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict):
                texts.append(str(part.get("text", "")))
    return " ".join(texts)


def frame(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass
class YandexUpstream:
    key: str
    received: list[Received] = field(default_factory=list)
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    ascii_only: bool = False  # answer JSON with \u escapes, as many writers do

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/responses", self.create)
        app.router.add_get("/v1/responses/{id}", self.retrieve)
        app.router.add_post("/v1/responses/{id}/cancel", self.cancel)
        return app

    @property
    def creates(self) -> int:
        return sum(1 for r in self.received if r.method == "POST" and r.raw_path == "/v1/responses")

    async def _keep(self, request: web.Request) -> bytes:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append(Received(request.method, request.raw_path, headers, body))
        return body

    def _refused(self, request: web.Request) -> web.Response | None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme not in {"Api-Key", "Bearer"} or given != self.key:
            return error(401, "The API key is not valid", "invalid_api_key", "authentication_error")
        return None

    def _headers(self, folder: str) -> dict[str, str]:
        return {"x-folder-id": folder, "x-request-id": os.urandom(8).hex()}

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await self._keep(request)
        refused = self._refused(request)
        if refused is not None:
            return refused
        params = orjson.loads(body)
        model = str(params.get("model", ""))
        found = _MODEL_URI.match(model)
        if found is None:
            return error(400, f"model {model!r} is not a model URI", "invalid_value")
        folder = found[1]
        project = request.headers.get("OpenAI-Project")
        if project is not None and project != folder:
            return error(403, f"the project {project} is not the model's folder", "forbidden")
        previous = params.get("previous_response_id")
        if previous is not None and previous not in self.issued:
            return error(404, f"Response with id '{previous}' not found.", "not_found")
        response_id = "resp_" + os.urandom(20).hex()
        answer = vectors.completed_response(response_id, answer_text(prompt_of(params)))
        answer |= {
            "model": model,
            "previous_response_id": previous,
            "metadata": params.get("metadata") or {},
            "instructions": params.get("instructions"),
        }
        if "user" in params:
            answer["user"] = params["user"]
        if "safety_identifier" in params:
            answer["safety_identifier"] = params["safety_identifier"]
        self.issued[response_id] = answer
        if not params.get("stream"):
            return json_response(answer, headers=self._headers(folder), ascii_only=self.ascii_only)
        return await self._stream(request, answer, folder)

    async def _stream(
        self, request: web.Request, answer: dict[str, Any], folder: str
    ) -> web.StreamResponse:
        text = answer["output"][0]["content"][0]["text"]
        started = answer | {"status": "in_progress", "output": [], "usage": None}
        item = {"item_id": answer["output"][0]["id"], "output_index": 0, "content_index": 0}
        shapes: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"response": started}),
            ("response.in_progress", {"response": started}),
            *(
                ("response.output_text.delta", {**item, "delta": word, "logprobs": []})
                for word in re.findall(r"\S+\s*", text)
            ),
            ("response.output_text.done", {**item, "text": text, "logprobs": []}),
            ("response.completed", {"response": answer}),
        ]
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", **self._headers(folder)}
        )
        await response.prepare(request)
        for number, (kind, data) in enumerate(shapes):
            await response.write(frame(kind, {"type": kind, "sequence_number": number, **data}))
        await response.write_eof()
        return response

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        await self._keep(request)
        return self._by_id(request, lambda answer: answer)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        await self._keep(request)
        return self._by_id(request, lambda answer: answer | {"status": "cancelled"})

    def _by_id(self, request: web.Request, shape: Any) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        response_id = request.match_info["id"]
        answer = self.issued.get(response_id)
        if answer is None:
            return error(404, f"Response with id '{response_id}' not found.", "not_found")
        folder = _MODEL_URI.match(answer["model"])
        assert folder is not None
        return json_response(shape(answer), headers=self._headers(folder[1]))
