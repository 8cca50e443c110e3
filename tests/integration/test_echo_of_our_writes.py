"""Our own write is not a user's change: when a plan lands in one target and not in another,
the value we wrote carries the timestamp of our write, and under the `newest` policy that
timestamp must not beat a user's edit made before it."""

from __future__ import annotations

import time
from typing import Any

from sync.apply import apply_plan
from sync.apply_report import Outcome
from sync.reconcile import plan_run
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World
from tests.integration.test_partial_targets import _open_entity_in_all_three, _reconcile


def _amount(world: World, system: str, deal_id: str) -> Any:
    em: Any = world.sandbox.servers[system].emulator
    with em.lock:
        if system == "salesforce":
            return em.store.by_id[deal_id]["Amount"]
        if system == "hubspot":
            return em.store.live[deal_id]["properties"]["amount"]
        return em.store.deals[int(deal_id)]["value"]


def test_a_users_edit_made_before_our_write_landed_elsewhere_wins_under_newest(
    small_world: World,
) -> None:
    """Salesforce's amount edit is planned onto HubSpot and Pipedrive; before the apply, a user
    edits Pipedrive's amount again. The apply writes HubSpot and skips Pipedrive as drifted.
    HubSpot now holds Salesforce's value stamped with our write's time, the newest of the
    three; the user's Pipedrive edit is still the latest change a person made, and must win."""
    _reconcile(small_world, dry_run=False)
    assert not _reconcile(small_world, dry_run=True).changes  # converged
    ids = _open_entity_in_all_three(small_world)
    bump_amounts(small_world, "salesforce", [ids["salesforce"]], step=5)
    with open_runtime(str(small_world.config)) as rt:
        planned = plan_run(rt.config, rt.store, rt.connectors, run_id="planned")
        targets = {(c.system, c.id) for c in planned.plan.changes if c.field == "amount"}
        assert targets == {("hubspot", ids["hubspot"]), ("pipedrive", ids["pipedrive"])}
        time.sleep(1.1)  # Pipedrive stamps whole seconds: keep the three instants apart
        bump_amounts(small_world, "pipedrive", [ids["pipedrive"]], step=7)
        users_value = _amount(small_world, "pipedrive", ids["pipedrive"])
        time.sleep(1.1)
        report = apply_plan(rt, planned.plan, run_id="planned", contexts=planned.contexts)
    outcomes = {(r.system, r.field): r.outcome for r in report.results if r.field == "amount"}
    assert outcomes == {
        ("hubspot", "amount"): Outcome.APPLIED,
        ("pipedrive", "amount"): Outcome.DRIFTED,
    }

    plan = _reconcile(small_world, dry_run=True)
    amounts = {(c.system, c.id): c.to_value for c in plan.changes if c.field == "amount"}
    assert amounts == {
        ("salesforce", ids["salesforce"]): users_value,
        ("hubspot", ids["hubspot"]): users_value,
    }, "the user's Pipedrive edit must spread, not be overwritten with the value we copied"
