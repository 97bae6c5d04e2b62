"""Turn what pydantic finds in a body into violations, with severities and JSON pointers.

Each check runs in two passes over the body, which orjson parses once:

1. Pydantic validates it against the contract models. Each validation error becomes an
   ``error`` violation (``missing`` or ``type``). Its pointer is computed by walking the input
   along the error's ``loc``, which drops the tagged-union tags that pydantic inserts.
2. If the body validates, a generic walk over the model tree reports drift as warnings: keys in
   ``model_extra`` (``unknown_field``), strings outside their :class:`KnownValues`
   (``unknown_enum``), fallback union members (``unknown_type``), and :class:`Tolerated`
   requirements that were broken (``missing`` or ``null``).

What the walk needs to know about each model's fields is planned once per model. Messages quote
values from the message they describe; the log and the proxy's error answers redact them.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from cassette_proxy.contract.base import (
    UNION_TAGS,
    ContractModel,
    KnownValues,
    Tolerated,
    UnknownVariant,
)
from cassette_proxy.kept import remembered
from cassette_proxy.models.violations import Severity, Violation, ViolationKind
from cassette_proxy.redact import redact_text

Validate = Callable[[Any], BaseModel]
"""A model's (or a union's) ``validate_python``."""


# ---------------------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------------------


def check_media_type(content_type: str | None) -> list[Violation]:
    """A warning unless ``content_type`` is ``application/json`` (or another ``+json`` type)."""
    if content_type is None:
        message = "no Content-Type; the documented media type is application/json"
    else:
        media_type = content_type.partition(";")[0].strip().lower()
        if media_type == "application/json" or (
            media_type.startswith("application/") and media_type.endswith("+json")
        ):
            return []
        message = f"Content-Type {_quote(content_type)} is not application/json"
    return [Violation(pointer="", message=message, severity="warning", kind="body")]


def check_body(body: bytes, validate: Validate, pointer: str = "") -> list[Violation]:
    """Every way a JSON body (already decompressed) breaks a model; ``pointer`` is its place."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = "body is empty" if not body.strip() else f"body is not JSON ({exc})"
        return [
            Violation(
                pointer=pointer,
                message=f"{message}; the contract documents an application/json object",
                severity="error",
                kind="body",
            )
        ]
    return check_value(data, validate, pointer)


def check_value(data: Any, validate: Validate, pointer: str = "") -> list[Violation]:
    """Every way already parsed JSON breaks a model; ``pointer`` is where ``data`` sits."""
    try:
        model = validate(data)
    except ValidationError as exc:
        return [
            _violation_of(error, data, pointer)
            for error in exc.errors(include_url=False, include_input=False)
        ]
    findings: list[Violation] = []
    _drift(model, pointer, findings)
    return findings


def downgraded(findings: Sequence[Violation]) -> list[Violation]:
    """The findings as warnings (on an undocumented status nothing is required of the body)."""
    severity: Severity = "warning"
    return [
        Violation(pointer=v.pointer, message=v.message, severity=severity, kind=v.kind)
        for v in findings
    ]


# ---------------------------------------------------------------------------------------------
# Validation errors: loc -> JSON pointer, and a message that says what was expected and found
# ---------------------------------------------------------------------------------------------

_EXPECTED: Final = {
    "string_type": "string",
    "int_type": "integer",
    "float_type": "number",
    "bool_type": "boolean",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}


class _Absent:
    """The value at a location that is not in the input."""


_ABSENT: Final = _Absent()


def _violation_of(error: ErrorDetails, data: Any, base: str = "") -> Violation:
    pointer, found, key = _locate(data, error["loc"])
    pointer = base + pointer
    if error["type"] == "missing":
        return Violation(
            pointer=pointer,
            message=f"missing required field {_quote(key)}",
            severity="error",
            kind="missing",
        )
    expected = _EXPECTED.get(error["type"])
    problem = f"expected {expected}" if expected else error["msg"]
    return Violation(
        pointer=pointer,
        message=f"{problem}, got {_describe(found)}",
        severity="error",
        kind="type",
    )


