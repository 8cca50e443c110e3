"""`owners.aliases`: one salesperson known by another email in another CRM (an acquired
company's HubSpot knows Ana as ana@acme-eu.com, the parent's Salesforce as ana@acme.com) is one
owner: no owner difference between the twins, a match on `owner_email`, a copy owned by her
Salesforce user. Served by the sandboxes, read and written through the official clients."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from sync.plan import Plan
from sync.reconcile_run import run_reconcile
from sync.store_records import RunStatus
from tests.integration.processes import killed, runs
from tests.sandbox_env import SandboxEnv, make_env, run_crmsync

PARENT, ACQUIRED = "ana@acme.com", "ana@acme-eu.com"
ALIASES = {"owners": {"aliases": {ACQUIRED: PARENT}}}
SF_ANA, HS_ANA = "0055g00000000AnAAA", "41699999"
SF_ZOE = "0055g00000000ZoAAA"  # a Salesforce user HubSpot has none for
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

    def start(dataset: dict[str, Any] | None = None, **sections: Any) -> SandboxEnv:
        folder = tmp_path / f"world-{len(started)}"
        store = f"sqlite:///{folder / 'crmsync.db'}"
        world = dataset or _dataset()
        env = make_env(folder, world, store, systems=("salesforce", "hubspot"), **sections)
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
    """The native owner ids of the live deals named `name` in `system`'s emulator."""
    emulator: Any = env.sandbox.servers[system].emulator
    with emulator.lock:
        if system == "salesforce":
            rows = emulator.store.tables["Opportunity"]
            return [o["OwnerId"] for o in rows if o["Name"] == name and not o.get("IsDeleted")]
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


# -- an alias added after runs stored her old email ------------------------------------------
# Both CRMs knew Ana as ana@acme.com, so bases, the audit log and the journal hold that email;
# then her HubSpot login became the acquired company's and ana@acme.com an alias of it.


def _known_by_one_email() -> dict[str, Any]:
    """`_dataset` before the acquisition's logins: HubSpot knows Ana as ana@acme.com too."""
    dataset = _dataset()
    owner = next(o for o in dataset["hubspot"]["owners"] if str(o["id"]) == HS_ANA)
    owner["email"] = PARENT
    return dataset


def _alias_added(env: SandboxEnv) -> None:
    """Ana's HubSpot login becomes ana@acme-eu.com, and the config makes ana@acme.com (the
    email Salesforce and the stored values know her by) an alias of it."""
    emulator: Any = env.sandbox.servers["hubspot"].emulator
    with emulator.lock:
        owner = next(o for o in emulator.store.owners if str(o["id"]) == HS_ANA)
        owner["email"] = ACQUIRED
    document = yaml.safe_load(env.config.read_text())
    document["owners"] = {"aliases": {PARENT: ACQUIRED}}
    env.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _colleague(dataset: dict[str, Any]) -> tuple[str, str, str]:
    """(Salesforce user id, HubSpot owner id, email) of someone both CRMs know, not Ana."""
    user = dataset["salesforce"]["User"][0]
    email = str(user["Email"]).lower()
    owner = next(o for o in dataset["hubspot"]["owners"] if str(o["email"]).lower() == email)
    return str(user["Id"]), str(owner["id"]), email


def _give_hubspot_deal(env: SandboxEnv, name: str, owner_id: str) -> None:
    """A person gives the HubSpot deal named `name` to the owner `owner_id`."""
    emulator: Any = env.sandbox.servers["hubspot"].emulator
    with emulator.lock:
        deal_id = next(
            i for i, d in emulator.store.live.items() if d["properties"]["dealname"] == name
        )
        emulator.store.update(deal_id, {"hubspot_owner_id": owner_id})


def _given_to_ana_after_a_colleague(start: Any) -> tuple[SandboxEnv, str, str]:
    """The linked deal and its HubSpot twin held by a colleague and synced; then a person gives
    the Opportunity to Ana in Salesforce. The world, the twin's name, and the colleague's
    HubSpot owner id."""
    dataset = _known_by_one_email()
    colleague_sf, colleague_hs, _ = _colleague(dataset)
    opportunity = next(
        o for o in dataset["salesforce"]["Opportunity"] if o["Name"].startswith(LINKED)
    )
    opportunity["OwnerId"] = colleague_sf
    name = _hubspot_deal(dataset["hubspot"], LINKED)["properties"]["dealname"]
    _hubspot_deal(dataset["hubspot"], LINKED)["properties"]["hubspot_owner_id"] = colleague_hs
    env = start(dataset)
    _reconcile(env, dry_run=False)
    emulator: Any = env.sandbox.servers["salesforce"].emulator
    with emulator.lock:
        emulator.store.apply(emulator.store.check_update(opportunity["Id"], {"OwnerId": SF_ANA}))
    return env, name, colleague_hs


