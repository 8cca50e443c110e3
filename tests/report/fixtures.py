"""A small fixed pipeline whose every figure is computed by hand in the tests.

now = 2024-06-30 12:00 UTC, stale_days = 30, default funnel.
sf:1 Acme     open  proposal     1000 USD  history lead 01-01, qualified 02-01, proposal 06-10
sf:2 Beta     open  negotiation  2000 EUR  p=0.8, close 06-01 (past due), updated 05-01, no history
sf:3 Gamma    won                3000 USD  history lead 01-01, proposal 03-01, won 04-10
sf:4 Delta    lost               no amount history lead 02-01, qualified 02-11, lost 03-01
hs:10 Acme    open  proposal     1000 USD  = sf:1 (matched), stage entered 05-01, no history
hs:11 Epsilon won                5000 USD  created 04-01, stage entered (won) 05-01
hs:12 Zeta    lost               700 GBP   no history
hs:13 Eta     open  lead         100 GBP   created 06-25
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connectors.sandbox.generator import generate
from mapping.funnel import DEFAULT_FUNNEL
from mapping.model import Deal, DealStatus, Money, Ref, StageChange
from sync.health_model import HealthInputs

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)


def at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, tzinfo=UTC)


def history(*entries: tuple[str, int, int]) -> tuple[StageChange, ...]:
    return tuple(StageChange(stage, stage.upper(), at(m, d)) for stage, m, d in entries)


def deal(system: str, id: str, name: str, stage: str, **kw: Any) -> Deal:
    status = {"won": DealStatus.WON, "lost": DealStatus.LOST}.get(stage, DealStatus.OPEN)
    values: dict[str, Any] = {
        "pipeline": "default",
        "native_stage": stage.upper(),
        "value": None,
        "close_date": None,
        "owner_email": None,
        "probability": None,
        "created_at": at(1, 1),
        "updated_at": at(1, 1),
    }
    values.update(kw)
    return Deal(ref=Ref(system, id), name=name, stage=stage, status=status, **values)


def usd(amount: str, currency: str = "USD") -> Money:
    return Money(Decimal(amount), currency)


SF = [
    deal(
        "sf", "1", "Acme", "proposal",
        value=usd("1000"), close_date=date(2024, 7, 15), owner_email="a@x.test",
        updated_at=at(6, 20), stage_entered_at=at(6, 10),
        stage_history=history(("lead", 1, 1), ("qualified", 2, 1), ("proposal", 6, 10)),
    ),
    deal(
        "sf", "2", "Beta", "negotiation",
        value=usd("2000", "EUR"), probability=Decimal("0.8"), close_date=date(2024, 6, 1),
        created_at=at(3, 1), updated_at=at(5, 1),
    ),
    deal(
        "sf", "3", "Gamma", "won",
        value=usd("3000"), probability=Decimal("1"), close_date=date(2024, 5, 31),
        owner_email="b@x.test", updated_at=at(4, 10),
        stage_history=history(("lead", 1, 1), ("proposal", 3, 1), ("won", 4, 10)),
    ),
    deal(
        "sf", "4", "Delta", "lost",
        owner_email="b@x.test", created_at=at(2, 1), updated_at=at(3, 1),
        stage_history=history(("lead", 2, 1), ("qualified", 2, 11), ("lost", 3, 1)),
    ),
]  # fmt: skip

HS = [
    deal(
        "hs", "10", "Acme", "proposal",
        value=usd("1000"), close_date=date(2024, 7, 15), owner_email="a@x.test",
        updated_at=at(6, 1), stage_entered_at=at(5, 1),
    ),
    deal(
        "hs", "11", "Epsilon", "won",
        value=usd("5000"), close_date=date(2024, 5, 1), owner_email="c@x.test",
        created_at=at(4, 1), updated_at=at(5, 1), stage_entered_at=at(5, 1),
    ),
    deal("hs", "12", "Zeta", "lost", value=usd("700", "GBP"), updated_at=at(3, 1)),
    deal(
        "hs", "13", "Eta", "lead",
        value=usd("100", "GBP"), close_date=date(2024, 8, 3), owner_email="z@x.test",
        created_at=at(6, 25), updated_at=at(6, 25), stage_entered_at=at(6, 25),
    ),
]  # fmt: skip

ENTITIES = [{"sf": Ref("sf", "1"), "hs": Ref("hs", "10")}]

PLAN: dict[str, Any] = {
    "version": 1,
    "summary": {},
    "changes": [
        {"system": "hs", "id": "10", "field": "amount", "from": "1000", "to": "1200", "reason": ""},
        {"system": "sf", "id": "1", "field": "amount", "from": "1000", "to": "1200", "reason": ""},
    ],
    "creates": [],
    "conflicts": [
        {
            "field": "stage",
            "values": [
                {"system": "sf", "id": "1", "value": "proposal"},
                {"system": "hs", "id": "10", "value": "negotiation"},
            ],
            "reason": "changed in both systems",
        }
    ],
    "unmatched": [{"system": "sf", "id": "2", "name": "Beta"}],
    "ambiguous": [],
    "duplicates": [{"system": "hs", "ids": ["12", "13"]}],
    "errors": [],
    "deleted": [
        {
            "entity": "sf:9",
            "deleted": [{"system": "hs", "id": "99"}],
            "live": [{"system": "sf", "id": "9"}],
        }
    ],
}


def inputs(**overrides: Any) -> HealthInputs:
    values: dict[str, Any] = {
        "deals": {"sf": SF, "hs": HS},
        "funnels": {"default": DEFAULT_FUNNEL},
        "now": NOW,
        "entities": ENTITIES,
        "plan": PLAN,
        "stale_days": 30,
        "consolidation_order": ["sf", "hs"],
        "instance_urls": {
            "sf": ("salesforce", "https://acme.my.salesforce.com"),
            "hs": ("hubspot", "4242"),
        },
        "sync_status": {
            "sf": {"last_success": datetime(2024, 6, 30, 6, 0, tzinfo=UTC), "api_calls": 12},
            "hs": {"last_success": None, "api_calls": 0},
        },
    }
    values.update(overrides)
    return HealthInputs(**values)


def pipedrive_only(*deals: dict[str, Any]) -> dict[str, Any]:
    """A sandbox dataset of Pipedrive alone: per item of `deals`, the generator's first deal
    with those fields, and no stage flows (a pull reads no stage history)."""
    pipedrive = generate(3, 1)[0]["pipedrive"]
    template = pipedrive["deals"][0]
    pipedrive["deals"] = [{**copy.deepcopy(template), **fields} for fields in deals]
    pipedrive["deal_flows"] = {}
    return {"pipedrive": pipedrive}


IRONCLAD = "Ironclad LLC — Platform Migration 2026"


def ironclad_amounts_apart() -> dict[str, Any]:
    """A sandbox dataset of HubSpot and Pipedrive: the generator's five deals per CRM (seed 7),
    HubSpot's copy of Ironclad (open, USD 33380.02 in both CRMs) worth 250 more there, and the
    planted currency and amount differences of the Gekko and Adventure Works deals taken back,
    so Ironclad is the one matched deal whose copies disagree on the amount."""
    dataset = generate(4, 7)[0]
    hubspot = {d["properties"]["dealname"]: d["properties"] for d in dataset["hubspot"]["deals"]}
    assert hubspot[IRONCLAD]["amount"] == "33380.02"
    hubspot[IRONCLAD]["amount"] = "33630.02"
    pipedrive = {d["title"].split(" — ")[0]: d for d in dataset["pipedrive"]["deals"]}
    pipedrive["Gekko LLC"]["currency"] = "EUR"  # as HubSpot has them: one amount differs
    pipedrive["Adventure Works Holdings"]["value"] = 14375.0
    return {"hubspot": dataset["hubspot"], "pipedrive": dataset["pipedrive"]}
