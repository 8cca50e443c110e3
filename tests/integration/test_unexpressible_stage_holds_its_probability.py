"""Salesforce sets an Opportunity's probability from its stage. A stage change it cannot take (no
native stage of its map stands for that funnel stage) is reported, not planned: the probability
change that came with it is held back there too, or the deal would get the probability of a
stage it does not hold. HubSpot's forecast probability and Pipedrive's are fields of their own,
and still get it."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, set_stage

QUALIFIED = {"salesforce": "Needs Analysis", "hubspot": "qualifiedtobuy", "pipedrive": "2"}
PROPOSAL_MADE = 4


def _without_proposal_in_salesforce(world: World) -> dict[str, Any]:
    """Salesforce's stage map gives no native stage `proposal`: it cannot express it. Its
    instance config as it was."""
    document = yaml.safe_load(world.config.read_text())
    salesforce = document["systems"]["salesforce"]
    was = copy.deepcopy(salesforce)
    mapped = salesforce["stage_map"]["default"]
    salesforce["stage_map"]["default"] = {k: v for k, v in mapped.items() if v != "proposal"}
    salesforce.pop("stage_write", None)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    return was


def _with_salesforce(world: World, config: dict[str, Any]) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["systems"]["salesforce"] = config
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _salesforce(world: World, deal_id: str) -> tuple[str, Any]:
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        record = em.store.by_id[deal_id]
        return record["StageName"], record["Probability"]


def _mine(items: list[dict[str, Any]], ids: dict[str, str]) -> dict[tuple[str, str], Any]:
    return {(i["system"], i["field"]): i for i in items if i["id"] in ids.values()}


def test_a_probability_is_not_written_to_salesforce_without_the_stage_it_cannot_take(
    small_world: World,
) -> None:
    world = small_world
    mapped = _without_proposal_in_salesforce(world)
    cli_json(world, "reconcile", "--yes")  # the first sync: bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        set_stage(world, system, ids[system], stage)
    cli_json(world, "reconcile", "--yes")  # all three moved alike: agreed
    held = _salesforce(world, ids["salesforce"])
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:  # a person moves the deal to "Proposal Made" and sets its probability
        em.store.update(int(ids["pipedrive"]), {"stage_id": PROPOSAL_MADE, "probability": 60})

    plan = cli_json(world, "reconcile", "--dry-run")

    changes, errors = _mine(plan["changes"], ids), _mine(plan["errors"], ids)
    assert ("hubspot", "stage") in changes and ("hubspot", "probability") in changes, changes
    assert ("salesforce", "stage") not in changes and ("salesforce", "stage") in errors, errors
    assert ("salesforce", "probability") not in changes, changes
    reason = errors["salesforce", "probability"]["reason"]
    assert "goes with the stage" in reason and "proposal" in reason, reason

    for _night in range(2):  # applied, and the night after: still held, nothing half-written
        applied = cli_json(world, "reconcile", "--yes")
        assert ("salesforce", "probability") not in _mine(applied["changes"], ids)
        assert ("salesforce", "probability") in _mine(applied["errors"], ids)
        assert _salesforce(world, ids["salesforce"]) == held

    _with_salesforce(world, mapped)  # the map gives proposal a native stage again: both go
    cli_json(world, "reconcile", "--yes")
    stage, probability = _salesforce(world, ids["salesforce"])
    assert stage == "Proposal/Price Quote" and probability == 60, (stage, probability)
