"""A finished audit: the summary, its tables, and how it fared against ``--fail-on``."""

from __future__ import annotations

from dataclasses import dataclass

from cassette_proxy.tools.audit.gates import Gate, Verdict, judge
from cassette_proxy.tools.audit.summary import Summary
from cassette_proxy.tools.audit.tables import Tables


@dataclass(frozen=True, slots=True)
class Report:
    summary: Summary
    tables: Tables
    verdicts: list[Verdict]

    @classmethod
    def of(cls, summary: Summary, gates: list[Gate] | None = None) -> Report:
        tables = Tables.of(summary)
        return cls(summary, tables, judge(gates or [], tables, summary.errors))

    @property
    def failed(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.failed]
