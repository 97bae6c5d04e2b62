"""The benchmark: cassette-proxy beside its references, in one run, as ratios.

    ./scripts/bench [--duration SECONDS] [--repeat N] [--quick] [--streams-only] [--workers-only]
                    [--redaction-only] [--steering-only [--before TREE]]

Every server is started here on 127.0.0.1 and stopped before the script ends; every load loop
is bounded (wrk runs for --duration seconds; the client loops make a fixed number of calls).
Prints a table and the ratios against the targets, and writes the same as JSON to
bench-results/.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))

import bench_startup  # noqa: E402
import bench_stream  # noqa: E402
import bench_workers  # noqa: E402
import orjson  # noqa: E402
from fast_upstream import BODY  # noqa: E402
from vcr.request import Request as VcrRequest  # noqa: E402

from cassette_proxy.contract import classify, stream_checker  # noqa: E402
from cassette_proxy.contract.validation import check_status_and_body  # noqa: E402
from cassette_proxy.redact import scanned  # noqa: E402
from cassette_proxy.sse import decode_all  # noqa: E402
from cassette_proxy.store.cassette import Interaction  # noqa: E402
from cassette_proxy.store.persist import save_cassette  # noqa: E402

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local path = "/v1/responses/resp_bench_" .. (counter % {ids}) .. "/cancel"
  return wrk.format("POST", path, {{["Authorization"] = "Bearer bench-dummy-key",
                                     ["Content-Type"] = "application/json"}}, "")
end
"""


@dataclass
class Row:
    name: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mb: float | None = None
    # CPU time the measured server process spent per request (user + system), from /proc: far
    # steadier than requests/s on a machine that wrk, the upstream and the proxy share.
    cpu_us: float | None = None


@dataclass
class Results:
    machine: dict[str, Any]
    duration_s: float
    rows: list[Row] = field(default_factory=list)
    client: dict[str, float] = field(default_factory=dict)
    loading: list[dict[str, Any]] = field(default_factory=list)
    streaming: dict[str, Any] = field(default_factory=dict)
    startup: dict[str, Any] = field(default_factory=dict)  # scripts/bench_startup.py
    ratios: list[dict[str, Any]] = field(default_factory=list)
    redaction: dict[str, float] = field(default_factory=dict)
    placeholders: dict[str, float] = field(default_factory=dict)
    workers: dict[str, Any] = field(default_factory=dict)  # replay req/s by --workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def process(*args: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proxy_args(port: int, upstream: str, *extra: str) -> tuple[str, ...]:
    return (
        PYTHON,
        "-m",
        "cassette_proxy",
        "serve",
        "--port",
        str(port),
        "--upstream",
        upstream,
        *extra,
    )


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def wrk(
    url: str,
    connections: int,
    duration: float,
    ids: int,
    script_dir: Path,
    *,
    pid: int | None,
    lua: str = LUA,
) -> Row:
    script = script_dir / f"ids{ids}-{abs(hash(lua))}.lua"
    script.write_text(lua.format(ids=ids))
    threads = min(connections, 2)  # wrk needs as many connections as threads
    cpu_before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--latency",
         "-s", str(script), url],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    count = int(errors[1]) if errors else 0
    if socket_errors:
        count += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    cpu_us = (cpu_seconds(pid) - cpu_before) / requests * 1e6 if pid and requests else None
    return Row("", connections, rate, p50, p99, count, cpu_us=cpu_us)


def make_cassette(path: Path, upstream: str, count: int) -> None:
    """A cassette of ``count`` distinct cancels (resp_bench_0 ...), as the proxy records them."""
    interactions = [
        Interaction(
            VcrRequest(
                "POST",
                f"{upstream}/v1/responses/resp_bench_{n}/cancel",
                b"",
                {"Authorization": "Bearer sha256:00000000", "Content-Type": "application/json"},
            ),
            200,
            "OK",
            (("Content-Type", "application/json"), ("x-request-id", f"req_{n:032x}")),
            BODY,
        )
        for n in range(count)
    ]
    save_cassette(path, interactions)


LOAD_PROBE = """
import sys, time
from pathlib import Path
from cassette_proxy.store.recorder import Recorder
from cassette_proxy.settings import Settings
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
before = rss()
started = time.perf_counter()
recorder = Recorder(Settings(cassette=Path(sys.argv[1]), record_mode="none"))
elapsed = time.perf_counter() - started
print(elapsed, rss() - before, len(recorder.cassette))
"""


