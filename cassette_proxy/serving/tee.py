"""The tee: what the log, validation, metrics and the recorder see of a response that streams.

Every chunk the relay passes to the client is also fed here, and here is the only place a
response body is kept: at most ``--max-capture-size`` bytes of it, decoded (gzip and deflate
undone, never past the same cap, so a bomb costs no more than the cap), with the time each
chunk (or, for an event stream, each event) arrived. Past the cap the capture stops and says
so; the client still gets every byte. Event streams are decoded as they arrive and each event
is handed to the stream checker, which holds no events.
"""

from __future__ import annotations

import contextlib
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

import orjson

from cassette_proxy.contract import StreamChecker
from cassette_proxy.models.events import StreamRecord
from cassette_proxy.models.http import (
    BodyDecoder,
    ProxyResponse,
    ResponseHead,
    Timing,
    UndecodableBody,
    content_coding,
)
from cassette_proxy.models.usage import Answered
from cassette_proxy.models.violations import Violation
from cassette_proxy.sse import TERMINAL_TYPES, SseDecoder, SseEvent, is_event_stream

MAX_VIOLATIONS: Final = 100  # kept per stream; the rest are counted in one last violation
MAX_EVENT_TYPES: Final = 64  # distinct event types counted by name; the rest as "(other)"
OTHER: Final = "(other)"
FRAME_RESOLUTION_MS: Final = 1.0


@dataclass(slots=True)
class Captured:
    """What the tee saw of one response, once it ended or was cut."""

    response: ProxyResponse  # the kept body (decoded when it decodes), memo["decoded"] set
    size: int  # bytes on the wire, all of them
    ended: bool  # the body reached its end (not cut by the upstream, the client or the proxy)
    truncated: bool  # not kept whole: the kept body is only its start
    overflowed: bool  # larger than the limit: what came after it was not parsed or checked
    undecodable: str | None  # why the body did not decode, if it did not
    timing: Timing
    stream: StreamRecord | None
    violations: list[Violation] = field(default_factory=list)  # from the stream checker
    answered: Answered | None = None  # an event stream's final Response (its terminal event)

    @property
    def recordable(self) -> str | None:
        """Why this response may not be recorded, or None if it may."""
        if not self.ended:
            return "the response did not reach its end"
        if self.truncated:
            return (
                f"the response ({self.size} bytes on the wire) is larger than "
                "--max-capture-size, so it was passed on but not kept"
            )
        return None


