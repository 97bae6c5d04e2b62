"""A fault rule: which requests it matches, how often it fires, and what it does to them.

The same rule comes from ``POST /_proxy/faults`` (JSON), ``--faults`` / ``CASSETTE_PROXY_FAULTS``
(a JSON list), the pytest marker (``faults=[{...}]``) and the fixture
(``cassette_proxy.fault(...)``): one model validates them all, and its messages name the field.

A rule does one of: answer a ``status`` in the upstream's place (with ``headers`` and an OpenAI
error envelope, ``error``, its own or the default for the status below); for an event stream,
end it with an ``error`` event after ``error_after_events`` events, or cut the connection after
``cut_after_events``; ``reset`` the connection before any answer. ``delay_ms`` (before the
headers) and ``gap_ms`` (before each event after the first) combine with any of them, or stand
alone.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cassette_proxy.models.http import CASSETTE_NAME_RULE, cassette_name

MAX_DELAY_MS: Final = 600_000.0  # --upstream-timeout's default: a delay is a slow upstream
# The defaults per status, as OpenAI's service writes its errors (type, code, message): a
# client's handling of the real error is what a fault is there to test.
DEFAULT_ERRORS: Final[dict[int, tuple[str, str | None, str]]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", None, "Response not found."),
    408: ("server_error", None, "Request timed out."),
    409: ("invalid_request_error", None, "The request conflicts with the current state."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}
# What the service sends when a stream fails after its headers (the nested shape the openai
# client raises APIError on; see the README's streaming section).
STREAM_ERROR: Final = (
    "server_error",
    "server_error",
    "The server had an error while processing your request.",
)


def default_error(status: int) -> tuple[str, str | None, str]:
    """The service's ``type``, ``code`` and ``message`` for ``status``."""
    found = DEFAULT_ERRORS.get(status)
    if found is not None:
        return found
    if status >= 500:
        return "server_error", None, "The server had an error while processing your request."
    return "invalid_request_error", None, f"Request failed with status {status}."


def _printable(text: str, what: str) -> str:
    """A header name or value: what HTTP can carry (no line break could inject a header)."""
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"{what} {text!r} must be printable ASCII (no line breaks)")
    return text


class FaultError(BaseModel):
    """The error a fault answers with: the OpenAI envelope's fields; those left out take the
    service's defaults for the status (or, mid-stream, ``server_error``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None


class FaultRule(BaseModel):
    """One rule, as installed; see the module's docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = Field(default="*", description="HTTP method to match; * for any.")
    path: str = Field(
        default="*",
        description="Glob over the path without the query: /v1/responses/*/cancel (* matches"
        " any characters, / too).",
    )
    cassette: str | None = Field(
        default=None,
        description="Match only requests carrying X-Cassette-Proxy-Cassette with this name.",
    )
    times: int | None = Field(
        default=None, ge=1, description="Fire this many times, then stop (default: every time)."
    )
    probability: float | None = Field(
        default=None, gt=0, le=1, description="Fire on each matching request with this chance."
    )
    seed: int | None = Field(default=None, description="Seed of the probability's draws.")
    status: int | None = Field(
        default=None, ge=400, le=599, description="Answer this status instead of the upstream."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Headers of the status answer (Retry-After: 1)."
    )
    error: FaultError | None = Field(
        default=None, description="The error envelope's fields (message, type, code, param)."
    )
    delay_ms: float | None = Field(
        default=None, gt=0, le=MAX_DELAY_MS, description="Wait this long before the headers."
    )
    error_after_events: int | None = Field(
        default=None, ge=0, description="End an event stream with an error event after N events."
    )
    cut_after_events: int | None = Field(
        default=None, ge=0, description="Cut an event stream's connection after N events."
    )
    gap_ms: float | None = Field(
        default=None,
        gt=0,
        le=MAX_DELAY_MS,
        description="Wait this long more before each event of a stream after the first.",
    )
    reset: bool = Field(default=False, description="Reset the connection instead of answering.")

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        value = value.strip().upper()
        if value != "*" and not value.isalpha():
            raise ValueError(f"method {value!r} is not an HTTP method (or * for any)")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith(("/", "*")):
            raise ValueError(f"path {value!r} must start with / (a glob such as /v1/responses/*)")
        return value

    @field_validator("cassette")
    @classmethod
    def _cassette(cls, value: str | None) -> str | None:
        """The name as the header's (``NAME.yaml`` is ``NAME``); one the header would refuse
        could never match."""
        if value is None:
            return None
        known = cassette_name(value)
        if known is None:
            raise ValueError(f"{value[:200]!r} is not a cassette name: {CASSETTE_NAME_RULE}")
        return known

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            _printable(name, "header name")
            _printable(text, f"the value of header {name!r}:")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        does = [
            name
            for name in ("status", "error_after_events", "cut_after_events")
            if getattr(self, name) is not None
        ] + (["reset"] if self.reset else [])
        if len(does) > 1:
            raise ValueError(
                f"a rule does one thing, and this one says {' and '.join(does)}; install one "
                "rule for each"
            )
        if not does and self.delay_ms is None and self.gap_ms is None:
            raise ValueError(
                "the rule does nothing: give status, error_after_events, cut_after_events, "
                "reset, delay_ms or gap_ms"
            )
        if self.headers and self.status is None:
            raise ValueError("headers go with a status answer: give status too")
        if self.error is not None and self.status is None and self.error_after_events is None:
            raise ValueError("error goes with status or error_after_events")
        if self.reset and self.gap_ms is not None:
            raise ValueError("a reset connection has no stream to stretch: drop gap_ms")
        if self.seed is not None and self.probability is None:
            raise ValueError("seed seeds the probability's draws: give probability too")
        return self

    @property
    def action(self) -> str:
        """What the rule does, as the log names it."""
        if self.status is not None:
            return "status"
        if self.error_after_events is not None:
            return "stream_error"
        if self.cut_after_events is not None:
            return "stream_cut"
        if self.reset:
            return "reset"
        return "gaps" if self.gap_ms is not None else "delay"

    @property
    def streams(self) -> bool:
        """Whether the rule acts on an event stream's body (else before the headers only)."""
        return (
            self.error_after_events is not None
            or self.cut_after_events is not None
            or self.gap_ms is not None
        )

    def matches(self, method: str, path: str, cassette: str | None) -> bool:
        """Whether a request (its path without the query) is one this rule is for."""
        return (
            self.method in {"*", method}
            and (self.cassette is None or self.cassette == cassette)
            and fnmatchcase(path, self.path)
        )
