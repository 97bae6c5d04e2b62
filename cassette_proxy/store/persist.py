"""Cassette files on disk: vcrpy's format in, vcrpy's format out.

- The cassette is read and written with vcrpy's own serializers (``vcr.serialize``,
  ``vcr.serializers.yamlserializer`` with its safe loader, or ``jsonserializer`` for ``.json``),
  so vcrpy loads what the proxy writes and the proxy loads what vcrpy recorded. YAML is read
  through :mod:`cassette_proxy.store.yaml_reader`, which gives vcrpy's result several times faster
  (5x on the bench's 10,000-interaction file).
  The shapes a response takes inside, and how each is read, are
  :mod:`cassette_proxy.store.vcrpy_format`'s; the proxy writes today's.
- What vcrpy refuses, the proxy refuses, in one line; what vcrpy loads but the proxy cannot
  replay is refused in one line too, naming the interaction and saying that vcrpy loads it.
- Writes are atomic: a temporary file beside the cassette, fsynced, then renamed over it. The
  temporary file has an unpredictable name and is created exclusively, never through a symlink
  (``O_EXCL|O_NOFOLLOW``), and a cassette reached through a symlink is written at its target,
  the link kept.
- A file is read together with its :class:`FileState`, so a later save can tell whether someone
  (``cassette redact``, an editor) changed it in between (:func:`write_atomically`'s ``only_if``).

The journal that makes recording durable between saves is :mod:`cassette_proxy.store.journal`.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime
import gc
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlparse

import orjson
import yaml
from vcr.request import HeadersDict
from vcr.request import Request as VcrRequest
from vcr.serialize import _looks_like_an_old_cassette, serialize
from vcr.serializers import compat, jsonserializer, yamlserializer

from cassette_proxy.errors import CassetteFileError
from cassette_proxy.matching.matchers import body_bytes
from cassette_proxy.models.http import Timing
from cassette_proxy.store import vcrpy_format, yaml_reader
from cassette_proxy.store.cassette import Interaction


class Serializer(Protocol):
    """vcrpy's serializer interface (``vcr/serializers``)."""

    def serialize(self, cassette_dict: dict[str, Any]) -> str: ...

    def deserialize(self, cassette_string: str | bytes) -> dict[str, Any]: ...


class _Json:
    """vcrpy's JSON serializer, writing text as UTF-8 characters, not ``\\uXXXX`` escapes
    (JSON is Unicode: vcrpy's ``json.loads`` reads either the same)."""

    @staticmethod
    def deserialize(cassette_string: str | bytes) -> dict[str, Any]:
        loaded: dict[str, Any] = jsonserializer.deserialize(cassette_string)
        return loaded

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        try:
            return json.dumps(cassette_dict, indent=4, ensure_ascii=False) + "\n"
        except TypeError:
            return str(jsonserializer.serialize(cassette_dict))  # raises vcrpy's own error


def serializer_for(path: Path) -> Serializer:
    """The serializer the proxy reads and writes ``path`` with (by its suffix)."""
    chosen: Serializer = _Json() if path.suffix.lower() == ".json" else yaml_reader
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
    response: dict[str, Any] = {
        "status": {"code": interaction.status, "message": interaction.reason},
        "headers": _grouped(interaction.headers),
        "body": {"string": interaction.body},
    }
    if interaction.timing is not None:
        response["timing"] = timing_dict(interaction.timing)
    if interaction.recorded_at is not None:
        response["recorded_at"] = interaction.recorded_at
    return response


def timing_dict(timing: Timing) -> dict[str, Any]:
    """How a recording's timing is stored beside it: vcrpy's stubs read only ``status``,
    ``headers`` and ``body`` of a response, so vcrpy loads and replays the cassette as ever."""
    return {"headers_ms": timing.headers_ms, "frames": [list(frame) for frame in timing.frames]}


# The longest wait a recorded timing may ask for: a day. A larger one, a NaN, an infinity or a
# negative one was not measured by a proxy (a hand or a tool wrote it).
_LONGEST_MS: Final = 86_400_000.0


