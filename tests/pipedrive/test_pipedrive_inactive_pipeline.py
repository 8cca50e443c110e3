"""A Pipedrive pipeline marked deleted (API v1 lists it with `active: false`; v2 names the same
flag `is_deleted`) still holds the deals nobody moved: crmsync reads them under that pipeline's
own stages, from the same two listings it reads anyway, and never creates a copy there."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from connectors.pipedrive import PipedriveConnector
from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import Sandbox, start_sandbox
from mapping import (
    DEFAULT_FUNNEL,
    MappingError,
    create_for_pipedrive,
    deal_from_pipedrive,
)
from tests.connectors import contract
from tests.pipedrive.conftest import FAST, mapping_context, settings_for

RETIRED = "2"  # the generator's Renewals pipeline


@pytest.fixture(scope="module")
def company() -> dict[str, Any]:
    dataset, _ = generate(60, seed=11)
    return {"pipedrive": dataset["pipedrive"]}


def _retired(company: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(company)
    for pipeline in data["pipedrive"]["pipelines"]:
        if str(pipeline["id"]) == RETIRED:
            pipeline["active"] = False
    return data


@pytest.fixture
def sandbox(company: dict[str, Any]) -> Iterator[Sandbox]:
    with start_sandbox(_retired(company), systems=["pipedrive"], faults=FAST) as running:
        yield running


@pytest.fixture
def connector(sandbox: Sandbox) -> Iterator[PipedriveConnector]:
    made = PipedriveConnector(settings_for(sandbox))
    try:
        yield made
    finally:
        made.close()


def _pipeline_calls(sandbox: Sandbox, connector: PipedriveConnector) -> dict[str, int]:
    contract.clear_stats(sandbox, "pipedrive")
    connector.pipelines()
    return contract.stats(sandbox, "pipedrive")


def test_deals_of_a_deleted_pipeline_read_in_its_own_stages(
    connector: PipedriveConnector, company: dict[str, Any]
) -> None:
    pipelines = {p.id: p for p in connector.pipelines()}

    assert list(pipelines) == ["1", RETIRED]
    retired = pipelines[RETIRED]
    stages = [str(s["id"]) for s in company["pipedrive"]["stages"] if str(s["pipeline_id"]) == "2"]
    assert ([s.id for s in retired.stages], retired.active) == (stages, False)
    assert pipelines["1"].active

    ctx = mapping_context(connector)
    deals = [deal_from_pipedrive(r, ctx) for r in connector.deals()]
    held = [d for d in deals if d.pipeline == RETIRED]
    assert held and all(d.stage is not None for d in held), held[:3]


def test_a_deleted_pipeline_costs_no_call_more_than_a_company_without_one(
    sandbox: Sandbox, connector: PipedriveConnector, company: dict[str, Any]
) -> None:
    with start_sandbox(company, systems=["pipedrive"], faults=FAST) as live:
        before = PipedriveConnector(settings_for(live))
        try:
            without = _pipeline_calls(live, before)
        finally:
            before.close()

    with_one = _pipeline_calls(sandbox, connector)

    assert with_one == without
    assert sum(without.values()) == 2, (
        without
    )  # GET /api/v2/pipelines and one page of /api/v2/stages


def test_no_copy_is_created_in_a_deleted_pipeline(connector: PipedriveConnector) -> None:
    ctx = mapping_context(connector)
    record = next(r for r in connector.deals() if str(r["pipeline_id"]) == RETIRED)
    deal = deal_from_pipedrive(record, ctx)

    body = create_for_pipedrive(deal, ctx, "link-retired-1")

    assert str(body.get("pipeline_id")) == "1", body  # the live pipeline of its funnel
    renewals = replace(
        ctx,
        funnels={**ctx.funnels, "renewal": DEFAULT_FUNNEL},
        pipeline_funnels={RETIRED: "renewal"},
    )
    with pytest.raises(MappingError) as refused:
        create_for_pipedrive(deal_from_pipedrive(record, renewals), renewals, "link-retired-2")
    assert refused.value.field == "pipeline"
    reason = refused.value.reason
    assert f"{RETIRED} is deactivated or deleted there" in reason, reason


def test_a_deleted_pipelines_stages_listed_as_deleted_still_read_its_deals(
    company: dict[str, Any],
) -> None:
    """The v1 spec calls a stage's `active_flag` "whether the stage is active or deleted" and
    says nothing of what deleting a pipeline does to its stages: where GET /api/v2/stages lists
    them `active_flag: false`, the deals left in that pipeline still read in its stages."""
    data = _retired(company)
    for stage in data["pipedrive"]["stages"]:
        if str(stage["pipeline_id"]) == RETIRED:
            stage["active_flag"] = False
    with start_sandbox(data, systems=["pipedrive"], faults=FAST) as running:
        connector = PipedriveConnector(settings_for(running))
        try:
            retired = {p.id: p for p in connector.pipelines()}[RETIRED]
            ctx = mapping_context(connector)
            deals = [deal_from_pipedrive(r, ctx) for r in connector.deals()]
        finally:
            connector.close()

    stages = [str(s["id"]) for s in data["pipedrive"]["stages"] if str(s["pipeline_id"]) == "2"]
    assert ([s.id for s in retired.stages], retired.active) == (stages, False)
    held = [d for d in deals if d.pipeline == RETIRED]
    assert held and all(d.stage is not None for d in held), held[:3]
