"""A company moving Pipedrive into Salesforce or HubSpot gets each copy under the account its
deal's organization names (an Opportunity under that Account, a HubSpot deal associated with
that company), not a copy of no account that someone must re-parent by hand. crmsync never
makes an account: none or several of the name, the copy has none and the apply says why.

The same scenarios against each CRM; what differs between them is spelt out in its `Target`,
and what only one of them does is tested in its own file
(test_salesforce_copies_go_under_their_account.py, test_hubspot_copies_go_with_their_company.py).
Everything through the CLI, against the sandboxes over HTTP; the sandbox's data is set up
through its stores, as a person would have edited it in the CRM."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.hubspot_company_lookup import company_calls
from connectors.salesforce_accounts import account_calls
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.copies import (
    add_hubspot_companies,
    add_salesforce_accounts,
    apply_plan,
    create_of,
    emulator,
    hubspot_companies,
    hubspot_copy_companies,
    make_copies_into,
    one_copy_from_pipedrive,
    plan_of,
    result_of,
    salesforce_accounts,
    salesforce_copy,
)
from tests.plans import signed
from tests.sandbox_env import run_crmsync


@dataclass(frozen=True)
class Target:
    """A CRM copies are made in, and how it differs from the others here."""

    system: str
    noun: str  # what it calls an account, as its messages do
    nouns: str
    a_noun: str
    add: Callable[..., list[str]]  # (world, *names): the ids of the accounts added
    count: Callable[[World], int]
    filed: Callable[[World, str], object]  # where the copy of an entity is filed
    under: Callable[[str | None], object]  # `filed` for a copy under that account, or none
    deleted: Callable[[World, str], bool]  # the copy of that id, rolled back
    quoted: tuple[str, str]  # a name with quotes the lookup escapes, and as the CRM holds it
    batch: int  # the most records a write request takes
    lookups: Callable[[Iterable[str]], int]  # the connector's own count of a lookup's calls
    call: str  # the run's name for those calls


def _salesforce_deleted(world: World, copy_id: str) -> bool:
    return bool(emulator(world, "salesforce").store.by_id[copy_id]["IsDeleted"] is True)


def _hubspot_deleted(world: World, copy_id: str) -> bool:
    return copy_id in emulator(world, "hubspot").store.archived


SALESFORCE = Target(
    system="salesforce",
    noun="Account",
    nouns="Accounts",
    a_noun="an Account",
    add=add_salesforce_accounts,
    count=lambda world: len(salesforce_accounts(world)),
    filed=lambda world, entity: salesforce_copy(world, entity).get("AccountId"),
    under=lambda account: account,
    deleted=_salesforce_deleted,
    quoted=("O'Brien & Co", "O'Brien & Co"),
    batch=200,
    lookups=account_calls,
    call="find accounts",
)

HUBSPOT = Target(
    system="hubspot",
    noun="company",
    nouns="companies",
    a_noun="a company",
    add=add_hubspot_companies,
    count=hubspot_companies,
    filed=hubspot_copy_companies,
    under=lambda company: {company: True} if company else {},  # its primary one
    deleted=_hubspot_deleted,
    quoted=('O\'Brien & Co "Ltd" \\ 100%', 'O\'Brien & Co "Ltd" \\ 100%'.upper()),
    batch=100,
    lookups=company_calls,
    call="find companies",
)

TARGETS = pytest.mark.parametrize("target", [SALESFORCE, HUBSPOT], ids=lambda t: t.system)


@TARGETS
def test_a_copy_goes_under_the_one_account_of_its_name_and_reads_it_back(
    small_world: World, tmp_path: Path, target: Target
) -> None:
    world = small_world
    create, saved = one_copy_from_pipedrive(world, tmp_path, target.system, "Nimbus Ventures")
    [account_id] = target.add(world, "Nimbus Ventures")
    planned = create_of(plan_of(world, saved), create)
    assert planned["account"] == {
        "by": "account",
        "name": "Nimbus Ventures",
        "id": None,
        "found": [account_id],
    }
    accounts = target.count(world)
    applied = apply_plan(world, saved)
    assert target.filed(world, create["entity"]) == target.under(account_id)
    assert result_of(applied, world, create["entity"], target.system)["reason"] is None
    # read back on the next pull: the same account as its source, so nothing to write
    again = plan_of(world, tmp_path / "again.json")
    copy_id = world.members()[create["entity"]][target.system]
    with open_runtime(str(world.config), connect=False) as rt:
        pulled = rt.store.get_deals(target.system, [copy_id])[copy_id]
    assert pulled["extra"]["account"] == "Nimbus Ventures"
    assert pulled["extra"]["account_id"] == account_id
    assert [c for c in again["changes"] if c["id"] == copy_id] == []
    assert create["entity"] not in [c["entity"] for c in again["creates"]]
    # rollback deletes the copy, never the account
    undone = run_crmsync(
        "rollback", applied["run_id"], "--config", str(world.config), "--apply", "--yes"
    )
    assert undone.returncode == 0, undone.stderr
    assert target.deleted(world, copy_id)
    assert target.count(world) == accounts


@TARGETS
def test_a_copy_whose_account_name_no_account_bears_gets_none_and_the_apply_says_so(
    small_world: World, tmp_path: Path, target: Target
) -> None:
    world = small_world
    create, saved = one_copy_from_pipedrive(world, tmp_path, target.system, "Unknown Labs")
    planned = create_of(plan_of(world, saved), create)
    assert planned["account"] == {"by": "account", "name": "Unknown Labs", "id": None, "found": []}
    accounts = target.count(world)
    applied = apply_plan(world, saved)
    assert target.filed(world, create["entity"]) == target.under(None)
    result = result_of(applied, world, create["entity"], target.system)
    assert result["outcome"] == "applied"
    assert result["reason"] == (
        f"no {target.noun} is named 'Unknown Labs': created without {target.a_noun}"
    )
    assert target.count(world) == accounts  # none made


@TARGETS
def test_an_account_name_two_accounts_bear_is_not_guessed_and_the_apply_says_so(
    small_world: World, tmp_path: Path, target: Target
) -> None:
    world = small_world
    create, saved = one_copy_from_pipedrive(world, tmp_path, target.system, "Twin Holdings")
    twins = target.add(world, "Twin Holdings", "TWIN HOLDINGS")  # the lookup ignores case
    create_of(plan_of(world, saved), create)
    applied = apply_plan(world, saved)
    assert target.filed(world, create["entity"]) == target.under(None)
    result = result_of(applied, world, create["entity"], target.system)
    assert result["outcome"] == "applied"
    assert result["reason"] == (
        f"2 {target.nouns} are named 'Twin Holdings' ({', '.join(sorted(twins))}): not guessed, "
        f"created without {target.a_noun}"
    )


@TARGETS
def test_an_account_name_with_quotes_is_escaped_and_found(
    small_world: World, tmp_path: Path, target: Target
) -> None:
    world = small_world
    name, held = target.quoted
    create, saved = one_copy_from_pipedrive(world, tmp_path, target.system, name)
    [account_id] = target.add(world, held)
    create_of(plan_of(world, saved), create)
    applied = apply_plan(world, saved)
    assert target.filed(world, create["entity"]) == target.under(account_id)
    assert result_of(applied, world, create["entity"], target.system)["reason"] is None


@TARGETS
def test_the_dry_run_names_each_copys_account_and_counts_its_lookups_as_the_apply_does(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Target
) -> None:
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    make_copies_into(world, target.system)
    out = tmp_path / "plan.json"
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out)
    )
    assert table.returncode == 0, table.stderr
    plan = json.loads(out.read_text())
    copies = [c for c in plan["creates"] if c["system"] == target.system]
    accounts = [c["account"] for c in copies if c["account"]["by"] == "account"]
    named = [a["name"] for a in accounts]
    assert named
    shown = " ".join(table.stdout.split())
    for account in accounts:
        name, found = account["name"], account["found"]
        said = (
            f"{target.noun} {name} ({found[0]})" if found else f"no {target.noun} is named {name!r}"
        )
        assert len(found) < 2 and said in shown
    distinct = {n.casefold(): n for n in named}
    assert plan["summary"]["accounts_by_system"] == {target.system: len(distinct)}
    assert f"{target.nouns} to find by name (never made): {target.system} {len(distinct)}" in shown
    batches = -(-plan["summary"]["records_to_update"].get(target.system, 0) // target.batch)
    lookups = target.lookups(distinct.values())
    writes = batches + -(-len(copies) // target.batch)
    assert plan["summary"]["api_calls"][target.system] == writes + lookups
    with open_runtime(str(world.config), connect=False) as rt:
        dry = rt.store.runs.recent(1)[0]
    assert dry.calls[target.system][target.call] == lookups  # as the apply looks them up
    applied = apply_plan(world, out)
    with open_runtime(str(world.config), connect=False) as rt:
        run = rt.store.runs.get(applied["run_id"])
    assert run is not None and run.calls[target.system][target.call] == lookups


@TARGETS
def test_a_plan_saved_before_creates_named_an_account_applies_without_one(
    small_world: World, tmp_path: Path, target: Target
) -> None:
    """Its copies are filed under no account, as the plan a person reviewed then said."""
    world = small_world
    create, saved = one_copy_from_pipedrive(world, tmp_path, target.system, "Reviewed Ltd")
    target.add(world, "Reviewed Ltd")
    plan = plan_of(world, saved)
    assert create_of(plan, create)["account"]["name"] == "Reviewed Ltd"  # what a plan names now
    for item in plan["creates"]:
        item.pop("account", None)
    plan["summary"].pop("accounts_by_system", None)
    saved.write_text(json.dumps(signed(plan)))
    applied = apply_plan(world, saved)
    assert target.filed(world, create["entity"]) == target.under(None)
    assert result_of(applied, world, create["entity"], target.system)["reason"] is None
    with open_runtime(str(world.config), connect=False) as rt:
        run = rt.store.runs.get(applied["run_id"])
    assert run is not None and target.call not in run.calls[target.system]
