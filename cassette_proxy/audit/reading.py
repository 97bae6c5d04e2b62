"""Reading logs: plain, ``.gz`` or stdin, line by line, into a :class:`Summary`.

Most of a log line is the bodies and headers of the request and the response, which an audit
never looks at. An exchange line the proxy wrote has its members in a fixed order (see
:class:`cassette_proxy.models.events.ExchangeEvent`): scalars first (time ... upstream_ms), then
``request`` and ``response``, then ``validation`` and the rest. So only the part before the first
``,"request":{`` and the part from the last ``,"validation":{`` are parsed; the bodies between are
skipped, which makes reading about twice as fast as parsing every line whole. This is safe: those
byte sequences cannot occur inside a JSON string (their quote is not escaped), and each part
parses as an object only if its cut lies between two members of the line's outermost object.
Any line where that does not hold (another key order, a body after ``validation``, a line that
is not JSON) is parsed whole, as before.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from cassette_proxy.audit.filters import Filters
from cassette_proxy.audit.summary import BadEvent, Summary
from cassette_proxy.progress import Progress

_REQUEST: Final = b',"request":{'
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
        start = line.find(_REQUEST)
        end = line.rfind(_VALIDATION)
        split = line.find(_VERDICT, end)
        if 0 < start < end < split:
            try:
                event = orjson.loads(line[:start] + b"}")
                event.update(orjson.loads(b"{" + line[split + 2 :]))
                part = line[end + len(_VALIDATION) - 1 : split + 1]
                validation = self._validations.get(part)
                if validation is None:
                    validation = orjson.loads(part)
                    if len(self._validations) >= _SHARED:
                        self._validations.clear()
                    self._validations[part] = validation
            except orjson.JSONDecodeError:
                pass  # not cut between members: parsed whole below
            else:
                event["validation"] = validation
                truncated = line.endswith(_TRUNCATED, start, end)
                event["response"] = _TRUNCATED_RESPONSE if truncated else _WHOLE_RESPONSE
                return event  # type: ignore[no-any-return]
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return f"not JSON: {str(exc)[:200]}"
        if not isinstance(event, dict):
            return f"a JSON {type(event).__name__}, not an object"
        return event


def summarise(
    sources: Iterable[str],
    *,
    filters: Filters | None = None,
    slowest: int = 10,
    progress: Progress | None = None,
) -> Summary:
    summary = Summary(filters=filters or Filters(), slowest_kept=slowest)
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
