"""``cassette-proxy cassette check`` and ``cassette redact``: what a recording holds.

For each cassette: does vcrpy itself load it; does every interaction keep the route's contract
(the same checks the proxy runs live); and does anything in it look like a secret (credential
headers that are not fingerprinted, key-shaped tokens, credential query parameters). Findings
never quote a secret: they show its fingerprint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from multidict import CIMultiDict, CIMultiDictProxy
from vcr.persisters.filesystem import FilesystemPersister
from vcr.request import Request as VcrRequest

from cassette_proxy.contract import check_request, check_response, classify
from cassette_proxy.errors import CassetteFileError
from cassette_proxy.matching.matchers import body_bytes
from cassette_proxy.models.http import (
    DECODABLE,
    ProxyRequest,
    UndecodableBody,
    decode_body,
    end_to_end,
)
from cassette_proxy.models.violations import Severity
from cassette_proxy.redact import redact_bytes, redact_header, redact_text, secrets_in
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.persist import (
    CassetteNotReplayable,
    load_cassette,
    save_cassette,
    vcrpy_serializer_for,
    write_atomically,
)
from cassette_proxy.tools.files import audit_log_instead, looks_like_audit_log, unreadable

FindingKind = Literal["load", "secret", "contract"]


@dataclass(frozen=True, slots=True)
class Finding:
    pointer: str  # into the cassette: /interactions/3/response/body/output/0/id
    severity: Severity
    kind: FindingKind
    message: str  # the same for every finding of one shape, so findings group by it
    detail: str = ""  # what differs from one to the next (a secret's fingerprint)


@dataclass(slots=True)
class CassetteReport:
    path: Path
    interactions: int = 0
    vcrpy_loads: bool = False
    scanned: bool = False  # the proxy read it, so its interactions were checked and scanned
    opened: bool = True  # False: not a regular file, or too large, so not even opened
    findings: list[Finding] = field(default_factory=list)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def secrets(self) -> int:
        return sum(1 for f in self.findings if f.kind == "secret")


Location = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret found in a cassette: where (the path to the field in the cassette's document),
    the text that replaces it, and what found it (a header's name, or a rule's id)."""

    where: Location
    original: str
    replacement: str
    rule: str

    @property
    def pointer(self) -> str:
        return "/" + "/".join(str(step) for step in self.where)


@dataclass(frozen=True, slots=True)
class Unscanned:
    """A body the check cannot read, so it cannot say there is no secret in it."""

    where: Location
    reason: str

    @property
    def pointer(self) -> str:
        return "/" + "/".join(str(step) for step in self.where)


def _headers(pairs: Iterable[tuple[str, str]]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict((str(k), str(v)) for k, v in pairs))


def _readable(headers: CIMultiDictProxy[str], body: bytes) -> bytes | str:
    """The body as the scan reads it: decoded, if labelled gzip or deflate; otherwise the
    reason it cannot be read (a coding the proxy cannot undo, or bytes that do not decode)."""
    coding = headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in {"", "identity"} and coding not in DECODABLE:
        return f"labelled Content-Encoding: {coding}, which cassette-proxy cannot decode"
    try:
        return decode_body(headers, body)
    except UndecodableBody as exc:
        return str(exc)


def _as_bytes(request: VcrRequest) -> bytes:
    """A request body as it was sent (:func:`body_bytes`: text, bytes, or the JSON document
    vcrpy's aiohttp stub keeps for ``json=``), or, for anything odder, its JSON."""
    try:
        return body_bytes(request)
    except TypeError:
        return orjson.dumps(request.body, default=str)


def _bodies(interaction: Interaction) -> Iterator[tuple[str, CIMultiDictProxy[str], bytes]]:
    request = interaction.request
    yield "request", _headers(request.headers.items()), _as_bytes(request)
    yield "response", _headers(interaction.headers), interaction.body


def _secrets_in_interaction(index: int, interaction: Interaction) -> Iterator[Secret]:
    base: Location = ("interactions", index)
    request = interaction.request
    for name, value in request.headers.items():
        redacted = redact_header(name, value)
        if redacted != value:
            yield Secret((*base, "request", "headers", name), value, redacted, f"header {name}")
    texts: list[tuple[Location, bytes | str]] = [((*base, "request", "uri"), request.uri)]
    for where, headers, body in _bodies(interaction):
        readable = _readable(headers, body) if body else body
        if isinstance(readable, bytes):  # else it cannot be read: see find_unscanned
            texts.append(((*base, where, "body"), readable))
    texts.append(((*base, "response", "status", "message"), interaction.reason))
    for location, text in texts:
        for found in secrets_in(text):
            yield Secret(location, found.original, found.replacement, found.rule)
    for name, value in interaction.headers:
        redacted = redact_header(name, value)
        if redacted != value:
            yield Secret((*base, "response", "headers", name), value, redacted, f"header {name}")


