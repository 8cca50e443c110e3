"""`owners.aliases`: one salesperson known by another email in another CRM (an acquired
company's HubSpot knows Ana as ana@acme-eu.com, the parent's Salesforce as ana@acme.com) is one
owner: no owner difference between the twins, a match on `owner_email`, a copy owned by her
Salesforce user. Served by the sandboxes, read and written through the official clients."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from sync.plan import Plan
from sync.reconcile_run import run_reconcile
from sync.store_records import RunStatus
from tests.sandbox_env import SandboxEnv, make_env

PARENT, ACQUIRED = "ana@acme.com", "ana@acme-eu.com"
ALIASES = {"owners": {"aliases": {ACQUIRED: PARENT}}}
SF_ANA, HS_ANA = "0055g00000000AnAAA", "41699999"
LINKED, UNLINKED = "Tyrell BV", "Bellows Ltd"
# A deal only one CRM has: its id there, its name.
ONLY = {
    "hubspot": ("9100009999", "Acme EU — Onboarding 2026"),
    "salesforce": ("0065g0000000099AAA", "Acme — Platform 2026"),
}


def _dataset() -> dict[str, Any]:
    """A Salesforce + HubSpot world where Ana owns a linked pair (`LINKED`), a pair only
    their keys join (`UNLINKED`) and in each CRM a deal only it has (`ONLY`)."""
    dataset, _ = generate(6, 3)
    salesforce, hubspot = dataset["salesforce"], dataset["hubspot"]
    user = copy.deepcopy(salesforce["User"][0])
    user.update(Id=SF_ANA, Name="Ana Lima", Email="Ana@Acme.com")
    user["attributes"]["url"] = user["attributes"]["url"].rsplit("/", 1)[0] + f"/{SF_ANA}"
    salesforce["User"].append(user)
    owner = copy.deepcopy(hubspot["owners"][0])
    owner.update(id=HS_ANA, email=ACQUIRED, firstName="Ana", lastName="Lima", userId=5999999)
    owner["userIdIncludingInactive"] = 5999999
    hubspot["owners"].append(owner)
    for prefix in (LINKED, UNLINKED):
        opportunity = next(o for o in salesforce["Opportunity"] if o["Name"].startswith(prefix))
        deal = _hubspot_deal(hubspot, prefix)
        opportunity["OwnerId"], deal["properties"]["hubspot_owner_id"] = SF_ANA, HS_ANA
        if prefix == UNLINKED:
            deal["properties"]["salesforce_opportunity_id"] = None
            opportunity["HubSpot_Deal_Id__c"] = None
    deal = copy.deepcopy(_hubspot_deal(hubspot, LINKED))
    deal_id, name = ONLY["hubspot"]
    deal["id"] = deal_id
    deal["properties"].update(
        hs_object_id=deal_id, dealname=name, salesforce_opportunity_id=None, pipedrive_deal_id=None
    )
    hubspot["deals"].append(deal)
    opportunity = copy.deepcopy(
        next(o for o in salesforce["Opportunity"] if o["Name"].startswith(LINKED))
    )
    opportunity_id, name = ONLY["salesforce"]
    opportunity.update(Id=opportunity_id, Name=name, HubSpot_Deal_Id__c=None)
    opportunity["attributes"]["url"] = opportunity["attributes"]["url"][:-18] + opportunity_id
    salesforce["Opportunity"].append(opportunity)
    return {"salesforce": salesforce, "hubspot": hubspot}


def _hubspot_deal(hubspot: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(d for d in hubspot["deals"] if d["properties"]["dealname"].startswith(prefix))


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    started: list[SandboxEnv] = []

    def start(**sections: Any) -> SandboxEnv:
        folder = tmp_path / f"world-{len(started)}"
        store = f"sqlite:///{folder / 'crmsync.db'}"
        env = make_env(folder, _dataset(), store, systems=("salesforce", "hubspot"), **sections)
        started.append(env)
        return env

    yield start
    for env in started:
        env.sandbox.stop()


def _reconcile(env: SandboxEnv, *, dry_run: bool = True) -> Plan:
    with env.runtime() as rt:
        outcome = run_reconcile(rt, dry_run=dry_run, yes=True)
    assert outcome.status is RunStatus.OK, outcome.detail
    return outcome.result.plan


def _owner_differences(plan: Plan) -> list[Any]:
    """The plan's owner changes, conflicts and errors (a change the target cannot take) that
    concern Ana."""
    ana = (PARENT, ACQUIRED)
    changes = [c for c in plan.changes if c.field == "owner_email"]
    conflicts = [c for c in plan.conflicts if c.field == "owner_email"]
    errors = [e for e in plan.errors if e["field"] == "owner_email"]
    return [d for d in [*changes, *conflicts, *errors] if any(e in str(d) for e in ana)]


def _unmatched_names(plan: Plan) -> set[str]:
    return {str(u.get("name")) for u in plan.unmatched}


def test_an_owner_known_by_an_alias_makes_no_owner_difference(start: Any) -> None:
    assert _owner_differences(_reconcile(start())), "without the alias Ana is two owners"

    plan = _reconcile(start(**ALIASES))

    assert not _owner_differences(plan)


def test_twins_owned_by_an_alias_and_its_email_match_on_owner_email(start: Any) -> None:
    without = _unmatched_names(_reconcile(start()))
    assert {n for n in without if n.startswith(UNLINKED)}, without  # two owners: no key match

    plan = _reconcile(start(**ALIASES))

    assert not {n for n in _unmatched_names(plan) if n.startswith(UNLINKED)}, plan.unmatched
    assert not [e for e in plan.errors if e.get("field") == "owner_email"], plan.errors


@pytest.mark.parametrize("source,target", [("hubspot", "salesforce"), ("salesforce", "hubspot")])
def test_a_copy_of_a_deal_owned_by_ana_gets_her_user_in_the_other_crm(
    start: Any, source: str, target: str
) -> None:
    push = {"create_missing": True, "create_from": [source], "targets": [target]}
    env = start(push=push, **ALIASES)

    plan = _reconcile(env, dry_run=False)

    deal_id, name = ONLY[source]
    assert [c for c in plan.creates if c["source"]["id"] == deal_id], plan.errors
    assert _owners_of(env, target, name) == [SF_ANA if target == "salesforce" else HS_ANA]


def _owners_of(env: SandboxEnv, system: str, name: str) -> list[str]:
    """The native owner ids of the deals named `name` in `system`'s emulator."""
    emulator: Any = env.sandbox.servers[system].emulator
    with emulator.lock:
        if system == "salesforce":
            rows = emulator.store.tables["Opportunity"]
            return [o["OwnerId"] for o in rows if o["Name"] == name]
        deals = [d["properties"] for d in emulator.store.live.values()]
        return [p["hubspot_owner_id"] for p in deals if p["dealname"] == name]


def test_an_alias_added_after_a_run_remaps_the_stored_deals(start: Any, caplog: Any) -> None:
    """crmsync ran (and applied) before anyone wrote the alias: the deals stored then hold
    Ana's HubSpot email, and an incremental pull would not read them again."""
    env = start()
    assert _owner_differences(_reconcile(env, dry_run=False))
    document = yaml.safe_load(env.config.read_text())
    document.update(ALIASES)
    env.config.write_text(yaml.safe_dump(document, sort_keys=False))

    with caplog.at_level("WARNING"):
        plan = _reconcile(env)

    assert not _owner_differences(plan)  # the stored HubSpot deals were read again
    assert (
        "hubspot: reading everything: its mapping changed since the last pull (stage map, "
        "funnels, currency, id fields, HubSpot timezone, owner aliases or crmsync's mapper)"
    ) in caplog.text
