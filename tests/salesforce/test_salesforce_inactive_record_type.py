"""A deactivated Opportunity record type keeps its Opportunities: crmsync reads them under its
own sales process's stages (pipeline = its DeveloperName), as for an active one, while a copy is
only ever created with an active record type, which is all Salesforce accepts on a new record."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from connectors.base import NativeCreate, NativeUpdate
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.launcher import Sandbox, start_sandbox
from mapping import (
    DEFAULT_FUNNEL,
    MappingContext,
    MappingError,
    create_for_salesforce,
    deal_from_salesforce,
    update_for_salesforce,
)
from mapping.stages import propose_stage_map, stage_map_from_proposals
from tests.connectors import contract
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_record_types import (
    RENEWAL,
    RENEWAL_FUNNEL,
    RENEWAL_MAP,
    RENEWAL_STAGES,
    RENEWALS,
    record_type_org,
)


def _retired_renewals() -> dict[str, Any]:
    data = record_type_org()
    for row in data["salesforce"]["RecordType"]:
        if row["Id"] == RENEWAL:
            row["IsActive"] = False
    return data


@pytest.fixture
def org() -> Iterator[Sandbox]:
    with start_sandbox(_retired_renewals(), systems=["salesforce"], faults=FAST) as running:
        yield running


@pytest.fixture
def connector(org: Sandbox) -> Iterator[SalesforceConnector]:
    made = SalesforceConnector(settings_for(org))
    try:
        yield made
    finally:
        made.close()


def _context(connector: SalesforceConnector) -> MappingContext:
    pipelines = connector.pipelines()
    native = {p.id: p.stages for p in pipelines}
    others = {p: s for p, s in native.items() if p != "Renewal"}
    stage_map = stage_map_from_proposals(propose_stage_map(others, DEFAULT_FUNNEL))
    return MappingContext(
        instance="salesforce",
        kind="salesforce",
        funnels={"default": DEFAULT_FUNNEL, "renewal": RENEWAL_FUNNEL},
        pipeline_funnels={"Renewal": "renewal"},
        stage_map={**stage_map, "Renewal": RENEWAL_MAP},
        native_stages=native,
        pipeline_native_ids={p.id: p.native_id for p in pipelines if p.native_id},
        retired_pipelines=frozenset(p.id for p in pipelines if not p.active),
        owners={o["Id"]: o["Email"] for o in connector.owners()},
        link_field="Crmsync_Id__c",
    )


def test_deals_of_a_deactivated_record_type_read_in_its_own_stages(
    org: Sandbox, connector: SalesforceConnector
) -> None:
    pipelines = {p.id: p for p in connector.pipelines()}

    assert list(pipelines) == ["default", "New_Business", "Renewal"]
    renewal = pipelines["Renewal"]
    assert ([s.id for s in renewal.stages], renewal.active) == (RENEWAL_STAGES, False)
    assert pipelines["New_Business"].active
    calls = dict(contract.stats(org, "salesforce"))
    # One stage-values call per record type, the deactivated one too; the describe is shared.
    assert sum(n for k, n in calls.items() if "picklist-values" in k) == 2

    ctx = _context(connector)
    deals = [deal_from_salesforce(r, ctx) for r in connector.deals()]
    renewals = [d for d in deals if d.pipeline == "Renewal"]
    assert [(d.stage, d.funnel) for d in renewals] == [("renewal_due", "renewal")] * RENEWALS


def test_a_deal_of_a_deactivated_record_type_still_moves_in_its_stages(
    connector: SalesforceConnector,
) -> None:
    ctx = _context(connector)
    record = next(r for r in connector.deals() if r.get("RecordTypeId") == RENEWAL)

    payload = update_for_salesforce(deal_from_salesforce(record, ctx), {"stage": "committed"}, ctx)
    [result] = connector.update_deals([NativeUpdate(record["Id"], payload)])

    assert result.ok, result.error
    [after] = connector.read_deals([record["Id"]])
    assert (after["StageName"], after["RecordTypeId"]) == ("Renewal Committed", RENEWAL)


def test_no_copy_is_created_with_a_deactivated_record_type(
    connector: SalesforceConnector,
) -> None:
    ctx = _context(connector)
    record = next(r for r in connector.deals() if r.get("RecordTypeId") == RENEWAL)
    renewal = deal_from_salesforce(record, ctx)

    with pytest.raises(MappingError) as refused:
        create_for_salesforce(renewal, ctx, "link-renewal-1")

    assert refused.value.field == "pipeline"
    assert "Renewal" in refused.value.reason and "deactivated" in refused.value.reason


def test_the_sandbox_refuses_a_new_opportunity_of_a_deactivated_record_type(
    connector: SalesforceConnector,
) -> None:
    fields = {
        "Name": "Renewal copy",
        "StageName": "Renewal Due",
        "CloseDate": "2026-12-31",
        "RecordTypeId": RENEWAL,
    }

    [result] = connector.create_deals([NativeCreate("link-renewal-2", fields)])

    assert (result.ok, result.code) == (False, "INVALID_CROSS_REFERENCE_KEY")
    assert connector.find_created(["link-renewal-2"]) == {}


def test_a_deactivated_record_type_whose_stages_are_not_answered_reads_as_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unknown whether the UI API answers for a deactivated record type: where it answers 404,
    the pull goes on with the org's other pipelines (the deactivated one's deals read under
    `default`, as before such record types were read), and says so."""
    faults = replace(FAST, retired_record_types_unanswered=True)
    with start_sandbox(_retired_renewals(), systems=["salesforce"], faults=faults) as running:
        connector = SalesforceConnector(settings_for(running))
        try:
            with caplog.at_level("WARNING", logger="crmsync.salesforce"):
                pipelines = {p.id for p in connector.pipelines()}
        finally:
            connector.close()
    assert "Renewal" not in pipelines and "default" in pipelines, pipelines
    assert any("deactivated record type Renewal" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status", [400, 403])
def test_a_deactivated_record_type_refused_with_another_client_error_reads_as_before(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing public says how the UI API refuses a deactivated record type's stage values, if
    it does: a 400 or a 403 (an unavailable record type) is taken as the 404 is, not as a
    failed pull."""
    faults = replace(FAST, retired_record_types_unanswered=True, retired_record_types_status=status)
    with start_sandbox(_retired_renewals(), systems=["salesforce"], faults=faults) as running:
        connector = SalesforceConnector(settings_for(running))
        try:
            with caplog.at_level("WARNING", logger="crmsync.salesforce"):
                pipelines = {p.id for p in connector.pipelines()}
        finally:
            connector.close()
    assert pipelines == {"default", "New_Business"}, pipelines
    assert any("deactivated record type Renewal" in r.getMessage() for r in caplog.records)
