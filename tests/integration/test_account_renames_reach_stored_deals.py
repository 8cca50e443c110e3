"""An account renamed in its CRM reaches the stored deals on the next incremental pull.

Renaming a Salesforce Account, a HubSpot company or a Pipedrive organization does not modify
its deals (their SystemModstamp, hs_lastmodifieddate, update_time stay), so the incremental
read of changed deals never sees it. The pull reads the accounts changed since its cursor too
and gives the stored deals of those accounts the new name: Pipedrive copies are filed under
it, and the `account` match key uses it. Everything through the CLI against the sandboxes; the
renames are made in the emulators' stores, as a person makes them in the CRM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from connectors.sandbox.faults import Faults
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.sandbox_env import run_crmsync


def _em(world: World, system: str) -> Any:
    return world.sandbox.servers[system].emulator


def _pull(world: World, *extra: str) -> str:
    done = run_crmsync("pull", "--config", str(world.config), *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _stored(world: World, instance: str, deal_id: str) -> dict[str, Any]:
    with open_runtime(str(world.config), connect=False) as rt:
        return dict(rt.store.get_deals(instance, [deal_id])[deal_id])


def _account(payload: dict[str, Any]) -> Any:
    return (payload.get("extra") or {}).get("account")


def _requests(world: World, system: str) -> dict[str, int]:
    return dict(world.sandbox.servers[system].stats.snapshot()["requests"])


def _clear_stats(world: World) -> None:
    for server in world.sandbox.servers.values():
        server.stats.clear()


def test_an_api_user_who_may_not_read_accounts_pulls_the_changed_deals_and_says_renames_wait(
    small_world: World,
) -> None:
    """A profile that hides the Account object: the query of changed Accounts is refused
    (INVALID_TYPE). The incremental pull still reads and saves the changed Opportunities, keeps
    the names it stored, and says on stderr why renames are not read."""
    world = small_world
    _pull(world, "--system", "salesforce")
    em = _em(world, "salesforce")
    with em.lock:
        opportunity = next(
            o for o in em.store.tables["Opportunity"] if o.get("AccountId") and not o["IsDeleted"]
        )
        account = opportunity["AccountId"]
        em.store.rename_account(account, "Renamed Holdings")
    named = _account(_stored(world, "salesforce", opportunity["Id"]))
    assert named and named != "Renamed Holdings"
    with em.lock:  # a deal edited since the last pull
        changed = next(
            o
            for o in em.store.tables["Opportunity"]
            if o["Id"] != opportunity["Id"] and not o["IsDeleted"]
        )
        em.store.apply(em.store.check_update(changed["Id"], {"Name": "Edited since the last pull"}))
    world.sandbox.servers["salesforce"].faults.set(Faults(hidden_sobjects=("Account",)))

    done = run_crmsync("pull", "--config", str(world.config), "--system", "salesforce")

    assert done.returncode == 0, done.stderr
    assert "Accounts are not readable" in done.stderr and "INVALID_TYPE" in done.stderr
    assert "renames are not read" in done.stderr, done.stderr
    assert _stored(world, "salesforce", changed["Id"])["name"] == "Edited since the last pull"
    assert _account(_stored(world, "salesforce", opportunity["Id"])) == named


def test_a_renamed_salesforce_account_reaches_its_stored_deals_on_an_incremental_pull(
    small_world: World,
) -> None:
    world = small_world
    _pull(world, "--system", "salesforce")
    em = _em(world, "salesforce")
    with em.lock:
        opportunity = min(
            (
                o
                for o in em.store.tables["Opportunity"]
                if o.get("AccountId") and not o["IsDeleted"]
            ),
            key=lambda o: o["SystemModstamp"],  # the oldest: never in the pull's re-read overlap
        )
        account = opportunity["AccountId"]
        modstamp = opportunity["SystemModstamp"]
        ids = [o["Id"] for o in em.store.tables["Opportunity"] if o.get("AccountId") == account]
        em.store.rename_account(account, "Renamed Holdings")
        assert opportunity["SystemModstamp"] == modstamp  # as in Salesforce: not its deals'
    _clear_stats(world)
    table = _pull(world, "--system", "salesforce")
    assert "incremental" in table
    for deal_id in ids:
        assert _account(_stored(world, "salesforce", deal_id)) == "Renamed Holdings", deal_id
    # stages, owners, the Opportunities changed since (those the overlap reads again), their
    # stage history and the Accounts changed since: a query (and a page) each
    queries = _requests(world, "salesforce")
    assert queries.get("GET /services/data/{version}/query", 0) <= 5, queries
    run = _last_run(world)
    assert run["calls"]["salesforce"]["accounts"] == 1
    assert run["counts"]["salesforce"]["renamed"] == len(ids)
    assert run["counts"]["salesforce"]["saved"] >= len(ids)


def test_an_incremental_pull_reads_no_accounts_where_no_stored_deal_names_one(
    small_world: World,
) -> None:
    world = small_world
    em = _em(world, "salesforce")
    with em.lock:
        for opportunity in em.store.tables["Opportunity"]:
            opportunity["AccountId"] = None
    _pull(world, "--system", "salesforce")
    _pull(world, "--system", "salesforce")
    assert "accounts" not in _last_run(world)["calls"]["salesforce"]


def test_a_renamed_hubspot_company_reaches_its_stored_deals_on_an_incremental_pull(
    small_world: World,
) -> None:
    world = small_world
    _pull(world, "--system", "hubspot")
    em = _em(world, "hubspot")
    with em.lock:
        deal_id, companies = min(
            ((d, c) for d, c in em.store.companies_of.of.items() if d in em.store.live and c),
            key=lambda pair: em.store.live[pair[0]]["properties"]["hs_lastmodifieddate"],
        )
        company = next(iter(companies))
        modified = em.store.live[deal_id]["properties"]["hs_lastmodifieddate"]
        em.store.rename_company(company, "Renamed Holdings")
        assert em.store.live[deal_id]["properties"]["hs_lastmodifieddate"] == modified
    _clear_stats(world)
    table = _pull(world, "--system", "hubspot")
    assert "incremental" in table
    assert _account(_stored(world, "hubspot", deal_id)) == "Renamed Holdings"
    searches = _requests(world, "hubspot")
    assert searches.get("POST /crm/objects/2026-09/companies/search") == 1, searches


def test_a_renamed_pipedrive_organization_reaches_its_stored_deals_on_an_incremental_pull(
    small_world: World,
) -> None:
    world = small_world
    _pull(world, "--system", "pipedrive")
    em = _em(world, "pipedrive")
    with em.lock:
        deal = min(
            (d for d in em.store.deals.values() if d.get("org_id") and d["status"] != "deleted"),
            key=lambda d: d["update_time"],
        )
        org = int(deal["org_id"]["value"])
        ids = [
            str(d["id"])
            for d in em.store.deals.values()
            if (d.get("org_id") or {}).get("value") == org and d["status"] != "deleted"
        ]
        em.store.rename_org(org, "Renamed Holdings")
        assert em.store.deals[deal["id"]]["update_time"] == deal["update_time"]
        assert em.store.deals[deal["id"]]["org_name"] == "Renamed Holdings"
    _clear_stats(world)
    table = _pull(world, "--system", "pipedrive")
    assert "incremental" in table
    for deal_id in ids:
        assert _account(_stored(world, "pipedrive", deal_id)) == "Renamed Holdings", deal_id
    requests = _requests(world, "pipedrive")
    # the organizations updated since the cursor, and the names of those the deals changed
    # in the pull's overlap name (one call of up to 100 ids)
    assert requests.get("GET /api/v2/organizations") in (1, 2), requests


def test_a_copy_made_in_pipedrive_after_a_salesforce_account_rename_is_filed_under_the_new_name(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=["pipedrive"])
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    first = _plan(world, tmp_path / "first.json")
    em = _em(world, "salesforce")
    with em.lock:
        source = min(  # the oldest source: never in the pull's re-read overlap
            (
                c
                for c in first["creates"]
                if c["system"] == "pipedrive" and c["source"]["system"] == "salesforce"
            ),
            key=lambda c: em.store.by_id[c["source"]["id"]]["SystemModstamp"],
        )
        account = em.store.by_id[source["source"]["id"]]["AccountId"]
        em.store.rename_account(account, "Renamed Holdings")
    plan = _plan(world, tmp_path / "plan.json")  # incremental: no --full
    [create] = [c for c in plan["creates"] if c["entity"] == source["entity"]]
    assert create["organization"] == {
        "by": "account",
        "name": "Renamed Holdings",
        "id": None,
        "found": [],  # made at apply
    }
    done = run_crmsync("apply", str(tmp_path / "plan.json"), "--config", str(world.config), "--yes")
    assert done.returncode in (0, 1), done.stderr  # owners Pipedrive lacks are refused
    deal_id = int(world.members()[source["entity"]]["pipedrive"])
    pipedrive = _em(world, "pipedrive")
    with pipedrive.lock:
        org = pipedrive.store.deals[deal_id]["org_id"]
        assert pipedrive.store.orgs.orgs[int(org["value"])]["name"] == "Renamed Holdings"


def _last_run(world: World) -> dict[str, Any]:
    done = run_crmsync("runs", "--config", str(world.config), "--format", "json", "--limit", "1")
    assert done.returncode == 0, done.stderr
    [run] = json.loads(done.stdout)
    return dict(run)


def _plan(world: World, out: Path) -> dict[str, Any]:
    done = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out)
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text()))
