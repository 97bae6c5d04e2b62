"""Faults on demand: the installed rules, and what one does to the exchange it fires on.

    rules (POST /_proxy/faults, --faults, the pytest marker and fixture)
      └─ take(): the first rule that matches the request and fires now (times, probability)
           ├─ before the headers (before_headers): wait delay_ms, then reset the connection
           │   or answer the rule's status in the upstream's place
           └─ an event stream's body (faulted_body): whole events only, gap_ms apart; after
               N events, an ``error`` event (the relay writes it) or a cut connection

The rule model is :class:`cassette_proxy.models.faults.FaultRule`. A stream fault works on the
body as a :class:`~cassette_proxy.models.http.BodyStream`, whether it comes from the upstream or
the cassette, so the relay sends and observes it as any other: an error raised from the body
after whole events is what the relay already turns into an ``error`` event, and
:class:`~cassette_proxy.errors.FaultCut` says to cut instead. The pytest plugin installs rules
from the test's thread while the proxy serves on its own, so rules change under a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web

from cassette_proxy.errors import FaultCut, FaultReset, FaultStreamError, InjectedFault
from cassette_proxy.models.events import FaultRecord
from cassette_proxy.models.faults import STREAM_ERROR, FaultRule, default_error
from cassette_proxy.models.http import BodyStream, ResponseHead, content_coding
from cassette_proxy.sse import SseDecoder, is_event_stream


@dataclass(slots=True)
class Installed:
    """A rule as installed: its number, and how often it has fired."""

    id: int
    rule: FaultRule
    fired: int = 0
    draws: random.Random | None = field(default=None, repr=False)

    @property
    def remaining(self) -> int | None:
        """Times it will still fire (None: as long as it is installed)."""
        return None if self.rule.times is None else self.rule.times - self.fired

    def where(self) -> str:
        """The rule, as a message names it."""
        cassette = f" in cassette {self.rule.cassette!r}" if self.rule.cassette else ""
        return f"fault rule {self.id}, for {self.rule.method} {self.rule.path}{cassette}"


@dataclass(slots=True)
class Fired:
    """A rule firing on one exchange, and what the log says of it."""

    installed: Installed
    record: FaultRecord

    @property
    def rule(self) -> FaultRule:
        return self.installed.rule


class Faults:
    """The installed rules, in the order they were installed: the first that matches fires."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._lock = threading.Lock()
        self._rules: list[Installed] = []
        self._next_id = 1
        self._on_change = on_change

    def __bool__(self) -> bool:
        return bool(self._rules)

    def install(self, rule: FaultRule) -> Installed:
        with self._lock:
            draws = None
            if rule.probability is not None:  # fault injection, not security: any PRNG will do
                draws = random.Random(rule.seed)  # noqa: S311
            installed = Installed(self._next_id, rule, draws=draws)
            self._next_id += 1
            self._rules.append(installed)
        self._on_change()
        return installed

    def remove(self, rule_id: int) -> bool:
        """Remove one rule; False if none has that number."""
        with self._lock:
            kept = [installed for installed in self._rules if installed.id != rule_id]
            found, self._rules = len(kept) != len(self._rules), kept
        self._on_change()
        return found

    def clear(self) -> int:
        """Remove every rule; how many there were."""
        with self._lock:
            count, self._rules = len(self._rules), []
        self._on_change()
        return count

    def listed(self) -> list[Installed]:
        with self._lock:
            return list(self._rules)

    def take(self, method: str, path: str, cassette: str | None) -> Fired | None:
        """The first rule that matches the request and fires on it, counted as fired; a rule
        that has fired its ``times`` is removed."""
        with self._lock:
            for installed in self._rules:
                rule = installed.rule
                if not rule.matches(method, path, cassette):
                    continue
                if installed.draws is not None and installed.draws.random() >= (
                    rule.probability or 0.0
                ):
                    continue
                installed.fired += 1
                if installed.remaining == 0:
                    self._rules.remove(installed)
                break
            else:
                return None
        if installed.remaining == 0:
            self._on_change()
        record = FaultRecord(rule=installed.id, action=rule.action, delay_ms=rule.delay_ms)
        return Fired(installed, record)


