"""`rollback --apply` or `apply PLAN` while a (scheduled) reconcile is still pulling. The
reconcile read the CRMs before such a write; the bases it then stores from what it read would
undo the write's bases, and the next reconcile would take the restored values for new edits
and carry them over the CRM whose edit the rolled-back run had copied. So the write waits for
no reconcile: it is refused, writing nothing, and works once the reconcile is over."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from click.testing import CliRunner

from connectors.sandbox.faults import Faults
from sync.cli import main
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World
from tests.integration.test_rollback_restores_fields import _amount_changes, _cli
from tests.sandbox_env import CRMSYNC, count_writes, crmsync_env


def _runs(world: World) -> int:
    with open_runtime(str(world.config), connect=False) as rt:
        return len(rt.store.runs.recent(100))


def _writes(world: World) -> int:
    return sum(count_writes(stats) for stats in world.stats().values())


def test_a_rollback_or_apply_while_a_reconcile_runs_is_refused_and_works_after_it(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    _cli(world, "reconcile", "--yes")  # the first sync: the CRMs agree, bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    bump_amounts(world, "hubspot", [ids["hubspot"]], step=7)  # a person edits HubSpot
    applied = _cli(world, "reconcile", "--yes")
    assert set(_amount_changes(applied, ids)) == {"salesforce", "pipedrive"}
    plan = tmp_path / "plan.json"
    _cli(world, "reconcile", "--dry-run", "--plan-out", str(plan))

    hubspot = world.sandbox.servers["hubspot"]
    hubspot.faults.set(Faults(latency_ms=1500))  # what the rollback does not write is slow
    before = _runs(world)
    args = [*CRMSYNC, "reconcile", "--config", str(world.config), "--yes"]
    scheduled = subprocess.Popen(args, env=crmsync_env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while _runs(world) == before:  # it records its run once it holds the lock
            assert scheduled.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        writes = _writes(world)
        for command in (["rollback", applied["run_id"], "--apply"], ["apply", str(plan)]):
            out = CliRunner().invoke(main, [*command, "--config", str(world.config), "--yes"])
            assert out.exit_code == 1, out.output
            assert "'reconcile' is already running" in out.output
        assert _writes(world) == writes
        assert scheduled.poll() is None, "the reconcile ended before the writes were tried"
        _out, err = scheduled.communicate(timeout=120)
        assert scheduled.returncode in (0, 1), err
    finally:
        hubspot.faults.set(Faults())
        if scheduled.poll() is None:
            scheduled.kill()
            scheduled.communicate()

    _cli(world, "rollback", applied["run_id"], "--apply")
    again = _amount_changes(_cli(world, "reconcile", "--dry-run"), ids)
    assert "hubspot" not in again, again["hubspot"]  # the edit the run carried is not reverted
    assert set(again) == {"salesforce", "pipedrive"}
