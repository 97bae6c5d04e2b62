"""The audit log: JSON lines to stdout or a file, one per exchange, secrets already removed.

Each line is written with one ``write`` on an unbuffered file, so lines from a crashed proxy are
complete up to the last exchange, and several proxies may append to one file.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Final

import orjson
from multidict import CIMultiDictProxy

from cassette_proxy.errors import StartupError
from cassette_proxy.kept import dumps_kept, remembered
from cassette_proxy.models.events import ExchangeEvent, LifecycleEvent, MessageRecord
from cassette_proxy.redact import redact_bytes, redact_header, redacted_head

BODY_LIMIT: Final = 64 * 1024  # bytes of body kept in a log line
TRUNCATED_HEAD: Final = 2048  # characters shown of a truncated body
HEAD_LIMIT: Final = 512  # bytes of body shown with --log-bodies head


@dataclass(frozen=True, slots=True)
class Shown:
    """How much of a body a log line shows: whole up to ``limit`` bytes, else its first
    ``head`` bytes in a ``{"truncated": true, ...}`` marker."""

    limit: int
    head: int


FULL: Final = Shown(BODY_LIMIT, TRUNCATED_HEAD)
HEAD: Final = Shown(HEAD_LIMIT, HEAD_LIMIT)


# The last second formatted: (second, its text up to the seconds), replaced whole, so threads
# (the pytest plugin serves from one) never pair one second's number with another's text.
_second: tuple[int, str] = (-1, "")


def now() -> str:
    """The time in UTC, to the millisecond, as ISO 8601 (``2026-11-30T12:00:00.123Z``): what
    ``datetime.now(UTC).isoformat(timespec="milliseconds")`` gives (microseconds rounded, then
    milliseconds cut), with the text up to the seconds formatted once a second."""
    global _second  # noqa: PLW0603 - one module-wide cache, replaced whole
    stamp = time.time()
    second = math.floor(stamp)
    micro = round((stamp - second) * 1_000_000)
    if micro == 1_000_000:  # rounds up into the next second
        second, micro = second + 1, 0
    cached = _second
    if cached[0] != second:
        cached = _second = (
            second,
            datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        )
    return f"{cached[1]}.{micro // 1000:03d}Z"


# Clients send the same headers request after request: each distinct one is redacted once.
_redacted_header: Final = remembered(maxsize=4096, max_chars=1024)(redact_header)


def headers_record(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """The headers as logged: names lowercased, repeats joined, values redacted. A client sends
    the same headers request after request: each distinct set is made once (the caller's copy)."""
    return dict(_headers_record(tuple(headers.items())))


def _header_chars(items: tuple[tuple[str, str], ...]) -> int:
    """A header set's size for the memo: its names and values, and 64 for each header (so a
    set of many short headers counts as large as it is in memory). Counted in C: this runs on
    every request."""
    return sum(map(len, itertools.chain.from_iterable(items))) + 64 * len(items)


@remembered(maxsize=1024, max_chars=8192, size=_header_chars)  # a long set: made each time
def _headers_record(items: tuple[tuple[str, str], ...]) -> dict[str, str]:
    record: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        redacted = _redacted_header(key, value)
        record[key] = f"{record[key]}, {redacted}" if key in record else redacted
    return record


def bodiless_record(headers: CIMultiDictProxy[str]) -> orjson.Fragment:
    """A request without a body as logged, pre-serialized: most requests repeat their client's
    header set, so each distinct set is made and serialized once."""
    return _bodiless_record(tuple(headers.items()))


@remembered(maxsize=1024, max_chars=8192, size=_header_chars)  # a long set: made each time
def _bodiless_record(items: tuple[tuple[str, str], ...]) -> orjson.Fragment:
    return orjson.Fragment(dumps_kept(MessageRecord(dict(_headers_record(items)), None, 0)))


def body_record(
    body: bytes, content_type: str | None, size: int | None = None, shown: Shown = FULL
) -> Any:
    """The body as a log line embeds it (already decoded; redacted here). ``size``: the real
    size of a body of which ``body`` is only the start; ``shown``: how much of it to show."""
    if not body:
        return None
    if len(body) > shown.limit or (size is not None and size > len(body)):
        # Redacted across the cut, and never ending in part of a token: the head of a key
        # that the cut goes through is too short for any rule to know it.
        head = redacted_head(body, shown.head).decode("utf-8", "replace")
        return {"truncated": True, "size": size or len(body), "head": head}
    body = redact_bytes(body)
    if content_type is None or "json" in content_type or body[:1] in {b"{", b"["}:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return {"binary": True, "size": len(body)}


def message_record(
    headers: CIMultiDictProxy[str],
    body: bytes,
    size: int,
    *,
    truncated: bool = False,
    shown: Shown | None = FULL,
) -> MessageRecord:
    """One side of an exchange; ``truncated``: ``body`` is only the start of ``size`` bytes;
    ``shown``: how much of the body the line shows (None: none of it, only its size)."""
    content_type = headers.get("Content-Type")
    return MessageRecord(
        headers_record(headers),
        None
        if shown is None
        else body_record(body, content_type, size if truncated else None, shown),
        size,
        truncated,
    )


class AuditLog:
    """Writes events as JSON lines to a file (appending) or to stdout."""

    # Events written here are only serialized: a replayed response's logged body may come
    # pre-serialized (an ``orjson.Fragment``, made once per recording). A log that keeps the
    # events for inspection sets this False, and gets plain values.
    serialized_only: ClassVar[bool] = True

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.failures = 0
        self.instance = ""  # in every line (--instance), set by the application
        # The last write's failure, until a write succeeds again: the log cannot be written,
        # so /_proxy/ready answers 503 (see cassette_proxy.serving.process.readiness).
        self.failing: Exception | None = None
        # Sees each event with the line written for it (GET /_proxy/exchanges keeps them).
        self.tap: Callable[[ExchangeEvent | LifecycleEvent, bytes], None] | None = None
        if path is None:
            self._fd = sys.stdout.fileno()
            self._owned = False
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = _open_for_appending(path)
            except OSError as exc:
                raise StartupError(
                    f"cannot open the log file {str(path)!r} (--log-file) for appending: "
                    f"{exc.strerror or exc}"
                ) from exc
            self._owned = True

    def reopen(self) -> None:
        """Open the log file at its path again (SIGHUP, after logrotate moved it), in place of
        the one open now: ``dup2`` swaps them in one step, so every line goes whole to the old
        file or to the new one, none is lost. Lines go on to the old file if the path cannot be
        opened (said on stderr); stdout is left as it is."""
        if not self._owned or self.path is None:
            return
        try:
            fresh = _open_for_appending(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                sys.stderr.write(
                    f"cassette-proxy: cannot reopen the log file {str(self.path)!r} "
                    f"({exc.strerror or exc}); still writing to the file open before\n"
                )
            return
        try:
            os.dup2(fresh, self._fd)
        finally:
            os.close(fresh)
        self.lifecycle("log_reopened", path=str(self.path))

    def write(self, event: ExchangeEvent | LifecycleEvent) -> None:
        """Write one line. Never raises: the log must not be what breaks a request."""
        try:
            line = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
            if self.tap is not None:
                self.tap(event, line)
            data = memoryview(line)
            while data:
                data = data[os.write(self._fd, data) :]
            if self.failing is not None:
                self.failing = None
        except (OSError, TypeError, ValueError) as exc:  # broken pipe, full disk, bad value
            self.failures += 1
            if isinstance(exc, OSError):
                self.failing = exc
            if self.failures == 1 or self.failures % 1000 == 0:
                with contextlib.suppress(OSError):
                    sys.stderr.write(
                        f"cassette-proxy: cannot write the log ({type(exc).__name__}: {exc}); "
                        f"{self.failures} event(s) lost so far\n"
                    )

    def lifecycle(self, event: str, **detail: Any) -> None:
        self.write(LifecycleEvent(now(), event, detail, self.instance))

    def close(self) -> None:
        if self._owned:
            os.close(self._fd)
            self._owned = False


def _open_for_appending(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


class Stopwatch:
    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)
