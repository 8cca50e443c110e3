"""A Salesforce deal sits in a native stage its map does not cover while the other CRMs move it
on; later a person maps that stage. The config change is no edit made in Salesforce: the deal
did not move there, it only became readable. So the others are never planned back to the stage
it now reads as; Salesforce, which could not take their stage before, gets it now. A move made
in Salesforce (while its stage was unmapped, or after the mapping) is an edit, and spreads."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, set_stage, stages

QUALIFIED = {"salesforce": "Needs Analysis", "hubspot": "qualifiedtobuy", "pipedrive": "2"}
PROPOSAL_MADE = "4"  # Pipedrive's "Proposal Made": proposal
PRESENTATION = ("default", "presentationscheduled")  # HubSpot's one proposal stage
SALESFORCE_PROPOSAL = {"Value Proposition", "Proposal/Price Quote"}
NEGOTIATION = "Negotiation/Review"


def _unmap(world: World, *native: str) -> None:
    """Salesforce's stage map leaves out the `native` stages (its others still stand)."""
    document = yaml.safe_load(world.config.read_text())
    salesforce = document["systems"]["salesforce"]
    for stage in native:
        del salesforce["stage_map"]["default"][stage]
    salesforce.pop("stage_write", None)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _mine(items: list[dict[str, Any]], ids: dict[str, str]) -> dict[tuple[str, str], Any]:
    return {(i["system"], i["field"]): i for i in items if i["id"] in ids.values()}


def _moved_on_while_unmapped(world: World, *unmapped: str, saved: bool = False) -> dict[str, str]:
    """The deal is qualified everywhere, Salesforce's "Needs Analysis" unmapped; then Pipedrive
    moves it to proposal, HubSpot follows (from a saved plan, `saved`), and nights pass with
    Salesforce reported. Its ids."""
    _unmap(world, *unmapped)
    cli_json(world, "reconcile", "--yes")  # the first sync: bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        set_stage(world, system, ids[system], stage)
    cli_json(world, "reconcile", "--yes")
    set_stage(world, "pipedrive", ids["pipedrive"], PROPOSAL_MADE)  # a person moves it on
    if saved:
        plan = world.config.parent / "plan.json"
        cli_json(world, "reconcile", "--dry-run", "--plan-out", str(plan))
        cli_json(world, "apply", str(plan), "--yes")
    for _night in range(2):
        nightly = cli_json(world, "reconcile", "--yes")
        assert ("salesforce", "stage") in _mine(nightly["errors"], ids), nightly["errors"]
    assert stages(world, ids)["hubspot"] == PRESENTATION
    assert stages(world, ids)["salesforce"] == ("default", QUALIFIED["salesforce"])
    return ids


@pytest.mark.parametrize(
    ("store", "saved"),
    [
        ("small_world", False),
        ("small_world", True),
        pytest.param("pg_world", True, marks=pytest.mark.postgres),
    ],
)
def test_mapping_a_stage_never_moves_the_other_crms_back(
    request: pytest.FixtureRequest, store: str, saved: bool
) -> None:
    """`saved`: the others' move is applied from a saved plan, whose errors carry the native
    stage Salesforce held into the base (on SQLite, and PostgreSQL)."""
    world: World = request.getfixturevalue(store)
    mapped = world.config.read_text()
    ids = _moved_on_while_unmapped(world, QUALIFIED["salesforce"], saved=saved)

    world.config.write_text(mapped)  # a person maps "Needs Analysis" (qualified) again
    plan = cli_json(world, "reconcile", "--dry-run")

    changes = _mine(plan["changes"], ids)
    assert ("hubspot", "stage") not in changes and ("pipedrive", "stage") not in changes, changes
    assert changes["salesforce", "stage"]["from"] == "qualified", changes
    assert changes["salesforce", "stage"]["to"] == "proposal", changes
    # its probability, held with the stage while unmapped, goes with it now
    assert changes["salesforce", "probability"]["from"] == "0.25", changes
    assert ("hubspot", "probability") not in changes, changes
    assert ("pipedrive", "probability") not in changes, changes
    assert not _mine(plan["errors"], ids), plan["errors"]

    cli_json(world, "reconcile", "--yes")
    held = stages(world, ids)
    assert held["salesforce"][1] in SALESFORCE_PROPOSAL, held
    assert held["hubspot"] == PRESENTATION and held["pipedrive"] == ("1", PROPOSAL_MADE), held
    for _night in range(2):  # a stage reset of a probability may take a night to settle
        cli_json(world, "reconcile", "--yes")
    settled = cli_json(world, "reconcile", "--dry-run")
    assert not _mine(settled["changes"], ids) and not _mine(settled["errors"], ids), settled
    assert stages(world, ids)["hubspot"] == PRESENTATION