def _ms(value: Any) -> float:
    if type(value) not in {int, float}:
        raise TypeError(f"{value!r} is not a number")
    ms = float(value)
    if not 0.0 <= ms <= _LONGEST_MS:  # False for a NaN, too
        raise ValueError(f"{value!r} is not a time from 0 to a day in ms")
    return ms


def timing_of(stored: Any) -> Timing | None:
    """The timing stored beside a recording, or None (a cassette vcrpy wrote, or a bad one:
    timing is a nicety, so a malformed one replays without it rather than refusing the file).
    Malformed: not numbers, or a time that is not from 0 to a day (a NaN, an infinity, a negative
    one: each would stop a timed replay with an error, or hold it without end)."""
    if not isinstance(stored, dict):
        return None
    try:
        frames = []
        for end, at in stored.get("frames") or ():
            if type(end) is not int or end < 0:
                return None
            frames.append((end, _ms(at)))
        return Timing(_ms(stored["headers_ms"]), tuple(frames))
    except (KeyError, TypeError, ValueError):
        return None


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
        timing=timing_of(response.get("timing")),
        recorded_at=recorded_at_of(response.get("recorded_at")),
    )


def recorded_at_of(stored: Any) -> str | None:
    """When a recording was made, as stored beside it (ISO 8601; a YAML timestamp a hand left
    unquoted too), or None: like the timing, a nicety that never refuses a file."""
    if isinstance(stored, datetime.datetime):
        moment = stored if stored.tzinfo else stored.replace(tzinfo=datetime.UTC)
        return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return stored if isinstance(stored, str) else None


_REQUEST_FIELDS: Final = frozenset({"method", "uri", "body", "headers"})


def _request(fields: Any) -> VcrRequest:
    """``Request._from_dict(fields)``, as vcrpy builds it. A request in today's shape (text
    method and URI, a text or bytes body or none, headers mapping text names to lists of text)
    is built without ``Request.__init__``, whose header handling (a ``MutableMapping.update``)
    cost a third of loading it: the same attributes, set to what ``__init__`` sets them to."""
    if type(fields) is dict and fields.keys() == _REQUEST_FIELDS:
        method, uri, body = fields["method"], fields["uri"], fields["body"]
        store = _header_store(fields["headers"])
        if (
            store is not None
            and type(method) is str
            and type(uri) is str
            and (body is None or type(body) is str or type(body) is bytes)
        ):
            request: VcrRequest = VcrRequest.__new__(VcrRequest)
            request.method = method
            request._uri = uri
            request.parsed_uri = urlparse(uri)
            request._was_file = request._was_iter = False
            request._body = body.encode("utf-8") if type(body) is str else body
            headers = HeadersDict.__new__(HeadersDict)
            headers._store = store
            request._headers = headers
            return request
    return VcrRequest._from_dict(fields)


def _header_store(headers: Any) -> dict[str, tuple[str, str]] | None:
    """What ``HeadersDict(headers)`` keeps (its ``_store``), or None unless every name is text
    and every value a list that starts with text."""
    if type(headers) is not dict:
        return None
    store: dict[str, tuple[str, str]] = {}
    for given, values in headers.items():
        if type(given) is not str or type(values) is not list or not values:
            return None
        value = values[0]  # HeadersDict keeps the first value, under the first spelling
        if type(value) is not str:
            return None
        lowered = given.lower()
        seen = store.get(lowered)
        store[lowered] = (given if seen is None else seen[0], value)
    return store


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
        request = _request(entry["request"])
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


