"""Server-Sent Events, decoded incrementally by the WHATWG rules.

The Responses API streams ``event: <type>\\ndata: <json>\\n\\n`` frames. The proxy relays the bytes
as they come and decodes a copy for the log, validation and replay: lines end in CRLF, LF or CR
(also split across chunks), ``data:`` may span several lines, lines starting with ``:`` are
comments, and a blank line dispatches the event (one with no data is not dispatched).
See https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

The decoder holds only the current, unfinished event; the caller bounds what it feeds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

import orjson

EVENT_STREAM: Final = "text/event-stream"
# The events after which the Responses API closes a stream (there is no ``[DONE]``).
TERMINAL_TYPES: Final = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "error"}
)
_LINE_END: Final = re.compile(rb"\r\n|\r|\n")
_BOM: Final = b"\xef\xbb\xbf"


def is_event_stream(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == (
        EVENT_STREAM
    )


_UNPARSED: Final = object()


@dataclass(slots=True)
class SseEvent:
    """One dispatched event, and where it ended in the stream."""

    index: int  # 0 for the first event dispatched in the stream
    event: str  # the ``event:`` field, "message" when absent
    data: str  # the ``data:`` lines joined with "\n"
    id: str | None
    retry: int | None
    end: int  # offset just past the blank line that dispatched it
    _parsed: object = field(default=_UNPARSED, repr=False, compare=False)

    def json(self) -> object:
        """``data`` parsed as JSON (once); raises ``orjson.JSONDecodeError``."""
        if self._parsed is _UNPARSED:
            self._parsed = orjson.loads(self.data)
        return self._parsed

    @property
    def type(self) -> str:
        """The Responses API's event type: ``data``'s ``type`` if it has one, else ``event:``."""
        try:
            parsed = self.json()
        except orjson.JSONDecodeError:
            return self.event
        if isinstance(parsed, dict) and isinstance(parsed.get("type"), str):
            return str(parsed["type"])
        return self.event

    @property
    def sequence_number(self) -> int | None:
        try:
            parsed = self.json()
        except orjson.JSONDecodeError:
            return None
        number = parsed.get("sequence_number") if isinstance(parsed, dict) else None
        return number if isinstance(number, int) and not isinstance(number, bool) else None


class SseDecoder:
    """Feed bytes as they arrive; get the events they complete."""

    __slots__ = (
        "_base",
        "_data",
        "_dispatched",
        "_event",
        "_has_data",
        "_id",
        "_pending",
        "_retry",
        "_started",
        "frame_ends",
        "track_frames",
    )

    def __init__(self, *, track_frames: bool = False) -> None:
        self._pending = bytearray()  # bytes of a line not yet ended
        self._base = 0  # stream offset of _pending[0]
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._id: str | None = None
        self._retry: int | None = None
        self._dispatched = 0
        self.track_frames = track_frames
        # Offsets just past every blank line, dispatched or not (comment-only keep-alives
        # too): where a replay may split the stream. Kept only when asked for.
        self.frame_ends: list[int] = []

    def feed(self, chunk: bytes, *, final: bool = False) -> list[SseEvent]:
        """The events ``chunk`` completes; ``final`` when no more bytes will follow.

        Linear in what is fed, however the stream is cut: only the new bytes are searched for
        line ends (and the one before them, a CR that may pair with an LF)."""
        if not chunk and not (final and self._pending):
            return []
        pending = self._pending
        scan_from = max(0, len(pending) - 1)
        pending += chunk
        if not self._started:
            if len(pending) < len(_BOM) and _BOM.startswith(pending):
                return []  # could still be a byte-order mark
            self._started = True
            scan_from = 0
            if pending.startswith(_BOM):
                del pending[: len(_BOM)]
                self._base += len(_BOM)
        events: list[SseEvent] = []
        start = 0
        last = len(pending) - 1
        for match in _LINE_END.finditer(pending, scan_from):
            if match.start() == last and not final and pending[last] == 0x0D:
                break  # a CR ending the chunk may be the first half of a CRLF: wait for more
            self._line(bytes(pending[start : match.start()]), self._base + match.end(), events)
            start = match.end()
        del pending[:start]
        self._base += start
        return events

    @property
    def mid_event(self) -> bool:
        """Whether the bytes so far end inside an event (a partial line, or lines of an event
        not yet dispatched): what follows them would be read as part of that event."""
        return bool(self._pending) or self._has_data or bool(self._event)

    def _line(self, line: bytes, end: int, events: list[SseEvent]) -> None:
        if not line:
            if self.track_frames:
                self.frame_ends.append(end)
            if self._has_data:
                events.append(
                    SseEvent(
                        self._dispatched,
                        self._event or "message",
                        "\n".join(self._data),
                        self._id,
                        self._retry,
                        end,
                    )
                )
                self._dispatched += 1
            self._event = ""
            self._data = []
            self._has_data = False
            return
        if line[:1] == b":":
            return  # a comment
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if name == b"data":
            self._data.append(text)
            self._has_data = True
        elif name == b"event":
            self._event = text
        elif name == b"id":
            if "\0" not in text:
                self._id = text
        elif name == b"retry" and text.isascii() and text.isdigit():
            self._retry = int(text)

    @property
    def dispatched(self) -> int:
        return self._dispatched

    @property
    def pending(self) -> int:
        """Bytes held for an unfinished line."""
        return len(self._pending)


def frame_ends(body: bytes) -> list[int]:
    """Where ``body`` (a whole event stream) splits into frames: offsets past each blank line,
    plus the end of the body if bytes follow the last one."""
    decoder = SseDecoder(track_frames=True)
    decoder.feed(body, final=True)
    ends = decoder.frame_ends
    if not ends or ends[-1] < len(body):
        ends.append(len(body))
    return ends


def decode_all(body: bytes) -> list[SseEvent]:
    """Every event of a whole stream (a recorded body, say)."""
    return SseDecoder().feed(body, final=True)
