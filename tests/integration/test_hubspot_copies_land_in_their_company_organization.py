"""A company migrating HubSpot into Pipedrive gets each copy of a HubSpot-only deal under the
organization named like the deal's HubSpot company (the primary one), not under the
`create_org_id` placeholder that someone must re-file by hand. Several companies and none
primary: not guessed, and the plan and the apply say so. Everything through the CLI, against
the sandboxes over HTTP; HubSpot's data is edited through its store, as a person would in the
deal's sidebar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import World
from tests.integration.copies import (
    apply_plan,
    create_of,
    dry_run,
    make_copies_into,
    org_of_copy,
    orgs_named,
    plan_of,
)

FALLBACK = 1  # the sandbox config's create_org_id


def _hubspot(world: World) -> Any:
    return world.sandbox.servers["hubspot"].emulator


def _hubspot_only(world: World, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Pipedrive copies of deals only HubSpot holds (no other deal to take an account from)."""
    members = world.members()
    return [
        c
        for c in plan["creates"]
        if c["system"] == "pipedrive"
        and c["source"]["system"] == "hubspot"
        and set(members.get(c["entity"], {"hubspot": c["source"]["id"]})) == {"hubspot"}
    ]


def _company_name(world: World, company: str) -> str:
    with _hubspot(world).lock:
        return str(_hubspot(world).store.companies[company]["properties"]["name"])


def _primary(world: World, deal_id: str) -> str:
    with _hubspot(world).lock:
        links = _hubspot(world).store.companies_of.of[deal_id]
    return next(c for c, primary in links.items() if primary)


def test_a_hubspot_only_deals_copy_lands_in_the_organization_named_like_its_company(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    make_copies_into(world, "pipedrive")
    plan, table = dry_run(world, tmp_path / "plan.json")
    copies = _hubspot_only(world, plan)
    assert copies
    for create in copies:
        name = _company_name(world, _primary(world, create["source"]["id"]))
        found = [str(i) for i in sorted(orgs_named(world, name))]
        filed = {"by": "account", "name": name, "id": None, "found": found}
        assert create["organization"] == filed
        said = f"organization {name} " + (f"(found: {found[0]})" if found else "(made at apply)")
        assert len(found) < 2 and said in table
    create = copies[0]
    name = create["organization"]["name"]
    [existing] = orgs_named(world, name)  # generated data: the same company in Pipedrive
    apply_plan(world, tmp_path / "plan.json")
    org = org_of_copy(world, create["entity"])
    assert (org["value"], org["name"]) == (existing, name)
    assert orgs_named(world, name) == [existing]


def test_a_deal_moved_to_another_company_is_filed_by_it_on_the_next_incremental_run(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    make_copies_into(world, "pipedrive")
    create = _hubspot_only(world, plan_of(world, tmp_path / "p0.json"))[0]
    deal_id = create["source"]["id"]
    hubspot = _hubspot(world)
    with hubspot.lock:
        store = hubspot.store
        store.companies["77"] = {**store.companies[_primary(world, deal_id)], "id": "77"}
        store.companies["77"]["properties"] = {"name": "Helios Robotics", "hs_object_id": "77"}
        store.associate(deal_id, {"77": True})
    stats = world.sandbox.servers["hubspot"].stats
    stats.clear()
    plan, _ = dry_run(world, tmp_path / "p1.json")  # incremental: the deal changed
    planned = create_of(plan, create)
    assert planned["organization"] == {
        "by": "account",
        "name": "Helios Robotics",
        "id": None,
        "found": [],  # made at apply
    }
    requests = stats.snapshot()["requests"]
    assert requests["POST /crm/objects/2026-09/deals/search"] >= 1  # incremental: by search
    assert requests["GET /crm/objects/2026-09/deals"] == 1  # the archived list only, no full read
    dated = "POST /crm/associations/2026-09/{fromObjectType}/{toObjectType}/batch/read"
    assert requests[dated] == 1  # the deal's companies, from the date-versioned read
    assert requests["POST /crm/objects/2026-09/companies/batch/read"] == 1
    apply_plan(world, tmp_path / "p1.json")
    [made] = orgs_named(world, "Helios Robotics")
    assert org_of_copy(world, create["entity"])["value"] == made


def test_several_companies_none_primary_are_not_guessed_and_the_plan_and_apply_say_so(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, companies = small_world, 2
    monkeypatch.setenv("COLUMNS", "250")
    make_copies_into(world, "pipedrive")
    create = _hubspot_only(world, plan_of(world, tmp_path / "p0.json"))[0]
    deal_id = create["source"]["id"]
    with _hubspot(world).lock:
        some = list(_hubspot(world).store.companies)[:companies]
        _hubspot(world).store.associate(deal_id, dict.fromkeys(some, False))
    plan, table = dry_run(world, tmp_path / "p1.json")
    planned = create_of(plan, create)
    org = planned["organization"]
    assert (org["by"], org["name"], org["id"]) == ("create_org_id", None, FALLBACK)
    assert org["reason"].startswith(f"hubspot deal {deal_id}: {companies} companies are associated")
    assert org["reason"].endswith("none primary: not guessed")
    assert f"organization {FALLBACK} (create_org_id): {org['reason']}" in table
    applied = apply_plan(world, tmp_path / "p1.json")
    copy_id = world.members()[create["entity"]]["pipedrive"]
    assert org_of_copy(world, create["entity"])["value"] == FALLBACK
    [result] = [r for r in applied["results"] if r["id"] == copy_id]
    assert result["outcome"] == "applied"
    assert result["reason"] == f"{org['reason']}: filed under create_org_id"
