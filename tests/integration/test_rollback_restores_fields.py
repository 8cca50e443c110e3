"""`rollback --apply` of a run that carried a user's edit to the other CRMs puts their values
back and leaves the store as before the run: its writes are crmsync's own, so the next
reconcile plans that edit again instead of taking the restored values for new edits and
carrying them over the CRM the user edited."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from sync.cli import main
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World


def _cli(world: World, *args: str) -> Any:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config), "--format", "json"])
    assert out.exit_code in (0, 1), out.output  # 1: owners the generated data cannot map
    return json.loads(out.stdout)


def _amount_changes(plan: dict[str, Any], ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    wanted = {(system, deal_id) for system, deal_id in ids.items()}
    return {
        c["system"]: c
        for c in plan["changes"]
        if (c["system"], c["id"]) in wanted and c["field"] == "amount"
    }


def test_after_a_rollback_the_next_plan_carries_the_users_edit_again_instead_of_reverting_it(
    small_world: World,
) -> None:
    world = small_world
    _cli(world, "reconcile", "--yes")  # the first sync: the CRMs agree, bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    bump_amounts(world, "hubspot", [ids["hubspot"]], step=7)  # a person edits HubSpot
    edited = _amount_changes(_cli(world, "reconcile", "--dry-run"), ids)
    assert set(edited) == {"salesforce", "pipedrive"}
    applied = _cli(world, "reconcile", "--yes")
    run_id = applied["run_id"]
    assert _amount_changes(applied, ids).keys() == edited.keys()

    _cli(world, "rollback", run_id, "--apply")

    again = _amount_changes(_cli(world, "reconcile", "--dry-run"), ids)
    assert "hubspot" not in again, again["hubspot"]  # the edit the run carried is not reverted
    assert {s: c["to"] for s, c in again.items()} == {s: c["to"] for s, c in edited.items()}
    assert all(c["reason"] == "changed in hubspot since last sync" for c in again.values())
