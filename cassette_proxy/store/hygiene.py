"""Keeping a cassette what a team wants to share: its age, what it holds that nothing plays, and
what must not be recorded in it.

- **Age** (``--re-record-interval``, Ruby VCR's ``re_record_interval``, Polly's ``expiresIn``
  with its ``expiryStrategy``): a cassette is as old as its oldest recording (each is stored
  with its ``recorded_at``; a cassette from before that, or vcrpy's, by its file's time). Past
  the interval it warns, fails, or is recorded again.
- **Unused interactions**: those loaded and never played, reported when the proxy stops (and by
  the plugin, failing a test with ``allow_unused=False``), and left out of the file with
  ``drop_unused_requests`` (vcrpy's).
- **Not recorded**: the upstream's 401 and 403 (a recording of a rejected key fails every
  replay), unless asked.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cassette_proxy.settings import ExpiryAction, Settings
from cassette_proxy.store.cassette import Interaction

AUTH_FAILURES: Final = frozenset({401, 403})
# The codes that start a ``not_recorded`` reason the plugin fails a test with: the cassette
# would then miss on replay, so the test must not pass as if it were whole.
AUTH_FAILURE: Final = "auth_failure"
NEAR_DUPLICATE: Final = "near_duplicate"
HOOK_DROPPED: Final = "before_record_response"


# The last second formatted, (second, text), replaced whole (the plugin records from a thread).
_second: tuple[int, str] = (-1, "")


def now() -> str:
    """This moment as ``recorded_at`` holds it (to the second: formatted once a second)."""
    global _second  # noqa: PLW0603 - one module-wide cache, replaced whole
    second = int(time.time())
    cached = _second
    if cached[0] != second:
        moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
        cached = _second = (second, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return cached[1]


def _parsed(moment: str) -> datetime.datetime | None:
    try:
        parsed = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def recorded_since(interactions: Iterable[Interaction], path: Path) -> datetime.datetime | None:
    """When the oldest recording was made: its ``recorded_at``, or for a cassette that has none
    (older, or vcrpy's), the file's modification time; None if there is nothing."""
    times = [_parsed(i.recorded_at) for i in interactions if i.recorded_at is not None]
    known = [time for time in times if time is not None]
    if known:
        return min(known)
    try:
        modified = path.stat().st_mtime
    except OSError:
        return None
    return datetime.datetime.fromtimestamp(modified, datetime.UTC)


def _age(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return "1 second" if round(seconds) == 1 else f"{seconds:.0f} seconds"


@dataclass(frozen=True, slots=True)
class Expiry:
    """A cassette older than ``--re-record-interval``."""

    path: Path
    recorded: datetime.datetime
    age: float  # seconds
    interval: float
    action: ExpiryAction

    def describe(self) -> str:
        return (
            f"cassette {str(self.path)!r} was recorded {_age(self.age)} ago "
            f"({self.recorded:%Y-%m-%d %H:%M} UTC), more than its re_record_interval of "
            f"{_age(self.interval)}"
        )


def expiry(
    settings: Settings, interactions: list[Interaction], path: Path, existed: bool
) -> Expiry | None:
    """The cassette's expiry, if it has an interval and is past it."""
    interval = settings.re_record_interval
    if interval is None or not existed or not interactions:
        return None
    since = recorded_since(interactions, path)
    if since is None:
        return None
    age = (datetime.datetime.now(datetime.UTC) - since).total_seconds()
    if age <= interval:
        return None
    return Expiry(path, since, age, interval, settings.re_record_action)


def unused(loaded: list[Interaction], play_counts: list[int]) -> list[str]:
    """The loaded interactions never played, as ``#3 POST https://.../v1/responses``."""
    return [
        f"#{number} {interaction.request.method} {interaction.request.uri}"
        for number, (interaction, count) in enumerate(zip(loaded, play_counts, strict=True))
        if count == 0
    ]


def auth_refusal(status: int, recorder_has_key: bool) -> str:
    """Why a 401 or 403 was not recorded."""
    whose = (
        "the configured key"
        if recorder_has_key
        else "the client's own Authorization (no CASSETTE_PROXY_UPSTREAM_API_KEY is set)"
    )
    return (
        f"{AUTH_FAILURE}: the upstream answered {status} to a request carrying {whose}; a "
        "recording of it would fail every replay, so it was passed on but not recorded"
    )
