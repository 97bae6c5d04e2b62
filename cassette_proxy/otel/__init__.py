"""OpenTelemetry export, an optional extra (``pip install 'cassette-proxy[otel]'``).

Switched on by OpenTelemetry's own variables: an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT``, or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
``_METRICS_ENDPOINT``) and not ``OTEL_SDK_DISABLED=true``. Without them this module is all that
is loaded, and it imports nothing of OpenTelemetry; with them but without the extra, one warning
says what to install and the proxy runs as before. The rest (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_PROTOCOL``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_PROPAGATORS``, ``OTEL_BSP_*``, ``OTEL_TRACES_EXPORTER=none`` ...) is read by the SDK
as it documents.

:class:`Tracer` is what the request path sees: an observer told when an exchange is forwarded
(its upstream call gets a span, and the span's ``traceparent``) and when it is settled
(:mod:`cassette_proxy.otel.observer` implements it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from cassette_proxy.serving.exchange import Exchange
    from cassette_proxy.serving.upstream import OutboundRequest
    from cassette_proxy.settings import Settings

ENDPOINTS: Final = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
INSTALL: Final = "pip install 'cassette-proxy[otel]'"


class Tracer(Protocol):
    """An observer of the request path that exports spans and metrics."""

    def forwarding(self, exchange: Exchange, request: OutboundRequest) -> OutboundRequest:
        """The request about to go upstream, with the upstream call's ``traceparent``."""
        ...

    def finished(self, exchange: Exchange, status: int, duration_ms: float) -> None:
        """The exchange is settled (its last byte is about to leave): end its spans."""
        ...

    async def close(self) -> None:
        """Export what is still buffered, then stop."""
        ...


def wanted(environ: Mapping[str, str]) -> str | None:
    """The variable that asks for export (an OTLP endpoint), or None."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return next((name for name in ENDPOINTS if environ.get(name, "").strip()), None)


def telemetry(settings: Settings, environ: Mapping[str, str] = os.environ) -> Tracer | None:
    """The tracer the ``OTEL_*`` variables ask for, or None (nothing of OpenTelemetry is
    imported then)."""
    variable = wanted(environ)
    if variable is None:
        return None
    try:
        from cassette_proxy.otel.observer import Telemetry  # noqa: PLC0415 - only when asked
    except ImportError as exc:
        sys.stderr.write(
            f"cassette-proxy: warning: {variable} is set, but OpenTelemetry is not installed "
            f"({exc.name or exc}): {INSTALL}. No spans or OpenTelemetry metrics are exported\n"
        )
        return None
    return Telemetry.from_environment(settings, environ)
