"""The structured log: one JSON object per line.

Events are slotted dataclasses, which orjson serialises natively, because one is built for every
exchange on the request path; pydantic models would cost more than the rest of the log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

import orjson

from cassette_proxy.models.usage import Usage
from cassette_proxy.models.violations import Violation

Serialized: TypeAlias = orjson.Fragment
"""Part of a line serialized already (orjson embeds it as it is)."""


@dataclass(slots=True)
class MessageRecord:
    """One side of an exchange as logged: redacted headers and the body.

    ``body`` is the decoded body embedded as JSON when it is JSON, as text when it is text, and
    replaced by a marker when it is binary or larger than the log's limit.
    """

    headers: dict[str, str]
    body: Any
    size: int  # bytes of the body on the wire, all of them, even past the capture cap
    # The body was larger than --max-capture-size: log, validation and recording saw only its
    # first part (the client still got all of it).
    truncated: bool = False


@dataclass(slots=True)
class ValidationRecord:
    verdict: str
    violations: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, verdict: str, violations: list[Violation]) -> ValidationRecord:
        """Each violation as logged (redacted already: a :class:`Violation` is, as it is made)."""
        return cls(
            verdict,
            [
                {"pointer": v.pointer, "message": v.message, "severity": v.severity,
                 "kind": v.kind}
                for v in violations
            ],
        )  # fmt: skip


@dataclass(slots=True)
class StreamRecord:
    """A ``text/event-stream`` response as the log summarises it."""

    events: int  # complete events seen (within the capture cap)
    types: dict[str, int]  # event type -> count (the ``type`` in ``data``, else ``event:``)
    complete: bool  # ended with a terminal event (response.completed/failed/incomplete, error)


@dataclass(slots=True)
class FaultRecord:
    """A fault rule that fired on an exchange (``--faults``, ``POST /_proxy/faults``)."""

    rule: int  # the rule's number, as GET /_proxy/faults lists it
    action: str  # status | stream_error | stream_cut | reset | gaps | delay
    delay_ms: float | None = None  # waited on purpose before the headers
    applied: bool = True  # False: a stream fault on a response it could not act on
    note: str | None = None  # why it was not applied


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
    # Each of these three may be given pre-serialized (an ``orjson.Fragment``) to a log that
    # only serializes: what is the same line after line (a client's header set, a recording and
    # its verdict) is then serialized once, not once an exchange.
    request: MessageRecord | Serialized
    response: MessageRecord | Serialized
    validation: dict[str, ValidationRecord] | Serialized
    verdict: str
    error: str | None = None  # the proxy's error code when the proxy made the response
    # The upstream's (or cassette's) response when strict validation replaced it with a 502.
    original_status: int | None = None
    original: MessageRecord | None = None
    ttfb_ms: float | None = None  # to the upstream's response headers, when forwarded
    stream: StreamRecord | None = None  # for text/event-stream responses
    not_recorded: str | None = None  # why a recording mode did not record this exchange
    # A replay at the recorded times (--replay-timing recorded): how long it waited on purpose.
    replay_wait_ms: float | None = None
    instance: str = ""  # the proxy that wrote the line (--instance)
    # How much of the bodies the line shows: full, head, none (--log-bodies), or withheld (the
    # client sent x-data-logging-enabled: false).
    bodies: str = "full"
    model: str | None = None  # the model that answered, its folder cut off
    tokens: Usage | None = None  # the tokens this exchange accounts for (each response once)
    trace_id: str | None = None  # the OpenTelemetry trace of this exchange, when tracing
    # The X-Cassette-Proxy-Cassette name the request chose its cassette by (--cassette-dir).
    cassette: str | None = None
    fault: FaultRecord | None = None  # a fault rule that acted on this exchange
    event: str = "exchange"


@dataclass(slots=True)
class LifecycleEvent:
    """Something about the proxy itself: listening, cassette loaded, stopped."""

    time: str
    event: str
    detail: dict[str, Any]
    instance: str = ""  # the proxy that wrote the line (--instance)
