"""Account names as people type them, with spaces around: a copy still goes under the account
whose name equals its source's once both are stripped, in Salesforce, HubSpot and Pipedrive,
and several accounts of that name are still not guessed between. Everything through the CLI,
against the sandboxes over HTTP; the sandbox's data is set up through its stores, as a person
would have typed it in the CRM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import World
from tests.sandbox_env import run_crmsync


def _configure(world: World, target: str) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=[target])
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _em(world: World, system: str) -> Any:
    return world.sandbox.servers[system].emulator


def _plan(world: World, out: Path) -> dict[str, Any]:
    done = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--full", "--plan-out", str(out)
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text()))


def _apply(world: World, plan: Path) -> dict[str, Any]:
    done = run_crmsync(
        "apply", str(plan), "--config", str(world.config), "--yes", "--format", "json"
    )
    assert done.returncode in (0, 1), done.stderr  # owners the target lacks are refused
    return dict(json.loads(done.stdout))


def _copy_from(world: World, tmp_path: Path, target: str, source: str) -> dict[str, Any]:
    _configure(world, target)
    plan = _plan(world, tmp_path / "p0.json")
    return next(
        c for c in plan["creates"] if c["system"] == target and c["source"]["system"] == source
    )


def _pipedrive_source_named(world: World, create: dict[str, Any], name: str) -> None:
    """The copy's source deal under a new Pipedrive organization then renamed `name` as typed
    (a rename keeps the name as sent)."""
    em = _em(world, "pipedrive")
    with em.lock:
        org = em.store.orgs.create({"name": name.strip()})
        em.store.orgs.rename(org["id"], name)
        em.store.update(int(create["source"]["id"]), {"org_id": org["id"]})


def _planned(world: World, saved: Path, create: dict[str, Any]) -> dict[str, Any]:
    [planned] = [c for c in _plan(world, saved)["creates"] if c["entity"] == create["entity"]]
    return planned


def _result(applied: dict[str, Any], deal_id: str) -> dict[str, Any]:
    [result] = [r for r in applied["results"] if r["id"] == deal_id]
    return dict(result)


# Salesforce


def _salesforce_copy(world: World, entity: str) -> dict[str, Any]:
    em = _em(world, "salesforce")
    with em.lock:
        return dict(em.store.by_id[world.members()[entity]["salesforce"]])


def test_a_salesforce_copy_of_a_source_account_typed_with_spaces_goes_under_its_account(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create = _copy_from(world, tmp_path, "salesforce", "pipedrive")
    _pipedrive_source_named(world, create, "  Nimbus Ventures ")
    em = _em(world, "salesforce")
    with em.lock:
        account_id = em.store.add_account("Nimbus Ventures")
    saved = tmp_path / "plan.json"
    planned = _planned(world, saved, create)
    assert planned["account"]["name"] == "Nimbus Ventures"
    assert planned["account"]["found"] == [account_id]
    _apply(world, saved)
    assert _salesforce_copy(world, create["entity"])["AccountId"] == account_id


def test_a_salesforce_account_typed_with_spaces_is_stored_trimmed_and_found(
    small_world: World, tmp_path: Path
) -> None:
    """Salesforce never stores a string field with spaces around (it trims them on save), so
    an Account a person typed as "Orbit Labs " is named "Orbit Labs" and found."""
    world = small_world
    create = _copy_from(world, tmp_path, "salesforce", "pipedrive")
    _pipedrive_source_named(world, create, "Orbit Labs")
    em = _em(world, "salesforce")
    with em.lock:
        account_id = em.store.add_account(" Orbit Labs ")
    saved = tmp_path / "plan.json"
    assert _planned(world, saved, create)["account"]["found"] == [account_id]
    _apply(world, saved)
    assert _salesforce_copy(world, create["entity"])["AccountId"] == account_id


# HubSpot


def _hubspot_companies_of(world: World, entity: str) -> dict[str, bool]:
    em = _em(world, "hubspot")
    with em.lock:
        return dict(em.store.companies_of.of.get(world.members()[entity]["hubspot"]) or {})


def test_a_hubspot_copy_of_a_source_account_typed_with_spaces_goes_with_its_company(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create = _copy_from(world, tmp_path, "hubspot", "pipedrive")
    _pipedrive_source_named(world, create, "Nimbus Ventures  ")
    em = _em(world, "hubspot")
    with em.lock:
        company = em.store.add_company("Nimbus Ventures")
    saved = tmp_path / "plan.json"
    assert _planned(world, saved, create)["account"]["found"] == [company]
    _apply(world, saved)
    assert _hubspot_companies_of(world, create["entity"]) == {company: True}


def test_a_hubspot_company_typed_with_spaces_is_found_for_its_stripped_name(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create = _copy_from(world, tmp_path, "hubspot", "pipedrive")
    _pipedrive_source_named(world, create, "Orbit Labs")
    em = _em(world, "hubspot")
    with em.lock:
        company = em.store.add_company("Orbit Labs ")
    saved = tmp_path / "plan.json"
    assert _planned(world, saved, create)["account"]["found"] == [company]
    _apply(world, saved)
    assert _hubspot_companies_of(world, create["entity"]) == {company: True}


def test_two_hubspot_companies_equal_once_stripped_are_not_guessed_between(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create = _copy_from(world, tmp_path, "hubspot", "pipedrive")
    _pipedrive_source_named(world, create, "Twin Holdings")
    em = _em(world, "hubspot")
    with em.lock:
        made = sorted(em.store.add_company(n) for n in ("Twin Holdings", " Twin Holdings "))
    saved = tmp_path / "plan.json"
    assert _planned(world, saved, create)["account"]["found"] == made
    applied = _apply(world, saved)
    assert _hubspot_companies_of(world, create["entity"]) == {}
    reason = _result(applied, world.members()[create["entity"]]["hubspot"])["reason"]
    assert f"2 companies are named 'Twin Holdings' ({', '.join(made)})" in reason


# Pipedrive


def _salesforce_source_named(world: World, create: dict[str, Any], name: str) -> None:
    em = _em(world, "salesforce")
    with em.lock:
        account_id = em.store.add_account(name)
        em.store.apply(em.store.check_update(create["source"]["id"], {"AccountId": account_id}))


def _pipedrive_org_of_copy(world: World, entity: str) -> Any:
    em = _em(world, "pipedrive")
    with em.lock:
        org = em.store.deals[int(world.members()[entity]["pipedrive"])]["org_id"] or {}
        return org.get("value")


def _pipedrive_org_typed(world: World, name: str) -> int:
    """An organization a person typed as `name`, spaces kept."""
    em = _em(world, "pipedrive")
    with em.lock:
        org = em.store.orgs.create({"name": name.strip()})
        em.store.orgs.rename(org["id"], name)
        return int(org["id"])


def test_a_pipedrive_organization_typed_with_spaces_is_found_in_the_listing_not_made_again(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create = _copy_from(world, tmp_path, "pipedrive", "salesforce")
    _salesforce_source_named(world, create, "Orbit Labs")
    org = _pipedrive_org_typed(world, "Orbit Labs ")
    saved = tmp_path / "plan.json"
    assert _planned(world, saved, create)["organization"]["found"] == [str(org)]
    orgs = len(_em(world, "pipedrive").store.orgs.orgs)
    _apply(world, saved)
    assert _pipedrive_org_of_copy(world, create["entity"]) == org
    assert len(_em(world, "pipedrive").store.orgs.orgs) == orgs  # none made


def test_two_pipedrive_organizations_equal_once_stripped_are_not_guessed_between(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create = _copy_from(world, tmp_path, "pipedrive", "salesforce")
    _salesforce_source_named(world, create, "Twin Holdings")
    made = sorted(_pipedrive_org_typed(world, n) for n in ("Twin Holdings", "Twin Holdings "))
    saved = tmp_path / "plan.json"
    assert _planned(world, saved, create)["organization"]["found"] == [str(i) for i in made]
    applied = _apply(world, saved)
    assert _pipedrive_org_of_copy(world, create["entity"]) == 1  # create_org_id
    reason = _result(applied, world.members()[create["entity"]]["pipedrive"])["reason"]
    assert "2 organizations are named 'Twin Holdings'" in reason
