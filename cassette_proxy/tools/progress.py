"""A one-line progress counter on stderr, for commands that read a lot (``audit``, ``cassette
check`` on a folder). It writes only when stderr is a terminal, at most twice a second, and
erases itself before anything else is printed, so redirected output never holds it."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._last = 0.0
        self._shown = False

    @classmethod
    def on_terminal(cls) -> Progress:
        return cls(enabled=sys.stderr.isatty())

    def show(self, message: str, *, force: bool = False) -> None:
        """Replace the line with ``message`` (unless the last update was under 0.5 s ago)."""
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.5):
            return
        self._last = now
        self._shown = True
        self._stream.write(f"\r\033[K{message}")
        self._stream.flush()

    def clear(self) -> None:
        if self._shown:
            self._shown = False
            self._stream.write("\r\033[K")
            self._stream.flush()
