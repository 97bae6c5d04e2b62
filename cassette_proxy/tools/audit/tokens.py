"""Tokens by model, route and source (spent, or replayed from a cassette), and what they cost
by a price table the user gives (none is guessed: a model without a price is listed as such).

The price table is a small TOML file::

    currency = "USD"            # shown beside the costs (optional)
    per = 1_000_000             # the prices are per this many tokens (required)

    [models."yandexgpt/latest"] # the model as the log names it, its folder cut off
    input = 0.40                # per input token that was not cached
    cached = 0.10               # per cached input token (optional: the input price)
    output = 1.60               # per output token, reasoning included

A cost is ``(input - cached) * input + cached * cached + output * output``, over ``per``:
the API counts cached tokens within the input and reasoning tokens within the output.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeGuard

from cassette_proxy.models.usage import TOKEN_TYPES

UNKNOWN: Final = "(unknown)"


class PriceTableError(ValueError):
    """The price table cannot be read or says something that is not a price."""


@dataclass(slots=True)
class TokenCount:
    """Tokens of one (model, route), and how many responses they came from."""

    input: int = 0
    cached: int = 0
    output: int = 0
    reasoning: int = 0
    responses: int = 0

    def add(self, tokens: dict[str, int]) -> None:
        self.input += tokens.get("input", 0)
        self.cached += tokens.get("cached", 0)
        self.output += tokens.get("output", 0)
        self.reasoning += tokens.get("reasoning", 0)
        self.responses += 1


@dataclass(frozen=True, slots=True)
class Price:
    input: float
    cached: float
    output: float


@dataclass(frozen=True, slots=True)
class Prices:
    per: float
    models: dict[str, Price] = field(default_factory=dict)
    currency: str = ""

    def cost(self, model: str, count: TokenCount) -> float | None:
        """What ``count`` cost, or None if the table has no price for ``model``."""
        price = self.models.get(model)
        if price is None:
            return None
        uncached = max(count.input - count.cached, 0)
        total = uncached * price.input + count.cached * price.cached + count.output * price.output
        return total / self.per

    @classmethod
    def load(cls, path: Path) -> Prices:
        try:
            with path.open("rb") as file:
                table = tomllib.load(file)
        except OSError as exc:
            raise PriceTableError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PriceTableError(f"{str(path)!r} is not valid TOML: {exc}") from exc
        return cls.of(table, str(path))

    @classmethod
    def of(cls, table: dict[str, Any], where: str) -> Prices:
        per = table.get("per")
        if not _number(per) or per == 0:
            raise PriceTableError(
                f"{where} needs per = <tokens> (the prices are per this many tokens, such as "
                "1000 or 1_000_000); nothing is guessed"
            )
        currency = table.get("currency", "")
        models = table.get("models")
        if not isinstance(models, dict) or not models:
            raise PriceTableError(f'{where} has no [models."<name>"] table of prices')
        unknown = set(table) - {"per", "currency", "models"}
        if unknown:
            raise PriceTableError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}")
        prices: dict[str, Price] = {}
        for model, row in models.items():
            if not isinstance(row, dict):
                raise PriceTableError(f"{where}: models.{model} is not a table of prices")
            extra = set(row) - {"input", "cached", "output"}
            if extra or not _number(row.get("input")) or not _number(row.get("output")):
                raise PriceTableError(
                    f"{where}: models.{model!r} needs input and output prices (numbers) and "
                    "may have cached; nothing else"
                )
            given, output, cached = row["input"], row["output"], row.get("cached", row["input"])
            if not _number(cached):
                raise PriceTableError(f"{where}: models.{model!r}.cached is not a number")
            prices[str(model)] = Price(float(given), float(cached), float(output))
        return cls(float(per), prices, str(currency))


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def checked_tokens(value: Any) -> dict[str, int] | None:
    """A log line's ``tokens``, or None if it is not counts of the known types."""
    if not isinstance(value, dict) or not set(value) <= set(TOKEN_TYPES):
        return None
    if any(type(count) is not int or count < 0 for count in value.values()):
        return None
    return value
