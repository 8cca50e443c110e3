"""Wall time of a full run under the CRMs' real rate limits and 50 ms latency per request.

The sandbox enforces each system's default rolling-window limit (HubSpot 100/10 s, Pipedrive
80/2 s, Salesforce 100/1 s) and answers 429 past it; crmsync paces itself with its defaults.
The yardstick is the rate-limited minimum of the slowest system for the calls it needed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from connectors.sandbox.faults import Faults
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from tests.benchmarks.bench_bounds import min_wall_seconds
from tests.benchmarks.bench_world import SYSTEMS, bench_data, open_world

__all__ = ["LATENCY_MS", "wall_time_row"]

LATENCY_MS = 50.0


def wall_time_row(deals: int, workdir: Path) -> dict[str, Any]:
    data = bench_data(deals)
    faults = Faults(latency_ms=LATENCY_MS, enforce_rate_limit=True)
    with open_world(data, workdir, faults=faults, paced=True) as world:
        with open_runtime(str(world.config)) as rt:
            started = time.perf_counter()
            outcome = run_reconcile(rt, dry_run=True, full=True)
            seconds = time.perf_counter() - started
        stats = world.stats()
        systems: dict[str, Any] = {}
        for name in SYSTEMS:
            emulator = world.sandbox.servers[name].emulator
            calls = int(stats[name]["total"])
            systems[name] = {
                "calls": calls,
                "limit": f"{emulator.rate_limit}/{emulator.rate_window:g}s",
                "min_s": round(
                    min_wall_seconds(
                        calls, emulator.rate_limit, emulator.rate_window, LATENCY_MS / 1000
                    ),
                    2,
                ),
                "429s": int(stats[name]["statuses"].get("429", 0)),
            }
    slowest = max(systems.values(), key=lambda s: s["min_s"])
    return {
        "bench": "wall_time",
        "deals": deals,
        "status": outcome.status.value,
        "wall_s": round(seconds, 2),
        "slowest_min_s": slowest["min_s"],
        "ratio_to_min": round(seconds / slowest["min_s"], 2) if slowest["min_s"] else None,
        "sum_of_minimums_s": round(sum(s["min_s"] for s in systems.values()), 2),
        "received_429": sum(s["429s"] for s in systems.values()),
        "systems": systems,
    }