@dataclass(frozen=True, slots=True)
class FileState:
    """Which file is at a path and how it was last changed: any write, rename or ``cassette
    redact`` gives another state (``st_ctime`` cannot be set back by anyone)."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> FileState:
        return cls(
            status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns
        )


def file_state(path: Path) -> FileState | None:
    """The state of the file at ``path`` now (symlinks followed), None if there is none."""
    try:
        return FileState.of(path.stat())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CassetteFileError(f"cannot read cassette {str(path)!r}: {exc.strerror}") from exc


@dataclass(frozen=True, slots=True)
class LoadedCassette:
    """The interactions read from a cassette (None if it does not exist or is empty, vcrpy's
    rule), and the state of the file they were read from (None if there was none)."""

    interactions: list[Interaction] | None
    state: FileState | None


def load_cassette(path: Path) -> list[Interaction] | None:
    """The interactions in ``path``, or None if it does not exist or is empty (vcrpy's rule)."""
    return read_cassette(path).interactions


def read_cassette(path: Path) -> LoadedCassette:
    """The interactions in ``path`` and the state of the file they came from."""
    try:
        with path.open("rb") as file:
            state = FileState.of(os.fstat(file.fileno()))
            # Read into the call, so that the bytes can be freed as soon as they are parsed.
            with _no_collections():
                return LoadedCassette(_parsed(path, file.read()), state)
    except FileNotFoundError:
        return LoadedCassette(None, None)
    except OSError as exc:
        raise CassetteFileError(f"cannot read cassette {str(path)!r}: {exc.strerror}") from exc


@contextlib.contextmanager
def _no_collections() -> Iterator[None]:
    """No garbage collection while a cassette is read: it makes about ten objects a line of
    the file, none of them garbage, and the collector would walk all of them again each time
    their number grew by a quarter (a tenth of the load time of 10,000 interactions)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parsed(path: Path, raw: bytes) -> list[Interaction] | None:
    serializer = serializer_for(path)
    if not raw or raw.isspace():
        return None
    # One copy of the file in memory while it is parsed, none once the interactions are built:
    # libyaml reads UTF-8 bytes as they are (it would copy a str), json reads a str.
    source: str | bytes
    if serializer is yaml_reader:
        if not raw.isascii():  # ASCII is UTF-8
            _check_utf8(raw, path)
        source = raw
    else:
        source = _decoded(raw, path)
    del raw
    data: Any = _UNPARSED
    try:
        data = serializer.deserialize(source)
        del source
        return _checked(_interactions(data))
    except _BeforeVersionOne:
        raise _before_version_one(path) from None
    except vcrpy_format.UnusableInteraction as exc:
        raise CassetteNotReplayable(
            f"cassette {str(path)!r}: vcrpy loads it, but cassette-proxy cannot replay "
            f"interaction {exc.where[1]} ({exc.pointer}): {exc.problem}; it is left untouched: "
            "fix or delete that interaction, or move the cassette away to record a new one",
            exc.pointer,
        ) from exc
    # What vcrpy's loader refuses, and what a tampered file makes the building of interactions
    # raise: an infinite status (an OverflowError), nesting deeper than Python's stack.
    except (*_VCRPY_REFUSALS, LookupError, ArithmeticError, RecursionError) as exc:
        if isinstance(exc, yaml.constructor.ConstructorError) and _PRE_1_0_TAG in str(exc):
            raise _before_version_one(path) from exc
        raise CassetteFileError(
            f"cassette {str(path)!r} is not a vcrpy cassette this proxy can load: "
            f"{_what_is_wrong(exc, data)}. It is left untouched: fix it, or move it away to "
            "record a new one"
        ) from exc


def _checked(interactions: list[Interaction]) -> list[Interaction]:
    for index, interaction in enumerate(interactions):
        problem = replay_problem(interaction)
        if problem is not None:
            raise vcrpy_format.UnusableInteraction(("interactions", index), problem)
    return interactions


def storable_problem(interaction: Interaction) -> str | None:
    """What would make the cassette reader refuse ``interaction`` once it is written (a line
    break in a header or the reason phrase, a header name HTTP cannot carry, a status that is
    no number from 100 to 999), or stop it from being replayed; None if nothing would. Asked of
    what comes from elsewhere than a cassette (a journal), so that folding it in can never write
    a cassette the next read refuses."""
    try:
        vcrpy_format.check_request(interaction.request)
        vcrpy_format.read_response(_response_dict(interaction))
    except vcrpy_format.UnusableInteraction as exc:
        return f"{exc.pointer}: {exc.problem}"
    return replay_problem(interaction)


def replay_problem(interaction: Interaction) -> str | None:
    """What would stop ``interaction`` from being matched and replayed, or None. vcrpy's loader
    takes any types, and a wrong one would otherwise fail on the request path, as a 500."""
    if not 100 <= interaction.status <= 599:
        return f"its status {interaction.status} is not an HTTP status"
    if not isinstance(interaction.body, bytes):
        return f"its response body is {type(interaction.body).__name__}, not text"
    return _request_problem(interaction.request)


def _request_problem(request: VcrRequest) -> str | None:
    if not isinstance(request.method, str) or not request.method:
        return f"its request method is {request.method!r}, not a method name"
    if not isinstance(request.uri, str):
        return f"its request URI is {type(request.uri).__name__}, not text"
    if ":" in request.parsed_uri.netloc:  # else the port is the scheme's
        try:
            request.port  # noqa: B018 - parses the port, as matching will
        except ValueError as exc:
            return f"its request URI {request.uri!r} has a bad port ({exc})"
    body = request.body
    if body is not None and type(body) is not bytes:
        try:
            body_bytes(request)  # as matching will read it
        except TypeError as exc:
            return f"its request body is not text ({exc})"
    # The names and values as HeadersDict keeps them, without its slow Mapping methods.
    odd = [
        name
        for name, value in request.headers._store.values()
        if not isinstance(name, str) or not _is_text(value)
    ]
    return f"its request header {odd[0]!r} is not text" if odd else None


def _is_text(value: object) -> bool:
    """A string, or bytes in UTF-8 (as vcrpy's matchers decode them)."""
    if isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    return isinstance(value, str)


def _before_version_one(path: Path) -> CassetteFileError:
    return CassetteFileError(
        f"cassette {str(path)!r} is in vcrpy's format from before 1.0 (a list of interactions, "
        "no 'version: 1'), which vcrpy refuses too; it is left untouched: convert it with "
        f"'python -m vcr.migration {path}' (which rewrites it in place: keep a copy), or move it "
        "away to record a new one"
    )


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
        return f"not valid {kind} ({' '.join(str(exc).split()) or type(exc).__name__})"
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


def serialized(path: Path, interactions: list[Interaction]) -> str:
    """``interactions`` in vcrpy's format, as ``path`` is written (YAML, or JSON by suffix)."""
    text: str = serialize(
        {
            "requests": [i.request for i in interactions],
            "responses": [_response_dict(i) for i in interactions],
        },
        serializer_for(path),
    )
    return text


def save_cassette(path: Path, interactions: list[Interaction]) -> None:
    """Write ``interactions`` to ``path`` in vcrpy's format, atomically."""
    write_atomically(path, serialized(path, interactions))


ANY_STATE: Final = "any"
_TEMPORARY_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_atomically(
    path: Path, data: str, *, only_if: FileState | Literal["any"] | None = ANY_STATE
) -> bool:
    """Replace ``path`` with ``data``: a temporary file beside it, fsynced, renamed over it. The
    file keeps its permissions (a private cassette stays private). Through a symlink, the target
    is replaced and the link kept.

    With ``only_if``, the rename happens only if the file is still in that state (None: still
    absent) just before it; otherwise nothing is written and the result is False.
    """
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    fd, temporary = _create_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:  # "\n" stays "\n"
            if mode is not None:
                os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if only_if != ANY_STATE and not _still(path, only_if):
            temporary.unlink()
            return False
        temporary.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise CassetteFileError(f"cannot write cassette {str(path)!r}: {exc.strerror}") from exc
    _fsync_directory(path.parent)
    return True


def _still(path: Path, state: FileState | None) -> bool:
    try:
        return FileState.of(path.stat()) == state
    except FileNotFoundError:
        return state is None
    except OSError:
        return False  # cannot tell: the caller reads the file again, and says what is wrong


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path``, under a name no one can guess, made by this call: a symlink
    or file planted at any name makes the proxy pick another name, never write through it."""
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(temporary, _TEMPORARY_FLAGS, 0o666), temporary
        except FileExistsError:
            continue
        except OSError as exc:
            raise CassetteFileError(f"cannot write cassette {str(path)!r}: {exc.strerror}") from exc
    raise CassetteFileError(
        f"cannot write cassette {str(path)!r}: 100 new names beside it were all taken"
    )


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
