"""What every contract model is made of: the markers, the base classes, tagged-union plumbing.

How strict the models are:

- Every model is ``strict``, so a wrong JSON type is a validation error (``"12"`` for an integer,
  ``1`` for a boolean). A float field still accepts an integer.
- Every model is ``extra="allow"``. Unknown keys are kept in ``model_extra``, and
  :mod:`cassette_proxy.contract.check` reports them as drift.
- Enums are plain strings marked :class:`KnownValues`. An unlisted value is drift, not an error.
- Each tagged union has an :class:`UnknownVariant` fallback, so an unlisted ``type`` is drift,
  not an error.
- An optional field may be ``null`` only when the seed says "Any of X | null"
  (:data:`Nullable`) or gives the type as ``unknown``. Any other ``null`` is accepted, and
  reported as a warning.
- :class:`Tolerated` marks a requirement that real servers break (``usage`` on a cancelled
  response). Breaking it is a warning.

The models only declare the contract. :mod:`cassette_proxy.contract.check` interprets the markers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeAlias, TypeVar, get_args

from pydantic import BaseModel, ConfigDict


class KnownValues:
    """Marks a string as an enum. A value outside ``values`` is drift (a warning), not an error."""

    __slots__ = ("values",)

    def __init__(self, *values: str) -> None:
        self.values = values

    def __repr__(self) -> str:
        return f"KnownValues{self.values!r}"


@dataclass(frozen=True, slots=True)
class DocumentedNull:
    """Marks a field the seed documents as "Any of X | null": ``null`` is part of the contract."""


@dataclass(frozen=True, slots=True)
class Tolerated:
    """A documented requirement that real servers break. Breaking it is a warning, with ``reason``.

    ``required`` means the seed marks the field required, so its absence is reported too.
    """

    reason: str
    required: bool = False


T = TypeVar("T")

Nullable: TypeAlias = Annotated[T | None, DocumentedNull()]
"""The seed's "Any of X | null"."""

Unknown: TypeAlias = Any
"""The seed's ``unknown``: the page does not say, so any JSON value (``null`` included) is fine."""


class ContractModel(BaseModel):
    """Base of every schema: wrong types are errors, unknown keys are kept (and reported)."""

    model_config = ConfigDict(extra="allow", strict=True)


class UnknownVariant(ContractModel):
    """Fallback member of a tagged union: an object whose ``type`` the contract does not list."""

    what: ClassVar[str] = "variant"
    documented: ClassVar[tuple[str, ...]] = ()
    hint: ClassVar[str] = ""  # said instead of the documented list, when that is too long

    type: str


_union_tags: set[str] = set()


def dispatch_on_type(
    fallback: type[UnknownVariant], *members: type[ContractModel]
) -> Callable[[Any], str]:
    """A pydantic ``Discriminator`` callable that routes an object by its ``type`` value.

    Each member is tagged with its class name. The ``type`` values come from the member's
    ``Literal`` annotation, aliases included. Anything else goes to ``fallback``, so an unknown
    type is drift and not a validation error. A value that is not an object also goes to
    ``fallback``, whose validation then reports "expected object".
    """
    table: dict[str, str] = {}
    for member in members:
        for value in get_args(member.model_fields["type"].annotation):
            table[value] = member.__name__
    fallback.documented = tuple(table)
    _union_tags.update(table.values())
    _union_tags.add(fallback.__name__)
    unknown = fallback.__name__

    def tag_of(value: Any) -> str:
        if isinstance(value, dict):
            kind = value.get("type")
            if isinstance(kind, str):
                return table.get(kind, unknown)
        return unknown

    return tag_of


UNION_TAGS: set[str] = _union_tags
"""Every tag of the tagged unions. Pydantic puts them in error locations."""


def rebuild_models(namespace: dict[str, Any]) -> None:
    """Resolve the forward references of the contract models a module declared (call it last)."""
    for value in list(namespace.values()):
        if isinstance(value, type) and issubclass(value, ContractModel):
            value.model_rebuild()