def find_secrets(interactions: list[Interaction]) -> list[Secret]:
    return [s for i, item in enumerate(interactions) for s in _secrets_in_interaction(i, item)]


def find_unscanned(interactions: list[Interaction]) -> list[Unscanned]:
    """Bodies the secret scan cannot read (a ``br`` body, say): a secret could hide there."""
    return [
        Unscanned(("interactions", index, where, "body"), readable)
        for index, interaction in enumerate(interactions)
        for where, headers, body in _bodies(interaction)
        if body and isinstance(readable := _readable(headers, body), str)
    ]


def _contract_findings(index: int, interaction: Interaction) -> Iterator[Finding]:
    request = interaction.request
    parsed = request.parsed_uri
    raw_path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    route = classify(request.method, parsed.path)
    if not route.has_contract:
        return
    headers = end_to_end(CIMultiDict((str(k), str(v)) for k, v in request.headers.items()))
    body = body_bytes(request)
    incoming = ProxyRequest(request.method, raw_path, CIMultiDictProxy(headers), body)
    checks = (
        ("request", check_request(route, incoming, injecting_key=False)),
        ("response", check_response(route, interaction.replay)),
    )
    for side, checked in checks:
        for violation in checked.violations:
            yield Finding(
                f"/interactions/{index}/{side}/body{violation.pointer}"
                if side == "response"
                else f"/interactions/{index}/{side}{violation.pointer}",
                violation.severity,
                "contract",
                f"{route.name} {violation.kind}: {violation.message}",
            )


def check_cassette(path: Path) -> CassetteReport:
    report = CassetteReport(path)
    refusal = unreadable(path)
    if refusal is not None:  # a FIFO, a device, a file too large: not opened
        report.opened = False
        report.findings.append(Finding("", "error", "load", refusal))
        return report
    # vcrpy's own loader says whether vcrpy loads it, whatever the proxy makes of it.
    vcrpy_refusal = None
    try:
        requests, *_ = FilesystemPersister.load_cassette(str(path), vcrpy_serializer_for(path))
        report.vcrpy_loads, report.interactions = True, len(requests)
    except Exception as exc:  # vcrpy's own reasons, reported as they are
        vcrpy_refusal = f"vcrpy cannot load it: {type(exc).__name__}: {exc}"
    try:
        interactions = load_cassette(path)
    except CassetteNotReplayable as exc:  # vcrpy loads it: the limit is the proxy's, and says so
        report.findings.append(Finding(exc.pointer, "error", "load", str(exc)))
        return report
    except CassetteFileError as exc:
        # Fix it or move it away to record a new one, the advice for a broken cassette, would
        # be wrong for the log: the reader gave the wrong file.
        message = audit_log_instead(path) if looks_like_audit_log(path) else str(exc)
        report.findings.append(Finding("", "error", "load", message))
        return report
    if interactions is None:
        report.findings.append(Finding("", "error", "load", f"{path} does not exist or is empty"))
        return report
    report.interactions = len(interactions)
    report.scanned = True
    if vcrpy_refusal is not None:
        report.findings.append(Finding("", "error", "load", vcrpy_refusal))
    for index, interaction in enumerate(interactions):
        report.findings.extend(_contract_findings(index, interaction))
    for secret in find_secrets(interactions):
        report.findings.append(
            Finding(
                secret.pointer,
                "error",
                "secret",
                f"credential-like value in clear text ({secret.rule})",
                f"would be recorded as {secret.replacement!r}",
            )
        )
    for unscanned in find_unscanned(interactions):
        report.findings.append(
            Finding(
                unscanned.pointer,
                "warning",
                "secret",
                f"not scanned for secrets: the body is {unscanned.reason}; re-record it "
                "uncompressed (or gzip) to have it checked",
            )
        )
    return report


@dataclass(frozen=True, slots=True)
class RedactResult:
    secrets: int
    rewritten: Literal["in place", "re-serialized", "unchanged"]


