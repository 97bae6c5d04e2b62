"""Which documented route a request is for, and what each route's contract is.

:data:`ROUTES` is the route table: one row per Responses API route, naming its method, its path
as the reference writes it, the model of its request body and query, of its success body, and
whether it may answer with an event stream. Adding a route is one row here and one model in the
module of its object family.

Every route documents its success status and the API's error statuses (:data:`ERROR_STATUSES`),
whose body is an error in either shape (:mod:`cassette_proxy.contract.errors`). Any other status
is drift. Every other path is forwarded without a contract (validation ``skipped``).

Matching runs on the raw, still percent-encoded path, so ``resp_a%2Fb`` is one id and never two
path segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

from pydantic import TypeAdapter

from cassette_proxy.contract.base import ContractModel
from cassette_proxy.contract.check import Validate
from cassette_proxy.contract.create import CreateRequest
from cassette_proxy.contract.lists import DeletedResponse, InputItemList
from cassette_proxy.contract.queries import InputItemsQuery, NoQuery, RetrieveQuery
from cassette_proxy.contract.response import ResponseBody
from cassette_proxy.kept import remembered

CREATE: Final = "create"
RETRIEVE: Final = "retrieve"
DELETE: Final = "delete"
CANCEL: Final = "cancel"
INPUT_ITEMS: Final = "input_items"
PASSTHROUGH: Final = "passthrough"

ERROR_STATUSES: Final = (400, 401, 403, 404, 429, 500, 503)
"""Error statuses every route documents: 404 (the seed), 429 (the spec, every Responses route),
400 (a request the API refuses, e.g. cancelling a finished response: reference section 3), and
401, 403, 500, 503 (OpenAI's API-wide error codes; the client raises a typed error for each).
409 is not among them: only clones send it (reference section 3), and the client retries it."""

_RESPONSE: Final[Validate] = TypeAdapter[Any](ResponseBody).validate_python


@dataclass(frozen=True, slots=True)
class RouteContract:
    """One row of the route table."""

    name: str
    method: str
    template: str  # the path as the API reference writes it
    success: Validate  # validates the body of a 200
    body: type[ContractModel] | None = None  # the request body's model; None: no body
    query: type[ContractModel] = NoQuery
    streams: bool = False  # may answer 200 with text/event-stream
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.escape(self.template).replace(r"\{response_id\}", r"(?P<response_id>[^/]*)")
        object.__setattr__(self, "pattern", re.compile(regex))

    @property
    def statuses(self) -> tuple[int, ...]:
        """The statuses the route documents, success first."""
        return (200, *ERROR_STATUSES)


ROUTES: Final = (
    RouteContract(CREATE, "POST", "/v1/responses", _RESPONSE, body=CreateRequest, streams=True),
    RouteContract(
        RETRIEVE, "GET", "/v1/responses/{response_id}", _RESPONSE, query=RetrieveQuery, streams=True
    ),
    RouteContract(DELETE, "DELETE", "/v1/responses/{response_id}", DeletedResponse.model_validate),
    RouteContract(CANCEL, "POST", "/v1/responses/{response_id}/cancel", _RESPONSE),
    RouteContract(
        INPUT_ITEMS,
        "GET",
        "/v1/responses/{response_id}/input_items",
        InputItemList.model_validate,
        query=InputItemsQuery,
    ),
)


@dataclass(frozen=True, slots=True)
class Route:
    """What :func:`classify` found: a route of the table (``contract``), or pass-through."""

    name: str
    method: str | None = None  # the method the route documents, if it has a contract
    raw_response_id: str | None = None  # as sent, percent-encoding kept
    contract: RouteContract | None = field(default=None, repr=False, compare=False)

    @property
    def has_contract(self) -> bool:
        return self.contract is not None

    @property
    def response_id(self) -> str | None:
        """The id as the API sees it (percent-decoded)."""
        if self.raw_response_id is None:
            return None
        return unquote(self.raw_response_id, errors="backslashreplace")


_BY_METHOD: Final[dict[str, tuple[RouteContract, ...]]] = {
    method: tuple(row for row in ROUTES if row.method == method)
    for method in {row.method for row in ROUTES}
}
_PASSTHROUGH_ROUTE: Final = Route(PASSTHROUGH)


# Paths repeat (a replay's above all): each is classified once; long ones are not kept.
@remembered(maxsize=4096, max_chars=1024)
def classify(method: str, path: str) -> Route:
    """The route for ``method`` and a raw path (without the query), found once per path."""
    for row in _BY_METHOD.get(method, ()):
        match = row.pattern.fullmatch(path)
        if match is not None:
            return Route(row.name, row.method, match.groupdict().get("response_id"), row)
    return _PASSTHROUGH_ROUTE
