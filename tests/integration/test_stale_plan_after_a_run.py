"""A plan saved for review (`reconcile --dry-run --plan-out`) and applied by hand after another
run (the nightly job, say) has applied the same writes: nothing is written twice."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.sandbox.faults import Faults
from tests.integration.conftest import World
from tests.integration.processes import run
from tests.integration.test_rollback_deletes_creates import _create_missing


def _hubspot_deals(world: World) -> int:
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    return len(hubspot.store.live)


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_saved_plan_applied_after_a_run_that_made_its_copies_creates_none_again(
    pg_world: World,
) -> None:
    world = pg_world
    _create_missing(world)
    plan = world.config.with_name("plan.json")
    made = run(world, "reconcile", "--dry-run", "--plan-out", str(plan), "--format", "json")
    assert made.popen.returncode == 0, made.err
    assert '"system": "hubspot"' in plan.read_text()
    before = _hubspot_deals(world)
    # HubSpot's search shows a deal seconds to minutes after it is stored
    world.sandbox.servers["hubspot"].faults.set(Faults(search_lag=600))
    nightly = run(world, "reconcile", "--yes")
    created = _hubspot_deals(world) - before
    assert created > 0, nightly.err
    by_hand = run(world, "apply", str(plan), "--yes")
    assert by_hand.popen.returncode == 0, by_hand.err
    assert _hubspot_deals(world) - before == created, by_hand.out
