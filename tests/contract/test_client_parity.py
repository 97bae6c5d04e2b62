"""The contract against the pinned ``openai`` client's own types, both ways.

The walk pairs each of the client's pydantic models with the contract's model for the same JSON
object (tagged unions are paired by their ``type`` values) and finds, at every level the contract
models (a field typed ``Unknown`` ends the walk: nothing under it is checked, so nothing under it is
drift):

- a field, an enum value or a ``type`` the client knows and the contract does not (upgrade the
  client, run this, and it lists what to add);
- a field the client requires that the contract does not (unless :class:`Tolerated` says why real
  servers leave it out);
- a field or ``type`` the contract has that the client does not, unless the seed or the reference
  names it (:data:`DOCUMENTED_ELSEWHERE`, each with where).

It runs against the client version pinned in ``pyproject.toml``'s dev extra; moving the pin is how
a new client release reaches CI (README, "Validation").
"""

from __future__ import annotations

import re
import tomllib
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import openai
import pytest
from openai.types.responses import Response as ClientResponse
from openai.types.responses import ResponseItemList
from openai.types.responses.input_item_list_params import InputItemListParams
from openai.types.responses.response_create_params import ResponseCreateParamsStreaming
from openai.types.responses.response_retrieve_params import ResponseRetrieveParamsStreaming
from openai.types.responses.response_stream_event import ResponseStreamEvent
from pydantic import BaseModel

from cassette_proxy.contract.base import ContractModel, UnknownVariant
from cassette_proxy.contract.check import FieldPlan, field_plans
from cassette_proxy.contract.create import CreateRequest
from cassette_proxy.contract.events import StreamEvent
from cassette_proxy.contract.lists import InputItemList
from cassette_proxy.contract.queries import InputItemsQuery, RetrieveQuery
from cassette_proxy.contract.response import Response

ROOT = Path(__file__).resolve().parents[2]

# (contract model, JSON key or "type=<value>") -> where a document names it. Everything the
# contract knows beyond the client is listed here, with its source.
DOCUMENTED_ELSEWHERE: dict[tuple[str, str], str] = {
    ("Response", "output_text"): "seed: Response.output_text (SDK-only on the wire, section 1)",
    ("Response", "store"): "reference 2.2: real and example bodies carry store",
    ("Response", "presence_penalty"): "seed: the top-level field descriptions",
    ("Response", "frequency_penalty"): "seed: the top-level field descriptions",
    ("NestedErrorEvent", "*"): "streaming.md 2: the nested error events real servers send",
    ("ArgumentsDoneEvent", "name"): "streaming.md 2: function_call_arguments.done adds name",
    ("TextDeltaEvent", "obfuscation"): "streaming.md 2: delta events carry obfuscation",
    ("DeltaEvent", "obfuscation"): "streaming.md 2: delta events carry obfuscation",
    ("SummaryTextDeltaEvent", "obfuscation"): "streaming.md 2: delta events carry obfuscation",
    ("ArgumentsDeltaEvent", "obfuscation"): "streaming.md 2: delta events carry obfuscation",
    ("WebSearchActionFind", "type=find"): "seed: the older name of find_in_page",
}


# ---------------------------------------------------------------------------------------------
# The client's side
# ---------------------------------------------------------------------------------------------