def _locate(data: Any, loc: Sequence[int | str]) -> tuple[str, Any, str]:
    """The JSON pointer of a pydantic ``loc``, the value there, and the last key on the way.

    The walk follows the input, so a union tag (not a key of the object at hand) is skipped. A
    key that is not in the input (a missing field) ends the walk.
    """
    node: Any = data
    pointer = ""
    key = ""
    for step in loc:
        if isinstance(step, str) and step in UNION_TAGS and not _has_key(node, step):
            continue
        key = str(step)
        pointer += "/" + escape_pointer_token(key)
        node = _child(node, step)
        if node is _ABSENT:
            break
    return pointer, node, key


def escape_pointer_token(token: str) -> str:
    """Escape one RFC 6901 reference token (``~`` → ``~0``, ``/`` → ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def _has_key(node: Any, key: str) -> bool:
    return isinstance(node, dict) and key in node


def _child(node: Any, step: int | str) -> Any:
    if isinstance(node, dict) and isinstance(step, str):
        return node.get(step, _ABSENT)
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return node[step]
    return _ABSENT


def _describe(value: Any) -> str:
    """A found JSON value, for a message: ``string "12"``, ``integer 5``, ``array``."""
    if value is _ABSENT:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {orjson.dumps(value).decode()}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'number'} {value!r}"
    if isinstance(value, str):
        return f"string {_quote(value)}"
    return "array" if isinstance(value, list) else "object"


def _quote(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, redacted whole before it is cut (a secret cut short is
    no longer one any rule knows, and would be shown)."""
    text = redact_text(text)
    clipped = text if len(text) <= limit else text[:limit] + "…"
    return orjson.dumps(clipped).decode()


# ---------------------------------------------------------------------------------------------
# Drift: a generic walk over the validated model tree, driven by plans computed at import
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)  # one per field: compared (and hashed) as itself
class FieldPlan:
    """What the drift walk (and the client parity test) needs to know about one field."""

    attr: str  # the Python attribute
    key: str  # the JSON key
    token: str  # "/" + the escaped key
    known: tuple[str, ...]  # documented enum values, in order (empty: not an enum)
    allowed: frozenset[str]
    required: bool  # absent is an error
    tolerated: Tolerated | None  # required, but absent or null is a warning with its reason
    documented: str  # what the contract documents, for a "null" message
    nested: bool  # the value may hold models
    annotation: Any


def _union_members(annotation: Any) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """The members of a (possibly Annotated) union, each with the metadata around it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        for member, inner in _union_members(base):
            yield member, (*metadata, *inner)
    elif origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            yield from _union_members(arg)
    else:
        yield annotation, ()


def _contains_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_contains_model(arg) for arg in get_args(annotation))


def _json_type_of(annotation: Any) -> str:
    origin = get_origin(annotation) or annotation
    if origin is Literal or origin is str:
        return "a string"
    names = {bool: "a boolean", int: "an integer", float: "a number", list: "an array"}
    return names.get(origin, "an object")


def _known_values(annotation: Any) -> tuple[str, ...]:
    """The enum values of a string field, or of the strings of a list field."""
    for member, metadata in _union_members(annotation):
        for item in metadata:
            if isinstance(item, KnownValues):
                return item.values
        if get_origin(member) is list:
            found = _known_values(get_args(member)[0])
            if found:
                return found
    return ()


def _plan_field(attr: str, field: Any) -> FieldPlan:
    members = list(_union_members(field.annotation))
    metadata = [item for _, inner in members for item in inner] + list(field.metadata)
    known = _known_values(field.annotation) or next(
        (m.values for m in field.metadata if isinstance(m, KnownValues)), ()
    )
    key = field.alias or attr
    documented = " or ".join(
        dict.fromkeys(_json_type_of(m) for m, _ in members if m is not type(None))
    )
    return FieldPlan(
        attr=attr,
        key=key,
        token="/" + escape_pointer_token(key),
        known=known,
        allowed=frozenset(known),
        required=field.is_required(),
        tolerated=next((m for m in metadata if isinstance(m, Tolerated)), None),
        documented=documented,
        nested=_contains_model(field.annotation),
        annotation=field.annotation,
    )


@functools.cache
def documented_keys() -> frozenset[str]:
    """Every JSON key the contract's models document: what a pointer names without quoting a
    client's own data (a metadata key, an unknown field), for a line that must not show it."""
    return frozenset(plan.key for model in _all_models() for plan in field_plans(model))


