"""Renewals on their own funnel in Salesforce too: the org's Opportunities of record type Renewal
(its sales process: the renewal stages and the two closed ones) are the pipeline
`pipeline_funnels` puts on the renewal funnel. A renewal moved in HubSpot reaches its
Opportunity's renewal stage, and a renewal Salesforce lacks is created there with the Renewal
record type, through the real CLI against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, salesforce_stage, set_stage
from tests.integration.record_types import RECORD_TYPE, RENEWAL_MAP, renewal_world
from tests.sandbox_env import run_crmsync

# Seed 3, 60 deals: an open renewal HubSpot and Salesforce hold (Renewal Due), and a won one
# only HubSpot holds.
DUE = {"hubspot": "9100000231", "salesforce": "0065g000000000VAAQ"}
ONLY_IN_HUBSPOT = "9100000105"


@pytest.fixture(name="renewal_world")
def _renewal_world(tmp_path: Path) -> Iterator[World]:
    yield from renewal_world(tmp_path, active=True)


@pytest.fixture
def retired_renewal_world(tmp_path: Path) -> Iterator[World]:
    """As `renewal_world`, the record type Renewal deactivated since its renewals were made."""
    yield from renewal_world(tmp_path, active=False)


def _salesforce_record(world: World, deal_id: str) -> dict[str, Any]:
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        return dict(em.store.by_id[deal_id])


def test_a_renewal_moved_to_committed_in_hubspot_reaches_its_record_types_stage(
    renewal_world: World,
) -> None:
    cli_json(renewal_world, "reconcile", "--yes")  # the first sync: bases are stored
    set_stage(renewal_world, "hubspot", DUE["hubspot"], "75210934", "renewals")

    plan = cli_json(renewal_world, "reconcile", "--yes")

    moved = [c for c in plan["changes"] if c["id"] == DUE["salesforce"] and c["field"] == "stage"]
    assert [(c["from"], c["to"]) for c in moved] == [("renewal_due", "committed")], plan["errors"]
    assert salesforce_stage(renewal_world, DUE["salesforce"])[0] == "Renewal Committed"
    assert _salesforce_record(renewal_world, DUE["salesforce"])["RecordTypeId"] == RECORD_TYPE


def test_a_renewal_copy_created_in_salesforce_gets_the_renewal_record_type(
    renewal_world: World,
) -> None:
    document = yaml.safe_load(renewal_world.config.read_text())
    document["push"]["create_missing"] = True
    renewal_world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    plan = cli_json(renewal_world, "reconcile", "--dry-run")
    [create] = [
        c
        for c in plan["creates"]
        if c["system"] == "salesforce" and c["source"]["id"] == ONLY_IN_HUBSPOT
    ]
    assert (create["target"]["pipeline"], create["target"]["native_stage"]) == (
        "Renewal",
        "Closed Won",
    )

    cli_json(renewal_world, "reconcile", "--yes")
    cli_json(renewal_world, "reconcile", "--dry-run")  # reads the copies back: linked
    [copy_id] = [
        m["salesforce"]
        for m in renewal_world.members().values()
        if m.get("hubspot") == ONLY_IN_HUBSPOT and "salesforce" in m
    ]
    created = _salesforce_record(renewal_world, copy_id)
    assert (created["RecordTypeId"], created["StageName"]) == (RECORD_TYPE, "Closed Won")


def test_a_stage_the_renewal_process_does_not_allow_is_never_planned(
    renewal_world: World,
) -> None:
    document = yaml.safe_load(renewal_world.config.read_text())
    stage_map = document["systems"]["salesforce"]["stage_map"]["Renewal"]
    del stage_map["Renewal Committed"]
    stage_map["Negotiation/Review"] = "committed"  # a stage of the org, not of the process
    renewal_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    cli_json(renewal_world, "reconcile", "--yes")  # the first sync: bases are stored
    set_stage(renewal_world, "hubspot", DUE["hubspot"], "75210934", "renewals")

    plan = cli_json(renewal_world, "reconcile", "--yes")

    assert not [c for c in plan["changes"] if c["id"] == DUE["salesforce"]]
    errors = {e["field"]: e for e in plan["errors"] if e["id"] == DUE["salesforce"]}
    assert set(errors) == {"stage", "probability"}  # the probability goes with the stage
    error = errors["stage"]
    assert (
        "'Negotiation/Review' is not a stage of record type Renewal's sales process"
        in (error["reason"])
    )
    assert salesforce_stage(renewal_world, DUE["salesforce"])[0] == "Renewal Due"


def test_renewals_of_a_deactivated_record_type_are_mapped_synced_and_get_no_copy_there(
    retired_renewal_world: World,
) -> None:
    world = retired_renewal_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    del document["systems"]["salesforce"]["stage_map"]["Renewal"]  # left for init to propose
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    done = run_crmsync("init", "--config", str(world.config))

    assert done.returncode == 0, done.stderr
    document = yaml.safe_load(world.config.read_text())
    proposed = document["systems"]["salesforce"]["stage_map"]["Renewal"]
    assert set(proposed) == set(RENEWAL_MAP)  # every stage of its process, none left unmapped
    assert {k: v for k, v in proposed.items() if k.startswith("Closed")} == {
        "Closed Won": "renewed",
        "Closed Lost": "churned",
    }
    # The review of init's guesses ("Renewal Committed" contains renewal_due's word "renewal").
    document["systems"]["salesforce"]["stage_map"]["Renewal"] = RENEWAL_MAP
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    cli_json(world, "reconcile", "--yes")  # the first sync: bases are stored
    set_stage(world, "hubspot", DUE["hubspot"], "75210934", "renewals")

    plan = cli_json(world, "reconcile", "--yes")

    moved = [c for c in plan["changes"] if c["id"] == DUE["salesforce"] and c["field"] == "stage"]
    assert [(c["from"], c["to"]) for c in moved] == [("renewal_due", "committed")], plan["errors"]
    assert salesforce_stage(world, DUE["salesforce"])[0] == "Renewal Committed"
    assert not [c for c in plan["creates"] if c["system"] == "salesforce"]
    refused = [e for e in plan["errors"] if e["id"] == ONLY_IN_HUBSPOT]
    retired = "Renewal is deactivated or deleted"
    assert refused and all(retired in e["reason"] for e in refused), refused
