"""Pipeline KPIs over one set of canonical deals: stage totals, win rate, deal size, stale and
past-due deals, forecast by close month. Pure: the clock comes in as `now`, in the report's
time zone, so `now.date()` is today there.

History-dependent figures (conversion, cycle, time in stage, drop-off) live in
`sync.stage_flow`. Money is summed per currency only; nothing here converts.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from mapping.funnel import Funnel
from mapping.model import Deal, DealStatus, Money
from sync.conversion import ConvertedForecast, ConvertedMonth, Converter, cents
from sync.health_model import (
    Amounts,
    DealFlag,
    DealSize,
    Forecast,
    ForecastMonth,
    Method,
    PastDue,
    StageFigure,
    Stale,
    UnmappedStageFigure,
    WinRate,
)
from sync.stage_names import StageNames, stage_name

__all__ = [
    "COMMITTED_PROBABILITY",
    "COMMITTED_RULE",
    "LISTED_DEALS",
    "forecast",
    "past_due",
    "probability_of",
    "ratio",
    "stage_figures",
    "stale",
    "sum_by_currency",
    "unmapped_stages",
    "win_rate",
    "won_amounts",
    "won_sizes",
]

LISTED_DEALS = 100  # flagged deals listed by name; the counts always cover all of them
COMMITTED_PROBABILITY = Decimal("0.9")
COMMITTED_RULE = (
    "committed = open deals in the funnel's last open stage or with probability >= 0.9; "
    "weighted = sum of amount x probability of open deals (the deal's own probability, "
    "else its stage's default)"
)
_RATIO = Decimal("0.0001")
_MONEY = Decimal("0.01")


_ZERO = Decimal(0)
_ONE = Decimal(1)


def ratio(part: int, whole: int) -> Decimal | None:
    """part / whole to 4 places (half-even), None when there is nothing to divide by."""
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(_RATIO, ROUND_HALF_EVEN)


def sum_by_currency(values: Iterable[Money]) -> dict[str, Decimal]:
    """Totals per currency, sorted by currency code; Money refuses to add across currencies."""
    totals: dict[str, Decimal] = {}
    for money in values:  # one running Decimal per currency: never a sum across currencies
        totals[money.currency] = totals.get(money.currency, _ZERO) + money.amount
    return {code: totals[code] for code in sorted(totals)}


def probability_of(deal: Deal, funnel: Funnel | None) -> Decimal | None:
    """The chance the deal is won: 1 once won, 0 once lost (a CRM such as Pipedrive keeps the
    probability a user set before closing); for an open deal its own probability, else its
    stage's default, else None (stage unmapped)."""
    if deal.status is not DealStatus.OPEN:
        return _ONE if deal.status is DealStatus.WON else _ZERO
    if deal.probability is not None:
        return deal.probability
    if funnel is not None and deal.stage is not None and deal.stage in funnel:
        return funnel.stage(deal.stage).probability
    return None


def _weighted(deal: Deal, funnel: Funnel | None) -> Money | None:
    """amount x probability, unrounded: totals are rounded once, as the consolidated ones are."""
    probability = probability_of(deal, funnel)
    if deal.value is None or probability is None:
        return None
    return deal.value * probability


def _sums(members: Sequence[Deal], funnel: Funnel) -> tuple[Amounts, Amounts, Counter[str]]:
    """Amount and weighted amount (unrounded: a converted total rounds once) per currency of
    some deals, and how many of them hold an amount, per currency."""
    valued = [d.value for d in members if d.value is not None]
    weighted = sum_by_currency(w for d in members if (w := _weighted(d, funnel)) is not None)
    return sum_by_currency(valued), weighted, Counter(v.currency for v in valued)


def _in_cents(amounts: Amounts) -> Amounts:
    return {c: cents(a) for c, a in amounts.items()}


