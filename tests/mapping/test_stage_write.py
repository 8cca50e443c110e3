"""Which native stage a deal moved to a funnel stage is written in, where several native stages
map to that funnel stage (Pipedrive's "Demo Scheduled" and "Proposal Made" are both proposal):
the one `stage_write` names, else the first mapped one in pipeline order."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from test_pipedrive_mapping import pd_deal

from mapping import (
    MappingContext,
    create_for_pipedrive,
    deal_from_pipedrive,
    update_for_pipedrive,
)
from mapping.model import Deal, DealStatus
from mapping.writes import StageTarget, resolve_stage_change
from tests.mapping.conftest import make_ctx

# The conftest's Pipedrive pipeline 1: 1 Qualified and 2 Contact Made are qualified, 3 Demo
# Scheduled and 4 Proposal Made are proposal, 5 Negotiations Started is negotiation.
PROPOSAL_MADE = {"1": {"proposal": "4"}}


def _deal_in(ctx: MappingContext, stage_id: int, **fields: Any) -> Deal:
    return deal_from_pipedrive(pd_deal(stage_id=stage_id, stage_order_nr=stage_id, **fields), ctx)


def _to_proposal(deal: Deal, ctx: MappingContext) -> StageTarget:
    return resolve_stage_change(deal, {"stage": "proposal"}, ctx, status_in_stage=False)


@pytest.mark.parametrize(
    ("stage_write", "written"),
    [(PROPOSAL_MADE, "4"), ({}, "3")],
    ids=["the_stage_write_stage", "else_the_first_in_pipeline_order"],
)
def test_a_deal_moved_to_a_shared_funnel_stage_is_written_in(
    stage_write: dict[str, dict[str, str]], written: str
) -> None:
    ctx = make_ctx("pipedrive", stage_write=stage_write)
    deal = _deal_in(ctx, 5)  # negotiation
    assert _to_proposal(deal, ctx) == StageTarget(written, None)
    assert update_for_pipedrive(deal, {"stage": "proposal"}, ctx) == {"stage_id": int(written)}
    copy = dataclasses.replace(deal, stage="proposal")  # a deal of another CRM, created here
    assert create_for_pipedrive(copy, ctx, "ent-1")["stage_id"] == int(written)


def test_a_deal_already_in_another_native_stage_of_the_funnel_stage_stays_there() -> None:
    ctx = make_ctx("pipedrive", stage_write=PROPOSAL_MADE)
    assert _to_proposal(_deal_in(ctx, 3), ctx) == StageTarget("3", None)
    lost = _deal_in(ctx, 3, status="lost", lost_time="2024-06-01 10:00:00")
    assert _to_proposal(lost, ctx) == StageTarget("3", DealStatus.OPEN)  # reopened in place


def test_a_stage_write_the_stage_map_does_not_give_that_funnel_stage_is_not_followed() -> None:
    """Written there, the deal would read back as negotiation and be moved again every run
    (the config loader refuses such an entry; a context built otherwise still never follows
    it)."""
    ctx = make_ctx("pipedrive", stage_write={"1": {"proposal": "5"}})
    assert ctx.native_stage_for("1", "proposal") == "3"
