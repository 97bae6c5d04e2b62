"""The OpenAI error envelope, which every response the proxy makes up is written in.

``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}``: the shape the ``openai``
client unwraps (``body.get("error", body)``), so ``e.type``/``e.code`` work on the client side.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class ErrorBody:
    message: str
    type: str
    param: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorEnvelope:
    error: ErrorBody

    def to_json(self) -> bytes:
        return orjson.dumps(self)