VCRPY_LOAD_PROBE = """
import sys, time
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer
started = time.perf_counter()
FilesystemPersister.load_cassette(sys.argv[1], yamlserializer)
print(time.perf_counter() - started)
"""


def measure_load(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, "-c", LOAD_PROBE, str(path)], capture_output=True, text=True, check=True,
        timeout=600, cwd=ROOT,
    ).stdout.split()  # fmt: skip
    size_mb = path.stat().st_size / 2**20
    return {
        "cassette": path.name,
        "interactions": int(out[2]),
        "file_mb": round(size_mb, 1),
        "load_s": round(float(out[0]), 2),
        "rss_mb": round(float(out[1]), 1),
        "rss_over_file": round(float(out[1]) / size_mb, 1),
    } | (_vcrpy_load(path) if path.suffix == ".yaml" else {})


def _vcrpy_load(path: Path) -> dict[str, Any]:
    """vcrpy's own loader on the same file, in a process of its own (issue 16's yardstick)."""
    out = subprocess.run(
        [PYTHON, "-c", VCRPY_LOAD_PROBE, str(path)], capture_output=True, text=True, check=True,
        timeout=600, cwd=ROOT,
    ).stdout  # fmt: skip
    return {"vcrpy_s": round(float(out.strip()), 2)}


CLIENT_PROBE = """
import sys, time, openai, vcr
base, calls, mode, cassette = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ids = int(sys.argv[5])
def run():
    client = openai.OpenAI(base_url=base, api_key="bench-dummy-key", max_retries=0)
    with client:
        started = time.perf_counter()
        for n in range(calls):
            client.responses.cancel(f"resp_bench_{n % ids}")
        return calls / (time.perf_counter() - started)
if mode == "vcrpy":
    with vcr.use_cassette(cassette, record_mode="none", allow_playback_repeats=True):
        print(run())
else:
    print(run())
"""


def client_rate(base: str, calls: int, mode: str, cassette: Path, ids: int) -> float:
    out = subprocess.run(
        [PYTHON, "-c", CLIENT_PROBE, base, str(calls), mode, str(cassette), str(ids)],
        capture_output=True, text=True, check=True, timeout=900, cwd=ROOT,
    ).stdout  # fmt: skip
    return round(float(out.strip()), 1)


