"""reconcile --dry-run on generated data: every planted discrepancy found, nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mapping.pipedrive import PD_FIELD_HUBSPOT_ID, PD_FIELD_SALESFORCE_ID
from sync.plan_json import plan_to_json
from sync.reconcile import plan_run
from sync.runtime import open_runtime
from sync.store import Store
from tests.integration.conftest import World

FIELD_KINDS = ("stage", "amount", "currency", "close_date", "owner", "status")
# Fields a planted kind legitimately drags along (a stage plant moves probability too, ...).
COMPANIONS = {
    "stage": {"stage", "probability"},
    "status": {"status", "stage", "probability"},
    "amount": {"amount"},
    "currency": {"currency"},
    "close_date": {"close_date"},
    "owner_email": {"owner_email"},
}


@pytest.fixture(scope="module")
def first(world: World) -> dict[str, Any]:
    return plan_to_json(world.reconcile("run-1").plan)


def _planted(world: World, *kinds: str) -> list[dict[str, Any]]:
    return [p for p in world.generated.planted if p["kind"] in kinds]


def _touched(plan: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(system, id) -> canonical fields the plan changes or reports in conflict there."""
    out: dict[tuple[str, str], set[str]] = {}
    for change in plan["changes"]:
        out.setdefault((change["system"], change["id"]), set()).add(change["field"])
    for conflict in plan["conflicts"]:
        for value in conflict["values"]:
            out.setdefault((value["system"], value["id"]), set()).add(conflict["field"])
    return out


def test_every_planted_field_discrepancy_is_in_the_plan(world: World, first: dict) -> None:
    touched = _touched(first)
    missed = []
    for item in _planted(world, *FIELD_KINDS):
        refs = {(system, rid) for system, rid in item["refs"].items()}
        if not any(item["field"] in touched.get(ref, set()) for ref in refs):
            missed.append(item)
    assert missed == []


def test_nothing_unplanted_is_changed(world: World, first: dict) -> None:
    allowed: dict[tuple[str, str], set[str]] = {}
    for item in _planted(world, *FIELD_KINDS):
        for system, rid in item["refs"].items():
            allowed.setdefault((system, rid), set()).update(COMPANIONS[item["field"]])
    unplanted = [
        (ref, fields - allowed.get(ref, set()))
        for ref, fields in _touched(first).items()
        if fields - allowed.get(ref, set())
    ]
    assert unplanted == []


def test_planted_duplicates_and_ambiguities_are_reported_not_guessed(
    world: World, first: dict
) -> None:
    duplicates = {(d["system"], tuple(sorted(d["ids"]))) for d in first["duplicates"]}
    for item in _planted(world, "duplicate"):
        assert (item["system"], tuple(sorted(item["ids"]))) in duplicates
    ambiguous_ids = {c for a in first["ambiguous"] for c in a["candidates"]}
    for item in _planted(world, "ambiguous"):
        assert set(item["ids"]) <= ambiguous_ids
        # never guessed: no change or conflict touches an ambiguous candidate
        assert not any((item["system"], i) in _touched(first) for i in item["ids"])


def _referenced_ids(dataset: dict[str, Any]) -> set[str]:
    """Ids that some live record's link field names (the trace a deleted copy leaves)."""
    out: set[str] = set()
    for opp in dataset["salesforce"]["Opportunity"]:
        if not opp.get("IsDeleted"):
            out.update(
                filter(None, (opp.get("HubSpot_Deal_Id__c"), opp.get("Pipedrive_Deal_Id__c")))
            )
    for deal in dataset["hubspot"]["deals"]:
        if not deal.get("archived"):
            props = deal["properties"]
            out.update(filter(None, (props.get("salesforce_opportunity_id"),
                                     props.get("pipedrive_deal_id"))))  # fmt: skip
    for deal in dataset["pipedrive"]["deals"]:
        if deal.get("status") != "deleted":
            out.update(
                str(deal[k]) for k in (PD_FIELD_SALESFORCE_ID, PD_FIELD_HUBSPOT_ID) if deal.get(k)
            )
    return out


def test_deletions_referenced_by_a_live_copy_are_reported(world: World, first: dict) -> None:
    reported = {(g["system"], g["id"]) for d in first["deleted"] for g in d["deleted"]}
    referenced = _referenced_ids(world.generated.dataset)
    planted = [(p["system"], p["refs"][p["system"]]) for p in _planted(world, "deleted")]
    expected = {ref for ref in planted if ref[1] in referenced}
    assert expected, "the generator planted no referenced deletion"
    assert expected <= reported
    # and nothing is reported deleted that was not planted so
    assert reported <= set(planted)


def test_a_dry_run_writes_nothing_to_any_crm(world: World, first: dict) -> None:
    for system, stats in world.stats().items():
        writes = {
            key: n
            for key, n in stats["requests"].items()
            if key.split()[0] in ("PATCH", "PUT", "DELETE")
            or any(w in key for w in ("batch/update", "batch/create", "composite"))
            or key == "POST /api/v2/deals"
        }
        assert writes == {}, system


def _essence(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan without what names the run or depends on stored state (base fingerprints)."""
    body = {k: v for k, v in plan.items() if k not in ("created_at", "run_id", "checksum")}
    body["changes"] = [
        {k: v for k, v in c.items() if k != "base_fingerprint"} for c in plan["changes"]
    ]
    return body


def test_a_second_dry_run_plans_the_same_changes(world: World, first: dict) -> None:
    second = plan_to_json(world.reconcile("run-2").plan)
    assert _essence(second) == _essence(first)


def test_the_plan_is_deterministic_on_a_fresh_store(
    world: World, first: dict, tmp_path: Path
) -> None:
    with open_runtime(str(world.config)) as rt:
        config = rt.config
        fresh = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")
        try:
            again = plan_run(config, fresh, rt.connectors, run_id="run-1").plan
        finally:
            fresh.close()
    assert plan_to_json(again) | {"created_at": None, "checksum": None} == first | {
        "created_at": None,
        "checksum": None,
    }
