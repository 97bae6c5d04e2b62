"""Durability between saves: the journal beside a cassette, and the lock on it.

The journal (``<cassette>.journal``) holds one framed record per recorded interaction, each
written with a single ``write(2)`` before the response is sent, so an interaction whose response
reached the client survives ``kill -9``. It is folded into the cassette on a clean shutdown and
on the next start (:func:`cassette_proxy.store.recorder.recover`). The lock (``<cassette>.lock``)
makes sure only one process writes a cassette and its journal at a time.

Format (version 2): a JSON header line, then one line per record,
``<payload length> <crc32 of the payload, 8 hex digits> <payload: one JSON object>``. A record
cut short by a failed write or a crash is shorter than its declared length, so recovery skips
it and reads on; a whole-length record that does not check out was changed by someone, and the
journal is refused. Version 1 (plain JSON lines) is still read.

Both files are found by name beside the cassette's real path (symlinks resolved), and neither is
ever opened through a symlink: the journal is created exclusively (``O_EXCL|O_NOFOLLOW``), and
read only if it is a regular file of this user's.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import os
import re
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson
from pydantic import ValidationError
from vcr.request import Request as VcrRequest

from cassette_proxy.errors import CassetteFileError, CassetteLocked
from cassette_proxy.models.journal import JournalHeaderLine, JournalRecord
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.persist import storable_problem, timing_dict, timing_of

JOURNAL_VERSION: Final = 2
_CREATE_EXCLUSIVELY: Final = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def journal_path(cassette: Path) -> Path:
    """Beside the cassette's real file: a symlinked cassette has one journal, its target's."""
    real = cassette.resolve()
    return real.with_name(real.name + ".journal")


def lock_path(cassette: Path) -> Path:
    """Beside the cassette's real file: recorders given a symlink and its target share it."""
    real = cassette.resolve()
    return real.with_name(real.name + ".lock")


