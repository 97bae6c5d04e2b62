"""The workers section of the benchmark: replay throughput with 1 and N workers (``--workers``).

Called by scripts/bench.py (``./scripts/bench --workers-only`` runs only this, in about half a
minute). Each proxy replays the same 10-interaction cassette with ``--allow-playback-repeats``
on 127.0.0.1; wrk drives it for ``duration`` seconds at 32 connections, ``repeat`` times (the
median is kept). Bounded: a fixed number of runs of a fixed length, every process stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CONNECTIONS = 32


def run(
    proxy: Callable[..., Iterator[tuple[str, int]]],
    wrk: Callable[..., Any],
    cassette: Path,
    work: Path,
    *,
    duration: float,
    repeat: int,
) -> dict[str, Any]:
    """Requests/s replaying ``cassette`` with 1 worker and with one per CPU (at least 2)."""
    counts = (1, max(2, os.cpu_count() or 2))
    figures: dict[str, Any] = {"connections": CONNECTIONS, "cpus": os.cpu_count()}
    for workers in counts:
        replay = ("--cassette", str(cassette), "--record-mode", "none",
                  "--allow-playback-repeats", "--workers", str(workers))  # fmt: skip
        for url, _ in proxy("http://127.0.0.1:9", *replay):
            wrk(url, 4, 1.0, 10, work, pid=None)  # warm-up: every worker's first requests
            runs = sorted(
                wrk(url, CONNECTIONS, duration, 10, work, pid=None).requests_per_s
                for _ in range(repeat)
            )
            figures[f"{workers} worker{'s' if workers > 1 else ''}"] = round(runs[len(runs) // 2])
    single, many = (figures[key] for key in list(figures)[2:4])
    figures["speed-up"] = round(many / single, 2) if single else None
    return figures
