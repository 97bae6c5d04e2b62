"""The cassette as the proxy uses it: record-mode policy over memory
(:mod:`cassette_proxy.cassette`), the file (:mod:`cassette_proxy.persist`) and the journal
(:mod:`cassette_proxy.journal`).

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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vcr.request import Request as VcrRequest

from cassette_proxy.cassette import Cassette, Interaction
from cassette_proxy.errors import CassetteFileError, CassetteMiss, RecordingFailed
from cassette_proxy.hints import SERVE, Hints
from cassette_proxy.journal import CassetteLock, Journal, JournalHeader, journal_path, read_journal
from cassette_proxy.matching import Matcher
from cassette_proxy.models.http import ProxyResponse, UndecodableBody, decode_body
from cassette_proxy.persist import load_cassette, save_cassette
from cassette_proxy.redact import redact_bytes, redact_header
from cassette_proxy.settings import RecordMode, Settings

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


def _journalled(path: Path) -> tuple[Cassette, RecordMode] | None:
    """The cassette with the interactions of a journal left beside it by a crashed run, and the
    record mode that run had; None if there is no journal."""
    found = read_journal(journal_path(path))
    if found is None:
        return None
    header, recorded = found
    loaded = load_cassette(path) or []
    cassette = Cassette(path, Matcher(header.match_on), loaded=loaded, recorded=recorded)
    return cassette, RecordMode(header.record_mode)


def recover(path: Path) -> int:
    """Fold a journal left by a crashed run into its cassette; the number of interactions saved."""
    journalled = _journalled(path)
    if journalled is None:
        return 0
    cassette, mode = journalled
    _save(cassette, mode)
    journal_path(path).unlink()
    return len(cassette.recorded)


def _folded(cassette: Cassette, mode: RecordMode) -> list[Interaction]:
    """What a save writes: in ``all`` mode, re-recorded interactions replace those they match."""
    if mode is RecordMode.ALL:
        return cassette.replaced_by_recorded()
    return cassette.loaded + cassette.recorded


def _save(cassette: Cassette, mode: RecordMode) -> int:
    interactions = _folded(cassette, mode)
    save_cassette(cassette.path, interactions)
    return len(interactions)


def recording_of(response: ProxyResponse) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """Headers and body as stored: decoded (vcrpy's ``decode_compressed_response``) and
    redacted. A body that does not decode is stored as it came, with its label."""
    headers = [(str(name), redact_header(name, value)) for name, value in response.headers.items()]
    body = response.body
    try:
        decoded = decode_body(response.headers, body)
    except UndecodableBody:
        decoded = None
    if decoded is not None and decoded is not body:
        body = decoded
        headers = [(n, v) for n, v in headers if n.lower() != "content-encoding"]
    headers.append(("Content-Length", str(len(body))))
    return tuple(headers), redact_bytes(body)


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
        loaded = unfolded if unfolded is not None else load_cassette(self.path)
        self.existed = loaded is not None
        self.policy = Policy.of(self.mode, existed=self.existed)
        if self.policy.record and not self._lock.held:  # once, over an empty file
            self._lock_to_record()
            loaded = load_cassette(self.path)
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
            cassette, mode = journalled
            return len(cassette.recorded), _folded(cassette, mode)
        if not locked:
            return 0, None  # a live recorder is writing it
        try:
            return recover(self.path), None
        finally:
            self._lock.release()

    def play(self, request: VcrRequest) -> Interaction | None:
        return self.cassette.play(request) if self.policy.replay else None

    def record(self, request: VcrRequest, response: ProxyResponse) -> Interaction:
        """Keep ``response`` for ``request``, durably, before the client sees it."""
        assert self._journal is not None, "record() in a mode that does not record"
        headers, body = recording_of(response)
        interaction = Interaction(request, response.status, response.reason, headers, body)
        try:
            self._journal.append(interaction)
        except (OSError, TypeError, ValueError) as exc:
            raise RecordingFailed(
                f"the upstream answered {request.method} {request.uri} with "
                f"{response.status}, but the proxy could not record it in "
                f"{str(self._journal.path)!r} ({type(exc).__name__}: {exc}); the response "
                "was not passed on, because the recording promise could not be kept"
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
            f"and {why}. {self.cassette.explain_miss(request, self.upstream, self.hints)}\n"
            + self.hints.record()
        )

    def close(self) -> Summary:
        """Save what was recorded (atomically), retire the journal, release the lock.

        If saving fails, the journal stays, and the next start folds it in."""
        saved = None
        if self.cassette.recorded:
            saved = _save(self.cassette, self.mode)
        if self._journal is not None:
            self._journal.close()
            journal_path(self.path).unlink(missing_ok=True)
        self._lock.release()
        return Summary(
            cassette=str(self.path),
            loaded=len(self.cassette.loaded),
            recorded=len(self.cassette.recorded),
            played=self.cassette.played,
            never_played=len(self.cassette.never_played),
            saved=saved,
        )