class Tee:
    """Observes one response's chunks on their way to the client.

    ``limit`` (``--max-capture-size``) bounds what is decoded and parsed; ``keep`` (at most
    ``limit``) what is kept of the body: all of it when it will be recorded or checked whole,
    only the log's share otherwise, so clients that never use the capture do not pay for it.
    """

    def __init__(
        self,
        head: ResponseHead,
        limit: int,
        checker: StreamChecker | None,
        ttfb_ms: float,
        keep: int | None = None,
    ) -> None:
        self.head = head
        self.limit = limit
        self.keep = limit if keep is None else min(keep, limit)
        self.checker = checker
        self.ttfb_ms = ttfb_ms
        self.started = time.perf_counter()  # the headers' arrival
        self.size = 0
        self.truncated = False  # more arrived than was kept
        self.overflowed = False  # more arrived than the limit: the rest was not decoded or parsed
        self.undecodable: str | None = None
        self._coding = content_coding(head.headers)
        self._decoder: BodyDecoder | None
        try:
            self._decoder = BodyDecoder(self._coding, limit)
        except UndecodableBody as exc:  # br, zstd...: kept as it came
            self._decoder = None
            self.undecodable = str(exc)
        self._kept = bytearray()  # the decoded body, or its start
        # Wire bytes of a coded body, kept too, so an undecodable one can be kept as it came.
        self._raw: bytearray | None = None if self._coding == "identity" else bytearray()
        self._ends = array("q")
        self._times = array("d")
        self.sse = is_event_stream(head.headers.get("Content-Type"))
        self.events: SseDecoder | None = SseDecoder() if self.sse else None
        self._types: Counter[str] = Counter()
        self._terminal = False
        self.last_sequence = -1  # the last event's sequence_number (for an error event after it)
        self.violations: list[Violation] = []
        self._dropped = 0
        self.answered: Answered | None = None

    @property
    def identity(self) -> bool:
        """The body travels as it is (no content coding): stream offsets are wire offsets."""
        return self._coding == "identity"

    @property
    def between_events(self) -> bool:
        """The bytes so far end between two events, so an event appended now stands alone."""
        return self.events is not None and self.identity and not self.events.mid_event

    def feed(self, chunk: bytes) -> list[tuple[SseEvent, list[Violation]]]:
        """Take one chunk; the events it completed, each with its violations."""
        self.size += len(chunk)
        if self._raw is not None:
            if len(self._raw) + len(chunk) > self.keep:
                self._raw = None
                self.truncated = True
            else:
                self._raw += chunk
        decoded = self._decode(chunk)
        if not decoded:
            return []
        if not self.truncated:
            room = self.keep - len(self._kept)
            self._kept += decoded[:room]  # past the room, the start stays for the log
            self.truncated = len(decoded) > room
        at = round((time.perf_counter() - self.started) * 1000, 3)
        if self.events is None:
            if not self.truncated:
                self._frame(len(self._kept), at)
            return []
        return self._observe(self.events.feed(decoded), at)

    def _decode(self, chunk: bytes) -> bytes:
        if self._decoder is None:  # undecodable, or decoded up to the limit already
            return b""
        try:
            decoded = self._decoder.feed(chunk)
        except UndecodableBody as exc:
            self.undecodable = str(exc)
            self._decoder = None
            return b""
        if self._decoder.exceeded:  # a bomb, or simply large: nothing more is decoded
            self._decoder = None
            self.events = None
            self.truncated = self.overflowed = True
        return decoded

    def _frame(self, end: int, at: float) -> None:
        # Frames less than a millisecond apart are one: replay keeps gaps to the millisecond,
        # and a body dripped a byte at a time cannot grow the timing faster than the clock.
        if self._ends and at - self._times[-1] < FRAME_RESOLUTION_MS:
            self._ends[-1] = end
            return
        self._ends.append(end)
        self._times.append(at)

    def _observe(self, events: list[SseEvent], at: float) -> list[tuple[SseEvent, list[Violation]]]:
        seen = []
        for event in events:
            if not self.truncated:
                self._frame(event.end, at)
            kind = event.type
            if kind in self._types or len(self._types) < MAX_EVENT_TYPES:
                self._types[kind] += 1
            else:
                self._types[OTHER] += 1
            if kind in TERMINAL_TYPES:
                self._terminal = True
                # Already parsed for its type: the final Response, with its usage.
                with contextlib.suppress(orjson.JSONDecodeError):
                    self.answered = Answered.of_event(event.json())
            number = event.sequence_number
            if number is not None:
                self.last_sequence = number
            found = self.checker.check(event) if self.checker is not None else []
            self._keep(found)
            seen.append((event, found))
        return seen

    def _keep(self, found: list[Violation]) -> None:
        room = MAX_VIOLATIONS - len(self.violations)
        self.violations.extend(found[:room])
        self._dropped += max(0, len(found) - room)

    def close(self, *, ended: bool) -> Captured:
        """The capture, once the body ended (``ended``) or was cut."""
        if self.events is not None:
            self._observe(self.events.feed(b"", final=True), self._since())
        if ended and self._decoder is not None and not self.truncated:
            try:
                self._decoder.finish()
            except UndecodableBody as exc:
                self.undecodable = str(exc)
        if self.checker is not None:  # a stream not seen to its end cannot be judged on it
            seen_all = ended and not self.overflowed and self.undecodable is None
            self._keep(self.checker.finish(ended=seen_all))
        if self._dropped:
            self.violations.append(
                Violation(
                    pointer="",
                    message=f"{self._dropped} more violation(s) in this stream, not listed",
                    severity="warning",
                    kind="body",
                )
            )
        # As ProxyResponse means it: the body as on the wire, and (cached) decoded.
        decoded = bytes(self._kept)
        wire = decoded if self._raw is None else bytes(self._raw)
        response = ProxyResponse(self.head.status, self.head.reason, self.head.headers, wire)
        if self.undecodable is None:
            response.memo["decoded"] = decoded  # the whole body, or (truncated) its start
        stream = None
        if self.sse:
            stream = StreamRecord(
                events=sum(self._types.values()), types=dict(self._types), complete=self._terminal
            )
        return Captured(
            response=response,
            size=self.size,
            ended=ended,
            truncated=self.truncated,
            overflowed=self.overflowed,
            undecodable=self.undecodable,
            timing=Timing(self.ttfb_ms, tuple(zip(self._ends, self._times, strict=True))),
            stream=stream,
            violations=self.violations,
            answered=self.answered,
        )

    def _since(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)
