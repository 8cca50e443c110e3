"""How deals move through a funnel: conversion, sales cycle, time in stage, drop-off.

These figures depend on when deals changed stage. They use the CRM's real stage history
(`Deal.stage_history`) where there is one and say so in `method`; where a figure can be derived
from the current stage alone it says "current_stage_only"; nothing is ever invented.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise

from mapping.funnel import Funnel
from mapping.model import Deal, DealStatus, StageChange
from sync.health_model import (
    Conversion,
    DropOff,
    Method,
    SalesCycle,
    StageTime,
    StepConversion,
    TimeInStage,
)
from sync.kpis import ratio

__all__ = ["conversion", "days", "drop_off", "percentile", "sales_cycle", "time_in_stage"]

_DAYS = Decimal("0.1")


def days(delta: timedelta) -> Decimal:
    """A duration in days to one decimal place."""
    seconds = Decimal(delta.days * 86400 + delta.seconds)
    return (seconds / Decimal(86400)).quantize(_DAYS, ROUND_HALF_EVEN)


def percentile(values: Sequence[Decimal], share: Decimal) -> Decimal | None:
    """Nearest-rank percentile: the smallest value with at least `share` of values <= it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _median(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    return Decimal(statistics.median(values)).quantize(_DAYS, ROUND_HALF_EVEN)


def _history(deal: Deal) -> list[StageChange]:
    """The stage history in time order, consecutive entries of the same stage merged."""
    merged: list[StageChange] = []
    for change in sorted(deal.stage_history, key=lambda c: c.entered_at):
        if not merged or merged[-1].stage != change.stage:
            merged.append(change)
    return merged


def _sequence(funnel: Funnel) -> list[str]:
    """The path a winning deal walks: the open stages in order, then the won stage."""
    return [s.key for s in sorted(funnel.open_stages, key=lambda s: s.order)] + [
        funnel.won_stage.key
    ]


def _reach(deal: Deal, sequence: list[str]) -> tuple[int | None, bool]:
    """The furthest position in `sequence` the deal reached (None: unknown), and whether from
    history. A deal that reached position k passed every position before it."""
    if deal.status is DealStatus.WON:
        return len(sequence) - 1, bool(deal.stage_history)
    if deal.stage_history:
        seen = [sequence.index(c.stage) for c in deal.stage_history if c.stage in sequence]
        if deal.status is DealStatus.OPEN and deal.stage in sequence:
            seen.append(sequence.index(deal.stage))
        return (max(seen) if seen else None), True
    if deal.status is DealStatus.OPEN and deal.stage in sequence:
        return sequence.index(deal.stage), False
    # A lost deal without history: where it dropped out is not known.
    return None, False


def conversion(deals: Iterable[Deal], funnel: Funnel) -> Conversion:
    """Stage -> next stage conversion and the overall lead -> won rate.

    Lost deals without history are left out of the step conversions (their last stage is
    unknown) but stay in the lead -> won cohort (`entered`)."""
    sequence = _sequence(funnel)
    reached_at = [0] * len(sequence)
    covered = from_history = unknown = entered = won = 0
    for deal in deals:
        if deal.stage is None or deal.stage not in funnel:
            continue
        entered += 1
        won += deal.status is DealStatus.WON
        position, with_history = _reach(deal, sequence)
        if position is None:
            unknown += 1
            continue
        covered += 1
        from_history += with_history
        for index in range(position + 1):
            reached_at[index] += 1
    steps = tuple(
        StepConversion(
            from_stage=sequence[i],
            to_stage=sequence[i + 1],
            reached_from=reached_at[i],
            reached_to=reached_at[i + 1],
            rate=ratio(reached_at[i + 1], reached_at[i]),
        )
        for i in range(len(sequence) - 1)
    )
    method: Method = "not_available"
    if covered:
        method = "stage_history" if from_history == covered else "current_stage_only"
    return Conversion(
        method=method,
        deals=covered,
        history_deals=from_history,
        excluded_unknown=unknown,
        steps=steps,
        entered=entered,
        won=won,
        lead_to_won=ratio(won, entered),
    )


def _won_at(deal: Deal, funnel: Funnel) -> tuple[datetime | None, str]:
    won_key = funnel.won_stage.key
    entries = [c.entered_at for c in deal.stage_history if c.stage == won_key]
    if entries:
        return max(entries), "stage_history"
    if deal.stage == won_key and deal.stage_entered_at is not None:
        return deal.stage_entered_at, "stage_entered_at"
    if deal.close_date is not None:
        return datetime.combine(deal.close_date, time(0), tzinfo=UTC), "close_date"
    return None, "unknown"


def sales_cycle(deals: Iterable[Deal], funnel: Funnel) -> SalesCycle:
    """Days from creation to won, over won deals: median and p90 (nearest rank)."""
    durations: list[Decimal] = []
    sources: Counter[str] = Counter()
    for deal in deals:
        if deal.status is not DealStatus.WON:
            continue
        won_at, source = _won_at(deal, funnel)
        if source == "close_date":  # a date without a time: whole days, a same-day win is 0
            created = datetime.combine(deal.created_at.date(), time(0), tzinfo=UTC)
        else:
            created = deal.created_at
        if won_at is None or won_at < created:
            sources["unknown"] += 1  # no won date, or one before creation: bad data, left out
            continue
        sources[source] += 1
        durations.append(days(won_at - created))
    method: Method = "not_available"
    if durations:
        only_history = sources["stage_history"] == len(durations)
        method = "stage_history" if only_history else "current_stage_only"
    return SalesCycle(
        method=method,
        deals=len(durations),
        median_days=_median(durations),
        p90_days=percentile(durations, Decimal("0.9")),
        sources=dict(sorted(sources.items())),
    )


def time_in_stage(
    deals: Iterable[Deal], funnel: Funnel, now: datetime, stale_days: int
) -> TimeInStage:
    """Median days per open stage over completed stints, and deals stalled there now."""
    open_keys = [s.key for s in sorted(funnel.open_stages, key=lambda s: s.order)]
    stints: dict[str, list[Decimal]] = defaultdict(list)
    stalled: Counter[str] = Counter()
    covered = 0
    for deal in deals:
        history = _history(deal)
        if not history:
            continue
        covered += 1
        for current, following in pairwise(history):
            if current.stage in open_keys:
                stints[current.stage].append(days(following.entered_at - current.entered_at))
        last = history[-1]
        ongoing = deal.status is DealStatus.OPEN and last.stage in open_keys
        if ongoing and (now - last.entered_at).days > stale_days:
            stalled[str(last.stage)] += 1
    figures = tuple(
        StageTime(
            stage=k, median_days=_median(stints[k]), stints=len(stints[k]), stalled=stalled[k]
        )
        for k in open_keys
    )
    medians = [f.median_days for f in figures if f.median_days is not None]
    longest = max(medians, default=None)
    most = max(stalled.values(), default=0)
    return TimeInStage(
        method="stage_history" if covered else "not_available",
        deals=covered,
        stages=figures,
        bottleneck=tuple(
            f.stage for f in figures if longest is not None and f.median_days == longest
        ),
        most_stalled=tuple(f.stage for f in figures if most and f.stalled == most),
    )


def drop_off(deals: Iterable[Deal], funnel: Funnel) -> DropOff:
    """The last open stage of each lost deal, from its history; without history: unknown."""
    open_keys = {s.key for s in funnel.open_stages}
    by_stage: Counter[str] = Counter()
    unknown = 0
    for deal in deals:
        if deal.status is not DealStatus.LOST:
            continue
        passed = [c for c in _history(deal) if c.stage in open_keys]
        if passed:
            by_stage[str(passed[-1].stage)] += 1
        else:
            unknown += 1
    order = {s.key: s.order for s in funnel.stages}
    known = sum(by_stage.values())
    return DropOff(
        method="stage_history" if known else "not_available",
        deals=known,
        unknown=unknown,
        by_stage={k: by_stage[k] for k in sorted(by_stage, key=lambda k: order[k])},
    )
