"""Stage history: ordering native stage-change rows and attaching them to a deal.

History is only ever what the CRM recorded; nothing here invents an entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from mapping.context import MappingContext
from mapping.model import Deal, StageChange

__all__ = ["collapse_history", "keyed_in_pipeline", "with_stage_history"]


def collapse_history(changes: Iterable[StageChange]) -> tuple[StageChange, ...]:
    """Chronological, with repeated rows of an unchanged stage folded into their first entry.

    Salesforce writes an OpportunityHistory row for amount or date edits too; only a change of
    stage is a stage entry.
    """
    ordered = sorted(changes, key=lambda c: (c.entered_at, c.native_stage))
    result: list[StageChange] = []
    for change in ordered:
        if not result or result[-1].native_stage != change.native_stage:
            result.append(change)
    return tuple(result)


def with_stage_history(deal: Deal, history: Iterable[StageChange]) -> Deal:
    """`deal` with its stage history and `stage_entered_at` (latest entry of its current stage)."""
    entries = collapse_history(history)
    entered = [c.entered_at for c in entries if c.native_stage == deal.native_stage]
    return dataclasses.replace(
        deal,
        stage_history=entries,
        stage_entered_at=entered[-1] if entered else deal.stage_entered_at,
    )


def keyed_in_pipeline(
    changes: Iterable[StageChange], ctx: MappingContext, pipeline: str
) -> tuple[StageChange, ...]:
    """`changes` with funnel keys from `pipeline`'s stage map. Salesforce's history rows are read
    before their deals and name no record type: keyed once the deal's pipeline is known."""
    return tuple(
        dataclasses.replace(c, stage=ctx.funnel_stage(pipeline, c.native_stage)) for c in changes
    )
