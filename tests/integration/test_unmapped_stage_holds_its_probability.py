"""Salesforce sets an Opportunity's probability from its stage. A deal there in a native stage its
stage map does not cover (read with no funnel stage: its stage changes are skipped) gets no
probability change either, as a deal that cannot take the stage the others agreed on gets none:
written, it would be the probability of a stage the deal does not hold, in a stage crmsync
cannot read. The error names the config key that would map the stage."""

from __future__ import annotations

from typing import Any

import yaml

from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, set_stage

QUALIFIED = {"salesforce": "Needs Analysis", "hubspot": "qualifiedtobuy", "pipedrive": "2"}
PROPOSAL_MADE = 4


def _without_needs_analysis_in_salesforce(world: World) -> None:
    """Salesforce's "Needs Analysis" is left out of its stage map ("Qualification" still stands
    for qualified)."""
    document = yaml.safe_load(world.config.read_text())
    salesforce = document["systems"]["salesforce"]
    del salesforce["stage_map"]["default"][QUALIFIED["salesforce"]]
    salesforce.pop("stage_write", None)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _salesforce(world: World, deal_id: str) -> tuple[str, Any]:
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        record = em.store.by_id[deal_id]
        return record["StageName"], record["Probability"]


def _mine(items: list[dict[str, Any]], ids: dict[str, str]) -> dict[tuple[str, str], Any]:
    return {(i["system"], i["field"]): i for i in items if i["id"] in ids.values()}


def test_a_probability_is_not_written_to_a_salesforce_deal_in_an_unmapped_stage(
    small_world: World,
) -> None:
    world = small_world
    _without_needs_analysis_in_salesforce(world)
    cli_json(world, "reconcile", "--yes")  # the first sync: bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        set_stage(world, system, ids[system], stage)
    cli_json(world, "reconcile", "--yes")
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
    assert "goes with the stage" in reason and "'Needs Analysis' is not mapped" in reason, reason
    assert "systems.salesforce.stage_map.default" in reason, reason

    for _night in range(2):  # applied, and the night after: still held, nothing written
        applied = cli_json(world, "reconcile", "--yes")
        assert ("salesforce", "probability") not in _mine(applied["changes"], ids)
        assert ("salesforce", "probability") in _mine(applied["errors"], ids)
        assert _salesforce(world, ids["salesforce"]) == held
