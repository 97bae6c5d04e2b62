"""Running the proxy as a process: bind, announce, wait for a signal, drain, save, exit.

SIGTERM and SIGINT stop accepting connections, let in-flight requests finish (up to
``SHUTDOWN_GRACE`` seconds), then save the cassette and return: the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Final

from aiohttp import web

from proxy import __version__
from proxy.app import AUDIT_LOG, build_app
from proxy.errors import StartupError
from proxy.settings import Settings

SHUTDOWN_GRACE: Final = 30.0


async def serve(settings: Settings) -> None:
    app = build_app(settings)
    log = app[AUDIT_LOG]
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from exc
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await stop.wait()
    finally:
        log.lifecycle("stopping", signal=received[0] if received else None)
        await runner.cleanup()  # drains in-flight requests, saves the cassette, closes the log
