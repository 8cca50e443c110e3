"""Which native stage a deal moved to a funnel stage is written in, where several native stages
map to that funnel stage (Pipedrive's "Demo Scheduled" and "Proposal Made" are both proposal):
the one `stage_write` names, else the first mapped one in pipeline order; and the one `crmsync
init` proposes for `stage_write`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from test_pipedrive_mapping import pd_deal

from mapping import (
    DEFAULT_FUNNEL,
    MappingContext,
    NativeStage,
    WriteProposal,
    create_for_pipedrive,
    deal_from_pipedrive,
    propose_stage_write,
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


def _stage(sid: str, label: str, order: int, closed: bool = False) -> NativeStage:
    return NativeStage(sid, label, order, None, is_closed=closed)


def test_init_proposes_the_stage_named_like_the_funnel_stage_over_one_placed_by_position() -> None:
    ctx = make_ctx("pipedrive")
    stages, mapping = ctx.native_stages["1"], ctx.stage_map["1"]
    assert propose_stage_write(stages, mapping, DEFAULT_FUNNEL) == {
        # its very name: no review needed
        "qualified": WriteProposal(
            "1", "exact", "of 'Qualified', 'Contact Made', the one named like the funnel stage"
        ),
        # a keyword of its name ("proposal"), against no evidence but its position
        "proposal": WriteProposal(
            "4",
            "guess",
            "of 'Demo Scheduled', 'Proposal Made', the one named like the funnel stage",
        ),
    }


def test_init_proposes_the_stage_holding_the_funnel_stages_own_word_over_a_related_one() -> None:
    ctx = make_ctx("hubspot")
    proposed = propose_stage_write(ctx.native_stages["default"], ctx.stage_map["default"],
                                   DEFAULT_FUNNEL)  # fmt: skip
    assert proposed["qualified"] == WriteProposal(
        "qualifiedtobuy",
        "guess",
        "of 'Appointment Scheduled', 'Qualified To Buy', the one named like the funnel stage",
    )
    salesforce = [
        _stage("Value Proposition", "Value Proposition", 1),
        _stage("Proposal/Price Quote", "Proposal/Price Quote", 2),
    ]
    mapping = {s.id: "proposal" for s in salesforce}
    assert propose_stage_write(salesforce, mapping, DEFAULT_FUNNEL)["proposal"].native_stage == (
        "Proposal/Price Quote"
    )


def test_init_proposes_the_first_in_pipeline_order_of_stages_named_alike() -> None:
    stages = [_stage("a", "Value Proposition", 1), _stage("b", "Presentation", 2)]
    proposed = propose_stage_write(stages, {"a": "proposal", "b": "proposal"}, DEFAULT_FUNNEL)
    assert proposed["proposal"] == WriteProposal(
        "a", "guess", "first in pipeline order of 'Value Proposition', 'Presentation'"
    )


def test_init_proposes_no_stage_write_for_a_stage_mapped_once_or_a_closed_funnel_stage() -> None:
    stages = [
        _stage("a", "New", 1),
        _stage("b", "Proposal", 2),
        _stage("c", "Lost to a rival", 3, closed=True),
        _stage("d", "No budget", 4, closed=True),
    ]
    mapping = {"a": "lead", "b": "proposal", "c": "lost", "d": "lost"}
    assert propose_stage_write(stages, mapping, DEFAULT_FUNNEL) == {}


def test_init_weighs_a_persons_mapping_by_its_name_too() -> None:
    """The map as it stands decides what shares a funnel stage: here a person put Negotiations
    Started at proposal too, and a stage a person placed has no name evidence unless its name
    says the funnel stage."""
    ctx = make_ctx("pipedrive")
    mapping = {**ctx.stage_map["1"], "5": "proposal", "4": "negotiation"}
    proposed = propose_stage_write(ctx.native_stages["1"], mapping, DEFAULT_FUNNEL)
    assert proposed["proposal"] == WriteProposal(
        "3", "guess", "first in pipeline order of 'Demo Scheduled', 'Negotiations Started'"
    )
