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
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Protocol

import orjson
import yaml
from vcr.request import Request as VcrRequest
from vcr.serialize import _looks_like_an_old_cassette, _warn_about_old_cassette_format, serialize
from vcr.serializers import compat, jsonserializer, yamlserializer

from cassette_proxy import yaml_reader
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


def _flattened(headers: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for name, values in (headers or {}).items():
        for value in values if isinstance(values, list) else [values]:
            pairs.append((str(name), str(value)))
    return tuple(pairs)


def _response_dict(interaction: Interaction) -> dict[str, Any]:
    return {
        "status": {"code": interaction.status, "message": interaction.reason},
        "headers": _grouped(interaction.headers),
        "body": {"string": interaction.body},
    }


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
    data: Any = _UNPARSED
    try:
        data = serializer.deserialize(source)
        del source
        return _interactions(data)
    except (yaml.YAMLError, orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CassetteFileError(
            f"cassette {str(path)!r} is not a vcrpy cassette this proxy can load: "
            f"{_what_is_wrong(exc, data)}. It is left untouched: fix it, or move it away to "
            "record a new one"
        ) from exc


_UNPARSED: Final = object()
_EXPECTED: Final = (
    "vcrpy's format is a mapping with 'version: 1' and 'interactions', a list of "
    "{request: {method, uri, body, headers}, response: {status: {code, message}, headers, "
    "body: {string}}}"
)


def _what_is_wrong(exc: Exception, data: Any) -> str:
    """A load failure in words: where the text does not parse, or what the shape lacks."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"at line {mark.line + 1}, column {mark.column + 1}"
        if isinstance(exc, yaml.constructor.ConstructorError):  # !!python/... : never trusted
            return f"{exc.problem} {where}; vcrpy's safe loader refuses it, and so does the proxy"
        return f"not valid YAML, {exc.problem} {where}"
    if isinstance(exc, yaml.YAMLError | json.JSONDecodeError) or data is _UNPARSED:
        kind = "JSON" if isinstance(exc, json.JSONDecodeError) else "YAML"
        return f"not valid {kind} ({str(exc).strip() or type(exc).__name__})"
    if not isinstance(data, dict):
        wrong = f"the file holds {_a(data)}"
    elif not isinstance(data.get("interactions"), list):
        wrong = "it has no 'interactions' list"
    elif isinstance(exc, KeyError):
        wrong = f"an interaction has no {exc.args[0]!r}"
    elif isinstance(exc, TypeError):
        wrong = f"an interaction is incomplete or has a value of the wrong type ({exc})"
    else:
        return str(exc).strip() or type(exc).__name__  # vcrpy's own words (an old format)
    return f"{wrong}; {_EXPECTED}"


def _a(value: Any) -> str:
    names = {int: "a number", float: "a number", list: "a list", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


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