class CassetteLock:
    """An advisory lock (``flock``) on ``<cassette>.lock``, held while a proxy may write the
    cassette or its journal. The kernel drops it when the process dies, even by ``kill -9``,
    so a journal whose lock is free was left by a crash and is safe to fold in."""

    def __init__(self, cassette: Path) -> None:
        self.cassette = cassette
        self.path = lock_path(cassette)
        self._fd = -1
        # Folders made for the lock, deepest first: taken away again on release if nothing was
        # saved in them (a test that sent nothing leaves no empty cassettes/<module>/ behind).
        self._made: list[Path] = []

    def acquire(self) -> bool:
        """Take the lock if it is free; False if another process holds it."""
        attempts = 0
        while True:
            attempts += 1
            try:
                self._made.extend(_made_folders(self.path.parent))
                fd = os.open(
                    self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
                )
            except FileNotFoundError:
                if attempts < 100:  # another lock's holder took the empty folder away: again
                    continue
                raise CassetteFileError(
                    f"cannot create {str(self.path)!r} beside the cassette: its folder keeps "
                    "disappearing"
                ) from None
            except OSError as exc:
                why = "a symlink is there" if exc.errno == errno.ELOOP else exc.strerror
                raise CassetteFileError(
                    f"cannot create {str(self.path)!r} beside the cassette ({why}), "
                    "which a proxy that records needs: record into a folder it can write, or "
                    "replay the cassette (record mode 'none'), which writes nothing"
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # The holder before us unlinks the file when it releases the lock: if that
            # happened after we opened it, our lock is on a file no one else will open, and
            # another process may already hold one on the new file. Then try again.
            if self._is_current(fd):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def _is_current(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == self.path.stat().st_ino
        except FileNotFoundError:
            return False

    def refusal(self, replay: str = "replay it (--record-mode none)") -> CassetteLocked:
        """The error for a proxy that would record the cassette while another process does;
        ``replay``: how to replay it instead, in the reader's words."""
        return CassetteLocked(
            f"cassette {str(self.cassette)!r} is being recorded by process {self.holder()}; "
            "two proxies recording one cassette would lose each other's interactions. Give "
            f"each its own cassette, or {replay}"
        )

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self._fd)
            self._fd = -1
        # Deepest first, and only while empty: a saved cassette or another lock keeps its folder.
        for folder in sorted(set(self._made), key=lambda made: len(made.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made.clear()


def _made_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents, one level at a time from the top; the ones this
    call made (one another process made meanwhile is not). A parent taken away meanwhile is
    FileNotFoundError, for the caller to try again."""
    missing = []
    while not folder.is_dir() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    made = []
    for level in reversed(missing):
        try:
            level.mkdir()
        except FileExistsError:
            if not level.is_dir():
                raise
            continue
        made.append(level)
    return made


def _encode_body(body: bytes) -> dict[str, str]:
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode("ascii")}


@dataclass(frozen=True, slots=True)
class JournalHeader:
    record_mode: str
    match_on: tuple[str, ...]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:  # no progress and no error: as good as a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _framed(payload: bytes) -> bytes:
    """``<length> <crc32> <payload>\n``: a record whose write was cut short is recognisable."""
    return b"%d %08x %s\n" % (len(payload), zlib.crc32(payload), payload)


class Journal:
    """Append-only log of interactions recorded in this run.

    A write that fails (a full disk, say) may have put part of its record in the file: that part
    is cut off again (``ftruncate`` back to the end of the last whole record), so the next record
    starts on a clean line. Should even that fail, the next record starts with a newline of its
    own, and reading skips the torn fragment by its frame (see :func:`read_journal`). Either way
    a later record is never glued onto a torn one, and a record whose write failed is never
    acknowledged: :meth:`append` raises, and the recorder answers 502 ``recording_failed``.
    """

    def __init__(self, path: Path, header: JournalHeader) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Exclusively, and never through a symlink: the lock is held and any journal left
            # before was folded in, so whatever is at this name now was put there by someone
            # else (a planted symlink would otherwise choose where the proxy writes).
            self._fd = os.open(path, _CREATE_EXCLUSIVELY | os.O_WRONLY | os.O_APPEND, 0o600)
        except FileExistsError as exc:
            raise CassetteFileError(
                f"cannot create journal {str(path)!r}: something is already there (a file or a "
                "symlink this proxy did not make); it is left untouched: move it away"
            ) from exc
        except OSError as exc:
            raise CassetteFileError(f"cannot open journal {str(path)!r}: {exc.strerror}") from exc
        self._end = 0  # where the last whole record ends
        self._torn = False  # bytes of a failed write may follow it
        line = orjson.dumps(
            {
                "journal": JOURNAL_VERSION,
                "record_mode": header.record_mode,
                "match_on": header.match_on,
            }
        )
        try:
            self._write(line + b"\n")
        except OSError as exc:
            self.close()
            path.unlink(missing_ok=True)
            raise CassetteFileError(f"cannot write journal {str(path)!r}: {exc.strerror}") from exc

    def _write(self, data: bytes) -> None:
        if self._torn:
            data = b"\n" + data  # ends the fragment a failed write left, if truncating failed
        try:
            _write_all(self._fd, data)
        except OSError:
            self._cut_back()
            raise
        if self._torn:
            self._end = os.fstat(self._fd).st_size
            self._torn = False
        else:
            self._end += len(data)

    def _cut_back(self) -> None:
        """Remove what a failed write left after the last whole record."""
        try:
            os.ftruncate(self._fd, self._end)
        except OSError:
            self._torn = True

    def append(self, interaction: Interaction) -> None:
        request = interaction.request
        payload = orjson.dumps(
            {
                "request": {
                    "method": request.method,
                    "uri": request.uri,
                    "headers": list(request.headers.items()),
                    "body": _encode_body(request.body or b""),
                },
                "response": {
                    "status": interaction.status,
                    "reason": interaction.reason,
                    "headers": interaction.headers,
                    "body": _encode_body(interaction.body),
                    "timing": (
                        timing_dict(interaction.timing) if interaction.timing is not None else None
                    ),
                    "recorded_at": interaction.recorded_at,
                },
            }
        )
        self._write(_framed(payload))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True, slots=True)
class JournalContents:
    """What a journal holds: its header (None if even that was never written whole), its whole
    records, and how many torn records (writes cut short, never acknowledged) were skipped."""

    header: JournalHeader | None
    interactions: list[Interaction]
    torn: int = 0


_HEADER_START: Final = b'{"journal":'
# A whole frame's start; and any beginning of one that a write cut short.
_FRAME: Final = re.compile(rb"(\d{1,10}) ([0-9a-f]{8}) ")
_FRAME_START: Final = re.compile(rb"\d{0,10}(?: [0-9a-f]{0,8})?")


def read_journal(path: Path) -> JournalContents | None:
    """The contents of the journal at ``path``, or None if there is none.

    Records whose write was cut short (by a full disk, or by the process dying mid-write) are
    skipped: their responses never left the proxy. Anything else that does not read back, such as a
    whole-length record with a wrong checksum or a field of the wrong type, refuses the journal
    in one line and leaves it untouched. Version-1 journals (plain JSON lines) are read too.
    """
    raw = _read_own_file(path)
    if raw is None:
        return None
    first, newline, rest = raw.partition(b"\n")
    if not newline:
        if not _HEADER_START.startswith(first[: len(_HEADER_START)]):
            raise _corrupt(path, 1, "it is not a journal header")
        return JournalContents(None, [])  # the header was cut short: nothing was recorded
    try:
        head = JournalHeaderLine.model_validate_json(first)
    except ValidationError as exc:
        raise _corrupt(path, 1, exc) from exc
    header = JournalHeader(head.record_mode.value, head.match_on)
    if head.journal == 1:
        return JournalContents(header, _records_v1(path, rest.split(b"\n")))
    if head.journal != JOURNAL_VERSION:
        raise CassetteFileError(
            f"journal {str(path)!r} is version {head.journal}; this proxy reads versions 1 and "
            f"{JOURNAL_VERSION}. It is left untouched: fold it in with the version that wrote it"
        )
    interactions: list[Interaction] = []
    torn = 0
    for number, line in enumerate(rest.split(b"\n"), start=2):
        if not line:
            continue
        frame = _FRAME.match(line)
        if frame is None:
            if _FRAME_START.fullmatch(line) is None:
                raise _corrupt(path, number, "it is not a journal record")
            torn += 1
            continue
        payload = line[frame.end() :]
        declared = int(frame[1])
        if len(payload) < declared:
            torn += 1
            continue
        if len(payload) > declared or zlib.crc32(payload) != int(frame[2], 16):
            raise _corrupt(path, number, "its checksum does not match its contents")
        interactions.append(_interaction(path, number, payload))
    return JournalContents(header, interactions, torn)


def _records_v1(path: Path, lines: list[bytes]) -> list[Interaction]:
    """Version 1: one JSON object a line; only the last line may be torn (by a crash)."""
    interactions = []
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            interactions.append(_interaction(path, number, line))
        except CassetteFileError:
            if number == len(lines) + 1:
                break  # the last line was torn by a crash mid-write: its response never left
            raise
    return interactions


def _interaction(path: Path, number: int, payload: bytes) -> Interaction:
    try:
        record = JournalRecord.model_validate_json(payload)
        req, resp = record.request, record.response
        interaction = Interaction(
            request=VcrRequest(req.method, req.uri, req.body.decoded(), dict(req.headers)),
            status=resp.status,
            reason=resp.reason,
            headers=tuple(resp.headers),
            body=resp.body.decoded(),
            timing=timing_of(resp.timing),
            recorded_at=resp.recorded_at,
        )
    except (ValidationError, ValueError) as exc:
        raise _corrupt(path, number, exc) from exc
    # As strict as the cassette's reader: what it would refuse is never folded into the file.
    problem = storable_problem(interaction)
    if problem is not None:
        raise _corrupt(path, number, problem)
    return interaction


def _corrupt(
    path: Path, number: int, reason: ValidationError | ValueError | str
) -> CassetteFileError:
    if isinstance(reason, ValidationError):
        first = reason.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the line"
        reason = f"{where}: {first['msg']}"
    detail = str(reason).strip().splitlines()[0] if str(reason).strip() else "unreadable"
    return CassetteFileError(
        f"journal {str(path)!r} line {number} is corrupt ({detail}); it is left untouched: "
        "fix or remove it to start"
    )


def _read_own_file(path: Path) -> bytes | None:
    """The bytes of ``path``, if it is a regular file of this user's, not reached by a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
        raise CassetteFileError(
            f"cannot read journal {str(path)!r}: {why}; it is left untouched"
        ) from exc
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise CassetteFileError(
                f"journal {str(path)!r} is not a regular file; it is left untouched: move it away"
            )
        if status.st_uid != os.geteuid():
            raise CassetteFileError(
                f"journal {str(path)!r} belongs to another user (uid {status.st_uid}), so its "
                "interactions cannot be trusted; it is left untouched: move it away"
            )
        try:
            return file.read()
        except OSError as exc:
            raise CassetteFileError(f"cannot read journal {str(path)!r}: {exc.strerror}") from exc
