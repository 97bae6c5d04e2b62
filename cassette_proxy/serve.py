"""Running the proxy: as a process (:func:`serve`) or inside another program, such as a test
run, on a thread of its own (:class:`ServerThread`).

SIGTERM and SIGINT stop accepting connections, let in-flight requests finish (up to
``--shutdown-timeout`` seconds, a hard deadline: requests still running then are cut), then save
the cassette and return: the process exits 0.
"""

from __future__ import annotations

import asyncio
import errno
import re
import signal
import sys
import threading
from collections.abc import Callable
from typing import Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server
from yarl import URL

from cassette_proxy import __version__
from cassette_proxy.app import (
    AUDIT_LOG,
    PIPELINE,
    SOURCE_HEADER,
    VALIDATION_HEADER,
    build_app,
    error_response,
)
from cassette_proxy.errors import HTTPRefusal, StartupError
from cassette_proxy.log import AuditLog
from cassette_proxy.models.violations import Verdict
from cassette_proxy.recorder import Recorder
from cassette_proxy.redact import redact_path
from cassette_proxy.settings import Settings

SHUTDOWN_GRACE: Final = 30.0
_LLHTTP_MESSAGE: Final = re.compile(r"(?P<reason>[A-Za-z][A-Za-z0-9 ,'-]{0,100}):\n\n  b['\"]")
# aiohttp's parser refuses request lines and headers over 8 KiB with a bare text/plain 400,
# before the proxy can answer in its envelope; 64 KiB lets long ids reach the proxy's own checks.
RUNNER_OPTIONS: Final = {"max_line_size": 64 * 1024, "max_field_size": 64 * 1024}


class _ConnectionHandler(RequestHandler):
    """aiohttp's handler of one connection, but for requests its HTTP parser rejects.

    aiohttp answers those itself, before any application code runs, with a text/plain 400 that
    quotes the offending request line or header, and logs a traceback quoting it too: a
    credential in that line would leak to the client, to stderr and to whatever collects it.
    Here they get the OpenAI error envelope like every other refusal, with aiohttp's reason and
    never the raw bytes, and an ``unparsable_request`` event in the audit log, holding only the
    reason, instead of the traceback.
    """

    audit_log: AuditLog

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        # llhttp's messages are "<reason>:\n\n  b'<the raw line>'\n  ^": the reason is kept.
        # Any other shape may hold request bytes in its first line (LineTooLong: "Got more
        # than 65536 bytes when reading: b'...'"; the pure-Python parser's "Bad HTTP method in
        # status line '<line>'"), so only the exception's class name is used then.
        shaped = _LLHTTP_MESSAGE.match(message or "")
        reason = shaped["reason"] if shaped else type(exc).__name__
        self.audit_log.lifecycle("unparsable_request", status=status, reason=reason)
        response = error_response(
            HTTPRefusal(
                status,
                f"cassette-proxy could not parse the request ({reason}), so nothing was "
                "forwarded; the offending line is not quoted, as it may hold a credential",
            )
        )
        response.headers[SOURCE_HEADER] = "proxy"
        response.headers[VALIDATION_HEADER] = Verdict.SKIPPED.value
        response.force_close()
        return response

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109 - aiohttp's
        """aiohttp's drain, with ``timeout`` as a hard deadline for this connection.

        aiohttp waits ``timeout`` for the request in progress, then cancels it and waits up to
        ``timeout`` again for the handler (2x the grace, or longer for a handler that outlives
        its cancellation: 44 s and 62 s for a 30 s grace were measured). Here a request still
        running at the deadline is cut: its handler is cancelled, its connection closed, and
        nothing of it is recorded."""
        request = self._current_request
        try:
            async with asyncio.timeout(timeout):
                await super().shutdown(timeout)
        except TimeoutError:
            if request is not None:
                self.audit_log.lifecycle(
                    "request_cut",
                    method=request.method,
                    path=redact_path(request.raw_path),
                    shutdown_timeout=timeout,
                )
            if self._task_handler is not None:
                self._task_handler.cancel()
            self.force_close()


class _Server(Server):
    """aiohttp's server, making :class:`_ConnectionHandler` for each connection."""

    audit_log: AuditLog

    def __call__(self) -> RequestHandler:
        # Server.__call__ with our handler class; _loop and _kwargs are what it passes too.
        handler = _ConnectionHandler(self, loop=self._loop, **self._kwargs)
        handler.audit_log = self.audit_log
        return handler


class _Runner(web.AppRunner):
    """aiohttp's runner for ``app``, serving a proxy application with :class:`_Server`."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        audit_log = self.app.get(AUDIT_LOG)
        if audit_log is None:  # not a proxy (ServerThread also serves test upstreams)
            return server
        # The app's server as aiohttp configured it, given our connection handler: _Server adds
        # no state of its own, so it can take over the instance.
        server.__class__ = _Server
        assert isinstance(server, _Server)
        server.audit_log = audit_log
        return server


async def start(
    app: web.Application, host: str, port: int, shutdown_timeout: float = SHUTDOWN_GRACE
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port``; the runner (to clean up, within ``shutdown_timeout``
    seconds for requests in flight) and the URL it listens on."""
    runner = _Runner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        max_line_size=RUNNER_OPTIONS["max_line_size"],
        max_field_size=RUNNER_OPTIONS["max_field_size"],
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
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


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain, save and return."""
    app = build_app(settings)
    log = app[AUDIT_LOG]
    recorder = app[PIPELINE].recorder
    if recorder is not None and not recorder.existed and not recorder.policy.record:
        sys.stderr.write(
            f"cassette-proxy: warning: cassette {str(recorder.path)!r} does not exist and "
            f"record mode {recorder.mode.value!r} does not record: every request will be "
            "answered 501. Record it first (--record-mode once)\n"
        )
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    # Before listening is announced, so a SIGTERM sent as soon as it is still drains and saves.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    runner, url = await start(app, settings.host, settings.port, settings.shutdown_timeout)
    sys.stderr.write(
        f"cassette-proxy listening on {url} (base_url {url}/v1), {_doing(settings, recorder)}\n"
    )
    sys.stderr.flush()
    log.lifecycle(
        "listening",
        url=url,
        base_url=f"{url}/v1",
        upstream=settings.upstream_base,
        mode=settings.record_mode.value if settings.cassette else "pass-through",
        cassette=str(settings.cassette) if settings.cassette else None,
        validation=settings.validation.value,
        version=__version__,
    )
    try:
        await stop.wait()
    finally:
        log.lifecycle("stopping", signal=received[0] if received else None)
        await runner.cleanup()  # drains in-flight requests, saves the cassette, closes the log


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
        self.app = self._make_app()
        runner, self.url = await start(self.app, self._host, 0)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
