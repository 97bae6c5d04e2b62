"""Cassette files on disk: vcrpy's format in, vcrpy's format out.

- The cassette is read and written with vcrpy's own serializers (``vcr.serialize``,
  ``vcr.serializers.yamlserializer`` with its safe loader, or ``jsonserializer`` for ``.json``),
  so vcrpy loads what the proxy writes and the proxy loads what vcrpy recorded. YAML is read
  through :mod:`cassette_proxy.yaml_reader`, which gives vcrpy's result about four times faster.
- Writes are atomic: a temporary file beside the cassette, fsynced, then renamed over it.

The journal that makes recording durable between saves is :mod:`cassette_proxy.journal`.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson
import yaml
from vcr.request import Request as VcrRequest
from vcr.serialize import _looks_like_an_old_cassette, _warn_about_old_cassette_format, serialize
from vcr.serializers import compat, jsonserializer, yamlserializer

from cassette_proxy import yaml_reader
from cassette_proxy.cassette import Interaction
from cassette_proxy.errors import CassetteFileError
from cassette_proxy.models.http import Timing


class Serializer(Protocol):
    """vcrpy's serializer interface (``vcr/serializers``)."""

    def serialize(self, cassette_dict: dict[str, Any]) -> str: ...

    def deserialize(self, cassette_string: str | bytes) -> dict[str, Any]: ...


def serializer_for(path: Path) -> Serializer:
    """The serializer the proxy reads and writes ``path`` with (by its suffix)."""
    chosen: Serializer = jsonserializer if path.suffix.lower() == ".json" else yaml_reader
    return chosen


def vcrpy_serializer_for(path: Path) -> Serializer:
    """The serializer vcrpy itself would use for ``path``: for checking that vcrpy loads it."""
    chosen: Serializer = jsonserializer if path.suffix.lower() == ".json" else yamlserializer
    return chosen


# -- conversion between Interaction and vcrpy's dicts ---------------------------------------------


def _grouped(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    names: dict[str, str] = {}  # lower -> first spelling seen
    for name, value in headers:
        grouped.setdefault(names.setdefault(name.lower(), name), []).append(value)
    return grouped


def _flattened(headers: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for name, values in (headers or {}).items():
        for value in values if isinstance(values, list) else [values]:
            pairs.append((str(name), str(value)))
    return tuple(pairs)


def _response_dict(interaction: Interaction) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": {"code": interaction.status, "message": interaction.reason},
        "headers": _grouped(interaction.headers),
        "body": {"string": interaction.body},
    }
    if interaction.timing is not None:
        response["timing"] = timing_dict(interaction.timing)
    return response


def timing_dict(timing: Timing) -> dict[str, Any]:
    """How a recording's timing is stored beside it: vcrpy's stubs read only ``status``,
    ``headers`` and ``body`` of a response, so vcrpy loads and replays the cassette as ever."""
    return {"headers_ms": timing.headers_ms, "frames": [list(frame) for frame in timing.frames]}


def timing_of(stored: Any) -> Timing | None:
    """The timing stored beside a recording, or None (a cassette vcrpy wrote, or a bad one:
    timing is a nicety, so a malformed one replays without it rather than refusing the file)."""
    if not isinstance(stored, dict):
        return None
    try:
        frames = tuple((int(end), float(at)) for end, at in stored.get("frames") or ())
        return Timing(float(stored["headers_ms"]), frames)
    except (KeyError, TypeError, ValueError):
        return None


def _interaction(request: VcrRequest, response: dict[str, Any]) -> Interaction:
    body = response.get("body", {}).get("string") or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    status = response["status"]
    return Interaction(
        request=request,
        status=int(status["code"]),
        reason=str(status.get("message") or ""),
        headers=_flattened(response.get("headers", {})),
        body=body,
        timing=timing_of(response.get("timing")),
    )


def _interactions(data: Any) -> list[Interaction]:
    """The interactions of a parsed cassette, built with vcrpy's own pieces, as
    ``vcr.serialize.deserialize`` builds them (vcrpy 9.x; the pyproject pins <10). Each raw
    entry is released once it is built, so the parsed document and the interactions are never
    both whole in memory."""
    if _looks_like_an_old_cassette(data):
        _warn_about_old_cassette_format()  # vcrpy's ValueError, in its words
    raw = data["interactions"]
    built: list[Interaction] = []
    for index, entry in enumerate(raw):
        raw[index] = None
        request = VcrRequest._from_dict(entry["request"])
        built.append(_interaction(request, compat.convert_to_bytes(entry["response"])))
    return built


# -- the cassette file ----------------------------------------------------------------------------


def load_cassette(path: Path) -> list[Interaction] | None:
    """The interactions in ``path``, or None if it does not exist or is empty (vcrpy's rule)."""
    serializer = serializer_for(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CassetteFileError(f"cannot read cassette {str(path)!r}: {exc.strerror}") from exc
    if not raw or raw.isspace():
        return None
    # One copy of the file in memory while it is parsed, none once the interactions are built:
    # libyaml reads UTF-8 bytes as they are (it would copy a str), json reads a str.
    source: str | bytes
    if serializer is yaml_reader:
        _check_utf8(raw, path)
        source = raw
    else:
        source = _decoded(raw, path)
    del raw
    try:
        data = serializer.deserialize(source)
        del source
        return _interactions(data)
    except (yaml.YAMLError, orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CassetteFileError(
            f"cassette {str(path)!r} is not a vcrpy cassette this proxy can load ({detail}); "
            "it is left untouched: fix it, or move it away to record a new one"
        ) from exc


def _not_utf8(path: Path, offset: int) -> CassetteFileError:
    return CassetteFileError(
        f"cassette {str(path)!r} is not UTF-8 text (byte {offset}); it is left untouched"
    )


def _decoded(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc.start) from exc


def _check_utf8(raw: bytes, path: Path, chunk: int = 1 << 20) -> None:
    """Raise if ``raw`` is not UTF-8, without holding a decoded copy of it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    for start in range(0, len(raw), chunk):
        held = len(decoder.getstate()[0])  # bytes of a character begun in the last chunk
        try:
            decoder.decode(view[start : start + chunk], final=start + chunk >= len(raw))
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, start - held + exc.start) from exc


def save_cassette(path: Path, interactions: list[Interaction]) -> None:
    """Write ``interactions`` to ``path`` in vcrpy's format, atomically."""
    data = serialize(
        {
            "requests": [i.request for i in interactions],
            "responses": [_response_dict(i) for i in interactions],
        },
        serializer_for(path),
    )
    write_atomically(path, data)


def write_atomically(path: Path, data: str) -> None:
    """Replace ``path`` with ``data``: a temporary file beside it, fsynced, renamed over it. The
    file keeps its permissions (a private cassette stays private)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    try:
        with temporary.open("w", encoding="utf-8", newline="") as file:  # "\n" stays "\n"
            if mode is not None:
                os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise CassetteFileError(f"cannot write cassette {str(path)!r}: {exc.strerror}") from exc
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
