"""A reconcile whose PostgreSQL reconcile lock is lost while it applies (its session ended:
a server restart, a dropped connection, pg_terminate_backend) sends no further batch: another
reconcile could hold the lock by then and write the same records. It exits 1 with one line;
the batches it sent are journaled, so the next reconcile finishes the work."""

from __future__ import annotations

import json

import pytest

from sync.locks import RECONCILE_LOCK
from sync.writes import ONE_CALL_EACH_BATCH
from tests.integration.conftest import World
from tests.integration.crm_users import Editors
from tests.integration.processes import (
    assert_stopped_on_a_lost_lock,
    end_lock_session_of,
    paused,
    run,
    runs,
)

pytestmark = pytest.mark.postgres

HUBSPOT_UPDATE = "POST /crm/objects/2026-09/deals/batch/update"
PIPEDRIVE_UPDATE = "PATCH /api/v2/deals/{id}"
LATER = ("pipedrive", "salesforce")  # instances are written in name order, after hubspot


def _writes(world: World, system: str) -> int:
    requests = world.stats()[system]["requests"]
    return sum(n for endpoint, n in requests.items() if not endpoint.startswith("GET "))


@pytest.mark.slow  # default suite time: in `pytest -m slow`
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


@pytest.fixture
def pg_world_to_write(pg_world: World) -> World:
    """Linked once; then 30 amounts changed in Salesforce on deals linked in Pipedrive too,
    for 30 Pipedrive writes (several batches) in the next reconcile."""
    first = run(pg_world, "reconcile", "--yes")
    assert first.popen.returncode in (0, 3), first.err
    members = pg_world.members().values()
    both = sorted(m["salesforce"] for m in members if {"salesforce", "pipedrive"} <= m.keys())
    editors = Editors(pg_world, seed=1)
    for n, deal_id in enumerate(both[:30]):
        editors.set_value("salesforce", deal_id, "amount", 1_000_000 + n)
    return pg_world


def test_a_pipedrive_apply_that_lost_its_lock_sends_at_most_the_rest_of_its_batch(
    pg_world_to_write: World,
) -> None:
    """Pipedrive writes one call per deal: the lock is checked every ONE_CALL_EACH_BATCH deals,
    not every 50 or 100 (what another reconcile holding the lock by then could race)."""
    world = pg_world_to_write
    writes = _writes(world, "pipedrive")
    with paused(world, "pipedrive", PIPEDRIVE_UPDATE, "reconcile", "--yes") as first:
        end_lock_session_of(world, RECONCILE_LOCK, "job")
        before = _writes(world, "pipedrive")
    after = _writes(world, "pipedrive")
    assert_stopped_on_a_lost_lock(first, "job 'reconcile'")
    rerun = run(world, "reconcile", "--yes")
    assert rerun.popen.returncode in (0, 3), rerun.err
    left = _writes(world, "pipedrive") - after
    assert after - before < ONE_CALL_EACH_BATCH, (writes, before, after, left)
    assert left > ONE_CALL_EACH_BATCH, (writes, before, after, left)  # more than a batch to go
