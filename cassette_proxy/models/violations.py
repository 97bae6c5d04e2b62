"""What validation reports: violations, each with a JSON pointer, and a verdict."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from cassette_proxy.kept import remembered
from cassette_proxy.redact import redact_text

Severity = Literal["error", "warning"]

ViolationKind = Literal[
    "missing",  # a required field is absent
    "type",  # a value has the wrong type or shape
    "null",  # a documented non-null field is null (real servers do this; a warning)
    "unknown_field",  # drift: a key the contract does not document
    "unknown_enum",  # drift: a value outside the documented (or OpenAI spec) enum
    "unknown_type",  # drift: an output item / tool / content type the contract does not list
    "undocumented_status",  # drift: an HTTP status the route does not document
    "request",  # a request-side check (empty id, unexpected body, auth scheme)
    "body",  # the body is not JSON, or cannot be decoded
    "stream",  # an event stream's order: sequence_number, terminal event, [DONE], event: line
]


class Violation(BaseModel):
    """One way a message breaks the documented contract. Its pointer and message are redacted
    as they are made: a key name or a query parameter's name can be a credential as well as a
    value can, and both are shown everywhere a violation goes (the log, an answer, ``check``)."""

    model_config = ConfigDict(frozen=True)

    pointer: str  # RFC 6901 JSON pointer into the body ("" is the whole body)
    message: str
    severity: Severity
    kind: ViolationKind

    @model_validator(mode="before")
    @classmethod
    def _no_secret(cls, data: Any) -> Any:
        if isinstance(data, dict):
            pointer, message = data.get("pointer"), data.get("message")
            if isinstance(pointer, str) and isinstance(message, str):
                pointer, message = _redacted(pointer, message)
                data = data | {"pointer": pointer, "message": message}
        return data


# The same findings come back response after response (a field the upstream never sends), and
# redacting a message costs more than the rest of its log line: each is redacted once.
@remembered(maxsize=4096, max_chars=1024)  # pointers name the upstream's keys: any length
def _redacted(pointer: str, message: str) -> tuple[str, str]:
    return redact_text(pointer) if pointer else pointer, redact_text(message)


class Verdict(StrEnum):
    """The value of the ``X-Proxy-Validation`` header."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    # Only in the header of a response that streams from the upstream: its headers left before
    # its body was checked. The verdict is in the exchange's log line.
    PENDING = "pending"


def verdict_of(violations: list[Violation], *, checked: bool) -> Verdict:
    """``failed`` if any error-level violation, ``skipped`` if nothing was checked."""
    if not checked:
        return Verdict.SKIPPED
    if any(v.severity == "error" for v in violations):
        return Verdict.FAILED
    return Verdict.PASSED
