"""Opportunity record types are pipelines: each holds the stages its sales process allows, a
deal is read in its record type's pipeline and written in its process's stages only, and a copy
of a deal of a funnel is created with the RecordTypeId of the pipeline of that funnel. An org
without record types keeps its one pipeline, `default`, at no call more."""

from __future__ import annotations

from collections.abc import Iterator
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
from mapping.salesforce import stage_history_from_salesforce
from mapping.stages import propose_stage_map, stage_map_from_proposals
from sync.pull import PullReport, map_deals
from tests.connectors import contract
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_dataset import dataset
from tests.salesforce.sf_record_types import (
    RENEWAL,
    RENEWAL_FUNNEL,
    RENEWAL_MAP,
    RENEWAL_STAGES,
    record_type_org,
)


@pytest.fixture
def org() -> Iterator[Sandbox]:
    with start_sandbox(record_type_org(), systems=["salesforce"], faults=FAST) as running:
        yield running


@pytest.fixture
def connector(org: Sandbox) -> Iterator[SalesforceConnector]:
    made = SalesforceConnector(settings_for(org))
    try:
        yield made
    finally:
        made.close()


def _context(
    connector: SalesforceConnector, renewal_map: dict[str, str] | None = None
) -> MappingContext:
    pipelines = connector.pipelines()
    native = {p.id: p.stages for p in pipelines}
    others = {p: s for p, s in native.items() if p != "Renewal"}
    stage_map = stage_map_from_proposals(propose_stage_map(others, DEFAULT_FUNNEL))
    return MappingContext(
        instance="salesforce",
        kind="salesforce",
        funnels={"default": DEFAULT_FUNNEL, "renewal": RENEWAL_FUNNEL},
        pipeline_funnels={"Renewal": "renewal"},
        stage_map={**stage_map, "Renewal": renewal_map or RENEWAL_MAP},
        native_stages=native,
        pipeline_native_ids={p.id: p.native_id for p in pipelines if p.native_id},
        owners={o["Id"]: o["Email"] for o in connector.owners()},
        link_field="Crmsync_Id__c",
    )


def _renewal(connector: SalesforceConnector) -> dict[str, Any]:
    return next(r for r in connector.deals() if r.get("RecordTypeId") == RENEWAL)


def _requests(sandbox: Sandbox) -> dict[str, int]:
    return dict(contract.stats(sandbox, "salesforce"))


def test_each_record_type_is_a_pipeline_of_the_stages_its_process_allows(
    org: Sandbox, connector: SalesforceConnector
) -> None:
    pipelines = {p.id: p for p in connector.pipelines()}

    assert list(pipelines) == ["default", "New_Business", "Renewal"]
    assert [s.id for s in pipelines["Renewal"].stages] == RENEWAL_STAGES
    assert pipelines["Renewal"].native_id == RENEWAL
    assert len(pipelines["default"].stages) == 8  # every stage: a deal without a record type
    calls = _requests(org)
    stage_values = sum(n for k, n in calls.items() if "picklist-values" in k)
    assert stage_values == 2  # one call per record type; the describe is the deal read's own
    assert sum(n for k, n in calls.items() if "describe" in k) == 1


def test_deals_are_read_in_their_record_types_pipeline_and_without_one_in_default(
    connector: SalesforceConnector,
) -> None:
    ctx = _context(connector)
    deals = [deal_from_salesforce(r, ctx) for r in connector.deals()]

    assert [d.pipeline for d in deals] == ["default", *["New_Business"] * 5, *["Renewal"] * 3]
    renewal = deals[-1]
    assert (renewal.native_stage, renewal.stage, renewal.funnel) == (
        "Renewal Due",
        "renewal_due",
        "renewal",
    )


def test_a_renewal_moved_to_committed_is_written_in_its_record_types_stage(
    connector: SalesforceConnector,
) -> None:
    ctx = _context(connector)
    record = _renewal(connector)

    payload = update_for_salesforce(deal_from_salesforce(record, ctx), {"stage": "committed"}, ctx)
    [result] = connector.update_deals([NativeUpdate(record["Id"], payload)])

    assert result.ok, result.error
    [after] = connector.read_deals([record["Id"]])
    assert (after["StageName"], after["RecordTypeId"]) == ("Renewal Committed", RENEWAL)
    assert deal_from_salesforce(after, ctx).stage == "committed"


def test_a_renewal_copy_is_created_with_the_renewal_record_type(
    connector: SalesforceConnector,
) -> None:
    ctx = _context(connector)
    renewal = deal_from_salesforce(_renewal(connector), ctx)

    fields = create_for_salesforce(renewal, ctx, "link-renewal-1")
    [result] = connector.create_deals([NativeCreate("link-renewal-1", fields)])

    assert result.ok, result.error
    [created] = connector.read_deals([str(result.id)])
    assert (created["RecordTypeId"], created["StageName"]) == (RENEWAL, "Renewal Due")
    assert deal_from_salesforce(created, ctx).pipeline == "Renewal"


def test_the_sandbox_refuses_a_stage_the_record_types_process_does_not_allow(
    connector: SalesforceConnector,
) -> None:
    record = _renewal(connector)

    [result] = connector.update_deals([NativeUpdate(record["Id"], {"StageName": "Negotiation"})])

    assert (result.ok, result.code) == (False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    [after] = connector.read_deals([record["Id"]])
    assert after["StageName"] == "Renewal Due"


def test_a_stage_outside_the_record_types_process_is_never_written(
    connector: SalesforceConnector,
) -> None:
    # A map giving the renewal funnel's `committed` a stage of another process only.
    mapped = {k: v for k, v in RENEWAL_MAP.items() if v != "committed"}
    ctx = _context(connector, {**mapped, "Negotiation": "committed"})
    renewal = deal_from_salesforce(_renewal(connector), ctx)

    with pytest.raises(MappingError) as refused:
        update_for_salesforce(renewal, {"stage": "committed"}, ctx)

    assert refused.value.field == "stage"
    assert "'Negotiation' is not a stage of record type Renewal" in refused.value.reason
    assert "systems.salesforce.stage_map.Renewal" in refused.value.reason


def test_an_org_without_record_types_reads_one_pipeline_at_no_call_more() -> None:
    with start_sandbox(dataset(30, 0), systems=["salesforce"], faults=FAST) as plain:
        connector = SalesforceConnector(settings_for(plain))
        try:
            pipelines = connector.pipelines()
            records = list(connector.deals())
        finally:
            connector.close()
        calls = _requests(plain)

    assert [p.id for p in pipelines] == ["default"]
    assert all("RecordTypeId" not in r for r in records)
    # OpportunityStage, the describe, one page of deals: as before record types.
    assert sum(calls.values()) == 3, calls


def test_a_renewals_stage_history_is_keyed_by_its_record_types_stage_map(
    connector: SalesforceConnector,
) -> None:
    ctx = _context(connector)
    record = _renewal(connector)
    payload = update_for_salesforce(deal_from_salesforce(record, ctx), {"stage": "committed"}, ctx)
    [result] = connector.update_deals([NativeUpdate(record["Id"], payload)])
    assert result.ok, result.error

    history = stage_history_from_salesforce(connector.stage_history(), ctx)
    deals = {
        d.id: d for d in map_deals(connector.deals(), ctx, PullReport("salesforce", True), history)
    }

    entries = deals[record["Id"]].stage_history
    assert [(e.native_stage, e.stage) for e in entries][-1:] == [("Renewal Committed", "committed")]
