"""A close date cleared in another CRM reaches Pipedrive in a PATCH of its own: API v2's spec
does not mark `expected_close_date` nullable, and were Pipedrive to refuse the clear, a single
PATCH would take the deal's other changes down with it, every night."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from connectors.base import NativeUpdate
from connectors.pipedrive import PipedriveConnector
from connectors.sandbox.launcher import Sandbox
from mapping import deal_from_pipedrive, update_for_pipedrive
from mapping.model import Deal
from tests.connectors import contract
from tests.pipedrive.conftest import FAST, mapping_context


def _cleared_with_a_new_amount(connector: PipedriveConnector) -> tuple[Deal, NativeUpdate]:
    ctx = mapping_context(connector)
    record = next(
        d
        for d in connector.deals()
        if d["status"] == "open" and d.get("expected_close_date") and d.get("org_id")
    )
    deal = deal_from_pipedrive(record, ctx)
    body = update_for_pipedrive(deal, {"close_date": None, "amount": Decimal("777")}, ctx)
    return deal, NativeUpdate(deal.id, body)


def _now(connector: PipedriveConnector, deal: Deal) -> Deal:
    [fresh] = connector.read_deals([deal.id])
    return deal_from_pipedrive(fresh, mapping_context(connector))


def test_a_refused_close_date_clear_keeps_the_deals_other_changes_and_says_what_failed(
    connector: PipedriveConnector, sandbox: Sandbox, pd_data: dict[str, Any]
) -> None:
    deal, update = _cleared_with_a_new_amount(connector)
    contract.set_faults(sandbox, "pipedrive", replace(FAST, close_date_not_nullable=True))

    [result] = connector.update_deals([update])

    assert not result.ok
    assert result.error is not None and result.error.startswith(
        "its other fields were written, but clearing expected_close_date was refused: Invalid "
    )
    after = _now(connector, deal)
    assert after.value is not None and after.value.amount == Decimal("777")
    assert after.close_date == deal.close_date


def test_a_close_date_clear_pipedrive_takes_is_written_with_the_rest_in_two_patches(
    connector: PipedriveConnector, sandbox: Sandbox, pd_data: dict[str, Any]
) -> None:
    deal, update = _cleared_with_a_new_amount(connector)
    contract.clear_stats(sandbox, "pipedrive")

    [result] = connector.update_deals([update])

    assert result.ok, result.error
    assert contract.stats(sandbox, "pipedrive") == {"PATCH /api/v2/deals/{id}": 2}
    after = _now(connector, deal)
    assert after.value is not None and after.value.amount == Decimal("777")
    assert after.close_date is None
