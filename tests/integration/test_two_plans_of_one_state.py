"""Two plans made from the same state (two dry runs, or a person's plan and a scheduled
reconcile), applied one after the other: the second finds the first's copies by their link
marker and writes nothing. What the first wrote is audited under the first run only, so
rolling back the second run deletes nothing it did not create."""

from __future__ import annotations

from datetime import UTC, datetime

from sync.apply_report import Outcome
from sync.apply_run import guarded_apply
from sync.rollback import rollback_plan
from sync.runtime import open_runtime
from sync.store_records import RunKind
from tests.integration.conftest import World
from tests.integration.test_rollback_deletes_creates import _create_missing


def test_a_plan_applied_after_another_made_its_copies_audits_none_of_them(
    small_world: World,
) -> None:
    world = small_world
    _create_missing(world)
    first_plan = world.reconcile("plan-1").plan
    second_plan = world.reconcile("plan-2").plan  # made before the first plan was applied
    assert second_plan.creates and len(second_plan.creates) == len(first_plan.creates)
    options = {"backoff_base": 0.01}
    with open_runtime(str(world.config), connector_options=options) as rt:
        run_1 = rt.store.runs.start("apply", RunKind.APPLY)
        guarded_apply(rt, first_plan, run_id=run_1, yes=True)
    with open_runtime(str(world.config), connector_options=options) as rt:
        run_2 = rt.store.runs.start("apply", RunKind.APPLY)
        second = guarded_apply(rt, second_plan, run_id=run_2, yes=True)
        creates = [r for r in second.results if r.field is None]
        audited = rt.store.audit.entries(run_id=run_2)
        first_audited = rt.store.audit.entries(run_id=run_1)
        undo = rollback_plan(rt.store, run_2, fingerprint="", now=datetime.now(UTC), aliases={})
    made = [r for r in creates if r.outcome is Outcome.ALREADY]
    assert made and {r.outcome for r in creates} <= {Outcome.ALREADY, Outcome.FAILED}
    assert len([e for e in first_audited if e.field is None]) >= len(made)
    assert [e for e in audited if e.field is None] == []  # the second run created nothing
    assert undo.deletes == ()
