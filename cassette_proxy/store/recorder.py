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

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import orjson
from multidict import CIMultiDictProxy
from vcr.request import Request as VcrRequest
from yarl import URL

from cassette_proxy.errors import (
    CassetteExpired,
    CassetteFileError,
    CassetteMiss,
    ChainBroken,
    RecordingFailed,
    StartupError,
)
from cassette_proxy.kept import remembered
from cassette_proxy.matching.hints import SERVE, Hints
from cassette_proxy.matching.ignore import Ignore
from cassette_proxy.matching.matchers import Key, Lookup, Matcher, withheld
from cassette_proxy.models.http import ProxyRequest, ProxyResponse, Timing
from cassette_proxy.settings import DEFAULT_MATCH_ON, ExpiryAction, RecordMode, Settings
from cassette_proxy.store import hygiene
from cassette_proxy.store.cassette import Cassette, Interaction, volatile_advice
from cassette_proxy.store.filters import RecordFilters
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
from cassette_proxy.store.placeholders import Substitution
from cassette_proxy.store.shaping import ShapedRequest, Shaper

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
    unused: tuple[str, ...] = ()  # the loaded interactions never played (in a mode that plays)
    dropped: int = 0  # of them, left out of the file (drop_unused_requests)
    discarded: int = 0  # recorded in this run but not saved (a failing test's)


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


def _folded(cassette: Cassette, mode: RecordMode, drop_unused: bool = False) -> list[Interaction]:
    """What a save writes: in ``all`` mode, re-recorded interactions replace those they match;
    with ``drop_unused`` (vcrpy's ``drop_unused_requests``), loaded ones never played are left
    out (in ``all``, every loaded one: nothing plays there)."""
    if drop_unused:
        if mode is RecordMode.ALL:
            return list(cassette.recorded)
        played = zip(cassette.loaded, cassette.play_counts, strict=True)
        return [i for i, count in played if count] + cassette.recorded
    if mode is RecordMode.ALL:
        return cassette.replaced_by_recorded()
    return cassette.loaded + cassette.recorded


SAVE_ATTEMPTS: Final = 5


def _save(
    cassette: Cassette, mode: RecordMode, loaded_from: FileState | None, drop_unused: bool = False
) -> int:
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
                view=cassette.view,
            )
            drop_unused = False  # what was played was another file's
        interactions = _folded(cassette, mode, drop_unused)
        if write_atomically(path, serialized(path, interactions), only_if=now):
            return len(interactions)
        loaded_from = now
    raise CassetteFileError(
        f"cannot save cassette {str(path)!r}: it changed each of the {SAVE_ATTEMPTS} times the "
        "proxy tried to fold its recordings in"
    )


def _count(interactions: int) -> str:
    return f"{interactions} interaction{'' if interactions == 1 else 's'}"


class Outgoing(Protocol):
    """A request as sent upstream (:class:`cassette_proxy.serving.upstream.OutboundRequest`)."""

    @property
    def method(self) -> str: ...
    @property
    def url(self) -> URL: ...
    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Matched:
    """What matching made of a request: its key, the substitution that hid its values (which
    fills a replayed response), and, for custom matchers, the request as recorded."""

    key: Key
    substitution: Substitution
    request: VcrRequest | None = None


def _request_size(
    method: str, raw_path: str, body: bytes, folders: str, headers: tuple[tuple[str, str], ...]
) -> int:
    """The characters a remembered lookup holds (its path, body, folder and other headers)."""
    size = len(raw_path) + len(body) + len(folders)
    if headers:
        size += sum(len(name) + len(value) for name, value in headers)
    return size


# A request continues an earlier response by these (the Responses and Conversations APIs).
_CONTINUES: Final = ("previous_response_id", "conversation")
_RESPONSE_ID: Final = re.compile(rb'"id"\s*:\s*"([^"\\]{1,200})"')


def _continued_ids(body: bytes) -> list[str]:
    """The ids a request body continues from (``previous_response_id``, ``conversation``)."""
    if b"previous_response_id" not in body and b"conversation" not in body:
        return []
    try:
        params = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(params, dict):
        return []
    ids = []
    for name in _CONTINUES:
        value = params.get(name)
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, str):
            ids.append(value)
    return ids


