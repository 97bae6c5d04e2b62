"""What steering a running proxy costs, and what it saves (issue 23).

    ./scripts/bench --steering-only [--duration SECONDS] [--repeat N] [--before TREE]

- **The check on every request**: what the request path adds for the control API, fault rules
  and per-request cassettes when none is in use (``steering.active or X-Cassette-Proxy-Cassette
  in headers``, and the choice between using a recording up and peeking at it), timed in this
  process, in ns.
- **Replay CPU per request** under wrk (16 connections, a 10-interaction cassette), as the
  other replay rows: the proxy as before (``--before TREE``: a source tree of the commit to
  compare with, such as ``git archive main | tar -x -C TREE``), with no control API, with
  ``--admin`` idle, with a fault rule that matches nothing (so every request takes the steering
  step), and with each request naming its cassette by header (``--cassette-dir``).
- **A cassette per case**: restarting the proxy for each case (start, one call, SIGTERM) against
  loading each case's cassette into one long-lived proxy (``PUT /_proxy/cassette``, one call,
  ``DELETE``), in ms per case.

Every server is started here on 127.0.0.1 and stopped before the script ends; every loop is
bounded (wrk runs for --duration seconds; the case loops make a fixed number of cases).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import timeit
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import (
    LUA,
    PYTHON,
    ROOT,
    free_port,
    make_cassette,
    process,
    wait_for_port,
    wrk,
)

HEADER_LUA = LUA.replace(
    '["Content-Type"] = "application/json"}',
    '["Content-Type"] = "application/json",\n'
    '                                     ["X-Cassette-Proxy-Cassette"] = "bench"}',
)


def check_cost(number: int = 2_000_000) -> dict[str, float]:
    """ns the request path adds per request when nothing steers it: the check, then the choice
    of ``play`` or ``peek``; each the best of 7 runs, less an empty statement's time."""
    from multidict import CIMultiDict, CIMultiDictProxy  # noqa: PLC0415 - this figure only

    from cassette_proxy.serving.handler import Pipeline  # noqa: PLC0415
    from cassette_proxy.serving.steering import CASSETTE_KEY  # noqa: PLC0415
    from cassette_proxy.settings import Settings  # noqa: PLC0415

    # The 14 headers the openai client sends with a cancel, as the proxy holds them.
    sent = {
        "Host": "127.0.0.1:8080", "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive",
        "Accept": "application/json", "Content-Type": "application/json",
        "User-Agent": "OpenAI/Python 3.57.0", "X-Stainless-Lang": "python",
        "X-Stainless-Package-Version": "3.57.0", "X-Stainless-OS": "Linux",
        "X-Stainless-Arch": "x64", "X-Stainless-Runtime": "CPython",
        "X-Stainless-Runtime-Version": "3.11.7", "Authorization": "Bearer bench-dummy-key",
        "X-Stainless-Retry-Count": "0",
    }  # fmt: skip
    names = {
        "pipeline": Pipeline(Settings(), None, None),  # type: ignore[arg-type]
        "headers": CIMultiDictProxy(CIMultiDict(sent)),
        "KEY": CASSETTE_KEY,
    }

    def best(statement: str) -> float:
        runs = timeit.repeat(statement, globals=names, number=number, repeat=7)
        return min(runs) / number * 1e9

    empty = best("pass")
    check = best("steering = pipeline.steering\nif steering.active or KEY in headers: pass")
    choice = best("fired = None\nchosen = 1 if fired is None else 2")
    return {
        "check_ns": round(check - empty, 1),
        "play_or_peek_ns": round(choice - empty, 1),
        "total_ns": round(check + choice - 2 * empty, 1),
    }


