"""Two pulls of one instance at once (two people, or a scheduled pull and a manual one).

A pull reads its CRM, then saves what it read with the cursor after it. A second pull of the
same instance running meanwhile reads later data and saves it first; the first pull then saved
its older read over it and moved the cursor back to its own. So a pull of an instance waits for
no other pull of it: it is refused ("already running", exit 1), or waits with --wait, and a
reconcile (or `report --refresh`) waits for it and then reads what changed since. Pulls of other
instances go on side by side, and a standalone pull still runs while a reconcile analyses (see
test_pull_during_reconcile.py)."""

from __future__ import annotations

import json

import pytest

from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World
from tests.integration.processes import (
    Process,
    crm_amount,
    first_page_deal,
    full_hubspot_pull_paused,
    pull_here,
    run,
    runs,
    stored,
)

BUSY = (
    "pull of 'hubspot' is already running (lock held by another process); wait for it to end "
    "or pass --wait SECONDS (locks end with their process: none is left by a killed one)"
)
WAITING = "waiting for the pull of 'hubspot' another process is running"


@pytest.fixture
def world(paged_world: World) -> World:
    return paged_world


def _settled_in_three_crms(world: World) -> set[str]:
    """HubSpot deals whose entity every CRM holds and the last run left settled."""
    with open_runtime(str(world.config), connect=False) as rt:
        pending = set(rt.store.pending())
    return {
        m["hubspot"]
        for m in world.members().values()
        if len(m) == 3 and not set(m.items()) & pending
    }


def test_a_second_pull_of_an_instance_being_pulled_is_refused_so_no_older_read_overwrites_it(
    world: World,
) -> None:
    pull_here(world)
    deal = first_page_deal(world)
    with full_hubspot_pull_paused(world) as first:
        bump_amounts(world, "hubspot", [deal])  # a person edits it after the first pull read it
        second = run(world, "pull", "--system", "hubspot")
        amount_between, cursor_between = stored(world, deal)
    amount_after, cursor_after = stored(world, deal)

    assert amount_after >= amount_between, "a pull saved its older read over a newer snapshot"
    assert cursor_after is not None and cursor_between is not None
    assert cursor_after >= cursor_between, "the cursor moved back"
    assert first.popen.returncode == 0, first.err
    assert second.popen.returncode == 1, second.err
    assert second.err_lines == [f"crmsync: error: {BUSY}"]
    assert [r.status.value for r in runs(world) if r.kind.value == "pull"] == ["ok"]  # no second

    pull_here(world, "hubspot")
    assert stored(world, deal)[0] == crm_amount(world, deal)  # the edit is read by the next pull


def test_a_pull_told_to_wait_runs_after_the_other_and_reads_what_that_one_missed(
    world: World,
) -> None:
    pull_here(world)
    deal = first_page_deal(world)
    with full_hubspot_pull_paused(world) as first:
        bump_amounts(world, "hubspot", [deal])
        second = Process(world, "pull", "--system", "hubspot", "--wait", "120")
        waited = second.wait_for_err(WAITING)
    assert second.finish() == 0, second.err
    assert first.popen.returncode == 0, first.err
    assert waited
    assert stored(world, deal)[0] == crm_amount(world, deal)


def test_pulls_of_other_instances_run_side_by_side(world: World) -> None:
    pull_here(world)
    with full_hubspot_pull_paused(world) as first:
        other = run(world, "pull", "--system", "pipedrive", "--system", "salesforce")
        assert other.popen.returncode == 0, other.err
        everything = run(world, "pull")  # hubspot's pull is running
        assert everything.popen.returncode == 1
        assert everything.err_lines == [f"crmsync: error: {BUSY}"]
    assert first.popen.returncode == 0, first.err


def test_a_reconcile_waits_for_a_pull_of_its_instance_then_plans_from_what_the_crm_holds(
    world: World,
) -> None:
    world.reconcile("r1")
    deal = first_page_deal(world, among=_settled_in_three_crms(world))
    with full_hubspot_pull_paused(world) as first:
        bump_amounts(world, "hubspot", [deal])
        reconcile = Process(world, "reconcile", "--dry-run", "--format", "json")
        waited = reconcile.wait_for_err(WAITING)  # or it ran alongside, to its end
    # Checked once both have ended: the paused pull may have read the deal before the edit,
    # and the reconcile's own pull, which reads it after, may still be running until then.
    assert reconcile.finish() in (0, 3), reconcile.err
    assert stored(world, deal)[0] == crm_amount(world, deal), "an older read was saved last"
    assert first.popen.returncode == 0, first.err
    assert waited
    plan = json.loads(reconcile.out)
    entity = next(m for m in world.members().values() if m.get("hubspot") == deal)
    planned = {
        c["system"]
        for c in plan["changes"]
        if c["field"] == "amount" and (c["system"], c["id"]) in entity.items()
    }
    assert planned == {"salesforce", "pipedrive"}, plan["changes"]
    assert stored(world, deal)[0] == crm_amount(world, deal)
