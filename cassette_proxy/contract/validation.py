"""Checks a request and its response against the contract of its route (:data:`ROUTES`).

The models are in the modules of :mod:`cassette_proxy.contract`; turning pydantic's findings into
violations is :mod:`cassette_proxy.contract.check`. This module applies a route's row: the path's
id, the query, the body and the auth scheme of a request; the status, media type and body of a
response (an event stream, too, event by event). A route without a contract gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from pydantic import TypeAdapter

from cassette_proxy.contract.check import (
    Validate,
    check_body,
    check_media_type,
    check_value,
    downgraded,
)
from cassette_proxy.contract.errors import ErrorBody
from cassette_proxy.contract.queries import query_values
from cassette_proxy.contract.routes import Route, RouteContract
from cassette_proxy.contract.stream import StreamChecker
from cassette_proxy.json_cost import not_parsed, too_dense
from cassette_proxy.models.http import ProxyRequest, ProxyResponse, UndecodableBody
from cassette_proxy.models.violations import Verdict, Violation, verdict_of
from cassette_proxy.redact import redact_text
from cassette_proxy.sse import decode_all, is_event_stream

# The schemes the API accepts (Yandex: Bearer <IAM token or key>, Api-Key <key>).
API_AUTH_SCHEMES = ("bearer", "api-key")
_AUTH_HINT: Final = "expected 'Bearer <token>' or 'Api-Key <key>'"

ERROR_BODY: Final[Validate] = TypeAdapter[Any](ErrorBody).validate_python


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking one message (not changed once made: :data:`UNCHECKED` is shared
    by every exchange not checked yet)."""

    violations: list[Violation] = field(default_factory=list)
    checked: bool = False

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.violations, checked=self.checked)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def failed(self) -> bool:
        """Whether any violation is an error (no list made: asked of every exchange)."""
        return any(v.severity == "error" for v in self.violations) if self.violations else False


UNCHECKED: Final = Checked()


def _request_violation(pointer: str, message: str, *, error: bool = False) -> Violation:
    return Violation(
        pointer=pointer, message=message, severity="error" if error else "warning", kind="request"
    )


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def check_request(route: Route, request: ProxyRequest, *, injecting_key: bool) -> Checked:
    """A request against its route: the path's id, the query, the body and the auth scheme."""
    contract = route.contract
    if contract is None:
        return Checked()
    found: list[Violation] = []
    if "{response_id}" in contract.template and not route.raw_response_id:
        found.append(
            _request_violation(
                "/path/response_id",
                f"response_id is empty: the route is {contract.template} and the id is a "
                "required path parameter",
                error=True,
            )
        )
    query = request.raw_path.partition("?")[2]
    if query:
        found += check_value(
            query_values(query, contract.query), contract.query.model_validate, "/query"
        )
    found += _check_request_body(contract, request.body)
    if not injecting_key:
        found += _check_authorization(request.headers.get("Authorization"))
    return Checked(found, checked=True)


def _not_checked(pointer: str, body: bytes) -> Violation:
    return Violation(
        pointer=pointer,
        message=f"not checked: {not_parsed(body)}",
        severity="warning",
        kind="body",
    )


def _check_request_body(contract: RouteContract, body: bytes) -> list[Violation]:
    if contract.body is None:
        if not body:
            return []
        return [
            _request_violation(
                "/body", f"{contract.name} takes no request body, got {len(body)} bytes"
            )
        ]
    if too_dense(body):  # its parsed form would cost many times its size: not parsed
        return [_not_checked("/body", body)]
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return check_body(body, contract.body.model_validate, "/body")  # says what is wrong
    found = check_value(data, contract.body.model_validate, "/body")
    if isinstance(data, dict) and data.get("model") is None and data.get("prompt") is None:
        found.append(
            Violation(
                pointer="/body/model",
                message='missing required field "model": name the model (a model URI such as '
                "gpt://<folder>/yandexgpt/latest) or a stored prompt that names one",
                severity="error",
                kind="missing",
            )
        )
    return found


def _check_authorization(auth: str | None) -> list[Violation]:
    if auth is None:
        return [
            _request_violation(
                "/headers/authorization",
                f"no Authorization header; {_AUTH_HINT} (or set CASSETTE_PROXY_UPSTREAM_API_KEY "
                "on the proxy)",
            )
        ]
    scheme, _, credential = auth.strip().partition(" ")
    if not credential:  # never quote it: a schemeless value is the secret itself
        problem = "Authorization has no scheme"
    elif scheme.lower() not in API_AUTH_SCHEMES:
        problem = f"unknown Authorization scheme {redact_text(scheme)[:20]!r}"  # whole, then cut
    else:
        return []
    return [_request_violation("/headers/authorization", f"{problem}; {_AUTH_HINT}")]


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


def check_response(route: Route, response: ProxyResponse) -> Checked:
    """A whole response checked against its route's contract (nothing for routes without one).

    The result is kept on the response, so a replayed response is checked once, not per play.
    """
    contract = route.contract
    if contract is None:
        return Checked()
    key = f"checked:{route.name}"
    cached = response.memo.get(key)
    if cached is None:
        cached = response.memo[key] = _check_response(route, response)
    return cached


def _check_response(route: Route, response: ProxyResponse) -> Checked:
    try:
        body = response.decoded_body()
    except UndecodableBody as exc:
        return Checked(
            [Violation(pointer="", message=str(exc), severity="error", kind="body")], checked=True
        )
    found = check_status_and_body(
        route, response.status, body, response.headers.get("Content-Type")
    )
    return Checked(found, checked=True)


def check_status_and_body(
    route: Route, status: int, body: bytes, content_type: str | None
) -> list[Violation]:
    """Every way an (already decompressed) response breaks the route's contract.

    200 is checked with the route's success model (an event stream, on a route that streams,
    event by event), a documented error status as an error body (flat or ``{"error": {...}}``).
    Any other status gets one ``undocumented_status`` warning, and its body is checked as an error
    body with every finding downgraded to a warning. A route without a contract gets nothing.
    """
    contract = route.contract
    if contract is None:
        return []
    if status not in contract.statuses:
        undocumented = Violation(
            pointer="",
            message=(
                f"HTTP {status} is not documented for {contract.template} "
                f"(documented: {', '.join(map(str, contract.statuses))})"
            ),
            severity="warning",
            kind="undocumented_status",
        )
        return [undocumented, *downgraded(check_body(body, ERROR_BODY))]
    if status == 200 and contract.streams and is_event_stream(content_type):
        return _check_whole_stream(route, body)
    validate = contract.success if status == 200 else ERROR_BODY
    if too_dense(body):
        return [*check_media_type(content_type), _not_checked("", body)]
    return [*check_media_type(content_type), *check_body(body, validate)]


def _check_whole_stream(route: Route, body: bytes) -> list[Violation]:
    """A recorded (or replayed) event stream, checked as the proxy checks one that arrives."""
    checker = StreamChecker(route)
    found = [v for event in decode_all(body) for v in checker.check(event)]
    return found + checker.finish(ended=True)
