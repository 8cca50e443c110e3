"""Pipeline health: the entry point that turns canonical deals (+ plan, sync state) into a
`HealthReport`. Pure: no database, no network, no clock (`now` comes in with the inputs).

Days begin at midnight in the report's time zone (`HealthInputs.timezone`): the KPI functions
get `now` in that zone, so `now.date()` is today there (past due, forecast months), and a
sales cycle measured from a close date counts from the creation date there. Ages measured
between two instants (stale, stalled, sync age) are the same in every zone.

Figures are computed per instance and funnel, per funnel over all instances, and consolidated;
across instances a matched entity (the same real deal in several CRMs) counts once, through
one representative copy: the first instance of `consolidation_order` holding a copy (then the
instances in the order `deals` lists them), whose stage, amount and close date give way to
another copy's where the field's policy picks that one (`sync.consolidate`). With `since`, an
instance's figures cover its deals created or updated in the window; a matched entity is in
the window when any copy is, and is then counted from all its live copies.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from mapping.funnel import Funnel
from mapping.model import Deal, DealStatus, Ref
from sync import kpis, stage_flow
from sync.consolidate import Chooser
from sync.conversion import Converter, cents
from sync.health_checks import (
    UnknownThreshold,
    copies_without_account,
    cross_system,
    data_quality,
    evaluate_thresholds,
)
from sync.health_model import (
    Consolidated,
    Converted,
    FunnelFigures,
    HealthInputs,
    HealthReport,
    ReportFilters,
    SystemFigures,
)
from sync.stage_names import StageNames

__all__ = [
    "CONVERSION_NOTE",
    "HealthInputs",
    "HealthReport",
    "UnknownFunnel",
    "UnknownThreshold",
    "build_health",
    "funnel_figures",
]

_DIGITS = 250  # see build_health

CONVERSION_NOTE = "converted with configured rates"


class UnknownFunnel(ValueError):
    """A deal names a funnel the configuration does not define."""

    def __init__(self, ref: Ref, funnel: str) -> None:
        super().__init__(
            f"deal {ref} is in funnel {funnel!r}, which the config does not define: "
            "add it under `funnels` or fix the instance's pipeline_funnels"
        )


def funnel_figures(
    deals: Sequence[Deal],
    funnel: Funnel,
    now: datetime,
    stale_days: int,
    stage_maps: stage_flow.StageMaps | None = None,
    stage_names: StageNames | None = None,
    converter: Converter | None = None,
) -> FunnelFigures:
    """Every pipeline KPI of one set of deals in one funnel (`stage_maps`: where lost deals
    were lost, for CRMs that keep a lost deal in its stage; `stage_names`: what the CRMs call
    the stages the stage maps lack; `converter`: amounts in the report currency too). `now` in
    the report's time zone: its date is today."""
    statuses = [d.status for d in deals]
    won = kpis.won_amounts(deals)
    return FunnelFigures(
        funnel=funnel.name,
        deals=len(deals),
        open=statuses.count(DealStatus.OPEN),
        won=statuses.count(DealStatus.WON),
        lost=statuses.count(DealStatus.LOST),
        unmapped_stage=sum(d.stage is None or d.stage not in funnel for d in deals),
        stages=kpis.stage_figures(deals, funnel, converter),
        conversion=stage_flow.conversion(deals, funnel, stage_maps),
        win_rate=kpis.win_rate(deals),
        won_size=kpis.won_sizes(won),
        sales_cycle=stage_flow.sales_cycle(deals, funnel, now.tzinfo or UTC),
        time_in_stage=stage_flow.time_in_stage(deals, funnel, now, stale_days),
        drop_off=stage_flow.drop_off(deals, funnel, stage_maps),
        stale=kpis.stale(deals, now, stale_days),
        past_due=kpis.past_due(deals, now, converter),
        forecast=kpis.forecast(deals, {funnel.name: funnel}, now, converter),
        unmapped_stages=kpis.unmapped_stages(deals, funnel, stage_names or {}),
        won_size_converted=converter.won_size(won) if converter else None,
    )


def _figures(
    deals: Sequence[Deal],
    funnel: Funnel,
    now: datetime,
    inputs: HealthInputs,
    converter: Converter | None,
) -> FunnelFigures:
    return funnel_figures(
        deals, funnel, now, inputs.stale_days, inputs.stage_maps, inputs.stage_names, converter
    )


def _by_funnel(deals: Iterable[Deal], funnels: Mapping[str, Funnel]) -> dict[str, list[Deal]]:
    grouped: dict[str, list[Deal]] = defaultdict(list)
    for deal in deals:
        if deal.funnel not in funnels:
            raise UnknownFunnel(deal.ref, deal.funnel)
        grouped[deal.funnel].append(deal)
    return {name: grouped[name] for name in funnels if name in grouped}