def members(annotation: Any) -> Iterator[Any]:
    """The members of a union (through Optional, Annotated, List and Dict values)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from members(get_args(annotation)[0])
    elif origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            yield from members(arg)
    elif origin in (list, dict):
        yield from members(get_args(annotation)[-1])
    else:
        yield annotation


def models_in(annotation: Any) -> list[type[BaseModel]]:
    return [m for m in members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def contract_models_in(annotation: Any) -> list[type[ContractModel]]:
    return [m for m in models_in(annotation) if issubclass(m, ContractModel)]


def literals_in(annotation: Any) -> tuple[set[str], bool]:
    """The string literals an annotation allows, and whether any other string is allowed too."""
    values: set[str] = set()
    open_ = False
    for member in members(annotation):
        if get_origin(member) is Literal:
            values.update(v for v in get_args(member) if isinstance(v, str))
        elif member is str:
            open_ = True
    return values, open_


def type_values(model: type[BaseModel]) -> tuple[str, ...]:
    tag = model.model_fields.get("type")
    if tag is None:
        return ()
    values, _ = literals_in(tag.annotation)
    return tuple(sorted(values))


def json_key(name: str, info: Any) -> str:
    return str(info.alias or name)


# ---------------------------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------------------------


@dataclass
class Walk:
    gaps: list[str] = field(default_factory=list)
    seen: set[tuple[type[ContractModel], tuple[type[BaseModel], ...]]] = field(default_factory=set)
    used: set[tuple[str, str]] = field(default_factory=set)  # DOCUMENTED_ELSEWHERE entries

    def gap(self, where: str, message: str) -> None:
        self.gaps.append(f"{where}: {message}")

    def documented_elsewhere(self, contract: type[ContractModel], key: str) -> bool:
        """Whether a document names ``key`` of ``contract`` (or of a model it extends)."""
        for model in contract.__mro__:
            for entry in ((model.__name__, key), (model.__name__, "*")):
                if entry in DOCUMENTED_ELSEWHERE:
                    self.used.add(entry)
                    return True
        return False

    def compare(
        self, clients: list[type[BaseModel]], contract: type[ContractModel], where: str
    ) -> None:
        key = (contract, tuple(clients))
        if key in self.seen:
            return
        self.seen.add(key)
        plans = {plan.key: plan for plan in field_plans(contract)}
        client_fields: dict[str, list[Any]] = {}
        for client in clients:
            for name, info in client.model_fields.items():
                client_fields.setdefault(json_key(name, info), []).append(info)
        for name, infos in client_fields.items():
            plan = plans.get(name)
            if plan is None:
                self.gap(
                    f"{where}.{name}",
                    f"the client ({clients[0].__name__}) declares it; the contract does not",
                )
            else:
                required = len(infos) == len(clients) and all(i.is_required() for i in infos)
                self.field(f"{where}.{name}", plan, infos, required=required)
        for name in plans:
            if name not in client_fields and not self.documented_elsewhere(contract, name):
                self.gap(
                    f"{where}.{name}",
                    f"the contract ({contract.__name__}) has it; neither the client nor a "
                    "document names it",
                )

    def field(self, here: str, plan: FieldPlan, infos: list[Any], *, required: bool) -> None:
        """One field both sides declare: required, enum values, and the models under it."""
        if required and not plan.required and plan.tolerated is None:
            self.gap(here, "the client requires it; the contract does not (or Tolerated, why)")
        if Any in set(members(plan.annotation)):
            return  # declared Unknown: not modelled deeper
        if plan.key != "type":
            values: set[str] = set()
            open_ = False
            for info in infos:
                found, is_open = literals_in(info.annotation)
                values |= found
                open_ = open_ or is_open
            missing = sorted(values - set(plan.known))
            if values and not open_ and missing:
                self.gap(here, f"the client knows values the contract does not: {missing}")
        sub_clients = [m for info in infos for m in models_in(info.annotation)]
        sub_contract = contract_models_in(plan.annotation)
        if sub_clients and sub_contract:
            self.pair(sub_clients, sub_contract, here)
        elif sub_clients:
            self.gap(here, "the client models it; the contract has no model (or Unknown)")

    def pair(
        self, clients: list[type[BaseModel]], contracts: list[type[ContractModel]], where: str
    ) -> None:
        clients = list(dict.fromkeys(clients))
        known = [
            m
            for m in dict.fromkeys(contracts)
            if not issubclass(m, UnknownVariant) and not self.documented_elsewhere(m, "*")
        ]
        tagged = all(type_values(m) for m in clients) and all(type_values(m) for m in known)
        if not tagged:
            for contract in known:
                self.compare(clients, contract, where)
            return
        contract_by_type = {value: m for m in known for value in type_values(m)}
        groups: dict[type[ContractModel], list[type[BaseModel]]] = {}
        for client in clients:
            for value in type_values(client):
                match = contract_by_type.get(value)
                if match is None:
                    self.gap(where, f"the client knows type {value!r}; the contract does not")
                elif client not in groups.setdefault(match, []):
                    groups[match].append(client)
        for contract, group in groups.items():
            self.compare(group, contract, f"{where}[{'|'.join(type_values(contract))}]")
        client_types = {value for client in clients for value in type_values(client)}
        for value, contract in sorted(contract_by_type.items()):
            if value not in client_types and not self.documented_elsewhere(
                contract, f"type={value}"
            ):
                self.gap(
                    where,
                    f"the contract has type {value!r}; neither the client nor a document names it",
                )


def typed_dict_keys(params: Any) -> set[str]:
    return set(get_type_hints(params))


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


def test_the_installed_client_is_the_pinned_one() -> None:
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [pin] = [d for d in dev["dev"] if re.match(r"openai\b", d)]
    assert pin == f"openai=={openai.__version__}", (
        f"pyproject.toml pins {pin!r} but openai {openai.__version__} is installed; run "
        "./scripts/test to reinstall the pinned client, or move the pin on purpose (README, "
        "Validation) and fix what tests/contract/test_client_parity.py then lists"
    )


WALKS: list[tuple[list[type[BaseModel]], list[type[ContractModel]], str]] = [
    ([ClientResponse], [Response], "Response"),
    (models_in(ResponseStreamEvent), contract_models_in(StreamEvent), "event"),
    ([ResponseItemList], [InputItemList], "input_items"),
]


@pytest.mark.parametrize(("client", "contract", "where"), WALKS, ids=["response", "events", "list"])
def test_the_contract_knows_what_the_client_knows_and_no_more(
    client: list[type[BaseModel]], contract: list[type[ContractModel]], where: str
) -> None:
    walk = Walk()
    walk.pair(client, contract, where)
    assert walk.gaps == [], "\n".join(walk.gaps)


def test_every_source_only_entry_is_needed() -> None:
    """An entry of DOCUMENTED_ELSEWHERE that no contract field needs any more is stale."""
    walk = Walk()
    for client, contract, where in WALKS:
        walk.pair(client, contract, where)
    assert sorted(set(DOCUMENTED_ELSEWHERE) - walk.used) == []


class Thin(ContractModel):
    """A contract that lacks most of the Response and invents a field."""

    id: str
    created_at: float | None = None
    invented: str | None = None


def test_the_walk_finds_gaps_both_ways() -> None:
    walk = Walk()
    walk.pair([ClientResponse], [Thin], "Response")
    assert "Response.model: the client (Response) declares it; the contract does not" in walk.gaps
    assert (
        "Response.created_at: the client requires it; the contract does not (or Tolerated, why)"
        in walk.gaps
    )
    assert (
        "Response.invented: the contract (Thin) has it; neither the client nor a document "
        "names it" in walk.gaps
    )


@pytest.mark.parametrize(
    ("params", "contract", "extra"),
    [
        pytest.param(ResponseCreateParamsStreaming, CreateRequest, set(), id="create"),
        pytest.param(ResponseRetrieveParamsStreaming, RetrieveQuery, set(), id="retrieve"),
        pytest.param(InputItemListParams, InputItemsQuery, set(), id="input-items"),
    ],
)
def test_request_parameters_match_the_client(
    params: Any, contract: type[ContractModel], extra: set[str]
) -> None:
    """Every parameter the client can send is one the contract knows, and the other way round."""
    client_keys = typed_dict_keys(params)
    contract_keys = {plan.key for plan in field_plans(contract)}
    assert sorted(client_keys - contract_keys) == []
    assert sorted(contract_keys - client_keys - extra) == []
