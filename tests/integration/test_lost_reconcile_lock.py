"""A reconcile whose PostgreSQL reconcile lock is lost while it applies (its session ended:
a server restart, a dropped connection, pg_terminate_backend) sends no further batch: another
reconcile could hold the lock by then and write the same records. It exits 1 with one line;
the batches it sent are journaled, so the next reconcile finishes the work."""

from __future__ import annotations

import json

import pytest

from sync.locks import RECONCILE_LOCK
from tests.integration.conftest import World
from tests.integration.processes import (
    assert_stopped_on_a_lost_lock,
    end_lock_session_of,
    paused,
    run,
    runs,
)

pytestmark = pytest.mark.postgres

HUBSPOT_UPDATE = "POST /crm/v3/objects/deals/batch/update"
LATER = ("pipedrive", "salesforce")  # instances are written in name order, after hubspot


def _writes(world: World, system: str) -> int:
    requests = world.stats()[system]["requests"]
    return sum(n for endpoint, n in requests.items() if not endpoint.startswith("GET "))


def test_a_reconcile_that_lost_its_lock_sends_no_further_batch_and_the_next_one_finishes(
    pg_world: World,
) -> None:
    world = pg_world
    with paused(world, "hubspot", HUBSPOT_UPDATE, "reconcile", "--yes") as first:
        end_lock_session_of(world, RECONCILE_LOCK, "job")
        before = {system: _writes(world, system) for system in LATER}
    after = {system: _writes(world, system) for system in LATER}

    assert_stopped_on_a_lost_lock(first, "job 'reconcile'")
    assert after == before, "a batch was sent after the lock was lost"
    [stopped] = [r for r in runs(world) if r.kind.value == "reconcile"]
    assert stopped.status.value == "failed" and "lock lost" in (stopped.error or "")

    rerun = run(world, "reconcile", "--yes")
    assert rerun.popen.returncode in (0, 3), rerun.err
    assert any(_writes(world, system) > before[system] for system in LATER), "nothing finished"
    check = run(world, "reconcile", "--dry-run", "--format", "json")
    assert check.popen.returncode in (0, 3), check.err
    assert json.loads(check.out)["changes"] == []
