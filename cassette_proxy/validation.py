"""Checks a request and its response against the route's documented contract.

The contract itself (pydantic models) lives in :mod:`cassette_proxy.models.contract`; the rules
for turning pydantic's findings into violations with severities in
:mod:`cassette_proxy.contract_check`. This module adds the request-side checks and decides what a
route without a contract gets (nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cassette_proxy.contract_check import check_cancel_response
from cassette_proxy.models.http import ProxyRequest, ProxyResponse, UndecodableBody
from cassette_proxy.models.violations import Verdict, Violation, verdict_of
from cassette_proxy.routes import CANCEL, Route

# The schemes the API accepts (Yandex: Bearer <IAM token or key>, Api-Key <key>).
API_AUTH_SCHEMES = ("bearer", "api-key")


@dataclass(slots=True)
class Checked:
    """The outcome of checking one message."""

    violations: list[Violation] = field(default_factory=list)
    checked: bool = False

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.violations, checked=self.checked)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]


def check_request(route: Route, request: ProxyRequest, *, injecting_key: bool) -> Checked:
    """Request-side checks for routes with a contract (cancel: id, body, auth scheme)."""
    if route.name != CANCEL:
        return Checked()
    found: list[Violation] = []
    if not route.raw_response_id:
        found.append(
            Violation(
                pointer="/path/response_id",
                message="response_id is empty: the route is /v1/responses/{response_id}/cancel "
                "and the id is a required path parameter",
                severity="error",
                kind="request",
            )
        )
    if request.body:
        found.append(
            Violation(
                pointer="/body",
                message=f"cancel takes no request body, got {len(request.body)} bytes",
                severity="warning",
                kind="request",
            )
        )
    if not injecting_key:
        auth = request.headers.get("Authorization")
        if auth is None:
            found.append(
                Violation(
                    pointer="/headers/authorization",
                    message="no Authorization header; expected 'Bearer <token>' or "
                    "'Api-Key <key>' (or set CASSETTE_PROXY_UPSTREAM_API_KEY on the proxy)",
                    severity="warning",
                    kind="request",
                )
            )
        else:
            scheme, _, credential = auth.strip().partition(" ")
            if not credential:  # never quote it: a schemeless value is the secret itself
                problem = "Authorization has no scheme"
            elif scheme.lower() not in API_AUTH_SCHEMES:
                problem = f"unknown Authorization scheme {scheme[:20]!r}"
            else:
                problem = ""
            if problem:
                found.append(
                    Violation(
                        pointer="/headers/authorization",
                        message=f"{problem}; expected 'Bearer <token>' or 'Api-Key <key>'",
                        severity="warning",
                        kind="request",
                    )
                )
    return Checked(found, checked=True)


def check_response(route: Route, response: ProxyResponse) -> Checked:
    """The response checked against the route's contract (nothing for routes without one).

    The result is kept on the response, so a replayed response is checked once, not per play.
    """
    if route.name != CANCEL:
        return Checked()
    key = f"checked:{route.name}"
    cached = response.memo.get(key)
    if cached is None:
        cached = response.memo[key] = _check_cancel(response)
    return cached


def _check_cancel(response: ProxyResponse) -> Checked:
    try:
        body = response.decoded_body()
    except UndecodableBody as exc:
        return Checked(
            [Violation(pointer="", message=str(exc), severity="error", kind="body")], checked=True
        )
    found = check_cancel_response(response.status, body, response.headers.get("Content-Type"))
    return Checked(found, checked=True)
