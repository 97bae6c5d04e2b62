"""``cassette-proxy cassette check`` and ``cassette redact``: what a recording holds.

For each cassette: does vcrpy itself load it; does every interaction keep the route's contract
(the same checks the proxy runs live); and does anything in it look like a secret (credential
headers that are not fingerprinted, key-shaped tokens, credential query parameters). Findings
never quote a secret: they show its fingerprint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson
import yaml
from multidict import CIMultiDict, CIMultiDictProxy
from vcr.persisters.filesystem import FilesystemPersister

from cassette_proxy.cassette import Interaction
from cassette_proxy.errors import CassetteFileError
from cassette_proxy.models.http import ProxyRequest, end_to_end
from cassette_proxy.models.violations import Severity
from cassette_proxy.persist import (
    load_cassette,
    save_cassette,
    vcrpy_serializer_for,
    write_atomically,
)
from cassette_proxy.redact import redact_bytes, redact_header, token_secrets
from cassette_proxy.routes import classify
from cassette_proxy.validation import check_request, check_response

FindingKind = Literal["load", "secret", "contract"]


@dataclass(frozen=True, slots=True)
class Finding:
    pointer: str  # into the cassette: /interactions/3/response/body/output/0/id
    severity: Severity
    kind: FindingKind
    message: str


@dataclass(slots=True)
class CassetteReport:
    path: Path
    interactions: int = 0
    vcrpy_loads: bool = False
    findings: list[Finding] = field(default_factory=list)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)


Location = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret found in a cassette: where (the path to the field in the cassette's document),
    and the text that replaces it."""

    where: Location
    original: str
    replacement: str

    @property
    def pointer(self) -> str:
        return "/" + "/".join(str(step) for step in self.where)


def _secrets_in_interaction(index: int, interaction: Interaction) -> Iterator[Secret]:
    base: Location = ("interactions", index)
    request = interaction.request
    for name, value in request.headers.items():
        redacted = redact_header(name, value)
        if redacted != value:
            yield Secret((*base, "request", "headers", name), value, redacted)
    for original, replacement in token_secrets(request.uri):
        yield Secret((*base, "request", "uri"), original, replacement)
    for where, body in (("request", request.body or b""), ("response", interaction.body)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        for original, replacement in token_secrets(text):
            yield Secret((*base, where, "body"), original, replacement)
    for name, value in interaction.headers:
        redacted = redact_header(name, value)
        if redacted != value:
            yield Secret((*base, "response", "headers", name), value, redacted)


def find_secrets(interactions: list[Interaction]) -> list[Secret]:
    return [s for i, item in enumerate(interactions) for s in _secrets_in_interaction(i, item)]


def _contract_findings(index: int, interaction: Interaction) -> Iterator[Finding]:
    request = interaction.request
    parsed = request.parsed_uri
    raw_path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    route = classify(request.method, parsed.path)
    if not route.has_contract:
        return
    headers = end_to_end(CIMultiDict((str(k), str(v)) for k, v in request.headers.items()))
    body = request.body or b""
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
                f"{violation.kind}: {violation.message}",
            )


def check_cassette(path: Path) -> CassetteReport:
    report = CassetteReport(path)
    try:
        interactions = load_cassette(path)
    except CassetteFileError as exc:
        report.findings.append(Finding("", "error", "load", str(exc)))
        return report
    if interactions is None:
        report.findings.append(Finding("", "error", "load", f"{path} does not exist or is empty"))
        return report
    report.interactions = len(interactions)
    try:
        requests, *_ = FilesystemPersister.load_cassette(str(path), vcrpy_serializer_for(path))
        report.vcrpy_loads = len(requests) == len(interactions)
    except Exception as exc:  # vcrpy's own reasons, reported as they are
        report.findings.append(
            Finding("", "error", "load", f"vcrpy cannot load it: {type(exc).__name__}: {exc}")
        )
    for index, interaction in enumerate(interactions):
        report.findings.extend(_contract_findings(index, interaction))
    for secret in find_secrets(interactions):
        report.findings.append(
            Finding(
                secret.pointer,
                "error",
                "secret",
                f"credential-like value in clear text (would be recorded as "
                f"{secret.replacement!r}); run: cassette-proxy cassette redact {path}",
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
    interactions = load_cassette(path)
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


def _redacted(interaction: Interaction) -> Interaction:
    request = interaction.request
    request.headers = {k: redact_header(k, v) for k, v in request.headers.items()}
    for original, replacement in token_secrets(request.uri):
        request.uri = request.uri.replace(original, replacement)
    request.body = redact_bytes(request.body or b"")
    return Interaction(
        request,
        interaction.status,
        interaction.reason,
        tuple((n, redact_header(n, v)) for n, v in interaction.headers),
        redact_bytes(interaction.body),
    )


def render_text(reports: list[CassetteReport]) -> str:
    out = []
    for report in reports:
        loads = "vcrpy loads it" if report.vcrpy_loads else "vcrpy cannot load it"
        count = f"{report.interactions} interaction{'' if report.interactions == 1 else 's'}"
        out.append(f"{report.path}: {count}, {loads}")
        for severity in ("error", "warning"):
            found = [f for f in report.findings if f.severity == severity]
            if found:
                out.append(f"  {severity}s ({len(found)}):")
                out.extend(f"    {f.pointer or '/'}  [{f.kind}] {f.message}" for f in found)
        if not report.findings:
            out.append("  no findings")
    errors = sum(r.count("error") for r in reports)
    warnings = sum(r.count("warning") for r in reports)
    out.append(f"{len(reports)} cassette(s): {errors} error(s), {warnings} warning(s)")
    return "\n".join(out) + "\n"


def render_json(reports: list[CassetteReport]) -> str:
    document = {
        "cassettes": [
            {
                "path": str(r.path),
                "interactions": r.interactions,
                "vcrpy_loads": r.vcrpy_loads,
                "errors": r.count("error"),
                "warnings": r.count("warning"),
                "findings": r.findings,
            }
            for r in reports
        ],
        "errors": sum(r.count("error") for r in reports),
        "warnings": sum(r.count("warning") for r in reports),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