def _owner_rows(plan: Plan) -> list[Any]:
    changes = [(c.system, c.from_value, c.to_value) for c in plan.changes]
    conflicts = [(c.values, c.reason) for c in plan.conflicts]
    errors = [(e["system"], e["id"]) for e in plan.errors if e["field"] == "owner_email"]
    return [*changes, *conflicts, *errors]


@pytest.mark.parametrize("policy", ["conflict", {"priority": ["salesforce", "hubspot"]}])
def test_an_owner_edit_made_as_an_alias_is_added_propagates(start: Any, policy: Any) -> None:
    """The base holds ana@acme.com; both twins, mapped now, hold ana@acme-eu.com but for the
    HubSpot one a person gave to a colleague: that is the one edit since the last sync."""
    dataset = _known_by_one_email()
    env = start(dataset, policies={"default": "newest", "fields": {"owner_email": policy}})
    _reconcile(env, dry_run=False)
    _, colleague_hs, colleague = _colleague(dataset)
    name = _hubspot_deal(dataset["hubspot"], LINKED)["properties"]["dealname"]
    _give_hubspot_deal(env, name, colleague_hs)
    _alias_added(env)

    plan = _reconcile(env)

    assert _owner_rows(plan) == [("salesforce", ACQUIRED, colleague)]


def test_an_alias_added_with_nothing_edited_plans_nothing_new(start: Any) -> None:
    """A person gave the Salesforce twin to Zoe, whom HubSpot has no user for: the HubSpot twin
    kept Ana (ana@acme.com), and its base marks that as no edit of HubSpot's. Read through the
    alias added since, that mark still tells her (ana@acme-eu.com now) for no edit."""
    dataset = _known_by_one_email()
    zoe = copy.deepcopy(next(u for u in dataset["salesforce"]["User"] if u["Id"] == SF_ANA))
    zoe.update(Id=SF_ZOE, Name="Zoe Park", Email="zoe@acme.com")
    zoe["attributes"]["url"] = zoe["attributes"]["url"].replace(SF_ANA, SF_ZOE)
    dataset["salesforce"]["User"].append(zoe)
    env = start(dataset)
    _reconcile(env, dry_run=False)
    opportunity = next(
        o for o in dataset["salesforce"]["Opportunity"] if o["Name"].startswith(LINKED)
    )
    emulator: Any = env.sandbox.servers["salesforce"].emulator
    with emulator.lock:
        emulator.store.apply(emulator.store.check_update(opportunity["Id"], {"OwnerId": SF_ZOE}))
    _reconcile(env, dry_run=False)  # HubSpot left out: no user with zoe@acme.com
    before = _reconcile(env)
    assert [e["id"] for e in before.errors if e["field"] == "owner_email"], before.errors
    assert not before.changes and not before.conflicts, _owner_rows(before)
    _alias_added(env)

    plan = _reconcile(env)

    assert _owner_rows(plan) == _owner_rows(before)
    assert not plan.changes, plan.changes


def test_rollback_of_a_run_before_the_alias_restores_the_owner(start: Any) -> None:
    """A run gave the HubSpot twin to Ana (ana@acme.com, as the audit says) after a person did
    so in Salesforce; her email became an alias since. The deal still holds the user that run
    wrote: its rollback gives it back to the colleague, with no drift."""
    env, name, colleague_hs = _given_to_ana_after_a_colleague(start)
    run = _reconcile(env, dry_run=False)
    assert _owners_of(env, "hubspot", name) == [HS_ANA]
    _alias_added(env)

    rolled = run_crmsync("rollback", run.run_id, "--config", str(env.config), "--apply", "--yes")

    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert _owners_of(env, "hubspot", name) == [colleague_hs]


