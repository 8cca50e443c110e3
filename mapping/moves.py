"""Where a deal goes when its copies moved to another product line's pipeline
(`push.move_between_pipelines`).

A deal whose pipeline follows a funnel that lacks a stage the other CRMs agreed on (a copy moved
from HubSpot's Sales Pipeline to its Renewals, into a stage of funnel `renewal`) can take that
stage only in a pipeline of the stage's own funnel. That pipeline is chosen exactly as for a
copy of that funnel created there (`pipeline_of_funnel`: the first one in the CRM's order that
follows it and takes new deals). Pure: the engine asks (sync/moves.py), the mappers write the
move (`NativeValues.pipeline`, mapping/writes.py).
"""

from __future__ import annotations

from mapping.context import MappingContext
from mapping.model import Deal, MappingError
from mapping.writes import other_funnel_reason, pipeline_of_funnel

__all__ = ["MOVES_KEY", "funnel_of_stage", "move_pipeline"]

# The config key that lets crmsync move deals between pipelines, as reasons name it.
MOVES_KEY = "push.move_between_pipelines"


def funnel_of_stage(deal: Deal, key: str, ctx: MappingContext, funnel: str | None = None) -> str:
    """The funnel whose pipeline `deal` moves to so as to hold stage `key`: `funnel` (the funnel
    of a copy holding the stage), else the one funnel with that key besides the deal's own.
    MappingError when none has it, or several do and no copy says which."""
    if funnel is not None and key in ctx.funnels.get(funnel, ()):
        return funnel
    own = ctx.funnel_for(deal.pipeline).name
    having = sorted(name for name, f in ctx.funnels.items() if name != own and key in f)
    if len(having) == 1:
        return having[0]
    where = other_funnel_reason(ctx, key, deal.pipeline)
    if not having:
        why = f"{where}, nor of any other funnel: no pipeline to move the deal to"
    else:
        why = (
            f"{where}; it is a stage of funnels {', '.join(having)}, and which one's pipeline "
            f"to move the deal to cannot be told ({MOVES_KEY})"
        )
    raise MappingError(deal.system, deal.id, "stage", why)


def move_pipeline(deal: Deal, key: str, ctx: MappingContext, funnel: str | None = None) -> str:
    """The pipeline `deal`, whose own pipeline's funnel lacks stage `key`, moves to so as to hold
    it: its CRM's pipeline of the stage's funnel (`funnel_of_stage`), chosen as a create for that
    funnel chooses it. MappingError (field `stage`) naming the config key to fix when the CRM
    has no such pipeline that takes new deals."""
    target = funnel_of_stage(deal, key, ctx, funnel)
    try:
        return pipeline_of_funnel(deal, ctx, target)
    except MappingError as exc:
        where = other_funnel_reason(ctx, key, deal.pipeline)
        why = f"{where}; {exc.reason}: {MOVES_KEY} has no pipeline to move the deal to"
        raise MappingError(deal.system, deal.id, "stage", why) from None
