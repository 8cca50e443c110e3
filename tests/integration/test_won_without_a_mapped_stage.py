"""Salesforce and HubSpot write a won or lost status as a stage. Where their stage map gives the
funnel's won (or lost) stage no native stage, the status change is reported as one they cannot
take, with the config key to add, as a stage change is: not written into the pipeline's own
closed stage, which the map does not cover. Written there, the deal read back with no funnel
stage (an unmapped stage in `pull`, `check` and the report, put there by crmsync), the plan
said the stage could not be taken while the status change moved it, and in a funnel of several
lost stages the deal read back as another one."""

from __future__ import annotations

import pytest

from tests.integration.conftest import World
from tests.integration.native_stages import (
    QUALIFIED,
    cli_json,
    mine,
    qualified_everywhere,
    set_stage,
    stages,
    unmap,
    with_instance,
)

WON = {"salesforce": "Closed Won", "hubspot": "closedwon"}


@pytest.mark.parametrize(
    ("system", "winner"), [("salesforce", "hubspot"), ("hubspot", "salesforce")]
)
def test_a_won_status_is_not_written_where_the_stage_map_gives_won_no_native_stage(
    small_world: World, system: str, winner: str
) -> None:
    world = small_world
    # `system`'s stage map gives `won` no native stage in its default pipeline.
    mapped = unmap(world, system, lambda _native, stage: stage == "won")
    ids = qualified_everywhere(world)
    set_stage(world, winner, ids[winner], WON[winner])  # a person wins the deal

    plan = cli_json(world, "reconcile", "--dry-run")

    changes, errors = mine(plan["changes"], ids), mine(plan["errors"], ids)
    assert ("pipedrive", "status") in changes, changes
    assert (system, "status") not in changes, changes
    assert (system, "stage") in errors, errors
    reason = errors[system, "status"]["reason"]
    assert "no native stage for 'won'" in reason, reason
    assert f"systems.{system}.stage_map.default" in reason, reason

    for _night in range(2):  # applied, and the night after: reported again, nothing written
        applied = cli_json(world, "reconcile", "--yes")
        assert (system, "status") not in mine(applied["changes"], ids)
        assert (system, "status") in mine(applied["errors"], ids)
        assert stages(world, ids)[system] == ("default", QUALIFIED[system])

    with_instance(world, system, mapped)  # the map gives won a native stage again: it goes
    cli_json(world, "reconcile", "--yes")
    assert stages(world, ids)[system] == ("default", WON[system])
    settled = cli_json(world, "reconcile", "--dry-run")
    assert not mine(settled["changes"], ids) and not mine(settled["errors"], ids), settled
