"""A company migrating Salesforce into Pipedrive gets each copy under the organization of its
Opportunity's account, not thousands of deals under one placeholder organization
(`create_org_id`) that someone must re-file by hand. Everything through the CLI, against the
sandboxes over HTTP; the sandbox's data is set up through its stores, as a person would have
edited it in the CRM."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from connectors.pipedrive_orgs import SEARCH_MAX
from connectors.sandbox.faults import Faults
from tests.integration.conftest import World
from tests.integration.copies import (
    apply_plan,
    copies_into,
    create_of,
    emulator,
    make_copies_into,
    org_of_copy,
    orgs_named,
    plan_of,
)
from tests.plans import signed
from tests.sandbox_env import run_crmsync

FALLBACK = 1  # the sandbox config's create_org_id
# What a pull reads of the organizations: the names of those its deals name, 100 ids a call.
ORG_NAMES = "GET /api/v2/organizations"


def _names_reads(world: World) -> int:
    """The calls a full pull spends on the names of the organizations its deals name."""
    em = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        orgs = {
            d["org_id"]["value"]
            for d in em.store.deals.values()
            if d.get("org_id") and d["status"] != "deleted"
        }
    return math.ceil(len(orgs) / 100)


def _account(world: World, create: dict[str, Any]) -> Any:
    """The Salesforce Account record of a create's source (edited in place: a rename)."""
    em = emulator(world, "salesforce")
    with em.lock:
        opportunity = em.store.by_id[create["source"]["id"]]
        return em.store.parent("Account", opportunity["AccountId"])


def _rename(world: World, create: dict[str, Any], name: str) -> None:
    em = emulator(world, "salesforce")
    with em.lock:
        _account(world, create)["Name"] = name


def _requests(world: World) -> dict[str, int]:
    return dict(world.sandbox.servers["pipedrive"].stats.snapshot()["requests"])


def _distinct(creates: list[dict[str, Any]], world: World) -> list[dict[str, Any]]:
    """One create per account name, so that each test's edits touch one copy each."""
    seen: dict[str, dict[str, Any]] = {}
    for create in creates:
        seen.setdefault(str(_account(world, create).get("Name")), create)
    return list(seen.values())


