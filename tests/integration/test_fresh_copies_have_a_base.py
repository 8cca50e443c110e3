"""A copy `push.create_missing` made agrees with its source from the start: the values it was
created with are the entity's base. So an edit a person makes to the fresh copy before the next
reconcile is a change made there since the last sync, which spreads, and not a first sync that
the field's policy decides (a `priority` ranking the source first would take the edit back; the
default `conflict` would only report it)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import yaml

from sync.plan import Plan
from sync.plan_json import plan_to_json
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from sync.store_records import RunStatus
from tests.integration.conftest import World
from tests.integration.crm_users import Editors
from tests.sandbox_env import run_crmsync


def _reconcile(world: World, *, dry_run: bool) -> Plan:
    with open_runtime(str(world.config)) as rt:
        outcome = run_reconcile(rt, dry_run=dry_run, yes=True)
    assert outcome.status is RunStatus.OK, outcome.detail
    return outcome.result.plan


def _changes(plan: Plan, field: str) -> dict[tuple[str, str], Any]:
    return {(c.system, c.id): c.to_value for c in plan.changes if c.field == field}


def test_an_edit_of_a_fresh_copy_spreads_instead_of_being_decided_as_a_first_sync(
    small_world: World,
) -> None:
    document = yaml.safe_load(small_world.config.read_text())
    document["push"]["create_missing"] = True
    document["policies"]["fields"]["close_date"] = {
        "priority": ["salesforce", "pipedrive", "hubspot"]
    }
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    migration = _reconcile(small_world, dry_run=False)
    copied: dict[str, dict[str, str]] = {}  # entity -> {instance: id} of its copies
    sources: dict[str, tuple[str, str]] = {}
    for create in migration.creates:
        sources[create["entity"]] = (create["source"]["system"], create["source"]["id"])
        copied.setdefault(create["entity"], {})[create["system"]] = ""
    members = small_world.members()
    lone = [e for e, ids in members.items() if e in copied and len(copied[e]) == 2]
    assert lone, "the generated world has no deal copied into both other CRMs"
    entity = lone[0]
    ids = {**members[entity], sources[entity][0]: sources[entity][1]}
    edited_in = sorted(copied[entity])[0]

    edited = date(2031, 5, 17)
    Editors(small_world, seed=1).set_value(edited_in, ids[edited_in], "close_date", edited)
    plan = _reconcile(small_world, dry_run=True)
    close = _changes(plan, "close_date")
    assert (edited_in, ids[edited_in]) not in close, "the edit of the fresh copy was taken back"
    others = {(system, i): edited for system, i in ids.items() if system != edited_in}
    assert {ref: close.get(ref) for ref in others} == others, f"source {sources[entity]}"
    assert not [c for c in plan.conflicts if c.entity == entity]


def test_a_copy_takes_the_values_the_policies_decide_not_those_of_the_first_instance(
    small_world: World,
) -> None:
    """A deal two CRMs hold and a third lacks is copied with the value the field's policy
    decides where the two disagree (Salesforce's amount under `source_of_truth: salesforce`),
    not with the first instance's by name (Pipedrive's), which the next run would only correct."""
    document = yaml.safe_load(small_world.config.read_text())
    document["push"]["create_missing"] = True
    document["policies"]["fields"]["amount"] = {"source_of_truth": "salesforce"}
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    planned = _reconcile(small_world, dry_run=True)
    members = small_world.members()
    pairs = [
        (create["entity"], members[create["entity"]])
        for create in planned.creates
        if create["system"] == "hubspot"
        and {"salesforce", "pipedrive"} <= set(members.get(create["entity"], {}))
    ]
    assert pairs, "the generated world has no Salesforce + Pipedrive deal missing in HubSpot"
    entity, ids = pairs[0]
    Editors(small_world, seed=1).set_value(
        "salesforce", ids["salesforce"], "amount", Decimal(77777)
    )

    planned = _reconcile(small_world, dry_run=True)  # reviewed, then applied as saved
    create = next(c for c in planned.creates if c["entity"] == entity)
    assert create["values"]["amount"] == Decimal(77777)
    saved = small_world.config.parent / "plan.json"
    saved.write_text(json.dumps(plan_to_json(planned)))
    applied = run_crmsync("apply", str(saved), "--config", str(small_world.config), "--yes")
    assert applied.returncode == 0, applied.stderr
    copy = small_world.members()[entity]["hubspot"]
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    assert Decimal(hubspot.store.live[copy]["properties"]["amount"]) == Decimal(77777)
    assert ("hubspot", copy) not in _changes(_reconcile(small_world, dry_run=True), "amount")


@pytest.mark.parametrize(
    ("policy", "targets"),
    [
        ("newest", ["salesforce", "hubspot"]),
        ("conflict", ["salesforce", "hubspot"]),
        # Pipedrive picks an owner for its copy too: each copy's pick is marked, not the last
        ("newest", ["salesforce", "hubspot", "pipedrive"]),
    ],
)
def test_an_owner_the_target_picked_for_an_ownerless_copy_is_not_spread_as_an_edit(
    small_world: World, policy: str, targets: list[str]
) -> None:
    """Salesforce gives a copy of an ownerless HubSpot deal an owner of its own choosing (the
    API user): that value is no edit a person made there, as for a copy into an entity with a
    base (`picked`). It was left to the field's policy as on a first sync: `newest` took
    crmsync's own create for the latest edit and handed the HubSpot deal to Salesforce's API
    user, `conflict` reported it; after a migration, the next reconcile was never clean."""
    document = yaml.safe_load(small_world.config.read_text())
    document["push"]["create_missing"] = True
    document["policies"]["fields"]["owner_email"] = policy
    document["push"]["targets"] = targets
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    planned = _reconcile(small_world, dry_run=True)
    members = small_world.members()
    source = next(  # a deal HubSpot alone holds
        c["source"]["id"]
        for c in planned.creates
        if c["system"] == "salesforce" and c["source"]["system"] == "hubspot"
        and set(members.get(c["entity"], {})) <= {"hubspot"}
    )  # fmt: skip
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:  # nobody owns the deal in HubSpot
        hubspot.store.update(source, {"hubspot_owner_id": ""})

    applied = _reconcile(small_world, dry_run=False)
    create = next(c for c in applied.creates if c["source"]["id"] == source)
    copy = small_world.members()[create["entity"]]["salesforce"]
    plan = _reconcile(small_world, dry_run=True)
    spread = [c for c in plan.changes if c.field == "owner_email" and c.entity == create["entity"]]
    assert not spread, "a pick spread, or was taken back"
    conflicts = [c for c in plan.conflicts if c.field == "owner_email"]
    assert not [c for c in conflicts if ("hubspot", source, None) in c.values], conflicts

    editors = Editors(small_world, seed=1)  # a person gives the copy an owner: an edit
    salesforce: Any = small_world.sandbox.servers["salesforce"].emulator
    pick = salesforce.store.by_id[copy]["OwnerId"]
    owner = next(o for o in sorted(editors.owners) if editors.owners[o]["salesforce"] != pick)
    editors.set_value("salesforce", copy, "owner_email", owner)
    edited = _changes(_reconcile(small_world, dry_run=True), "owner_email")
    assert edited.get(("hubspot", source)) == owner, "the edit of the copy did not spread"
