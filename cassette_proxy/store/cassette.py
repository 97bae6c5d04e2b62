"""A cassette in memory: its interactions, an index over them, and what has been played.

No disk I/O here (that is :mod:`cassette_proxy.store.persist`) and no record-mode policy (that is
:mod:`cassette_proxy.store.recorder`): only lookup, FIFO playback and the explanation of a miss.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy
from vcr.request import Request as VcrRequest

from cassette_proxy.matching.closest import ClosestIndex
from cassette_proxy.matching.hints import SERVE, Hints
from cassette_proxy.matching.matchers import Key, Lookup, Matcher, withheld
from cassette_proxy.matching.volatile import Change, described
from cassette_proxy.models.http import (
    DECODABLE,
    ProxyResponse,
    Timing,
    UndecodableBody,
    decode_body,
    end_to_end,
)

CLOSEST_SHOWN = 3


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    """A recording a request differs from only in values that change from run to run."""

    recorded: VcrRequest
    changes: list[Change]


def volatile_advice(changes: list[Change], hints: Hints, *, values: bool = True) -> str:
    """What works for a request that differs from a recording only in volatile values: not
    recording it again (the next run would differ again), but ignoring the fields or giving the
    value inside a text a placeholder. ``values``: quote them (not for a recording made with
    x-data-logging-enabled: false; its fields are still named)."""
    whole = [c.pointer for c in changes if c.kind == "value"]
    inside = [c for c in changes if c.kind == "inside"]
    found = "; ".join(described(c) if values else c.pointer for c in changes)
    lines = [
        "It differs from that recording only in values that change from run to run: "
        + found
        + ". Recording it again would not help: the next run would send new ones."
    ]
    if whole:
        lines.append(hints.ignore(whole))
    if inside:
        lines.append(hints.placeholder([c.pointer for c in inside]))
        # The cassette holds the value it was recorded with, not <NAME>: a placeholder given
        # now matches only once the recording is made again.
        again = hints.rerecord(chain=False)
        lines.append(
            "Then, since the cassette holds the value it was recorded with, "
            + again[:1].lower()
            + again[1:]
        )
    return "\n".join(lines)


UPSTREAM_MATCHERS = frozenset({"scheme", "host", "port"})


@dataclass(frozen=True, slots=True)
class Interaction:
    """One recorded request and its response, as stored (redacted, bodies decoded on record)."""

    request: VcrRequest
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    timing: Timing | None = field(default=None, compare=False)  # beside the recording
    # When it was recorded (ISO 8601, UTC), beside the recording; None in older cassettes.
    recorded_at: str | None = field(default=None, compare=False)
    replay: ProxyResponse = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built at load, once: replay then costs a dict lookup and no header work per request,
        # and memory does not grow as a long replay reaches interactions for the first time.
        object.__setattr__(
            self, "replay", _replayable(self.headers, self.status, self.reason, self.body)
        )


def _replayable(
    headers: tuple[tuple[str, str], ...], status: int, reason: str, body: bytes
) -> ProxyResponse:
    """The response to send on replay: framing recomputed, and never a plain body labelled gzip.

    vcrpy's httpx stub records compressed bytes with their Content-Encoding (kept: they decode);
    its aiohttp stub records decoded bytes *with* the header, which the openai client would fail
    to decompress (and retry), so the header goes.
    """
    kept = end_to_end(CIMultiDict(headers))
    # Only a coding the proxy can undo (gzip, deflate) is checked; br or zstd bodies keep
    # their label, since the proxy cannot tell whether they decode.
    if kept.get("Content-Encoding", "").strip().lower() in DECODABLE:
        try:
            decode_body(kept, body)
        except UndecodableBody:
            mutable = CIMultiDict(kept)
            del mutable["Content-Encoding"]
            kept = CIMultiDictProxy(mutable)
    return ProxyResponse(status=status, reason=reason, headers=kept, body=body)


def _other_upstream_hint(
    recorded: VcrRequest, upstream: str, names: tuple[str, ...], hints: Hints
) -> str:
    """For a miss whose closest recording differs only in scheme, host or port: the upstream it
    was recorded from (with the current upstream's path prefix, which the path matched)."""
    default_port = {"http": 80, "https": 443}.get(recorded.scheme)
    port = "" if recorded.port == default_port else f":{recorded.port}"
    prefix = urlsplit(upstream).path.rstrip("/")
    origin = f"{recorded.scheme}://{recorded.host}{port}{prefix}"
    others = tuple(name for name in names if name not in UPSTREAM_MATCHERS)
    return (
        f"\nThe closest recording differs only in the upstream: it was recorded from {origin}. "
        + hints.other_upstream(origin, others)
    )


# How matching sees a recorded request (its values hidden as an incoming one's are: see
# store/shaping.py); the request itself, by default.
View = Callable[[VcrRequest], VcrRequest]


def _as_stored(request: VcrRequest) -> VcrRequest:
    return request


@dataclass(slots=True)
class Cassette:
    """Interactions loaded from a file plus those recorded in this run."""

    path: Path
    matcher: Matcher
    allow_playback_repeats: bool = False
    loaded: list[Interaction] = field(default_factory=list)
    recorded: list[Interaction] = field(default_factory=list)
    view: View = _as_stored
    play_counts: list[int] = field(init=False)
    first_played: list[int] = field(init=False)  # positions, in the order first played
    _keys: list[Key] = field(init=False)
    _index: dict[Key, list[int]] = field(init=False)
    _next: dict[Key, int] = field(init=False)
    closest: ClosestIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.play_counts = [0] * len(self.loaded)
        self.first_played = []
        self._keys = [
            self.matcher.key(self.view(interaction.request)) for interaction in self.loaded
        ]
        self._index = defaultdict(list)
        for position, key in enumerate(self._keys):
            self._index[key].append(position)
        self._next = {}
        self.closest = ClosestIndex(list(self._index), len(self.matcher.names))

    def __len__(self) -> int:
        return len(self.loaded) + len(self.recorded)

    def play(self, request: VcrRequest | Lookup) -> Interaction | None:
        """The next recorded interaction for ``request`` (FIFO), or None on a miss.

        Identical requests get the matching interactions in recorded order; once all have been
        played, ``allow_playback_repeats`` starts the sequence again, otherwise it is a miss.
        Only loaded interactions are played: those recorded in this run go to the upstream
        again, so that a later replay sees as many interactions as the run made requests.
        """
        return self.play_key(self.matcher.key(request))

    def play_key(self, key: Key) -> Interaction | None:
        """:meth:`play` for a request whose match key is known."""
        found = self._turn(key)
        if found is None:
            return None
        position, turn = found
        self._next[key] = turn + 1
        return self._played(position)

    def peek_key(self, key: Key) -> Interaction | None:
        """What :meth:`play_key` would answer, without moving playback on (nor counting it)."""
        found = self._turn(key)
        return self.loaded[found[0]] if found is not None else None

    def _turn(self, key: Key) -> tuple[int, int] | None:
        """The position of the recording whose turn it is for ``key``, and that turn."""
        positions = self._index.get(key)
        if not positions:
            return None
        turn = self._next.get(key, 0)
        if turn >= len(positions):
            if not self.allow_playback_repeats:
                return None
            turn = 0
        return positions[turn], turn

    def play_matching(self, key: Key, accepts: Callable[[VcrRequest], bool]) -> Interaction | None:
        """:meth:`play_key` among the recordings ``accepts`` takes as well (custom matchers,
        which cannot be keyed): the first not played yet, vcrpy's rule; with
        ``allow_playback_repeats``, the least played of them once all were."""
        position = self._matching(key, accepts)
        return self._played(position) if position is not None else None

    def peek_matching(self, key: Key, accepts: Callable[[VcrRequest], bool]) -> Interaction | None:
        """What :meth:`play_matching` would answer, without counting it."""
        position = self._matching(key, accepts)
        return self.loaded[position] if position is not None else None

    def _matching(self, key: Key, accepts: Callable[[VcrRequest], bool]) -> int | None:
        taken = [p for p in self._index.get(key, ()) if accepts(self.view(self.loaded[p].request))]
        if not taken:
            return None
        fresh = [p for p in taken if self.play_counts[p] == 0]
        if not fresh and not self.allow_playback_repeats:
            return None
        return fresh[0] if fresh else min(taken, key=lambda p: self.play_counts[p])

    def _played(self, position: int) -> Interaction:
        self.play_counts[position] += 1
        if self.play_counts[position] == 1:
            self.first_played.append(position)
        return self.loaded[position]

    def record(self, interaction: Interaction) -> None:
        self.recorded.append(interaction)

    def rewind(self) -> None:
        """Start playback over, as if just loaded: every recording playable again, none played."""
        self._next.clear()
        self.play_counts = [0] * len(self.loaded)
        self.first_played.clear()

    @property
    def played(self) -> int:
        return sum(self.play_counts)

    @property
    def never_played(self) -> list[Interaction]:
        return [i for i, count in zip(self.loaded, self.play_counts, strict=True) if count == 0]

    def replaced_by_recorded(self) -> list[Interaction]:
        """vcrpy's ``all`` mode on save: interactions recorded now replace the loaded ones they
        match, the others are kept, and the new ones follow them."""
        rerecorded = {self.matcher.key(self.view(i.request)) for i in self.recorded}
        kept = [i for i, key in zip(self.loaded, self._keys, strict=True) if key not in rerecorded]
        return kept + self.recorded

    def near_duplicate(self, request: VcrRequest) -> NearDuplicate | None:
        """The recording ``request`` differs from only in values that change from run to run
        (every other matcher agrees; the JSON bodies differ in volatile values only), if the
        closest recording is such a one."""
        if not self.loaded or "body" not in self.matcher.names:
            return None
        found = self.closest.search(self.matcher.key(request), 1)
        if not found.near or found.near[0].agree != len(self.matcher.names) - 1:
            return None
        recorded = self.view(self.loaded[self._index[found.near[0].key][0]].request)
        failed = [name for name, _ in self.matcher.differences(request, recorded)]
        if failed != ["body"]:
            return None
        changes = self.matcher.volatile_changes(request, recorded)
        return None if changes is None else NearDuplicate(recorded, changes)

    def explain_miss(
        self,
        request: VcrRequest,
        upstream: str = "",
        hints: Hints = SERVE,
        advice: str | None = None,
    ) -> str:
        """The closest recorded requests and, for each, the matchers that failed (vcrpy's words),
        then how to record what missed (or one more, when its recordings were all played).

        Bounded: at most :data:`~cassette_proxy.matching.closest.CANDIDATE_BUDGET` recorded requests
        are compared, whatever the cassette's size (about 1 ms), so a miss does not hold up
        the event loop for the other clients."""
        if not self.loaded:
            return "The cassette holds no interactions.\n" + hints.record()
        found = self.closest.search(self.matcher.key(request), CLOSEST_SHOWN)
        width = len(self.matcher.names)
        hint = ""
        spent = False  # the request matches, but its recordings were all played
        lines = []
        volatile = None
        quoted = True
        shown = len(self.matcher.shown)  # custom matchers too
        for near in found.near:
            recorded = self.view(self.loaded[self._index[near.key][0]].request)
            # Custom matchers are not in the key: one may refuse what the key found.
            failed = self.matcher.differences(request, recorded) if near.agree < width else []
            if near.agree == width and self.matcher.custom:
                failed = self.matcher.differences(request, recorded)
            if not failed:
                plays = len(self._index[near.key])
                lines.append(
                    f"- {recorded.method} {recorded.uri} matches, but all {plays} recorded "
                    f"interaction(s) for it were already played ({hints.repeats()})"
                )
                spent = True
                continue
            detail = "; ".join(f"{name}: {message}" for name, message in failed)
            lines.append(
                f"- {recorded.method} {recorded.uri} "
                f"({shown - len(failed)}/{shown} matchers agree; failed {detail})"
            )
            if len(lines) == 1 and {name for name, _ in failed} <= UPSTREAM_MATCHERS:
                hint = _other_upstream_hint(recorded, upstream, self.matcher.names, hints)
            if len(lines) == 1 and [name for name, _ in failed] == ["body"]:
                volatile = self.matcher.volatile_changes(request, recorded)
                quoted = not withheld(recorded)
        heading = (
            "Closest recorded interactions:"
            if found.exhaustive
            else f"Closest recorded interactions (of the {found.compared:,} compared: those "
            f"sharing this request's rarest values, out of {len(self.closest):,} distinct):"
        )
        if advice is None and volatile is not None:
            advice = volatile_advice(volatile, hints, values=quoted)
        if advice is None:
            advice = hints.record_more() if spent else hints.record()
        return heading + "\n" + "\n".join(lines) + hint + "\n" + advice
