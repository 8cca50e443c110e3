"""Salesforce sets an Opportunity's probability from its stage. A stage change it cannot take (no
native stage of its map stands for that funnel stage) is reported, not planned: the probability
change that came with it is held back there too, or the deal would get the probability of a
stage it does not hold. HubSpot's forecast probability and Pipedrive's are fields of their own,
and still get it."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import World
from tests.integration.native_stages import (
    cli_json,
    mine,
    qualified_everywhere,
    salesforce_stage,
    unmap,
    with_instance,
)

PROPOSAL_MADE = 4


def test_a_probability_is_not_written_to_salesforce_without_the_stage_it_cannot_take(
    small_world: World,
) -> None:
    world = small_world
    # Salesforce's stage map gives no native stage `proposal`: it cannot express it.
    mapped = unmap(world, "salesforce", lambda _native, stage: stage == "proposal")
    ids = qualified_everywhere(world)
    held = salesforce_stage(world, ids["salesforce"])
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:  # a person moves the deal to "Proposal Made" and sets its probability
        em.store.update(int(ids["pipedrive"]), {"stage_id": PROPOSAL_MADE, "probability": 60})

    plan = cli_json(world, "reconcile", "--dry-run")

    changes, errors = mine(plan["changes"], ids), mine(plan["errors"], ids)
    assert ("hubspot", "stage") in changes and ("hubspot", "probability") in changes, changes
    assert ("salesforce", "stage") not in changes and ("salesforce", "stage") in errors, errors
    assert ("salesforce", "probability") not in changes, changes
    reason = errors["salesforce", "probability"]["reason"]
    assert "goes with the stage" in reason and "proposal" in reason, reason

    for _night in range(2):  # applied, and the night after: still held, nothing half-written
        applied = cli_json(world, "reconcile", "--yes")
        assert ("salesforce", "probability") not in mine(applied["changes"], ids)
        assert ("salesforce", "probability") in mine(applied["errors"], ids)
        assert salesforce_stage(world, ids["salesforce"]) == held

    # The map gives proposal a native stage again: both go.
    with_instance(world, "salesforce", mapped)
    cli_json(world, "reconcile", "--yes")
    stage, probability = salesforce_stage(world, ids["salesforce"])
    assert stage == "Proposal/Price Quote" and probability == 60, (stage, probability)
