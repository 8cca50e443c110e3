"""A saved plan's copies of a deal that was deleted since: not created."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import World
from tests.integration.processes import run
from tests.integration.test_rollback_deletes_creates import _create_missing


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_saved_plan_does_not_create_copies_of_a_deal_deleted_since(pg_world: World) -> None:
    world = pg_world
    _create_missing(world)
    plan = world.config.with_name("plan.json")
    made = run(world, "reconcile", "--dry-run", "--plan-out", str(plan))
    assert made.popen.returncode == 0, made.err
    creates = json.loads(plan.read_text())["creates"]
    source = next(c["source"] for c in creates if c["source"]["system"] == "salesforce")
    salesforce: Any = world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:
        salesforce.store.delete(salesforce.store.by_id[source["id"]])
    pulled = run(world, "pull")
    assert pulled.popen.returncode == 0, pulled.err
    creates_of_it = [c for c in creates if c["source"] == source]
    entities = {c["entity"] for c in creates_of_it}

    applied = run(world, "apply", str(plan), "--yes", "--format", "json")
    assert applied.popen.returncode == 0, applied.err
    made = {e: sorted(m) for e, m in world.members().items() if e in entities}
    assert all(m == ["salesforce"] for m in made.values()), made
    results = json.loads(applied.out)["results"]
    skipped = [r for r in results if r["op"] == "create" and r["outcome"] == "drifted"]
    assert len(skipped) == len(creates_of_it), results
    assert all("was deleted since the plan was made" in r["reason"] for r in skipped), skipped
