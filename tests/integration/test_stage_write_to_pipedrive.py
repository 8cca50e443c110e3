"""A deal moved to a funnel stage that several native stages of a CRM map to is written there in
the native stage `stage_write` names: Pipedrive's default pipeline maps "Demo Scheduled" (3) and
"Proposal Made" (4) to proposal, and a deal moved to proposal elsewhere lands in "Proposal
Made", not in the first of them."""

from __future__ import annotations

import yaml

from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, set_stage, stages

QUALIFIED = {"salesforce": "Qualification", "hubspot": "appointmentscheduled", "pipedrive": "2"}
PROPOSAL_MADE = "4"


def test_a_deal_moved_to_proposal_elsewhere_is_written_in_the_pipedrive_stage_stage_write_names(
    small_world: World,
) -> None:
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    document["systems"]["pipedrive"]["stage_write"] = {"1": {"proposal": PROPOSAL_MADE}}
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    cli_json(world, "reconcile", "--yes")  # the first sync: the CRMs agree, bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        set_stage(world, system, ids[system], stage)
    cli_json(world, "reconcile", "--yes")  # all three moved alike: agreed, nothing to write
    puts = world.stats()["pipedrive"]["requests"].get("PATCH /api/v2/deals/{id}", 0)

    set_stage(world, "hubspot", ids["hubspot"], "presentationscheduled")  # proposal
    applied = cli_json(world, "reconcile", "--yes")

    mine = {
        (c["system"], c["field"], c["to"]) for c in applied["changes"] if c["id"] in ids.values()
    }
    assert ("pipedrive", "stage", "proposal") in mine, applied["changes"]
    assert stages(world, ids)["pipedrive"] == ("1", PROPOSAL_MADE)
    assert world.stats()["pipedrive"]["requests"]["PATCH /api/v2/deals/{id}"] == puts + 1
    # It reads back as proposal: the next run has nothing to move.
    again = cli_json(world, "reconcile", "--dry-run")
    assert [c for c in again["changes"] if c["id"] in ids.values()] == []