def redaction_cost(number: int = 2_000) -> dict[str, float]:
    """µs to redact one body on the request path, before (the hand-kept regex of 0.1.0, its
    marker fast path included) and after (gitleaks' rules and credential names, their keywords
    in one RE2 set; a body never seen before, so not the small-body cache): a typical cancel
    response, a typical create request, and 64 KiB of output text."""
    params = "access_token|api-key|api_key|apikey|iam_token|key|secret|token"
    before_re = re.compile(
        r"(?P<scheme>\b(?:Bearer|bearer|BEARER|Api-Key|api-key|Basic)\s+)"
        r"(?P<cred>(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{12,})"
        r"|(?P<bare>\bsk-[A-Za-z0-9_-]{16,}|\bAQVN[A-Za-z0-9_-]{16,}|\bt1\.[A-Za-z0-9_.-]{16,})"
        rf"|(?P<param>(?:^|[?&])(?i:{params})=)(?P<value>[^&#\s'\"]+)"
    )
    markers = ("Bearer", "bearer", "BEARER", "Api-Key", "api-key", "Basic", "sk-", "AQVN", "t1.")

    def before(body: bytes) -> bytes:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body  # 0.1.0 did not scan bodies that are not UTF-8
        if not any(marker in text for marker in (*markers, "=")):
            return body
        redacted = before_re.sub("sha256:00000000", text)
        return body if redacted == text else redacted.encode("utf-8")

    request = json.dumps(
        {"model": "gpt://b1gexamplefolder000/yandexgpt/latest", "store": True,
         "input": [{"role": "user", "content": "Summarise the attached notes in three lines."}],
         "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]}
    ).encode()  # fmt: skip
    prose = "The quick brown fox jumps over the lazy dog; tokens: 12, cached: 3. " * 1000
    bodies = {
        "response": BODY,
        "request": request,
        "64 KiB text": prose.encode()[: 64 * 1024],
        **tool_call_bodies(),
    }
    scanned(b"warm up: the rules compile on first use")
    out: dict[str, float] = {}
    for name, body in bodies.items():
        for label, redact in (("before", before), ("after", scanned)):
            # CPU time, not wall time: the machine is shared with whatever else runs.
            call = functools.partial(redact, body)
            seconds = min(timeit.repeat(call, timer=time.process_time, number=number, repeat=5))
            out[f"{name} ({len(body):,} B) {label}"] = round(seconds / number * 1e6, 2)
    return out


def tool_call_bodies(deltas: int = 200) -> dict[str, bytes]:
    """Bodies where secrets hide behind an encoding (none here: the cost of looking): a create
    response with a function call, whose ``arguments`` is JSON in a JSON string; the event
    stream that streams it, ``deltas`` argument deltas long; and a form body."""
    arguments = json.dumps(
        {"query": "quarterly revenue by region", "limit": 20, "filters": {"region": "EMEA"},
         "note": "compare with last year\nand the year before"}
    )  # fmt: skip
    item = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "lookup",
            "arguments": arguments, "status": "completed"}  # fmt: skip
    response = orjson.loads(BODY) | {"status": "completed", "output": [item]}
    pieces = [arguments[i : i + 4] for i in range(0, len(arguments), 4)]
    pieces = (pieces * (deltas // len(pieces) + 1))[:deltas]
    frames = [("response.output_item.added", {"output_index": 0, "item": item | {"arguments": ""}})]
    frames += [
        ("response.function_call_arguments.delta",
         {"item_id": "fc_1", "output_index": 0, "delta": piece})
        for piece in pieces
    ]  # fmt: skip
    frames += [
        ("response.function_call_arguments.done",
         {"item_id": "fc_1", "output_index": 0, "arguments": arguments}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": response}),
    ]  # fmt: skip
    stream = b"".join(
        b"event: " + kind.encode() + b"\ndata: "
        + orjson.dumps({"type": kind, **data, "sequence_number": n}) + b"\n\n"
        for n, (kind, data) in enumerate(frames)
    )  # fmt: skip
    form = b"grant_type=client_credentials&scope=read%20write&redirect_uri=https%3A%2F%2Fx.test%2F"
    return {
        "tool call": orjson.dumps(response),
        f"stream, {deltas} deltas": stream,
        "form": form,
    }


def at_least(name: str, value: float, target: float) -> dict[str, Any]:
    return {"ratio": name, "value": round(value, 3), "target": target, "op": ">=",
            "met": value >= target}  # fmt: skip


def at_most(name: str, value: float, target: float) -> dict[str, Any]:
    return {"ratio": name, "value": round(value, 3), "target": target, "op": "<=",
            "met": value <= target}  # fmt: skip


FLOOR = "aiohttp low-level server"  # fast_upstream --low-level: no application, router, middleware
UNCHECKED = "pass-through (validation off)"


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.results = Results(
            machine={
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "processor": platform.machine(),
            },
            duration_s=args.duration,
        )
        self.sizes = (10, 1_000) if args.quick else (10, 10_000, 100_000)

    def measure(self, name: str, url: str, pid: int, ids: int) -> None:
        wrk(url, 4, 1.0, ids, self.work, pid=None)  # warm-up: connections, caches, lazy imports
        for connections in (1, 16):
            # The median of --repeat runs: on a 2-core machine that wrk, the upstream and the
            # proxy share, single runs swing by tens of percent.
            runs = sorted(
                (wrk(url, connections, self.args.duration, ids, self.work, pid=pid)
                 for _ in range(self.args.repeat)),
                key=lambda run: run.requests_per_s,
            )  # fmt: skip
            row = runs[len(runs) // 2]
            row.name = name
            row.peak_rss_mb = round(peak_rss_mb(pid), 1)
            cpu = sorted(run.cpu_us for run in runs if run.cpu_us is not None)
            row.cpu_us = round(cpu[len(cpu) // 2], 1) if cpu else None  # the median, too
            self.results.rows.append(row)
            print(f"  {name:<30} c={connections:<3} {row.requests_per_s:>8.0f} req/s  "
                  f"p50 {row.p50_ms:.3f} ms  p99 {row.p99_ms:.3f} ms  errors {row.errors}  "
                  f"cpu {row.cpu_us} us/req", flush=True)  # fmt: skip

    def proxy(self, upstream: str, *extra: str) -> Iterator[tuple[str, int]]:
        """Run cassette-proxy for the body of a ``for`` loop (one iteration), then stop it."""
        port = free_port()
        log = str(self.work / f"proxy-{port}.log")
        with process(*proxy_args(port, upstream, "--log-file", log, *extra), port=port) as proc:
            yield f"http://127.0.0.1:{port}", proc.pid

    def run_workers(self) -> None:
        print("workers (replay, 1 and N processes) ...", flush=True)
        cassette = self.work / "workers-10.json"
        make_cassette(cassette, "http://127.0.0.1:9", 10)
        self.results.workers = bench_workers.run(
            self.proxy, wrk, cassette, self.work,
            duration=self.args.duration, repeat=self.args.repeat,
        )  # fmt: skip
        print(f"  {self.results.workers}", flush=True)

    def run(self) -> Results:
        if self.args.workers_only:
            self.run_workers()
            return self.results
        if not self.args.streams_only:
            upstream_port = free_port()
            upstream = f"http://127.0.0.1:{upstream_port}"
            with process(PYTHON, str(ROOT / "scripts" / "fast_upstream.py"), str(upstream_port),
                         port=upstream_port) as proc:  # fmt: skip
                self.run_against(upstream, proc.pid)
        print("streams (SSE timing, CPU per event, memory bounds) ...", flush=True)
        sse_port = free_port()
        sse_upstream = f"http://127.0.0.1:{sse_port}"
        with process(*bench_stream.upstream_command(PYTHON, ROOT, sse_port), port=sse_port):
            self.results.streaming, stream_goals = bench_stream.run(
                sse_upstream, self.proxy, cpu_seconds, self.work, self.args.quick
            )
        print(f"  {self.results.streaming}", flush=True)
        if self.args.streams_only:
            self.results.ratios = stream_goals
            return self.results
        print("cassette load time and memory ...", flush=True)
        for path in self.load_cassettes:
            self.results.loading.append(measure_load(path))
            print(f"  {self.results.loading[-1]}", flush=True)
        print("start-up: the plugin's tax, --version, serve's first answer, audit ...", flush=True)
        self.results.startup = bench_startup.measure(ROOT, BODY, quick=self.args.quick)
        print(f"  {self.results.startup}", flush=True)
        self.results.ratios = self.ratios() + stream_goals
        self.results.redaction = redaction_cost(200 if self.args.quick else 2_000)
        self.results.placeholders = placeholder_cost(2_000 if self.args.quick else 20_000)
        self.run_workers()
        return self.results

    def run_against(self, upstream: str, upstream_pid: int) -> None:
        print("generating cassettes ...", flush=True)
        cassettes = {size: self.work / f"replay-{size}.json" for size in self.sizes}
        for size, path in cassettes.items():
            make_cassette(path, upstream, size)
        yaml_size = max(size for size in self.sizes if size <= 10_000)  # the target's size
        yaml_cassette = self.work / f"replay-{yaml_size}.yaml"
        make_cassette(yaml_cassette, upstream, yaml_size)
        self.load_cassettes = [yaml_cassette, *(p for s, p in cassettes.items() if s >= 1_000)]

        print("load with wrk ...", flush=True)
        self.measure("upstream (direct)", upstream, upstream_pid, 1000)
        port = free_port()
        floor = (PYTHON, str(ROOT / "scripts" / "fast_upstream.py"), str(port), "--low-level")
        with process(*floor, port=port) as proc:  # what any aiohttp server pays for this answer
            self.measure(FLOOR, f"http://127.0.0.1:{port}", proc.pid, 1000)
        port = free_port()
        thin = (PYTHON, str(ROOT / "scripts" / "thin_proxy.py"), str(port), upstream)
        with process(*thin, port=port) as proc:
            self.measure("thin aiohttp proxy", f"http://127.0.0.1:{port}", proc.pid, 1000)
        for url, pid in self.proxy(upstream):
            self.measure("pass-through (warn, log)", url, pid, 1000)
        for url, pid in self.proxy(upstream, "--validation", "off"):  # what the checks cost
            self.measure(UNCHECKED, url, pid, 1000)
        recording = ("--cassette", str(self.work / "recording.json"), "--record-mode", "all")
        for url, pid in self.proxy(upstream, *recording):
            self.measure("recording (all, journal)", url, pid, 1000)
        for size, path in cassettes.items():
            replay = ("--cassette", str(path), "--record-mode", "none", "--allow-playback-repeats")
            for url, pid in self.proxy(upstream, *replay):
                self.measure(f"replay ({size:,} interactions)", url, pid, min(size, 1000))

        print("openai client, sequential cancels ...", flush=True)
        calls = 300 if self.args.quick else 3_000
        cassette = self.work / "client-300.yaml"
        make_cassette(cassette, upstream, 300)
        client = self.results.client
        client["direct"] = client_rate(f"{upstream}/v1", calls, "direct", cassette, 300)
        replay = ("--cassette", str(cassette), "--record-mode", "none", "--allow-playback-repeats")
        for url, _ in self.proxy(upstream, *replay):
            client["proxy replay"] = client_rate(f"{url}/v1", calls, "proxy", cassette, 300)
        client["vcrpy in-process replay"] = client_rate(
            f"{upstream}/v1", calls, "vcrpy", cassette, 300
        )
        print(f"  {client}", flush=True)

    def rate(self, name: str, connections: int) -> Row:
        return next(r for r in self.results.rows if r.name == name and r.connections == connections)

    def ratios(self) -> list[dict[str, Any]]:
        out = []
        smallest, largest = self.sizes[0], self.sizes[-1]
        for c in (1, 16):
            passthrough = self.rate("pass-through (warn, log)", c).requests_per_s
            thin = self.rate("thin aiohttp proxy", c).requests_per_s
            direct = self.rate("upstream (direct)", c).requests_per_s
            recording = self.rate("recording (all, journal)", c).requests_per_s
            small = self.rate(f"replay ({smallest:,} interactions)", c).requests_per_s
            large = self.rate(f"replay ({largest:,} interactions)", c).requests_per_s
            out += [
                at_least(f"pass-through / thin proxy (c={c})", passthrough / thin, 0.6),
                at_least(f"recording / pass-through (c={c})", recording / passthrough, 0.7),
                at_least(f"replay / direct upstream (c={c})", small / direct, 0.7),
                at_least(f"replay {largest:,} / replay {smallest:,} (c={c})", large / small, 0.9),
            ]
        # Issue 16's goals for replay's cost and its tail, at 16 connections.
        replay_row = self.rate(f"replay ({smallest:,} interactions)", 16)
        upstream_row = self.rate("upstream (direct)", 16)
        if replay_row.cpu_us is not None and upstream_row.cpu_us:
            out.append(
                at_most(
                    "replay CPU / upstream CPU per request (c=16)",
                    replay_row.cpu_us / upstream_row.cpu_us,
                    2.0,
                )
            )
        out.append(
            at_most(
                "replay p99 / upstream p99 (c=16)", replay_row.p99_ms / upstream_row.p99_ms, 2.0
            )
        )
        added = (
            self.rate("pass-through (warn, log)", 1).p50_ms
            - self.rate("upstream (direct)", 1).p50_ms
        )
        out.append(at_most("pass-through added p50 at c=1 (ms)", added, 0.5))
        client = self.results.client
        out.append(
            at_least(
                "openai client: proxy replay / direct",
                client["proxy replay"] / client["direct"],
                0.85,
            )
        )
        for what, value, op, target in bench_startup.goals(self.results.startup):
            out.append((at_most if op == "<=" else at_least)(what, value, target))
        for load in self.results.loading:
            if load["interactions"] == 10_000:
                out.append(at_most(f"load {load['cassette']} (s)", load["load_s"], 1.5))
            if "vcrpy_s" in load:
                out.append(
                    at_least(
                        f"vcrpy's loader / ours, {load['cassette']}",
                        load["vcrpy_s"] / load["load_s"],
                        4.0,
                    )
                )
            out.append(at_most(f"RSS / file size, {load['cassette']}", load["rss_over_file"], 3))
        return out


def validation_cost(rounds: int = 300, repeat: int = 5) -> str:
    """The report's line on validation: CPU µs to check one response against the contract, in
    this process (no server), for a cancel, a create and a 200-event stream (checked event by
    event as the proxy feeds them, then finished). The median of ``repeat`` runs of ``rounds``."""
    cancelled = orjson.loads(BODY)
    done = cancelled | {"status": "completed", "background": False, "completed_at": 1755575235}
    started = done | {"status": "in_progress", "output": [], "usage": None, "completed_at": None}
    item = done["output"][0]
    place = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0, "item": item | {"content": []}},
        {"type": "response.content_part.added", **place, "part": part},
        *({"type": "response.output_text.delta", **place, "delta": "слово ", "logprobs": []}
          for _ in range(192)),
        {"type": "response.output_text.done", **place, "text": "слово " * 192, "logprobs": []},
        {"type": "response.content_part.done", **place, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
    ]  # fmt: skip
    stream = b"".join(
        b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e | {"sequence_number": n}))
        for n, e in enumerate(events)
    )
    decoded = decode_all(stream)
    cancel, create = classify("POST", "/v1/responses/r/cancel"), classify("POST", "/v1/responses")
    json_type, created = "application/json", orjson.dumps(done)

    def checked_stream() -> None:
        checker = stream_checker(create, 200)
        assert checker is not None
        for event in decoded:
            checker.check(event)
        assert checker.finish(ended=True) == []

    cases = {
        "cancel": lambda: check_status_and_body(cancel, 200, BODY, json_type),
        "create": lambda: check_status_and_body(create, 200, created, json_type),
        f"{len(decoded)}-event stream": checked_stream,
    }
    figures = []
    for name, case in cases.items():
        runs = []
        for _ in range(repeat):
            start = time.process_time()
            for _ in range(rounds):
                case()
            runs.append((time.process_time() - start) / rounds * 1e6)
        figures.append(f"{name} {sorted(runs)[repeat // 2]:,.0f}")
    cold = [_after_caches_cooled(cases["cancel"], rounds) for _ in range(repeat)]
    figures.append(f"cancel with cold caches {sorted(cold)[repeat // 2]:,.0f}")
    return f"validation, CPU us per response (in process): {', '.join(figures)}"


def _after_caches_cooled(case: Callable[[], object], rounds: int, mib: int = 16) -> float:
    """CPU µs of ``case`` when ``mib`` MiB were touched before each call (not timed): the
    state a check meets in the server, where a whole request's work runs between two checks."""
    memory = bytearray(mib << 20)
    lines = bytes(len(memory) // 64)
    spent = 0
    for _ in range(rounds):
        memory[::64] = lines  # a byte in every cache line
        start = time.process_time_ns()
        case()
        spent += time.process_time_ns() - start
    return spent / rounds / 1000


def placeholder_cost(rounds: int = 20_000, repeat: int = 5) -> dict[str, float]:
    """CPU µs a replay hit spends finding its recording and the answer to send (the lookup,
    and the filling of placeholders), in process, the request path's step alone: without
    folder placeholders (--no-folder-placeholders, a cassette naming the folder), and with them,
    for a create request naming its folder whose answer does too (the folder filled in), and
    for a cancel naming none (nothing to fill). "repeated": the same request again (the
    1,024-request memo); "distinct": 2,000 requests each seen once per round (no memo)."""
    from cassette_proxy.models.http import ProxyRequest  # noqa: PLC0415 - bench only
    from cassette_proxy.settings import Settings  # noqa: PLC0415 - bench only
    from cassette_proxy.store.recorder import Recorder  # noqa: PLC0415 - bench only

    folder = "b1gexamplefolder000"
    headers = {"Authorization": "Bearer bench-dummy-key", "Content-Type": "application/json"}
    body = orjson.loads(BODY)
    distinct = 2_000

    def create(n: int, shown: str) -> bytes:
        return orjson.dumps({"model": f"gpt://{shown}/yandexgpt/latest", "input": f"q {n}"})

    def cassette(path: Path, shown: str) -> None:
        answer = orjson.dumps(body | {"model": f"gpt://{shown}/yandexgpt/latest"})
        uri = "http://127.0.0.1:9/v1/responses"
        save_cassette(
            path,
            [
                Interaction(
                    VcrRequest("POST", uri, create(n, shown), {"openai-project": shown}),
                    200,
                    "OK",
                    (("Content-Type", "application/json"), ("x-folder-id", shown)),
                    answer,
                )
                for n in range(distinct)
            ]
            + [Interaction(VcrRequest("POST", uri + "/r_1/cancel", b"", {}), 200, "OK", (), BODY)],
        )

    def recorder(path: Path, folders: bool) -> Recorder:
        settings = Settings(
            cassette=path,
            record_mode="none",
            upstream="http://127.0.0.1:9",
            allow_playback_repeats=True,
            folder_placeholders=folders,
        )
        return Recorder(settings)

    def per_request(proxy: Recorder, requests: list[ProxyRequest]) -> float:
        def run() -> None:
            for request in requests:
                interaction = proxy.play(request)
                assert interaction is not None
                proxy.replayed(interaction, request)

        run()  # warm up: templates, memos
        number = max(rounds // len(requests), 1)
        best = min(timeit.repeat(run, timer=time.process_time, number=number, repeat=repeat))
        return round(best / (number * len(requests)) * 1e6, 2)

    work = Path(tempfile.mkdtemp(prefix="cassette-proxy-placeholders-"))
    try:
        raw, hidden = work / "raw.yaml", work / "hidden.yaml"
        cassette(raw, folder)
        cassette(hidden, "<FOLDER_ID>")
        cases = {
            "folders off": recorder(raw, folders=False),
            "folders on": recorder(hidden, folders=True),
        }
        project = {**headers, "OpenAI-Project": folder}
        from multidict import CIMultiDict, CIMultiDictProxy  # noqa: PLC0415 - bench only

        def request(path: str, body: bytes, given: dict[str, str]) -> ProxyRequest:
            return ProxyRequest("POST", path, CIMultiDictProxy(CIMultiDict(given)), body)

        out: dict[str, float] = {}
        for label, proxy in cases.items():
            same = [request("/v1/responses", create(0, folder), project)]
            many = [request("/v1/responses", create(n, folder), project) for n in range(distinct)]
            cancel = [request("/v1/responses/r_1/cancel", b"", headers)]
            out[f"create, repeated, {label}"] = per_request(proxy, same)
            out[f"create, distinct, {label}"] = per_request(proxy, many)
            out[f"cancel (no folder), repeated, {label}"] = per_request(proxy, cancel)
            proxy.close()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _replay_budget(results: Results) -> str | None:
    """The line that says what replay's goal asks of its own code: its CPU per request at c=16
    above aiohttp's low-level server answering the same body, against what 0.7x the upstream's
    rate leaves above that floor (on a machine the load generator shares, rate follows CPU)."""
    cpu = {r.name: r.cpu_us for r in results.rows if r.connections == 16 and r.cpu_us}
    replay = cpu.get("replay (10 interactions)")  # the smallest cassette, as the goals take it
    floor, upstream = cpu.get(FLOOR), cpu.get("upstream (direct)")
    if replay is None or floor is None or upstream is None:
        return None
    return (
        f"replay's own CPU above aiohttp's floor (c=16): {replay - floor:.0f} us/req "
        f"(replay {replay:.0f} - floor {floor:.0f}); replay at 0.7x the upstream leaves "
        f"{upstream / 0.7 - floor:.0f} us/req above the floor"
    )


def _passthrough_budget(results: Results) -> str | None:
    """The line that says what pass-through's goal asks: its CPU per request at c=16 with and
    without validation, against what 0.6x the thin proxy's rate allows."""
    cpu = {r.name: r.cpu_us for r in results.rows if r.connections == 16 and r.cpu_us}
    checked, unchecked = cpu.get("pass-through (warn, log)"), cpu.get(UNCHECKED)
    thin = cpu.get("thin aiohttp proxy")
    if checked is None or unchecked is None or thin is None:
        return None
    return (
        f"pass-through CPU (c=16): {checked:.0f} us/req, of which validation "
        f"{checked - unchecked:.0f} (--validation off: {unchecked:.0f}); the thin proxy "
        f"{thin:.0f}, so 0.6x its rate leaves {thin / 0.6:.0f} us/req"
    )


def render(results: Results) -> str:
    lines = [f"machine: {results.machine}", ""]
    if results.workers:
        lines.append(f"replay with --workers, req/s at c={results.workers['connections']}: "
                     + ", ".join(f"{k} {v}" for k, v in results.workers.items()
                                 if k not in {"connections", "cpus"}))  # fmt: skip
        if not results.rows:
            return "\n".join(lines)
    lines.append(f"{'target':<32} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
                 f"{'errors':>6} {'peak MB':>8} {'CPU us/req':>10}")  # fmt: skip
    for r in results.rows:
        peak = f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "-"
        cpu = f"{r.cpu_us:.0f}" if r.cpu_us is not None else "-"
        lines.append(f"{r.name:<32} {r.connections:>5} {r.requests_per_s:>8.0f} {r.p50_ms:>8.3f} "
                     f"{r.p99_ms:>8.3f} {r.errors:>6} {peak:>8} {cpu:>10}")  # fmt: skip
    lines += [line for line in (_replay_budget(results), _passthrough_budget(results)) if line]
    lines.append("")
    rates = ", ".join(f"{name} {value:.0f}" for name, value in results.client.items())
    lines.append(f"openai client, sequential cancels/s: {rates}")
    lines.append(validation_cost())
    lines.append("")
    streaming = results.streaming
    for name in ("direct", "pass-through", "replay", "replay, recorded timing"):
        if name in streaming:
            figures = streaming[name]
            gaps = (
                "events at once (--replay-timing off)"
                if name == "replay"
                else f"gap error median {figures['gap_error_median_ms']:.3f} ms, "
                f"p95 {figures['gap_error_p95_ms']:.3f} ms"
            )
            lines.append(f"SSE {name:<26} first event {figures['first_event_ms']:>8.3f} ms  {gaps}")
    if streaming:
        large = streaming["large"]
        lines.append(f"CPU per streamed event (pass-through): {streaming['cpu_us_per_event']} us")
        lines.append(f"{large['size_mib']} MiB through the proxy: RSS +{large['rss_growth_mib']} "
                     f"MiB at {large['mib_per_s']} MiB/s")  # fmt: skip
        hang = streaming["hang_ups"]
        lines.append(f"hang-ups on 200 MiB: one +{hang['one_mib']} MiB, thirty "
                     f"+{hang['thirty_mib']} MiB")  # fmt: skip
        lines.append(f"1 MiB gzip bomb, RSS growth (MiB): {streaming['bomb_rss_growth_mib']}")
    lines.append(
        "redaction us/body: " + ", ".join(f"{k} {v}" for k, v in results.redaction.items())
    )
    lines.append(
        "replay hit, lookup and placeholders, CPU us/request (in process): "
        + ", ".join(f"{k} {v}" for k, v in results.placeholders.items())
    )
    lines.append("")
    for load in results.loading:
        lines.append(f"load {load['cassette']:<20} {load['interactions']:>7,} interactions "
                     f"{load['file_mb']:>7.1f} MB {load['load_s']:>7.2f} s  "
                     f"RSS +{load['rss_mb']:.0f} MB ({load['rss_over_file']}x)")  # fmt: skip
    startup = results.startup
    if startup:
        plugin, cli, serve, audit = (startup[k] for k in ("plugin", "cli", "serve", "audit"))
        lines.append(f"pytest, one test: {plugin['installed']} ms with the plugin, "
                     f"{plugin['disabled']} ms with -p no:cassette_proxy (the pairs differ by "
                     f"{plugin['tax_ms']} ms); the entry point's import on top of pytest's "
                     f"{plugin['entry_import_ms']} ms")  # fmt: skip
        lines.append(f"cassette-proxy --version {cli['version_ms']} ms, --help {cli['help_ms']} ms")
        lines.append(f"serve: first replayed answer {serve['first_answer_ms']} ms after start; "
                     f"first request {serve['first_request_ms']} ms, second "
                     f"{serve['second_request_ms']} ms")  # fmt: skip
        lines.append(f"audit {audit['lines']:,} lines ({audit['file_mb']} MB): "
                     f"{audit['audit_ms']:.0f} ms; a process running orjson.loads over them "
                     f"{audit['orjson_ms']:.0f} ms")  # fmt: skip
    lines.append("")
    for target in results.ratios:
        mark = "ok  " if target["met"] else "MISS"
        lines.append(
            f"{mark} {target['ratio']:<48} {target['value']:>8} "
            f"(target {target['op']} {target['target']})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="cassette-proxy benchmark")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="small cassettes, fewer calls")
    parser.add_argument(
        "--streams-only", action="store_true", help="only the streaming figures (about a minute)"
    )
    parser.add_argument(
        "--workers-only", action="store_true", help="only replay with 1 and N --workers"
    )
    parser.add_argument(
        "--steering-only",
        action="store_true",
        help="only what steering costs: the check per request, replay CPU, a cassette per case",
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="with --steering-only: a source tree to measure replay CPU from too",
    )
    parser.add_argument(
        "--redaction-only", action="store_true", help="only the redaction cost per body (seconds)"
    )
    args = parser.parse_args()
    if args.redaction_only:
        for name, us in redaction_cost(200 if args.quick else 2_000).items():
            print(f"{name:<44} {us:>10.2f} us")
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: ./scripts/bench installs it (apt-get install wrk)")
    if args.steering_only:
        import bench_steering  # noqa: PLC0415 - this run only

        print(json.dumps(bench_steering.run(args), indent=2))
        return
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="cassette-proxy-bench-"))
    try:
        results = Bench(args, work).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = render(results)
    print("\n" + text)
    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(asdict(results), indent=2))
    (out_dir / f"bench-{stamp}.txt").write_text(text + "\n")
    elapsed = time.monotonic() - started
    print(f"\nwritten to bench-results/bench-{stamp}.json and .txt ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
