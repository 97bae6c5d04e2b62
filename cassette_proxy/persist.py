"""Cassette files on disk: vcrpy's format in, vcrpy's format out.

- The cassette is read and written with vcrpy's own serializers (``vcr.serialize``,
  ``vcr.serializers.yamlserializer`` with its safe loader, or ``jsonserializer`` for ``.json``),
  so vcrpy loads what the proxy writes and the proxy loads what vcrpy recorded. YAML is read
  through :mod:`cassette_proxy.yaml_reader`, which gives vcrpy's result about four times faster.
  The shapes a response takes inside, and how each is read, are
  :mod:`cassette_proxy.vcrpy_format`'s; the proxy writes today's.
- What vcrpy refuses, the proxy refuses, in one line; what vcrpy loads but the proxy cannot
  replay is refused in one line too, naming the interaction and saying that vcrpy loads it.
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
from typing import Any, Final, Protocol

import orjson
import yaml
from vcr.request import Request as VcrRequest
from vcr.serialize import _looks_like_an_old_cassette, serialize
from vcr.serializers import compat, jsonserializer, yamlserializer

from cassette_proxy import vcrpy_format, yaml_reader
from cassette_proxy.cassette import Interaction
from cassette_proxy.errors import CassetteFileError


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


def _response_dict(interaction: Interaction) -> dict[str, Any]:
    return {
        "status": {"code": interaction.status, "message": interaction.reason},
        "headers": _grouped(interaction.headers),
        "body": {"string": interaction.body},
    }


def _interaction(request: VcrRequest, response: dict[str, Any]) -> Interaction:
    vcrpy_format.check_request(request)
    recorded = vcrpy_format.read_response(response)  # in any shape vcrpy's stubs wrote
    body = recorded.body
    return Interaction(
        request=request,
        status=recorded.status,
        reason=recorded.reason,
        headers=recorded.headers,
        body=body,
    )


def _interactions(data: Any) -> list[Interaction]:
    """The interactions of a parsed cassette, built with vcrpy's own pieces, as
    ``vcr.serialize.deserialize`` builds them (vcrpy 9.x; the pyproject pins <10). Each raw
    entry is released once it is built, so the parsed document and the interactions are never
    both whole in memory.

    vcrpy's errors propagate; the first interaction the proxy cannot replay is raised once
    vcrpy's pieces have built every entry, so a file vcrpy refuses is never reported as the
    proxy's limit."""
    if _looks_like_an_old_cassette(data):
        raise _BeforeVersionOne
    raw = data["interactions"]
    if not isinstance(raw, list):  # a !!python/tuple, which vcrpy iterates as well
        raw = list(raw)
    built: list[Interaction] = []
    unusable: vcrpy_format.UnusableInteraction | None = None
    for index, entry in enumerate(raw):
        raw[index] = None
        request = VcrRequest._from_dict(entry["request"])
        response = compat.convert_to_bytes(entry["response"])
        if unusable is not None:
            continue  # vcrpy's pieces go on; nothing more is built
        try:
            built.append(_interaction(request, response))
        except vcrpy_format.UnusableInteraction as exc:
            unusable = exc.within("interactions", index)
    if unusable is not None:
        raise unusable
    return built


# -- the cassette file ----------------------------------------------------------------------------

# What vcrpy's loader raises on a file it refuses: the parsers' errors, and those its own pieces
# (``Request._from_dict``, ``compat.convert_to_bytes``) raise on a shape they cannot build.
_VCRPY_REFUSALS: Final = (
    yaml.YAMLError,
    orjson.JSONDecodeError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
)
# The tag vcrpy before 1.0 wrote its requests with; its migration script strips it.
_PRE_1_0_TAG: Final = "python/object:vcr.request.Request"


class CassetteNotReplayable(CassetteFileError):
    """vcrpy loads the cassette, but the proxy cannot replay one of its interactions."""

    def __init__(self, message: str, pointer: str) -> None:
        super().__init__(message)
        self.pointer = pointer  # into the cassette: /interactions/3/response/status/code


class _BeforeVersionOne(Exception):
    """vcrpy's format before 1.0: a list of interactions, which vcrpy refuses too."""


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
    except _BeforeVersionOne:
        raise _before_version_one(path) from None
    except vcrpy_format.UnusableInteraction as exc:
        raise CassetteNotReplayable(
            f"cassette {str(path)!r}: vcrpy loads it, but cassette-proxy cannot replay "
            f"interaction {exc.where[1]} ({exc.pointer}): {exc.problem}; it is left untouched: "
            "fix or delete that interaction, or move the cassette away to record a new one",
            exc.pointer,
        ) from exc
    except _VCRPY_REFUSALS as exc:
        if isinstance(exc, yaml.constructor.ConstructorError) and _PRE_1_0_TAG in str(exc):
            raise _before_version_one(path) from exc
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CassetteFileError(
            f"cassette {str(path)!r} is not a vcrpy cassette this proxy can load ({detail}); "
            "it is left untouched: fix it, or move it away to record a new one"
        ) from exc


def _before_version_one(path: Path) -> CassetteFileError:
    return CassetteFileError(
        f"cassette {str(path)!r} is in vcrpy's format from before 1.0 (a list of interactions, "
        "no 'version: 1'), which vcrpy refuses too; it is left untouched: convert it with "
        f"'python -m vcr.migration {path}' (which rewrites it in place: keep a copy), or move it "
        "away to record a new one"
    )


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
