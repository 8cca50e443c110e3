"""`rollback --apply` of a run that gave an amount to a deal without one: the amount goes, and
the deal's currency field gets back the code it held before the run. Canonically a deal without
an amount has no currency, but natively the field holds one (Salesforce multi-currency orgs
allow no record without a CurrencyIsoCode); the rollback used to write it null (Salesforce)
or empty (HubSpot)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from sync import schema
from sync.cli import main
from sync.runtime import open_runtime
from tests.integration.conftest import World

# The native amount and currency fields of each CRM.
FIELDS = {"salesforce": ("Amount", "CurrencyIsoCode"), "hubspot": ("amount", "deal_currency_code")}
EMPTY = {"salesforce": None, "hubspot": ""}


def _cli(world: World, *args: str) -> Any:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config), "--format", "json"])
    assert out.exit_code in (0, 1), out.output  # 1: owners the generated data cannot map
    return json.loads(out.stdout)


def _edit(world: World, system: str, deal_id: str, amount: Any, currency: str) -> None:
    """A person sets the amount and currency in the CRM's own screens (no API call)."""
    em: Any = world.sandbox.servers[system].emulator
    amount_field, currency_field = FIELDS[system]
    with em.lock:
        if system == "salesforce":
            values = {amount_field: amount, currency_field: currency}
            em.store.apply(em.store.check_update(deal_id, values))
        else:
            text = "" if amount is None else str(amount)
            em.store.update(deal_id, {amount_field: text, currency_field: currency})


def _money(world: World, system: str, deal_id: str) -> tuple[Any, Any]:
    """(amount, currency) as the CRM holds them."""
    em: Any = world.sandbox.servers[system].emulator
    amount_field, currency_field = FIELDS[system]
    with em.lock:
        if system == "salesforce":
            record = em.store.by_id[deal_id]
        else:
            record = em.store.live[deal_id]["properties"]
        return record.get(amount_field), record.get(currency_field)


def _run_giving_an_amount(world: World, target: str) -> tuple[dict[str, str], str]:
    """A deal in Salesforce and HubSpot has no amount in either, its currency field EUR; a
    person gives the other copy 700 GBP, and a run carries that to `target`."""
    _cli(world, "reconcile", "--yes")  # the first sync: the CRMs agree, bases are stored
    ids = next(m for m in world.members().values() if set(m) == {"salesforce", "hubspot"})
    for system, deal_id in ids.items():
        _edit(world, system, deal_id, None, "EUR")
    _cli(world, "reconcile", "--yes")  # both cleared alike: agreed, nothing to write
    source = "hubspot" if target == "salesforce" else "salesforce"
    _edit(world, source, ids[source], 700, "GBP")
    applied = _cli(world, "reconcile", "--yes")
    written = {
        (c["field"], c["from"], c["to"]) for c in applied["changes"] if c["id"] == ids[target]
    }
    assert written == {("amount", None, "700"), ("currency", None, "GBP")}
    assert _money(world, target, ids[target]) in ((700, "GBP"), ("700", "GBP"))
    return ids, applied["run_id"]


@pytest.mark.parametrize("target", ["salesforce", "hubspot"])
def test_rollback_of_an_amount_given_to_a_deal_without_one_puts_its_currency_field_back(
    small_world: World, target: str
) -> None:
    world = small_world
    ids, run_id = _run_giving_an_amount(world, target)

    result = _cli(world, "rollback", run_id, "--apply")

    outcomes = {r["field"]: r["outcome"] for r in result["results"] if r["id"] == ids[target]}
    assert outcomes == {"amount": "applied", "currency": "applied"}
    assert _money(world, target, ids[target]) == (EMPTY[target], "EUR")
    shown = _cli(world, "rollback", run_id)
    back = {c["field"]: c for c in shown["changes"] if c["id"] == ids[target]}
    assert back["currency"]["to"] is None and back["currency"]["native_to"] == {"currency": "EUR"}


def test_rollback_leaves_the_currency_of_an_amount_someone_set_since(small_world: World) -> None:
    world = small_world
    ids, run_id = _run_giving_an_amount(world, "salesforce")
    _edit(world, "salesforce", ids["salesforce"], 800, "GBP")  # a person changes the amount

    result = _cli(world, "rollback", run_id, "--apply")

    mine = {r["field"]: r for r in result["results"] if r["id"] == ids["salesforce"]}
    assert {f: r["outcome"] for f, r in mine.items()} == {
        "amount": "drifted",
        "currency": "drifted",
    }
    assert "800" in mine["currency"]["reason"], mine["currency"]["reason"]
    assert _money(world, "salesforce", ids["salesforce"]) == (800, "GBP")


def test_a_run_audited_without_native_currencies_leaves_the_salesforce_currency_as_it_is(
    small_world: World,
) -> None:
    """An older crmsync audited the canonical value alone (no currency without an amount):
    Salesforce keeps the code it holds rather than getting a null one."""
    world = small_world
    ids, run_id = _run_giving_an_amount(world, "salesforce")
    with (
        open_runtime(str(world.config), connect=False) as rt,
        schema.transaction(rt.store.engine) as conn,
    ):
        conn.execute(
            update(schema.audit)
            .where(schema.audit.c.run_id == run_id, schema.audit.c.field == "currency")
            .values(before=None)
        )

    result = _cli(world, "rollback", run_id, "--apply")

    outcomes = {r["field"]: r["outcome"] for r in result["results"] if r["id"] == ids["salesforce"]}
    assert outcomes == {"amount": "applied", "currency": "applied"}
    assert _money(world, "salesforce", ids["salesforce"]) == (None, "GBP")


def test_rollback_clears_a_pipedrive_value_to_0_which_is_no_amount(small_world: World) -> None:
    """Pipedrive keeps no empty value: a deal without one holds 0, which crmsync reads as no
    amount. Rolling back a run that gave such a deal an amount writes 0 back, and the next
    reconcile does not carry a 0 to the other CRMs (it used to refuse such a rollback)."""
    world = small_world
    _cli(world, "reconcile", "--yes")
    ids = next(m for m in world.members().values() if set(m) == {"hubspot", "pipedrive"})
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        em.store.update(int(ids["pipedrive"]), {"currency": "EUR", "value": 0})
    _edit(world, "hubspot", ids["hubspot"], None, "EUR")
    _cli(world, "reconcile", "--yes")  # both without an amount: agreed
    _edit(world, "hubspot", ids["hubspot"], 700, "GBP")
    run_id = _cli(world, "reconcile", "--yes")["run_id"]

    result = _cli(world, "rollback", run_id, "--apply")

    mine = {r["field"]: r for r in result["results"] if r["id"] == ids["pipedrive"]}
    assert {f: r["outcome"] for f, r in mine.items()} == {
        "amount": "applied",
        "currency": "applied",
    }
    with em.lock:
        deal = em.store.deals[int(ids["pipedrive"])]
        assert (deal["value"], deal["currency"]) == (0, "EUR")
    again = _cli(world, "reconcile", "--dry-run")
    assert not [c for c in again["changes"] if c["id"] == ids["hubspot"]]
