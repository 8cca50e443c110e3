"""Amounts in the report currency (`report.currency`) from the configured `report.rates`.

Every figure split per currency may get one converted total beside it. The totals convert the
unrounded per-currency sums (rate x sum, exact at the report's precision: the same as summing
each deal's converted amount) and are rounded once, to cents, half to even. An amount in a
currency without a rate is in no converted total; the figure names those currencies and how
many of its deals each holds (`unconverted`), so a total never reads as complete when it is not.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = [
    "ConvertedAmount",
    "ConvertedForecast",
    "ConvertedMonth",
    "ConvertedSize",
    "ConvertedStage",
    "Converter",
    "cents",
]

_CENT = Decimal("0.01")
_ZERO = Decimal(0)


def cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class ConvertedAmount:
    currency: str
    amount: Decimal
    unconverted: Mapping[str, int]  # currency without a rate -> deals left out


@dataclass(frozen=True, slots=True)
class ConvertedStage:
    currency: str
    amount: Decimal
    weighted: Decimal
    unconverted: Mapping[str, int]  # currency without a rate -> deals left out


@dataclass(frozen=True, slots=True)
class ConvertedMonth:
    month: str  # YYYY-MM
    deals: int  # converted deals only
    weighted: Decimal
    committed: Decimal
    committed_deals: int
    unconverted: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ConvertedForecast:
    currency: str
    months: tuple[ConvertedMonth, ...]


@dataclass(frozen=True, slots=True)
class ConvertedSize:
    """Average and median of the won amounts, each converted (None: no won deal converted)."""

    currency: str
    count: int
    average: Decimal | None
    median: Decimal | None
    unconverted: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Converter:
    currency: str
    rates: Mapping[str, Decimal]  # 1 <code> = rate report currency; the report currency's is 1

    @classmethod
    def of(cls, currency: str | None, rates: Mapping[str, Decimal]) -> Converter | None:
        """None unless both a report currency and some rates are configured."""
        if currency is None or not rates:
            return None
        return cls(currency, {**{c: Decimal(r) for c, r in rates.items()}, currency: Decimal(1)})

    def total(self, amounts: Mapping[str, Decimal]) -> Decimal:
        """The amounts with a rate, converted and summed, unrounded."""
        return sum((a * self.rates[c] for c, a in amounts.items() if c in self.rates), _ZERO)

    def unconverted(self, deals: Mapping[str, int]) -> dict[str, int]:
        """Of `deals` (currency -> deals), those in a currency without a rate, by code."""
        return {c: n for c, n in sorted(deals.items()) if n and c not in self.rates}

    def amount(self, amounts: Mapping[str, Decimal], deals: Mapping[str, int]) -> ConvertedAmount:
        return ConvertedAmount(self.currency, cents(self.total(amounts)), self.unconverted(deals))

    def stage(
        self,
        amounts: Mapping[str, Decimal],
        weighted: Mapping[str, Decimal],
        deals: Mapping[str, int],
    ) -> ConvertedStage:
        return ConvertedStage(
            self.currency,
            cents(self.total(amounts)),
            cents(self.total(weighted)),
            self.unconverted(deals),
        )

    def won_size(self, amounts: Mapping[str, Sequence[Decimal]]) -> ConvertedSize:
        """`amounts`: currency -> each won deal's amount."""
        values = [a * self.rates[c] for c, own in amounts.items() if c in self.rates for a in own]
        return ConvertedSize(
            currency=self.currency,
            count=len(values),
            average=cents(sum(values, _ZERO) / len(values)) if values else None,
            median=cents(Decimal(statistics.median(values))) if values else None,
            unconverted=self.unconverted({c: len(own) for c, own in amounts.items()}),
        )
