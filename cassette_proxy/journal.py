"""Durability between saves: the journal beside a cassette, and the lock on it.

The journal (``<cassette>.journal``) is append-only JSON lines, one complete interaction per line
written with a single ``write(2)`` before the response is sent, so an interaction whose response
reached the client survives ``kill -9``. It is folded into the cassette on a clean shutdown and
on the next start (:func:`cassette_proxy.recorder.recover`). The lock (``<cassette>.lock``) makes
sure only one process writes a cassette and its journal at a time.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson
from vcr.request import Request as VcrRequest

from cassette_proxy.cassette import Interaction
from cassette_proxy.errors import CassetteFileError, CassetteLocked

JOURNAL_VERSION: Final = 1


def journal_path(cassette: Path) -> Path:
    return cassette.with_name(cassette.name + ".journal")


def lock_path(cassette: Path) -> Path:
    return cassette.with_name(cassette.name + ".lock")


class CassetteLock:
    """An advisory lock (``flock``) on ``<cassette>.lock``, held while a proxy may write the
    cassette or its journal. The kernel drops it when the process dies, even by ``kill -9``,
    so a journal whose lock is free was left by a crash and is safe to fold in."""

    def __init__(self, cassette: Path) -> None:
        self.cassette = cassette
        self.path = lock_path(cassette)
        self._fd = -1

    def acquire(self) -> bool:
        """Take the lock if it is free; False if another process holds it."""
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise CassetteFileError(
                    f"cannot create {str(self.path)!r} beside the cassette ({exc.strerror}), "
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

    def refusal(self) -> CassetteLocked:
        """The error for a proxy that would record the cassette while another process does."""
        return CassetteLocked(
            f"cassette {str(self.cassette)!r} is being recorded by process {self.holder()}; "
            "two proxies recording one cassette would lose each other's interactions. Give "
            "each its own cassette, or replay it (--record-mode none)"
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


def _encode_body(body: bytes) -> dict[str, str]:
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode("ascii")}


def _decode_body(encoded: dict[str, str]) -> bytes:
    if "base64" in encoded:
        return base64.b64decode(encoded["base64"])
    return encoded["text"].encode("utf-8")


@dataclass(frozen=True, slots=True)
class JournalHeader:
    record_mode: str
    match_on: tuple[str, ...]


class Journal:
    """Append-only log of interactions recorded in this run."""

    def __init__(self, path: Path, header: JournalHeader) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise CassetteFileError(f"cannot open journal {str(path)!r}: {exc.strerror}") from exc
        if os.fstat(self._fd).st_size == 0:
            self._write(
                orjson.dumps(
                    {
                        "journal": JOURNAL_VERSION,
                        "record_mode": header.record_mode,
                        "match_on": header.match_on,
                    }
                )
            )

    def _write(self, line: bytes) -> None:
        data = memoryview(line + b"\n")
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def append(self, interaction: Interaction) -> None:
        request = interaction.request
        self._write(
            orjson.dumps(
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
                    },
                }
            )
        )

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_journal(path: Path) -> tuple[JournalHeader, list[Interaction]] | None:
    """The header and the complete interactions of a journal; a torn last line is dropped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CassetteFileError(f"cannot read journal {str(path)!r}: {exc.strerror}") from exc
    lines = raw.split(b"\n")
    try:
        head = orjson.loads(lines[0])
        header = JournalHeader(str(head["record_mode"]), tuple(head["match_on"]))
        version = head["journal"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise CassetteFileError(
            f"journal {str(path)!r} has no valid header line; it is left untouched"
        ) from exc
    if version != JOURNAL_VERSION:
        raise CassetteFileError(
            f"journal {str(path)!r} is version {version!r}; this proxy reads version "
            f"{JOURNAL_VERSION}. It is left untouched: fold it in with the version that wrote it"
        )
    interactions = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
            req, resp = entry["request"], entry["response"]
            request = VcrRequest(
                req["method"], req["uri"], _decode_body(req["body"]), dict(req["headers"])
            )
            interactions.append(
                Interaction(
                    request=request,
                    status=int(resp["status"]),
                    reason=str(resp["reason"]),
                    headers=tuple((str(n), str(v)) for n, v in resp["headers"]),
                    body=_decode_body(resp["body"]),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if number == len(lines):
                break  # the last line was torn by a crash mid-write: its response never left
            raise CassetteFileError(
                f"journal {str(path)!r} line {number} is corrupt ({exc}); it is left untouched"
            ) from exc
    return header, interactions