def _in_window(deals: Sequence[Deal], inputs: HealthInputs) -> list[Deal]:
    """Deals created or updated in [since, until] (days in the report's time zone) and, with
    `only_funnels`, in one of those funnels (a copy's own funnel: the consolidated figures
    keep a matched deal by the funnel it counts in, `_build_health`)."""
    zone = ZoneInfo(inputs.timezone)
    low, high = inputs.since or date.min, inputs.until or date.max

    def dated(at: datetime) -> bool:
        return low <= at.astimezone(zone).date() <= high

    return [
        d
        for d in deals
        if (not inputs.only_funnels or d.funnel in inputs.only_funnels)
        and (dated(d.created_at) or dated(d.updated_at))
    ]


def _of_systems(inputs: HealthInputs) -> HealthInputs:
    """The inputs as if the config held only `only_systems`: a matched deal keeps the copies in
    those instances, and is matched only where two or more of them hold one."""
    if not inputs.only_systems:
        return inputs
    keep = set(inputs.only_systems)

    def kept(rows: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
        return tuple(r for r in rows if r.get("system") in keep)

    entities = [{i: r for i, r in group.items() if i in keep} for group in inputs.entities]
    plan = inputs.plan and {**inputs.plan, "duplicates": kept(inputs.plan.get("duplicates", ()))}
    return replace(
        inputs,
        plan=plan,
        deals={i: d for i, d in inputs.deals.items() if i in keep},
        entities=[group for group in entities if len(group) > 1],
        sync_status={i: s for i, s in inputs.sync_status.items() if i in keep},
        dead_letters=kept(inputs.dead_letters),
        mapping_errors=kept(inputs.mapping_errors),
        account_notes=kept(inputs.account_notes),
        consolidation_order=[i for i in inputs.consolidation_order if i in keep],
    )


def _filters(inputs: HealthInputs) -> ReportFilters:
    return ReportFilters(
        funnels=inputs.only_funnels,
        systems=inputs.only_systems,
        since=inputs.since,
        until=inputs.until,
    )


def _order(inputs: HealthInputs) -> list[str]:
    order = [i for i in inputs.consolidation_order if i in inputs.deals]
    return order + [i for i in inputs.deals if i not in order]


def _representatives(
    entities: Sequence[Mapping[str, Ref]],
    present: Mapping[Ref, Deal],
    live: Mapping[Ref, Deal],
    chooser: Chooser,
    bases: Mapping[Ref, Mapping[str, Any]],
) -> tuple[dict[Ref, str], dict[Ref, Deal], int]:
    """Each matched ref's entity label; per entity with a copy in `present` (the window) the
    deal that stands for it, keyed by its first present copy in `chooser.order`; and how many
    copies those stand-ins merge.

    The stand-in is chosen among all the entity's `live` copies, in the window or not: a deal
    is in the window when any CRM created or updated it there, and then counts as it does
    without a window (a copy outside it is the same deal, and may be the one its policy
    picks)."""
    entity_of: dict[Ref, str] = {}
    stand_in: dict[Ref, Deal] = {}
    merged = 0
    order = chooser.order
    for group in entities:
        ranked = [group[i] for i in order if i in group] + [
            group[i] for i in sorted(group) if i not in order
        ]
        label = str(ranked[0]) if ranked else ""
        for ref in group.values():
            entity_of[ref] = label
        shown = next((ref for ref in ranked if ref in present), None)
        if shown is not None:
            copies = [live[ref] for ref in ranked if ref in live]
            stand_in[shown] = chooser.stand_in(copies, bases.get(ranked[0]))
            merged += len(copies) - 1
    return entity_of, stand_in, merged


def _converted(
    converter: Converter | None,
    deals: Sequence[Deal],
    open_amount: Mapping[str, Decimal],
    weighted: Mapping[str, Decimal],
    won_amount: Mapping[str, Decimal],
) -> Converted | None:
    """Consolidated totals in the report currency (`weighted` unrounded)."""
    if converter is None:
        return None
    # A lost deal is in no converted total: not "left out" for want of a rate either.
    held = Counter(d.value.currency for d in deals if d.value and d.status is not DealStatus.LOST)
    return Converted(
        report_currency=converter.currency,
        note=CONVERSION_NOTE,
        open_amount=cents(converter.total(open_amount)),
        weighted=cents(converter.total(weighted)),
        won_amount=cents(converter.total(won_amount)),
        rates_used={c: converter.rates[c] for c in sorted(held) if c in converter.rates},
        not_converted=converter.unconverted(held),
    )


def _consolidated(
    deals: list[Deal],
    merged: int,
    inputs: HealthInputs,
    chooser: Chooser,
    now: datetime,
    converter: Converter | None,
) -> Consolidated:
    open_deals = [d for d in deals if d.status is DealStatus.OPEN]
    weighted = []
    for deal in open_deals:
        probability = kpis.probability_of(deal, inputs.funnels.get(deal.funnel))
        if deal.value is not None and probability is not None:
            weighted.append(deal.value * probability)
    open_amount = kpis.sum_by_currency(d.value for d in open_deals if d.value)
    weighted_sums = kpis.sum_by_currency(weighted)
    won_amount = kpis.sum_by_currency(
        d.value for d in deals if d.status is DealStatus.WON and d.value
    )
    return Consolidated(
        deals=len(deals),
        copies_merged=merged,
        open=len(open_deals),
        won=sum(d.status is DealStatus.WON for d in deals),
        lost=sum(d.status is DealStatus.LOST for d in deals),
        open_amount=open_amount,
        weighted={c: a.quantize(Decimal("0.01")) for c, a in weighted_sums.items()},
        won_amount=won_amount,
        win_rate=kpis.win_rate(deals),
        stale=kpis.stale(deals, now, inputs.stale_days).count,
        past_due=kpis.past_due(deals, now).count,
        forecast=kpis.forecast(deals, inputs.funnels, now, converter),
        converted=_converted(converter, deals, open_amount, weighted_sums, won_amount),
        copies_counted=chooser.counted(),
    )


def build_health(inputs: HealthInputs) -> HealthReport:
    """The whole health report. Raises UnknownFunnel / UnknownThreshold on bad configuration.

    Sums run with digits enough for any amount the model admits (up to 1E+100 with 100
    decimals) over millions of deals: the default 28 digits rounded them, then failed to
    round a total to cents.
    """
    with localcontext(prec=_DIGITS):
        return _build_health(inputs)


def _build_health(inputs: HealthInputs) -> HealthReport:
    inputs = _of_systems(inputs)
    filters = _filters(inputs)
    now = inputs.now.astimezone(ZoneInfo(inputs.timezone))  # for the KPIs: see the module doc
    deals = {instance: _in_window(own, inputs) for instance, own in inputs.deals.items()}
    present = {d.ref: d for own in deals.values() for d in own}
    live = {d.ref: d for own in inputs.deals.values() for d in own}
    chooser = Chooser(inputs.policies, inputs.funnels, tuple(_order(inputs)))
    converter = Converter.of(inputs.report_currency, inputs.rates)
    entity_of, stand_in, merged = _representatives(
        inputs.entities, present, live, chooser, inputs.bases
    )
    systems = {
        instance: SystemFigures(
            instance=instance,
            deals=len(own),
            funnels={
                name: _figures(group, inputs.funnels[name], now, inputs, converter)
                for name, group in _by_funnel(own, inputs.funnels).items()
            },
        )
        for instance, own in deals.items()
    }
    all_copies = [d for own in deals.values() for d in own]
    unique = [
        stand_in.get(d.ref, d) for d in all_copies if d.ref not in entity_of or d.ref in stand_in
    ]
    if inputs.only_funnels:  # a matched deal whose copies follow several funnels counts in one
        unique = [d for d in unique if d.funnel in inputs.only_funnels]
    consolidated = _consolidated(unique, merged, inputs, chooser, now, converter)
    quality = data_quality(
        deals,
        inputs.mapping_errors,
        inputs.plan,
        copies_without_account(inputs.account_notes, inputs.deals),
        inputs.stage_names,
    )
    cross = cross_system(
        deals,
        inputs.entities,
        entity_of,
        inputs.plan,
        inputs.sync_status,
        inputs.dead_letters,
        inputs.instance_urls,
        inputs.now,
        window=filters.active(),
        live=live.keys(),
        archived_open=inputs.archived_open,
        mismatched=inputs.mismatched,
        funnel_of={ref: deal.funnel for ref, deal in live.items()},
    )
    thresholds = evaluate_thresholds(
        inputs.thresholds, consolidated, quality, cross, len(all_copies)
    )
    return HealthReport(
        generated_at=inputs.now,
        since=inputs.since,
        stale_days=inputs.stale_days,
        report_currency=inputs.report_currency,
        thresholds=thresholds,
        breached=tuple(t for t in thresholds if t.breached),
        systems=systems,
        funnels={
            name: _figures(group, inputs.funnels[name], now, inputs, converter)
            for name, group in _by_funnel(unique, inputs.funnels).items()
        },
        consolidated=consolidated,
        data_quality=quality,
        cross_system=cross,
        timezone=inputs.timezone,
        filters=filters,
    )
