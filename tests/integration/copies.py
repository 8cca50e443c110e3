"""What the tests of copies filed under accounts (`push.create_missing`) share: the config that
makes them, the dry run and the apply through the CLI, and each CRM's accounts read and edited
through its sandbox's store, as a person would have edited them in the CRM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import World
from tests.sandbox_env import run_crmsync

__all__ = [
    "add_hubspot_companies",
    "add_salesforce_accounts",
    "apply_plan",
    "copies_into",
    "create_of",
    "dry_run",
    "emulator",
    "file_under_new_organization",
    "hubspot_companies",
    "hubspot_copy_companies",
    "make_copies_into",
    "one_copy_from_pipedrive",
    "org_of_copy",
    "orgs_named",
    "plan_of",
    "result_of",
    "salesforce_accounts",
    "salesforce_copy",
]


def make_copies_into(world: World, target: str, **settings: Any) -> None:
    """`push.create_missing` on, with `target` the only push target; `settings` go into its
    `systems` entry."""
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=[target])
    document["systems"][target].update(settings)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def emulator(world: World, system: str) -> Any:
    return world.sandbox.servers[system].emulator


def dry_run(world: World, out: Path, *extra: str) -> tuple[dict[str, Any], str]:
    """`reconcile --dry-run` with its plan saved at `out`: the plan, and the table it printed
    with its cells' folds undone."""
    done = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out), *extra
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text())), " ".join(done.stdout.split())


def plan_of(world: World, out: Path, *extra: str) -> dict[str, Any]:
    return dry_run(world, out, *extra)[0]


def apply_plan(world: World, plan: Path) -> dict[str, Any]:
    done = run_crmsync(
        "apply", str(plan), "--config", str(world.config), "--yes", "--format", "json"
    )
    assert done.returncode in (0, 1), done.stderr  # owners the target CRM lacks are refused
    return dict(json.loads(done.stdout))


def copies_into(plan: dict[str, Any], target: str, source: str) -> list[dict[str, Any]]:
    return [c for c in plan["creates"] if c["system"] == target and c["source"]["system"] == source]


def create_of(plan: dict[str, Any], create: dict[str, Any]) -> dict[str, Any]:
    """The plan's one create of the entity `create` copies."""
    [planned] = [c for c in plan["creates"] if c["entity"] == create["entity"]]
    return dict(planned)


def result_of(applied: dict[str, Any], world: World, entity: str, system: str) -> dict[str, Any]:
    """The apply's one result for the copy of `entity` it made in `system`."""
    deal_id = world.members()[entity][system]
    [result] = [r for r in applied["results"] if r["id"] == deal_id]
    return dict(result)


def file_under_new_organization(world: World, create: dict[str, Any], name: str) -> None:
    """The copy's source deal moved to a new Pipedrive organization named `name`."""
    em = emulator(world, "pipedrive")
    with em.lock:
        org = em.store.orgs.create({"name": name})
        em.store.update(int(create["source"]["id"]), {"org_id": org["id"]})


def one_copy_from_pipedrive(
    world: World, tmp_path: Path, target: str, name: str
) -> tuple[dict[str, Any], Path]:
    """A copy in `target` from Pipedrive whose source deal names account `name`, and where the
    plan for it is to be saved."""
    make_copies_into(world, target)
    create = copies_into(plan_of(world, tmp_path / "p0.json"), target, "pipedrive")[0]
    file_under_new_organization(world, create, name)
    return create, tmp_path / "plan.json"


def add_salesforce_accounts(world: World, *names: str) -> list[str]:
    em = emulator(world, "salesforce")
    with em.lock:
        return [em.store.add_account(name) for name in names]


def salesforce_accounts(world: World) -> list[dict[str, Any]]:
    em = emulator(world, "salesforce")
    with em.lock:
        return [dict(a) for a in em.store.tables["Account"]]


def salesforce_copy(world: World, entity: str) -> dict[str, Any]:
    """The Opportunity the apply made for `entity`."""
    em = emulator(world, "salesforce")
    with em.lock:
        return dict(em.store.by_id[world.members()[entity]["salesforce"]])


def add_hubspot_companies(world: World, *names: str) -> list[str]:
    em = emulator(world, "hubspot")
    with em.lock:
        return [em.store.add_company(name) for name in names]


def hubspot_companies(world: World) -> int:
    em = emulator(world, "hubspot")
    with em.lock:
        return len(em.store.companies)


def hubspot_copy_companies(world: World, entity: str) -> dict[str, bool]:
    """The companies (id -> primary?) of the deal the apply made for `entity`."""
    em = emulator(world, "hubspot")
    with em.lock:
        return dict(em.store.companies_of.of.get(world.members()[entity]["hubspot"]) or {})


def orgs_named(world: World, name: str) -> list[int]:
    em = emulator(world, "pipedrive")
    with em.lock:
        return list(em.store.orgs.named(name))


def org_of_copy(world: World, entity: str) -> dict[str, Any]:
    """The organization (`value` its id, and its `name`) of the Pipedrive deal the apply made
    for `entity`; empty where it has none."""
    deal_id = world.members()[entity]["pipedrive"]
    em = emulator(world, "pipedrive")
    with em.lock:
        return dict(em.store.deals[int(deal_id)]["org_id"] or {})
