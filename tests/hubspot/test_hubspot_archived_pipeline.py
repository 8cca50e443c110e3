"""A HubSpot pipeline deleted through the v3 API while it held deals (the API checks nothing by
default) is archived: the pipelines API has listed no archived pipeline since its `archived`
parameter was sunset (2022-03-14), and documents no other read of one. The deals keep its id,
so they read as in unmapped stages, at the one pipelines call a portal without one makes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.hubspot import HubSpotConnector
from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import Sandbox, start_sandbox
from mapping import DEFAULT_FUNNEL, MappingContext, deal_from_hubspot
from mapping.stages import propose_stage_map, stage_map_from_proposals
from tests.connectors import contract
from tests.hubspot.conftest import FAST, settings_for

ARCHIVED = "renewals"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    dataset, _ = generate(60, seed=11)
    data: dict[str, Any] = {"hubspot": copy.deepcopy(dataset["hubspot"])}
    for pipeline in data["hubspot"]["pipelines"]:
        if pipeline["id"] == ARCHIVED:
            pipeline["archived"] = True
    with start_sandbox(data, systems=["hubspot"], faults=FAST) as running:
        yield running


@pytest.fixture
def connector(sandbox: Sandbox) -> Iterator[HubSpotConnector]:
    made = HubSpotConnector(settings_for(sandbox))
    try:
        yield made
    finally:
        made.close()


def test_deals_left_in_an_archived_pipeline_read_as_unmapped(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    contract.clear_stats(sandbox, "hubspot")
    pipelines = connector.pipelines()

    assert [p.id for p in pipelines] == ["default"]
    calls = contract.stats(sandbox, "hubspot")
    assert sum(n for k, n in calls.items() if "pipelines" in k) == 1, calls
    native = {p.id: p.stages for p in pipelines}
    ctx = MappingContext(
        instance="hubspot",
        kind="hubspot",
        funnels={"default": DEFAULT_FUNNEL},
        stage_map=stage_map_from_proposals(propose_stage_map(native, DEFAULT_FUNNEL)),
        native_stages=native,
    )
    deals = [deal_from_hubspot(r, ctx) for r in connector.deals()]
    left = [d for d in deals if d.pipeline == ARCHIVED]
    assert left and all(d.stage is None for d in left), left[:3]
