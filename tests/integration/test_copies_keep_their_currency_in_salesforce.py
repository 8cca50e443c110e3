"""A copy `push.create_missing` makes in a multi-currency Salesforce org holds the currency
crmsync meant, even when the integration user's personal currency (what Salesforce gives a
record created without a CurrencyIsoCode) differs from the instance's configured `currency`.
Otherwise the copy reads back in that other currency, and the next run takes it for an edit made
in Salesforce and spreads it, amount and currency, over the other CRMs."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import World
from tests.integration.test_fresh_copies_have_a_base import _changes
from tests.integration.test_partial_targets import _reconcile
from tests.integration.test_picks_of_created_copies import _configure


def _personal_currency(world: World, code: str) -> None:
    """An admin sets the API session user's personal currency (the org's default for it)."""
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        user = next(u for u in em.store.tables["User"] if u["Id"] == em.store.api_user)
        user["DefaultCurrencyIsoCode"] = code


def test_a_copy_created_in_salesforce_keeps_the_configured_currency_over_the_users_own(
    small_world: World,
) -> None:
    _personal_currency(small_world, "EUR")  # the config says USD
    _configure(small_world, create_missing=True)
    migration = _reconcile(small_world, dry_run=False)
    copies = {
        c["entity"]: c["values"]
        for c in migration.creates
        if c["system"] == "salesforce" and c["values"]["currency"] == "USD"
    }
    assert copies, "the generated world has no USD deal missing from Salesforce"

    em: Any = small_world.sandbox.servers["salesforce"].emulator
    members = small_world.members()
    with em.lock:
        held = {e: em.store.by_id[members[e]["salesforce"]]["CurrencyIsoCode"] for e in copies}
    assert held == dict.fromkeys(copies, "USD"), "Salesforce stamped its user's currency"

    after = _reconcile(small_world, dry_run=True)
    ours = {(s, i) for e in copies for s, i in members[e].items()}
    for field in ("amount", "currency"):
        spread = {k: v for k, v in _changes(after, field).items() if k in ours}
        assert spread == {}, f"the copies' {field} spread as an edit made in Salesforce"
