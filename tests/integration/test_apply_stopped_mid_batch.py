"""An apply whose CRM fails for good in the middle of a batch: Pipedrive updates one call per
deal, so the deals written before the failing call hold the new values. Those changes are in
doubt, not failed: applying the plan again recognises them by their value and audits each
change exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from connectors.sandbox.faults import Faults
from sync.apply_report import ApplyReport
from sync.apply_run import guarded_apply
from sync.plan import Plan
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World

PD_UPDATE = "PUT /v1/deals/{id}"


def _apply(world: World, plan: Plan, attempt: int) -> ApplyReport:
    options = {"backoff_base": 0.01, "max_attempts": 1}  # the retry schedule is not under test
    with open_runtime(str(world.config), connector_options=options) as rt:
        return guarded_apply(rt, plan, run_id=f"apply-{attempt}", yes=True)


def _pipedrive_amounts(world: World, ids: list[str]) -> dict[str, Any]:
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        return {i: em.store.deals[int(i)]["value"] for i in ids}


def test_an_apply_pipedrive_stops_mid_batch_audits_every_change_once_after_the_rerun(
    small_world: World,
) -> None:
    world = small_world
    _apply(world, world.reconcile("first").plan, 0)  # the generated discrepancies, settled
    # Salesforce users raise amounts; the plan carries them to Pipedrive (and HubSpot).
    entities = [m for m in world.members().values() if {"salesforce", "pipedrive"} <= m.keys()]
    bump_amounts(world, "salesforce", [m["salesforce"] for m in entities[:8]], step=7)
    plan = world.reconcile("bumped").plan
    planned = {c.id: c for c in plan.changes if c.system == "pipedrive" and c.field == "amount"}
    assert len(planned) >= 6

    pipedrive = world.sandbox.servers["pipedrive"]
    pipedrive.faults.set(Faults(latency_ms=30))

    def updates() -> int:
        return int(pipedrive.stats.snapshot()["requests"].get(PD_UPDATE, 0))

    before = updates()

    def refuse_after_two_updates() -> None:
        while updates() < before + 2:
            time.sleep(0.002)
        pipedrive.faults.set(Faults(error5xx=1.0))

    watcher = threading.Thread(target=refuse_after_two_updates, daemon=True)
    watcher.start()
    first = _apply(world, plan, 1)
    watcher.join(timeout=30)
    in_doubt = [r for r in first.results if "in doubt" in (r.reason or "")]
    assert not first.ok and in_doubt
    assert {r.system for r in in_doubt} == {"pipedrive"}

    pipedrive.faults.set(Faults())
    assert _apply(world, plan, 2).ok
    with open_runtime(str(world.config), connect=False) as rt:
        audited = Counter(
            e.deal_id
            for e in rt.store.audit.entries()
            if e.instance == "pipedrive" and e.field == "amount" and e.run_id != "apply-0"
        )
    assert audited == dict.fromkeys(planned, 1)
    amounts = _pipedrive_amounts(world, list(planned))
    assert {i: Decimal(str(v)) for i, v in amounts.items()} == {
        i: c.to_value for i, c in planned.items()
    }
