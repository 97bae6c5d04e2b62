"""A finished audit: the summary, its tables, and how it fared against ``--fail-on``."""

from __future__ import annotations

from dataclasses import dataclass, field

from cassette_proxy.tools.audit.gates import Gate, Verdict, judge
from cassette_proxy.tools.audit.summary import Summary
from cassette_proxy.tools.audit.tables import ALL, Tables, TokenRow
from cassette_proxy.tools.audit.tokens import Prices


@dataclass(frozen=True, slots=True)
class Report:
    summary: Summary
    tables: Tables
    verdicts: list[Verdict]
    prices: Prices | None = None
    instances: list[tuple[str, Report]] = field(default_factory=list)  # --by-instance

    @classmethod
    def of(
        cls, summary: Summary, gates: list[Gate] | None = None, prices: Prices | None = None
    ) -> Report:
        tables = Tables.of(summary, prices)
        instances = [
            (name, cls.of(part, prices=prices)) for name, part in sorted(summary.instances.items())
        ]
        return cls(
            summary,
            tables,
            judge(gates or [], tables, summary.errors, summary.exchanges),
            prices,
            instances,
        )

    @property
    def failed(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.failed]


REPLAYED_COST = "replayed"  # the cost cell of tokens a cassette replayed


def token_table(report: Report) -> tuple[list[str], list[list[object]], list[str]]:
    """The tokens table every format shows: headers, rows (a total row last when there are
    several), and the models the price table has no price for. Tokens a cassette replayed
    are rows of their own, never priced: they were spent when they were recorded."""
    prices = report.prices
    headers = ["model", "route", "source", "input", "cached", "output", "reasoning", "responses"]
    if prices is not None:
        headers.append(f"cost{f' ({prices.currency})' if prices.currency else ''}")
    rows: list[list[object]] = []
    unpriced: list[str] = []
    total = [0, 0, 0, 0, 0]
    cost_total = 0.0
    for row in report.tables.tokens:
        count = row.count
        figures = [count.input, count.cached, count.output, count.reasoning, count.responses]
        total = [a + b for a, b in zip(total, figures, strict=True)]
        cells: list[object] = [row.model, row.route, row.source, *figures]
        if prices is not None:
            if row.replayed:
                cells.append(REPLAYED_COST)
            elif row.cost is None:
                cells.append("no price")
                if row.model not in unpriced:
                    unpriced.append(row.model)
            else:
                cells.append(f"{row.cost:,.4f}")
                cost_total += row.cost
        rows.append(cells)
    if len(rows) > 1:
        last: list[object] = [ALL, "", "", *total]
        if prices is not None:
            last.append(f"{cost_total:,.4f}{' (priced models)' if unpriced else ''}")
        rows.append(last)
    return headers, rows, unpriced


def instance_table(report: Report) -> tuple[list[str], list[list[object]]]:
    """One row per instance (--by-instance): its traffic, errors, latency and tokens."""
    headers = ["instance", "exchanges", "went wrong", "p50 ms", "p99 ms", "input", "output"]
    if report.prices is not None:
        headers.append("cost")
    rows: list[list[object]] = []
    for name, part in report.instances:
        tables, summary = part.tables, part.summary
        counts = [row.count for row in tables.tokens]
        cells: list[object] = [
            name,
            summary.exchanges,
            summary.errors,
            f"{tables.percentile(50):.2f}",
            f"{tables.percentile(99):.2f}",
            sum(c.input for c in counts),
            sum(c.output for c in counts),
        ]
        if report.prices is not None:
            cells.append(_instance_cost(tables.tokens))
        rows.append(cells)
    return headers, rows


def _instance_cost(rows: list[TokenRow]) -> str:
    """An instance's cost as the tokens table shows one: of its priced models only, said so
    when some of its tokens have no price (a sum that leaves them out is not their cost);
    replayed tokens cost nothing now."""
    tokens = [row for row in rows if not row.replayed]
    costs = [row.cost for row in tokens if row.cost is not None]
    if tokens and not costs:
        return "no price"
    unpriced = " (priced models)" if len(costs) < len(tokens) else ""
    return f"{sum(costs):,.4f}{unpriced}"
