"""Which exchanges an audit is about: ``--route``, ``--status``, ``--source``, ``--verdict``,
``--since`` and ``--until``. Several values of one option are alternatives; options combine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

_STATUS: Final = re.compile(r"[1-5](?:\d\d|xx)", re.IGNORECASE)


def parse_time(value: str) -> datetime:
    """An ISO 8601 time (``2026-11-22``, ``2026-11-22T07:00``, ``...Z``), UTC if unzoned."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_status(value: str) -> str:
    """``502`` or a class such as ``5xx``; raises ValueError otherwise."""
    if not _STATUS.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a status: give a code such as 502 or a class such as 5xx"
        )
    return value.lower()


@dataclass(frozen=True, slots=True)
class Filters:
    routes: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()  # "502", "5xx"
    sources: frozenset[str] = frozenset()
    verdicts: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    @property
    def active(self) -> bool:
        return bool(
            self.routes
            or self.statuses
            or self.sources
            or self.verdicts
            or self.since
            or self.until
        )

    def keeps(self, route: str, status: int, source: str, verdict: str, when: str) -> bool:
        """Whether an exchange passes every filter; raises ValueError for an unreadable time."""
        if self.routes and route not in self.routes:
            return False
        if self.statuses and not (
            str(status) in self.statuses or f"{status // 100}xx" in self.statuses
        ):
            return False
        if self.sources and source not in self.sources:
            return False
        if self.verdicts and verdict not in self.verdicts:
            return False
        if self.since or self.until:
            moment = parse_time(when)
            if (self.since and moment < self.since) or (self.until and moment >= self.until):
                return False
        return True

    def describe(self) -> str:
        """``route=cancel, status=5xx|404, since 2026-11-22T07:00:00+00:00`` ("" if none)."""
        parts = [
            f"{name}={'|'.join(sorted(values))}"
            for name, values in (
                ("route", self.routes),
                ("status", self.statuses),
                ("source", self.sources),
                ("verdict", self.verdicts),
            )
            if values
        ]
        if self.since:
            parts.append(f"since {self.since.isoformat()}")
        if self.until:
            parts.append(f"until {self.until.isoformat()}")
        return ", ".join(parts)