def test_rollback_of_a_run_before_the_alias_deletes_the_copy_it_made(start: Any) -> None:
    """The copy of Ana's HubSpot-only deal was created owned by ana@acme.com (as the audit
    says), an alias since: it still holds what it was created with."""
    push = {"create_missing": True, "create_from": ["hubspot"], "targets": ["salesforce"]}
    env = start(_known_by_one_email(), push=push)
    run = _reconcile(env, dry_run=False)
    _, name = ONLY["hubspot"]
    assert _owners_of(env, "salesforce", name) == [SF_ANA]
    _alias_added(env)

    rolled = run_crmsync("rollback", run.run_id, "--config", str(env.config), "--apply", "--yes")

    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert _owners_of(env, "salesforce", name) == []


def test_a_deletion_spreads_to_a_twin_whose_owner_email_became_an_alias(start: Any) -> None:
    dataset = _known_by_one_email()
    env = start(dataset, push={"propagate_deletes": True})
    _reconcile(env, dry_run=False)
    deal_id = _hubspot_deal(dataset["hubspot"], LINKED)["id"]
    emulator: Any = env.sandbox.servers["hubspot"].emulator
    with emulator.lock:
        emulator.store.archive(deal_id)  # a person deletes the HubSpot twin
    _alias_added(env)

    plan = _reconcile(env, dry_run=False)

    assert [d["propagate"] for d in plan.deleted], plan.deleted
    name = next(
        o["Name"] for o in dataset["salesforce"]["Opportunity"] if o["Name"].startswith(LINKED)
    )
    assert _owners_of(env, "salesforce", name) == []


def _report_owner_mismatches(env: SandboxEnv) -> list[Any]:
    """The report's mismatch rows (it reads no CRM) that concern Ana's owner emails."""
    done = run_crmsync("report", "--config", str(env.config), "--format", "json")
    assert done.returncode in (0, 3), done.stderr
    rows = json.loads(done.stdout)["cross_system"]["mismatches"]
    ana = (PARENT, ACQUIRED)
    return [m for m in rows if m["field"] == "owner_email" and any(e in str(m) for e in ana)]


def test_a_report_before_the_next_pull_reads_the_stored_deals_through_an_alias(
    start: Any,
) -> None:
    """The HubSpot deals were stored holding ana@acme-eu.com, before anyone wrote the alias;
    the report, which pulls nothing, shows Ana's twins as one owner's all the same."""
    env = start()
    _reconcile(env)
    assert _report_owner_mismatches(env)
    document = yaml.safe_load(env.config.read_text())
    document.update(ALIASES)
    env.config.write_text(yaml.safe_dump(document, sort_keys=False))

    assert _report_owner_mismatches(env) == []


HUBSPOT_UPDATE = "POST /crm/objects/2026-09/deals/batch/update"


def test_a_write_left_in_doubt_before_the_alias_is_found_written_and_rolled_back(
    start: Any,
) -> None:
    """A run killed once HubSpot took its owner write (ana@acme.com, as journaled) left it in
    doubt; Ana's email became an alias since. Her rollback of that run settles it first: the
    deal holds the user written, so the write is that run's, and is undone."""
    env, name, colleague_hs = _given_to_ana_after_a_colleague(start)
    killed(env, "hubspot", HUBSPOT_UPDATE, "reconcile", "--yes")
    assert _owners_of(env, "hubspot", name) == [HS_ANA]
    run_id = next(r.id for r in runs(env) if r.kind.value == "reconcile")
    _alias_added(env)

    rolled = run_crmsync("rollback", run_id, "--config", str(env.config), "--apply", "--yes")

    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert _owners_of(env, "hubspot", name) == [colleague_hs]


# -- leads to owners.aliases: the no-user error, and `check` ----------------------------------

SF_TO_HS = {"create_missing": True, "create_from": ["salesforce"], "targets": ["hubspot"]}


def _plan_errors(env: SandboxEnv, *, format: str) -> tuple[str, list[dict[str, Any]]]:
    """`crmsync reconcile --dry-run` in `format`: its output, and the plan's errors (json)."""
    args = ("reconcile", "--config", str(env.config), "--dry-run", "--format", format)
    done = run_crmsync(*args)
    assert done.returncode in (0, 3), done.stdout + done.stderr
    return done.stdout, json.loads(done.stdout)["errors"] if format == "json" else []


