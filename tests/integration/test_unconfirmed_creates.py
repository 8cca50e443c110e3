"""HubSpot creates whose answer was cut, while HubSpot's search index has not caught up: the
retry cannot find them, so it does not send them again and HubSpot reports them unconfirmed.
Such copies may exist: they are in doubt, not failed. The next plan's apply finds them by their
link marker and audits them under the run that made them (whose rollback deletes them), and no
entity gets a second copy."""

from __future__ import annotations

from connectors.sandbox.faults import Faults
from sync.apply_report import ApplyReport, Outcome
from sync.apply_run import guarded_apply
from sync.plan import Plan
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.test_rollback_deletes_creates import _create_missing, _live_ids

# Cuts the answer of at least one create batch and leaves the retries' lookups whole (the seed
# fits the calls an apply makes, its companies search included: a create never sent before is not
# looked up first).
CUT_WHILE_UNINDEXED = Faults(drop=0.3, search_lag=600, seed=1)


def _apply(world: World, plan: Plan, run_id: str, *, later: bool = False) -> ApplyReport:
    """`later`: as an apply once HubSpot's search shows what it stored (past its lookup lag)."""
    options = {"backoff_base": 0.01}  # the retry schedule is not under test
    if later:
        options["lookup_lag_s"] = 0
    with open_runtime(str(world.config), connector_options=options) as rt:
        return guarded_apply(rt, plan, run_id=run_id, yes=True)


def _cut_creates(world: World) -> tuple[Plan, set[str], set[str]]:
    """(the plan, HubSpot's deals before it, the copies its cut apply made)"""
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
    # in words an operator knows: it named crmsync's own method ("find_created will tell")
    assert all("find_created" not in r.reason for r in unconfirmed), unconfirmed[0].reason
    return plan, live_before, _live_ids(world, "hubspot") - live_before


def _hubspot_copies(world: World) -> list[tuple[str, str, str]]:
    """(run, deal id, entity) of every HubSpot copy audited as created"""
    with open_runtime(str(world.config), connect=False) as rt:
        return [
            (e.run_id, str(e.deal_id), e.after["link_id"])
            for e in rt.store.audit.entries()
            if e.instance == "hubspot" and e.field is None
        ]


def test_copies_hubspot_did_not_confirm_are_audited_under_the_run_that_made_them(
    small_world: World,
) -> None:
    world = small_world
    _, live_before, made_by_first = _cut_creates(world)
    _apply(world, world.reconcile("next").plan, "apply-2", later=True)
    copies = _hubspot_copies(world)
    # every copy the first apply made, the unconfirmed ones included, is that run's
    assert {deal for run, deal, _ in copies if run == "apply-1"} == made_by_first
    made = [entity for *_, entity in copies]
    assert len(made) == len(set(made))  # no entity got two copies
    assert _live_ids(world, "hubspot") - live_before == {deal for _, deal, _ in copies}
    with open_runtime(str(world.config), connect=False) as rt:
        assert rt.store.journal.in_doubt_elsewhere("any other plan") == []


def test_an_apply_at_once_does_not_send_again_what_hubspot_search_may_not_show_yet(
    small_world: World,
) -> None:
    """Ops stop an apply and run it again at once: its creates in doubt are not in HubSpot's
    search yet. Sending them again would duplicate them; they wait for a later apply."""
    world = small_world
    plan, live_before, made_by_first = _cut_creates(world)
    world.sandbox.servers["hubspot"].faults.set(Faults(search_lag=600))  # still not indexed
    try:
        again = _apply(world, plan, "apply-2")
        next_plan = _apply(world, world.reconcile("next").plan, "apply-3")
    finally:
        world.sandbox.servers["hubspot"].faults.set(Faults())
    assert _live_ids(world, "hubspot") - live_before == made_by_first  # nothing created twice
    for report in (again, next_plan):
        waiting = [
            r.reason or ""
            for r in report.results
            if r.system == "hubspot" and r.field is None and r.outcome is Outcome.FAILED
        ]
        assert waiting and all("lookup may not show the copy yet" in r for r in waiting)
    _apply(world, world.reconcile("later").plan, "apply-4", later=True)
    copies = _hubspot_copies(world)
    assert {deal for run, deal, _ in copies if run == "apply-1"} == made_by_first
    assert _live_ids(world, "hubspot") - live_before == {deal for _, deal, _ in copies}
