"""``cassette check`` and ``cassette redact`` over many cassettes: findings grouped, totals,
``--fail-on``, and reports written cassette by cassette, so memory is bounded by the largest
cassette, not by the folder.

Findings group by (severity, kind, pointer with indices collapsed, message): a 500-interaction
cassette recorded by vcrpy has one "credential in Authorization" line with its count and the
first interactions where it occurs, not 500 lines. ``--verbose`` lists every finding, and the
JSON report keeps every one. A cassette is untrusted input: what it holds (a header's name, a
field, an enum value) and a file's name are written through
:func:`~cassette_proxy.tools.shown.shown` (text) or :func:`~cassette_proxy.tools.shown.json_text`
(JSON), so no control character reaches the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

import orjson

from cassette_proxy.errors import StartupError
from cassette_proxy.pointers import general_pointer
from cassette_proxy.tools.check import CassetteReport, Finding, check_cassette, redact_cassette
from cassette_proxy.tools.progress import Progress
from cassette_proxy.tools.shown import PATH, TEXT, json_text, shown

SHOWN: Final = 5  # interactions named per group
_INTERACTION: Final = re.compile(r"/interactions/(\d+)(?:/|$)")

Write = Callable[[str], None]  # writes text as it is (adds no newline)


class FailOn(StrEnum):
    """What makes ``cassette check`` exit 1."""

    SECRETS = "secrets"  # a secret, or a cassette that could not be read (so not scanned)
    ERRORS = "errors"  # any error: a secret, a broken contract, a file vcrpy cannot load
    WARNINGS = "warnings"  # any finding at all


@dataclass(slots=True)
class Group:
    """Findings of one shape in one cassette."""

    severity: str
    kind: str
    pointer: str  # indices collapsed: /interactions/*/request/headers/Authorization
    message: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def interactions(self) -> list[int]:
        found = (_INTERACTION.match(f.pointer) for f in self.findings)
        return sorted({int(match[1]) for match in found if match})

    @property
    def shown_pointer(self) -> str:
        """The exact pointer when there is one finding, the collapsed one otherwise."""
        pointer = self.findings[0].pointer if len(self.findings) == 1 else self.pointer
        return pointer or "/"


def group_findings(findings: Iterable[Finding]) -> list[Group]:
    """Errors before warnings; the most frequent first, then in the cassette's order."""
    groups: dict[tuple[str, str, str, str], Group] = {}
    for finding in findings:
        key = (finding.severity, finding.kind, general_pointer(finding.pointer), finding.message)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(*key)
        group.findings.append(finding)
    return sorted(
        groups.values(),
        key=lambda g: (g.severity != "error", -len(g.findings), g.interactions[:1], g.pointer),
    )


@dataclass(slots=True)
class Totals:
    cassettes: int = 0
    interactions: int = 0
    errors: int = 0
    warnings: int = 0
    secrets: int = 0
    unreadable: int = 0  # cassettes the proxy could not read, so not scanned
    with_errors: int = 0  # cassettes with at least one error
    with_warnings: int = 0

    def add(self, report: CassetteReport) -> None:
        errors, warnings = report.count("error"), report.count("warning")
        self.cassettes += 1
        self.interactions += report.interactions
        self.errors += errors
        self.warnings += warnings
        self.secrets += report.secrets
        self.unreadable += not report.scanned
        self.with_errors += errors > 0
        self.with_warnings += warnings > 0

    def failing(self, gate: FailOn) -> int:
        """How many findings (or unreadable cassettes) the gate fails on."""
        if gate is FailOn.SECRETS:
            return self.secrets + self.unreadable
        if gate is FailOn.ERRORS:
            return self.errors
        return self.errors + self.warnings

    def verdict(self, gate: FailOn) -> str:
        failing = self.failing(gate)
        if not failing:
            return f"--fail-on {gate}: passed"
        what = {
            FailOn.SECRETS: f"{self.secrets} secret(s), {self.unreadable} unreadable cassette(s)",
            FailOn.ERRORS: f"{self.errors} error(s)",
            FailOn.WARNINGS: f"{self.errors} error(s), {self.warnings} warning(s)",
        }[gate]
        return f"--fail-on {gate}: failed ({what})"


class Reporter(Protocol):
    def cassette(self, report: CassetteReport) -> None: ...

    def finish(self, totals: Totals, gate: FailOn) -> None: ...


def check_all(
    paths: list[Path], reporter: Reporter, gate: FailOn, progress: Progress | None = None
) -> Totals:
    """Check each cassette and report it before reading the next."""
    progress = progress or Progress(enabled=False)
    totals = Totals()
    for number, path in enumerate(paths, start=1):
        progress.show(f"[{number}/{len(paths)}] checking {shown(path, PATH)}")
        report = check_cassette(path)
        progress.clear()
        reporter.cassette(report)
        totals.add(report)
    reporter.finish(totals, gate)
    return totals


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


