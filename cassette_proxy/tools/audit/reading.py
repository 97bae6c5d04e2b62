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

A log is untrusted input, so reading it is bounded: a line longer than :data:`LINE_LIMIT` is
skipped (and reported) without being held, and a ``.gz`` may inflate to at most
:data:`INFLATION` times the compressed bytes read so far (each line counting
:data:`LINE_WORK` bytes more), so a small file of zeros or of newlines that inflates to
gigabytes is stopped early, and reported, with the lines before it counted.
"""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final, cast

import orjson

from cassette_proxy.tools.audit.filters import Filters
from cassette_proxy.tools.audit.summary import BadEvent, Summary
from cassette_proxy.tools.progress import Progress
from cassette_proxy.tools.shown import PATH, shown

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
_SHARED_SIZE: Final = 16 * 1024  # bytes of a validation part, at most, to keep it parsed
LINE_LIMIT: Final = 16 * 1024 * 1024  # bytes of a line; the proxy's are at most a few hundred KiB
_CHUNK: Final = 1024 * 1024  # bytes read at a time
INFLATION: Final = 256  # decompressed bytes (and line work) per compressed byte, at most
LINE_WORK: Final = 64  # what a line costs beyond its bytes, in bytes
_INFLATION_SLACK: Final = 16 * 1024 * 1024  # inflated bytes allowed before the ratio applies
# Where a line over LINE_LIMIT was: not JSON, so the parser's fast path never takes it.
TOO_LONG: Final = b"\x00 line over the limit"
# What the skipped middle says about the response: only whether its capture was truncated.
_TRUNCATED_RESPONSE: Final = {"truncated": True}
_WHOLE_RESPONSE: Final = {"truncated": False}


class _Counted(io.BufferedIOBase):
    """A stream (stdin) whose first two bytes are read at once, to tell gzip by content on a
    pipe that can be neither peeked nor sought, and given back first; counts what is read,
    so a decompression bomb on stdin is stopped as one in a file is."""

    def __init__(self, stream: io.BufferedIOBase) -> None:
        super().__init__()
        self._stream = stream
        self.head = b""
        while len(self.head) < 2 and (more := stream.read(2 - len(self.head))):
            self.head += more
        self._pending = self.head
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            data = self._stream.read1(size if size > 0 else 64 * 1024)
        self.consumed += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read1():
                chunks.append(chunk)
            return b"".join(chunks)
        data = self.read1(size)
        while 0 < len(data) < size and (more := self.read1(size - len(data))):
            data += more
        return data


class LogFile:
    """A log's bytes, decompressed if it is gzip (by content, whatever its name), and how many
    compressed bytes have been read (None for a file that is not compressed)."""

    def __init__(self, source: str) -> None:
        self._raw: io.BufferedReader | None = None
        self._gzip: gzip.GzipFile | None = None
        self._counted: _Counted | None = None
        if source == "-":  # gzip by content here too (`gzip -c log | audit -`)
            stdin = _Counted(cast(io.BufferedIOBase, sys.stdin.buffer))
            self._stream: io.BufferedIOBase | gzip.GzipFile = stdin
            if stdin.head == b"\x1f\x8b":
                self._stream = self._gzip = gzip.GzipFile(fileobj=stdin, mode="rb")
                self._counted = stdin
            return
        raw = self._raw = Path(source).open("rb")  # noqa: SIM115 - closed by close()
        if raw.read(2) == b"\x1f\x8b":
            raw.seek(0)
            self._stream = self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")
        else:
            raw.seek(0)
            self._stream = raw

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes, from one read of the file: what came before a truncation or
        damage in a ``.gz`` is returned before the error is raised."""
        return self._stream.read1(size)

    def compressed(self) -> int | None:
        if self._gzip is None:
            return None
        if self._counted is not None:  # stdin
            return self._counted.consumed
        return None if self._raw is None else self._raw.tell()

    def close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()
        if self._raw is not None:
            self._raw.close()


def open_log(source: str) -> LogFile:
    """The log's bytes (see :class:`LogFile`); closed by the caller."""
    return LogFile(source)


class Inflated(Exception):
    """A compressed log inflates to more than :data:`INFLATION` times its compressed bytes."""


def bounded_lines(log: LogFile) -> Iterator[bytes]:
    """The lines of ``log``, without their line feeds; one over :data:`LINE_LIMIT` bytes is
    :data:`TOO_LONG` in its place, and is never held whole. Raises :class:`Inflated` when a
    compressed log inflates past the bound."""
    pending: list[bytes] = []  # the start of a line the chunks so far did not end
    held = 0  # its bytes
    skipping = False  # in a line over the limit, until its line feed
    work = 0
    while chunk := log.read(_CHUNK):
        compressed = log.compressed()
        if compressed is not None:
            work += len(chunk) + LINE_WORK * chunk.count(b"\n")
            if work > INFLATION * compressed + _INFLATION_SLACK:
                raise Inflated(
                    f"it inflates to more than {INFLATION} times its compressed size "
                    f"({compressed:,} compressed bytes read), as a decompression bomb does; "
                    "the rest was not read"
                )
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            skipping = False
            yield TOO_LONG
            chunk = chunk[end + 1 :]
        lines = chunk.split(b"\n")
        if len(lines) == 1:  # no line ends here
            pending.append(chunk)
            held += len(chunk)
            if held > LINE_LIMIT:
                pending, held, skipping = [], 0, True
            continue
        if pending:
            pending.append(lines[0])
            lines[0] = b"".join(pending) if held + len(lines[0]) <= LINE_LIMIT else TOO_LONG
        last = lines.pop()
        pending, held = ([last], len(last)) if last else ([], 0)
        yield from lines
    if skipping:
        yield TOO_LONG
    elif pending:
        yield b"".join(pending)


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
        if line is TOO_LONG:
            return f"longer than {LINE_LIMIT // (1024 * 1024)} MiB: skipped, not read"
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
                if len(part) <= _SHARED_SIZE:
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
        except _Broken as broken:  # a truncated or damaged .gz, say, or a bomb
            summary.broken_files += 1
            summary.note_corrupt(
                source,
                broken.line,
                f"the file cannot be read from here ({broken.reason}); "
                "the lines before it were counted",
            )
        finally:
            handle.close()
    progress.clear()
    return summary


class _Broken(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _read(summary: Summary, handle: LogFile, source: str, progress: Progress) -> None:
    """Count every line of one file."""
    number = 0
    add = summary.add
    parse_line = LineParser()
    try:
        for line in bounded_lines(handle):
            number += 1
            if not number & 4095:
                summary.lines += 4096
                progress.show(
                    f"{shown(source, PATH)}: {summary.lines:,} lines, "
                    f"{summary.exchanges:,} exchanges"
                )
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
    except Inflated as exc:
        raise _Broken(number + 1, str(exc)) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise _Broken(number + 1, f"{type(exc).__name__}: {exc}") from exc
    finally:
        summary.lines += number & 4095