def stage_figures(
    deals: Sequence[Deal], funnel: Funnel, converter: Converter | None = None
) -> tuple[StageFigure, ...]:
    """Count, amount and weighted amount per stage of the funnel, per currency (and with a
    `converter`, in the report currency)."""
    by_stage: dict[str, list[Deal]] = defaultdict(list)
    for deal in deals:
        if deal.stage is not None:
            by_stage[deal.stage].append(deal)
    figures = []
    for stage in funnel.stages:
        members = by_stage.get(stage.key, [])
        amount, weighted, valued = _sums(members, funnel)
        figures.append(
            StageFigure(
                key=stage.key,
                label=stage.label,
                count=len(members),
                amount=amount,
                weighted=_in_cents(weighted),
                without_amount=len(members) - valued.total(),
                converted=converter.stage(amount, weighted, valued) if converter else None,
            )
        )
    return tuple(figures)


def unmapped_stages(
    deals: Sequence[Deal], funnel: Funnel, names: StageNames
) -> tuple[UnmappedStageFigure, ...]:
    """The deals no row of `stage_figures` holds, per instance and native stage, named as
    their CRM shows the stage (`names`), sorted by instance and name."""
    held: dict[tuple[str, str, str | None], list[Deal]] = defaultdict(list)
    for deal in deals:
        if deal.stage is None or deal.stage not in funnel:
            held[(deal.ref.system, deal.pipeline, deal.native_stage)].append(deal)
    figures = []
    for (system, pipeline, native), members in held.items():
        amount, weighted, valued = _sums(members, funnel)
        name = stage_name(names, system, pipeline, native)
        without = len(members) - valued.total()
        figure = UnmappedStageFigure(
            system, pipeline, native, name, len(members), amount, _in_cents(weighted), without
        )
        figures.append(figure)
    return tuple(sorted(figures, key=lambda f: (f.system, f.name)))


def win_rate(deals: Iterable[Deal]) -> WinRate:
    counts = Counter(d.status for d in deals)
    won, lost = counts[DealStatus.WON], counts[DealStatus.LOST]
    return WinRate(won=won, lost=lost, rate=ratio(won, won + lost))


def won_amounts(deals: Iterable[Deal]) -> dict[str, list[Decimal]]:
    """Per currency, the amount of each won deal that has one."""
    amounts: dict[str, list[Decimal]] = defaultdict(list)
    for deal in deals:
        if deal.status is DealStatus.WON and deal.value is not None:
            amounts[deal.value.currency].append(deal.value.amount)
    return amounts


def won_sizes(amounts: Mapping[str, Sequence[Decimal]]) -> tuple[DealSize, ...]:
    """Average and median won amount per currency (`won_amounts`)."""
    return tuple(
        DealSize(
            currency=code,
            count=len(values),
            average=(sum(values, Decimal(0)) / len(values)).quantize(_MONEY, ROUND_HALF_EVEN),
            median=Decimal(statistics.median(values)).quantize(_MONEY, ROUND_HALF_EVEN),
        )
        for code, values in sorted(amounts.items())
    )


def last_stage_change(deal: Deal) -> tuple[datetime, str]:
    """When the deal last changed stage, and from which timestamp that is known."""
    if deal.stage_history:
        return max(change.entered_at for change in deal.stage_history), "stage_history"
    if deal.stage_entered_at is not None:
        return deal.stage_entered_at, "stage_entered_at"
    # Nothing records the stage change: the last update is the best lower bound there is.
    return deal.updated_at, "updated_at"


def _flag(deal: Deal, days: int, basis: str) -> DealFlag:
    return DealFlag(system=deal.ref.system, id=deal.ref.id, name=deal.name, days=days, basis=basis)


def _listed(flags: list[DealFlag]) -> tuple[DealFlag, ...]:
    flags.sort(key=lambda f: (-f.days, f.system, f.id))
    return tuple(flags[:LISTED_DEALS])


def stale(deals: Iterable[Deal], now: datetime, stale_days: int) -> Stale:
    """Open deals without a stage change for more than `stale_days` days."""
    open_deals = 0
    bases: Counter[str] = Counter()
    measured: set[str] = set()  # the basis of every open deal, flagged or not
    flags: list[DealFlag] = []
    for deal in deals:
        if deal.status is not DealStatus.OPEN:
            continue
        open_deals += 1
        changed_at, basis = last_stage_change(deal)
        measured.add(basis)
        age = (now - changed_at).days
        if age > stale_days:
            bases[basis] += 1
            flags.append(_flag(deal, age, basis))
    method: Method = "not_available" if open_deals == 0 else "stage_history"
    if measured - {"stage_history"}:
        method = "current_stage_only"
    return Stale(
        method=method,
        open_deals=open_deals,
        count=len(flags),
        by_basis=dict(sorted(bases.items())),
        deals=_listed(flags),
    )


