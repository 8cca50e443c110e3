"""Salesforce Opportunity -> canonical deal, table-driven over realistic REST records."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from mapping import (
    DealStatus,
    MappingContext,
    MappingError,
    Money,
    deal_from_salesforce,
    owner_from_salesforce,
    stage_history_from_salesforce,
    with_stage_history,
)
from tests.mapping.conftest import make_ctx


def opportunity(**fields: Any) -> dict[str, Any]:
    record = {
        "attributes": {
            "type": "Opportunity",
            "url": "/services/data/v59.0/sobjects/Opportunity/006A",
        },
        "Id": "006A000000XyZ01AAA",
        "Name": "Acme - 200 Widgets",
        "AccountId": "001A000000AbC01AAA",
        "OwnerId": "005A0000001",
        "StageName": "Value Proposition",
        "Amount": 15000.5,
        "CurrencyIsoCode": "EUR",
        "CloseDate": "2024-06-30",
        "Probability": 50.0,
        "ForecastCategory": "Pipeline",
        "IsClosed": False,
        "IsWon": False,
        "IsDeleted": False,
        "CreatedDate": "2024-01-15T09:30:00.000+0000",
        "LastModifiedDate": "2024-06-01T12:34:56.000+0000",
        "SystemModstamp": "2024-06-01T12:34:56.000+0000",
        "HubSpot_Deal_Id__c": "9876543210",
        "Pipedrive_Deal_Id__c": None,
        "Crmsync_Id__c": "ent-42",
    }
    record.update(fields)
    return record


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "open deal in a mapped stage",
        {},
        {
            "stage": "proposal",
            "native_stage": "Value Proposition",
            "status": DealStatus.OPEN,
            "value": Money(Decimal("15000.5"), "EUR"),
            "close_date": date(2024, 6, 30),
            "owner_email": "ada@example.com",
            "probability": Decimal("0.5"),
        },
    ),
    ("missing amount is no value", {"Amount": None}, {"value": None}),
    (
        "zero amount is no value (tests/mapping/test_zero_amounts.py)",
        {"Amount": 0},
        {"value": None},
    ),
    (
        "other currency",
        {"CurrencyIsoCode": "JPY", "Amount": 1200000},
        {"value": Money(Decimal(1200000), "JPY")},
    ),
    (
        "closed won through the stage",
        {"StageName": "Closed Won", "IsClosed": True, "IsWon": True},
        {"stage": "won", "status": DealStatus.WON},
    ),
    (
        "closed lost through the stage",
        {"StageName": "Closed Lost", "IsClosed": True},
        {"stage": "lost", "status": DealStatus.LOST},
    ),
    (
        "closed lost with no stage",
        {"StageName": None, "IsClosed": True, "IsWon": False},
        {"stage": "lost", "native_stage": "", "status": DealStatus.LOST},
    ),
    (
        "unmapped stage keeps the native stage and no funnel stage",
        {"StageName": "Legal Hold", "IsClosed": False},
        {"stage": None, "native_stage": "Legal Hold", "status": DealStatus.OPEN},
    ),
    ("unknown owner has no email", {"OwnerId": "005A0000099"}, {"owner_email": None}),
    (
        "owner relationship email wins",
        {"Owner": {"Email": "Carol@Example.COM"}},
        {"owner_email": "carol@example.com"},
    ),
    ("no probability", {"Probability": None}, {"probability": None}),
    ("links and marker", {}, {"external_ids": {"hubspot": "9876543210"}, "link_id": "ent-42"}),
    (
        "deleted flag is kept in extra",
        {"IsDeleted": True},
        {"extra": {"deleted": True, "account_id": "001A000000AbC01AAA"}},
    ),
    (
        "offset timestamps become UTC",
        {"CreatedDate": "2024-01-15T10:30:00.000+0100"},
        {"created_at": datetime(2024, 1, 15, 9, 30, tzinfo=UTC)},
    ),
]


@pytest.mark.parametrize(
    ("record_fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_opportunity_maps_to_canonical_deal(
    sf_ctx: MappingContext, record_fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    deal = deal_from_salesforce(opportunity(**record_fields), sf_ctx)
    for field, value in expected.items():
        assert getattr(deal, field) == value, field
    assert deal.pipeline == "default"
    assert deal.created_at.tzinfo is UTC and deal.updated_at.tzinfo is UTC


def test_single_currency_org_uses_the_default_currency() -> None:
    ctx = make_ctx("salesforce", default_currency="GBP")
    record = opportunity()
    del record["CurrencyIsoCode"]
    deal = deal_from_salesforce(record, ctx)
    assert deal.value == Money(Decimal("15000.5"), "GBP")
    assert deal.extra["single_currency"] is True


def test_amount_parsed_with_decimal_json_is_lossless(sf_ctx: MappingContext) -> None:
    text = json.dumps(opportunity()).replace("15000.5", "12345678901234567.89")
    as_decimal = deal_from_salesforce(json.loads(text, parse_float=Decimal), sf_ctx)
    assert as_decimal.value == Money(Decimal("12345678901234567.89"), "EUR")
    as_float = deal_from_salesforce(json.loads(json.dumps(opportunity(Amount=0.1))), sf_ctx)
    assert as_float.value is not None and as_float.value.amount == Decimal("0.1")


def test_stage_label_differing_from_api_name_is_resolved() -> None:
    ctx = make_ctx("salesforce")
    renamed = {
        "default": [
            s if s.id != "Closed Won" else type(s)(s.id, "Won!", s.order, s.probability, True, True)
            for s in ctx.native_stages["default"]
        ]
    }
    ctx = make_ctx("salesforce", native_stages=renamed)
    deal = deal_from_salesforce(opportunity(StageName="Won!", IsClosed=False), ctx)
    assert (deal.native_stage, deal.stage, deal.status) == ("Closed Won", "won", DealStatus.WON)


@pytest.mark.parametrize(
    ("record_fields", "field"),
    [
        ({"Amount": "NaN"}, "Amount"),
        ({"Amount": float("inf")}, "Amount"),
        ({"Amount": "12,5 EUR"}, "Amount"),
        ({"CurrencyIsoCode": "XYZ"}, "CurrencyIsoCode"),
        ({"CloseDate": "2024-02-30"}, "CloseDate"),
        ({"CreatedDate": "yesterday"}, "CreatedDate"),
        ({"Probability": "high"}, "Probability"),
        ({"LastModifiedDate": None, "SystemModstamp": None}, "LastModifiedDate"),
    ],
)
def test_bad_values_raise_mapping_error_naming_the_field(
    sf_ctx: MappingContext, record_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(MappingError) as caught:
        deal_from_salesforce(opportunity(**record_fields), sf_ctx)
    assert (caught.value.system, caught.value.id, caught.value.field) == (
        "salesforce",
        "006A000000XyZ01AAA",
        field,
    )


def test_mapping_does_not_mutate_the_record(sf_ctx: MappingContext) -> None:
    record = opportunity()
    before = json.dumps(record, sort_keys=True)
    deal_from_salesforce(record, sf_ctx)
    assert json.dumps(record, sort_keys=True) == before


def test_history_rows_become_stage_entries_and_stage_entered_at(sf_ctx: MappingContext) -> None:
    rows = [
        {
            "OpportunityId": "006A000000XyZ01AAA",
            "StageName": "Prospecting",
            "CreatedDate": "2024-01-15T09:30:00.000+0000",
            "Amount": 1000,
        },
        {
            "OpportunityId": "006A000000XyZ01AAA",
            "StageName": "Value Proposition",
            "CreatedDate": "2024-03-01T08:00:00.000+0000",
            "Amount": 1000,
        },
        {
            "OpportunityId": "006A000000XyZ01AAA",
            "StageName": "Value Proposition",
            "CreatedDate": "2024-03-05T08:00:00.000+0000",
            "Amount": 15000.5,
        },  # amount edit only
        {
            "OpportunityId": "006A000000XyZ01AAA",
            "StageName": "Qualification",
            "CreatedDate": "2024-02-01T08:00:00.000+0000",
            "Amount": 1000,
        },
        {
            "OpportunityId": "006B",
            "StageName": "Closed Lost",
            "CreatedDate": "2024-02-01T08:00:00.000+0000",
        },
    ]
    history = stage_history_from_salesforce(rows, sf_ctx)
    entries = history["006A000000XyZ01AAA"]
    assert [(c.stage, c.native_stage) for c in entries] == [
        ("lead", "Prospecting"),
        ("qualified", "Qualification"),
        ("proposal", "Value Proposition"),
    ]
    deal = with_stage_history(deal_from_salesforce(opportunity(), sf_ctx), entries)
    assert deal.stage_entered_at == datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert history["006B"][0].stage == "lost"


def test_deal_without_history_has_no_stage_entry(sf_ctx: MappingContext) -> None:
    deal = deal_from_salesforce(opportunity(), sf_ctx)
    assert deal.stage_history == () and deal.stage_entered_at is None


def test_owner_email_is_lower_cased_and_optional() -> None:
    assert (
        owner_from_salesforce({"Id": "005", "Name": "Ada", "Email": "Ada@X.io"}, "sf").email
        == "ada@x.io"
    )
    assert (
        owner_from_salesforce({"Id": "005", "Name": "Integration", "Email": None}, "sf").email
        is None
    )
