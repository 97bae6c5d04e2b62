"""Everything that makes the proxy answer a request itself.

Each error knows its HTTP status, its OpenAI error ``type``/``code``, and whether a client may retry
it; :func:`cassette_proxy.serving.app.exchange_middleware` turns them into responses, in that one
place::

    ProxyError
    ├── RequestRejected            400  the request cannot be forwarded as it is
    │   ├── RefusedTarget          400  absolute-form target or CONNECT: this is not an open proxy
    │   └── ContractRejected       400  strict validation found an error in the request
    ├── HTTPRefusal            4xx  aiohttp itself refused the request (unroutable target)
    ├── ProxyRouteNotFound         404  a /_proxy/ path that is not one of the proxy's own
    ├── ControlUnauthorized        401  the control API's token is missing or wrong
    ├── ControlRejected            400  a control API request that cannot be done as asked
    ├── CassetteNameRefused        400  an X-Cassette-Proxy-Cassette name that is not one
    ├── CassetteUnavailable        409  a cassette asked for cannot be opened (locked, corrupt)
    ├── InjectedFault          4xx/5xx  a fault rule answered in the upstream's place
    ├── FaultStreamError                a fault rule ended an event stream with an error event
    ├── FaultCut                        a fault rule cut an event stream (logged; no answer)
    ├── FaultReset                 444  a fault rule reset the connection (logged; no answer)
    ├── BodyTooLarge               413  request body over --max-body-size
    ├── BodyTooSlow                408  request body slower than --body-timeout/--body-min-rate
    ├── ProxyOverloaded            503  over --max-connections (retryable; the server's refusal,
    │                                   or a slow body's connection given to a new one)
    ├── ClientDisconnected         400  the client went away before its body was read
    ├── ShutdownCut                503  still running at --shutdown-timeout (logged; no answer)
    ├── CassetteMiss               501  no recorded interaction, and the record mode cannot record
    │   └── ChainBroken            501  continues a replayed response the upstream never issued
    ├── ResponseRejected           502  strict validation found an error in the upstream's response
    ├── RecordingFailed            502  the response could not be journalled, so it is not passed on
    ├── HookFailed                 500  a recording hook or custom matcher of the user's raised
    ├── InternalError              500  a bug in the proxy (logged with its traceback)
    └── UpstreamError                   the upstream could not be used (retryable)
        ├── UpstreamUnreachable    502  connection refused, DNS failure, TLS failure
        ├── UpstreamBroken         502  the upstream closed or broke the connection mid-response
        └── UpstreamTimeout        504  no complete response within --upstream-timeout

Foreign exceptions (aiohttp's, zlib's, yaml's) are translated where they arise: the network in
:mod:`cassette_proxy.serving.upstream`, files in :mod:`cassette_proxy.store.persist`.
"""

from __future__ import annotations

import traceback

import orjson

from cassette_proxy.models.errors import ErrorBody, ErrorEnvelope
from cassette_proxy.models.violations import Violation
from cassette_proxy.redact import redact_text


def describe(violations: list[Violation]) -> str:
    """``/pointer: message`` for each violation, as error messages quote them."""
    return "; ".join(f"{v.pointer or '/'}: {v.message}" for v in violations)


class ProxyError(Exception):
    """An error the proxy answers with a response of its own."""

    status: int = 500
    error_type: str = "proxy_error"
    code: str | None = None
    # x-should-retry, which the openai client obeys; None sends none (the client then decides
    # by status, as it does for the service's own answers).
    retryable: bool | None = False
    headers: tuple[tuple[str, str], ...] = ()  # more headers of the answer
    # After the headers, an event stream ends with this error as an ``error`` event; False: the
    # connection is cut instead.
    error_event: bool = True
    closes: bool = False  # the answer ends the connection (a body was left unread)

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def sse_event(self, sequence_number: int) -> bytes:
        """The error as the last event of a stream whose headers had gone: the Responses API's
        nested shape, which the ``openai`` client raises ``APIError`` on."""
        error = self.envelope().error
        return (
            b"event: error\ndata: "
            + orjson.dumps(
                {
                    "type": "error",
                    "error": {
                        "type": error.type,
                        "code": error.code,
                        "message": error.message,
                        "param": error.param,
                    },
                    "sequence_number": sequence_number,
                }
            )
            + b"\n\n"
        )

    def envelope(self) -> ErrorEnvelope:
        """The body of the answer; messages quote requests and upstream errors, so any
        credential in them is fingerprinted here, once for every kind of error."""
        return ErrorEnvelope(
            ErrorBody(redact_text(self.message), self.error_type, self.param, self.code)
        )


class RequestRejected(ProxyError):
    status = 400
    error_type = "invalid_request_error"


class RefusedTarget(RequestRejected):
    code = "proxy_refused_target"


class ContractRejected(RequestRejected):
    code = "contract_violation"

    def __init__(self, violations: list[Violation]) -> None:
        details = describe(violations)
        super().__init__(
            f"cassette-proxy (strict validation) rejected the request before it reached the "
            f"upstream: {details}",
            param=violations[0].pointer.rsplit("/", 1)[-1] if violations else None,
        )
        self.violations = violations


class HTTPRefusal(ProxyError):
    """aiohttp refused the request before any handler ran (a target no route can take)."""

    error_type = "invalid_request_error"
    code = "proxy_refused_request"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ProxyRouteNotFound(ProxyError):
    status = 404
    error_type = "invalid_request_error"
    code = "proxy_route_not_found"


