"""Salesforce sets an Opportunity's probability from its stage. A deal there in a native stage its
stage map does not cover (read with no funnel stage: its stage changes are skipped) gets no
probability change either, as a deal that cannot take the stage the others agreed on gets none:
written, it would be the probability of a stage the deal does not hold, in a stage crmsync
cannot read. The error names the config key that would map the stage."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import World
from tests.integration.native_stages import (
    QUALIFIED,
    cli_json,
    mine,
    qualified_everywhere,
    salesforce_stage,
    unmap,
)

PROPOSAL_MADE = 4


def test_a_probability_is_not_written_to_a_salesforce_deal_in_an_unmapped_stage(
    small_world: World,
) -> None:
    world = small_world
    # Salesforce's "Needs Analysis" is left out of its stage map ("Qualification" still stands
    # for qualified).
    unmap(world, "salesforce", lambda native, _stage: native == QUALIFIED["salesforce"])
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
    assert "goes with the stage" in reason and "'Needs Analysis' is not mapped" in reason, reason
    assert "systems.salesforce.stage_map.default" in reason, reason

    for _night in range(2):  # applied, and the night after: still held, nothing written
        applied = cli_json(world, "reconcile", "--yes")
        assert ("salesforce", "probability") not in mine(applied["changes"], ids)
        assert ("salesforce", "probability") in mine(applied["errors"], ids)
        assert salesforce_stage(world, ids["salesforce"]) == held
