"""Whether the proxy is ready to serve what it was configured for: ``GET /_proxy/ready``.

``/_proxy/health`` is liveness (the process answers); readiness is narrower, as in Kubernetes,
Envoy and LiteLLM's ``/health/readiness``. It answers 503, in the OpenAI error envelope, while:

- **starting**: the application is built but not yet announced as listening (``serve`` and the
  pytest plugin mark it ready once it listens; until then the socket is not even open, so a
  probe fails to connect, which a probe counts as not ready too);
- **draining**: a SIGTERM was received; with ``--drain-delay`` the proxy keeps serving for that
  long with readiness failing, so load balancers take it out before it stops accepting;
- **its log cannot be written** (a full disk, a closed pipe): every exchange would go unaudited.
  The probe tries to write a ``log_recovered`` line then, so readiness returns by itself once
  the disk has room.

It answers 200 otherwise. Neither endpoint is logged, so probes do not flood the audit trail.
"""

from __future__ import annotations

from enum import StrEnum

from cassette_proxy.errors import ProxyError
from cassette_proxy.serving.observers.log import AuditLog


class State(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


class NotReady(ProxyError):
    status = 503
    error_type = "proxy_error"
    code = "proxy_not_ready"
    retryable = True


class Readiness:
    """The proxy's readiness; its state changes on the event loop only."""

    def __init__(self) -> None:
        self.state = State.STARTING

    def ready(self) -> None:
        if self.state is State.STARTING:
            self.state = State.READY

    def drain(self) -> None:
        self.state = State.DRAINING

    def check(self, log: AuditLog) -> None:
        """Raise :class:`NotReady`, saying why, unless the proxy is ready."""
        if self.state is State.STARTING:
            raise NotReady(
                "cassette-proxy is starting: it has not announced that it listens yet (the "
                "cassette and the log are opened first)"
            )
        if self.state is State.DRAINING:
            raise NotReady(
                "cassette-proxy is draining after SIGTERM: requests in flight are finished, "
                "new ones should go to another instance"
            )
        if log.failing is not None:
            lost = log.failures
            log.lifecycle("log_recovered", events_lost=lost)  # succeeds once there is room
            if log.failing is not None:
                raise NotReady(
                    f"cassette-proxy cannot write its log {_where(log)}: {_reason(log.failing)}; "
                    f"{log.failures} event(s) lost so far. Exchanges would go unaudited; free "
                    "the disk or fix the log's destination"
                )


def _where(log: AuditLog) -> str:
    return f"{str(log.path)!r} (--log-file)" if log.path is not None else "(stdout)"


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"