def test_a_move_made_in_salesforce_after_the_mapping_spreads(small_world: World) -> None:
    world = small_world
    mapped = world.config.read_text()
    ids = _moved_on_while_unmapped(world, QUALIFIED["salesforce"])
    world.config.write_text(mapped)
    set_stage(world, "salesforce", ids["salesforce"], NEGOTIATION)  # the rep moves the deal

    plan = cli_json(world, "reconcile", "--dry-run")

    changes = _mine(plan["changes"], ids)
    assert ("salesforce", "stage") not in changes, changes
    assert changes["hubspot", "stage"]["to"] == "negotiation", changes
    assert changes["pipedrive", "stage"]["to"] == "negotiation", changes


@pytest.mark.parametrize("negotiation_mapped", [True, False])
def test_a_move_made_in_salesforce_while_its_stage_was_unmapped_spreads_once_mapped(
    small_world: World, negotiation_mapped: bool
) -> None:
    """The rep moves the deal from "Needs Analysis" to "Negotiation/Review", which the map covers
    (readable at once) or leaves out too (readable once mapped): an edit either way."""
    world = small_world
    mapped = world.config.read_text()
    unmapped = () if negotiation_mapped else (NEGOTIATION,)
    ids = _moved_on_while_unmapped(world, QUALIFIED["salesforce"], *unmapped)
    set_stage(world, "salesforce", ids["salesforce"], NEGOTIATION)
    if not negotiation_mapped:
        nightly = cli_json(world, "reconcile", "--yes")  # still unreadable: reported
        assert ("salesforce", "stage") in _mine(nightly["errors"], ids), nightly["errors"]
        assert stages(world, ids)["hubspot"] == PRESENTATION
        world.config.write_text(mapped)

    plan = cli_json(world, "reconcile", "--dry-run")

    changes = _mine(plan["changes"], ids)
    assert ("salesforce", "stage") not in changes, changes
    assert changes["hubspot", "stage"]["to"] == "negotiation", changes
    assert changes["pipedrive", "stage"]["to"] == "negotiation", changes


def test_a_saved_plan_still_moves_the_others_when_the_unmapped_deal_changed_only_elsewhere(
    small_world: World,
) -> None:
    """The deal left behind in an unmapped stage is edited after the plan was saved (its name),
    and pulled: it stays in the native stage the plan saw, so the others' stage change is no
    older than what it holds, and is written."""
    world = small_world
    _unmap(world, QUALIFIED["salesforce"])
    cli_json(world, "reconcile", "--yes")
    ids = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        set_stage(world, system, ids[system], stage)
    cli_json(world, "reconcile", "--yes")
    set_stage(world, "pipedrive", ids["pipedrive"], PROPOSAL_MADE)
    plan = world.config.parent / "plan.json"
    cli_json(world, "reconcile", "--dry-run", "--plan-out", str(plan))
    time.sleep(1.1)  # Salesforce stamps edits in whole seconds
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        em.store.apply(em.store.check_update(ids["salesforce"], {"Name": "Renamed by a rep"}))
    pulled = CliRunner().invoke(main, ["pull", "--config", str(world.config), "--format", "jsonl"])
    assert pulled.exit_code in (0, 1), pulled.output

    applied = cli_json(world, "apply", str(plan), "--yes")

    assert stages(world, ids)["hubspot"] == PRESENTATION, applied
