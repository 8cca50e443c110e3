"""A company moving Pipedrive into HubSpot gets each copy associated with the company its
deal's organization names, not a deal of no company that someone must associate by hand.
crmsync never makes a company: none or several of the name, the copy has none and the apply
says why. Everything through the CLI, against the sandboxes over HTTP; the sandbox's data is
set up through its stores, as a person would have edited it in the CRM."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.sandbox_env import run_crmsync


def _configure(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=["hubspot"])
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _em(world: World, system: str) -> Any:
    return world.sandbox.servers[system].emulator


def _plan(world: World, out: Path) -> dict[str, Any]:
    done = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out)
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text()))


def _apply(world: World, plan: Path) -> dict[str, Any]:
    done = run_crmsync(
        "apply", str(plan), "--config", str(world.config), "--yes", "--format", "json"
    )
    assert done.returncode in (0, 1), done.stderr  # owners HubSpot lacks are refused
    return dict(json.loads(done.stdout))


def _file_under(world: World, create: dict[str, Any], name: str) -> None:
    """The copy's source deal moved to a new Pipedrive organization named `name`."""
    em = _em(world, "pipedrive")
    with em.lock:
        org = em.store.orgs.create({"name": name})
        em.store.update(int(create["source"]["id"]), {"org_id": org["id"]})


def _add_companies(world: World, *names: str) -> list[str]:
    em = _em(world, "hubspot")
    with em.lock:
        return [em.store.add_company(name) for name in names]


def _companies(world: World) -> int:
    em = _em(world, "hubspot")
    with em.lock:
        return len(em.store.companies)


def _copy_companies(world: World, entity: str) -> dict[str, bool]:
    """The companies (id -> primary?) of the deal the apply made for `entity`."""
    em = _em(world, "hubspot")
    with em.lock:
        return dict(em.store.companies_of.of.get(world.members()[entity]["hubspot"]) or {})


def _result(applied: dict[str, Any], world: World, entity: str) -> dict[str, Any]:
    deal_id = world.members()[entity]["hubspot"]
    [result] = [r for r in applied["results"] if r["id"] == deal_id]
    return dict(result)


def _one_copy_under(world: World, tmp_path: Path, name: str) -> tuple[dict[str, Any], Path]:
    """A copy from Pipedrive whose source deal names account `name`, and the plan for it."""
    _configure(world)
    plan = _plan(world, tmp_path / "p0.json")
    create = next(
        c
        for c in plan["creates"]
        if c["system"] == "hubspot" and c["source"]["system"] == "pipedrive"
    )
    _file_under(world, create, name)
    return create, tmp_path / "plan.json"


def _planned(world: World, saved: Path, create: dict[str, Any]) -> dict[str, Any]:
    plan = _plan(world, saved)
    [planned] = [c for c in plan["creates"] if c["entity"] == create["entity"]]
    return planned


