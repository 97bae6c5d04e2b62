"""Which cassette a request uses, and changing it while the proxy runs.

- **The proxy's cassette** (:attr:`Pipeline.recorder <cassette_proxy.serving.handler.Pipeline>`):
  opened at start (``--cassette``), replaced by ``PUT /_proxy/cassette``, and put back by
  ``DELETE`` to what the proxy started with (the start-up cassette, read again, or none).
- **Per-request cassettes** (``--cassette-dir DIR``): a request carrying
  ``X-Cassette-Proxy-Cassette: NAME`` is recorded to or replayed from ``DIR/NAME.yaml``, each
  with its own playback position and lock, opened on first use; at most :data:`MAX_OPEN` stay
  open (beyond, the least recently used with nothing in flight is saved and closed).

Every cassette is a :class:`~cassette_proxy.store.recorder.Recorder`, so loading one at run time
is as durable as at start (the journal, atomic saves, the one-recorder lock). A request keeps the
cassette it was given: a replay has its interaction before anything can change, and a recording
holds its recorder (:attr:`Recorder.in_flight`) until it is journalled. A cassette that is
replaced is closed, and saved, once its recordings in flight have ended (up to
``--shutdown-timeout``), and the control request that replaced it is answered then. Replacing a
cassette with the same file (another record mode, say) must close it before opening it again,
since one process holds its lock: requests for it wait meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from multidict import istr
from pydantic import ValidationError

from cassette_proxy.errors import (
    CassetteFileError,
    CassetteLocked,
    CassetteNameRefused,
    CassetteUnavailable,
    ControlRejected,
    StartupError,
)
from cassette_proxy.matching.hints import REWIND, ControlHints, Hints, ServeHints
from cassette_proxy.models.http import (
    CASSETTE_HEADER,
    CASSETTE_NAME_RULE,
    MAX_CASSETTE_NAME,
    cassette_name,
)
from cassette_proxy.serving.observers.log import AuditLog
from cassette_proxy.settings import CASSETTE_OPTIONS, SECRET_OPTIONS, GivenSettings, Settings
from cassette_proxy.store.filters import RecordFilters
from cassette_proxy.store.recorder import Recorder, Summary, refuse_a_missing_cassette

if TYPE_CHECKING:
    from cassette_proxy.serving.handler import Pipeline

# Found case-insensitively without lowering it on every request (~10 ns instead of ~45).
CASSETTE_KEY: Final = istr(CASSETTE_HEADER)
MAX_OPEN: Final = 64  # per-request cassettes open at once (each may hold a lock and a journal)
_SUFFIXES: Final = (".yaml", ".yml", ".json")
DRAIN_POLL: Final = 0.01  # seconds between looks at a replaced cassette's recordings in flight


def checked_name(name: str, outcome: str = "nothing was forwarded") -> str:
    """A per-request cassette's name as the proxy knows it (:func:`cassette_name`), or
    :class:`CassetteNameRefused` saying why not, and ``outcome``."""
    known = cassette_name(name)
    if known is None:
        shown = name[:MAX_CASSETTE_NAME] + ("..." if len(name) > MAX_CASSETTE_NAME else "")
        raise CassetteNameRefused(
            f"{CASSETTE_HEADER}: {shown!r} is not a cassette name: {CASSETTE_NAME_RULE}; {outcome}"
        )
    return known


@dataclass(frozen=True, slots=True)
class Closed:
    """A cassette taken out: what its run did, or, if it is not closed yet, why."""

    path: str
    summary: Summary | None  # None: not closed yet (recordings in flight), or the save failed
    in_flight: int = 0  # recordings still running when the answer was given
    error: str | None = None  # the save failed: why (the recordings stay in its journal)


@dataclass(frozen=True, slots=True)
class Changed:
    """What a change did: the cassette now loaded (None: pass-through), and the one before."""

    current: Recorder | None
    previous: Closed | None


class Cassettes:
    """The proxy's cassette and the per-request ones, opened, replaced and closed here."""

    def __init__(
        self,
        pipeline: Pipeline,
        log: AuditLog,
        filters: RecordFilters | None = None,
        hints: Hints | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._log = log
        self._filters = filters  # the pytest plugin's hooks and words, for every cassette opened
        self._hints = hints
        self.startup = pipeline.settings  # what DELETE goes back to, and options' defaults
        folder = self.startup.cassette_dir
        self.folder = folder.resolve() if folder is not None else None
        self._named: OrderedDict[str, Recorder] = OrderedDict()  # least recently used first
        self._busy: dict[str | None, asyncio.Event] = {}  # slots being changed: requests wait
        self._retired: set[Recorder] = set()  # replaced, closed once their recordings end
        # Open, and not closed yet: each is closed once, whichever path closes it.
        self._live: set[Recorder] = {pipeline.recorder} if pipeline.recorder else set()
        self._closing: set[asyncio.Task[None]] = set()
        self._changing = asyncio.Lock()  # one control change at a time
        self.on_change: Callable[[], None] = lambda: None  # the proxy's cassette starts or stops
        # being changed (the request path then looks here)

    @property
    def changing(self) -> bool:
        """The proxy's cassette is being replaced: requests without a name wait for it."""
        return None in self._busy

    def named(self) -> list[str]:
        """The per-request cassettes open, least recently used first."""
        return list(self._named)

    def current(self, name: str | None) -> Recorder | None:
        """The cassette of a slot (None: the proxy's), without opening one."""
        return self._pipeline.recorder if name is None else self._named.get(name)

    # The request path.

    async def for_request(self, name: str | None) -> Recorder | None:
        """The cassette a request uses: the proxy's, or the one its name picks (opened on first
        use). Waits while that cassette is being replaced."""
        while (busy := self._busy.get(name)) is not None:
            await busy.wait()
        if name is None:
            return self._pipeline.recorder
        recorder = self._named.get(name)
        if recorder is not None:
            self._named.move_to_end(name)
            return recorder
        async with self._slot(name):
            recorder = self._named.get(name)  # opened meanwhile by a request that came first
            if recorder is None:
                settings = self.settings_for(name, {})
                rewind = f"{REWIND} with {CASSETTE_HEADER}: {name}"
                hints = ServeHints(rewind=rewind) if settings.admin and not self._hints else None
                recorder = await self._open(settings, by="request", name=name, hints=hints)
                assert recorder is not None
                self._named[name] = recorder
        await self._evict(keep=name)
        return recorder

    # What the control API does.

    def settings_for(self, name: str | None, options: dict[str, Any]) -> Settings:
        """A cassette's settings: the options given (``path`` is the cassette's; for a name,
        its file under ``--cassette-dir``), the rest as the proxy was started with."""
        allowed = {"path"} | (CASSETTE_OPTIONS - {"cassette"})
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ControlRejected(
                f"unknown option(s) {', '.join(map(repr, unknown))}; a cassette takes "
                f"{', '.join(sorted(allowed))}"
            )
        given = {key: value for key, value in options.items() if key != "path"}
        if name is not None:
            if "path" in options:
                raise ControlRejected(
                    f"the {CASSETTE_HEADER} header names this cassette: give no 'path'"
                )
            given["cassette"] = self._file_of(name)
        elif "path" in options:
            given["cassette"] = self._path_of(options["path"])
        elif self.startup.cassette is not None:
            given["cassette"] = self.startup.cassette
        else:
            raise ControlRejected("give the cassette's 'path' (a .yaml, .yml or .json file)")
        values = {field: getattr(self.startup, field) for field in Settings.model_fields}
        try:
            return GivenSettings(**(values | given))
        except ValidationError as error:
            first = error.errors()[0]
            where = "/".join(str(part) for part in first["loc"]) or "options"
            where = "path" if where == "cassette" else where
            message = first["msg"].removeprefix("Value error, ")
            raise ControlRejected(f"invalid cassette option {where}: {message}") from None

    async def load(self, name: str | None, options: dict[str, Any]) -> Changed:
        """``PUT``: open a cassette in a slot's place, saving the one there first; one to replay
        that does not exist is refused, as at start-up (every request would be a 501)."""
        settings = self.settings_for(name, options)
        try:
            refuse_a_missing_cassette(settings, record_first='"record_mode": "once"')
        except StartupError as exc:
            raise CassetteUnavailable(f"{exc}; nothing changed") from exc
        hints = self._hints or _control_hints(name, options, settings)  # the plugin's: its own
        return await self._replace(name, settings, hints)

    async def unload(self, name: str | None) -> Changed:
        """``DELETE``: save and close a slot's cassette; the proxy's goes back to its start-up
        cassette (read again), or to pass-through if it had none."""
        back = self.startup if name is None and self.startup.cassette is not None else None
        # The start-up cassette read again, in the words it was opened with (serve --admin's).
        hints = self._hints or ServeHints(rewind=REWIND)
        return await self._replace(name, back, hints)

    def rewind(self, name: str | None) -> Recorder | None:
        """Start a slot's playback over; its cassette, or None if there is none."""
        recorder = self.current(name)
        if recorder is not None:
            recorder.cassette.rewind()
            self._log.lifecycle("cassette_rewound", cassette=str(recorder.path), name=name)
        return recorder

    async def close(self) -> None:
        """At the proxy's stop (its own cassette is closed by the application): close the
        per-request cassettes and those replaced, saving what they recorded."""
        for task in list(self._closing):
            task.cancel()
        for recorder in [*self._named.values(), *self._retired]:
            if recorder in self._live:
                self._live.discard(recorder)
                self._summarised(recorder, self._saved(recorder))
        self._named.clear()
        self._retired.clear()

    # How.

    async def _replace(
        self, name: str | None, settings: Settings | None, hints: Hints | None = None
    ) -> Changed:
        async with self._changing:
            old = self.current(name)
            same = (
                old is not None
                and settings is not None
                and settings.cassette is not None
                and old.path.resolve() == settings.cassette.resolve()
            )
            if not same:  # the new one opens first: requests never wait
                new = await self._open(settings, by="control", name=name, hints=hints)
                self._set(name, new)
                return Changed(new, await self._retire(old))
            assert old is not None
            async with self._slot(name):
                if not await self._drained(old):
                    raise CassetteUnavailable(
                        f"cassette {str(old.path)!r} still has {old.in_flight} recording(s) in "
                        f"flight after {self.startup.shutdown_timeout:g} s "
                        "(--shutdown-timeout), so it cannot be closed and opened again yet; "
                        "nothing changed. Try again once they have ended"
                    )
                closed = await self._closed(old)
                try:
                    new = await self._open(settings, by="control", name=name, hints=hints)
                except CassetteUnavailable:
                    self._set(name, await self._reopen(old))  # as it was, if it still opens
                    raise
                self._set(name, new)
                return Changed(new, closed)

    async def _open(
        self, settings: Settings | None, *, by: str, name: str | None, hints: Hints | None = None
    ) -> Recorder | None:
        """A cassette opened (off the event loop: reading a large one takes a while), and
        logged; a file that cannot be opened is the control request's (or request's) 409.
        ``hints``: how its misses advise (by default, the proxy's own way)."""
        if settings is None or settings.cassette is None:
            return None
        try:
            recorder = await asyncio.to_thread(
                Recorder, settings, self._filters, hints or self._hints
            )
        except CassetteLocked as exc:
            raise CassetteUnavailable(self._locked(settings.cassette, exc)) from exc
        except StartupError as exc:
            raise CassetteUnavailable(
                f"cassette-proxy cannot open cassette {str(settings.cassette)!r}: {exc}"
            ) from exc
        self._live.add(recorder)
        log_opened(self._log, recorder, by=by, name=name)
        return recorder

    def _locked(self, path: Path, exc: CassetteLocked) -> str:
        """Why a cassette cannot be recorded: another process records it, or this one does."""
        mine = [r for r in self._live if r.policy.record and r.path.resolve() == path.resolve()]
        if not mine:
            return f"cassette-proxy cannot open cassette {str(path)!r}: {exc}"
        names = [name for name, r in self._named.items() if r is mine[0]]
        where = f"the per-request cassette {names[0]!r}" if names else "the proxy's cassette"
        return (
            f"cassette {str(path)!r} is being recorded by this proxy already, as {where}; one "
            "file has one recorder. Use another file, or replay it (record_mode 'none')"
        )

    async def _reopen(self, old: Recorder) -> Recorder | None:
        try:
            return await self._open(old.settings, by="control", name=None, hints=old.hints)
        except CassetteUnavailable as exc:
            self._log.lifecycle("cassette_lost", cassette=str(old.path), error=exc.message)
            return None

    def _set(self, name: str | None, recorder: Recorder | None) -> None:
        if name is None:
            self._pipeline.recorder = recorder
        elif recorder is None:
            self._named.pop(name, None)
        else:
            self._named[name] = recorder
            self._named.move_to_end(name)

    async def _retire(self, old: Recorder | None) -> Closed | None:
        """Close a cassette taken out of its slot, once its recordings in flight have ended;
        if they outlast ``--shutdown-timeout``, it closes when they do (or at the stop)."""
        if old is None:
            return None
        self._retired.add(old)
        if await self._drained(old):
            return await self._closed(old)
        task = asyncio.ensure_future(self._close_when_drained(old))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return Closed(str(old.path), None, in_flight=old.in_flight)

    async def _close_when_drained(self, old: Recorder) -> None:
        # in_flight is a plain counter on the request path (no wake-up to pay for on every
        # recording), so it is looked at, rarely: a replaced cassette is closed once.
        while old.in_flight:  # noqa: ASYNC110
            await asyncio.sleep(DRAIN_POLL * 10)
        await self._closed(old)

    async def _drained(self, recorder: Recorder) -> bool:
        """Whether its recordings in flight ended within ``--shutdown-timeout``."""
        deadline = asyncio.get_running_loop().time() + self.startup.shutdown_timeout
        while recorder.in_flight:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(DRAIN_POLL)
        return True

    async def _closed(self, recorder: Recorder) -> Closed:
        """Close (save) a cassette, off the event loop, and log it; once only."""
        if recorder not in self._live:  # closed already (replaced while being evicted, say)
            return Closed(str(recorder.path), None)
        self._live.discard(recorder)
        return self._summarised(recorder, await asyncio.to_thread(self._saved, recorder))

    @staticmethod
    def _saved(recorder: Recorder) -> Summary | str:
        """Close a cassette: its summary, or why the save failed (said, not raised: the
        recordings stay in its journal, folded in when it is next opened)."""
        try:
            return recorder.close()
        except CassetteFileError as exc:
            return str(exc)

    def _summarised(self, recorder: Recorder, outcome: Summary | str) -> Closed:
        self._retired.discard(recorder)
        if isinstance(outcome, str):
            self._log.lifecycle("cassette_not_saved", cassette=str(recorder.path), error=outcome)
            return Closed(str(recorder.path), None, error=outcome)
        log_closed(self._log, outcome)
        return Closed(str(recorder.path), outcome)

    async def _evict(self, keep: str) -> None:
        """Beyond :data:`MAX_OPEN` per-request cassettes, save and close the least recently used
        that have no recording in flight (none may: then more stay open for a while)."""
        while len(self._named) > MAX_OPEN:
            idle = next(
                (
                    name
                    for name, recorder in self._named.items()
                    if name != keep and not recorder.in_flight and name not in self._busy
                ),
                None,
            )
            if idle is None:
                return
            async with self._slot(idle):
                recorder = self._named.pop(idle, None)
                if recorder is not None:
                    await self._closed(recorder)

    @contextlib.asynccontextmanager
    async def _slot(self, name: str | None) -> AsyncIterator[None]:
        """Hold a slot while its cassette is opened or closed: requests for it wait."""
        while (busy := self._busy.get(name)) is not None:
            await busy.wait()
        event = self._busy[name] = asyncio.Event()
        if name is None:
            self.on_change()
        try:
            yield
        finally:
            del self._busy[name]
            event.set()
            if name is None:
                self.on_change()

    def serves_names(self, outcome: str = "nothing was forwarded") -> Path:
        """The folder of per-request cassettes, or the refusal of a request that names one,
        saying ``outcome``."""
        if self.folder is None:
            raise CassetteNameRefused(
                f"this proxy was started without --cassette-dir, so it has no per-request "
                f"cassettes: the {CASSETTE_HEADER} header cannot be served; {outcome}. Start "
                "it with --cassette-dir DIR"
            )
        return self.folder

    def _file_of(self, name: str) -> Path:
        """``DIR/NAME.yaml`` (or NAME as it is, with its own suffix), never outside DIR."""
        folder = self.serves_names()
        name = checked_name(name)
        file = name if name.lower().endswith(_SUFFIXES) else f"{name}.yaml"
        return self._inside(folder / file, name)

    def _path_of(self, path: object) -> Path:
        """A ``PUT``'s path: under ``--cassette-dir`` when the proxy has one (relative to it,
        and never outside it), else relative to the proxy's working folder."""
        if not isinstance(path, str) or not path:
            raise ControlRejected(f"'path' must be a file name, not {path!r}")
        if self.folder is None:
            return Path(path)
        return self._inside(self.folder / path, path)

    def _inside(self, path: Path, given: str) -> Path:
        assert self.folder is not None
        if not path.resolve().is_relative_to(self.folder):  # symlinks resolved too
            raise CassetteNameRefused(
                f"cassette {given!r} is outside --cassette-dir {str(self.folder)!r} (or a "
                "symlink there points out of it); cassettes are read and written under it only"
            )
        return path


def log_opened(log: AuditLog, recorder: Recorder, **detail: Any) -> None:
    """The ``cassette_opened`` event, at start and whenever a cassette is loaded."""
    log.lifecycle(
        "cassette_opened",
        cassette=str(recorder.path),
        record_mode=recorder.mode.value,
        interactions=len(recorder.cassette.loaded),
        replays=recorder.policy.replay,
        records=recorder.policy.record,
        recovered_from_journal=recorder.recovered,
        expired=recorder.expired.describe() if recorder.expired else None,
        **{key: value for key, value in detail.items() if value is not None},
    )


def _control_hints(name: str | None, options: dict[str, Any], settings: Settings) -> ControlHints:
    """A PUT's cassette advises that PUT again: its options as checked (``"/a,/b"`` given for
    ``match_ignore`` is the list it means), ``path`` as given."""
    put = "PUT /_proxy/cassette" + (f" with {CASSETTE_HEADER}: {name}" if name else "")
    checked = settings.model_dump(mode="json", include=set(options) & CASSETTE_OPTIONS)
    given = {"path": options["path"]} if "path" in options else {}
    return ControlHints.of(put, given | checked, SECRET_OPTIONS)


def log_closed(log: AuditLog, summary: Summary) -> None:
    """The ``cassette_closed`` event, at the stop and whenever a cassette is taken out."""
    log.lifecycle(
        "cassette_closed",
        cassette=summary.cassette,
        loaded=summary.loaded,
        recorded=summary.recorded,
        played=summary.played,
        recorded_never_played=summary.never_played,
        saved=summary.saved,
        unused=list(summary.unused),
        dropped=summary.dropped,
        discarded=summary.discarded,
    )


def iter_open(cassettes: Cassettes) -> Iterator[tuple[str, Recorder]]:
    """The per-request cassettes open, with their names."""
    for name in cassettes.named():
        recorder = cassettes.current(name)
        if recorder is not None:
            yield name, recorder
