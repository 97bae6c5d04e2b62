"""Running the proxy: as a process (:func:`serve`) or inside another program, such as a test
run, on a thread of its own (:class:`ServerThread`).

SIGTERM and SIGINT turn ``/_proxy/ready`` to 503 (for ``--drain-delay`` seconds the proxy still
serves, so load balancers take it out first), then stop accepting connections, let in-flight
requests finish (up to ``--shutdown-timeout`` seconds, a hard deadline: requests still running
then are cut), then save the cassette and return: the process exits 0. SIGHUP reopens the log
file at its path (after logrotate moved it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import itertools
import resource
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Final

from aiohttp import web
from yarl import URL

from cassette_proxy import __version__
from cassette_proxy.errors import StartupError
from cassette_proxy.redact.rules import rule_set
from cassette_proxy.serving.app import AUDIT_LOG, METRICS, PEERS, PIPELINE, READINESS, build_app
from cassette_proxy.serving.process.peers import Peers
from cassette_proxy.serving.process.server import RUNNER_OPTIONS, Limits, ProxyRunner
from cassette_proxy.settings import RecordMode, ReplayTiming, Settings
from cassette_proxy.store.recorder import Recorder, Summary, refuse_a_missing_cassette

SHUTDOWN_GRACE: Final = 30.0


async def start(
    app: web.Application,
    host: str,
    port: int,
    shutdown_timeout: float = SHUTDOWN_GRACE,
    *,
    sock: socket.socket | None = None,
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (or on ``sock``, bound already: a worker's); the runner
    (to clean up, within ``shutdown_timeout`` seconds for requests in flight) and the URL it
    listens on."""
    pipeline = app.get(PIPELINE)
    keepalive = pipeline.settings.keepalive_timeout if pipeline else Limits().keepalive_timeout
    runner = ProxyRunner(
        app,
        handle_signals=False,
        keepalive_timeout=keepalive,
        # A client that goes away cancels its handler, so the upstream request is dropped at
        # once, even while the proxy waits for the upstream's headers.
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        **RUNNER_OPTIONS,
    )
    await runner.setup()
    site: web.BaseSite = (
        web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, host, port)
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        hint = (
            "; is another proxy running there? Pick another --port, or --port 0 for a free one"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    bound_host, bound_port = runner.addresses[0][:2]
    return runner, str(URL.build(scheme="http", host=bound_host, port=bound_port))


def ineffective(settings: Settings) -> list[str]:
    """Options given that this run cannot use, said once at start (they are not errors)."""
    found = []
    if settings.replay_speed != 1.0 and settings.replay_timing is ReplayTiming.OFF:
        found.append("--replay-speed has no effect without --replay-timing recorded")
    if (
        settings.replay_timing is ReplayTiming.RECORDED
        and settings.cassette is None
        and settings.cassette_dir is None
        and not settings.admin
    ):
        found.append("--replay-timing recorded has no effect without --cassette (nothing replays)")
    if settings.admin_token is not None and not settings.admin:
        found.append("--admin-token has no effect without --admin (the control API is off)")
    return found


def _steered(settings: Settings) -> str:
    """What the line on stderr adds for the control API and per-request cassettes."""
    parts = []
    if settings.cassette_dir is not None:
        parts.append(f"a cassette per request under {settings.cassette_dir}")
    if settings.admin:
        guard = "token required" if settings.admin_token is not None else "no token"
        parts.append(f"control API at /_proxy/ ({guard})")
    if settings.faults:
        parts.append(f"{len(settings.faults)} fault rule(s)")
    return "".join(f"; {part}" for part in parts)


def _doing(settings: Settings, recorder: Recorder | None) -> str:
    """What the proxy does, as its line on stderr says it: ``replaying cassettes/demo.yaml``."""
    if recorder is None:
        return f"forwarding to {settings.upstream_base}"
    cassette, upstream = str(recorder.path), settings.upstream_base
    if not recorder.policy.record:
        return f"replaying {cassette}"
    if recorder.policy.replay:
        return f"replaying {cassette}, recording what it lacks from {upstream}"
    return f"recording {cassette} from {upstream}"


def _cassette_notes(settings: Settings, recorder: Recorder | None) -> list[str]:
    """What is worth a line about the cassette at start: recording with the clients' own keys;
    a cassette past its --re-record-interval."""
    notes: list[str] = []
    records = recorder is not None and recorder.policy.record
    # Per-request cassettes are opened with serve's record mode: all but 'none' may record.
    per_request = settings.cassette_dir is not None and settings.record_mode is not RecordMode.NONE
    if (records or per_request) and settings.upstream_api_key is None:
        what = "" if records else " into per-request cassettes (--cassette-dir)"
        notes.append(
            f"recording without CASSETTE_PROXY_UPSTREAM_API_KEY{what}: each client's own "
            f"Authorization goes to {settings.upstream_base}; its 401 or 403 is passed on but "
            "not recorded (--record-auth-failures records them)"
        )
    if recorder is None:
        return notes
    expired = recorder.expired
    if expired is not None:
        doing = (
            "recording it again (record mode all)"
            if recorder.mode is RecordMode.ALL
            else f"replaying it all the same (--re-record-action {expired.action.value})"
        )
        notes.append(f"warning: {expired.describe()}; {doing}")
    return notes


def _closing_notes(summary: Summary) -> list[str]:
    """The unused interactions, said when the proxy stops (candidates for pruning)."""
    if not summary.unused:
        return []
    shown = ", ".join(summary.unused[:5])
    more = f" and {len(summary.unused) - 5} more" if len(summary.unused) > 5 else ""
    dropped = (
        "; left out of the file (--drop-unused-requests)"
        if summary.dropped
        else " (--drop-unused-requests leaves them out of the file)"
    )
    return [
        f"{len(summary.unused)} of the {summary.loaded} interactions in {summary.cassette} were "
        f"never played: {shown}{more}{dropped}"
    ]


# Files the process holds besides its connections' sockets: the log, the cassette, its journal
# and lock, the standard streams, the event loop's own, and connections on their way out after
# a refusal.
RESERVED_FILES: Final = 64


def raise_open_file_limit(settings: Settings) -> int:
    """Raise the soft limit on open files to the hard one (each proxied request holds two
    sockets), and return how many connections the process keeps to: --max-connections, or
    fewer when even the hard limit cannot hold two sockets each and :data:`RESERVED_FILES`
    (then it says so). Out of file descriptors, a connection could be neither answered nor
    accepted; within the cap, the ones beyond it get the 503 envelope."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    wanted = settings.max_connections
    if soft == resource.RLIM_INFINITY or soft >= 2 * wanted + RESERVED_FILES:
        return wanted
    room = max((soft - RESERVED_FILES) // 2, 1)
    sys.stderr.write(
        f"cassette-proxy: warning: the open-file limit is {soft}, which holds {room} "
        f"connections (a client and an upstream socket each, and {RESERVED_FILES} files more), "
        f"not --max-connections {wanted}: the proxy keeps to {room}, and answers clients "
        "beyond them 503 proxy_overloaded. Raise the limit (ulimit -n) to serve more\n"
    )
    return room


def warm_up() -> None:
    """Load now what the first request would otherwise load on its way: the secret rules (their
    file parsed, their keywords compiled into one set; 25-50 ms on the first request before), so
    the first request after start-up costs what the second does."""
    rule_set()


async def serve(
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    on_ready: Callable[[str], None] | None = None,
    peers: Peers | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then drain, save and return. A worker (``--workers``)
    serves on ``sock``, bound by the supervisor, and tells it when it listens (``on_ready``)
    instead of saying so on stderr, and answers the other workers (``peers``) with its
    metrics. (The process's entry: a start-up that fails ends the process, so the collector
    paused below is not resumed then.)"""
    refuse_a_missing_cassette(settings)
    # What start-up builds lives as long as the process (the cassette above all): the collector
    # would walk it again and again while it grows, so it is paused until the proxy listens.
    gc.disable()
    room = raise_open_file_limit(settings)
    if room != settings.max_connections:
        settings = settings.model_copy(update={"max_connections": room})
    warm_up()
    app = build_app(settings)
    if peers is not None:
        app[PEERS] = peers
    log = app[AUDIT_LOG]
    readiness = app[READINESS]
    recorder = app[PIPELINE].recorder
    if on_ready is None:  # said once, by the process the user started (not by each worker)
        _say([f"warning: {w}" for w in ineffective(settings)], _cassette_notes(settings, recorder))
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        readiness.drain()  # /_proxy/ready fails from now on, while requests are still served
        stop.set()

    # Before listening is announced, so a SIGTERM sent as soon as it is still drains and saves.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, log.reopen)  # logrotate's postrotate
    # Everything built so far (the cassette above all) lives as long as the process: moved out
    # of the collector's reach, a full collection no longer walks it and pauses every request.
    # Frozen before the socket listens (a client that connects at once would wait for it), and
    # not collected first: that walk costs ~50 ms of start-up to free ~2,000 objects (measured).
    gc.freeze()
    gc.enable()
    runner, url = await start(
        app, settings.host, settings.port, settings.shutdown_timeout, sock=sock
    )
    if on_ready is None:
        sys.stderr.write(
            f"cassette-proxy listening on {url} (base_url {url}/v1), {_doing(settings, recorder)}"
            f"{_steered(settings)}\n"
        )
        sys.stderr.flush()
    readiness.ready()
    log.lifecycle(
        "listening",
        url=url,
        base_url=f"{url}/v1",
        upstream=settings.upstream_base,
        mode=settings.record_mode.value if settings.cassette else "pass-through",
        cassette=str(settings.cassette) if settings.cassette else None,
        validation=settings.validation.value,
        version=__version__,
        admin=settings.admin,
        cassette_dir=str(settings.cassette_dir) if settings.cassette_dir else None,
        faults=len(settings.faults),
    )
    if peers is not None:
        await peers.start(app[METRICS])
    if on_ready is not None:
        on_ready(_doing(settings, recorder))
    try:
        await stop.wait()
        if settings.drain_delay > 0:  # still serving, with readiness failing
            log.lifecycle("draining", signal=received[0], seconds=settings.drain_delay)
            await asyncio.sleep(settings.drain_delay)
    finally:
        log.lifecycle("stopping", signal=received[0] if received else None)
        await runner.cleanup()  # drains in-flight requests, saves the cassette, closes the log
        if recorder is not None and recorder.summary is not None:
            _say(_closing_notes(recorder.summary))
        if peers is not None:
            await peers.close()


def _say(*lines: Iterable[str]) -> None:
    """Lines for the person who started the proxy, on stderr."""
    for line in itertools.chain(*lines):
        sys.stderr.write(f"cassette-proxy: {line}\n")


class ServerThread:
    """An aiohttp application served on 127.0.0.1 from a thread with its own event loop.

    Blocking callers (a sync test using ``openai.OpenAI``) and callers on another event loop (an
    async test using ``openai.AsyncOpenAI``) can both talk to it without deadlocking either.
    """

    def __init__(self, make_app: Callable[[], web.Application], host: str = "127.0.0.1") -> None:
        self._make_app = make_app
        self._host = host
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cassette-proxy", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.app: web.Application | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        """Start serving; the URL. Errors from building the app are raised here."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise StartupError(f"the server thread did not start within {timeout:g} s")
        if self._failure is not None:
            raise self._failure
        return self.url

    def stop(self, timeout: float = SHUTDOWN_GRACE + 5) -> None:
        """Drain, clean up (the proxy saves its cassette) and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the caller in start() or stop()
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        warm_up()
        self.app = self._make_app()
        runner, self.url = await start(self.app, self._host, 0)
        readiness = self.app.get(READINESS)
        if readiness is not None:
            readiness.ready()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
