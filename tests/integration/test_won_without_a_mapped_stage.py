"""Salesforce and HubSpot write a won or lost status as a stage. Where their stage map gives the
funnel's won (or lost) stage no native stage, the status change is reported as one they cannot
take, with the config key to add, as a stage change is: not written into the pipeline's own
closed stage, which the map does not cover. Written there, the deal read back with no funnel
stage (an unmapped stage in `pull`, `check` and the report, put there by crmsync), the plan
said the stage could not be taken while the status change moved it, and in a funnel of several
lost stages the deal read back as another one."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, set_stage, stages

QUALIFIED = {"salesforce": "Needs Analysis", "hubspot": "qualifiedtobuy", "pipedrive": "2"}
WON = {"salesforce": "Closed Won", "hubspot": "closedwon"}


def _without_won(world: World, system: str) -> dict[str, Any]:
    """`system`'s stage map gives `won` no native stage in its default pipeline; its instance
    config as it was."""
    document = yaml.safe_load(world.config.read_text())
    instance = document["systems"][system]
    was = copy.deepcopy(instance)
    mapped = instance["stage_map"]["default"]
    instance["stage_map"]["default"] = {k: v for k, v in mapped.items() if v != "won"}
    instance.pop("stage_write", None)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    return was


def _with_instance(world: World, system: str, config: dict[str, Any]) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["systems"][system] = config
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _mine(items: list[dict[str, Any]], ids: dict[str, str]) -> dict[tuple[str, str], Any]:
    return {(i["system"], i["field"]): i for i in items if i["id"] in ids.values()}


@pytest.mark.parametrize(
    ("system", "winner"), [("salesforce", "hubspot"), ("hubspot", "salesforce")]
)
def test_a_won_status_is_not_written_where_the_stage_map_gives_won_no_native_stage(
    small_world: World, system: str, winner: str
) -> None:
    world = small_world
    mapped = _without_won(world, system)
    cli_json(world, "reconcile", "--yes")  # the first sync: bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    for crm, stage in QUALIFIED.items():
        set_stage(world, crm, ids[crm], stage)
    cli_json(world, "reconcile", "--yes")  # all three moved alike: agreed
    set_stage(world, winner, ids[winner], WON[winner])  # a person wins the deal

    plan = cli_json(world, "reconcile", "--dry-run")

    changes, errors = _mine(plan["changes"], ids), _mine(plan["errors"], ids)
    assert ("pipedrive", "status") in changes, changes
    assert (system, "status") not in changes, changes
    assert (system, "stage") in errors, errors
    reason = errors[system, "status"]["reason"]
    assert "no native stage for 'won'" in reason, reason
    assert f"systems.{system}.stage_map.default" in reason, reason

    for _night in range(2):  # applied, and the night after: reported again, nothing written
        applied = cli_json(world, "reconcile", "--yes")
        assert (system, "status") not in _mine(applied["changes"], ids)
        assert (system, "status") in _mine(applied["errors"], ids)
        assert stages(world, ids)[system] == ("default", QUALIFIED[system])

    _with_instance(world, system, mapped)  # the map gives won a native stage again: it goes
    cli_json(world, "reconcile", "--yes")
    assert stages(world, ids)[system] == ("default", WON[system])
    settled = cli_json(world, "reconcile", "--dry-run")
    assert not _mine(settled["changes"], ids) and not _mine(settled["errors"], ids), settled
