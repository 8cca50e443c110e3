"""The page's first lines: per funnel, the gist a sales VP reads before any table (open deals,
open pipeline, win rate, median sales cycle), from figures the report already holds."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from mapping.model import Money
from sync.conversion import Converter, cents
from sync.health_model import Converted, FunnelFigures, HealthReport, StageFigure
from sync.kpis import sum_by_currency
from sync.report_words import amount, no_rate, share
from sync.terminal import counted

__all__ = ["headlines"]


def _open_stages(figures: FunnelFigures) -> list[StageFigure]:
    # The steps run from each open stage to the next, the last to the won stage: their
    # `from_stage`s are the funnel's open stages, which the stage rows do not mark.
    open_keys = {step.from_stage for step in figures.conversion.steps}
    return [s for s in figures.stages if s.key in open_keys]


def _pipeline(stages: list[StageFigure], converted: Converted | None) -> str:
    """The open stages' amounts: one total in the report currency where the report converts
    (rounded once, as every converted total), else one amount per currency."""
    amounts = sum_by_currency(Money(a, c) for s in stages for c, a in s.amount.items())
    if converted is None:
        each = " + ".join(f"{amount(a)} {c}" for c, a in amounts.items()) or "no amount"
        return f"{each} open pipeline"
    currency = converted.report_currency
    rates = {**converted.rates_used, currency: Decimal(1)}
    total = cents(Converter(currency, rates).total(amounts))
    left_out: Counter[str] = Counter()
    for stage in stages:
        left_out.update(stage.converted.unconverted if stage.converted else {})
    note = f"; no rate: {no_rate(dict(sorted(left_out.items())))}" if left_out else ""
    return f"{amount(total)} {currency} open pipeline (converted{note})"


def _headline(name: str, figures: FunnelFigures, converted: Converted | None) -> str:
    stages = _open_stages(figures)
    pipeline = _pipeline(stages, converted)
    # open deals in a stage the stage map lacks count, but no stage row holds their amounts
    unmapped = figures.open - sum(s.count for s in stages)
    aside = f" ({unmapped} in an unmapped stage, in no amount)" if unmapped else ""
    median = figures.sales_cycle.median_days
    cycle = "n/a" if median is None else f"{median} days"
    return (
        f"{name}: {counted(figures.open, 'open deal')}{aside}, {pipeline}, "
        f"win rate {share(figures.win_rate.rate)}, median cycle {cycle}"
    )


def headlines(report: HealthReport) -> list[str]:
    """One line per consolidated funnel, by name."""
    converted = report.consolidated.converted
    return [_headline(name, report.funnels[name], converted) for name in sorted(report.funnels)]
