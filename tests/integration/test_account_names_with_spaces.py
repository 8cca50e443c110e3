"""Account names as people type them, with spaces around: a copy still goes under the account
whose name equals its source's once both are stripped, in Salesforce, HubSpot and Pipedrive,
and several accounts of that name are still not guessed between. Everything through the CLI,
against the sandboxes over HTTP; the sandbox's data is set up through its stores, as a person
would have typed it in the CRM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
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


def _pipedrive_org_typed(world: World, name: str) -> str:
    """An organization a person typed as `name`, spaces kept (a rename keeps the name as
    sent); its id."""
    em = _em(world, "pipedrive")
    with em.lock:
        org = em.store.orgs.create({"name": name.strip()})
        em.store.orgs.rename(org["id"], name)
        return str(org["id"])


def _source_named(world: World, create: dict[str, Any], name: str) -> None:
    """The copy's source deal (Pipedrive or Salesforce) under a new account typed `name`."""
    source = create["source"]
    em = _em(world, source["system"])
    if source["system"] == "pipedrive":
        org = _pipedrive_org_typed(world, name)
        with em.lock:
            em.store.update(int(source["id"]), {"org_id": int(org)})
        return
    account_id = _add_account(world, "salesforce", name)
    with em.lock:
        em.store.apply(em.store.check_update(source["id"], {"AccountId": account_id}))


def _planned(world: World, saved: Path, create: dict[str, Any]) -> dict[str, Any]:
    [planned] = [c for c in _plan(world, saved)["creates"] if c["entity"] == create["entity"]]
    return planned


def _result(applied: dict[str, Any], deal_id: str) -> dict[str, Any]:
    [result] = [r for r in applied["results"] if r["id"] == deal_id]
    return dict(result)


def _add_account(world: World, target: str, name: str) -> str:
    """An Account (Salesforce), company (HubSpot) or organization (Pipedrive) a person made
    as `name`; its id."""
    if target == "pipedrive":
        return _pipedrive_org_typed(world, name)
    em = _em(world, target)
    with em.lock:
        if target == "salesforce":
            return str(em.store.add_account(name))
        return str(em.store.add_company(name))


def _account_of_copy(world: World, target: str, entity: str) -> str | None:
    """The Account (Salesforce), primary company (HubSpot) or organization (Pipedrive) of the
    copy made for `entity`."""
    deal_id = world.members()[entity][target]
    em = _em(world, target)
    with em.lock:
        if target == "pipedrive":
            org = em.store.deals[int(deal_id)]["org_id"] or {}
            return str(org["value"]) if org else None
        if target == "salesforce":
            return em.store.by_id[deal_id].get("AccountId")
        companies = em.store.companies_of.of.get(deal_id) or {}
        return next((c for c, primary in companies.items() if primary), None)


@pytest.mark.parametrize(
    ("target", "source_name", "account_name"),
    [
        ("salesforce", "  Nimbus Ventures ", "Nimbus Ventures"),
        # Salesforce saves no string field with spaces around: the Account is "Orbit Labs"
        ("salesforce", "Orbit Labs", " Orbit Labs "),
        ("hubspot", "Nimbus Ventures  ", "Nimbus Ventures"),
        ("hubspot", "Orbit Labs", "Orbit Labs "),
    ],
    ids=["salesforce-source", "salesforce-account", "hubspot-source", "hubspot-company"],
)
def test_a_copy_goes_under_the_account_whose_name_equals_its_source_s_once_trimmed(
    small_world: World, tmp_path: Path, target: str, source_name: str, account_name: str
) -> None:
    world = small_world
    create = _copy_from(world, tmp_path, target, "pipedrive")
    _source_named(world, create, source_name)
    account_id = _add_account(world, target, account_name)
    saved = tmp_path / "plan.json"
    planned = _planned(world, saved, create)
    assert planned["account"]["name"] == source_name.strip()
    assert planned["account"]["found"] == [account_id]
    _apply(world, saved)
    assert _account_of_copy(world, target, create["entity"]) == account_id


# instance -> (the source of its copies, the plan create's key, what its accounts are called,
# the account of a copy under none of the name: none, or Pipedrive's create_org_id)
FILINGS = {
    "hubspot": ("pipedrive", "account", "companies", None),
    "pipedrive": ("salesforce", "organization", "organizations", "1"),
}


@pytest.mark.parametrize("target", sorted(FILINGS))
def test_two_accounts_equal_once_trimmed_are_not_guessed_between(
    small_world: World, tmp_path: Path, target: str
) -> None:
    world = small_world
    source, key, many, instead = FILINGS[target]
    create = _copy_from(world, tmp_path, target, source)
    _source_named(world, create, "Twin Holdings")
    made = sorted(
        (_add_account(world, target, n) for n in ("Twin Holdings", " Twin Holdings ")), key=int
    )
    saved = tmp_path / "plan.json"
    assert _planned(world, saved, create)[key]["found"] == made
    applied = _apply(world, saved)
    assert _account_of_copy(world, target, create["entity"]) == instead
    reason = _result(applied, world.members()[create["entity"]][target])["reason"]
    assert f"2 {many} are named 'Twin Holdings' ({', '.join(made)})" in reason


def test_a_pipedrive_organization_typed_with_spaces_is_found_in_the_listing_not_made_again(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create = _copy_from(world, tmp_path, "pipedrive", "salesforce")
    _source_named(world, create, "Orbit Labs")
    org = _add_account(world, "pipedrive", "Orbit Labs ")
    saved = tmp_path / "plan.json"
    assert _planned(world, saved, create)["organization"]["found"] == [org]
    em = _em(world, "pipedrive")
    orgs = len(em.store.orgs.orgs)
    _apply(world, saved)
    assert _account_of_copy(world, "pipedrive", create["entity"]) == org
    assert len(em.store.orgs.orgs) == orgs  # none made
