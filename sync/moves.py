"""Stage changes moving a deal to another product line's pipeline (push.move_between_pipelines).

Someone moves a deal in one CRM to a pipeline of another funnel (HubSpot's Sales Pipeline to its
Renewals): it holds a stage of that funnel, which its copies' pipelines lack. With the key on,
the diff asks `moves_for` where each such copy goes (mapping/moves.py: its CRM's pipeline of the
stage's funnel, as a copy created for that funnel would go), and its stage change names that
pipeline. The plan carries it as the change's `native` pipeline (JSON `native_to.pipeline`),
with the pipeline the deal must still be in as `native_from` (sync/plan.py), and apply writes
the move through each CRM's mapping (mapping/writes.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from mapping import MappingContext, NativeValues
from mapping.model import Deal, MappingError, Ref
from mapping.moves import MOVES_KEY, move_pipeline
from sync.diff_result import MoveTo, PipelineMove
from sync.writes import native_update

__all__ = ["moves_for", "pipeline_named"]


def pipeline_named(ctx: MappingContext, pipeline: str) -> str:
    """A pipeline as a reason names it: its label as the CRM shows it, and its id."""
    label = ctx.pipeline_label(pipeline)
    return f"{label} ({pipeline})" if label and label != pipeline else pipeline


def _move(deal: Deal, key: str, ctx: MappingContext, funnel: str | None) -> PipelineMove:
    try:
        pipeline = move_pipeline(deal, key, ctx, funnel)
        native_update(deal, {"stage": key}, ctx, NativeValues(pipeline=pipeline, moves=True))
    except MappingError as exc:
        return PipelineMove(None, exc.reason)
    return PipelineMove(
        pipeline,
        f"moves from pipeline {pipeline_named(ctx, deal.pipeline)} to "
        f"{pipeline_named(ctx, pipeline)}, which follows funnel "
        f"{ctx.funnel_for(pipeline).name!r} ({MOVES_KEY})",
    )


def moves_for(contexts: Mapping[str, MappingContext], deals: Mapping[Ref, Deal]) -> MoveTo:
    """The diff's `move`: where a target whose pipeline's funnel lacks a stage moves to hold
    it, when its CRM has such a pipeline and the stage map gives the stage a native one there."""

    def move(target: Ref, key: str, funnel: str | None) -> PipelineMove:
        ctx, deal = contexts.get(target.system), deals.get(target)
        if ctx is None or deal is None:
            return PipelineMove(None, f"{target.system} was not pulled in this run")
        return _move(deal, key, ctx, funnel)

    return move
