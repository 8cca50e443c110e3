"""What mapping.pipedrive writes, the v2 emulator takes as it is (v2 coerces nothing: numbers are
numbers) and a fresh read maps back to the change: owner by `owner_id`, amount, probability,
close date, stage; the organization's name comes with the read."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from connectors.base import NativeUpdate
from connectors.pipedrive import PipedriveConnector
from mapping import deal_from_pipedrive, update_for_pipedrive
from tests.pipedrive.conftest import mapping_context


def test_a_mapped_update_is_taken_by_v2_and_reads_back_as_the_change(
    connector: PipedriveConnector, pd_data: dict[str, Any]
) -> None:
    ctx = mapping_context(connector)
    record = next(
        d
        for d in connector.deals()
        if d["status"] == "open" and d.get("org_id") and d["pipeline_id"] == 1
    )
    deal = deal_from_pipedrive(record, ctx)
    assert deal.extra["account"] == record["org_name"] and deal.extra["account_id"]
    other = next(e for e in ctx.owners.values() if e != deal.owner_email)
    stage = next(s for s in ("negotiation", "proposal", "qualified") if s != deal.stage)
    changes = {
        "owner_email": other,
        "amount": Decimal("1234.5"),
        "probability": Decimal("0.35"),
        "close_date": date(2027, 3, 31),
        "stage": stage,
    }
    body = update_for_pipedrive(deal, changes, ctx)
    [result] = connector.update_deals([NativeUpdate(deal.id, body)])
    assert result.ok, result.error
    [fresh] = connector.read_deals([deal.id])
    after = deal_from_pipedrive(fresh, ctx)
    assert (after.owner_email, after.value.amount if after.value else None) == (
        other,
        Decimal("1234.5"),
    )
    assert (after.probability, after.close_date, after.stage) == (
        Decimal("0.35"),
        date(2027, 3, 31),
        stage,
    )
    assert after.extra["account"] == deal.extra["account"]
