"""Realistic native stage catalogues (each CRM's out-of-the-box pipeline) and contexts over them."""

from __future__ import annotations

from typing import Any

import pytest

from mapping import (
    DEFAULT_FUNNEL,
    PD_FIELD_CRMSYNC_ID,
    PD_FIELD_HUBSPOT_ID,
    PD_FIELD_SALESFORCE_ID,
    MappingContext,
    pipelines_from_hubspot,
    pipelines_from_pipedrive,
    pipelines_from_salesforce,
    propose_stage_map,
    stage_map_from_proposals,
)

SF_STAGES: list[dict[str, Any]] = [
    {
        "ApiName": api,
        "MasterLabel": api,
        "IsActive": True,
        "IsClosed": closed,
        "IsWon": won,
        "DefaultProbability": float(prob),
        "SortOrder": i,
    }
    for i, (api, prob, closed, won) in enumerate(
        [
            ("Prospecting", 10, False, False),
            ("Qualification", 10, False, False),
            ("Needs Analysis", 20, False, False),
            ("Value Proposition", 50, False, False),
            ("Id. Decision Makers", 60, False, False),
            ("Perception Analysis", 70, False, False),
            ("Proposal/Price Quote", 75, False, False),
            ("Negotiation/Review", 90, False, False),
            ("Closed Won", 100, True, True),
            ("Closed Lost", 0, True, False),
        ],
        start=1,
    )
]

HS_PIPELINES: list[dict[str, Any]] = [
    {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "archived": False,
        "createdAt": "2023-01-01T00:00:00Z",
        "updatedAt": "2023-01-01T00:00:00Z",
        "stages": [
            {
                "id": sid,
                "label": label,
                "displayOrder": i,
                "archived": False,
                "metadata": {"isClosed": closed, "probability": prob},
            }
            for i, (sid, label, prob, closed) in enumerate(
                [
                    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
                    ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
                    ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
                    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
                    ("contractsent", "Contract Sent", "0.9", "false"),
                    ("closedwon", "Closed Won", "1.0", "true"),
                    ("closedlost", "Closed Lost", "0.0", "true"),
                ]
            )
        ],
    }
]

PD_PIPELINES: list[dict[str, Any]] = [
    {"id": 1, "name": "Pipeline", "url_title": "default", "order_nr": 0, "active": True},
]
PD_STAGES: list[dict[str, Any]] = [
    {
        "id": i,
        "order_nr": i,
        "name": name,
        "active_flag": True,
        "deal_probability": prob,
        "pipeline_id": 1,
        "pipeline_name": "Pipeline",
        "rotten_flag": False,
        "rotten_days": None,
    }
    for i, (name, prob) in enumerate(
        [
            ("Qualified", 100),
            ("Contact Made", 100),
            ("Demo Scheduled", 100),
            ("Proposal Made", 100),
            ("Negotiations Started", 100),
        ],
        start=1,
    )
]

OWNERS = {
    "salesforce": {"005A0000001": "Ada@Example.com", "005A0000002": "bob@example.com"},
    "hubspot": {"41629779": "ada@example.com", "41629780": "Bob@Example.com"},
    "pipedrive": {"8877": "ada@example.com", "8878": "bob@example.com"},
}


def _native(kind: str) -> dict[str, tuple[Any, ...]]:
    if kind == "salesforce":
        pipelines = pipelines_from_salesforce(SF_STAGES)
    elif kind == "hubspot":
        pipelines = pipelines_from_hubspot(HS_PIPELINES)
    else:
        pipelines = pipelines_from_pipedrive(PD_PIPELINES, PD_STAGES)
    return {p.id: p.stages for p in pipelines}


def make_ctx(kind: str, **overrides: Any) -> MappingContext:
    native = _native(kind)
    stage_map = stage_map_from_proposals(propose_stage_map(native, DEFAULT_FUNNEL))
    fields = {
        "salesforce": (
            {"hubspot": "HubSpot_Deal_Id__c", "pipedrive": "Pipedrive_Deal_Id__c"},
            "Crmsync_Id__c",
        ),
        "hubspot": (
            {"salesforce": "salesforce_opportunity_id", "pipedrive": "pipedrive_deal_id"},
            "crmsync_id",
        ),
        "pipedrive": (
            {"salesforce": PD_FIELD_SALESFORCE_ID, "hubspot": PD_FIELD_HUBSPOT_ID},
            PD_FIELD_CRMSYNC_ID,
        ),
    }[kind]
    args: dict[str, Any] = {
        "instance": kind,
        "kind": kind,
        "stage_map": stage_map,
        "default_currency": "USD",
        "external_ids": fields[0],
        "link_field": fields[1],
        "owners": OWNERS[kind],
        "native_stages": native,
    }
    args.update(overrides)
    return MappingContext(**args)


@pytest.fixture
def sf_ctx() -> MappingContext:
    return make_ctx("salesforce")


@pytest.fixture
def hs_ctx() -> MappingContext:
    return make_ctx("hubspot")


@pytest.fixture
def pd_ctx() -> MappingContext:
    return make_ctx("pipedrive")