def test_a_copy_is_associated_with_the_one_company_of_its_name_and_reads_it_back(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Nimbus Ventures")
    [company] = _add_companies(world, "Nimbus Ventures")
    planned = _planned(world, saved, create)
    assert planned["account"] == {
        "by": "account",
        "name": "Nimbus Ventures",
        "id": None,
        "found": [company],
    }
    companies = _companies(world)
    applied = _apply(world, saved)
    assert _copy_companies(world, create["entity"]) == {company: True}  # its primary one
    assert _result(applied, world, create["entity"])["reason"] is None
    # read back on the next pull: the same account as its source, so nothing to write
    again = _plan(world, tmp_path / "again.json")
    copy_id = world.members()[create["entity"]]["hubspot"]
    with open_runtime(str(world.config), connect=False) as rt:
        pulled = rt.store.get_deals("hubspot", [copy_id])[copy_id]
    assert pulled["extra"]["account"] == "Nimbus Ventures"
    assert pulled["extra"]["account_id"] == company
    assert [c for c in again["changes"] if c["id"] == copy_id] == []
    assert create["entity"] not in [c["entity"] for c in again["creates"]]
    # rollback deletes the copy, never the company
    undone = run_crmsync(
        "rollback", applied["run_id"], "--config", str(world.config), "--apply", "--yes"
    )
    assert undone.returncode == 0, undone.stderr
    assert copy_id in _em(world, "hubspot").store.archived
    assert _companies(world) == companies


def test_a_copy_whose_account_name_no_company_bears_gets_none_and_the_apply_says_so(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Unknown Labs")
    assert _planned(world, saved, create)["account"]["name"] == "Unknown Labs"
    companies = _companies(world)
    applied = _apply(world, saved)
    assert _copy_companies(world, create["entity"]) == {}
    result = _result(applied, world, create["entity"])
    assert result["outcome"] == "applied"
    assert result["reason"] == "no company is named 'Unknown Labs': created without a company"
    assert _companies(world) == companies  # none made


def test_an_account_name_two_companies_bear_is_not_guessed_and_the_apply_says_so(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Twin Holdings")
    twins = _add_companies(world, "Twin Holdings", "TWIN HOLDINGS")  # IN ignores case
    _planned(world, saved, create)
    applied = _apply(world, saved)
    assert _copy_companies(world, create["entity"]) == {}
    result = _result(applied, world, create["entity"])
    assert result["outcome"] == "applied"
    assert result["reason"] == (
        f"2 companies are named 'Twin Holdings' ({', '.join(sorted(twins))}): not guessed, "
        "created without a company"
    )


def test_an_account_name_with_quotes_and_symbols_is_found(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    name = 'O\'Brien & Co "Ltd" \\ 100%'
    create, saved = _one_copy_under(world, tmp_path, name)
    [company] = _add_companies(world, name.upper())
    _planned(world, saved, create)
    applied = _apply(world, saved)
    assert _copy_companies(world, create["entity"]) == {company: True}
    assert _result(applied, world, create["entity"])["reason"] is None


def test_the_dry_run_names_each_copys_company_and_counts_its_lookups_as_the_apply_does(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    _configure(world)
    out = tmp_path / "plan.json"
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out)
    )
    assert table.returncode == 0, table.stderr
    plan = json.loads(out.read_text())
    copies = [c for c in plan["creates"] if c["system"] == "hubspot"]
    accounts = [c["account"] for c in copies if c["account"]["by"] == "account"]
    named = [a["name"] for a in accounts]
    assert named
    shown = " ".join(table.stdout.split())
    for account in accounts:
        name, found = account["name"], account["found"]
        said = f"company {name} ({found[0]})" if found else f"no company is named {name!r}"
        assert len(found) < 2 and said in shown
    from connectors.hubspot_company_lookup import company_calls  # the connector's own count

    distinct = {n.casefold(): n for n in named}
    assert plan["summary"]["accounts_by_system"] == {"hubspot": len(distinct)}
    assert f"companies to find by name (never made): hubspot {len(distinct)}" in shown
    batches = -(-plan["summary"]["records_to_update"].get("hubspot", 0) // 100)
    lookups = company_calls(distinct.values())
    assert plan["summary"]["api_calls"]["hubspot"] == batches + -(-len(copies) // 100) + lookups
    with open_runtime(str(world.config), connect=False) as rt:
        dry = rt.store.runs.recent(1)[0]
    assert dry.calls["hubspot"]["find companies"] == lookups  # as the apply looks them up
    applied = _apply(world, out)
    with open_runtime(str(world.config), connect=False) as rt:
        run = rt.store.runs.get(applied["run_id"])
    assert run is not None and run.calls["hubspot"]["find companies"] == lookups


def test_a_plan_saved_before_creates_named_a_company_applies_without_one(
    small_world: World, tmp_path: Path
) -> None:
    """Its copies are associated with no company, as the plan a person reviewed then said."""
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Reviewed Ltd")
    _add_companies(world, "Reviewed Ltd")
    plan = _plan(world, saved)
    [planned] = [c for c in plan["creates"] if c["entity"] == create["entity"]]
    assert planned["account"]["name"] == "Reviewed Ltd"  # what a plan names now
    for item in plan["creates"]:
        item.pop("account", None)
    plan["summary"].pop("accounts_by_system", None)
    body = {k: v for k, v in plan.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    plan["checksum"] = hashlib.sha256(canonical.encode()).hexdigest()
    saved.write_text(json.dumps(plan))
    applied = _apply(world, saved)
    assert _copy_companies(world, create["entity"]) == {}
    assert _result(applied, world, create["entity"])["reason"] is None
    with open_runtime(str(world.config), connect=False) as rt:
        run = rt.store.runs.get(applied["run_id"])
    assert run is not None and "find companies" not in run.calls["hubspot"]


def test_a_token_that_may_not_read_companies_makes_the_copies_without_one_saying_why(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Scoped Out Inc")
    _add_companies(world, "Scoped Out Inc")
    _planned(world, saved, create)
    _em(world, "hubspot").companies_scope = False  # no crm.objects.companies.read
    applied = _apply(world, saved)
    assert _copy_companies(world, create["entity"]) == {}
    result = _result(applied, world, create["entity"])
    assert result["outcome"] == "applied"
    assert result["reason"] == (
        "HubSpot companies are not readable: grant crm.objects.companies.read to the app: "
        "created without a company"
    )


def test_the_dry_run_says_a_name_two_companies_bear_will_have_none(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    create, saved = _one_copy_under(world, tmp_path, "Krusty Twins Ltd")
    twins = sorted(_add_companies(world, "Krusty Twins Ltd", "KRUSTY TWINS LTD"))
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(saved)
    )
    assert table.returncode == 0, table.stderr
    [planned] = [
        c for c in json.loads(saved.read_text())["creates"] if c["entity"] == create["entity"]
    ]
    assert planned["account"]["found"] == twins
    shown = " ".join(table.stdout.split())
    said = f"company Krusty Twins Ltd: 2 are named so ({', '.join(twins)}): none will be chosen"
    assert said in shown


def test_a_dry_run_whose_company_search_is_refused_still_plans_and_says_so(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full pull lists deals (no search): only the dry run's company lookup is refused."""
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    create, saved = _one_copy_under(world, tmp_path, "Refused Corp")
    refusal = "There was a problem with the request."
    _em(world, "hubspot").search_refusal = refusal
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--full", "--plan-out", str(saved)
    )
    assert table.returncode == 0, table.stderr
    [planned] = [
        c for c in json.loads(saved.read_text())["creates"] if c["entity"] == create["entity"]
    ]
    why = planned["account"]["not_looked_up"]
    assert why.startswith("hubspot: find companies: ") and refusal in why
    assert "found" not in planned["account"]
    shown = " ".join(table.stdout.split())
    assert f"company Refused Corp: not looked up: {why}" in shown
