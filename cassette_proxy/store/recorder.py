"""The cassette as the proxy uses it: record-mode policy over memory
(:mod:`cassette_proxy.store.cassette`), the file (:mod:`cassette_proxy.store.persist`) and the
journal (:mod:`cassette_proxy.store.journal`).

Record modes keep vcrpy's meaning (``vcr/record_mode.py``, ``vcr/cassette.py``):

========  =====================================  ==============================================
mode      replays                                records (forwards misses)
========  =====================================  ==============================================
once      if the cassette file existed           if it did not (then nothing is replayed)
new_...   hits                                   misses
none      hits                                   never: a miss is answered 501
all       never                                  everything; on save, re-recorded interactions
                                                 replace the loaded ones they match
========  =====================================  ==============================================

One deliberate difference: vcrpy's ``new_episodes`` replays an interaction recorded earlier in
the same run; here only interactions loaded from the file are replayed, so a run that makes the
same request twice records it twice and replays the same way later.

A save never undoes a change made to the file while the proxy ran (``cassette redact``, an
edit): if the file is no longer the one loaded, the recordings are folded into what is there
now. If what is there now cannot be read, the journal is kept, and the error says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from vcr.request import Request as VcrRequest
from yarl import URL

from cassette_proxy.errors import CassetteFileError, CassetteMiss, RecordingFailed
from cassette_proxy.kept import remembered
from cassette_proxy.matching.hints import SERVE, Hints
from cassette_proxy.matching.matchers import Key, Lookup, Matcher
from cassette_proxy.models.http import ProxyRequest, ProxyResponse, Timing, UndecodableBody
from cassette_proxy.redact import redact_bytes, redact_header, redact_path, redact_text
from cassette_proxy.settings import DEFAULT_MATCH_ON, RecordMode, Settings
from cassette_proxy.store.cassette import Cassette, Interaction
from cassette_proxy.store.journal import (
    CassetteLock,
    Journal,
    JournalHeader,
    journal_path,
    read_journal,
)
from cassette_proxy.store.persist import (
    FileState,
    file_state,
    read_cassette,
    serialized,
    write_atomically,
)

_ALWAYS_RECORD = frozenset({RecordMode.NEW_EPISODES, RecordMode.ALL})


@dataclass(frozen=True, slots=True)
class Policy:
    replay: bool
    record: bool

    @classmethod
    def of(cls, mode: RecordMode, *, existed: bool) -> Policy:
        if mode is RecordMode.ONCE:
            return cls(replay=existed, record=not existed)
        if mode is RecordMode.NEW_EPISODES:
            return cls(replay=True, record=True)
        if mode is RecordMode.NONE:
            return cls(replay=True, record=False)
        return cls(replay=False, record=True)


@dataclass(frozen=True, slots=True)
class Summary:
    """What happened to the cassette in this run (logged when the proxy stops)."""

    cassette: str
    loaded: int
    recorded: int
    played: int
    never_played: int
    saved: int | None  # interactions written on close, None if the file was not touched


@dataclass(frozen=True, slots=True)
class Journalled:
    """A cassette with the interactions of a crashed run's journal, that run's record mode, and
    the state of the cassette file they were read beside."""

    cassette: Cassette
    mode: RecordMode
    loaded_from: FileState | None


def _journalled(path: Path) -> Journalled | None:
    """The cassette with the interactions of a journal left beside it by a crashed run, and the
    record mode that run had; None if there is no journal."""
    found = read_journal(journal_path(path))
    if found is None:
        return None
    loaded = read_cassette(path)
    if found.header is None or not found.interactions:  # nothing whole was journalled
        match_on: tuple[str, ...] = DEFAULT_MATCH_ON
        mode, recorded = RecordMode.NEW_EPISODES, []
    else:
        match_on, mode = found.header.match_on, RecordMode(found.header.record_mode)
        recorded = found.interactions
    cassette = Cassette(
        path, Matcher(match_on), loaded=loaded.interactions or [], recorded=recorded
    )
    return Journalled(cassette, mode, loaded.state)


def recover(path: Path) -> int:
    """Fold a journal left by a crashed run into its cassette; the number of interactions saved."""
    journalled = _journalled(path)
    if journalled is None:
        return 0
    if journalled.cassette.recorded:
        _save(journalled.cassette, journalled.mode, journalled.loaded_from)
    journal_path(path).unlink()
    return len(journalled.cassette.recorded)


def _folded(cassette: Cassette, mode: RecordMode) -> list[Interaction]:
    """What a save writes: in ``all`` mode, re-recorded interactions replace those they match."""
    if mode is RecordMode.ALL:
        return cassette.replaced_by_recorded()
    return cassette.loaded + cassette.recorded


SAVE_ATTEMPTS: Final = 5


def _save(cassette: Cassette, mode: RecordMode, loaded_from: FileState | None) -> int:
    """Write the cassette: what was loaded (``loaded_from``) and what was recorded. If the file
    changed since it was loaded, the recordings are folded into the file as it is now, and if it
    changes while this is written, that is done again. The number of interactions written."""
    path = cassette.path
    for _ in range(SAVE_ATTEMPTS):
        now = file_state(path)
        if now != loaded_from:
            changed = read_cassette(path)
            now = changed.state
            cassette = Cassette(
                path,
                cassette.matcher,
                loaded=changed.interactions or [],
                recorded=cassette.recorded,
            )
        interactions = _folded(cassette, mode)
        if write_atomically(path, serialized(path, interactions), only_if=now):
            return len(interactions)
        loaded_from = now
    raise CassetteFileError(
        f"cannot save cassette {str(path)!r}: it changed each of the {SAVE_ATTEMPTS} times the "
        "proxy tried to fold its recordings in"
    )


def recording_of(response: ProxyResponse) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """Headers and body as stored: decoded (vcrpy's ``decode_compressed_response``) and
    redacted. A body that does not decode is stored as it came, with its label."""
    headers = [(str(name), redact_header(name, value)) for name, value in response.headers.items()]
    body = response.body
    try:
        decoded = response.decoded_body()
    except UndecodableBody:
        decoded = None
    if decoded is not None and decoded is not body:
        body = decoded
        headers = [(n, v) for n, v in headers if n.lower() != "content-encoding"]
    body = redact_bytes(body)  # a fingerprint is seldom as long as the secret it replaces
    headers.append(("Content-Length", str(len(body))))
    return tuple(headers), body


def _count(interactions: int) -> str:
    return f"{interactions} interaction{'' if interactions == 1 else 's'}"


class Recorder:
    """One cassette, opened under a record mode, for the lifetime of the proxy."""

    def __init__(self, settings: Settings) -> None:
        """Open the cassette. Only a proxy that will record touches the disk: it takes the lock
        (refused if another process records the cassette), folds in a journal left by a crash,
        and opens its own journal. A replayer reads the cassette and creates nothing, so it
        works from a read-only folder. A start-up that fails leaves no file behind."""
        assert settings.cassette is not None
        self.path = settings.cassette
        self.mode = settings.record_mode
        self.upstream = settings.upstream_base
        self._lock = CassetteLock(self.path)
        self._key = remembered(maxsize=1024, max_chars=6 * 1024)(self._key_of)
        upstream = URL(self.upstream, encoded=True)
        self._origin = str(upstream.origin())
        self._prefix = upstream.raw_path.rstrip("/")
        self._journal: Journal | None = None
        self.hints: Hints = SERVE  # the pytest plugin gives its own
        try:
            loaded = self._open()
            self.cassette = Cassette(
                self.path,
                Matcher(settings.match_on),
                allow_playback_repeats=settings.allow_playback_repeats,
                loaded=loaded,
            )
            # Opened now, so an unwritable folder stops start-up instead of the first recording.
            if self.policy.record:
                header = JournalHeader(self.mode.value, settings.match_on)
                self._journal = Journal(journal_path(self.path), header)
        except BaseException:
            self._lock.release()
            raise

    def _open(self) -> list[Interaction]:
        """Lock if this run will record, fold in a crashed run's journal, and load."""
        # Refused before the cassette is parsed when this mode will record whatever it holds.
        if self.mode in _ALWAYS_RECORD or (self.mode is RecordMode.ONCE and not self.path.exists()):
            self._lock_to_record()
        self.recovered, unfolded = self._recover()
        self._loaded_from: FileState | None = None
        if unfolded is not None:
            loaded: list[Interaction] | None = unfolded
        else:
            read = read_cassette(self.path)
            loaded, self._loaded_from = read.interactions, read.state
        self.existed = loaded is not None
        self.policy = Policy.of(self.mode, existed=self.existed)
        if self.policy.record and not self._lock.held:  # once, over an empty file
            self._lock_to_record()
            read = read_cassette(self.path)
            loaded, self._loaded_from = read.interactions, read.state
        elif not self.policy.record:
            self._lock.release()  # taken by once, which found a cassette recovered from a journal
        return loaded or []

    def _lock_to_record(self) -> None:
        if not self._lock.acquire():
            raise self._lock.refusal()

    def _recover(self) -> tuple[int, list[Interaction] | None]:
        """Fold in a journal left by a crashed run, when no live proxy can be writing it: the
        number of interactions recovered, and the interactions to replay if the journal could
        not be folded in because the folder is read-only (it is then left as it is)."""
        if self._lock.held:
            return recover(self.path), None
        if not journal_path(self.path).exists():
            return 0, None
        try:
            locked = self._lock.acquire()
        except CassetteFileError:  # a read-only folder: replay the journal from memory
            journalled = _journalled(self.path)
            if journalled is None:
                return 0, None
            recovered = journalled.cassette
            return len(recovered.recorded), _folded(recovered, journalled.mode)
        if not locked:
            return 0, None  # a live recorder is writing it
        try:
            return recover(self.path), None
        finally:
            self._lock.release()

    def play(self, request: ProxyRequest) -> Interaction | None:
        """The next recorded interaction for the request as it arrived, or None (a miss, or a
        mode that does not replay)."""
        if not self.policy.replay:
            return None
        return self.cassette.play_key(self._key(request.method, request.raw_path, request.body))

    def _key_of(self, method: str, raw_path: str, body: bytes) -> Key:
        """The match key of a request as it arrived. Remembered for the last 1,024 requests
        whose path and body together are 6 KiB at most (``self._key``): a request seen again is
        found without redacting, parsing or projecting it."""
        return self.cassette.matcher.key(self.lookup(method, raw_path, body))

    def lookup(self, method: str, raw_path: str, body: bytes) -> Lookup:
        """What matching reads of a request as the cassette would store it: the upstream's
        absolute URI and the body, secrets redacted. No matcher reads headers, so none are
        redacted, and no vcrpy ``Request`` is built."""
        if raw_path.endswith("?") or "#" in raw_path:  # yarl drops these: parse as it would
            path_qs = URL(self.upstream + raw_path, encoded=True).raw_path_qs
        else:
            path_qs = self._prefix + raw_path
        return Lookup(method, self._origin + redact_path(path_qs), redact_bytes(body))

    def record(
        self, request: VcrRequest, response: ProxyResponse, timing: Timing | None = None
    ) -> Interaction:
        """Keep ``response`` (and when it arrived) for ``request``, durably, before the client
        gets its last byte."""
        assert self._journal is not None, "record() in a mode that does not record"
        headers, body = recording_of(response)
        # The reason phrase is the upstream's free text too (a key can be echoed there).
        reason = redact_text(response.reason)
        interaction = Interaction(request, response.status, reason, headers, body, timing=timing)
        try:
            self._journal.append(interaction)
        except (OSError, TypeError, ValueError) as exc:
            raise RecordingFailed(
                f"the upstream answered {request.method} {request.uri} with "
                f"{response.status}, but the proxy could not record it in "
                f"{str(self._journal.path)!r} ({type(exc).__name__}: {exc}); the response "
                "was not passed on whole, because the recording promise could not be kept"
            ) from exc
        self.cassette.record(interaction)
        return interaction

    def miss(self, request: VcrRequest) -> CassetteMiss:
        """The 501 for a request the cassette cannot answer and this mode cannot record."""
        why = (
            "the record mode 'once' found an existing cassette, so it only replays"
            if self.mode is RecordMode.ONCE
            else f"the record mode {self.mode.value!r} does not record"
        )
        return CassetteMiss(
            f"cassette-proxy found no recorded response for {request.method} {request.uri} "
            f"in cassette {str(self.path)!r} ({_count(len(self.cassette.loaded))}; record "
            f"mode {self.mode.value!r}; matching on {', '.join(self.cassette.matcher.names)}), "
            f"and {why}. {self.cassette.explain_miss(request, self.upstream, self.hints)}"
        )

    def _save(self) -> int:
        try:
            return _save(self.cassette, self.mode, self._loaded_from)
        except CassetteFileError as exc:
            raise CassetteFileError(
                f"{exc}. The {_count(len(self.cassette.recorded))} recorded in this run stay in "
                f"{str(journal_path(self.path))!r} and are folded in when a proxy next starts "
                "on this cassette"
            ) from exc

    def close(self) -> Summary:
        """Save what was recorded (atomically), retire the journal, release the lock.

        If saving fails, the journal stays, the error says so, and the next start folds it in."""
        saved = None
        try:
            if self.cassette.recorded:
                saved = self._save()
            if self._journal is not None:
                self._journal.close()
                journal_path(self.path).unlink(missing_ok=True)
        finally:
            if self._journal is not None:
                self._journal.close()
            self._lock.release()
        return Summary(
            cassette=str(self.path),
            loaded=len(self.cassette.loaded),
            recorded=len(self.cassette.recorded),
            played=self.cassette.played,
            never_played=len(self.cassette.never_played),
            saved=saved,
        )
