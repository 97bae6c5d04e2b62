"""What an audit counts, exchange by exchange, in memory that does not grow with the log.

Every aggregate is keyed by something with few values (a route, a status, an error code, a
minute, a finding's shape) or has a fixed size (the latency histograms, the slowest exchanges).
Keys that come from the traffic itself (finding messages, event types, reasons) are capped: past
the cap they are pooled under one "other" key, so a log of hostile or endlessly varied lines
still fits.

An exchange is checked whole before anything is counted: a line of the wrong shape raises
:class:`BadEvent` and leaves the summary as it was.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple, TypeVar

import orjson

from cassette_proxy.pointers import general_pointer
from cassette_proxy.tools.audit.filters import Filters
from cassette_proxy.tools.audit.histogram import Histogram
from cassette_proxy.tools.audit.tokens import UNKNOWN, TokenCount, checked_tokens

DRIFT_KINDS: Final = frozenset({"unknown_field", "unknown_enum", "unknown_type"})
MAX_GROUPS: Final = 5_000  # distinct finding shapes kept; more are pooled under OTHER
MAX_NAMES: Final = 1_000  # distinct routes, error codes, event types, reasons kept
MAX_INSTANCES: Final = 100  # instances broken down (--by-instance); more are pooled as OTHER
# Distinct sources, verdicts and statuses kept (the proxy writes 3, 3 and a few dozen); more are
# pooled under OTHER (status OTHER_STATUS), and so are kinds of exchange past MAX_KINDS.
MAX_VALUES: Final = 100
MAX_KINDS: Final = 20_000
OTHER_STATUS: Final = 0
NAME_CHARS: Final = 200  # of a name kept (a route, a source, a code, an event type, a reason)
TEXT_CHARS: Final = 2_000  # of a finding's pointer or message kept
_LONGEST_TIME: Final = 64  # an ISO 8601 time is about 24 characters
CORRUPT_SHOWN: Final = 20
OTHER: Final = "(other)"
UPSTREAM: Final = "upstream"  # tokens spent: the upstream answered
REPLAYED: Final = "cassette"  # tokens a cassette replayed (spent when it was recorded)
_MINUTE: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
_MINUTE_FORMAT: Final = "%Y-%m-%dT%H:%M"
_CACHE_LIMIT: Final = 10_000  # violations remembered as checked
_CACHED_SIZE: Final = 4_096  # characters of violations, at most, in one remembered
K = TypeVar("K")


class BadEvent(ValueError):
    """A JSON object that is not an exchange event as this proxy writes it."""


class FindingKey(NamedTuple):
    """One shape of validation finding: the same at another array index is the same."""

    severity: str
    kind: str
    route: str  # the exchange's route: cancel, create, ...
    side: str  # request | response
    pointer: str  # indices collapsed: /output/*/id
    message: str  # a stream event's names its event type

    @property
    def where(self) -> str:
        """``cancel response /output/*/id``."""
        return f"{self.route} {self.side} {self.pointer or '/'}"

    @property
    def is_drift(self) -> bool:
        return self.severity == "warning" and self.kind in DRIFT_KINDS


@dataclass(slots=True)
class Group:
    count: int
    first_seen: str
    last_seen: str
    example: str  # the id of one exchange that shows it

    def note(self, when: str) -> None:
        self.count += 1
        if when < self.first_seen:  # noqa: PLR1730 - an if is cheaper than min() per line
            self.first_seen = when
        if when > self.last_seen:  # noqa: PLR1730 - and than max()
            self.last_seen = when


@dataclass(slots=True)
class RouteLatency:
    """The times of one route's exchanges, in milliseconds."""

    total: Histogram = field(default_factory=Histogram)  # duration_ms: the whole exchange
    upstream: Histogram = field(default_factory=Histogram)  # upstream_ms, when forwarded
    own: Histogram = field(default_factory=Histogram)  # the proxy's: duration - upstream
    replay: Histogram = field(default_factory=Histogram)  # duration_ms of cassette replays
    ttfb: Histogram = field(default_factory=Histogram)  # to the upstream's response headers
    stream_ttfb: Histogram = field(default_factory=Histogram)  # the same, of streams only

    def add(
        self,
        duration: float,
        upstream: float | None,
        ttfb: float | None,
        *,
        streamed: bool,
        replayed: bool,
        waited: float | None = None,
    ) -> None:
        self.total.add(duration)
        if upstream is not None:
            self.upstream.add(upstream)
            self.own.add(duration - upstream if duration > upstream else 0.0)
        elif replayed:
            # With --replay-timing recorded the duration holds the recorded waits it reproduced
            # (replay_wait_ms; logs older than that field do not say how long they were).
            self.replay.add(max(duration - waited, 0.0) if waited else duration)
        else:
            self.own.add(duration)  # answered by the proxy alone: all of it is the proxy's
        if ttfb is not None:
            self.ttfb.add(ttfb)
            if streamed:
                self.stream_ttfb.add(ttfb)


@dataclass(slots=True)
class Streams:
    """``text/event-stream`` responses."""

    count: int = 0
    complete: int = 0  # ended with a terminal event
    events: Histogram = field(default_factory=Histogram)  # events per stream
    types: Counter[str] = field(default_factory=Counter)  # event type -> events seen


@dataclass(frozen=True, slots=True, order=True)
class SlowExchange:
    """Ordered by duration, then by lateness: of two equally slow exchanges the later is the
    lesser, so the slowest kept are the earliest ones among equals."""

    duration_ms: float
    lateness: int  # minus the exchange's position among those counted
    id: str = field(compare=False)
    time: str = field(compare=False)
    route: str = field(compare=False)
    status: int = field(compare=False)
    source: str = field(compare=False)
    upstream_ms: float | None = field(compare=False)
    error: str | None = field(compare=False)


@dataclass(slots=True)
class Corrupt:
    source: str
    line: int
    error: str


@dataclass(slots=True)
class Summary:
    filters: Filters = field(default_factory=Filters)
    slowest_kept: int = 10
    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0  # lines that are events of any kind (exchange, lifecycle)
    broken_files: int = 0  # files that could not be read to their end
    exchanges: int = 0  # counted (kept by the filters)
    left_out: int = 0  # exchanges the filters left out
    errors: int = 0  # exchanges with the proxy's error code, a 5xx, or a failed validation
    # (route, status, source, verdict) -> exchanges: one count a line, split for the tables
    kinds: dict[tuple[str, int, str, str], int] = field(default_factory=dict)
    codes: dict[tuple[str, int], Group] = field(default_factory=dict)  # (error code, status)
    minutes: dict[str, list[int]] = field(default_factory=dict)  # minute -> [requests, errors]
    latency: dict[str, RouteLatency] = field(default_factory=dict)
    findings: dict[FindingKey, Group] = field(default_factory=dict)
    streams: Streams = field(default_factory=Streams)
    truncated: int = 0  # responses larger than the capture cap
    not_recorded: Counter[str] = field(default_factory=Counter)  # reason -> exchanges
    slowest: list[SlowExchange] = field(default_factory=list)  # a min-heap
    corrupt: list[Corrupt] = field(default_factory=list)
    corrupt_count: int = 0
    first: str = ""
    last: str = ""
    # (model, route) -> tokens the exchanges accounted for (each response once, as logged)
    # (model, route, upstream or cassette) -> tokens: what was spent apart from what a cassette
    # replayed (spent when it was recorded)
    tokens: dict[tuple[str, str, str], TokenCount] = field(default_factory=dict)
    by_instance: bool = False  # keep a summary per instance too (--by-instance)
    instances: dict[str, Summary] = field(default_factory=dict)
    filtering: bool = field(init=False, default=False)
    _keys: dict[tuple[Any, ...], FindingKey] = field(default_factory=dict)
    _sources: set[str] = field(default_factory=set)
    _verdicts: set[str] = field(default_factory=set)
    _statuses: set[int] = field(default_factory=set)
    _codes: set[str] = field(default_factory=set)
    _validated: dict[tuple[int, str], tuple[Any, list[FindingKey]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.filtering = self.filters.active

    def note_corrupt(self, source: str, line: int, error: str) -> None:
        self.corrupt_count += 1
        if len(self.corrupt) < CORRUPT_SHOWN:
            self.corrupt.append(Corrupt(source, line, error[:TEXT_CHARS]))

    def add(self, event: dict[str, Any]) -> None:  # noqa: PLR0912, PLR0915 - see below
        """Count one exchange event (a dict as orjson parsed it).

        Raises :class:`BadEvent`, counting nothing, if it is not one this proxy writes. This
        runs once a line: one method, with the calls it can avoid inlined, is the price of
        reading a log at close to orjson's own speed.
        """
        when = event.get("time")
        if type(when) is not str or len(when) > _LONGEST_TIME:
            raise BadEvent(_wrong("time", when, "an ISO 8601 time"))
        status = event.get("status")
        if type(status) is not int:
            raise BadEvent(_wrong("status", status, "an integer"))
        duration = event.get("duration_ms")
        if type(duration) is not float:
            duration = _number(duration, "duration_ms") or 0.0
        upstream = event.get("upstream_ms")
        if upstream is not None and type(upstream) is not float:
            upstream = _number(upstream, "upstream_ms")
        ttfb = event.get("ttfb_ms")
        if ttfb is not None and type(ttfb) is not float:
            ttfb = _number(ttfb, "ttfb_ms")
        waited = event.get("replay_wait_ms")
        if waited is not None and type(waited) is not float:
            waited = _number(waited, "replay_wait_ms")
        error = event.get("error")
        if error is not None and type(error) is not str:
            raise BadEvent(_wrong("error", error, "a string"))
        route = event.get("route")
        if type(route) is not str:
            route = str(route)
        source = event.get("source")
        if type(source) is not str:
            source = str(source)
        verdict = event.get("verdict")
        if type(verdict) is not str:
            verdict = str(verdict)
        findings = self._findings(event.get("validation"), route)
        tokens = event.get("tokens")
        if tokens is not None and (tokens := checked_tokens(tokens)) is None:
            raise BadEvent(_wrong("tokens", event.get("tokens"), "an object of token counts"))
        model = event.get("model")
        if model is not None and type(model) is not str:
            raise BadEvent(_wrong("model", model, "a string"))
        instance = event.get("instance")
        if instance is not None and type(instance) is not str:
            raise BadEvent(_wrong("instance", instance, "a string"))
        stream = event.get("stream")
        if stream is not None:
            _check_stream(stream)
        minute = when[:16]
        row = self.minutes.get(minute)
        if row is None and not _is_minute(minute):
            raise BadEvent(f"time {when[:40]!r} is not an ISO 8601 time")
        if self.filtering:
            try:
                kept = self.filters.keeps(route, status, source, verdict, when)
            except ValueError:
                raise BadEvent(f"time {when[:40]!r} is not an ISO 8601 time") from None
            if not kept:
                self.left_out += 1
                return

        # Checked: from here on nothing raises.
        self.exchanges += 1
        if when > self.last:  # noqa: PLR1730 - an if is cheaper than max() on every line
            self.last = when
        if when < self.first or not self.first:
            self.first = when
        if row is None:
            row = self.minutes[minute] = [0, 0]
        row[0] += 1
        went_wrong = error is not None or status >= 500 or verdict == "failed"
        latency = self.latency.get(route)
        if latency is None:
            route = route[:NAME_CHARS]  # a line may be megabytes long: names kept are cut
            if route not in self.latency and len(self.latency) >= MAX_NAMES:
                route = OTHER
            latency = self.latency.setdefault(route, RouteLatency())
        key = (route, status, source, verdict)
        kinds = self.kinds
        count = kinds.get(key)
        if count is None:  # a new kind: its values are kept, or pooled past their caps
            key = self._kind(route, status, source, verdict)
            count = kinds.get(key, 0)
            status, source = key[1], key[2]
        kinds[key] = count + 1
        exchange_id = str(event.get("id", ""))
        if went_wrong:
            row[1] += 1
            self.errors += 1
            if error is not None:
                if error not in self._codes:
                    error = _kept(error[:NAME_CHARS], self._codes, OTHER, MAX_NAMES)
                _note(self.codes, (error, status), when, exchange_id)
        latency.add(
            duration,
            upstream,
            ttfb,
            streamed=stream is not None,
            replayed=source == "cassette",
            waited=waited,
        )
        groups = self.findings
        for finding in findings:
            group = groups.get(finding)
            if group is None:
                groups[finding] = Group(1, when, when, exchange_id[:NAME_CHARS])
            else:
                group.note(when)
        response = event.get("response")
        truncated = type(response) is dict and response.get("truncated") is True
        not_recorded = event.get("not_recorded")
        if stream is not None or truncated or not_recorded is not None:
            self._capture(stream, truncated, not_recorded)
        if tokens is not None:
            spent = REPLAYED if source == REPLAYED else UPSTREAM
            self._tokens((model or UNKNOWN)[:NAME_CHARS], route, spent, tokens)
        if self.by_instance:
            part = self._instance((instance or UNKNOWN)[:NAME_CHARS])
            part.add(event)
            part.lines += 1  # an instance's lines are its exchanges', in the files they are in
            if self.files and part.files[-1:] != self.files[-1:]:
                part.files.append(self.files[-1])
        slowest = self.slowest
        if len(slowest) < self.slowest_kept or (slowest and duration > slowest[0].duration_ms):
            self._slow(
                SlowExchange(
                    duration, -self.exchanges, exchange_id[:NAME_CHARS], when, route, status,
                    source, upstream, error,
                )
            )  # fmt: skip

    def _tokens(self, model: str, route: str, source: str, tokens: dict[str, int]) -> None:
        key = (model, route, source)
        count = self.tokens.get(key)
        if count is None:
            if len(self.tokens) >= MAX_NAMES:
                key = (OTHER, route, source)
            count = self.tokens.setdefault(key, TokenCount())
        count.add(tokens)

    def _instance(self, name: str) -> Summary:
        """The summary of one instance's exchanges (the filters and limits of this one)."""
        summary = self.instances.get(name)
        if summary is None:
            if len(self.instances) >= MAX_INSTANCES:
                name = OTHER
            summary = self.instances.get(name)
            if summary is None:
                summary = self.instances[name] = Summary(
                    filters=self.filters, slowest_kept=self.slowest_kept
                )
        return summary

    def _kind(
        self, route: str, status: int, source: str, verdict: str
    ) -> tuple[str, int, str, str]:
        """The key a new kind of exchange is counted under: its status, source and verdict
        each kept (cut to :data:`NAME_CHARS`) until :data:`MAX_VALUES` distinct ones are, then
        pooled; and past :data:`MAX_KINDS` kinds, one pooled kind for every new one."""
        if status not in self._statuses:
            status = _kept(status, self._statuses, OTHER_STATUS)
        if source not in self._sources:
            source = _kept(source[:NAME_CHARS], self._sources, OTHER)
        if verdict not in self._verdicts:
            verdict = _kept(verdict[:NAME_CHARS], self._verdicts, OTHER)
        key = (route, status, source, verdict)
        if key not in self.kinds and len(self.kinds) >= MAX_KINDS - 1:  # one for the pooled
            return (OTHER, OTHER_STATUS, OTHER, OTHER)
        return key

    def _slow(self, slow: SlowExchange) -> None:
        if len(self.slowest) < self.slowest_kept:
            heapq.heappush(self.slowest, slow)
        else:
            heapq.heapreplace(self.slowest, slow)

    def _capture(self, stream: dict[str, Any] | None, truncated: bool, not_recorded: Any) -> None:
        if stream is not None:
            self._stream(stream)
        if truncated:
            self.truncated += 1
        if not_recorded is not None:
            not_recorded = str(not_recorded)[:NAME_CHARS]
            known = not_recorded in self.not_recorded or len(self.not_recorded) < MAX_NAMES
            self.not_recorded[not_recorded if known else OTHER] += 1

    def _findings(self, validation: Any, route: str) -> list[FindingKey]:
        """The finding shapes of an event's violations, each checked; once per distinct
        object and route, when the reader shares one object among lines (the cache holds the
        object, so its id cannot be reused while cached)."""
        if validation is None:
            return []
        cached = self._validated.get((id(validation), route))
        if cached is not None and cached[0] is validation:
            return cached[1]
        keys, size = self._check_findings(validation, route)
        if size <= _CACHED_SIZE:  # what a cache holds stays small, whatever the lines hold
            if len(self._validated) >= _CACHE_LIMIT:
                self._validated.clear()
            self._validated[id(validation), route] = (validation, keys)
        return keys

    def _check_findings(self, validation: Any, route: str) -> tuple[list[FindingKey], int]:
        """The finding keys of an event's violations, and about how many characters they
        hold."""
        if type(validation) is not dict:
            raise BadEvent("validation is not an object")
        keys: list[FindingKey] = []
        size = 0
        for side, record in validation.items():
            if type(record) is not dict:
                raise BadEvent(f"validation.{str(side)[:NAME_CHARS]} is not an object")
            violations = record.get("violations")
            if not violations:
                if violations is not None and type(violations) is not list:
                    raise BadEvent(_wrong("violations", violations, "an array"))
                continue
            if type(violations) is not list:
                raise BadEvent(_wrong("violations", violations, "an array"))
            for violation in violations:
                if type(violation) is not dict:
                    raise BadEvent("a violation is not an object")
                raw = (route, side, *violation.items())
                size += len(side) + sum(len(v) for v in violation.values() if type(v) is str)
                try:
                    key = self._keys.get(raw)
                except TypeError:  # a list or an object where a string belongs
                    key = None
                keys.append(key or self._finding_key(raw, violation))
        return keys, size

    def _finding_key(self, raw: tuple[Any, ...], violation: dict[str, Any]) -> FindingKey:
        names = ("pointer", "message", "severity", "kind")
        fields = [violation.get(name) for name in names]
        for name, value in zip(names, fields, strict=True):
            if value is not None and type(value) is not str:
                raise BadEvent(_wrong(name, value, "a string"))
        pointer, message, severity, kind = (value or "" for value in fields)
        route, side = raw[:2]
        key = FindingKey(
            severity[:NAME_CHARS],
            kind[:NAME_CHARS],
            route,
            side[:NAME_CHARS],
            general_pointer(pointer[:TEXT_CHARS]),
            message[:TEXT_CHARS],
        )
        if key not in self.findings and len(self.findings) >= MAX_GROUPS:
            key = FindingKey(
                severity, kind, route, side, OTHER, "(more distinct findings than kept)"
            )
        if len(pointer) + len(message) <= _CACHED_SIZE:
            if len(self._keys) >= _CACHE_LIMIT:
                self._keys.clear()
            self._keys[raw] = key
        return key

    def _stream(self, stream: dict[str, Any]) -> None:
        streams = self.streams
        streams.count += 1
        if stream.get("complete") is True:
            streams.complete += 1
        streams.events.add(stream.get("events") or 0)
        types = streams.types
        for seen, count in (stream.get("types") or {}).items():
            name = str(seen)[:NAME_CHARS]
            types[name if name in types or len(types) < MAX_NAMES else OTHER] += count


def _kept(value: K, seen: set[K], other: K, most: int = MAX_VALUES) -> K:
    """``value``, remembered as seen, or ``other`` once ``most`` values have been."""
    if len(seen) >= most:
        return other
    seen.add(value)
    return value


def _is_minute(minute: str) -> bool:
    """Whether ``minute`` (``YYYY-MM-DDTHH:MM``) is a minute of the calendar, year 1 to 9999:
    asked once per distinct minute, so a line dated the 45th of the 13th month is refused as
    it is read, not when the report is drawn."""
    if not _MINUTE.fullmatch(minute):
        return False
    try:
        datetime.strptime(minute, _MINUTE_FORMAT)
    except ValueError:
        return False
    return True


def _note(groups: dict[K, Group], key: K, when: str, example: str) -> None:
    group = groups.get(key)
    if group is None:
        groups[key] = Group(1, when, when, example[:NAME_CHARS])
    else:
        group.note(when)


def _wrong(name: str, value: Any, expected: str) -> str:
    return f"{name} is {orjson.dumps(value).decode()[:60]}, not {expected}"


def _number(value: Any, name: str) -> float | None:
    """A value orjson gave as an int, made a float; None stays None; anything else is bad."""
    if value is None:
        return None
    if type(value) is int:
        return float(value)
    raise BadEvent(_wrong(name, value, "a number"))


def _check_stream(stream: Any) -> None:
    if type(stream) is not dict:
        raise BadEvent(_wrong("stream", stream, "an object"))
    events = stream.get("events")
    if events is not None and type(events) is not int:
        raise BadEvent(_wrong("stream.events", events, "an integer"))
    types = stream.get("types")
    if types is not None and (
        type(types) is not dict or any(type(count) is not int for count in types.values())
    ):
        raise BadEvent(_wrong("stream.types", types, "an object of counts"))