def test_a_copy_for_an_owner_known_at_another_domain_names_that_email_and_the_alias(
    start: Any,
) -> None:
    """No aliases yet: Ana's Salesforce deal cannot be copied into HubSpot, which knows her as
    ana@acme-eu.com. The error names that email and the alias that would join them."""
    env = start(push=SF_TO_HS)

    _, errors = _plan_errors(env, format="json")
    table, _ = _plan_errors(env, format="table")

    deal_id = ONLY["salesforce"][0]
    assert [e["reason"] for e in errors if e["id"] == deal_id] == [
        f"no copy can be made in hubspot: no hubspot user with email {PARENT} (hubspot has "
        f"{ACQUIRED}: if that is the same person, add owners.aliases: {{{ACQUIRED}: {PARENT}}})"
        ": add one with that email in hubspot (owners are matched by email), or give the deal "
        "an owner hubspot has"
    ], errors
    # the table folds the reason in its last column: its cells, joined, hold it whole
    reasons = "".join(line.split("│")[-2] for line in table.splitlines() if "│" in line)
    assert f"(hubspothas{ACQUIRED}:" in "".join(reasons.split()), table


def test_the_no_user_error_names_several_namesakes_counted_the_first_by_email(
    start: Any,
) -> None:
    dataset = _dataset()
    other = copy.deepcopy(next(o for o in dataset["hubspot"]["owners"] if str(o["id"]) == HS_ANA))
    other.update(id="41699998", email="Ana@Acme-Asia.com", userId=5999998)
    other["userIdIncludingInactive"] = 5999998
    dataset["hubspot"]["owners"].append(other)
    env = start(dataset, push=SF_TO_HS)

    _, errors = _plan_errors(env, format="json")

    deal_id = ONLY["salesforce"][0]
    first = "ana@acme-asia.com"
    assert [e["reason"] for e in errors if e["id"] == deal_id] == [
        f"no copy can be made in hubspot: no hubspot user with email {PARENT} (hubspot has 2 "
        f"users named ana at other domains, the first {first}: if that is the same person, add "
        f"owners.aliases: {{{first}: {PARENT}}}): add one with that email in hubspot (owners "
        "are matched by email), or give the deal an owner hubspot has"
    ], errors


def _check(env: SandboxEnv, aliases: dict[str, str]) -> tuple[str, list[str]]:
    """`crmsync check` under `aliases`: its output, and its warnings on them."""
    document = yaml.safe_load(env.config.read_text())
    document["owners"] = {"aliases": aliases}
    env.config.write_text(yaml.safe_dump(document, sort_keys=False))
    done = run_crmsync("check", "--config", str(env.config))
    assert done.returncode == 0, done.stdout + done.stderr  # warnings, no problem
    return done.stdout, [line for line in done.stdout.splitlines() if "owners.aliases." in line]


def _line_of(env: SandboxEnv, key: str) -> int:
    lines = env.config.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.strip().startswith(key))


def test_check_warns_of_an_alias_no_crm_has_a_user_for_at_its_line(start: Any) -> None:
    env = start()
    out, warnings = _check(env, {ACQUIRED: PARENT})
    assert not warnings, out
    assert "owners: 1 alias(es) (owners.aliases)" in out, out

    typo = "ana.lim@acme-eu.com"
    out, warnings = _check(env, {typo: PARENT})

    assert warnings == [
        f"warning: crmsync.yaml:{_line_of(env, typo)}: owners.aliases.{typo}: no instance "
        "(salesforce, hubspot) has a user with this email: the alias can never match anything; "
        "correct it to the email a CRM knows the person by, or leave it out"
    ], out


def test_check_warns_of_an_email_an_alias_stands_for_no_crm_has_a_user_for(
    start: Any,
) -> None:
    env = start()

    out, warnings = _check(env, {ACQUIRED: "ana@acme.co"})

    assert warnings == [
        f"warning: crmsync.yaml:{_line_of(env, ACQUIRED)}: owners.aliases.{ACQUIRED}: no "
        "instance (salesforce, hubspot) has a user with ana@acme.co, the email it stands for: "
        "copies and owner changes giving a deal to it fail in each CRM without a user of the "
        "alias; correct it, or add a user with that email"
    ], out


def test_check_judges_no_alias_while_a_crms_users_cannot_be_read(start: Any) -> None:
    """HubSpot, the only CRM with a user of the alias, rejects the token: its problem is said,
    and the alias is not called unmatched on Salesforce's users alone."""
    env = start(**ALIASES)
    document = yaml.safe_load(env.config.read_text())
    document["systems"]["hubspot"]["credentials"]["access_token"] = "wrong-token"
    env.config.write_text(yaml.safe_dump(document, sort_keys=False))

    done = run_crmsync("check", "--config", str(env.config))

    assert done.returncode == 2, done.stdout + done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("problem:")], done.stdout
    assert "owners.aliases." not in done.stdout, done.stdout
