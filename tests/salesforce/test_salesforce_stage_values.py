"""Opportunity.StageName holds a stage's API name, whatever label an admin gives it.

Since Spring '17 a picklist value has an API name and a label; SOQL returns and writes take the
API name (Salesforce Help 004205234, "Understanding Picklist Value Labels and API Names"), and
OpportunityStage.ApiName names it. An admin who relabels "Closed Won" as "Won - signed" keeps
the value "Closed Won" in every Opportunity.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import NativeUpdate
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.launcher import Sandbox, start_sandbox
from mapping import DEFAULT_FUNNEL, MappingContext, deal_from_salesforce, update_for_salesforce
from mapping.stages import propose_stage_map, stage_map_from_proposals
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_dataset import dataset

RELABELLED = {"Closed Won": "Won - signed", "Negotiation": "Contract talks"}


@pytest.fixture
def relabelled_org() -> Iterator[Sandbox]:
    data = dataset(6, 0)
    for stage in data["salesforce"]["OpportunityStage"]:
        stage["MasterLabel"] = RELABELLED.get(stage["ApiName"], stage["MasterLabel"])
    with start_sandbox(data, systems=["salesforce"], faults=FAST) as running:
        yield running


def _context(connector: SalesforceConnector) -> MappingContext:
    native = {p.id: p.stages for p in connector.pipelines()}
    return MappingContext(
        instance="salesforce",
        kind="salesforce",
        stage_map=stage_map_from_proposals(propose_stage_map(native, DEFAULT_FUNNEL)),
        native_stages=native,
        owners={o["Id"]: o["Email"] for o in connector.owners()},
    )


def _open_deal(connector: SalesforceConnector) -> dict[str, Any]:
    return next(r for r in connector.deals() if r["StageName"] == "Prospecting")


@pytest.mark.parametrize(
    ("change", "value", "won"),
    [({"status": "won"}, "Closed Won", True), ({"stage": "negotiation"}, "Negotiation", False)],
)
def test_a_stage_move_is_written_as_the_stage_api_name_not_its_relabelled_label(
    relabelled_org: Sandbox, change: dict[str, str], value: str, won: bool
) -> None:
    connector = SalesforceConnector(settings_for(relabelled_org))
    try:
        ctx = _context(connector)
        record = _open_deal(connector)
        payload = update_for_salesforce(deal_from_salesforce(record, ctx), change, ctx)
        [result] = connector.update_deals([NativeUpdate(record["Id"], payload)])
        assert result.ok, result.error
        [after] = connector.read_deals([record["Id"]])
        assert (after["StageName"], after["IsWon"]) == (value, won)
        assert deal_from_salesforce(after, ctx).native_stage == value
    finally:
        connector.close()


def test_the_sandbox_refuses_a_stage_label_that_is_not_the_api_name(
    relabelled_org: Sandbox,
) -> None:
    connector = SalesforceConnector(settings_for(relabelled_org))
    try:
        record = _open_deal(connector)
        [result] = connector.update_deals(
            [NativeUpdate(record["Id"], {"StageName": "Won - signed"})]
        )
        assert (result.ok, result.code) == (False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
        [after] = connector.read_deals([record["Id"]])
        assert after["StageName"] == "Prospecting"
    finally:
        connector.close()
