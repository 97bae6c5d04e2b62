"""Reading logs: plain, ``.gz`` or stdin, line by line, into a :class:`Summary`.

Most of a log line is the headers and bodies of the request and the response, which an audit
never looks at. The proxy writes an exchange's members in a fixed order (the fields of
:class:`cassette_proxy.models.events.ExchangeEvent`): scalars first (``time`` ...
``upstream_ms``), then ``request`` and ``response``, then ``validation``, ``verdict`` and the
rest. So a line is cut in three without being parsed: before the first ``,"request":{``, at the
last ``,"validation":{``, and at the ``},"verdict":`` after it; the head and the tail are
parsed, the bodies between are skipped. That makes reading about twice as fast as parsing each
line whole, and it is safe:

- those byte sequences hold an unescaped quote, so they cannot be inside a JSON string;
- a part parses as an object only if its cut lies between two members of the line's outermost
  object (a cut inside a nested object leaves a brace unmatched);
- the head must hold exactly the members the proxy writes before ``request``, in its order.

Any line where one of these does not hold (another key order, a body with a ``validation`` key
after the real one, a pretty-printed line, a line that is not JSON) is parsed whole.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from cassette_proxy.tools.audit.filters import Filters
from cassette_proxy.tools.audit.summary import BadEvent, Summary
from cassette_proxy.tools.progress import Progress

_REQUEST: Final = b',"request":{'
# The members the proxy writes before "request", in order (ExchangeEvent's fields).
_HEAD: Final = (
    "time", "id", "method", "path", "route", "response_id", "status", "source", "duration_ms",
    "upstream_ms",
)  # fmt: skip
_VALIDATION: Final = b',"validation":{'
_VERDICT: Final = b'},"verdict":'  # ends the validation object
_TRUNCATED: Final = b',"truncated":true}'
_SHARED: Final = 4096  # distinct validation parts kept parsed
# What the skipped middle says about the response: only whether its capture was truncated.
_TRUNCATED_RESPONSE: Final = {"truncated": True}
_WHOLE_RESPONSE: Final = {"truncated": False}


def open_log(source: str) -> BinaryIO | gzip.GzipFile:
    """The log's bytes, decompressed if it is gzip (by content, whatever its name)."""
    if source == "-":
        return sys.stdin.buffer
    path = Path(source)
    with path.open("rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    if compressed:
        return gzip.GzipFile(path, "rb")  # closed by the caller, as is the plain file
    return path.open("rb")


class LineParser:
    """Parses lines into events, an exchange without its bodies (see the module's docstring).

    The ``validation`` member is parsed apart from the rest, and lines with the same bytes there
    (most lines: the same warnings, or none) share one parsed object, read-only; so the summary
    checks each distinct one once.
    """

    def __init__(self) -> None:
        self._validations: dict[bytes, Any] = {}

    def __call__(self, line: bytes) -> dict[str, Any] | str:
        """The event on a line, or why it is not one."""
        event = self._without_bodies(line)
        if event is not None:
            return event
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return f"not JSON: {str(exc)[:200]}"
        if not isinstance(event, dict):
            return f"a JSON {type(event).__name__}, not an object"
        return event

    def _without_bodies(self, line: bytes) -> dict[str, Any] | None:
        """The exchange on a line as the proxy writes it, its bodies skipped (None if the line
        is not cut as the module's docstring says)."""
        start = line.find(_REQUEST)
        end = line.rfind(_VALIDATION)
        split = line.find(_VERDICT, end)
        if not 0 < start < end < split:
            return None
        try:
            # The head and the tail as one object: {"time": ..., "upstream_ms": ...,
            # "verdict": ..., "event": "exchange"}, without request, response, validation.
            event: dict[str, Any] = orjson.loads(line[:start] + b"," + line[split + 2 :])
            if tuple(event)[: len(_HEAD)] != _HEAD:
                return None
            part = line[end + len(_VALIDATION) - 1 : split + 1]
            validation = self._validations.get(part)
            if validation is None:
                validation = orjson.loads(part)
                if len(self._validations) >= _SHARED:
                    self._validations.clear()
                self._validations[part] = validation
        except orjson.JSONDecodeError:
            return None  # not cut between members
        event["validation"] = validation
        truncated = line.endswith(_TRUNCATED, start, end)
        event["response"] = _TRUNCATED_RESPONSE if truncated else _WHOLE_RESPONSE
        return event


def summarise(
    sources: Iterable[str],
    *,
    filters: Filters | None = None,
    slowest: int = 10,
    progress: Progress | None = None,
    by_instance: bool = False,
) -> Summary:
    summary = Summary(filters=filters or Filters(), slowest_kept=slowest, by_instance=by_instance)
    progress = progress or Progress(enabled=False)
    for source in sources:
        summary.files.append(source)
        handle = open_log(source)
        try:
            _read(summary, handle, source, progress)
        except _Broken as broken:  # a truncated or damaged .gz, say
            summary.broken_files += 1
            summary.note_corrupt(
                source,
                broken.line,
                f"the file cannot be read from here ({broken.reason}); "
                "the lines before it were counted",
            )
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()
    progress.clear()
    return summary


class _Broken(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _read(summary: Summary, handle: Iterable[bytes], source: str, progress: Progress) -> None:
    """Count every line of one file."""
    number = 0
    add = summary.add
    parse_line = LineParser()
    try:
        for line in handle:
            number += 1
            if not number & 4095:
                summary.lines += 4096
                progress.show(f"{source}: {summary.lines:,} lines, {summary.exchanges:,} exchanges")
            event = parse_line(line)
            if isinstance(event, str):
                if line.strip():
                    summary.note_corrupt(source, number, event)
                continue
            if "event" in event:
                summary.events += 1
            if event.get("event") != "exchange":
                continue
            try:
                add(event)
            except BadEvent as exc:
                summary.note_corrupt(source, number, f"not an exchange event: {exc}")
    except (OSError, EOFError, zlib.error) as exc:
        raise _Broken(number + 1, f"{type(exc).__name__}: {exc}") from exc
    finally:
        summary.lines += number & 4095