class ProxyMethodNotAllowed(ProxyError):
    """One of the proxy's own routes asked with a method it does not take."""

    status = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: list[str]) -> None:
        super().__init__(message)
        self.headers = (("Allow", ", ".join(allowed)),)


class BodyTooLarge(ProxyError):
    status = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class BodyTooSlow(ProxyError):
    """The request body did not arrive within --body-timeout, extended by a second for each
    --body-min-rate bytes received (nginx's client_body_timeout, Apache's MinRate)."""

    status = 408
    error_type = "invalid_request_error"
    code = "request_timeout"
    retryable = True
    closes = True


class ProxyOverloaded(ProxyError):
    """Every connection the proxy may hold (--max-connections) is taken: a new one is refused,
    or takes the place of one whose body arrives slower than --body-min-rate."""

    status = 503
    error_type = "proxy_error"
    code = "proxy_overloaded"
    retryable = True
    closes = True


class ClientDisconnected(ProxyError):
    """The connection was lost while the request body was being read; nothing was forwarded.
    (A body that turns malformed after the headers, such as a bad chunk size, is not answered
    by aiohttp: it waits until the client gives up, which ends here.)"""

    status = 400
    error_type = "invalid_request_error"
    code = "client_disconnected"


class ShutdownCut(ProxyError):
    """The proxy was stopping, and the request was still running at --shutdown-timeout."""

    status = 503
    error_type = "proxy_error"
    code = "shutdown_cut"
    retryable = True


class CassetteMiss(ProxyError):
    status = 501
    error_type = "cassette_miss"
    code = "cassette_miss"


class ChainBroken(CassetteMiss):
    """In ``new_episodes``, a request that continues a response replayed from the cassette
    (``previous_response_id``): the upstream never issued that id to this run, so forwarding
    it would record the upstream's 404. Only recording the whole test again works."""

    code = "cassette_chain_broken"


class ResponseRejected(ProxyError):
    status = 502
    error_type = "upstream_contract_violation"
    code = "contract_violation"

    def __init__(
        self, status: int, violations: list[Violation], *, event: int | None = None
    ) -> None:
        details = describe(violations)
        what = (
            f"event {event} of the upstream's stream"
            if event is not None
            else (f"the upstream's {status} response")
        )
        super().__init__(
            f"cassette-proxy (strict validation) rejected {what}, which breaks the documented "
            f"contract: {details}. The original is in the log"
            + (" and, when recording, in the cassette." if event is None else ".")
        )
        self.violations = violations


class RecordingFailed(ProxyError):
    status = 502
    error_type = "proxy_error"
    code = "recording_failed"


class HookFailed(ProxyError):
    """Python the user gave (vcrpy's ``before_record_*`` hooks and ``filter_*`` functions, a
    custom matcher) raised: answered as its failure, not the proxy's, saying where it raised."""

    status = 500
    error_type = "proxy_error"
    code = "hook_failed"

    def __init__(self, what: str, exc: BaseException, consequence: str) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        where = (
            f", at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
        )
        super().__init__(
            f"the {what} raised {type(exc).__name__}: {exc}{where}; {consequence}. The error is "
            "in that function, not in cassette-proxy"
        )


class InternalError(ProxyError):
    """A bug in the proxy, still answered in the envelope (and logged with its traceback)."""

    status = 500
    error_type = "proxy_error"
    code = "internal_error"


class UpstreamError(ProxyError):
    status = 502
    error_type = "upstream_error"
    retryable = True


class UpstreamUnreachable(UpstreamError):
    code = "upstream_unreachable"


class UpstreamBroken(UpstreamError):
    code = "upstream_broken"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class ControlUnauthorized(ProxyError):
    status = 401
    error_type = "invalid_request_error"
    code = "proxy_admin_unauthorized"
    headers = (("WWW-Authenticate", 'Bearer realm="cassette-proxy"'),)  # RFC 6750


class ControlRejected(ProxyError):
    status = 400
    error_type = "invalid_request_error"
    code = "proxy_control_invalid"


class CassetteNameRefused(ProxyError):
    status = 400
    error_type = "invalid_request_error"
    code = "proxy_cassette_name_refused"


class CassetteUnavailable(ProxyError):
    status = 409
    error_type = "invalid_request_error"
    code = "cassette_unavailable"


class InjectedFault(ProxyError):
    """A fault rule's answer: the status, type, code and message it was given (or the
    service's own for the status), and no ``x-should-retry`` unless the rule sets it."""

    retryable = None

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str,
        code: str | None,
        param: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message, param=param)
        self.status = status
        self.error_type = error_type
        self.code = code
        self.headers = headers


class FaultStreamError(InjectedFault):
    """A fault rule's ``error`` event, ending an event stream after its headers."""


class FaultCut(ProxyError):
    code = "fault_cut"
    error_event = False


class FaultReset(ProxyError):
    """The connection was reset on purpose; nothing was answered (nginx's 444 in the log)."""

    status = 444
    code = "fault_reset"


class StartupError(Exception):
    """The proxy cannot start as configured; the CLI prints it as one line and exits 1."""


class CassetteExpired(StartupError):
    """The cassette is older than ``--re-record-interval`` and ``--re-record-action`` is fail."""


class CassetteFileError(StartupError):
    """A cassette or journal file cannot be read, parsed or written."""


class CassetteLocked(CassetteFileError):
    """Another live process is recording the cassette (it holds ``<cassette>.lock``)."""
