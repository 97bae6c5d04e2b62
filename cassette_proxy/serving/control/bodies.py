"""What the control API answers: typed descriptions of the proxy's state, as JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cassette_proxy.models.faults import FaultRule
from cassette_proxy.serving.cassettes import Closed
from cassette_proxy.serving.faults import Installed
from cassette_proxy.settings import CASSETTE_OPTIONS
from cassette_proxy.store.recorder import Recorder


class CassetteState(BaseModel):
    """A loaded cassette: its file, what its mode does, its options, and its counts."""

    path: str
    record_mode: str
    replays: bool  # the mode answers from it
    records: bool  # the mode records into it
    options: dict[str, Any]  # every per-cassette option (settings.CASSETTE_OPTIONS)
    interactions: int  # loaded from the file
    recorded: int  # recorded since it was loaded
    played: int  # answers served from it since it was loaded or rewound
    unused: int  # loaded interactions not played since then
    recordings_in_flight: int
    recovered_from_journal: int  # interactions a crashed run had journalled, folded in

    @classmethod
    def of(cls, recorder: Recorder) -> CassetteState:
        cassette = recorder.cassette
        options = recorder.settings.model_dump(
            mode="json", include=set(CASSETTE_OPTIONS - {"cassette"})
        )
        return cls(
            path=str(recorder.path),
            record_mode=recorder.mode.value,
            replays=recorder.policy.replay,
            records=recorder.policy.record,
            options=options,
            interactions=len(cassette.loaded),
            recorded=len(cassette.recorded),
            played=cassette.played,
            unused=len(cassette.never_played),
            recordings_in_flight=recorder.in_flight,
            recovered_from_journal=recorder.recovered,
        )


class ClosedState(BaseModel):
    """The cassette a change took out: what its run did, and whether it was saved."""

    path: str
    closed: bool  # False: recordings were still in flight; it is saved once they end
    saved: int | None = None  # interactions written (None: the file was not touched)
    loaded: int | None = None
    recorded: int | None = None
    played: int | None = None
    never_played: int | None = None
    recordings_in_flight: int = 0
    error: str | None = None  # the save failed: its recordings stay in its journal

    @classmethod
    def of(cls, closed: Closed) -> ClosedState:
        summary = closed.summary
        if summary is None:
            return cls(
                path=closed.path,
                closed=closed.error is not None,
                recordings_in_flight=closed.in_flight,
                error=closed.error,
            )
        return cls(
            path=closed.path,
            closed=True,
            saved=summary.saved,
            loaded=summary.loaded,
            recorded=summary.recorded,
            played=summary.played,
            never_played=summary.never_played,
        )


class CassetteAnswer(BaseModel):
    """``/_proxy/cassette``: the proxy's cassette (or a per-request one's, by its name)."""

    name: str | None = None  # the per-request cassette's name, when the request gave one
    mode: str  # the record mode, or "pass-through"
    cassette: CassetteState | None
    previous: ClosedState | None = None  # what a PUT or DELETE took out
    startup: str | None  # what DELETE goes back to (None: pass-through)
    cassette_dir: str | None  # --cassette-dir
    open: list[str]  # the per-request cassettes open, least recently used first


class FaultState(BaseModel):
    """An installed fault rule: its number, the rule, and how often it fired."""

    id: int
    fired: int
    remaining: int | None  # None: fires as long as it is installed
    rule: FaultRule

    @classmethod
    def of(cls, installed: Installed) -> FaultState:
        return cls(
            id=installed.id,
            fired=installed.fired,
            remaining=installed.remaining,
            rule=installed.rule,
        )


class FaultsAnswer(BaseModel):
    faults: list[FaultState]
    removed: int | None = None  # for DELETE: how many were removed
