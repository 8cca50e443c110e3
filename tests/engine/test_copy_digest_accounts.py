"""A copy's digest (what its dead letter is of) holds the account a Salesforce or HubSpot copy
goes under by name, so a corrected account makes the letter stale; a copy under none keeps the
digest crmsync journaled before creates named an account, so no older letter goes stale at
the first reconcile after an upgrade. Pure: no CRM."""

from __future__ import annotations

from typing import Any

import pytest

from sync.copy_digest import create_digest

BASE: dict[str, Any] = {
    "system": "salesforce",
    "entity": "e1",
    "source": {"system": "pipedrive", "id": "7"},
    "values": {
        "name": "Deal A",
        "amount": "1500.00",
        "currency": "EUR",
        "close_date": "2025-03-01",
    },
    "target": {"pipeline": "default", "native_stage": "Prospecting"},
}
# create_digest(BASE) as crmsync journaled it before a copy's account was part of it
JOURNALED = "486c54ccd8b3cc10123488d74ea68495"
NONE = {"by": "none", "name": None, "id": None}


@pytest.mark.parametrize("system", ["salesforce", "hubspot"])
@pytest.mark.parametrize(
    "account", [None, NONE, {**NONE, "reason": "hubspot deal 9: 2 companies are associated"}]
)
def test_a_copy_under_no_account_keeps_the_digest_older_letters_were_journaled_with(
    system: str, account: dict[str, Any] | None
) -> None:
    create = {**BASE, "system": system, **({"account": account} if account else {})}
    assert create_digest(create) == JOURNALED


@pytest.mark.parametrize("system", ["salesforce", "hubspot"])
def test_the_account_a_copy_goes_under_by_name_is_part_of_what_it_carries(system: str) -> None:
    def under(name: str) -> str:
        return create_digest({**BASE, "system": system, "account": {"by": "account", "name": name}})

    assert under("Acme Corp") != JOURNALED
    assert under("Acme Corp") != under("Globex")
    assert under("Acme Corp") == under(" ACME CORP ")  # the same Account is found by either
