"""HubSpot creates whose answer was cut, while HubSpot's search index has not caught up: the
retry cannot find them, so it does not send them again and HubSpot reports them unconfirmed.
Such copies may exist: they are in doubt, not failed. The next plan's apply finds them by their
link marker and audits them under the run that made them (whose rollback deletes them), and no
entity gets a second copy."""

from __future__ import annotations

from connectors.sandbox.faults import Faults
from sync.apply_report import ApplyReport
from sync.apply_run import guarded_apply
from sync.plan import Plan
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.test_rollback_deletes_creates import _create_missing, _live_ids

# Cuts the answer of at least one create batch and leaves the retries' lookups whole.
CUT_WHILE_UNINDEXED = Faults(drop=0.3, search_lag=600, seed=5)


def _apply(world: World, plan: Plan, run_id: str) -> ApplyReport:
    options = {"backoff_base": 0.01}  # the retry schedule is not under test
    with open_runtime(str(world.config), connector_options=options) as rt:
        return guarded_apply(rt, plan, run_id=run_id, yes=True)


def test_copies_hubspot_did_not_confirm_are_audited_under_the_run_that_made_them(
    small_world: World,
) -> None:
    world = small_world
    _create_missing(world)
    plan = world.reconcile("creating").plan
    assert sum(c["system"] == "hubspot" for c in plan.creates) >= 2
    live_before = _live_ids(world, "hubspot")
    world.sandbox.servers["hubspot"].faults.set(CUT_WHILE_UNINDEXED)
    try:
        first = _apply(world, plan, "apply-1")
    finally:
        world.sandbox.servers["hubspot"].faults.set(Faults())
    unconfirmed = [
        r
        for r in first.results
        if r.system == "hubspot" and r.field is None and "did not confirm" in (r.reason or "")
    ]
    assert unconfirmed and all(r.reason.startswith("in doubt: ") for r in unconfirmed)
    made_by_first = _live_ids(world, "hubspot") - live_before

    _apply(world, world.reconcile("next").plan, "apply-2")
    with open_runtime(str(world.config), connect=False) as rt:
        copies = [
            (e.run_id, e.deal_id, e.after["link_id"])
            for e in rt.store.audit.entries()
            if e.instance == "hubspot" and e.field is None
        ]
        in_doubt = rt.store.journal.in_doubt_elsewhere("any other plan")
    # every copy the first apply made, the unconfirmed ones included, is that run's
    assert {deal for run, deal, _ in copies if run == "apply-1"} == made_by_first
    made = [entity for *_, entity in copies]
    assert len(made) == len(set(made))  # no entity got two copies
    assert _live_ids(world, "hubspot") - live_before == {deal for _, deal, _ in copies}
    assert in_doubt == []
