"""The structured log: one JSON object per line.

Events are slotted dataclasses, which orjson serialises natively, because one is built for every
exchange on the request path; pydantic models would cost more than the rest of the log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cassette_proxy.models.violations import Violation
from cassette_proxy.redact import redact_text


@dataclass(slots=True)
class MessageRecord:
    """One side of an exchange as logged: redacted headers and the body.

    ``body`` is the decoded body embedded as JSON when it is JSON, as text when it is text, and
    replaced by a marker when it is binary or larger than the log's limit.
    """

    headers: dict[str, str]
    body: Any
    size: int


@dataclass(slots=True)
class ValidationRecord:
    verdict: str
    violations: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, verdict: str, violations: list[Violation]) -> ValidationRecord:
        """Messages quote values from the message they describe: redacted like the bodies."""
        return cls(
            verdict,
            [v.model_dump() | {"message": redact_text(v.message)} for v in violations],
        )


@dataclass(slots=True)
class ExchangeEvent:
    """One request and the response the client got."""

    time: str
    id: str
    method: str
    path: str
    route: str
    response_id: str | None
    status: int
    source: str  # upstream | cassette | proxy
    duration_ms: float
    upstream_ms: float | None
    request: MessageRecord
    response: MessageRecord
    validation: dict[str, ValidationRecord]
    verdict: str
    error: str | None = None  # the proxy's error code when the proxy made the response
    # The upstream's (or cassette's) response when strict validation replaced it with a 502.
    original_status: int | None = None
    original: MessageRecord | None = None
    event: str = "exchange"


@dataclass(slots=True)
class LifecycleEvent:
    """Something about the proxy itself: listening, cassette loaded, stopped."""

    time: str
    event: str
    detail: dict[str, Any]
