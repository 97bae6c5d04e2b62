"""A request and its response as the cassette stores them, and as matching reads a request.

In this order, the same for the request being recorded and for the request being looked up, so
both sides of a comparison went through the same steps:

1. **Placeholders** (:mod:`cassette_proxy.store.placeholders`): named values and the request's
   folder ids become ``<NAME>`` and ``<FOLDER_ID>`` in the URI, the headers and the body (first,
   so that a named value a secret rule would also find is still put back on replay).
2. **Redaction** (:mod:`cassette_proxy.redact`): whatever secret is left is fingerprinted.
3. **vcrpy's recording hooks**: ``filter_headers``, ``filter_query_parameters`` and
   ``filter_post_data_parameters`` (from the settings, or vcrpy's own shapes in the pytest
   plugin), then the plugin's ``before_record_request`` functions, composed by vcrpy's own
   ``VCR._build_before_record_request``, so each does exactly what it does under vcrpy, and a
   hook returning None makes the request one the cassette ignores (forwarded, never recorded
   or replayed), as vcrpy ignores it. A response goes through ``before_record_response``, on
   vcrpy's response dict, in the same way.

Without headers to compare, filters or hooks, a lookup reads only the method, URI and body
(:class:`~cassette_proxy.matching.matchers.Lookup`), as before any of this existed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDictProxy
from vcr.request import Request as VcrRequest
from yarl import URL

from cassette_proxy.matching.matchers import Lookup
from cassette_proxy.models.http import (
    NOT_FORWARDED,
    ProxyResponse,
    Timing,
    UndecodableBody,
)
from cassette_proxy.redact import redact_bytes, redact_header, redact_path, redact_text
from cassette_proxy.settings import Settings
from cassette_proxy.store import vcrpy_format
from cassette_proxy.store.filters import RecordFilters
from cassette_proxy.store.placeholders import (
    FOLDER_HEADERS,
    Placeholders,
    Substitution,
    remapped,
)


class ShapedRequest(VcrRequest):  # type: ignore[misc]  # vcrpy has no type hints
    """A request as the cassette stores it, with the substitution that hid its values (the
    response recorded for it is hidden with the same, and the folders it adds)."""

    substitution: Substitution = Substitution()


def _shaped(request: VcrRequest, substitution: Substitution) -> ShapedRequest:
    if not isinstance(request, ShapedRequest):
        shaped = ShapedRequest(request.method, request.uri, request.body, request.headers)
    else:
        shaped = request
    shaped.substitution = substitution
    return shaped


class Upstream:
    """The upstream's origin and path prefix, parsed once."""

    def __init__(self, base: str) -> None:
        url = URL(base, encoded=True)
        self.base = base
        self.origin = str(url.origin())
        self.prefix = url.raw_path.rstrip("/")

    def path_qs(self, raw_path: str) -> str:
        """The upstream's raw path and query for a client's raw path, as the request sent
        there (and recorded) has it."""
        if raw_path.endswith("?") or "#" in raw_path:  # yarl drops these: parse as it would
            return URL(self.base + raw_path, encoded=True).raw_path_qs
        return self.prefix + raw_path


@dataclass(frozen=True, slots=True)
class Recording:
    """A response as it will be stored, for the request it answers."""

    request: VcrRequest
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    timing: Timing | None


