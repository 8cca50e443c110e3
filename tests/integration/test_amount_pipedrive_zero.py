"""A deal without an amount in Salesforce and HubSpot holds 0 in Pipedrive, which keeps no
empty value: crmsync reads that 0 as no amount (mapping.model.money_or_none), so the three
agree, and no later run carries Pipedrive's 0 over the blank amounts of the other CRMs.

Before, the 0 was an amount: the decided blank amount was left out for Pipedrive (listed in
the plan's errors every run) with the base noting the 0 it kept; earlier still, any edit making
Pipedrive's copy the newest one carried its 0 to the other CRMs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World

# "Gekko Ltd — Analytics Add-on 2026", open in all three CRMs (generated data, seed 3).
SALESFORCE, HUBSPOT, PIPEDRIVE = "0065g000000000KAAQ", "9100000140", 22


def _reconcile(world: World, *args: str) -> dict[str, Any]:
    argv = ["reconcile", *args, "--config", str(world.config), "--format", "json"]
    out = CliRunner().invoke(main, argv)
    assert out.exit_code in (0, 1), out.output  # 1: owners the generated data cannot map
    return dict(json.loads(out.stdout))


def _emulator(world: World, system: str) -> Any:
    return world.sandbox.servers[system].emulator


def _clear_amounts(world: World) -> None:
    """People empty the amount everywhere; Pipedrive stores its empty value as 0. HubSpot's
    edit is the last one, so the blank amount is the newest."""
    pipedrive = _emulator(world, "pipedrive")
    with pipedrive.lock:
        pipedrive.store.update(PIPEDRIVE, {"value": 0})
    salesforce = _emulator(world, "salesforce")
    with salesforce.lock:
        salesforce.store.apply(salesforce.store.check_update(SALESFORCE, {"Amount": None}))
    time.sleep(1.1)  # Pipedrive stamps whole seconds
    hubspot = _emulator(world, "hubspot")
    with hubspot.lock:
        hubspot.store.update(HUBSPOT, {"amount": ""})


def test_pipedrive_zero_for_a_cleared_amount_is_not_carried_to_the_other_crms_later(
    small_world: World,
) -> None:
    world = small_world
    _clear_amounts(world)
    first = _reconcile(world, "--yes")
    ids = {SALESFORCE, HUBSPOT, str(PIPEDRIVE)}
    assert not [e for e in first["errors"] if e["id"] in ids], first["errors"]
    assert not [c for c in first["changes"] if c["id"] in ids and c["field"] == "amount"]
    time.sleep(1.1)
    pipedrive = _emulator(world, "pipedrive")
    with pipedrive.lock:  # later, someone renames the deal in Pipedrive: its newest copy
        pipedrive.store.update(PIPEDRIVE, {"title": "Gekko Ltd — Analytics Add-on 2026 (EU)"})

    plan = _reconcile(world, "--dry-run")

    mine = {(c["system"], c["id"]): c for c in plan["changes"] if c["field"] == "amount"}
    assert not mine, [(c["to"], c["reason"]) for c in mine.values()]
    renamed = {(c["system"], c["id"]) for c in plan["changes"] if c["field"] == "name"}
    assert renamed == {("salesforce", SALESFORCE), ("hubspot", HUBSPOT)}
