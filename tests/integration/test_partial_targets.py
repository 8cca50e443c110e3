"""A change one target cannot take (its stage map lacks the stage) goes to the targets that can,
and the next run neither reverts it nor forgets it: the skipped target is not mistaken for a
system that changed since the last sync."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml

from config import StaleStageWriteWarning
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
    for ids in world.members().values():
        if len(ids) < 3:
            continue
        stage = hubspot.store.live[ids["hubspot"]]["properties"]["dealstage"]
        if stage in ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled"):
            return ids
    raise AssertionError("the generated world has no open three-system entity in HubSpot")


def _left_out_of_negotiation(world: World) -> tuple[dict[str, str], Any, dict[str, Any]]:
    """Converge; drop HubSpot's negotiation stages; a user moves the Salesforce deal of an
    open three-system entity to negotiation; reconcile with apply. (ids, the Salesforce
    emulator, the config document as it was.)"""
    _reconcile(world, dry_run=False)
    assert not _reconcile(world, dry_run=True).changes  # converged

    original = yaml.safe_load(world.config.read_text())
    document = yaml.safe_load(world.config.read_text())
    for native in NEGOTIATION_IN_HUBSPOT:
        del document["systems"]["hubspot"]["stage_map"]["default"][native]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    ids = _open_entity_in_all_three(world)
    salesforce: Any = world.sandbox.servers["salesforce"].emulator
    _move(salesforce, ids["salesforce"], "Negotiation/Review")
    # init chose one of the dropped stages to write negotiation in: that entry is ignored
    stale = r"systems\.hubspot\.stage_write\.default\.negotiation: .* there\); ignored$"
    with pytest.warns(StaleStageWriteWarning, match=stale):
        applied = _reconcile(world, dry_run=False)
    stage_changes = {(c.system, c.id, c.to_value) for c in applied.changes if c.field == "stage"}
    assert ("pipedrive", ids["pipedrive"], "negotiation") in stage_changes
    assert _reported(applied, "hubspot", ids["hubspot"])
    return ids, salesforce, original


def _move(salesforce: Any, deal_id: str, stage: str) -> None:
    with salesforce.lock:  # a user edits the deal in Salesforce
        store = salesforce.store
        store.apply(store.check_update(deal_id, {"StageName": stage}))


def _reported(plan: Plan, system: str, deal_id: str) -> bool:
    return any(e["system"] == system and e["id"] == deal_id for e in plan.errors)


def _stage_changes(plan: Plan) -> dict[tuple[str, str], Any]:
    return {(c.system, c.id): c.to_value for c in plan.changes if c.field == "stage"}


@pytest.mark.filterwarnings("ignore::config.StaleStageWriteWarning")
def test_a_stage_one_target_cannot_take_is_neither_reverted_nor_dropped(
    small_world: World,
) -> None:
    ids, salesforce, _ = _left_out_of_negotiation(small_world)

    again = _reconcile(small_world, dry_run=True)
    assert not {("salesforce", ids["salesforce"]), ("pipedrive", ids["pipedrive"])} & set(
        _stage_changes(again)
    ), "the next run reverted the user's change"
    assert _reported(again, "hubspot", ids["hubspot"])

    # The user moves it back: a change of its own, and it spreads to the others.
    _move(salesforce, ids["salesforce"], "Value Proposition")
    back = _stage_changes(_reconcile(small_world, dry_run=True))
    assert back.get(("pipedrive", ids["pipedrive"])) == "proposal"
    assert ("salesforce", ids["salesforce"]) not in back


@pytest.mark.filterwarnings("ignore::config.StaleStageWriteWarning")
def test_a_left_out_target_gets_the_agreed_value_once_it_can_hold_it(
    small_world: World,
) -> None:
    ids, _, original = _left_out_of_negotiation(small_world)
    small_world.config.write_text(yaml.safe_dump(original, sort_keys=False))  # map restored

    plan = _reconcile(small_world, dry_run=True)
    assert _stage_changes(plan) == {("hubspot", ids["hubspot"]): "negotiation"}
    assert not _reported(plan, "hubspot", ids["hubspot"])


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