def past_due(deals: Iterable[Deal], now: datetime, converter: Converter | None = None) -> PastDue:
    """Open deals whose expected close date is before today."""
    today = now.date()
    flags: list[DealFlag] = []
    values: list[Money] = []
    for deal in deals:
        if (
            deal.status is DealStatus.OPEN
            and deal.close_date is not None
            and deal.close_date < today
        ):
            flags.append(_flag(deal, (today - deal.close_date).days, "close_date"))
            if deal.value is not None:
                values.append(deal.value)
    amounts = sum_by_currency(values)
    return PastDue(
        count=len(flags),
        amount=amounts,
        deals=_listed(flags),
        converted=converter.amount(amounts, Counter(v.currency for v in values))
        if converter
        else None,
    )


def _is_committed(deal: Deal, funnel: Funnel | None, probability: Decimal | None) -> bool:
    if probability is not None and probability >= COMMITTED_PROBABILITY:
        return True
    if funnel is None or not funnel.open_stages:
        return False
    return deal.stage == funnel.open_stages[-1].key


def forecast(
    deals: Iterable[Deal],
    funnels: Mapping[str, Funnel],
    now: datetime,
    converter: Converter | None = None,
) -> Forecast:
    """Open deals by close month and currency: weighted and committed amounts (COMMITTED_RULE),
    from the current month on (and with a `converter`, per month in the report currency). A
    deal whose close date is before today is past due, counted apart (`past_due`) and in no
    month: it is not expected to close in the month it names."""
    today = now.date()
    cells: dict[tuple[str, str], list[tuple[Deal, Money | None, bool]]] = defaultdict(list)
    no_close_date = without_amount = overdue = 0
    for deal in deals:
        if deal.status is not DealStatus.OPEN:
            continue
        if deal.close_date is None:
            no_close_date += 1
            continue
        if deal.close_date < today:
            overdue += 1
            continue
        if deal.value is None:
            without_amount += 1
            continue
        funnel = funnels.get(deal.funnel)
        probability = probability_of(deal, funnel)
        key = (deal.close_date.strftime("%Y-%m"), deal.value.currency)
        cells[key].append((deal, _weighted(deal, funnel), _is_committed(deal, funnel, probability)))
    sums = []  # unrounded: a converted month rounds its own total once
    for (month, currency), members in sorted(cells.items()):
        weighted = [w for _, w, _ in members if w is not None]
        committed = [d.value for d, _, c in members if c and d.value is not None]
        sums.append(
            ForecastMonth(
                month=month,
                currency=currency,
                deals=len(members),
                weighted=sum_by_currency(weighted).get(currency, _ZERO),
                committed=sum_by_currency(committed).get(currency, _ZERO),
                committed_deals=len(committed),
            )
        )
    months = tuple(
        replace(s, weighted=cents(s.weighted), committed=cents(s.committed)) for s in sums
    )
    return Forecast(
        rule=COMMITTED_RULE,
        months=months,
        no_close_date=no_close_date,
        without_amount=without_amount,
        past_due=overdue,
        converted=_converted_forecast(sums, converter) if converter else None,
    )


def _converted_forecast(sums: Sequence[ForecastMonth], converter: Converter) -> ConvertedForecast:
    """Per month, the sums of its currencies with a rate, converted (`sums` unrounded)."""
    by_month: dict[str, list[ForecastMonth]] = defaultdict(list)
    for cell in sums:
        by_month[cell.month].append(cell)
    months = []
    for month, members in sorted(by_month.items()):
        kept = [c for c in members if c.currency in converter.rates]
        months.append(
            ConvertedMonth(
                month=month,
                deals=sum(c.deals for c in kept),
                weighted=cents(converter.total({c.currency: c.weighted for c in kept})),
                committed=cents(converter.total({c.currency: c.committed for c in kept})),
                committed_deals=sum(c.committed_deals for c in kept),
                unconverted=converter.unconverted({c.currency: c.deals for c in members}),
            )
        )
    return ConvertedForecast(converter.currency, tuple(months))