def _all_models() -> Iterator[type[ContractModel]]:
    pending: list[type[ContractModel]] = [ContractModel]
    while pending:
        model = pending.pop()
        yield model
        pending.extend(model.__subclasses__())


_PLANS: Final[dict[type[BaseModel], tuple[FieldPlan, ...]]] = {}


def field_plans(model: type[BaseModel]) -> tuple[FieldPlan, ...]:
    """The plan of ``model``, made once (:func:`plan_every_model` makes them all at import)."""
    plan = _PLANS.get(model)
    if plan is None:
        plan = _PLANS[model] = tuple(
            _plan_field(attr, field) for attr, field in model.model_fields.items()
        )
    return plan


_WALKED: Final[dict[type[BaseModel], tuple[FieldPlan, ...]]] = {}


def _walked(model: type[BaseModel]) -> tuple[FieldPlan, ...]:
    """The fields the drift walk looks at: enums, fields that hold models, tolerated ones (the
    others, once validated, cannot drift)."""
    plan = _WALKED.get(model)
    if plan is None:
        plan = _WALKED[model] = tuple(
            f for f in field_plans(model) if f.allowed or f.nested or f.tolerated is not None
        )
    return plan


def plan_every_model() -> None:
    """Plan every contract model declared so far and compile its walker, so that no request
    makes either on its way (:mod:`cassette_proxy.contract` calls it once all its models are
    declared)."""
    for model in _all_models():
        _walker_of(model)


Walker = Callable[[BaseModel, str, list[Violation]], None]
"""Appends to ``out`` every drift of one validated model, whose place is ``pointer``."""

_WALKERS: Final[dict[type[BaseModel], Walker]] = {}


def _drift(model: BaseModel, pointer: str, out: list[Violation]) -> None:
    """Every drift of a validated model and what it holds, appended to ``out``."""
    walk = _WALKERS.get(type(model)) or _walker_of(type(model))
    walk(model, pointer, out)


def _walker_of(model: type[BaseModel]) -> Walker:
    walk = _WALKERS.get(model)
    if walk is None:
        walk = _WALKERS[model] = _compile_walker(model)
    return walk


def _compile_walker(model: type[BaseModel]) -> Walker:
    """The drift walk of one model as a function of its own, its fields unrolled.

    It does what a loop over :func:`_walked`'s plan would do, field by field (a tolerated field
    absent or null, an enum's value outside its known values, a field that holds models walked
    into), then the keys pydantic kept as extras; written out once per model so that a check
    does no per-field bookkeeping (it costs half of what the loop did). The generated source is
    kept as the function's ``__source__``.
    """
    if issubclass(model, UnknownVariant):
        return _unknown_variant
    plan = _walked(model)
    names: dict[str, Any] = {
        "_enums": _enums,
        "_broken": _broken_requirement,
        "_drift_value": _drift_value,
        "_extras": _extras,
        "_WALKERS": _WALKERS,
    }
    lines = ["def walk(model, pointer, out):"]
    if plan:
        lines += ["    present = model.__pydantic_fields_set__", "    values = model.__dict__"]
    for index, field in enumerate(plan):
        plan_name = f"field{index}"
        names[plan_name] = field
        names[f"allowed{index}"] = field.allowed
        attr = repr(field.attr)
        lines += [
            f"    value = values[{attr}] if {attr} in present else None",
            "    if value is not None:",
        ]
        if field.allowed:
            lines.append(
                f"        if value.__class__ is not str or value not in allowed{index}:\n"
                f"            _enums({plan_name}, value, pointer + {plan_name}.token, out)"
            )
        if field.nested:
            lines.append(
                "        if value:  # an empty list holds no model\n"
                "            walk_value = _WALKERS.get(value.__class__, _drift_value)\n"
                f"            walk_value(value, pointer + {plan_name}.token, out)"
            )
        if not (field.allowed or field.nested):
            lines.append("        pass")
        if field.tolerated is not None:
            lines.append(
                f"    else:\n        out.append(_broken({plan_name}, pointer + {plan_name}.token, "
                f"{attr} not in present))"
            )
    lines.append("    if model.__pydantic_extra__:\n        _extras(model, pointer, out)")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<drift walk of {model.__qualname__}>", "exec"), names)  # noqa: S102
    walk: Walker = names["walk"]
    walk.__source__ = source  # type: ignore[attr-defined]  # for whoever debugs it
    return walk


