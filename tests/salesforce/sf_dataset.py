"""A small hand-built Salesforce dataset for the emulator and connector tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.sandbox.salesforce_store import format_stamp, sf_id

STAGES = [
    # (label, sort order, probability, closed, won, forecast category)
    ("Prospecting", 1, 10, False, False, "Pipeline"),
    ("Qualification", 2, 25, False, False, "Pipeline"),
    ("Proposal", 3, 50, False, False, "Pipeline"),
    ("Negotiation", 4, 75, False, False, "BestCase"),
    ("Closed Won", 5, 100, True, True, "Closed"),
    ("Closed Lost", 6, 0, True, False, "Omitted"),
]
TRICKY_NAME = "O'Brien \\ Sons"
LIVE, DELETED = 4500, 3  # the tests' dataset: three query pages of live deals


def stage_rows() -> list[dict[str, Any]]:
    return [
        {
            "Id": sf_id("01J", i),
            "ApiName": label,
            "MasterLabel": label,
            "IsActive": True,
            "IsClosed": closed,
            "IsWon": won,
            "DefaultProbability": prob,
            "ForecastCategory": category,
            "ForecastCategoryName": category,
            "SortOrder": order,
        }
        for i, (label, order, prob, closed, won, category) in enumerate(STAGES, start=1)
    ]


def users() -> list[dict[str, Any]]:
    return [
        {
            "Id": sf_id("005", i),
            "Name": f"User {i}",
            "Email": f"user{i}@example.com",
            "IsActive": True,
        }
        for i in range(1, 4)
    ]


def dataset(deals: int = 25, deleted: int = 2, currency: bool = True) -> dict[str, Any]:
    """`deals` live opportunities (the first named TRICKY_NAME) plus `deleted` deleted ones."""
    base = datetime(2024, 5, 1, tzinfo=UTC)
    owners = users()
    rows = []
    for i in range(deals + deleted):
        label, _, prob, closed, won, category = STAGES[i % len(STAGES)]
        stamp = format_stamp(base + timedelta(minutes=i))
        row: dict[str, Any] = {
            "Id": sf_id("006", i + 1),
            "Name": TRICKY_NAME if i == 0 else f"Deal {i}",
            "AccountId": sf_id("001", i % 7 + 1),
            "OwnerId": owners[i % len(owners)]["Id"],
            "StageName": label,
            "Amount": 1000 + i * 10.5,
            "CloseDate": f"2024-{i % 12 + 1:02d}-15",
            "Probability": prob,
            "ForecastCategory": category,
            "ForecastCategoryName": category,
            "IsClosed": closed,
            "IsWon": won,
            "IsDeleted": i >= deals,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
            "Crmsync_Id__c": None,
        }
        if currency:
            row["CurrencyIsoCode"] = "USD"
        rows.append(row)
    return {
        "salesforce": {
            "OpportunityStage": stage_rows(),
            "User": owners,
            "Opportunity": rows,
            "OpportunityHistory": [],
        }
    }
