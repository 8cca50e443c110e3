"""API cost of a full pull, an incremental pull after 1% changes, and an apply of 1k changes.

Requests are counted by the sandbox (what the CRM would bill), per system and operation, and
set against the lower bounds of bench_bounds.py. Pacing is lifted: this counts, it never waits.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sync.apply import apply_plan
from sync.reconcile import ReconcileResult, plan_run
from sync.runtime import Runtime, open_runtime
from sync.store_records import RunKind
from tests.benchmarks.bench_bounds import apply_bound, full_pull_bound, incremental_pull_bound
from tests.benchmarks.bench_peers import peer_rows
from tests.benchmarks.bench_world import (
    SYSTEMS,
    World,
    bench_data,
    bump_amounts,
    open_world,
    shared_entities,
)

__all__ = ["APPLY_CHANGES", "api_cost_rows", "cost_row"]

APPLY_CHANGES = 1000  # field changes written per system in the apply step
CHANGED_SHARE = 0.01  # of each system's deals, changed before the incremental pull


def cost_row(
    op: str, system: str, deals: int, stats: Mapping[str, Any], bound: int, seconds: float
) -> dict[str, Any]:
    calls = int(stats["total"])
    return {
        "bench": "api_cost",
        "deals": deals,
        "op": op,
        "system": system,
        "calls": calls,
        "bound": bound,
        "ratio": round(calls / bound, 3) if bound else None,
        "over_bound": calls - bound,
        "seconds": round(seconds, 2),
        "requests": stats["requests"],
        "statuses": stats.get("statuses", {}),
    }


def _plan(rt: Runtime, run_id: str, *, full: bool = False) -> ReconcileResult:
    return plan_run(rt.config, rt.store, rt.connectors, run_id=run_id, full=full)


def _start(rt: Runtime, kind: RunKind) -> str:
    return rt.store.runs.start("bench", kind, rt.config.fingerprint())


def api_cost_rows(deals: int, workdir: Path, *, with_peers: bool = False) -> list[dict[str, Any]]:
    data = bench_data(deals)
    changed = max(1, round(deals * CHANGED_SHARE))
    per_source = APPLY_CHANGES // 2  # each system receives the edits of the two others
    picks = shared_entities(data, 3 * (changed + per_source))
    if len(picks) < 3 * (changed + per_source):
        raise RuntimeError(f"{deals} deals: too few entities shared by all three systems")
    incremental, applied = picks[: 3 * changed], picks[3 * changed :]
    rows: list[dict[str, Any]] = []
    # Each step opens its own runtime, as each nightly run is a new process: nothing cached.
    with open_world(data, workdir) as world:
        counts = world.live_counts()

        def measure(op: str, bounds: Mapping[str, int], started: float) -> None:
            seconds = time.perf_counter() - started
            stats = world.stats()
            rows.extend(cost_row(op, s, deals, stats[s], bounds[s], seconds) for s in SYSTEMS)
            world.clear_stats()

        with open_runtime(str(world.config)) as rt:
            started = time.perf_counter()
            _plan(rt, _start(rt, RunKind.RECONCILE_DRY_RUN), full=True)
            measure("full_pull", {s: full_pull_bound(s, counts[s]) for s in SYSTEMS}, started)
        if with_peers:
            rows += peer_rows(world, deals)
            world.clear_stats()

        _edit(world, incremental, changed)
        with open_runtime(str(world.config)) as rt:
            started = time.perf_counter()
            _plan(rt, _start(rt, RunKind.RECONCILE_DRY_RUN))
            bounds = {s: incremental_pull_bound(s, changed, counts[s]) for s in SYSTEMS}
            measure("incremental_pull", bounds, started)

        _edit(world, applied, per_source)
        with open_runtime(str(world.config)) as rt:
            # `reconcile` without --dry-run: the apply reuses its plan's runtime and contexts.
            result = _plan(rt, _start(rt, RunKind.RECONCILE))
            world.clear_stats()
            wanted = {refs[s] for refs in applied for s in SYSTEMS}
            changes = tuple(
                c for c in result.plan.changes if c.field == "amount" and c.id in wanted
            )
            plan = dataclasses.replace(result.plan, changes=changes, creates=(), deleted=())
            run_id = _start(rt, RunKind.APPLY)
            started = time.perf_counter()
            report = apply_plan(rt, plan, run_id=run_id, contexts=result.contexts)
            records = {s: len({c.id for c in changes if c.system == s}) for s in SYSTEMS}
            measure("apply", {s: apply_bound(s, records[s]) for s in SYSTEMS}, started)
        for row in rows[-3:]:  # the apply rows
            system = row["system"]
            row["changes"] = records[system]
            row["applied"] = sum(
                1 for r in report.results if r.system == system and r.outcome.value == "applied"
            )
    return rows


def _edit(world: World, entities: list[dict[str, str]], per_system: int) -> None:
    """Group i of `per_system` entities is edited in system i only (distinct deals)."""
    for index, system in enumerate(SYSTEMS):
        group = entities[index * per_system : (index + 1) * per_system]
        bump_amounts(world, system, [refs[system] for refs in group])
