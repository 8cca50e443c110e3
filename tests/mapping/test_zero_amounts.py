"""An amount of 0 is no amount. Pipedrive has no empty value: a deal created without one holds
0 ("If omitted, value will be set to 0"), and a cleared one reads back as 0. Read as an amount,
that 0 disagreed with the empty amount of the same deal elsewhere, and a reconcile wrote 0 over
Salesforce's and HubSpot's empty amounts (or could never clear Pipedrive's). How each CRM
reads a 0: the "zero amount" cases of test_{salesforce,hubspot,pipedrive}_mapping.py."""

from __future__ import annotations

from decimal import Decimal

from test_pipedrive_mapping import pd_deal
from test_write_payloads import round_trip

from mapping import deal_from_pipedrive
from tests.mapping.conftest import make_ctx


def test_a_small_amount_is_still_an_amount() -> None:
    deal = deal_from_pipedrive(pd_deal(value=0.01), make_ctx("pipedrive"))
    assert deal.value is not None and deal.value.amount == Decimal("0.01")


def test_clearing_a_pipedrive_amount_writes_0_which_reads_back_as_none() -> None:
    before, after, payload = round_trip("pipedrive", {"amount": None, "currency": None})
    assert payload == {"value": 0}  # its currency stays: Pipedrive requires one
    assert before["amount"] is not None
    assert (after["amount"], after["currency"]) == (None, None)
