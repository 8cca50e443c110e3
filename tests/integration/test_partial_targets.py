"""A change one target cannot take (its stage map lacks the stage) goes to the targets that can,
and the next run neither reverts it nor forgets it: the skipped target is not mistaken for a
system that changed since the last sync."""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml

from mapping.model import Ref
from sync.plan import Plan
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from sync.store_records import RunStatus
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World

NEGOTIATION_IN_HUBSPOT = ("decisionmakerboughtin", "contractsent")
SYSTEMS_BY_PRIORITY = ("salesforce", "pipedrive", "hubspot")


def _reconcile(world: World, *, dry_run: bool) -> Plan:
    with open_runtime(str(world.config)) as rt:
        outcome = run_reconcile(rt, dry_run=dry_run, yes=True)
    assert outcome.status is RunStatus.OK, outcome.detail
    return outcome.result.plan


def _open_entity_in_all_three(world: World) -> dict[str, str]:
    """Instance -> id of a linked entity, open everywhere, before negotiation in HubSpot."""
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with open_runtime(str(world.config), connect=False) as rt:
        links = rt.store.links()
    members: dict[str, dict[str, str]] = {}
    for (instance, deal_id), entity in links.items():
        members.setdefault(entity, {})[instance] = deal_id
    for entity in sorted(members):
        ids = members[entity]
        if len(ids) < 3:
            continue
        stage = hubspot.store.live[ids["hubspot"]]["properties"]["dealstage"]
        if stage in ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled"):
            return ids
    raise AssertionError("the generated world has no open three-system entity in HubSpot")


def test_a_stage_one_target_cannot_take_is_neither_reverted_nor_dropped(
    small_world: World,
) -> None:
    _reconcile(small_world, dry_run=False)
    assert not _reconcile(small_world, dry_run=True).changes  # converged

    # HubSpot's default pipeline loses its negotiation stages: it cannot take 'negotiation'.
    document = yaml.safe_load(small_world.config.read_text())
    for native in NEGOTIATION_IN_HUBSPOT:
        del document["systems"]["hubspot"]["stage_map"]["default"][native]
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    ids = _open_entity_in_all_three(small_world)
    salesforce: Any = small_world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:  # a user moves the Salesforce deal on
        store = salesforce.store
        store.apply(store.check_update(ids["salesforce"], {"StageName": "Negotiation/Review"}))

    applied = _reconcile(small_world, dry_run=False)
    stage_changes = {(c.system, c.id, c.to_value) for c in applied.changes if c.field == "stage"}
    assert ("pipedrive", ids["pipedrive"], "negotiation") in stage_changes
    assert any(e["system"] == "hubspot" and e["id"] == ids["hubspot"] for e in applied.errors)

    again = _reconcile(small_world, dry_run=True)
    reverted = [
        c
        for c in again.changes
        if c.field == "stage" and Ref(c.system, c.id) in {Ref("salesforce", ids["salesforce"]),
                                                          Ref("pipedrive", ids["pipedrive"])}
    ]  # fmt: skip
    assert reverted == [], "the next run reverted the user's change"
    assert any(e["system"] == "hubspot" and e["id"] == ids["hubspot"] for e in again.errors)

    # The user moves it back: a change of its own, and it spreads to the others.
    with salesforce.lock:
        store = salesforce.store
        store.apply(store.check_update(ids["salesforce"], {"StageName": "Value Proposition"}))
    back = _reconcile(small_world, dry_run=True)
    stage_changes = {(c.system, c.id, c.to_value) for c in back.changes if c.field == "stage"}
    assert ("pipedrive", ids["pipedrive"], "proposal") in stage_changes
    assert not any(c.system == "salesforce" and c.id == ids["salesforce"] for c in back.changes)


def test_a_field_all_systems_changed_alike_keeps_the_base_of_every_other_field(
    small_world: World,
) -> None:
    """Agreement on one field (all three CRMs got the same new amount) is recorded into the
    entity's base without dropping the other fields' bases: a later one-sided change must
    still read as "changed in that system", not as a first sync the policy decides."""
    document = yaml.safe_load(small_world.config.read_text())
    document["policies"]["fields"]["close_date"] = {"priority": list(SYSTEMS_BY_PRIORITY)}
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    _reconcile(small_world, dry_run=False)
    assert not _reconcile(small_world, dry_run=True).changes  # converged

    ids = _open_entity_in_all_three(small_world)
    for system, deal_id in ids.items():  # the same edit in every CRM: agreement
        bump_amounts(small_world, system, [deal_id], step=5)  # type: ignore[arg-type]
    salesforce: Any = small_world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:  # and, in the same night, a stage change in Salesforce only
        store = salesforce.store
        store.apply(store.check_update(ids["salesforce"], {"StageName": "Negotiation/Review"}))
    fields = {c.field for c in _reconcile(small_world, dry_run=False).changes}
    assert "stage" in fields and "amount" not in fields  # (Salesforce's probability follows)

    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:  # then one user edits the close date in HubSpot only
        hubspot.store.update(ids["hubspot"], {"closedate": "2031-03-14"})
    plan = _reconcile(small_world, dry_run=True)
    close = {(c.system, c.id): c.to_value for c in plan.changes if c.field == "close_date"}
    edited = date(2031, 3, 14)
    assert close == {
        ("salesforce", ids["salesforce"]): edited,
        ("pipedrive", ids["pipedrive"]): edited,
    }, "the HubSpot edit must spread, not be overruled by priority as on a first sync"