def _unknown_variant(model: BaseModel, pointer: str, out: list[Violation]) -> None:
    assert isinstance(model, UnknownVariant)
    out.append(
        Violation(
            pointer=pointer + "/type",
            message=(
                f"unknown {model.what} type {_quote(model.type)}; "
                f"documented: {model.hint or ', '.join(model.documented)}"
            ),
            severity="warning",
            kind="unknown_type",
        )
    )


def _extras(model: BaseModel, pointer: str, out: list[Violation]) -> None:
    for key in model.__pydantic_extra__ or ():
        out.append(
            Violation(
                pointer=f"{pointer}/{escape_pointer_token(key)}",
                message=f"unknown field {_quote(key)} (not in the documented contract)",
                severity="warning",
                kind="unknown_field",
            )
        )


# The same requirement is broken by most answers of a server that predates it: its violation
# (frozen) is made once per place.
@remembered(maxsize=1024, max_chars=1024, size=lambda field, pointer, absent: len(pointer))
def _broken_requirement(field: FieldPlan, pointer: str, absent: bool) -> Violation:
    """A tolerated requirement broken: the field is absent or ``null``."""
    tolerated = field.tolerated
    assert tolerated is not None
    if absent:
        message = f"missing required field {_quote(field.key)}; {tolerated.reason}"
        kind: ViolationKind = "missing"
    else:
        message = (
            f"{_quote(field.key)} is null; the contract requires {field.documented}; "
            f"{tolerated.reason}"
        )
        kind = "null"
    return Violation(pointer=pointer, message=message, severity="warning", kind=kind)


def _enums(field: FieldPlan, value: Any, pointer: str, out: list[Violation]) -> None:
    """Values outside the field's enum: the value itself, or each string of a list."""
    found = [(pointer, value)] if isinstance(value, str) else []
    if isinstance(value, list):
        found = [(f"{pointer}/{i}", item) for i, item in enumerate(value) if isinstance(item, str)]
    for here, item in found:
        if item not in field.allowed:
            out.append(
                Violation(
                    pointer=here,
                    message=(
                        f"unknown {field.key} {_quote(item)}; documented: {', '.join(field.known)}"
                    ),
                    severity="warning",
                    kind="unknown_enum",
                )
            )


def _drift_value(value: Any, pointer: str, out: list[Violation]) -> None:
    """The drift of a value that may hold models: a list or dict of them, or a model."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            walk = _WALKERS.get(item.__class__)
            if walk is not None:
                walk(item, f"{pointer}/{index}", out)
            elif isinstance(item, BaseModel | list | dict):  # nothing else can drift
                _drift_value(item, f"{pointer}/{index}", out)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, BaseModel | list | dict):
                _drift_value(item, f"{pointer}/{escape_pointer_token(key)}", out)
    elif isinstance(value, BaseModel):
        _drift(value, pointer, out)
