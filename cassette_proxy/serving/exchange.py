"""One exchange as it passes through the proxy: what came in, what went out, what was found.

The handler fills it in; the middleware in :mod:`cassette_proxy.serving.app` turns it into the log
event.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

from cassette_proxy.contract import Checked, Route
from cassette_proxy.contract.check import documented_keys
from cassette_proxy.contract.validation import UNCHECKED
from cassette_proxy.errors import ProxyError
from cassette_proxy.kept import dumps_kept, remembered
from cassette_proxy.models.events import (
    ExchangeEvent,
    FaultRecord,
    MessageRecord,
    Serialized,
    StreamRecord,
    ValidationRecord,
)
from cassette_proxy.models.http import (
    ProxyRequest,
    ProxyResponse,
    UndecodableBody,
)
from cassette_proxy.models.usage import Answered, Usage
from cassette_proxy.models.violations import Verdict
from cassette_proxy.redact import printable, redact_path, redact_text
from cassette_proxy.serving.observers.log import (
    FULL,
    HEAD,
    Shown,
    Stopwatch,
    bodiless_record,
    message_record,
    now,
)
from cassette_proxy.settings import LogBodies

if TYPE_CHECKING:
    from cassette_proxy.serving.tee import Captured

SOURCE_HEADER: Final = "X-Proxy-Source"
VALIDATION_HEADER: Final = "X-Proxy-Validation"

UPSTREAM: Final = "upstream"
CASSETTE: Final = "cassette"
PROXY: Final = "proxy"

WITHHELD: Final = "withheld"  # the log line's "bodies" for such an exchange
_SHOWN: Final[dict[LogBodies, Shown | None]] = {
    LogBodies.FULL: FULL,
    LogBodies.HEAD: HEAD,
    LogBodies.NONE: None,
}
# A quoted value in a violation's message ("got string \"...\""): masked in a withheld line.
_QUOTED: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
# A pointer's first segments that name where in the message, not what the client sent.
_SIDES: Final = frozenset({"body", "headers", "query", "path"})


class _RandomIds:
    """128-bit random ids in hex, as random as ``uuid4().hex``: the operating system's
    randomness is read for 256 ids at a time (one system call), not for each exchange. Safe
    across threads (the pytest plugin serves from one) and forks (``--workers``: a child starts
    a pool of its own, so no two processes hand out the same ids)."""

    BATCH: Final = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: list[str] = []
        os.register_at_fork(after_in_child=self._pool.clear)

    def next(self) -> str:
        with self._lock:
            pool = self._pool
            if not pool:  # refilled in place: the fork hook clears this very list
                hexed = os.urandom(16 * self.BATCH).hex()
                pool.extend(hexed[i : i + 32] for i in range(0, len(hexed), 32))
            return pool.pop()


_IDS: Final = _RandomIds()


@dataclass(slots=True)
class Exchange:
    route: Route
    method: str
    raw_path: str
    id: str = field(default_factory=_IDS.next)  # as random as uuid4().hex
    started: str = field(default_factory=now)
    watch: Stopwatch = field(default_factory=Stopwatch)
    request: ProxyRequest | None = None
    response: ProxyResponse | None = None  # a whole response: replayed, or held to be checked
    captured: Captured | None = None  # what the tee kept of a response that streamed
    source: str = PROXY
    ttfb_ms: float | None = None  # to the upstream's response headers
    upstream_ms: float | None = None  # to the upstream's last byte
    sent: int = 0  # body bytes written to the client
    replay_wait_ms: float | None = None  # waited on purpose, replaying at the recorded times
    answer: web.StreamResponse | None = None  # the response whose headers went to the client
    request_check: Checked = UNCHECKED
    response_check: Checked = UNCHECKED
    checking: bool = False  # the response is checked as it streams (verdict after the headers)
    error: ProxyError | None = None
    recorded: bool = False  # kept in the cassette
    not_recorded: str | None = None  # why a recording mode did not record it
    logged: bool = True  # the proxy's own routes (health) are not logged
    cassette: str | None = None  # the per-request cassette's name (X-Cassette-Proxy-Cassette)
    fault: FaultRecord | None = None  # a fault rule that fired on it
    # Writes the log line and metrics (set by the middleware); called before the response's
    # last byte, or by the middleware once the handler returns.
    settle: Callable[[web.StreamResponse], None] = field(default=lambda _: None, repr=False)
    settled: bool = False
    # The client sent x-data-logging-enabled: false: no body in the log line or a span.
    withheld: bool = False
    answered: Answered | None = None  # the Response the client got (id, model, usage)
    tokens: Usage | None = None  # the tokens this exchange accounts for (each response once)
    trace: Any = None  # the tracer's state for this exchange (spans), when tracing is on
    trace_id: str | None = None  # the trace this exchange's spans belong to

    @property
    def verdict(self) -> Verdict:
        request, response = self.request_check, self.response_check
        if not (request.checked or response.checked):
            return Verdict.SKIPPED
        if request.failed or response.failed:
            return Verdict.FAILED
        return Verdict.PASSED

    def labels(self) -> dict[str, str]:
        """``X-Proxy-Source`` and ``X-Proxy-Validation``, as known when the headers leave: for
        a response that streams from the upstream the response's verdict is not known yet
        (``pending``, unless the request already failed); it is in the log line."""
        verdict = self.verdict
        if self.checking and not self.response_check.checked and verdict is not Verdict.FAILED:
            verdict = Verdict.PENDING
        return {SOURCE_HEADER: self.source, VALIDATION_HEADER: verdict.value}

    def event(
        self,
        answer: web.StreamResponse,
        duration_ms: float,
        *,
        serialized_only: bool = False,
        bodies: LogBodies = LogBodies.FULL,
        instance: str = "",
    ) -> ExchangeEvent:
        """The log event, given the response the client actually got (its headers and body are
        read for a response the proxy made up). ``serialized_only``: the event will only be
        serialized, so what stays the same line after line (a client's header set, a replayed
        recording and its verdict) may be given pre-serialized, made once. ``bodies``: how much
        of each body to show (none, for a client that asked not to be logged)."""
        verdict = self.verdict
        answered = self._answered()
        replaced = answered is not None and self.source == PROXY
        captured = self.captured
        shown = None if self.withheld else _SHOWN[bodies]
        response: MessageRecord | Serialized
        if captured is not None and not replaced:
            response = _captured_record(captured, shown)
        elif answered is not None and not replaced:
            response = (
                _serialized_record(answered, shown)
                if serialized_only
                else _response_record(answered, shown=shown)
            )
        else:
            response = _made_record(answer, shown)
        return ExchangeEvent(
            time=self.started,
            id=self.id,
            method=self.method,
            path=_logged_path(self.raw_path),
            route=self.route.name,
            response_id=_logged_id(self.route.response_id),
            status=answer.status,
            source=self.source,
            duration_ms=duration_ms,
            upstream_ms=self.upstream_ms,
            request=self._request_record(shown, serialized_only),
            response=response,
            validation=self._validation(serialized_only),
            verdict=verdict.value,
            error=self.error.code if self.error is not None else None,
            original_status=answered.status if replaced and answered else None,
            original=_response_record(answered, shown=shown) if replaced and answered else None,
            ttfb_ms=self.ttfb_ms,
            stream=self._stream_record(),
            not_recorded=self.not_recorded,
            replay_wait_ms=self.replay_wait_ms,
            instance=instance,
            bodies=WITHHELD if self.withheld else bodies.value,
            model=self.answered.model if self.answered is not None else None,
            tokens=self.tokens,
            trace_id=self.trace_id,
            cassette=self.cassette,
            fault=self.fault,
        )

    def _validation(self, serialized: bool) -> dict[str, ValidationRecord] | Serialized:
        """Both sides' findings as logged. A replayed recording's, with a request that had no
        finding (its verdict alone), is the same play after play: made and, for a log that only
        serializes, serialized once per recording and request verdict."""
        check = self.request_check
        memo = self.response.memo if self.source == CASSETTE and self.response else None
        key = f"validation:{check.verdict.value}:{serialized}:{self.withheld}"
        if memo is not None and not check.violations:
            found = memo.get(key)
            if found is not None:
                assert isinstance(found, dict | Serialized)
                return found
        validation = {
            "request": ValidationRecord.of(check.verdict.value, check.violations),
            "response": self._response_validation(),
        }
        if self.withheld:
            validation = {side: _masked(record) for side, record in validation.items()}
        if memo is None or check.violations:
            return validation
        kept: dict[str, ValidationRecord] | Serialized = (
            orjson.Fragment(dumps_kept(validation)) if serialized else validation
        )
        memo[key] = kept
        return kept

    def _response_validation(self) -> ValidationRecord:
        """The response's check as logged; a replayed response's, once per recording (its
        check is done once, on first play, so its record can be too)."""
        check = self.response_check
        memo = self.response.memo if self.source == CASSETTE and self.response else None
        record = memo.get("validation_record") if memo is not None else None
        if record is None:
            record = ValidationRecord.of(check.verdict.value, check.violations)
            if memo is not None:
                memo["validation_record"] = record
        assert isinstance(record, ValidationRecord)
        return record

    def _answered(self) -> ProxyResponse | None:
        """The response from the upstream or the cassette (what was kept of it)."""
        if self.captured is not None:
            return self.captured.response
        return self.response

    def _stream_record(self) -> StreamRecord | None:
        if self.captured is not None:
            return self.captured.stream
        if self.response is not None:
            return self.response.memo.get("stream")
        return None

    def _request_record(self, shown: Shown | None, serialized: bool) -> MessageRecord | Serialized:
        if self.request is None:
            return MessageRecord({}, None, 0)
        if serialized and not self.request.body:  # most requests: their header set, made once
            return bodiless_record(self.request.headers)
        return message_record(
            self.request.headers, self.request.body, len(self.request.body), shown=shown
        )


@remembered(maxsize=4096, max_chars=256)
def _logged_id(response_id: str | None) -> str | None:
    """The id as logged: like the path it came from, a key-shaped id is fingerprinted.
    Remembered, like the path (replays repeat ids)."""
    return None if response_id is None else printable(redact_text(response_id))


def _masked(record: ValidationRecord) -> ValidationRecord:
    """A withheld exchange's findings: every value a message quotes is masked (a prompt sent
    where a number belongs would be quoted), and so is every key a pointer names that the
    contract does not document (a metadata key, a prompt sent as a key); kinds and severities
    stay."""
    if not record.violations:
        return record
    return ValidationRecord(
        record.verdict,
        [
            v
            | {
                "message": _QUOTED.sub(_masked_quote, v["message"]),
                "pointer": _masked_pointer(v["pointer"], unknown=v["kind"] == "unknown_field"),
            }
            for v in record.violations
        ],
    )


def _masked_quote(quoted: re.Match[str]) -> str:
    """A quoted value masked, unless it is a key the contract documents (``missing required
    field "model"`` says nothing the client sent)."""
    return quoted[0] if quoted[0][1:-1] in documented_keys() else '"…"'


def _masked_pointer(pointer: str, *, unknown: bool) -> str:
    """Only the contract's own keys and array indexes are shown; any other key is the
    client's data (a metadata key, an unknown field) and is masked."""
    known = documented_keys()
    segments = [
        s if s.isdigit() or s in known or s in _SIDES else "…" for s in pointer.split("/")[1:]
    ]
    if unknown and segments:
        segments[-1] = "…"
    return "".join(f"/{segment}" for segment in segments)


