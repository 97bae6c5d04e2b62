"""Which documented route a request is for, read from its raw path.

``POST /v1/responses/{response_id}/cancel`` has a contract for its request and response;
``POST /v1/responses`` (create) and ``GET /v1/responses/{response_id}`` (retrieve) have one for the
event stream they may answer with. Every other path is forwarded without one (validation
``skipped``). Matching runs on the raw, still
percent-encoded path, so ``resp_a%2Fb`` is one id and never two path segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

CANCEL: Final = "cancel"
CREATE: Final = "create"
RETRIEVE: Final = "retrieve"
PASSTHROUGH: Final = "passthrough"

_CANCEL_PATH: Final = re.compile(r"/v1/responses/(?P<response_id>[^/]*)/cancel")
_CREATE_PATH: Final = "/v1/responses"
_RESPONSE_PATH: Final = re.compile(r"/v1/responses/(?P<response_id>[^/]+)")


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    method: str | None = None  # the method the route documents, if it has a contract
    raw_response_id: str | None = None  # as sent, percent-encoding kept

    @property
    def has_contract(self) -> bool:
        return self.method is not None

    @property
    def response_id(self) -> str | None:
        """The id as the API sees it (percent-decoded)."""
        if self.raw_response_id is None:
            return None
        return unquote(self.raw_response_id, errors="backslashreplace")


def classify(method: str, path: str) -> Route:
    """The route for ``method`` and a raw path (without the query)."""
    match = _CANCEL_PATH.fullmatch(path)
    if match is not None and method == "POST":
        return Route(CANCEL, "POST", match["response_id"])
    if path == _CREATE_PATH and method == "POST":
        return Route(CREATE, "POST")
    match = _RESPONSE_PATH.fullmatch(path)
    if match is not None and method == "GET":
        return Route(RETRIEVE, "GET", match["response_id"])
    return Route(PASSTHROUGH)
