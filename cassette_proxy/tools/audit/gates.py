"""``audit --fail-on``: thresholds that make the command exit 1, so CI can gate on traffic.

- ``errors`` / ``errors>N``: exchanges that went wrong (the proxy's error code, a 5xx, or a
  failed validation);
- ``drift`` / ``drift>N``: drift warnings (unknown fields, enum values, types);
- ``warnings`` / ``warnings>N``: warnings of any kind;
- ``p50>MS``, ``p90>MS``, ``p99>MS``: a percentile of the whole exchange's time, over every
  exchange the filters keep (``--route cancel --fail-on p99>800`` gates one route).

A bare name means ``>0``. Every gate fails when no exchange is left to measure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from cassette_proxy.tools.audit.tables import Tables

Measure = Literal["errors", "drift", "warnings", "p50", "p90", "p99"]
_GATE: Final = re.compile(
    r"(?P<measure>errors|drift|warnings|p50|p90|p99)(?:>(?P<limit>\d+(?:\.\d+)?))?"
)
FORMS: Final = "errors, drift, warnings (each optionally >N), p50>MS, p90>MS, p99>MS"


@dataclass(frozen=True, slots=True)
class Gate:
    text: str  # as given: "p99>800"
    measure: Measure
    limit: float  # fails when the measured value is over it

    @classmethod
    def parse(cls, text: str) -> Gate:
        match = _GATE.fullmatch(text.strip().lower().replace(" ", ""))
        if match is None:
            raise ValueError(f"{text!r} is not a threshold: use {FORMS}")
        measure: Measure = match["measure"]  # type: ignore[assignment]
        if measure.startswith("p") and match["limit"] is None:
            raise ValueError(f"{text!r} needs a limit in milliseconds, such as {measure}>500")
        if not measure.startswith("p") and "." in (match["limit"] or ""):
            raise ValueError(f"{text!r}: {measure} are counted, so the limit is a whole number")
        return cls(text, measure, float(match["limit"] or 0))

    @property
    def is_latency(self) -> bool:
        return self.measure.startswith("p")


@dataclass(frozen=True, slots=True)
class Verdict:
    gate: Gate
    value: float
    # No exchange to measure: the gate fails, since a gate over nothing proves nothing (a
    # mistyped --route, the wrong log file, a proxy that logged nothing).
    empty: bool = False

    @property
    def failed(self) -> bool:
        return self.empty or self.value > self.gate.limit

    def explain(self, exchanges: int) -> str:
        gate = self.gate
        if self.empty:
            return (
                f"--fail-on {gate.text}: no exchange to judge (none in the input, or the "
                "filters kept none), so it cannot pass; check the log's path and the filters"
            )
        if gate.is_latency:
            found = f"the {gate.measure} of {exchanges:,} exchanges is {self.value:,.1f} ms"
            limit = f"{gate.limit:g} ms"
        else:
            what = {
                "errors": "exchanges went wrong",
                "drift": "drift warnings",
                "warnings": "warnings",
            }[gate.measure]
            found = f"{self.value:,.0f} {what}"
            limit = f"{gate.limit:g}"
        outcome = "over" if self.failed else "within"
        return f"--fail-on {gate.text}: {found}, {outcome} the limit of {limit}"


def judge(gates: list[Gate], tables: Tables, errors: int, exchanges: int) -> list[Verdict]:
    """Each gate with the value it measured (``errors``: the summary's error exchanges;
    ``exchanges``: how many the filters kept: none fails every gate)."""
    values: dict[str, float] = {
        "errors": errors,
        "drift": sum(f.group.count for f in tables.drift),
        "warnings": sum(count for _, count in tables.warnings_by_kind),
    }
    return [
        Verdict(
            gate,
            tables.percentile(int(gate.measure[1:])) if gate.is_latency else values[gate.measure],
            empty=exchanges == 0,
        )
        for gate in gates
    ]
