"""How much of a pull or a write loop is the CRM's rate limit, and how much is our own cost.

Each operation runs twice on the same sandbox: once with the emulator's limit lifted (its
rate-limit headers never reach zero, so the connector never waits: transport + server + our
CPU) and once under the system's real limit (HubSpot 100 per 10 s, Pipedrive 80 per 2 s). The
difference is time spent honouring the limit. A transport regression (Nagle / delayed ACK on
loopback costs ~40 ms a request) shows in `lifted_ms_per_call`. Timing is printed and
recorded, never asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.base import NativeUpdate
from connectors.sandbox.faults import Faults
from sync.pull import pull
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import World, bench_data, open_world

DEALS = 10_000
PUTS = 300
LIFTED = Faults(rate_limit=1_000_000)


def _pull_seconds(world: World, system: str) -> tuple[float, int]:
    with open_runtime(str(world.config), systems=[system]) as rt:
        world.clear_stats()
        started = time.perf_counter()
        pull(rt.config, rt.store, rt.connectors, full=True)
        return time.perf_counter() - started, world.stats()[system]["total"]


def _pipedrive_puts_seconds(world: World, ids: list[str], title: str) -> tuple[float, int]:
    with open_runtime(str(world.config), systems=["pipedrive"]) as rt:
        world.clear_stats()
        updates = [NativeUpdate(i, {"title": f"{title} {i}"}) for i in ids]
        started = time.perf_counter()
        results = rt.connectors["pipedrive"].update_deals(updates)
        seconds = time.perf_counter() - started
    assert all(r.ok for r in results)
    return seconds, world.stats()["pipedrive"]["total"]


def _row(
    op: str, system: str, lifted: tuple[float, int], real: tuple[float, int]
) -> dict[str, Any]:
    (lifted_s, calls), (real_s, _) = lifted, real
    return {
        "bench": "rate_limit_share",
        "op": op,
        "system": system,
        "calls": calls,
        "lifted_s": round(lifted_s, 2),
        "lifted_ms_per_call": round(lifted_s / calls * 1000, 1),
        "real_limit_s": round(real_s, 2),
        "waiting_share": round(max(0.0, real_s - lifted_s) / real_s, 2),
    }


@pytest.mark.benchmark
@pytest.mark.timeout(0)
def test_rate_limit_share_of_pulls_and_pipedrive_writes(
    record: Callable[[dict[str, Any]], None], tmp_path: Path
) -> None:
    data = bench_data(DEALS)
    rows = []
    for system in ("hubspot", "pipedrive"):
        # A fresh sandbox per measurement: a rolling window must not carry calls across.
        with open_world(data, tmp_path / f"{system}-lifted", faults=LIFTED) as world:
            lifted = _pull_seconds(world, system)
        with open_world(data, tmp_path / f"{system}-real") as world:
            real = _pull_seconds(world, system)
        rows.append(_row("full_pull", system, lifted, real))
    with open_world(data, tmp_path / "puts-lifted", faults=LIFTED) as world:
        ids = [str(i) for i in sorted(world.sandbox.servers["pipedrive"].emulator.store.deals)]
        lifted = _pipedrive_puts_seconds(world, ids[:PUTS], "lifted")
    with open_world(data, tmp_path / "puts-real") as world:
        real = _pipedrive_puts_seconds(world, ids[:PUTS], "real")
    rows.append(_row("update", "pipedrive", lifted, real))
    for row in rows:
        record(row)
    assert [r["calls"] for r in rows][-1] == PUTS