@contextmanager
def serving(tree: Path, upstream: str, *extra: str) -> Iterator[tuple[str, int]]:
    """``serve`` from the source tree ``tree`` (its own ``cassette_proxy``), on a free port."""
    port = free_port()
    args = (PYTHON, "-m", "cassette_proxy", "serve", "--port", str(port), "--upstream", upstream,
            "--log-file", f"/tmp/bench-steering-{port}.log", *extra)  # fmt: skip
    proc = subprocess.Popen(args, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        Path(f"/tmp/bench-steering-{port}.log").unlink(missing_ok=True)


def _request(url: str, method: str = "POST", body: dict[str, Any] | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
        status: int = answer.status
        return status


def replay_cpu(
    work: Path, upstream: str, duration: float, repeat: int, before: Path | None
) -> dict[str, float]:
    """Replay CPU µs per request at 16 connections, the median of ``repeat`` wrk runs each."""
    cassette = work / "cassettes" / "bench.yaml"
    cassette.parent.mkdir(exist_ok=True)
    make_cassette(cassette, upstream, 10)
    replay = ("--record-mode", "none", "--allow-playback-repeats")
    configs: list[tuple[str, Path, tuple[str, ...], str]] = [
        ("no control API", ROOT, ("--cassette", str(cassette), *replay), LUA),
        ("--admin, idle", ROOT, ("--cassette", str(cassette), "--admin", *replay), LUA),
        ("a fault rule matching nothing", ROOT,
         ("--cassette", str(cassette), *replay,
          "--faults", '[{"path": "/nothing/*", "status": 500}]'), LUA),
        ("cassette by header", ROOT, ("--cassette-dir", str(cassette.parent), *replay),
         HEADER_LUA),
    ]  # fmt: skip
    if before is not None:
        configs.insert(0, ("before (no control API)", before,
                           ("--cassette", str(cassette), *replay), LUA))  # fmt: skip
    out = {}
    for name, tree, extra, lua in configs:
        with serving(tree, upstream, *extra) as (url, pid):
            wrk(url, 4, 1.0, 10, work, pid=None, lua=lua)  # warm-up
            runs = sorted(
                wrk(url, 16, duration, 10, work, pid=pid, lua=lua).cpu_us or 0.0
                for _ in range(repeat)
            )
            out[name] = round(runs[len(runs) // 2], 1)
        print(f"  replay CPU, {name}: {out[name]} us/request", flush=True)
    return out


def per_case(work: Path, upstream: str, cases: int) -> dict[str, dict[str, float]]:
    """ms per case: a proxy restarted for each (its start, one call, SIGTERM and exit), and one
    long-lived proxy loading each case's cassette (PUT, one call, DELETE)."""
    folder = work / "cases"
    folder.mkdir()
    for n in range(cases):
        make_cassette(folder / f"case-{n}.yaml", upstream, 1)
    call = "/v1/responses/resp_bench_0/cancel"
    restarted = []
    for n in range(cases):
        started = time.perf_counter()
        extra = ("--cassette", str(folder / f"case-{n}.yaml"), "--record-mode", "none")
        with serving(ROOT, upstream, *extra) as (url, _):
            assert _request(url + call) == 200
        restarted.append((time.perf_counter() - started) * 1000)
    loaded = []
    with serving(ROOT, upstream, "--admin", "--cassette-dir", str(folder)) as (url, _):
        for n in range(cases):
            started = time.perf_counter()
            body = {"path": f"case-{n}.yaml", "record_mode": "none"}
            assert _request(url + "/_proxy/cassette", "PUT", body) == 200
            assert _request(url + call) == 200
            assert _request(url + "/_proxy/cassette", "DELETE") == 200
            loaded.append((time.perf_counter() - started) * 1000)

    def figures(ms: list[float]) -> dict[str, float]:
        return {"median_ms": round(statistics.median(ms), 1), "min_ms": round(min(ms), 1),
                "max_ms": round(max(ms), 1)}  # fmt: skip

    return {"restart per case": figures(restarted), "PUT per case": figures(loaded)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    print("the check on every request (in process) ...", flush=True)
    results: dict[str, Any] = {"check": check_cost()}
    print(f"  {results['check']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="cassette-proxy-bench-steering-"))
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    try:
        with process(PYTHON, str(ROOT / "scripts" / "fast_upstream.py"), str(upstream_port),
                     port=upstream_port):  # fmt: skip
            print("replay CPU per request, wrk c=16 ...", flush=True)
            results["replay_cpu_us"] = replay_cpu(
                work, upstream, args.duration, args.repeat, args.before
            )
            print("a cassette per case ...", flush=True)
            results["per_case"] = per_case(work, upstream, 5 if args.quick else 10)
            print(f"  {results['per_case']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results
