"""One exchange as it passes through the proxy: what came in, what went out, what was found.

The handler fills it in; the middleware in :mod:`cassette_proxy.app` turns it into the log event.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

from multidict import CIMultiDictProxy

from cassette_proxy.contract import Checked, Route
from cassette_proxy.errors import ProxyError
from cassette_proxy.log import Stopwatch, message_record, now
from cassette_proxy.models.events import ExchangeEvent, MessageRecord, ValidationRecord
from cassette_proxy.models.http import ProxyRequest, ProxyResponse, UndecodableBody
from cassette_proxy.models.violations import Verdict
from cassette_proxy.redact import printable, redact_path, redact_text

UPSTREAM: Final = "upstream"
CASSETTE: Final = "cassette"
PROXY: Final = "proxy"


@dataclass(slots=True)
class Exchange:
    route: Route
    method: str
    raw_path: str
    id: str = field(default_factory=lambda: os.urandom(16).hex())  # as random as uuid4().hex
    started: str = field(default_factory=now)
    watch: Stopwatch = field(default_factory=Stopwatch)
    request: ProxyRequest | None = None
    response: ProxyResponse | None = None  # from the upstream or the cassette
    source: str = PROXY
    upstream_ms: float | None = None
    request_check: Checked = field(default_factory=Checked)
    response_check: Checked = field(default_factory=Checked)
    error: ProxyError | None = None
    recorded: bool = False  # kept in the cassette
    logged: bool = True  # the proxy's own routes (health) are not logged

    @property
    def verdict(self) -> Verdict:
        if not (self.request_check.checked or self.response_check.checked):
            return Verdict.SKIPPED
        if self.request_check.errors or self.response_check.errors:
            return Verdict.FAILED
        return Verdict.PASSED

    def event(
        self, status: int, headers: CIMultiDictProxy[str], body: bytes, duration_ms: float
    ) -> ExchangeEvent:
        """The log event, given what the client actually got."""
        replaced = self.response is not None and self.source == PROXY
        return ExchangeEvent(
            time=self.started,
            id=self.id,
            method=self.method,
            path=printable(redact_path(self.raw_path)),
            route=self.route.name,
            response_id=_logged_id(self.route.response_id),
            status=status,
            source=self.source,
            duration_ms=duration_ms,
            upstream_ms=self.upstream_ms,
            request=self._request_record(),
            response=(
                _response_record(self.response)
                if self.response is not None and not replaced
                else _record(headers, body)
            ),
            validation={
                "request": ValidationRecord.of(
                    self.request_check.verdict.value, self.request_check.violations
                ),
                "response": ValidationRecord.of(
                    self.response_check.verdict.value, self.response_check.violations
                ),
            },
            verdict=self.verdict.value,
            error=self.error.code if self.error is not None else None,
            original_status=self.response.status if replaced and self.response else None,
            original=_response_record(self.response) if replaced and self.response else None,
        )

    def _request_record(self) -> MessageRecord:
        if self.request is None:
            return MessageRecord({}, None, 0)
        return message_record(self.request.headers, self.request.body, len(self.request.body))


def _logged_id(response_id: str | None) -> str | None:
    """The id as logged: like the path it came from, a key-shaped id is fingerprinted."""
    return None if response_id is None else printable(redact_text(response_id))


def _record(headers: CIMultiDictProxy[str], body: bytes) -> MessageRecord:
    return message_record(headers, body, len(body))


def _response_record(response: ProxyResponse) -> MessageRecord:
    """The response as logged; built once per response object (so once per replayed one)."""
    record = response.memo.get("log")
    if record is None:
        try:
            body = response.decoded_body()
        except UndecodableBody:
            body = response.body
        record = response.memo["log"] = message_record(response.headers, body, len(response.body))
    return record
