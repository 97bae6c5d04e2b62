"""Workers asking each other for their metrics, so that any scrape sees all of them.

With ``--workers N`` the kernel hands each connection to one worker, a scrape of
``/_proxy/metrics`` included. The worker that gets the scrape asks every other one for its
counters over a Unix socket in a folder only the proxy's user can enter (made by the
supervisor), adds them to its own, and answers with the sum: counters and histograms exact at
the time of the scrape, with no file written per request (LiteLLM's Prometheus multiprocess
mode writes one per process and value). A worker that does not answer within
:data:`ASK_TIMEOUT` makes the scrape a 503 that names it, rather than a sum that would go
backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Final

import orjson

from cassette_proxy.errors import ProxyError
from cassette_proxy.serving.observers.metrics import Metrics

ASK_TIMEOUT: Final = 2.0
_MAX_SNAPSHOT: Final = 64 * 1024 * 1024


class MetricsIncomplete(ProxyError):
    status = 503
    error_type = "proxy_error"
    code = "metrics_incomplete"
    retryable = True


def socket_path(folder: Path, index: int) -> Path:
    return folder / f"worker-{index}.sock"


class Peers:
    """This worker's place among ``count`` workers: it answers their questions and asks its own."""

    def __init__(self, folder: Path, index: int, count: int) -> None:
        self.folder = folder
        self.index = index
        self.count = count
        self._server: asyncio.AbstractServer | None = None

    async def start(self, metrics: Metrics) -> None:
        """Answer other workers with this one's counters."""

        async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(orjson.dumps(metrics.snapshot()))
                await writer.drain()
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

        path = socket_path(self.folder, self.index)
        path.unlink(missing_ok=True)  # a worker restarted in the same place
        self._server = await asyncio.start_unix_server(answer, path)

    async def gather(self) -> list[dict[str, Any]]:
        """Every other worker's counters; :class:`MetricsIncomplete` names one that did not
        answer."""
        others = [index for index in range(self.count) if index != self.index]
        return list(await asyncio.gather(*(self._ask(index) for index in others)))

    async def _ask(self, index: int) -> dict[str, Any]:
        path = socket_path(self.folder, index)
        try:
            async with asyncio.timeout(ASK_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(path, limit=_MAX_SNAPSHOT)
                try:
                    data = await reader.read(_MAX_SNAPSHOT)
                finally:
                    writer.close()
            snapshot = orjson.loads(data)
        except (OSError, TimeoutError, orjson.JSONDecodeError) as exc:
            raise MetricsIncomplete(
                f"cassette-proxy's worker {index + 1} of {self.count} did not give its metrics "
                f"({type(exc).__name__}: {exc or 'no answer'} within {ASK_TIMEOUT:g} s), so no "
                "sum is reported rather than one that would go backwards; it may be restarting. "
                "Scrape again"
            ) from exc
        if not isinstance(snapshot, dict):
            raise MetricsIncomplete(f"worker {index + 1} answered with something not a snapshot")
        return snapshot

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            socket_path(self.folder, self.index).unlink(missing_ok=True)