class TextReport:
    def __init__(self, write: Write, *, verbose: bool = False) -> None:
        self.write = write
        self.verbose = verbose

    def cassette(self, report: CassetteReport) -> None:
        loads = "vcrpy loads it" if report.vcrpy_loads else "vcrpy cannot load it"
        if not report.opened:
            loads = "not read"
        path = shown(report.path, PATH)
        lines = [f"{path}: {_plural(report.interactions, 'interaction')}, {loads}"]
        groups = group_findings(report.findings)
        for severity in ("error", "warning"):
            mine = [g for g in groups if g.severity == severity]
            count = sum(len(g.findings) for g in mine)
            if not mine:
                continue
            if self.verbose:
                lines.append(f"  {severity}s ({count:,}):")
                lines.extend(
                    f"    {shown(f.pointer or '/', TEXT)}  [{f.kind}] {shown(f.message, TEXT)}"
                    + (f" ({shown(f.detail, TEXT)})" if f.detail else "")
                    for g in mine
                    for f in g.findings
                )
            else:
                lines.append(f"  {severity}s ({count:,}, in {_plural(len(mine), 'group')}):")
                lines.extend(line for g in mine for line in _group_lines(g))
        if not report.findings:
            lines.append("  no findings")
        if report.secrets:
            lines.append(f"  fix the secrets with: cassette-proxy cassette redact {path}")
        self.write("\n".join(lines) + "\n")

    def finish(self, totals: Totals, gate: FailOn) -> None:
        secrets = f" ({_plural(totals.secrets, 'secret')})" if totals.secrets else ""
        unreadable = f"; {totals.unreadable:,} could not be read" if totals.unreadable else ""
        self.write(
            f"{_plural(totals.cassettes, 'cassette')}, "
            f"{_plural(totals.interactions, 'interaction')}: "
            f"{_plural(totals.errors, 'error')}{secrets} in "
            f"{_plural(totals.with_errors, 'cassette')}, "
            f"{_plural(totals.warnings, 'warning')} in "
            f"{_plural(totals.with_warnings, 'cassette')}{unreadable}\n{totals.verdict(gate)}\n"
        )


def _group_lines(group: Group) -> list[str]:
    count = len(group.findings)
    first = group.findings[0]
    lines = [
        f"  {count:>6,} x {shown(group.shown_pointer, TEXT)}  [{group.kind}] "
        f"{shown(group.message, TEXT)}"
    ]
    notes = []
    if count > 1:
        interactions = group.interactions
        listed = ", ".join(map(str, interactions[:SHOWN]))
        more = len(interactions) - SHOWN
        noun = "interaction" if len(interactions) == 1 else "interactions"
        notes.append(f"{noun} {listed}" + (f" and {more:,} more" if more > 0 else ""))
    if first.detail:
        detail = shown(first.detail, TEXT)
        notes.append(f"e.g. {detail}" if count > 1 else detail)
    if notes:
        lines.append(f"           {'; '.join(notes)}")
    return lines


class JsonReport:
    """One JSON document, written as the cassettes are checked: every finding is kept."""

    def __init__(self, write: Write) -> None:
        self.write = write
        self.count = 0

    def cassette(self, report: CassetteReport) -> None:
        document = {
            "path": str(report.path),
            "interactions": report.interactions,
            "vcrpy_loads": report.vcrpy_loads,
            "errors": report.count("error"),
            "warnings": report.count("warning"),
            "secrets": report.secrets,
            "findings": report.findings,
            "fix": f"cassette-proxy cassette redact {report.path}" if report.secrets else None,
        }
        head = '{\n  "cassettes": [\n' if not self.count else ",\n"
        self.write(head + json_text(_indented(document)))
        self.count += 1

    def finish(self, totals: Totals, gate: FailOn) -> None:
        head = '{\n  "cassettes": [],\n' if not self.count else "\n  ],\n"
        summary = {
            "cassettes_checked": totals.cassettes,
            "interactions": totals.interactions,
            "errors": totals.errors,
            "warnings": totals.warnings,
            "secrets": totals.secrets,
            "unreadable": totals.unreadable,
            "fail_on": str(gate),
            "failed": totals.failing(gate) > 0,
        }
        body = orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode()
        self.write(head + body.removeprefix("{\n") + "\n")


def _indented(document: dict[str, Any]) -> str:
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    return "\n".join("    " + line for line in text.splitlines())


@dataclass(slots=True)
class RedactTotals:
    cassettes: int = 0
    secrets: int = 0  # replaced
    changed: int = 0  # cassettes rewritten
    failed: int = 0  # cassettes that could not be read or written

    def line(self) -> str:
        failed = f", {self.failed:,} could not be redacted" if self.failed else ""
        return (
            f"{_plural(self.cassettes, 'cassette')}: {_plural(self.secrets, 'secret')} replaced "
            f"in {_plural(self.changed, 'cassette')}, "
            f"{self.cassettes - self.changed - self.failed:,} left unchanged{failed}\n"
        )


def redact_all(
    paths: list[Path], write: Write, warn: Write, progress: Progress | None = None
) -> RedactTotals:
    """Redact each cassette in turn; one that cannot be is reported and the rest still done."""
    progress = progress or Progress(enabled=False)
    totals = RedactTotals()
    for number, path in enumerate(paths, start=1):
        progress.show(f"[{number}/{len(paths)}] redacting {shown(path, PATH)}")
        totals.cassettes += 1
        try:
            result = redact_cassette(path)
        except StartupError as error:
            progress.clear()
            totals.failed += 1
            warn(f"Error: {shown(error, PATH)}\n")
            continue
        progress.clear()
        name = shown(path, PATH)
        if result.secrets == 0:
            write(f"{name}: no secrets found; left unchanged\n")
        else:
            totals.secrets += result.secrets
            totals.changed += 1
            write(f"{name}: {result.secrets} secret(s) replaced ({result.rewritten})\n")
    write(totals.line())
    return totals
