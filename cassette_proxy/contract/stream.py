"""Check an event stream as it arrives, one event at a time.

The proxy feeds each decoded :class:`~cassette_proxy.sse.SseEvent` to :meth:`StreamChecker.check`
and calls :meth:`StreamChecker.finish` when the stream is over. The checker keeps a few numbers
(the last ``sequence_number``, whether a terminal event came), never the events, so a stream of any
length costs the same memory. Pointers start at ``/events/{index}``, the event's ``data``.
"""

from __future__ import annotations

from typing import Final

import orjson

from cassette_proxy.contract.check import check_value
from cassette_proxy.contract.events import KNOWN_EVENTS, STREAM_EVENT, TERMINAL
from cassette_proxy.contract.routes import CREATE, Route
from cassette_proxy.models.violations import Severity, Violation, ViolationKind
from cassette_proxy.redact import redact_text
from cassette_proxy.sse import SseEvent

_TERMINALS: Final = "response.completed, response.failed, response.incomplete or error"


def stream_checker(route: Route, status: int) -> StreamChecker | None:
    """A checker for an event stream answered on ``route`` with ``status``; ``None`` when the
    route documents no stream for that status (check the body whole, with ``check_response``)."""
    if route.contract is None or not route.contract.streams or status != 200:
        return None
    return StreamChecker(route)


def _finding(pointer: str, message: str, severity: Severity, kind: ViolationKind) -> Violation:
    return Violation(pointer=pointer, message=message, severity=severity, kind=kind)


def _naming(kind: str, found: Violation) -> Violation:
    """``found`` with its event's type leading the message, so findings group per event type."""
    if found.kind == "unknown_type":
        return found  # its message names the type already
    # Made anew (not model_copy, which skips validation): the type is redacted whole, then cut.
    return Violation(
        pointer=found.pointer,
        message=f"{_shown(kind)}: {found.message}",
        severity=found.severity,
        kind=found.kind,
    )


def _shown(text: str, limit: int = 60) -> str:
    """A value the stream sent, for a message: redacted whole, then cut (a secret cut short is
    no longer one any rule knows)."""
    text = redact_text(text)
    return text if len(text) <= limit else text[:limit]


class StreamChecker:
    """The contract of one Responses event stream, checked incrementally."""

    __slots__ = ("_count", "_last_sequence", "_route", "_terminal")

    def __init__(self, route: Route) -> None:
        self._route = route
        self._count = 0
        self._last_sequence: int | None = None
        self._terminal: str | None = None  # the terminal event's type, once one came

    def check(self, event: SseEvent) -> list[Violation]:
        """The violations of one event, in the order the stream delivers them."""
        base = f"/events/{event.index}"
        self._count += 1
        if event.data.strip() == "[DONE]":
            return [
                _finding(
                    base,
                    "data: [DONE] is not part of the Responses stream, which closes after its "
                    "terminal event; the openai client stops reading at it",
                    "warning",
                    "stream",
                )
            ]
        try:
            data = event.json()  # parsed once for the log and the checker alike
        except orjson.JSONDecodeError as exc:
            return [
                _finding(
                    base,
                    f"event data is not JSON ({exc}); each event's data is one JSON object",
                    "error",
                    "body",
                )
            ]
        found = check_value(data, STREAM_EVENT.validate_python, base)
        if not isinstance(data, dict):
            return found
        kind = data.get("type")
        if isinstance(kind, str):
            found = [_naming(kind, v) for v in found]
            found.extend(self._order(base, event, kind))
        found.extend(self._sequence(base, data.get("sequence_number")))
        return found

    def _order(self, base: str, event: SseEvent, kind: str) -> list[Violation]:
        found: list[Violation] = []
        if event.event not in ("message", kind):
            found.append(
                _finding(
                    base,
                    f"the event: line says {_shown(event.event)!r} but data's type is "
                    f"{_shown(kind)!r}; "
                    "clients that dispatch on event: see another type than the openai client",
                    "warning",
                    "stream",
                )
            )
        if self._terminal is not None:
            found.append(
                _finding(
                    base + "/type",
                    f"{_shown(kind)!r} came after the terminal event {self._terminal!r}; the "
                    "stream closes after its terminal event",
                    "warning",
                    "stream",
                )
            )
        elif kind in TERMINAL:
            self._terminal = kind
        if (
            self._count == 1
            and self._route.name == CREATE
            and kind in KNOWN_EVENTS
            and kind not in ("response.created", "error")
        ):
            found.append(
                _finding(
                    base + "/type",
                    f"the stream starts with {kind!r}, not response.created; the openai "
                    "client's responses.stream() raises unless response.created comes first",
                    "warning",
                    "stream",
                )
            )
        return found

    def _sequence(self, base: str, number: object) -> list[Violation]:
        if not isinstance(number, int) or isinstance(number, bool):
            return []  # the event's model reports a missing or mistyped sequence_number
        previous = self._last_sequence
        if previous is None or number > previous:
            self._last_sequence = number
            return []
        return [
            _finding(
                base + "/sequence_number",
                f"sequence_number {number} does not increase (an earlier event had {previous}); "
                "each event's sequence_number is greater than the one before",
                "error",
                "stream",
            )
        ]

    def finish(self, *, ended: bool) -> list[Violation]:
        """End-of-stream findings: ``ended`` when the upstream closed the stream, False when it
        was cut (then a missing terminal event is the cut's doing, not the contract's)."""
        if not ended or self._terminal is not None:
            return []
        if self._count == 0:
            message = f"the stream ended with no events; it ends with {_TERMINALS}"
        else:
            message = (
                f"the stream ended after {self._count} events without a terminal event "
                f"({_TERMINALS}); the openai client's responses.stream() raises "
                "'Didn't receive a response.completed event'"
            )
        return [_finding("/events", message, "error", "stream")]