def redact_cassette(path: Path) -> RedactResult:
    """Replace every secret in the cassette, atomically, leaving every other byte as it was.

    Each secret is replaced only inside the scalars of the field it was found in (a header's
    values, the URI, a body), located in the file's text by PyYAML's composer, which reads the
    JSON cassettes as well: "json" as an Authorization value is redacted there and left alone
    in ``application/json``. If a secret cannot be found verbatim in its field (a YAML scalar
    folded inside the token, say), the cassette is re-serialized from its redacted
    interactions instead, and the result says so.
    """
    refusal = unreadable(path)
    if refusal is not None:
        raise CassetteFileError(refusal)
    try:
        interactions = load_cassette(path)
    except CassetteFileError as exc:
        if looks_like_audit_log(path):
            raise CassetteFileError(audit_log_instead(path)) from exc
        raise
    if interactions is None:
        raise CassetteFileError(f"{path} does not exist or is empty")
    secrets = find_secrets(interactions)
    if not secrets:
        return RedactResult(0, "unchanged")
    # Bytes decoded as they are: read_text would turn CRLF line endings into LF.
    text = _replaced_in_place(path.read_bytes().decode("utf-8"), secrets)
    if text is not None:
        write_atomically(path, text)
        with contextlib.suppress(CassetteFileError):
            reloaded = load_cassette(path)
            if reloaded is not None and not find_secrets(reloaded):
                return RedactResult(len(secrets), "in place")
    save_cassette(path, [_redacted(i) for i in interactions])
    return RedactResult(len(secrets), "re-serialized")


def _replaced_in_place(text: str, secrets: list[Secret]) -> str | None:
    """``text`` with each secret replaced inside its own field, or None if one is not there."""
    # libyaml's composer (ten times PyYAML's). Its marks count characters, as text[...] does,
    # but not a byte-order mark, so one is left out of what it reads and added to every span.
    bom = 1 if text.startswith("\ufeff") else 0
    try:
        root = yaml.compose(text[bom:], Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    edits: dict[tuple[int, int], str] = {}  # span of a scalar -> its text, redacted so far
    for secret in sorted(secrets, key=lambda s: -len(s.original)):
        found = False
        for start, end in _value_spans(root, secret.where):
            span = (start + bom, end + bom)
            current = edits.get(span, text[span[0] : span[1]])
            if secret.original in current:
                edits[span] = current.replace(secret.original, secret.replacement)
                found = True
            elif secret.replacement in current:
                found = True  # replaced already, as part of a longer secret in the same field
        if not found:
            return None
    for (start, end), replaced in sorted(edits.items(), reverse=True):
        text = text[:start] + replaced + text[end:]
    return text


def _value_spans(node: yaml.Node | None, where: Location) -> list[tuple[int, int]]:
    """The text spans of the value scalars at or under ``where`` in a composed document."""
    for step in where:
        if isinstance(step, int) and isinstance(node, yaml.SequenceNode):
            node = node.value[step] if step < len(node.value) else None
        elif isinstance(step, str) and isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == step), None)
        else:
            node = None
    spans: list[tuple[int, int]] = []
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, yaml.ScalarNode):
            spans.append((current.start_mark.index, current.end_mark.index))
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            pending.extend(value for _, value in current.value)
    return spans


def _redacted_body(
    headers: Iterable[tuple[str, str]], body: bytes
) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """Headers and body with the secrets out. A gzip or deflate body with a secret in it is
    stored decoded, without its label, as the proxy itself records bodies."""
    pairs = tuple((str(n), str(v)) for n, v in headers)
    readable = _readable(_headers(pairs), body) if body else body
    if not isinstance(readable, bytes) or readable is body:
        return pairs, redact_bytes(body)
    redacted = redact_bytes(readable)
    if redacted is readable:
        return pairs, body
    framing = {"content-encoding", "content-length"}
    kept = tuple((n, v) for n, v in pairs if n.lower() not in framing)
    return (*kept, ("Content-Length", str(len(redacted)))), redacted


def _redacted(interaction: Interaction) -> Interaction:
    request = interaction.request
    if isinstance(request.body, dict | list | tuple):  # the aiohttp stub's json=: keep its shape
        request.body = _redacted_object(request.body)
        request_headers = tuple((str(n), str(v)) for n, v in request.headers.items())
    else:
        request_headers, request.body = _redacted_body(request.headers.items(), _as_bytes(request))
    request.headers = {k: redact_header(k, v) for k, v in request_headers}
    request.uri = redact_text(request.uri)
    headers, body = _redacted_body(interaction.headers, interaction.body)
    return Interaction(
        request,
        interaction.status,
        redact_text(interaction.reason),
        tuple((n, redact_header(n, v)) for n, v in headers),
        body,
    )


def _redacted_object(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redacted_object(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted_object(item) for item in value)
    return value
