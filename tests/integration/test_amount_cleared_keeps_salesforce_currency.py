"""An amount cleared in HubSpot is cleared in Salesforce too, and with it the deal's canonical
currency; Salesforce's CurrencyIsoCode keeps its code (a multi-currency org allows no record
without one). The plan says so (`native_to` on the currency change, "currency field keeps" in
the table) instead of promising a code it does not write."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def _reconcile(world: World, *args: str) -> Any:
    args = ("reconcile", *args, "--config", str(world.config))
    out = CliRunner(env={"COLUMNS": "300"}).invoke(main, args)
    assert out.exit_code in (0, 1), out.output  # 1: owners the generated data cannot map
    return out.stdout


def _salesforce_money(world: World, deal_id: str) -> tuple[Any, Any]:
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        record = em.store.by_id[deal_id]
        return record["Amount"], record["CurrencyIsoCode"]


def test_a_plan_clearing_an_amount_says_salesforce_keeps_its_currency_code(
    small_world: World,
) -> None:
    world = small_world
    _reconcile(world, "--yes", "--format", "json")  # the first sync: bases are stored
    ids = next(m for m in world.members().values() if {"salesforce", "hubspot"} <= set(m))
    sf = ids["salesforce"]
    amount, code = _salesforce_money(world, sf)
    assert amount is not None and code
    em: Any = world.sandbox.servers["hubspot"].emulator
    with em.lock:  # a person clears the HubSpot amount in HubSpot's own screens
        em.store.update(ids["hubspot"], {"amount": ""})

    plan = json.loads(_reconcile(world, "--dry-run", "--format", "json"))
    mine = {c["field"]: c for c in plan["changes"] if c["id"] == sf}
    assert (mine["amount"]["to"], mine["currency"]["from"], mine["currency"]["to"]) == (
        None,
        code,
        None,
    )
    assert mine["currency"]["native_to"] == {"currency": code}
    table = _reconcile(world, "--dry-run", "--format", "table")
    assert f"(empty) (currency field keeps {code})" in table, table

    _reconcile(world, "--yes", "--format", "json")
    assert _salesforce_money(world, sf) == (None, code)
    again = json.loads(_reconcile(world, "--dry-run", "--format", "json"))
    assert [c for c in again["changes"] if c["id"] == sf] == []