async def before_headers(fired: Fired, request: web.Request) -> None:
    """What a rule does before any answer: wait ``delay_ms``, then reset the connection or
    answer its status (raised, for the middleware to send)."""
    rule = fired.rule
    if rule.delay_ms is not None:
        await asyncio.sleep(rule.delay_ms / 1000)
    if rule.reset:
        reset(request)
        raise FaultReset(
            f"{fired.installed.where()} reset the connection; nothing was answered or forwarded"
        )
    if rule.status is not None:
        raise injected(fired)


def injected(fired: Fired) -> InjectedFault:
    """The rule's status answer: its own error fields, or the service's for the status; a
    default message says where it came from (a message of the rule's own is sent as it is)."""
    rule = fired.rule
    assert rule.status is not None
    error_type, code, message = default_error(rule.status)
    given = rule.error
    if given is None or given.message is None:
        message = f"{message} (injected by cassette-proxy: {fired.installed.where()})"
    return InjectedFault(
        rule.status,
        given.message if given is not None and given.message is not None else message,
        error_type=given.type if given is not None and given.type is not None else error_type,
        code=given.code if given is not None and given.code is not None else code,
        param=given.param if given is not None else None,
        headers=tuple(rule.headers.items()),
    )


def reset(request: web.Request) -> None:
    """Close the client's connection with a TCP reset (``SO_LINGER`` 0, as WireMock's
    ``CONNECTION_RESET_BY_PEER`` does), so the client sees a reset, not an orderly end."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def faulted_body(fired: Fired, head: ResponseHead, body: BodyStream) -> BodyStream:
    """``body`` with the rule's stream fault in it; unchanged (and logged as not applied) when
    the response is not an event stream, or is compressed (its events cannot be counted as
    they pass)."""
    if not fired.rule.streams:
        return body
    if not is_event_stream(head.headers.get("Content-Type")):
        fired.record.applied = False
        fired.record.note = "the response is not an event stream"
        return body
    if content_coding(head.headers) != "identity":
        fired.record.applied = False
        fired.record.note = "the event stream is compressed; its events are not counted"
        return body
    return FaultedStream(fired, body)


class FaultedStream:
    """An event stream passed on one whole event at a time, ``gap_ms`` more apart than it came;
    after ``error_after_events`` (``cut_after_events``) events, it raises the rule's error (a
    cut), which the relay writes as an ``error`` event (cuts the connection) between events."""

    def __init__(self, fired: Fired, body: BodyStream) -> None:
        self._fired = fired
        self._body = body
        rule = fired.rule
        self._after = rule.error_after_events
        if self._after is None:
            self._after = rule.cut_after_events
        self._gap = (rule.gap_ms or 0.0) / 1000

    def arrived(self) -> bool:
        return False  # sent event by event, whatever has arrived

    async def aclose(self) -> None:
        await self._body.aclose()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        decoder = SseDecoder()
        pending = bytearray()
        start = 0  # stream offset of pending[0]
        events = 0
        if self._after == 0:
            raise self._end(0)
        async for chunk in self._body:
            pending += chunk
            for event in decoder.feed(chunk):
                if self._gap and events:
                    await asyncio.sleep(self._gap)
                count = event.end - start
                yield bytes(pending[:count])
                del pending[:count]
                start = event.end
                events += 1
                if events == self._after:
                    raise self._end(events)
        if pending:
            yield bytes(pending)  # what follows the last event (a comment, a partial event)
        if self._after is not None:
            self._fired.record.applied = False
            self._fired.record.note = (
                f"the stream ended after {events} event(s), before the {self._after} the rule "
                "waits for"
            )

    def _end(self, events: int) -> FaultStreamError | FaultCut:
        fired = self._fired
        rule = fired.rule
        where = fired.installed.where()
        if rule.cut_after_events is not None:
            return FaultCut(f"{where} cut the event stream after {events} event(s)")
        error_type, code, message = STREAM_ERROR
        given = rule.error
        if given is None or given.message is None:
            message = f"{message} (injected by cassette-proxy: {where}, after {events} event(s))"
        return FaultStreamError(
            200,
            given.message if given is not None and given.message is not None else message,
            error_type=given.type if given is not None and given.type is not None else error_type,
            code=given.code if given is not None and given.code is not None else code,
            param=given.param if given is not None else None,
        )
