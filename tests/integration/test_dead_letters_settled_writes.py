"""A field change refused once, then sent again by an apply whose answers were cut (left in
doubt), is found written by the next apply of another plan: it went through, so its failure is
gone, as a copy's is (tests/integration/test_dead_creates.py). It stayed "retrying" for good:
the CRMs agreed by then, so no later write of that field came to clear it."""

from __future__ import annotations

import json

import yaml

from connectors.sandbox.faults import Faults
from sync.apply_run import guarded_apply
from sync.runtime import open_runtime
from tests.integration.conftest import World, once_served
from tests.integration.test_dead_creates import _cli, _letters, _reconcile
from tests.integration.test_unconfirmed_creates import _apply


def test_refused_changes_a_cut_apply_wrote_clear_their_failures_once_settled(
    small_world: World,
) -> None:
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(max_attempts=3, targets=["hubspot"])
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    plan = json.loads(_cli(world, "reconcile", "--dry-run", "--format", "json").stdout)
    ids = sorted({c["id"] for c in plan["changes"] if c["system"] == "hubspot"})
    assert ids, "the generated data should need changes in hubspot"
    hubspot = world.sandbox.servers["hubspot"].faults
    hubspot.set(Faults(fail_ids=tuple(ids)))
    _reconcile(world)
    refused = {(r["id"], r["field"]) for r in _letters(world, "--retrying")}
    assert {i for i, _ in refused} == set(ids)

    planned = world.reconcile("cut")
    hubspot.set(Faults(latency_ms=30))  # time to switch between two calls
    # Once the apply has read the deals again, every answer is cut: what it sends is in doubt.
    read = "POST /crm/objects/2026-09/deals/batch/read"
    try:
        with (
            once_served(world, "hubspot", read, 1, lambda: hubspot.set(Faults(drop=1.0))),
            open_runtime(str(world.config), connector_options={"backoff_base": 0.01}) as rt,
        ):
            cut = guarded_apply(rt, planned.plan, run_id="cut", yes=True, contexts=planned.contexts)
    finally:
        hubspot.set(Faults())
    assert all((r.reason or "").startswith("in doubt") for r in cut.results if r.field), [
        (r.field, r.outcome, r.reason) for r in cut.results
    ]
    assert {(r["id"], r["field"]) for r in _letters(world, "--retrying")} == refused

    _apply(world, world.reconcile("next").plan, "next", later=True)
    assert _letters(world, "--retrying") == []
