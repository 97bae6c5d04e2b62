"""The streaming part of the benchmark (imported by ``scripts/bench.py``).

Against ``scripts/sse_upstream.py``: time to the first event and the gaps between events, direct
and through the proxy (pass-through, replay, replay at the recorded times), the proxy's CPU time
per streamed event, and its memory for a 1 GiB response, 30 clients that hang up on 200 MiB
responses, and a 1 MiB gzip bomb in each mode. Every server is started here on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp

MiB = 1 << 20
GAP_MS = 50.0
EVENTS = 20
TIMEOUT = aiohttp.ClientTimeout(total=600)


async def _one_stream(url: str, query: str = "") -> tuple[float, list[float]]:
    """Time to the first event (ms after the request) and the gaps between events (ms)."""
    arrivals: list[float] = []
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        started = time.perf_counter()
        async with session.post(f"{url}/v1/responses{query}", data=b'{"stream": true}') as answer:
            buffer = b""
            async for data in answer.content.iter_any():
                now = time.perf_counter()
                buffer += data
                while b"\n\n" in buffer:
                    _, _, buffer = buffer.partition(b"\n\n")
                    arrivals.append(now)
    first = (arrivals[0] - started) * 1000
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)]
    return first, gaps


def streams(url: str, count: int, query: str = "") -> dict[str, float]:
    """``count`` streams one after another: the median time to first event, and the median and
    worst error of the gaps against the upstream's 50 ms."""
    runs = [asyncio.run(_one_stream(url, query)) for _ in range(count)]
    errors = [abs(gap - GAP_MS) for _, gaps in runs for gap in gaps]
    return {
        "first_event_ms": round(statistics.median(first for first, _ in runs), 3),
        "gap_error_median_ms": round(statistics.median(errors), 3),
        "gap_error_p95_ms": round(sorted(errors)[int(len(errors) * 0.95)], 3),
    }


async def _fetch(url: str, keep: int | None = None) -> int:
    got = 0
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False) as session,
        session.get(url) as answer,
    ):
        async for data in answer.content.iter_any():
            got += len(data)
            if keep is not None and got >= keep:
                break
    return got


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory(
    url: str, pid: int, job: Callable[..., Coroutine[Any, Any, object]], *args: Any
) -> float:
    """Peak RSS growth (MiB) of the proxy while ``job(*args)`` runs, after a warm-up request."""
    asyncio.run(_fetch(f"{url}/big?size=1024"))
    before = rss_kb(pid)
    asyncio.run(job(*args))
    return round((rss_kb(pid, "VmHWM") - before) / 1024, 1)


def run(
    upstream: str,
    proxy: Callable[..., Iterator[tuple[str, int]]],
    cpu_seconds: Callable[[int], float],
    work: Path,
    quick: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The figures, and the goals they are measured against (bench.py's ratio rows)."""
    count = 5 if quick else 20
    figures: dict[str, Any] = {"direct": streams(upstream, count)}
    for url, _ in proxy(upstream):
        figures["pass-through"] = streams(url, count)
    cassette = str(work / "stream.yaml")
    for url, _ in proxy(upstream, "--cassette", cassette, "--record-mode", "once"):
        streams(url, 1)
    replay = ("--cassette", cassette, "--record-mode", "none", "--allow-playback-repeats")
    for url, _ in proxy(upstream, *replay):
        figures["replay"] = streams(url, count)
    for url, _ in proxy(upstream, *replay, "--replay-timing", "recorded"):
        figures["replay, recorded timing"] = streams(url, count)

    for url, pid in proxy(upstream):
        before = cpu_seconds(pid)
        events = 2_000
        for _ in range(5):
            asyncio.run(_one_stream(url, f"?events={events}&gap_ms=0"))
        figures["cpu_us_per_event"] = round((cpu_seconds(pid) - before) / (5 * events) * 1e6, 2)
        size = (256 if quick else 1024) * MiB
        started = time.perf_counter()
        grew = memory(url, pid, _fetch, f"{url}/big?size={size}")
        figures["large"] = {
            "size_mib": size // MiB,
            "rss_growth_mib": grew,
            "mib_per_s": round(size / MiB / (time.perf_counter() - started), 1),
        }

    async def hang_ups(url: str, clients: int) -> None:
        await asyncio.gather(
            *(_fetch(f"{url}/big?size={200 * MiB}", keep=MiB) for _ in range(clients))
        )

    for url, pid in proxy(upstream):
        one = memory(url, pid, hang_ups, url, 1)
        thirty = memory(url, pid, hang_ups, url, 30)
        figures["hang_ups"] = {"one_mib": one, "thirty_mib": thirty}
    bombs = {}
    for mode, extra in {
        "pass-through": (),
        "record": ("--cassette", str(work / "bomb.yaml"), "--record-mode", "all"),
        "strict": ("--validation", "strict"),
    }.items():
        for url, pid in proxy(upstream, *extra):
            bombs[mode] = memory(url, pid, _fetch, f"{url}/bomb")
    figures["bomb_rss_growth_mib"] = bombs
    return figures, _goals(figures)


def _goals(figures: dict[str, Any]) -> list[dict[str, Any]]:
    direct = figures["direct"]["first_event_ms"]

    def goal(name: str, value: float, target: float) -> dict[str, Any]:
        return {"ratio": name, "value": round(value, 3), "target": target, "op": "<=",
                "met": value <= target}  # fmt: skip

    out = [
        goal("SSE first event, pass-through - direct (ms)",
             figures["pass-through"]["first_event_ms"] - direct, 2.0),
        goal("SSE gap error median, pass-through (ms)",
             figures["pass-through"]["gap_error_median_ms"], 10.0),
        goal("SSE gap error median, replay at recorded times (ms)",
             figures["replay, recorded timing"]["gap_error_median_ms"], 10.0),
        goal("RSS growth, 1 GiB through (MiB)", figures["large"]["rss_growth_mib"], 64),
        goal("RSS growth, 30 hang-ups on 200 MiB (MiB)", figures["hang_ups"]["thirty_mib"], 64),
    ]  # fmt: skip
    out += [
        goal(f"RSS growth, 1 MiB gzip bomb, {mode} (MiB)", grew, 64)
        for mode, grew in figures["bomb_rss_growth_mib"].items()
    ]
    return out


def upstream_command(python: str, root: Path, port: int) -> list[str]:
    return [python, str(root / "scripts" / "sse_upstream.py"), str(port)]