@dataclass
class Shaper:
    """The steps above, configured once."""

    settings: Settings
    filters: RecordFilters = field(default_factory=RecordFilters)

    def __post_init__(self) -> None:
        settings = self.settings
        self.placeholders = Placeholders(
            settings.placeholders, folders=settings.folder_placeholders
        )
        self.upstream = Upstream(settings.upstream_base)
        self._request_hook = self.filters.request_hook()
        self._response_hook = self.filters.response_hook()
        self._key = settings.upstream_api_key
        # Headers matter to a lookup only when a matcher reads them or a filter needs them.
        self.reads_headers = "headers" in settings.match_on or self._request_hook is not None
        self.folder_names = FOLDER_HEADERS if settings.folder_placeholders else ()

    # -- requests ------------------------------------------------------------------------------

    def folder_headers(self, headers: CIMultiDictProxy[str]) -> str:
        """The values of the headers a folder is learned from, joined by NUL ("" if none):
        a string, so a remembered lookup keys on it cheaply."""
        if not self.folder_names:
            return ""
        project, folder = headers.get(FOLDER_HEADERS[0]), headers.get(FOLDER_HEADERS[1])
        if project is None and folder is None:
            return ""
        return f"{project or ''}\x00{folder or ''}"

    def substitution(self, body: bytes, path_qs: str, folder_headers: str) -> Substitution:
        """What hides a request (``folder_headers`` as :meth:`folder_headers` gives them)."""
        query = path_qs.partition("?")[2]
        return self.placeholders.of_request(body, query, folder_headers.split("\x00"))

    def sent_headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """A client's headers as the upstream gets them (and the cassette records them): the
        hop's own left out, the configured key in place of the client's."""
        sent = [(name, value) for name, value in headers if name.lower() not in NOT_FORWARDED]
        if self._key is not None:
            sent = [(n, v) for n, v in sent if n.lower() != "authorization"]
            sent.append(("Authorization", f"Api-Key {self._key.get_secret_value()}"))
        return sent

    def request(
        self,
        method: str,
        path_qs: str,
        body: bytes,
        headers: Iterable[tuple[str, str]],
        substitution: Substitution,
    ) -> ShapedRequest | None:
        """The request as recorded (``headers`` as sent upstream), or None if a hook says the
        cassette ignores it."""
        hide = substitution.hide_text
        # Without hooks the request is made as a ShapedRequest at once: vcrpy's constructor
        # (its headers dict) is most of a recorded request's cost, and paid once so.
        recorded = (ShapedRequest if self._request_hook is None else VcrRequest)(
            method,
            self.upstream.origin + redact_path(hide(path_qs)),
            redact_bytes(substitution.hide(body)),
            {str(name): redact_header(name, hide(value)) for name, value in headers},
        )
        if self._request_hook is not None:
            recorded = self._request_hook(recorded)
            if recorded is None:
                return None
        return _shaped(recorded, substitution)

    def lookup(self, method: str, path_qs: str, body: bytes, substitution: Substitution) -> Lookup:
        """What matching reads of a request when no header matters (URI and body as recorded)."""
        return Lookup(
            method,
            self.upstream.origin + redact_path(substitution.hide_text(path_qs)),
            redact_bytes(substitution.hide(body)),
        )

    # -- responses -----------------------------------------------------------------------------

    def recording(
        self, request: VcrRequest, response: ProxyResponse, timing: Timing | None
    ) -> Recording | None:
        """The response as recorded for ``request``: decoded, its values hidden (with the
        folders it names too, which are hidden in the request as well), redacted, through
        ``before_record_response``; None if that hook drops it."""
        substitution = getattr(request, "substitution", None) or Substitution()
        try:
            body = response.decoded_body()
            decoded = body is not response.body
        except UndecodableBody:
            body, decoded = response.body, False
        substitution = self.placeholders.of_response(substitution, body)
        if isinstance(request, ShapedRequest) and substitution != request.substitution:
            request = self._hidden_again(request, substitution)
        hide = substitution.hide_text
        headers = [
            (str(name), redact_header(name, hide(value)))
            for name, value in response.headers.items()
            if not (decoded and name.lower() == "content-encoding")
        ]
        body, spans = substitution.hide_spans(body)
        body = redact_bytes(body)
        headers.append(("Content-Length", str(len(body))))
        reason = redact_text(hide(response.reason))
        timing = remapped(timing, spans)
        if self._response_hook is None:
            return Recording(request, response.status, reason, tuple(headers), body, timing)
        shaped = self._response_hook(_vcrpy_response(response.status, reason, headers, body))
        if shaped is None:
            return None
        read = vcrpy_format.read_response(shaped)
        return Recording(request, read.status, read.reason, read.headers, read.body, timing)

    def _hidden_again(self, request: ShapedRequest, substitution: Substitution) -> ShapedRequest:
        """The recorded request with the folders only its response named hidden as well (the
        values hidden before are placeholders by now, so hiding again changes only those).
        Most often the request names none of them (a cancel whose answer names the model's
        folder): then it is the same request, with the new substitution, made without vcrpy's
        constructor (the cost of this step)."""
        body = request.body
        known = request.substitution.values()
        new = [value for value in substitution.values() if value not in known]
        if not _names_any(request, body, new):
            hidden = copy.copy(request)
        else:
            hidden = ShapedRequest(
                request.method,
                substitution.hide_text(request.uri),
                substitution.hide(body) if isinstance(body, bytes) else body,
                {name: substitution.hide_text(value) for name, value in request.headers.items()},
            )
        hidden.substitution = substitution
        return hidden


def _names_any(request: VcrRequest, body: object, values: list[str]) -> bool:
    """Whether the request holds any of ``values`` where hiding looks (its URI, body and header
    values): hiding finds a value only where it is written as it is."""
    if not values:
        return False
    if any(value in request.uri for value in values):
        return True
    if isinstance(body, bytes) and any(value.encode() in body for value in values):
        return True
    return any(value in header for header in request.headers.values() for value in values)


def _vcrpy_response(
    status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes
) -> dict[str, Any]:
    """A response in the shape vcrpy hands ``before_record_response``."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return {
        "status": {"code": status, "message": reason},
        "headers": grouped,
        "body": {"string": body},
    }
