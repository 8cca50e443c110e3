"""Pipedrive deal -> canonical deal: status overrides stage, UTC timestamps, owners by id.

Records are API v2's (what the connector reads); v1's shapes are still read (`V1_CASES`)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from mapping import (
    PD_FIELD_CRMSYNC_ID,
    PD_FIELD_HUBSPOT_ID,
    PD_FIELD_SALESFORCE_ID,
    DealStatus,
    MappingContext,
    MappingError,
    Money,
    deal_from_pipedrive,
    pipelines_from_pipedrive,
    stage_history_from_pipedrive_flow,
    with_stage_history,
)


def pd_deal(**fields: Any) -> dict[str, Any]:
    """An API v2 deal, with `org_name` as the connector adds it."""
    record = {
        "id": 7,
        "title": "Initech deal",
        "value": 2500,
        "currency": "EUR",
        "status": "open",
        "stage_id": 3,
        "pipeline_id": 1,
        "owner_id": 8877,
        "org_id": 5,
        "org_name": "Initech",
        "probability": None,
        "expected_close_date": "2024-07-15",
        "add_time": "2024-02-01T09:00:00Z",
        "update_time": "2024-06-02T10:11:12Z",
        "stage_change_time": "2024-05-20T08:00:00Z",
        "won_time": None,
        "lost_time": None,
        "is_archived": False,
        "is_deleted": False,
        "custom_fields": {
            PD_FIELD_SALESFORCE_ID: "006A000000XyZ01AAA",
            PD_FIELD_HUBSPOT_ID: None,
            PD_FIELD_CRMSYNC_ID: "ent-42",
        },
    }
    record.update(fields)
    return record


def v1_deal(**fields: Any) -> dict[str, Any]:
    """The same deal as API v1 gave it (datasets and stores still hold such records)."""
    record = {
        **{k: v for k, v in pd_deal().items() if k not in ("owner_id", "org_name", "is_deleted")},
        **pd_deal()["custom_fields"],
        "user_id": {
            "id": 8877,
            "name": "Ada",
            "email": "Ada@Example.com",
            "has_pic": False,
            "pic_hash": None,
            "active_flag": True,
            "value": 8877,
        },
        "org_id": {"value": 5, "name": "Initech"},
        "add_time": "2024-02-01 09:00:00",
        "update_time": "2024-06-02 10:11:12",
        "stage_change_time": "2024-05-20 08:00:00",
        "active": True,
        "deleted": False,
    }
    del record["custom_fields"]
    record.update(fields)
    return record


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "open deal",
        {},
        {
            "pipeline": "1",
            "stage": "proposal",
            "native_stage": "3",
            "status": DealStatus.OPEN,
            "value": Money(Decimal(2500), "EUR"),
            "close_date": date(2024, 7, 15),
            "owner_email": "ada@example.com",
            "probability": None,
            "stage_entered_at": datetime(2024, 5, 20, 8, tzinfo=UTC),
            "external_ids": {"salesforce": "006A000000XyZ01AAA"},
            "link_id": "ent-42",
            "extra": {"account": "Initech", "account_id": "5"},
        },
    ),
    (
        "won status overrides an open stage",
        {"status": "won", "won_time": "2024-06-02T10:11:12Z"},
        {"stage": "won", "native_stage": "3", "status": DealStatus.WON},
    ),
    (
        "lost status overrides an open stage",
        {"status": "lost"},
        {"stage": "lost", "native_stage": "3", "status": DealStatus.LOST},
    ),
    ("missing amount", {"value": None}, {"value": None}),
    ("zero amount is no value (test_zero_amounts.py)", {"value": 0}, {"value": None}),
    ("fractional float amount", {"value": 1999.99}, {"value": Money(Decimal("1999.99"), "EUR")}),
    ("other currency", {"currency": "CHF"}, {"value": Money(Decimal(2500), "CHF")}),
    ("owner id resolved by the owners", {"owner_id": 8878}, {"owner_email": "bob@example.com"}),
    ("unknown owner", {"owner_id": 1}, {"owner_email": None}),
    ("no organization", {"org_id": None, "org_name": None}, {"extra": {}}),
    (
        "an organization whose name is not known has its id only",
        {"org_name": None},
        {"extra": {"account_id": "5"}},
    ),
    (
        "no custom fields: no links",
        {"custom_fields": {}},
        {"link_id": None, "external_ids": {}},
    ),
    ("unmapped stage", {"stage_id": 42}, {"stage": None, "native_stage": "42"}),
    ("probability percent", {"probability": 80}, {"probability": Decimal("0.8")}),
    (
        "a deal that never changed stage entered it when it was added",
        {"stage_change_time": None},
        {"stage_entered_at": datetime(2024, 2, 1, 9, tzinfo=UTC)},
    ),
    (
        "a deal reopened after it was won entered its stage at a time it does not tell",
        {"first_won_time": "2024-05-25T00:00:00Z"},
        {"status": DealStatus.OPEN, "stage_entered_at": None},
    ),
    (
        "a deal won, reopened and moved since entered its stage when it moved",
        {"first_won_time": "2024-05-01T00:00:00Z"},
        {"stage_entered_at": datetime(2024, 5, 20, 8, tzinfo=UTC)},
    ),
    (
        "deleted flag",
        {"is_deleted": True},
        {"extra": {"deleted": True, "account": "Initech", "account_id": "5"}},
    ),
    (
        "status deleted",
        {"status": "deleted", "org_id": None, "org_name": None},
        {"extra": {"deleted": True}, "status": DealStatus.OPEN},
    ),
    (
        "an archived deal is kept, marked archived",
        {"is_archived": True, "status": "won"},
        {
            "extra": {"archived": True, "account": "Initech", "account_id": "5"},
            "status": DealStatus.WON,
        },
    ),
    (
        "a deal not archived",
        {"is_archived": False},
        {"extra": {"account": "Initech", "account_id": "5"}},
    ),
    (
        "timestamps are RFC 3339",
        {"add_time": "2024-03-31T01:30:00Z"},
        {"created_at": datetime(2024, 3, 31, 1, 30, tzinfo=UTC)},
    ),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pipedrive_deal_maps_to_canonical_deal(
    pd_ctx: MappingContext, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    deal = deal_from_pipedrive(pd_deal(**fields), pd_ctx)
    for field, value in expected.items():
        assert getattr(deal, field) == value, field


V1_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("v1 deal", {}, CASES[0][2]),
    (
        "v1 user as a bare id resolves through the owners",
        {"user_id": 8878},
        {"owner_email": "bob@example.com"},
    ),
    (
        "v1 user object without email resolves through the owners",
        {"user_id": {"id": 8878, "name": "Bob", "value": 8878}},
        {"owner_email": "bob@example.com"},
    ),
    ("v1 deleted flag", {"deleted": True}, {"extra": {**CASES[0][2]["extra"], "deleted": True}}),
    (
        "v1 timestamps are UTC wall times",
        {"add_time": "2024-03-31 01:30:00"},
        {"created_at": datetime(2024, 3, 31, 1, 30, tzinfo=UTC)},
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [c[1:] for c in V1_CASES], ids=[c[0] for c in V1_CASES]
)
def test_pipedrive_v1_deal_maps_to_the_same_canonical_deal(
    pd_ctx: MappingContext, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    deal = deal_from_pipedrive(v1_deal(**fields), pd_ctx)
    for field, value in expected.items():
        assert getattr(deal, field) == value, field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"value": float("nan")}, "value"),
        ({"value": "lots"}, "value"),
        ({"currency": "ZZZ"}, "currency"),
        ({"expected_close_date": "2024-13-01"}, "expected_close_date"),
        ({"update_time": "2024-06-02T25:00:00"}, "update_time"),
        ({"status": "archived"}, "status"),
    ],
)
def test_bad_values_raise_mapping_error_naming_the_field(
    pd_ctx: MappingContext, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(MappingError) as caught:
        deal_from_pipedrive(pd_deal(**fields), pd_ctx)
    assert (caught.value.system, caught.value.id, caught.value.field) == ("pipedrive", "7", field)


def test_mapping_does_not_mutate_the_record(pd_ctx: MappingContext) -> None:
    record = pd_deal()
    before = json.dumps(record, sort_keys=True)
    deal_from_pipedrive(record, pd_ctx)
    assert json.dumps(record, sort_keys=True) == before


def test_flow_items_become_stage_history(pd_ctx: MappingContext) -> None:
    items = [
        {
            "object": "dealChange",
            "timestamp": "2024-03-01 10:00:00",
            "data": {
                "id": 1,
                "item_id": 7,
                "field_key": "stage_id",
                "old_value": "1",
                "new_value": "2",
                "log_time": "2024-03-01 10:00:00",
            },
        },
        {
            "object": "dealChange",
            "timestamp": "2024-03-02 10:00:00",
            "data": {
                "id": 2,
                "item_id": 7,
                "field_key": "value",
                "old_value": "1",
                "new_value": "2",
            },
        },
        {"object": "activity", "timestamp": "2024-04-01 10:00:00", "data": {"id": 3}},
        {
            "object": "dealChange",
            "timestamp": "2024-05-20 08:00:00",
            "data": {
                "id": 4,
                "item_id": 7,
                "field_key": "stage_id",
                "old_value": "2",
                "new_value": "3",
                "log_time": "2024-05-20 08:00:00",
            },
        },
    ]
    history = stage_history_from_pipedrive_flow(items, pd_ctx)
    assert [(c.stage, c.native_stage) for c in history["7"]] == [
        ("qualified", "2"),
        ("proposal", "3"),
    ]
    deal = with_stage_history(deal_from_pipedrive(pd_deal(), pd_ctx), history["7"])
    assert deal.stage_entered_at == datetime(2024, 5, 20, 8, tzinfo=UTC)


def test_custom_field_keys_are_the_fixed_hashes() -> None:
    # The sandbox generator and existing Pipedrive accounts depend on these exact keys.
    assert PD_FIELD_SALESFORCE_ID == "3172fc4912e0922a2cf2b7ff48a5310cc1b397c4"
    assert PD_FIELD_HUBSPOT_ID == "4e16426b9e550ead385dd0b9eb31f46ddbab3a78"
    assert PD_FIELD_CRMSYNC_ID == "e5a395682d108c11ad7cb51f783b585d758b8cae"


def test_v2_pipelines_and_stages_marked_is_deleted_read_as_v1_inactive_ones() -> None:
    pipelines = [
        {"id": 1, "name": "Sales", "order_nr": 1, "is_deleted": False},
        {"id": 2, "name": "Renewals", "order_nr": 2, "is_deleted": True},
    ]
    stages = [
        {"id": 1, "name": "Lead", "order_nr": 1, "pipeline_id": 1, "is_deleted": False},
        {"id": 2, "name": "Gone", "order_nr": 2, "pipeline_id": 1, "is_deleted": True},
        {"id": 3, "name": "Renew", "order_nr": 1, "pipeline_id": 2, "is_deleted": True},
    ]
    read = pipelines_from_pipedrive(pipelines, stages)
    assert [(p.id, p.active, [s.id for s in p.stages]) for p in read] == [
        ("1", True, ["1"]),
        ("2", False, ["3"]),
    ]