@remembered(maxsize=4096, max_chars=4096)
def _logged_path(raw_path: str) -> str:
    """The path as logged (keys fingerprinted, control characters escaped), once per path."""
    return printable(redact_path(raw_path))


def _made_record(answer: web.StreamResponse, shown: Shown | None) -> MessageRecord:
    """A response the proxy made up, as logged."""
    body = answer.body if isinstance(answer, web.Response) else b""
    data = body if isinstance(body, bytes) else b""
    return message_record(CIMultiDictProxy(answer.headers), data, len(data), shown=shown)


def _response_record(response: ProxyResponse, *, shown: Shown | None = FULL) -> MessageRecord:
    """The response as logged; built once per response object and way of showing it (so once
    per replayed one)."""
    key = f"log:{shown.limit if shown else 'none'}"
    record = response.memo.get(key)
    if record is None:
        try:
            body = response.decoded_body()
        except UndecodableBody:
            body = response.body
        record = response.memo[key] = message_record(
            response.headers, body, len(response.body), shown=shown
        )
    assert isinstance(record, MessageRecord)
    return record


def _serialized_record(response: ProxyResponse, shown: Shown | None) -> Serialized:
    """:func:`_response_record` pre-serialized, as the log line embeds it: the largest part of
    a replay's line, serialized once per recording instead of once per play (only the bytes are
    kept, not the values)."""
    key = f"log:serialized:{shown.limit if shown else 'none'}"
    record = response.memo.get(key)
    if record is None:
        record = response.memo[key] = orjson.Fragment(
            dumps_kept(_response_record(response, shown=shown))
        )
        response.memo.pop(f"log:{shown.limit if shown else 'none'}", None)  # the bytes suffice
    assert isinstance(record, Serialized)
    return record


def _captured_record(captured: Captured, shown: Shown | None = FULL) -> MessageRecord:
    """A response that streamed, as logged: what the tee kept, with its real size."""
    response = captured.response
    try:
        body = response.decoded_body()
    except UndecodableBody:
        body = response.body
    return message_record(
        response.headers, body, captured.size, truncated=captured.truncated, shown=shown
    )
