"""What can change in a running proxy, as the request path sees it.

The control API (:mod:`cassette_proxy.serving.control`), the fault rules of ``--faults`` and
the pytest plugin change the proxy while it serves: its cassette, per-request cassettes, fault
rules. The request path asks one question of all that, ``active or X-Cassette-Proxy-Cassette in
headers`` (an attribute and a dict lookup, so a proxy with none of it pays nothing more), and
only then takes the step below: wait for a cassette being replaced, pick the request's
cassette, and let a fault rule act before the headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from cassette_proxy.models.http import CASSETTE_HEADER, ProxyRequest
from cassette_proxy.serving.cassettes import CASSETTE_KEY, Cassettes, checked_name
from cassette_proxy.serving.exchange import Exchange
from cassette_proxy.serving.faults import Faults, Fired, before_headers
from cassette_proxy.serving.observers.recent import RecentExchanges
from cassette_proxy.store.recorder import Recorder

if TYPE_CHECKING:
    from cassette_proxy.serving.handler import Pipeline

__all__ = ["CASSETTE_HEADER", "CASSETTE_KEY", "Steering"]


class Steering:
    """Fault rules, the cassettes, and the exchanges kept for the control API."""

    def __init__(self) -> None:
        self.active = False  # a request must take the steering step (rules, a cassette swap)
        self.faults = Faults(self._refresh)
        self.cassettes: Cassettes | None = None  # given by the application, with its log
        self.recent: RecentExchanges | None = None  # kept only with the control API

    def attach(self, cassettes: Cassettes) -> None:
        self.cassettes = cassettes
        cassettes.on_change = self._refresh

    def _refresh(self) -> None:
        self.active = bool(self.faults) or (self.cassettes is not None and self.cassettes.changing)

    async def steer(
        self, pipeline: Pipeline, exchange: Exchange, incoming: ProxyRequest, request: web.Request
    ) -> tuple[Recorder | None, Fired | None]:
        """The request's cassette, and the fault rule that fired on it (having acted already,
        if it acts before the headers)."""
        name = incoming.headers.get(CASSETTE_KEY)
        if name is not None:
            exchange.cassette = checked_name(name)
            if self.cassettes is not None:
                self.cassettes.serves_names()  # refused before any rule fires on it
        fired = None
        if self.faults:
            fired = self.faults.take(incoming.method, incoming.path, exchange.cassette)
            if fired is not None:
                exchange.fault = fired.record
                await before_headers(fired, request)
        if self.cassettes is None:
            return pipeline.recorder, fired
        return await self.cassettes.for_request(exchange.cassette), fired
