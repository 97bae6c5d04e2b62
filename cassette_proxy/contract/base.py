"""What every contract model is made of: the markers, the base classes, tagged-union plumbing.

What the contract is: the union of what three sources know, in this order: Yandex AI Studio's
API reference (the "seed", ``shared/seeds/003_…txt``), the OpenAI spec facts gathered in
``shared/reference/``, and the pinned ``openai`` client's own types. A field, enum value, item,
tool or event type known to any of them is not drift. A field the seed or the client requires is
required; where real servers break such a requirement, :class:`Tolerated` says so, and why.
``tests/contract/test_client_parity.py`` walks the client's models against these, both ways.

How strict the models are:

- Every model is ``strict``, so a wrong JSON type is a validation error (``"12"`` for an integer,
  ``1`` for a boolean). A float field still accepts an integer.
- Every model is ``extra="allow"``. Unknown keys are kept in ``model_extra``, and
  :mod:`cassette_proxy.contract.check` reports them as drift.
- Enums are plain strings marked :class:`KnownValues`. An unlisted value is drift, not an error.
- Each tagged union has an :class:`UnknownVariant` fallback, so an unlisted ``type`` is drift,
  not an error.
- A required field (no default) must be there and not ``null``. An optional one (``X | None =
  None``) may be absent or ``null``, as in the client, whose optional fields are all ``Optional``.
- :class:`Tolerated` marks a requirement that real servers break (``usage`` on a cancelled
  response): absent or ``null``, it is a warning with the reason.
- :data:`Unknown` (any JSON value) is where a source declares a field the contract does not
  model deeper: nothing under it is checked, so nothing under it is drift.

The models only declare the contract. :mod:`cassette_proxy.contract.check` interprets the markers.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Tag


class KnownValues:
    """Marks a string as an enum. A value outside ``values`` is drift (a warning), not an error."""

    __slots__ = ("values",)

    def __init__(self, *values: str) -> None:
        self.values = values

    def __repr__(self) -> str:
        return f"KnownValues{self.values!r}"


@dataclass(frozen=True, slots=True)
class Tolerated:
    """A requirement (of the seed or the client) that real servers break: absent or ``null``, the
    field is a warning with ``reason``, not an error. Declare the field ``X | None = None``."""

    reason: str


Unknown: TypeAlias = Any
"""A field a source names without a shape the contract checks: any JSON value (``null`` too)."""


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


def union_of(members: Sequence[type[ContractModel]], tag_of: Callable[[Any], str]) -> Any:
    """``members`` as one union; ``tag_of`` names the member (its class name) for a value."""
    _union_tags.update(m.__name__ for m in members)
    choices = [Annotated[m, Tag(m.__name__)] for m in members]
    return Annotated[functools.reduce(operator.or_, choices), Discriminator(tag_of)]


def tagged_union(fallback: type[UnknownVariant], *members: type[ContractModel]) -> Any:
    """``members`` as one union tagged by ``type`` (:func:`dispatch_on_type`), ``fallback`` for
    any other type. Declare the alias as ``ContractModel`` for type checkers::

        if TYPE_CHECKING:
            Item: TypeAlias = ContractModel
        else:
            Item = tagged_union(UnknownItem, Message, FunctionCall)
    """
    return union_of((*members, fallback), dispatch_on_type(fallback, *members))


UNION_TAGS: set[str] = _union_tags
"""Every tag of the tagged unions. Pydantic puts them in error locations."""


def rebuild_models(namespace: dict[str, Any]) -> None:
    """Resolve the forward references of the contract models a module declared (call it last)."""
    for value in list(namespace.values()):
        if isinstance(value, type) and issubclass(value, ContractModel):
            value.model_rebuild()
