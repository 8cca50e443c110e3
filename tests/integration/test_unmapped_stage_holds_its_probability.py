"""Salesforce sets an Opportunity's probability from its stage. A deal there in a native stage its
stage map does not cover (read with no funnel stage: its stage changes are skipped) gets no
probability change either, as a deal that cannot take the stage the others agreed on gets none:
written, it would be the probability of a stage the deal does not hold, in a stage crmsync
cannot read. The error names the config key that would map the stage."""

from __future__ import annotations

from tests.integration.conftest import World
from tests.integration.native_stages import (
    QUALIFIED,
    held_back_for_two_nights,
    moved_to_proposal_made,
    qualified_everywhere,
    salesforce_probability_held_back,
    salesforce_stage,
    unmap,
)


def test_a_probability_is_not_written_to_a_salesforce_deal_in_an_unmapped_stage(
    small_world: World,
) -> None:
    world = small_world
    # Salesforce's "Needs Analysis" is left out of its stage map ("Qualification" still stands
    # for qualified).
    unmap(world, "salesforce", lambda native, _stage: native == QUALIFIED["salesforce"])
    ids = qualified_everywhere(world)
    held = salesforce_stage(world, ids["salesforce"])
    moved_to_proposal_made(world, ids, probability=60)

    reason = salesforce_probability_held_back(world, ids)
    assert "goes with the stage" in reason and "'Needs Analysis' is not mapped" in reason, reason
    assert "systems.salesforce.stage_map.default" in reason, reason

    held_back_for_two_nights(world, ids, held)
