"""Error bodies, on every route: the seed's flat object, or the OpenAI wire envelope around it.

The ``openai`` client reads either (``body.get("error", body)``); OpenAI sends the envelope, the
spec and Yandex's page show the flat object (reference section 3).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Tag

from cassette_proxy.contract.base import UNION_TAGS, ContractModel, rebuild_models


class Error(ContractModel):
    """The flat 404 body: ``{code, message, param, type}``."""

    code: str | None = None
    message: str
    param: str | None = None
    type: str


class ErrorEnvelope(ContractModel):
    """``{"error": Error}``: what OpenAI sends and the SDK unwraps (``body.get("error", body)``)."""

    error: Error


UNION_TAGS.update(("ErrorEnvelope", "Error"))


def _error_body_tag(value: Any) -> str:
    return "ErrorEnvelope" if isinstance(value, dict) and "error" in value else "Error"


ErrorBody = Annotated[
    Annotated[ErrorEnvelope, Tag("ErrorEnvelope")] | Annotated[Error, Tag("Error")],
    Discriminator(_error_body_tag),
]
"""The 404 body, in either shape. A body with an ``error`` key is read as the envelope."""


rebuild_models(globals())