def _response_id(response: ProxyResponse) -> str | None:
    """The id of a recorded response (its first ``"id"``: a Response's, or the one in a
    stream's ``response.created``), once per recording."""
    if "response_id" not in response.memo:
        found = _RESPONSE_ID.search(response.body[:4096])
        response.memo["response_id"] = found[1].decode("utf-8", "replace") if found else None
    value = response.memo["response_id"]
    return value if isinstance(value, str) else None


class Recorder:
    """One cassette, opened under a record mode, for the lifetime of the proxy."""

    def __init__(
        self, settings: Settings, filters: RecordFilters | None = None, hints: Hints | None = None
    ) -> None:
        """Open the cassette. Only a proxy that will record touches the disk: it takes the lock
        (refused if another process records the cassette), folds in a journal left by a crash,
        and opens its own journal. A replayer reads the cassette and creates nothing, so it
        works from a read-only folder. A start-up that fails leaves no file behind.

        ``filters``: vcrpy's hooks given as functions (the pytest plugin's); the declarative
        ones come from ``settings``. ``hints``: how advice is worded (``serve``'s flags by
        default)."""
        assert settings.cassette is not None
        self.settings = settings  # its options; a cassette loaded at run time has its own
        self.path = settings.cassette
        # Recordings in flight (counted by the request path): a cassette swapped out at run
        # time is closed only once they have ended, so each finishes on the cassette it began on.
        self.in_flight = 0
        self.mode = settings.record_mode
        self.upstream = settings.upstream_base
        self._lock = CassetteLock(self.path)
        self.filters = RecordFilters.of(settings, filters)
        self.shaper = Shaper(settings, self.filters)
        self.matcher = Matcher(
            settings.match_on,
            ignore=Ignore(settings.match_ignore),
            headers=settings.match_headers,
            custom=self.filters.custom_matchers,
        )
        self._key = remembered(maxsize=1024, max_chars=6 * 1024, size=_request_size)(self._match_of)
        self._functions = self.filters.has_functions()
        self._reads_headers = self.shaper.reads_headers
        # The request play() matched last, and what it made of it: replayed() runs for the
        # same request right after, with no await between (handler.handle, then replay).
        self._last: tuple[ProxyRequest | None, Matched | None] = (None, None)
        self._journal: Journal | None = None
        self.hints: Hints = hints or SERVE  # the pytest plugin gives its own
        self.keep_recorded = True  # False: what this run recorded is not saved (a failed test)
        # The ids of the responses replayed in this run, in the order they were first played.
        self._replayed_ids: list[str | None] = []
        self.expired: hygiene.Expiry | None = None
        self.summary: Summary | None = None  # once closed
        try:
            loaded = self._open()
            self.cassette = Cassette(
                self.path,
                self.matcher,
                allow_playback_repeats=settings.allow_playback_repeats,
                loaded=loaded,
                view=self._view,
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
        self._expire(loaded or [])
        self.policy = Policy.of(self.mode, existed=self.existed)
        if self.policy.record and not self._lock.held:  # once, over an empty file
            self._lock_to_record()
            read = read_cassette(self.path)
            loaded, self._loaded_from = read.interactions, read.state
        elif not self.policy.record:
            self._lock.release()  # taken by once, which found a cassette recovered from a journal
        return loaded or []

    def _expire(self, loaded: list[Interaction]) -> None:
        """``--re-record-interval``: a cassette past it warns (``expired`` says so), fails, or
        is recorded again (in ``all``; a record mode that records nothing only warns)."""
        self.expired = hygiene.expiry(self.settings, loaded, self.path, self.existed)
        if self.expired is None:
            return
        action = self.expired.action
        if action is ExpiryAction.FAIL:
            raise CassetteExpired(
                f"{self.expired.describe()}, and re_record_action is 'fail'. "
                + self.hints.rerecord(chain=False)
            )
        if action is ExpiryAction.RECORD and self.mode is not RecordMode.NONE:
            self.mode = RecordMode.ALL

    def _lock_to_record(self) -> None:
        if not self._lock.acquire():
            raise self._lock.refusal(self.hints.replay_only())

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
        """The next recorded interaction for the request as it arrived, or None (a miss, a
        mode that does not replay, or a request a hook says the cassette ignores)."""
        return self._find(request, use_up=True)

    def peek(self, request: ProxyRequest) -> Interaction | None:
        """What :meth:`play` would answer, without using it up: for an exchange a fault rule
        acts on, which is never recorded either, so recording and replay meet the same ones."""
        return self._find(request, use_up=False)

    def _find(self, request: ProxyRequest, *, use_up: bool) -> Interaction | None:
        if not self.policy.replay:
            return None
        matched = self._matched(request)
        self._last = (request, matched)
        if matched is None:
            return None
        cassette = self.cassette
        if matched.request is not None:  # a matcher reads more than the match key holds
            found = matched.request
            take = cassette.play_matching if use_up else cassette.peek_matching
            return take(matched.key, lambda recorded: self.matcher.accepts(found, recorded))
        return cassette.play_key(matched.key) if use_up else cassette.peek_key(matched.key)

    def replayed(
        self, interaction: Interaction, request: ProxyRequest
    ) -> tuple[ProxyResponse, Timing | None]:
        """The response to replay for ``request``, and its timing: the recording, with the
        request's own values (its folder) in place of the placeholders."""
        last, matched = self._last
        if last is not request:
            matched = self._matched(request)
        substitution = matched.substitution if matched is not None else Substitution()
        return self.shaper.placeholders.filled(interaction.replay, interaction.timing, substitution)

    def _matched(self, request: ProxyRequest) -> Matched | None:
        """What matching makes of ``request``; remembered for the last 1,024 requests whose
        path, body and the headers that count are 6 KiB at most (``self._key``), so a request
        seen again is found without hiding, redacting, parsing or projecting it. Not with the
        user's functions (hooks, custom matchers), which may read anything of a request."""
        folders = self.shaper.folder_headers(request.headers)
        headers = tuple(request.headers.items()) if self._reads_headers else ()
        if self._functions:
            return self._match_of(request.method, request.raw_path, request.body, folders, headers)
        return self._key(request.method, request.raw_path, request.body, folders, headers)

    def _match_of(
        self,
        method: str,
        raw_path: str,
        body: bytes,
        folders: str,
        headers: tuple[tuple[str, str], ...],
    ) -> Matched | None:
        shaper = self.shaper
        path_qs = shaper.upstream.path_qs(raw_path)
        substitution = shaper.substitution(body, path_qs, folders)
        if not shaper.reads_headers and not self.matcher.custom:
            lookup = shaper.lookup(method, path_qs, body, substitution)
            return Matched(self.matcher.key(lookup), substitution)
        sent = shaper.sent_headers(headers)
        shaped = shaper.request(method, path_qs, body, sent, substitution)
        if shaped is None:
            return None
        return Matched(
            self.matcher.key(shaped), substitution, shaped if self.matcher.custom else None
        )

    def lookup(self, method: str, raw_path: str, body: bytes) -> Lookup:
        """What matching reads of a request as the cassette would store it: the upstream's
        absolute URI and the body, secrets redacted (no placeholders). No matcher reads
        headers, so none are redacted, and no vcrpy ``Request`` is built."""
        path_qs = self.shaper.upstream.path_qs(raw_path)
        return self.shaper.lookup(method, path_qs, body, Substitution())

    def _view(self, recorded: VcrRequest) -> VcrRequest:
        """A loaded request as matching sees it: with the values an incoming request has
        hidden (its named values and folders) hidden too, so a cassette recorded before they
        were (or by vcrpy) still matches, in any folder."""
        if not self.shaper.placeholders.active or isinstance(recorded, ShapedRequest):
            return recorded
        body = recorded.body if isinstance(recorded.body, bytes) else b""
        folders = "\x00".join(recorded.headers.get(name) or "" for name in self.shaper.folder_names)
        substitution = self.shaper.substitution(body, recorded.uri.partition("://")[2], folders)
        if not substitution or not _holds(recorded, substitution):
            return recorded
        return ShapedRequest(
            recorded.method,
            substitution.hide_text(recorded.uri),
            substitution.hide(body) if body else recorded.body,
            {name: substitution.hide_text(str(v)) for name, v in recorded.headers.items()},
        )

    def as_recorded(self, request: Outgoing) -> ShapedRequest | None:
        """The request as the cassette stores it (and a miss is explained with): values
        hidden, secrets redacted, vcrpy's filters and hooks run; None if a hook says the
        cassette ignores it (it is then forwarded, and neither recorded nor replayed)."""
        shaper = self.shaper
        path_qs = request.url.raw_path_qs
        folders = shaper.folder_headers(request.headers)
        substitution = shaper.substitution(request.body, path_qs, folders)
        return shaper.request(
            request.method, path_qs, request.body, request.headers.items(), substitution
        )

    def record(
        self, request: VcrRequest, response: ProxyResponse, timing: Timing | None = None
    ) -> Interaction | None:
        """Keep ``response`` (and when it arrived) for ``request``, durably, before the client
        gets its last byte; None if ``before_record_response`` dropped it."""
        assert self._journal is not None, "record() in a mode that does not record"
        recording = self.shaper.recording(request, response, timing)
        if recording is None:
            return None
        interaction = Interaction(
            recording.request,
            recording.status,
            recording.reason,
            recording.headers,
            recording.body,
            timing=recording.timing,
            recorded_at=hygiene.now(),
        )
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

    def refusal(self, request: VcrRequest, response: ProxyResponse) -> str | None:
        """Why the upstream's answer to ``request`` is passed on but not recorded, or None:
        a 401 or 403 (unless ``record_auth_failures``), or, in ``new_episodes``, a request that
        differs from a recording only in values that change from run to run (recording it
        would only add a near-duplicate the next run misses again)."""
        if response.status in hygiene.AUTH_FAILURES and not self.settings.record_auth_failures:
            key = self.settings.upstream_api_key is not None
            return f"{hygiene.auth_refusal(response.status, key)}. {self.hints.key()}"
        if self.policy.replay and self.existed:
            near = self.cassette.near_duplicate(request)
            if near is not None:
                return (
                    f"{hygiene.NEAR_DUPLICATE}: {request.method} {request.uri} was passed on but "
                    "not recorded. "
                    + volatile_advice(near.changes, self.hints, values=not withheld(near.recorded))
                )
        return None

    def check_forward(self, request: VcrRequest) -> None:
        """Refuse to send upstream a request that continues a response replayed in this run
        (``previous_response_id``, a conversation): the upstream never issued that id, so it
        would answer 404, and the 404 would be recorded."""
        if not (self.policy.replay and self.policy.record):
            return
        chained = self._continues_replayed(request)
        if chained is not None:
            raise ChainBroken(
                f"cassette-proxy did not send {request.method} {request.uri} upstream: it "
                f"continues {chained}, a response replayed from cassette {str(self.path)!r}, "
                "which the upstream never issued to this run (it would answer 404, and that "
                f"would be recorded). {self.hints.rerecord()}"
            )

    def _continues_replayed(self, request: VcrRequest) -> str | None:
        body = request.body if isinstance(request.body, bytes) else b""
        continued = _continued_ids(body)
        if not continued:
            return None
        replayed = self.cassette.first_played
        for position in replayed[len(self._replayed_ids) :]:  # those played since last asked
            self._replayed_ids.append(_response_id(self.cassette.loaded[position].replay))
        return next((i for i in continued if i in self._replayed_ids), None)

    def recording_new(self) -> str:
        """For an upstream that cannot be reached while recording: that the cassette did not
        exist, so this run records it (a mistyped name, offline, most often); else nothing."""
        if self.existed or self.cassette.loaded:
            return ""
        return (
            f"; this request was to be recorded into cassette {str(self.path)!r}, which did not "
            f"exist, so record mode {self.mode.value!r} records it.{_nearest(self.path)} To "
            "replay offline, check the name (record mode 'none' answers a missing cassette 501)"
        )

    def miss(self, request: VcrRequest) -> CassetteMiss:
        """The 501 for a request the cassette cannot answer and this mode cannot record."""
        why = (
            "the record mode 'once' found an existing cassette, so it only replays"
            if self.mode is RecordMode.ONCE
            else f"the record mode {self.mode.value!r} does not record"
        )
        if not self.existed and not self.cassette:  # a per-request name mistyped, most often
            return CassetteMiss(
                f"cassette-proxy found no recorded response for {request.method} {request.uri}: "
                f"cassette {str(self.path)!r} does not exist, and {why}.{_nearest(self.path)} "
                f"Check its name, or record it. {self.hints.record()}"
            )
        chained = self._continues_replayed(request)
        advice = None
        if chained is not None:
            advice = (
                f"This request continues {chained}, a response replayed from this cassette: "
                "recording only this call cannot work, since the upstream never issued that id "
                f"to the run. {self.hints.rerecord()}"
            )
        explained = self.cassette.explain_miss(request, self.upstream, self.hints, advice)
        return CassetteMiss(
            f"cassette-proxy found no recorded response for {request.method} {request.uri} "
            f"in cassette {str(self.path)!r} ({_count(len(self.cassette.loaded))}; record "
            f"mode {self.mode.value!r}; matching on {', '.join(self.matcher.shown)}), "
            f"and {why}. {explained}"
        )

    def _save(self, drop_unused: bool = False) -> int:
        try:
            return _save(self.cassette, self.mode, self._loaded_from, drop_unused)
        except CassetteFileError as exc:
            raise CassetteFileError(
                f"{exc}. The {_count(len(self.cassette.recorded))} recorded in this run stay in "
                f"{str(journal_path(self.path))!r} and are folded in when a proxy next starts "
                "on this cassette"
            ) from exc

    def discard_recorded(self) -> None:
        """Save nothing this run recorded (a failed test's recordings, unless asked): on
        close, its journal goes and the cassette file stays as it was."""
        self.keep_recorded = False

    def _drops(self) -> bool:
        """Whether closing leaves unused interactions out of the file (vcrpy's rule: only if
        some loaded interaction was never played)."""
        if not self.settings.drop_unused_requests or not self.keep_recorded:
            return False
        if self.mode is RecordMode.ALL:
            return bool(self.cassette.loaded)
        return bool(self.cassette.never_played)

    def _lock_to_drop(self) -> bool:
        """Take the lock a replayer needs to leave unused interactions out of the file; False
        (the file is left as it is, and the summary says nothing was dropped) if another
        process records the cassette or its folder is read-only."""
        try:
            return self._lock.acquire()
        except CassetteFileError:
            return False

    def close(self) -> Summary:
        """Save what was recorded (atomically), retire the journal, release the lock.

        If saving fails, the journal stays, the error says so, and the next start folds it in."""
        saved = None
        discarded = 0 if self.keep_recorded else len(self.cassette.recorded)
        drops = self._drops()
        unused = hygiene.unused(self.cassette.loaded, self.cassette.play_counts)
        try:
            if drops and not self._lock.held:  # a replayer: it writes only for this
                drops = self._lock_to_drop()
            if (self.cassette.recorded and self.keep_recorded) or drops:
                if not self.keep_recorded:
                    self.cassette.recorded.clear()
                saved = self._save(drop_unused=drops)
            if self._journal is not None:
                self._journal.close()
                journal_path(self.path).unlink(missing_ok=True)
        finally:
            if self._journal is not None:
                self._journal.close()
            self._lock.release()
        self.summary = Summary(
            cassette=str(self.path),
            loaded=len(self.cassette.loaded),
            recorded=len(self.cassette.recorded) if self.keep_recorded else 0,
            played=self.cassette.played,
            never_played=len(self.cassette.never_played),
            saved=saved,
            unused=tuple(unused) if self.policy.replay else (),
            dropped=len(unused) if drops and self.policy.replay else 0,
            discarded=discarded,
        )
        return self.summary


def _holds(request: VcrRequest, substitution: Substitution) -> bool:
    """Whether hiding ``substitution`` changes anything of ``request`` (most recordings: no)."""
    body = request.body if isinstance(request.body, bytes) else b""
    return (
        substitution.hide(body) != body
        or substitution.hide_text(request.uri) != request.uri
        or any(substitution.hide_text(str(v)) != v for v in request.headers.values())
    )


def refuse_a_missing_cassette(settings: Settings, record_first: str = "--record-mode once") -> None:
    """``--record-mode none`` with a cassette that does not exist (and no journal of a crashed
    first recording) would answer every request 501 while health checks pass: a start-up
    error instead (and the control API's 409), naming the nearest cassettes in its folder (a
    typo, most often); ``record_first`` is how the caller's words ask to record."""
    cassette = settings.cassette
    if cassette is None or settings.record_mode is not RecordMode.NONE:
        return
    if cassette.exists() or journal_path(cassette).exists():
        return
    raise StartupError(
        f"cassette {str(cassette)!r} does not exist, and record mode 'none' does not record, so "
        f"every request would be answered 501.{_nearest(cassette)} Check the path, or record "
        f"it first ({record_first})"
    )


def _nearest(cassette: Path) -> str:
    try:
        siblings = [
            p.name for p in cassette.parent.iterdir() if p.suffix in {".yaml", ".yml", ".json"}
        ]
    except OSError:
        return ""
    close = difflib.get_close_matches(cassette.name, siblings, n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(str(cassette.parent / name)) for name in close) + "?"
