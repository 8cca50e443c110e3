"""An apply whose CRM fails for good in the middle of a batch: Pipedrive updates one call per
deal, so the deals written before the failing call hold the new values. Those changes are in
doubt, not failed. Applying the plan again, or the next reconcile's new plan, recognises them by
their value and audits each change exactly once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sync.apply_report import ApplyReport
from sync.apply_run import guarded_apply
from sync.plan import Change, Plan
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World, refusing_after
from tests.integration.test_rollback_deletes_creates import _create_missing, _live_ids


def _apply(world: World, plan: Plan, attempt: int) -> ApplyReport:
    options = {"backoff_base": 0.01, "max_attempts": 1}  # the retry schedule is not under test
    with open_runtime(str(world.config), connector_options=options) as rt:
        return guarded_apply(rt, plan, run_id=f"apply-{attempt}", yes=True)


def _pipedrive_amounts(world: World, ids: list[str]) -> dict[str, Any]:
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        return {i: em.store.deals[int(i)]["value"] for i in ids}


@dataclass(frozen=True)
class Stopped:
    plan: Plan  # the plan whose apply Pipedrive stopped
    planned: dict[str, Change]  # pipedrive deal id -> its amount change
    landed: set[str]  # the deals that hold the planned amount after the stopped apply


def _stopped_apply(world: World) -> Stopped:
    _apply(world, world.reconcile("first").plan, 0)  # the generated discrepancies, settled
    # Salesforce users raise amounts; the plan carries them to Pipedrive (and HubSpot).
    entities = [m for m in world.members().values() if {"salesforce", "pipedrive"} <= m.keys()]
    bump_amounts(world, "salesforce", [m["salesforce"] for m in entities[:8]], step=7)
    plan = world.reconcile("bumped").plan
    planned = {c.id: c for c in plan.changes if c.system == "pipedrive" and c.field == "amount"}
    assert len(planned) >= 6

    with refusing_after(world, "pipedrive", "PATCH /api/v2/deals/{id}", 2):
        first = _apply(world, plan, 1)
    in_doubt = [r for r in first.results if "in doubt" in (r.reason or "")]
    assert not first.ok and in_doubt
    assert {r.system for r in in_doubt} == {"pipedrive"}
    amounts = _pipedrive_amounts(world, list(planned))
    landed = {i for i, c in planned.items() if Decimal(str(amounts[i])) == c.to_value}
    assert landed and landed != set(planned)
    return Stopped(plan, planned, landed)


def _audited(world: World) -> Counter[tuple[str, str | None]]:
    """(run, deal id) of every audited Pipedrive amount write after the settling apply."""
    with open_runtime(str(world.config), connect=False) as rt:
        return Counter(
            (e.run_id, e.deal_id)
            for e in rt.store.audit.entries()
            if e.instance == "pipedrive" and e.field == "amount" and e.run_id != "apply-0"
        )


def test_applying_the_plan_again_audits_every_change_once(small_world: World) -> None:
    world = small_world
    stopped = _stopped_apply(world)
    assert _apply(world, stopped.plan, 2).ok
    audited = _audited(world)
    assert Counter(deal for _, deal in audited.elements()) == dict.fromkeys(stopped.planned, 1)
    # the writes that landed are the stopped run's (its rollback undoes them), the rest the rerun's
    assert audited == {("apply-1", i): 1 for i in stopped.landed} | {
        ("apply-2", i): 1 for i in set(stopped.planned) - stopped.landed
    }
    amounts = _pipedrive_amounts(world, list(stopped.planned))
    assert {i: Decimal(str(v)) for i, v in amounts.items()} == {
        i: c.to_value for i, c in stopped.planned.items()
    }


def test_the_next_plan_audits_the_writes_that_landed_under_the_run_that_made_them(
    small_world: World,
) -> None:
    """A nightly job never applies the stopped plan again: it plans anew. The new apply finds the
    stopped run's writes that landed and audits them under that run (so `rollback` of it undoes
    them); the new plan writes the rest."""
    world = small_world
    stopped = _stopped_apply(world)
    assert _apply(world, world.reconcile("next").plan, 2).ok
    audited = _audited(world)
    assert audited == {("apply-1", i): 1 for i in stopped.landed} | {
        ("apply-2", i): 1 for i in set(stopped.planned) - stopped.landed
    }
    with open_runtime(str(world.config), connect=False) as rt:
        assert rt.store.journal.in_doubt_elsewhere("any other plan") == []


def test_copies_a_stopped_apply_created_are_audited_under_it_by_the_next_plan(
    small_world: World,
) -> None:
    """Pipedrive creates one call per deal. Its copies made before the failing call are found
    by their link marker by the next plan's apply: audited under the stopped run (whose
    rollback deletes them) and never created twice."""
    world = small_world
    _create_missing(world)
    plan = world.reconcile("creating").plan
    entities = {str(c["entity"]) for c in plan.creates if c["system"] == "pipedrive"}
    assert len(entities) >= 4
    live_before = _live_ids(world, "pipedrive")
    with refusing_after(world, "pipedrive", "POST /api/v2/deals", 2):
        first = _apply(world, plan, 1)
    assert any("in doubt" in (r.reason or "") for r in first.results if r.field is None)
    made_by_first = _live_ids(world, "pipedrive") - live_before
    assert 0 < len(made_by_first) < len(entities)  # stopped part-way

    _apply(world, world.reconcile("next").plan, 2)
    with open_runtime(str(world.config), connect=False) as rt:
        copies = [
            (e.run_id, e.deal_id, e.after["link_id"])
            for e in rt.store.audit.entries()
            if e.instance == "pipedrive" and e.field is None
        ]
        in_doubt = rt.store.journal.in_doubt_elsewhere("any other plan")
    assert {deal for run, deal, _ in copies if run == "apply-1"} == made_by_first
    made = [entity for _, _, entity in copies]
    assert len(made) == len(set(made))  # no entity got two copies
    assert _live_ids(world, "pipedrive") - live_before == {deal for _, deal, _ in copies}
    assert in_doubt == []
