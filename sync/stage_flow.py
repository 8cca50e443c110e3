"""How deals move through a funnel: conversion, sales cycle, time in stage, drop-off.

These figures depend on when deals changed stage. They use the CRM's real stage history
(`Deal.stage_history`) where there is one and say so in `method`; where a figure can be derived
from the current stage alone it says "current_stage_only"; nothing is ever invented.

The furthest stage a deal reached: a won deal passed every stage; otherwise the furthest of its
history and the stage it is in, short of the won stage (a deal won once, then reopened or lost,
is not a conversion). A lost deal is in the funnel's lost stage, but its native stage
may still say where it was lost: Pipedrive keeps a lost deal in the pipeline stage it was lost
in, and that stage mapped through the instance's stage map (`StageMaps`) is an open stage.
Salesforce and HubSpot move a lost deal to a closed-lost stage, which maps to no open stage,
so there only the history tells.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
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

__all__ = [
    "StageMaps",
    "conversion",
    "days",
    "drop_off",
    "lost_in",
    "percentile",
    "sales_cycle",
    "time_in_stage",
]

# instance -> pipeline -> native stage -> funnel stage key (each instance's `stage_map`)
StageMaps = Mapping[str, Mapping[str, Mapping[str, str]]]

_DAYS = Decimal("0.1")


def days(delta: timedelta) -> Decimal:
    """A duration in days, unrounded: a median or percentile of them is rounded once, at the
    end (rounded first, the mean of two middle values could round again, 0.1 day off)."""
    seconds = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6
    return seconds / Decimal(86400)


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(_DAYS, ROUND_HALF_EVEN)


def percentile(values: Sequence[Decimal], share: Decimal) -> Decimal | None:
    """Nearest-rank percentile: the smallest value with at least `share` of values <= it,
    to one decimal place."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return _rounded(ordered[rank - 1])


def _median(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    return _rounded(Decimal(statistics.median(values)))


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    return _rounded(sum(values, Decimal(0)) / len(values))


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


def lost_in(deal: Deal, stage_maps: StageMaps) -> str | None:
    """The funnel stage a lost deal's current native stage maps to (None: not lost, or the
    stage map lacks it). An open stage only where the CRM keeps a lost deal in its stage."""
    if deal.status is not DealStatus.LOST or not deal.native_stage:
        return None
    return stage_maps.get(deal.system, {}).get(deal.pipeline, {}).get(deal.native_stage)


def _reach(deal: Deal, sequence: list[str], stage_maps: StageMaps) -> tuple[int | None, bool]:
    """The furthest position in `sequence` the deal reached (None: unknown), and whether from
    history. A deal that reached position k passed every position before it. Only a won deal
    reached the won stage: one won once and then reopened or lost reached the last open stage
    (a lost one dropped off there, it cannot also have converted)."""
    if deal.status is DealStatus.WON:
        return len(sequence) - 1, bool(deal.stage_history)
    # Not won (now): having been in the won stage means having passed the last open one.
    last_open = len(sequence) - 2
    position = {key: min(i, last_open) for i, key in enumerate(sequence)} if last_open >= 0 else {}
    if deal.status is DealStatus.OPEN:
        here = deal.stage
    else:  # lost: the open stage it was lost in, where its CRM keeps that
        stage = lost_in(deal, stage_maps)
        here = stage if stage in sequence[:-1] else None
    current = None if here is None else position.get(here)
    seen = [position[c.stage] for c in deal.stage_history if c.stage in position]
    if seen:
        return max(seen if current is None else [*seen, current]), True
    return current, False


def conversion(
    deals: Iterable[Deal], funnel: Funnel, stage_maps: StageMaps | None = None
) -> Conversion:
    """Stage -> next stage conversion and the overall lead -> won rate.

    Lost deals whose furthest stage is unknown (no history, and a native stage that maps to no
    open stage) are left out of the step conversions but stay in the lead -> won cohort
    (`entered`)."""
    sequence = _sequence(funnel)
    reached_at = [0] * len(sequence)
    covered = from_history = unknown = entered = won = 0
    for deal in deals:
        if deal.stage is None or deal.stage not in funnel:
            continue
        entered += 1
        won += deal.status is DealStatus.WON
        position, with_history = _reach(deal, sequence, stage_maps or {})
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


def _won_at(deal: Deal, funnel: Funnel, zone: tzinfo) -> tuple[datetime | None, str]:
    won_key = funnel.won_stage.key
    entries = [c.entered_at for c in deal.stage_history if c.stage == won_key]
    if entries:
        return max(entries), "stage_history"
    if deal.stage == won_key and deal.stage_entered_at is not None:
        return deal.stage_entered_at, "stage_entered_at"
    if deal.close_date is not None:
        return datetime.combine(deal.close_date, time(0), tzinfo=zone), "close_date"
    return None, "unknown"


def sales_cycle(deals: Iterable[Deal], funnel: Funnel, zone: tzinfo = UTC) -> SalesCycle:
    """Days from creation to won, over won deals: median, mean and p90 (nearest rank). A won date
    known only as a close date counts whole days from the creation date in `zone` (the
    report's time zone: a date-only close date has no instant to measure from)."""
    durations: list[Decimal] = []
    sources: Counter[str] = Counter()
    for deal in deals:
        if deal.status is not DealStatus.WON:
            continue
        won_at, source = _won_at(deal, funnel, zone)
        if source == "close_date":  # a date without a time: whole days, a same-day win is 0
            # both midnights in `zone` (one tzinfo): their difference is whole days, DST or not
            created = datetime.combine(deal.created_at.astimezone(zone).date(), time(0), zone)
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
        mean_days=_mean(durations),
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


def drop_off(deals: Iterable[Deal], funnel: Funnel, stage_maps: StageMaps | None = None) -> DropOff:
    """The stage each lost deal dropped off in: the last open stage of its history, else the
    open stage its native stage maps to (see `lost_in`); otherwise unknown."""
    open_keys = {s.key for s in funnel.open_stages}
    by_stage: Counter[str] = Counter()
    unknown = from_history = 0
    for deal in deals:
        if deal.status is not DealStatus.LOST:
            continue
        passed = [c for c in _history(deal) if c.stage in open_keys]
        here = lost_in(deal, stage_maps or {})
        if passed:
            by_stage[str(passed[-1].stage)] += 1
            from_history += 1
        elif here in open_keys:
            by_stage[str(here)] += 1
        else:
            unknown += 1
    order = {s.key: s.order for s in funnel.stages}
    known = sum(by_stage.values())
    method: Method = "not_available"
    if known:
        method = "stage_history" if from_history == known else "current_stage_only"
    return DropOff(
        method=method,
        deals=known,
        unknown=unknown,
        by_stage={k: by_stage[k] for k in sorted(by_stage, key=lambda k: order[k])},
    )
