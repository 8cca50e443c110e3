"""HubSpot deal -> canonical deal: every property is a string, "" is empty, dates ISO or millis."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mapping import (
    DealStatus,
    MappingContext,
    MappingError,
    Money,
    deal_from_hubspot,
    owner_from_hubspot,
)
from mapping.hubspot import close_date_for_hubspot, close_date_from_hubspot


def hs_deal(archived: bool = False, **props: Any) -> dict[str, Any]:
    properties = {
        "dealname": "Globex renewal",
        "amount": "1500.50",
        "deal_currency_code": "USD",
        "dealstage": "presentationscheduled",
        "pipeline": "default",
        "closedate": "2024-06-30T00:00:00Z",
        "hubspot_owner_id": "41629780",
        "createdate": "2024-01-02T03:04:05.678Z",
        "hs_lastmodifieddate": "2024-06-01T12:34:56.789Z",
        "hs_object_id": "1234567",
        "hs_is_closed": "false",
        "hs_is_closed_won": "false",
        "hs_deal_stage_probability": "0.6",
        "hs_date_entered_appointmentscheduled": "2024-01-02T03:04:05.678Z",
        "hs_date_entered_presentationscheduled": "1714557600000",  # 2024-05-01T10:00Z as millis
        "hs_date_entered_closedlost": "",
        "salesforce_opportunity_id": "006A000000XyZ01AAA",
        "pipedrive_deal_id": "",
        "crmsync_id": None,
    }
    properties.update(props)
    return {
        "id": "1234567",
        "properties": properties,
        "createdAt": "2024-01-02T03:04:05.678Z",
        "updatedAt": "2024-06-01T12:34:56.789Z",
        "archived": archived,
    }


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "open deal",
        {},
        {
            "stage": "proposal",
            "status": DealStatus.OPEN,
            "value": Money(Decimal("1500.50"), "USD"),
            "close_date": date(2024, 6, 30),
            "owner_email": "bob@example.com",
            "probability": Decimal("0.6"),
            "external_ids": {"salesforce": "006A000000XyZ01AAA"},
            "link_id": None,
            "created_at": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        },
    ),
    ("empty amount string is no value", {"amount": ""}, {"value": None}),
    ("null amount is no value", {"amount": None}, {"value": None}),
    (
        "zero amount is no value (tests/mapping/test_zero_amounts.py)",
        {"amount": "0.00"},
        {"value": None},
    ),
    ("other currency", {"deal_currency_code": "EUR"}, {"value": Money(Decimal("1500.5"), "EUR")}),
    (
        "no currency code uses the default",
        {"deal_currency_code": ""},
        {"value": Money(Decimal("1500.5"), "USD")},
    ),
    ("epoch millis close date", {"closedate": "1719705600000"}, {"close_date": date(2024, 6, 30)}),
    ("empty close date", {"closedate": ""}, {"close_date": None}),
    (
        "won via stage metadata even if flags lag",
        {"dealstage": "closedwon"},
        {"stage": "won", "status": DealStatus.WON},
    ),
    (
        "lost via stage",
        {"dealstage": "closedlost", "hs_is_closed": "true"},
        {"stage": "lost", "status": DealStatus.LOST},
    ),
    (
        "closed lost with no stage",
        {"dealstage": "", "hs_is_closed": "true"},
        {"stage": "lost", "native_stage": "", "status": DealStatus.LOST},
    ),
    (
        "unmapped stage from another pipeline uses the flags",
        {
            "pipeline": "75e28846",
            "dealstage": "1234999",
            "hs_is_closed": "true",
            "hs_is_closed_won": "true",
        },
        {
            "stage": None,
            "native_stage": "1234999",
            "pipeline": "75e28846",
            "status": DealStatus.WON,
        },
    ),
    ("owner without email", {"hubspot_owner_id": "99999"}, {"owner_email": None}),
    ("no owner", {"hubspot_owner_id": ""}, {"owner_email": None}),
    (
        "forecast probability wins over the stage default",
        {"hs_forecast_probability": "0.35"},
        {"probability": Decimal("0.35")},
    ),
    ("live deal has no deleted flag", {}, {"extra": {}}),
]


@pytest.mark.parametrize(("props", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hubspot_deal_maps_to_canonical_deal(
    hs_ctx: MappingContext, props: dict[str, Any], expected: dict[str, Any]
) -> None:
    deal = deal_from_hubspot(hs_deal(**props), hs_ctx)
    for field, value in expected.items():
        assert getattr(deal, field) == value, field


def test_archived_deal_is_returned_with_deleted_flag(hs_ctx: MappingContext) -> None:
    assert deal_from_hubspot(hs_deal(archived=True), hs_ctx).extra == {"deleted": True}


def test_stage_history_comes_from_date_entered_properties(hs_ctx: MappingContext) -> None:
    deal = deal_from_hubspot(hs_deal(), hs_ctx)
    assert [(c.stage, c.native_stage, c.entered_at) for c in deal.stage_history] == [
        ("qualified", "appointmentscheduled", datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("proposal", "presentationscheduled", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ]
    assert deal.stage_entered_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_deal_without_entered_property_has_no_stage_entry(hs_ctx: MappingContext) -> None:
    deal = deal_from_hubspot(hs_deal(dealstage="contractsent"), hs_ctx)
    assert deal.stage_entered_at is None


def test_timestamps_fall_back_to_properties(hs_ctx: MappingContext) -> None:
    record = hs_deal()
    del record["createdAt"], record["updatedAt"]
    deal = deal_from_hubspot(record, hs_ctx)
    assert deal.updated_at == datetime(2024, 6, 1, 12, 34, 56, 789000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"amount": "NaN"}, "amount"),
        ({"amount": "Infinity"}, "amount"),
        ({"amount": "1.500,50"}, "amount"),
        ({"deal_currency_code": "EURO"}, "deal_currency_code"),
        ({"closedate": "30/06/2024"}, "closedate"),
        ({"hs_deal_stage_probability": "sixty"}, "hs_deal_stage_probability"),
        (
            {"hs_date_entered_presentationscheduled": "soon"},
            "hs_date_entered_presentationscheduled",
        ),
    ],
)
def test_bad_values_raise_mapping_error_naming_the_property(
    hs_ctx: MappingContext, props: dict[str, Any], field: str
) -> None:
    with pytest.raises(MappingError) as caught:
        deal_from_hubspot(hs_deal(**props), hs_ctx)
    assert (caught.value.system, caught.value.id, caught.value.field) == (
        "hubspot",
        "1234567",
        field,
    )


def test_mapping_does_not_mutate_the_record(hs_ctx: MappingContext) -> None:
    record = hs_deal()
    before = json.dumps(record, sort_keys=True)
    deal_from_hubspot(record, hs_ctx)
    assert json.dumps(record, sort_keys=True) == before


def test_owner_name_and_email() -> None:
    owner = owner_from_hubspot(
        {
            "id": "41629779",
            "email": "Ada@Example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "userId": 9586504,
            "archived": False,
        },
        "hubspot",
    )
    assert (owner.id, owner.email, owner.name) == ("41629779", "ada@example.com", "Ada Lovelace")


# (portal zone, closedate as HubSpot holds it, the day the portal shows)
PORTAL_DAYS = [
    # A day picked in the afternoon in Arizona (fivetran/dbt_hubspot#101): UTC says 1 April.
    ("America/Phoenix", "2023-04-01T01:09:44.000Z", date(2023, 3, 31)),
    ("America/Los_Angeles", "2027-03-16T06:30:00.000Z", date(2027, 3, 15)),
    # Midnight of the day picked in Berlin and Sydney: UTC says the day before.
    ("Europe/Berlin", "2027-03-14T23:00:00.000Z", date(2027, 3, 15)),
    ("Australia/Sydney", "2027-03-14T13:00:00Z", date(2027, 3, 15)),
    ("Australia/Sydney", "1805029200000", date(2027, 3, 15)),  # the same as epoch millis
    # Exactly midnight UTC: a day written through the API (crmsync did until now) keeps it.
    ("America/Los_Angeles", "2027-03-15T00:00:00Z", date(2027, 3, 15)),
    ("Australia/Sydney", "2027-03-15T00:00:00.000Z", date(2027, 3, 15)),
    ("America/Los_Angeles", "2027-03-15", date(2027, 3, 15)),
    ("UTC", "2027-03-15T23:59:59Z", date(2027, 3, 15)),
]


@pytest.mark.parametrize(("zone", "raw", "day"), PORTAL_DAYS)
def test_a_close_date_is_the_day_the_portal_shows_in_its_time_zone(
    hs_ctx: MappingContext, zone: str, raw: str, day: date
) -> None:
    ctx = dataclasses.replace(hs_ctx, timezone=zone)
    assert deal_from_hubspot(hs_deal(closedate=raw), ctx).close_date == day


@pytest.mark.parametrize(
    "zone", ["UTC", "America/Los_Angeles", "Europe/Berlin", "Australia/Sydney", "America/Santiago"]
)
@pytest.mark.parametrize(
    "day",
    [date(2027, 3, 15), date(2026, 3, 29), date(2026, 10, 25), date(2026, 9, 6), date(2028, 2, 29)],
)
def test_a_close_date_written_to_hubspot_is_midnight_in_the_portal_and_reads_back_as_its_day(
    zone: str, day: date
) -> None:
    written = close_date_for_hubspot(day, ZoneInfo(zone))
    moment = datetime.fromisoformat(written).astimezone(ZoneInfo(zone))
    assert moment.date() == day
    assert moment.hour == (1 if day == date(2026, 9, 6) and zone == "America/Santiago" else 0)
    assert close_date_from_hubspot(written, ZoneInfo(zone)) == day


def test_a_utc_portal_writes_close_dates_as_before() -> None:
    assert close_date_for_hubspot(date(2027, 3, 15), ZoneInfo("UTC")) == "2027-03-15T00:00:00Z"


def _with_companies(*companies: tuple[str, str | None, bool]) -> dict[str, Any]:
    return {**hs_deal(), "companies": [{"id": i, "name": n, "primary": p} for i, n, p in companies]}


def test_a_deals_account_is_its_primary_companys_name(hs_ctx: MappingContext) -> None:
    record = _with_companies(("1", "Globex", False), ("2", "Acme Corp", True))
    assert deal_from_hubspot(record, hs_ctx).extra == {"account": "Acme Corp", "account_id": "2"}


def test_a_deals_only_company_is_its_account_though_not_marked_primary(
    hs_ctx: MappingContext,
) -> None:
    assert deal_from_hubspot(_with_companies(("1", "Globex", False)), hs_ctx).extra == {
        "account": "Globex",
        "account_id": "1",
    }


def test_several_companies_none_primary_are_not_guessed(hs_ctx: MappingContext) -> None:
    record = _with_companies(("1", "Globex", False), ("2", "Acme Corp", False))
    assert deal_from_hubspot(record, hs_ctx).extra == {
        "account_unresolved": "2 companies are associated (Acme Corp, Globex), none primary: "
        "not guessed"
    }


def test_a_deal_without_companies_or_read_without_them_has_no_account(
    hs_ctx: MappingContext,
) -> None:
    assert deal_from_hubspot(_with_companies(), hs_ctx).extra == {}
    # a company without a name (deleted since) is the account still, by id: a name it gets
    # later reaches the deal (sync/store_accounts.py)
    assert deal_from_hubspot(_with_companies(("1", None, True)), hs_ctx).extra == {
        "account_id": "1"
    }


def test_a_deal_read_without_the_companies_scope_says_why_it_has_no_account(
    hs_ctx: MappingContext,
) -> None:
    record = {**_with_companies(("1", None, True)), "companies_unreadable": "no scope: grant it"}
    assert deal_from_hubspot(record, hs_ctx).extra == {"account_unresolved": "no scope: grant it"}
