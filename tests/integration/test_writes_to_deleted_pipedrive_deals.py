"""Pipedrive keeps a deleted deal readable (status "deleted") for 30 days, and it still holds
its values. A write to it must not go out: it is reported as drifted, saying the deal was
deleted, as a deal Salesforce or HubSpot no longer return is. A rollback (whose changes carry
no modification time to compare) used to write into the deleted deal and report it applied;
an apply reported it as "modified at ..., after the plan read it".
"""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def _cli(world: World, *args: str) -> dict[str, Any]:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config), "--format", "json"])
    assert out.exit_code in (0, 1), out.output  # 1: owners the generated data cannot map
    return dict(json.loads(out.stdout))


def test_rollback_does_not_write_into_a_deal_deleted_in_pipedrive_since_the_run(
    small_world: World,
) -> None:
    world = small_world
    applied = _cli(world, "reconcile", "--yes")
    written = sorted({c["id"] for c in applied["changes"] if c["system"] == "pipedrive"})
    assert written, "the fixture should plan writes to Pipedrive"
    deal_id = written[0]
    pipedrive: Any = world.sandbox.servers["pipedrive"].emulator
    with pipedrive.lock:  # someone deletes the deal in Pipedrive
        pipedrive.store.delete(int(deal_id))
    writes_before = pipedrive.store.deals[int(deal_id)]["update_time"]

    rolled = _cli(world, "rollback", applied["run_id"], "--apply")

    mine = [r for r in rolled["results"] if r["system"] == "pipedrive" and r["id"] == deal_id]
    assert mine and {r["outcome"] for r in mine} == {"drifted"}, mine
    assert all("deleted" in r["reason"] for r in mine), mine
    assert pipedrive.store.deals[int(deal_id)]["update_time"] == writes_before
