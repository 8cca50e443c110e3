"""A `rollback --apply` stopped after one CRM's batch (its PostgreSQL lock lost with its
session, or kill -9) and run again: the amounts the stopped run restored are `done before` for
the rerun, which reads those records no more. They still become the bases, as an uninterrupted
rollback's do, so the next reconcile plans the user's edit the rolled-back run carried again,
instead of taking the restored amounts for new edits and carrying them over the CRM the user
edited."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sync.locks import RECONCILE_LOCK
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World
from tests.integration.processes import (
    assert_stopped_on_a_lost_lock,
    cli,
    end_lock_session_of,
    killed,
    paused,
)

PIPEDRIVE_UPDATE = "PATCH /api/v2/deals/{id}"  # the rollback writes Pipedrive before Salesforce
SALESFORCE_READ = "GET /services/data/{version}/query"  # the re-read before its first batch
EDITED = 3


def _cli(world: World, *args: str) -> dict[str, Any]:
    done = cli(world, *args, "--format", "json")  # in this process: quicker
    assert done.exit_code in (0, 1), done.output  # 1: owners the generated data cannot map
    return dict(json.loads(done.stdout))


def _amounts(plan: dict[str, Any], entities: list[dict[str, str]]) -> dict[tuple[str, str], Any]:
    wanted = {(system, deal_id) for ids in entities for system, deal_id in ids.items()}
    return {
        (c["system"], c["id"]): (c["to"], c["reason"])
        for c in plan["changes"]
        if (c["system"], c["id"]) in wanted and c["field"] == "amount"
    }


def _edit_carried(world: World) -> tuple[str, list[dict[str, str]], dict[tuple[str, str], Any]]:
    """A person raises amounts in HubSpot; a reconcile carries them to Salesforce and
    Pipedrive: (that run, the entities' members, the amount changes it planned)."""
    _cli(world, "reconcile", "--yes")  # the first sync: the CRMs agree, bases are stored
    entities = [m for m in world.members().values() if len(m) == 3][:EDITED]
    assert len(entities) == EDITED
    bump_amounts(world, "hubspot", [ids["hubspot"] for ids in entities], step=7)
    applied = _cli(world, "reconcile", "--yes")
    carried = _amounts(applied, entities)
    assert {system for system, _ in carried} == {"salesforce", "pipedrive"}
    return str(applied["run_id"]), entities, carried


def _assert_next_plan_carries_the_edit_again(
    world: World, entities: list[dict[str, str]], carried: dict[tuple[str, str], Any]
) -> None:
    again = _amounts(_cli(world, "reconcile", "--dry-run"), entities)
    assert not {ref for ref in again if ref[0] == "hubspot"}, again  # the edit is not reverted
    assert {ref: to for ref, (to, _) in again.items()} == {
        ref: to for ref, (to, _) in carried.items()
    }
    assert {why for _, why in again.values()} == {"changed in hubspot since last sync"}


@pytest.mark.postgres
@pytest.mark.slow  # default suite time: the kill -9 test below covers the same resume
def test_a_rollback_resumed_after_its_lock_was_lost_makes_every_restored_amount_a_base(
    pg_world: World,
) -> None:
    world = pg_world
    run_id, entities, carried = _edit_carried(world)
    rollback = ("rollback", run_id, "--apply", "--yes")
    with paused(world, "pipedrive", PIPEDRIVE_UPDATE, *rollback) as stopped:
        end_lock_session_of(world, RECONCILE_LOCK, "job")
    assert_stopped_on_a_lost_lock(stopped, "job 'reconcile'")

    resumed = _cli(world, *rollback)
    outcomes = {(r["system"], r["outcome"]) for r in resumed["results"] if r["field"] == "amount"}
    assert outcomes == {("pipedrive", "done_before"), ("salesforce", "applied")}, outcomes

    _assert_next_plan_carries_the_edit_again(world, entities, carried)


def test_a_rollback_resumed_after_kill_9_makes_every_restored_amount_a_base(
    small_world: World,
) -> None:
    world = small_world
    run_id, entities, carried = _edit_carried(world)
    rollback = ("rollback", run_id, "--apply", "--yes")
    killed(world, "salesforce", SALESFORCE_READ, *rollback)  # Pipedrive's batch is journaled

    resumed = _cli(world, *rollback)
    outcomes = {(r["system"], r["outcome"]) for r in resumed["results"] if r["field"] == "amount"}
    assert outcomes == {("pipedrive", "done_before"), ("salesforce", "applied")}, outcomes

    _assert_next_plan_carries_the_edit_again(world, entities, carried)


def test_after_a_rollback_killed_part_way_the_next_reconcile_keeps_the_users_edit(
    small_world: World,
) -> None:
    """Not run again: the next reconcile (say, the nightly job's) does not take the amounts the
    killed rollback restored in Pipedrive for a Pipedrive user's edit, and so never carries
    them over the HubSpot user's edit; it plans Pipedrive back to the value the others hold."""
    world = small_world
    run_id, entities, carried = _edit_carried(world)
    killed(world, "salesforce", SALESFORCE_READ, "rollback", run_id, "--apply", "--yes")

    again = _amounts(_cli(world, "reconcile", "--dry-run"), entities)

    assert not {ref for ref in again if ref[0] != "pipedrive"}, again  # the edit is kept
    assert {ref: to for ref, (to, _) in again.items()} == {
        ref: to for ref, (to, _) in carried.items() if ref[0] == "pipedrive"
    }
