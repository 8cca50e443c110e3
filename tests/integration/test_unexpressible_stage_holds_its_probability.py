"""Salesforce sets an Opportunity's probability from its stage. A stage change it cannot take (no
native stage of its map stands for that funnel stage) is reported, not planned: the probability
change that came with it is held back there too, or the deal would get the probability of a
stage it does not hold. HubSpot's forecast probability and Pipedrive's are fields of their own,
and still get it."""

from __future__ import annotations

from tests.integration.conftest import World
from tests.integration.native_stages import (
    cli_json,
    held_back_for_two_nights,
    moved_to_proposal_made,
    qualified_everywhere,
    salesforce_probability_held_back,
    salesforce_stage,
    unmap,
    with_instance,
)


def test_a_probability_is_not_written_to_salesforce_without_the_stage_it_cannot_take(
    small_world: World,
) -> None:
    world = small_world
    # Salesforce's stage map gives no native stage `proposal`: it cannot express it.
    mapped = unmap(world, "salesforce", lambda _native, stage: stage == "proposal")
    ids = qualified_everywhere(world)
    held = salesforce_stage(world, ids["salesforce"])
    moved_to_proposal_made(world, ids, probability=60)

    reason = salesforce_probability_held_back(world, ids)
    assert "goes with the stage" in reason and "proposal" in reason, reason

    held_back_for_two_nights(world, ids, held)

    # The map gives proposal a native stage again: both go.
    with_instance(world, "salesforce", mapped)
    cli_json(world, "reconcile", "--yes")
    stage, probability = salesforce_stage(world, ids["salesforce"])
    assert stage == "Proposal/Price Quote" and probability == 60, (stage, probability)
