"""Wall time of a full run under the CRMs' real rate limits and 50 ms latency per request.

The sandbox enforces each system's default rolling-window limit (HubSpot 100/10 s, Pipedrive
80/2 s, Salesforce 100/1 s) and answers 429 past it; crmsync paces itself with its defaults.
The yardstick is the rate-limited minimum of the slowest system for the calls it needed.

The sandboxes serve from a process of their own (`crmsync sandbox serve`), as the CRMs they
stand in for are remote: in crmsync's process, their hundreds of thousands of live records
were scanned by every full collection of crmsync's garbage collector (about a second of the
pull at 10k deals per CRM), and their request handling held crmsync's interpreter lock. Nor
is the dataset loaded here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.pipedrive import PipedriveEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from tests.benchmarks.bench_bounds import min_wall_seconds
from tests.benchmarks.bench_world import SYSTEMS, bench_dataset_file
from tests.sandbox_env import served

__all__ = ["LATENCY_MS", "wall_time_row"]

LATENCY_MS = 50.0
# Each API's default limit, which the served sandboxes enforce: (requests, window seconds).
LIMITS = {
    e.system: (e.rate_limit, e.rate_window)
    for e in (SalesforceEmulator, HubSpotEmulator, PipedriveEmulator)
}


def _control(info: dict[str, Any], system: str, method: str, what: str) -> Any:
    verify = str(info["ca_file"]) if system == "salesforce" else True
    url = f"{info[system]}/__sandbox/{what}"
    response = requests.request(method, url, verify=verify, timeout=10)
    response.raise_for_status()
    return response.json() if method == "GET" else None


def wall_time_row(deals: int, workdir: Path) -> dict[str, Any]:
    dataset = bench_dataset_file(deals)
    faults = f"latency_ms={LATENCY_MS:g},enforce_rate_limit=true"
    store = f"sqlite:///{workdir / 'bench.db'}"
    with served(workdir, dataset, store, faults=faults) as (config, info):
        for name in SYSTEMS:  # writing the config read each system's pipelines
            _control(info, name, "DELETE", "stats")
        with open_runtime(str(config)) as rt:
            started = time.perf_counter()
            outcome = run_reconcile(rt, dry_run=True, full=True)
            seconds = time.perf_counter() - started
        stats = {name: _control(info, name, "GET", "stats") for name in SYSTEMS}
    systems: dict[str, Any] = {}
    for name in SYSTEMS:
        calls = int(stats[name]["total"])
        limit, window = LIMITS[name]
        systems[name] = {
            "calls": calls,
            "limit": f"{limit}/{window:g}s",
            "min_s": round(min_wall_seconds(calls, limit, window, LATENCY_MS / 1000), 2),
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
