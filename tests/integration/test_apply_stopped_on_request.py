"""SIGTERM (or Ctrl-C) during an apply: the batch in flight finishes, nothing after it is sent
(no update, copy or delete of any later instance), everything left is reported as not
attempted, and applying the plan again does exactly the rest."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sync.apply_report import ApplyReport, Outcome
from sync.apply_run import guarded_apply
from sync.plan import Plan
from sync.runtime import open_runtime
from sync.shutdown import STOPPED, stop_event
from tests.integration.conftest import World, once_served
from tests.integration.test_rollback_deletes_creates import _create_missing, _live_ids

HUBSPOT_CREATE = "POST /crm/objects/2026-09/deals/batch/create"


def _apply(world: World, plan: Plan, run_id: str) -> ApplyReport:
    with open_runtime(str(world.config), connector_options={"backoff_base": 0.01}) as rt:
        return guarded_apply(rt, plan, run_id=run_id, yes=True)


@contextmanager
def stop_requested_after(world: World, system: str, request: str) -> Iterator[None]:
    """Ask for a stop, as the SIGTERM handler does, once `system` has served one `request`."""
    try:
        with once_served(world, system, request, 1, stop_event.set):
            yield
    finally:
        stop_event.clear()


def test_a_stop_during_one_instances_creates_sends_nothing_to_the_next_instances(
    small_world: World,
) -> None:
    world = small_world
    _create_missing(world)
    plan = world.reconcile("creating").plan
    wanted = {
        s: {str(c["entity"]) for c in plan.creates if c["system"] == s}
        for s in ("hubspot", "pipedrive", "salesforce")
    }
    assert wanted["hubspot"] and wanted["pipedrive"] and wanted["salesforce"]
    later = ("pipedrive", "salesforce")  # instances are written in name order
    live_before = {s: _live_ids(world, s) for s in later}

    with stop_requested_after(world, "hubspot", HUBSPOT_CREATE):
        stopped = _apply(world, plan, "stopped")
    assert {s: _live_ids(world, s) for s in later} == live_before
    unsent = [r for r in stopped.results if r.system in later]
    assert unsent and all(r.reason == f"not attempted: {STOPPED}" for r in unsent)
    assert len([r for r in unsent if r.field is None]) == len(wanted["pipedrive"]) + len(
        wanted["salesforce"]
    )

    rerun = _apply(world, plan, "rerun")
    assert not [r for r in rerun.results if STOPPED in (r.reason or "")]
    for system in later:
        made = _live_ids(world, system) - live_before[system]
        copied = [
            r for r in rerun.results
            if r.system == system and r.field is None and r.outcome is Outcome.APPLIED
        ]  # fmt: skip
        assert len(made) == len(copied) > 0  # the rest: bad data (an unknown owner), reported


def test_writes_a_stop_left_unsent_are_counted_not_sent_not_failed(small_world: World) -> None:
    """An operator reading the apply table after a SIGTERM must not take the writes it never
    sent for ones the CRMs refused: they have their own column, as Ctrl-C's have in `runs`."""
    world = small_world
    _create_missing(world)
    plan = world.reconcile("creating").plan

    with stop_requested_after(world, "hubspot", HUBSPOT_CREATE):
        stopped = _apply(world, plan, "stopped")
    unsent = [r for r in stopped.results if r.reason == f"not attempted: {STOPPED}"]
    assert unsent and {r.outcome for r in unsent} == {Outcome.NOT_SENT}
    totals = stopped.totals()
    assert totals["not_sent"] == len(unsent)
    assert totals["failed"] == len([r for r in stopped.results if r.outcome is Outcome.FAILED])
    assert not stopped.ok  # still unfinished: the next run sends them
