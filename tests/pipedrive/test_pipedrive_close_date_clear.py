"""A close date cleared in another CRM reaches Pipedrive as `expected_close_date: null` in the
deal's one PATCH. API v2's spec does not mark that field nullable: were Pipedrive to refuse
it, the deal's update fails whole, with Pipedrive's reason, and nothing of it is written, so
the apply's record of what landed (journal, audit, bases) stays true."""

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


def test_a_refused_close_date_clear_fails_the_whole_update_and_writes_none_of_it(
    connector: PipedriveConnector, sandbox: Sandbox, pd_data: dict[str, Any]
) -> None:
    deal, update = _cleared_with_a_new_amount(connector)
    contract.set_faults(sandbox, "pipedrive", replace(FAST, close_date_not_nullable=True))

    [result] = connector.update_deals([update])

    assert not result.ok
    assert result.error == "Invalid expected_close_date: None is not a string"
    after = _now(connector, deal)
    assert (after.value, after.close_date) == (deal.value, deal.close_date)


def test_a_close_date_clear_is_written_with_the_rest_in_one_patch(
    connector: PipedriveConnector, sandbox: Sandbox, pd_data: dict[str, Any]
) -> None:
    deal, update = _cleared_with_a_new_amount(connector)
    contract.clear_stats(sandbox, "pipedrive")

    [result] = connector.update_deals([update])

    assert result.ok, result.error
    assert contract.stats(sandbox, "pipedrive") == {"PATCH /api/v2/deals/{id}": 1}
    after = _now(connector, deal)
    assert after.value is not None and after.value.amount == Decimal("777")
    assert after.close_date is None
