"""The last exchanges, as the log wrote them, for ``GET /_proxy/exchanges``.

An observer of the audit log (:attr:`cassette_proxy.serving.observers.log.AuditLog.tap`),
kept only when the control API is on: each exchange's line is kept as the bytes the log wrote
(the same event, secrets already removed; nothing is serialized twice), with the per-request
cassette it chose.
Bounded in count and in bytes: the oldest lines go first, so a long run, or one of large bodies,
holds at most :data:`MAX_BYTES` here.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from cassette_proxy.models.events import ExchangeEvent, LifecycleEvent

MAX_EXCHANGES: Final = 1000
MAX_BYTES: Final = 8 * 1024 * 1024  # a log line holds at most two 64 KiB bodies and headers


class RecentExchanges:
    """At most ``limit`` lines and ``max_bytes`` bytes of the latest exchanges, oldest first."""

    def __init__(self, limit: int = MAX_EXCHANGES, max_bytes: int = MAX_BYTES) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.size = 0  # bytes held
        self.dropped = 0  # lines let go (the oldest) since the last clear
        self._lines: deque[tuple[str | None, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._lines)

    def keep(self, event: ExchangeEvent | LifecycleEvent, line: bytes) -> None:
        """The log's tap: keep an exchange's line (the log's own bytes, not a copy)."""
        if not isinstance(event, ExchangeEvent):
            return
        if len(line) > self.max_bytes:  # never the case for the log's lines; bounded anyway
            self.dropped += 1
            return
        self._lines.append((event.cassette, line))
        self.size += len(line)
        while len(self._lines) > self.limit or self.size > self.max_bytes:
            _, oldest = self._lines.popleft()
            self.size -= len(oldest)
            self.dropped += 1

    def lines(self, *, cassette: str | None = None, last: int | None = None) -> list[bytes]:
        """The lines kept, oldest first: of one per-request cassette if named, the ``last``
        ones if given."""
        kept = [line for name, line in self._lines if cassette is None or name == cassette]
        kept = kept if last is None else kept[max(0, len(kept) - last) :]
        return [line.rstrip(b"\n") for line in kept]

    def clear(self) -> int:
        """Forget every line; how many there were."""
        count = len(self._lines)
        self._lines.clear()
        self.size = self.dropped = 0
        return count
