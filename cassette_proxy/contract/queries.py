"""Query parameters, for the routes that take them: what the ``openai`` client can send.

A query arrives as text; :func:`query_values` reads it into JSON-like values by the model's field
types (``limit=20`` an integer, ``stream=true`` a boolean, ``include[]=a&include[]=b`` a list), so
the same checks as for a body apply, with pointers like ``/query/limit``. A value that does not
read as its type is kept as the string it was, and reported as the wrong type.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Final, Union, get_args, get_origin
from urllib.parse import parse_qsl

from pydantic import Field

from cassette_proxy.contract.base import ContractModel, KnownValues, rebuild_models

Includable = Annotated[
    str,
    KnownValues(
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "code_interpreter_call.outputs",
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
    ),
]
"""``include[]`` values (the spec's and the client's ``ResponseIncludable``)."""


class RetrieveQuery(ContractModel):
    """``GET /v1/responses/{response_id}``: ``include[]``, ``stream``, ``starting_after``,
    ``include_obfuscation`` (reference ``streaming.md`` section 2)."""

    include: list[Includable] | None = None
    stream: bool | None = None
    starting_after: Annotated[int, Field(ge=0)] | None = None
    include_obfuscation: bool | None = None


class InputItemsQuery(ContractModel):
    """``GET /v1/responses/{response_id}/input_items``: ``limit`` (1-100, default 20), ``order``
    (``asc`` or ``desc``), ``after`` (an item id) and ``include[]``."""

    limit: Annotated[int, Field(ge=1, le=100)] | None = None
    order: Annotated[str, KnownValues("asc", "desc")] | None = None
    after: str | None = None
    include: list[Includable] | None = None


class NoQuery(ContractModel):
    """A route that documents no query parameter: any is drift."""


_BOOLEANS: Final = {"true": True, "false": False}


def query_values(query: str, model: type[ContractModel]) -> dict[str, Any]:
    """``query`` read by the field types of ``model``; a list collects repeated (``[]``) keys."""
    values: dict[str, Any] = {}
    for raw_key, raw_value in parse_qsl(query, keep_blank_values=True):
        key = raw_key.removesuffix("[]")
        field = model.model_fields.get(key)
        kinds = _kinds(field.annotation) if field is not None else set()
        if list in kinds or raw_key.endswith("[]"):
            found = values.setdefault(key, [])
            if isinstance(found, list):
                found.append(raw_value)
        elif bool in kinds:
            values[key] = _BOOLEANS.get(raw_value.lower(), raw_value)
        elif int in kinds and raw_value.lstrip("-").isdigit():
            values[key] = int(raw_value)
        else:
            values[key] = raw_value
    return values


def _kinds(annotation: Any) -> set[Any]:
    """The plain types a field's annotation is made of (``list``, ``bool``, ``int``, ``str``)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return set().union(*(_kinds(arg) for arg in get_args(annotation)))
    return {origin or annotation}


rebuild_models(globals())