def test_a_salesforce_copy_lands_in_the_existing_organization_of_its_account_name(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    make_copies_into(world, "pipedrive")
    acme = copies_into(plan_of(world, tmp_path / "first.json"), "pipedrive", "salesforce")[0]
    [existing] = orgs_named(world, "Acme Corp")  # one of the generated companies
    _rename(world, acme, "Acme Corp")
    plan = plan_of(world, tmp_path / "plan.json", "--full")
    planned = create_of(plan, acme)
    assert planned["organization"] == {
        "by": "account",
        "name": "Acme Corp",
        "id": None,
        "found": [str(existing)],
    }
    em = emulator(world, "pipedrive")
    orgs = len(em.store.orgs.orgs)
    apply_plan(world, tmp_path / "plan.json")
    org = org_of_copy(world, acme["entity"])
    assert (org["value"], org["name"]) == (existing, "Acme Corp")
    assert orgs_named(world, "Acme Corp") == [existing]
    # every other copy went to its own account's existing organization: none was made
    assert len(em.store.orgs.orgs) == orgs


def test_an_account_without_an_organization_gets_one_that_its_later_copies_reuse(
    small_world: World, tmp_path: Path
) -> None:
    """Two copies of "Nimbus Ventures" in one run, the second refused by Pipedrive after the
    organization was made; the next run creates it into that same organization."""
    world = small_world
    make_copies_into(world, "pipedrive")
    first, second, *_ = _distinct(
        copies_into(plan_of(world, tmp_path / "p0.json"), "pipedrive", "salesforce"), world
    )
    for create in (first, second):
        _rename(world, create, "Nimbus Ventures")
    assert orgs_named(world, "Nimbus Ventures") == []
    faults = world.sandbox.servers["pipedrive"].faults
    faults.set(Faults(fail_ids=(second["entity"],)))  # the deal create, not the organization's
    plan_of(world, tmp_path / "p1.json", "--full")
    apply_plan(world, tmp_path / "p1.json")
    [nimbus] = orgs_named(world, "Nimbus Ventures")
    assert org_of_copy(world, first["entity"])["value"] == nimbus
    assert "pipedrive" not in world.members().get(second["entity"], {})
    faults.set(Faults())
    plan = plan_of(world, tmp_path / "p2.json")
    assert second["entity"] in [c["entity"] for c in copies_into(plan, "pipedrive", "salesforce")]
    apply_plan(world, tmp_path / "p2.json")
    assert org_of_copy(world, second["entity"])["value"] == nimbus
    assert orgs_named(world, "Nimbus Ventures") == [nimbus]
    em = emulator(world, "pipedrive")
    with em.lock:
        owner = em.store.orgs.orgs[nimbus]["owner_id"]["id"]
        copy = em.store.deals[int(world.members()[first["entity"]]["pipedrive"])]
    assert owner == copy["user_id"]["id"]  # owned by the copy's owner


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_rollback_deletes_the_copies_and_keeps_the_organizations_made_for_them(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    make_copies_into(world, "pipedrive")
    fresh = copies_into(plan_of(world, tmp_path / "p0.json"), "pipedrive", "salesforce")[0]
    _rename(world, fresh, "Rollback Ventures")
    plan_of(world, tmp_path / "p1.json", "--full")
    run_id = apply_plan(world, tmp_path / "p1.json")["run_id"]
    [org] = orgs_named(world, "Rollback Ventures")
    deal_id = int(world.members()[fresh["entity"]]["pipedrive"])
    undone = run_crmsync("rollback", run_id, "--config", str(world.config), "--apply", "--yes")
    assert undone.returncode == 0, undone.stderr
    em = emulator(world, "pipedrive")
    with em.lock:
        assert em.store.deals[deal_id]["status"] == "deleted"
    assert orgs_named(world, "Rollback Ventures") == [org]


def test_a_copy_of_a_deal_without_an_account_goes_to_create_org_id(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    make_copies_into(world, "pipedrive")
    lone = copies_into(plan_of(world, tmp_path / "p0.json"), "pipedrive", "salesforce")[0]
    em = emulator(world, "salesforce")
    with em.lock:
        em.store.by_id[lone["source"]["id"]]["AccountId"] = None
    plan = plan_of(world, tmp_path / "p1.json", "--full")
    planned = create_of(plan, lone)
    assert planned["organization"] == {"by": "create_org_id", "name": None, "id": FALLBACK}
    apply_plan(world, tmp_path / "p1.json")
    assert org_of_copy(world, lone["entity"])["value"] == FALLBACK


def test_an_account_name_several_organizations_bear_is_not_guessed_and_the_apply_says_so(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    make_copies_into(world, "pipedrive")
    twin = copies_into(plan_of(world, tmp_path / "p0.json"), "pipedrive", "salesforce")[0]
    _rename(world, twin, "Twin Holdings")
    em = emulator(world, "pipedrive")
    with em.lock:
        made = [em.store.orgs.create({"name": n}) for n in ("Twin Holdings", " twin holdings")]
    plan_of(world, tmp_path / "p1.json", "--full")
    applied = apply_plan(world, tmp_path / "p1.json")
    deal_id = world.members()[twin["entity"]]["pipedrive"]
    assert org_of_copy(world, twin["entity"])["value"] == FALLBACK
    [result] = [r for r in applied["results"] if r["id"] == deal_id]
    assert result["outcome"] == "applied"
    assert "2 organizations are named 'Twin Holdings'" in result["reason"]
    assert all(str(org["id"]) in result["reason"] for org in made)
    assert len(orgs_named(world, "Twin Holdings")) == 2  # none made either


def test_the_dry_run_names_each_copys_organization_as_found_and_makes_none(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    make_copies_into(world, "pipedrive")
    orgs = len(emulator(world, "pipedrive").store.orgs.orgs)
    world.sandbox.servers["pipedrive"].stats.clear()
    out = tmp_path / "plan.json"
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out)
    )
    assert table.returncode == 0, table.stderr
    plan = json.loads(out.read_text())
    copies = copies_into(plan, "pipedrive", "salesforce")
    assert copies
    shown = " ".join(table.stdout.split())
    for create in copies:
        name = _account(world, create)["Name"]
        found = [str(i) for i in sorted(orgs_named(world, name))]
        filed = {"by": "account", "name": name, "id": None, "found": found}
        assert create["organization"] == filed
        said = f"organization {name} " + (f"(found: {found[0]})" if found else "(made at apply)")
        assert len(found) < 2 and said in shown
    # a HubSpot source's copy takes the account of its Salesforce deal
    orgs_of = [c["organization"] for c in plan["creates"] if c["system"] == "pipedrive"]
    names = {o["name"].casefold() for o in orgs_of if o["name"]}
    assert plan["summary"]["organizations_by_system"] == {"pipedrive": len(names)}
    requests = _requests(world)
    # the full read's listing of organizations serves the lookup too (no second one); none made
    assert requests.get(ORG_NAMES, 0) == _names_reads(world)
    assert not [r for r in requests if r.startswith(("POST", "PUT", "DELETE"))]
    assert len(emulator(world, "pipedrive").store.orgs.orgs) == orgs


def test_create_org_by_create_org_id_files_every_copy_under_create_org_id(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    make_copies_into(world, "pipedrive", create_org_by="create_org_id")
    plan = plan_of(world, tmp_path / "plan.json")
    copies = [c for c in plan["creates"] if c["system"] == "pipedrive"]
    assert copies
    assert all(
        c["organization"] == {"by": "create_org_id", "name": None, "id": FALLBACK} for c in copies
    )
    world.sandbox.servers["pipedrive"].stats.clear()
    apply_plan(world, tmp_path / "plan.json")
    members = world.members()
    made = [c for c in copies if "pipedrive" in members.get(c["entity"], {})]
    assert made
    assert all(org_of_copy(world, c["entity"])["value"] == FALLBACK for c in made)
    assert not [r for r in _requests(world) if "organizations" in r and r != ORG_NAMES]


def test_a_plan_saved_before_creates_named_an_organization_still_applies_as_reviewed(
    small_world: World, tmp_path: Path
) -> None:
    """Its creates go to create_org_id, as the plan a person reviewed then said."""
    world = small_world
    make_copies_into(world, "pipedrive")
    saved = tmp_path / "plan.json"
    plan = plan_of(world, saved)
    for create in plan["creates"]:
        create.pop("organization", None)
    plan["summary"].pop("organizations_by_system", None)
    saved.write_text(json.dumps(signed(plan)))
    applied = apply_plan(world, saved)
    members = world.members()
    copies = [c for c in plan["creates"] if "pipedrive" in members.get(c["entity"], {})]
    assert copies and applied["totals"]["applied"] >= len(copies)
    assert all(org_of_copy(world, c["entity"])["value"] == FALLBACK for c in copies)


def test_a_reconcile_that_reads_everything_and_files_many_copies_lists_the_organizations_once(
    small_world: World, tmp_path: Path
) -> None:
    """A full pull lists the organizations to name its deals; the same run's copies of more
    than ten accounts are filed from that listing, not from a second one. An organization the
    apply makes joins it: the copies of one new account share it."""
    world = small_world
    make_copies_into(world, "pipedrive")
    creates = copies_into(plan_of(world, tmp_path / "p0.json"), "pipedrive", "salesforce")
    new = _distinct(creates, world)[:2]
    for create in new:  # two accounts Pipedrive has no organization of yet
        _rename(world, create, f"New Co {create['entity']}")
    plan = plan_of(world, tmp_path / "p1.json", "--full")
    names = {
        c["organization"]["name"].casefold()
        for c in plan["creates"]
        if c["system"] == "pipedrive" and c["organization"]["name"]
    }
    assert len(names) > SEARCH_MAX
    world.sandbox.servers["pipedrive"].stats.clear()
    done = run_crmsync("reconcile", "--config", str(world.config), "--full", "--yes")
    assert done.returncode in (0, 1), done.stderr  # owners Pipedrive lacks are refused
    requests = _requests(world)
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        pages = math.ceil((len(em.store.orgs.orgs) - len(new)) / 500)
    assert requests.get("GET /api/v2/organizations") == pages, requests
    assert requests.get("GET /api/v2/organizations/search") is None
    assert requests.get("POST /api/v2/organizations") == len(new)


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_migration_of_many_accounts_lists_the_organizations_once_and_posts_each_new_one(
    small_world: World, tmp_path: Path
) -> None:
    """N copies of K > 10 accounts: N deal POSTs, one listing of the organizations (a page per
    500) instead of K searches, one POST per account with no organization yet; within the
    plan's estimate (N + 3K past 10 names)."""
    world = small_world
    make_copies_into(world, "pipedrive")
    creates = copies_into(plan_of(world, tmp_path / "p0.json"), "pipedrive", "salesforce")
    fresh = _distinct(creates, world)[:2]
    for create in fresh:  # two accounts Pipedrive has no organization of yet
        _rename(world, create, f"New Co {create['entity']}")
    plan = plan_of(world, tmp_path / "p1.json", "--full")
    copies = [c for c in plan["creates"] if c["system"] == "pipedrive"]
    names = {c["organization"]["name"].casefold() for c in copies if c["organization"]["name"]}
    assert len(names) > SEARCH_MAX
    world.sandbox.servers["pipedrive"].stats.clear()
    apply_plan(world, tmp_path / "p1.json")
    requests = _requests(world)
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        pages = math.ceil(len(em.store.orgs.orgs) / 500)
    assert requests.get("POST /api/v2/deals") == len(copies)
    assert requests.get("GET /api/v2/organizations") == pages
    assert requests.get("GET /api/v2/organizations/search") is None
    assert requests.get("POST /api/v2/organizations") == len(fresh)
    updates = plan["summary"]["records_to_update"].get("pipedrive", 0)
    estimate = plan["summary"]["api_calls"]["pipedrive"]
    assert estimate == updates + len(copies) + 3 * len(names)
    writes = ("POST /api/v2/deals", "PATCH /api/v2/deals/{id}", "POST /api/v2/organizations")
    spent = sum(requests.get(r, 0) for r in (*writes, "GET /api/v2/organizations"))
    assert spent <= estimate
    print(
        f"\n{len(copies)} copies of {len(names)} accounts ({len(fresh)} new): "
        f"{requests.get('POST /api/v2/deals')} deal POSTs, {pages} list pages, no search, "
        f"{len(fresh)} organization POSTs; estimate {estimate} with {updates} updates"
    )
