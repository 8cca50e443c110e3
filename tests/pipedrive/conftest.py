"""A Pipedrive sandbox per test, seeded from the generator, and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.base import ConnectorSettings
from connectors.credentials import PipedriveApiToken
from connectors.pipedrive import PipedriveConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import Sandbox, start_sandbox
from mapping import DEFAULT_FUNNEL, MappingContext
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID
from mapping.stages import propose_stage_map, stage_map_from_proposals
from tests.connectors.contract import connectors_made

# Far above the real 80 / 2 s, so tests run at full speed; rate-limit tests lower it.
FAST = Faults(rate_limit=10_000)


@pytest.fixture(scope="session")
def pd_data() -> dict[str, Any]:
    dataset, _ = generate(600, seed=11)
    return {"pipedrive": dataset["pipedrive"]}


@pytest.fixture
def sandbox(pd_data: dict[str, Any]) -> Iterator[Sandbox]:
    with start_sandbox(pd_data, systems=["pipedrive"], faults=FAST) as running:
        yield running


def settings_for(sandbox: Sandbox, **overrides: Any) -> ConnectorSettings:
    # crmsync's copies go to an organization, which Pipedrive requires of a deal
    options = {"backoff_base": 0.01, "create_org_id": 1, **overrides.pop("options", {})}
    values: dict[str, Any] = {
        "instance": "pipedrive",
        "credentials": PipedriveApiToken(sandbox.tokens["pipedrive"]),
        "base_url": sandbox.urls["pipedrive"],
        "rate_limit": (10_000, 2.0),
        "options": options,
        **overrides,
    }
    return ConnectorSettings(**values)


@pytest.fixture
def make_connector(sandbox: Sandbox) -> Iterator[Callable[..., PipedriveConnector]]:
    with connectors_made(
        lambda **overrides: PipedriveConnector(settings_for(sandbox, **overrides))
    ) as make:
        yield make


@pytest.fixture
def connector(make_connector: Callable[..., PipedriveConnector]) -> PipedriveConnector:
    return make_connector()


def mapping_context(connector: PipedriveConnector) -> MappingContext:
    """What a run maps this connector's deals with: its pipelines (stage map as `init`
    proposes it, inactive pipelines retired), owners and crmsync's link field."""
    pipelines = connector.pipelines()
    native = {p.id: p.stages for p in pipelines}
    return MappingContext(
        instance="pipedrive",
        kind="pipedrive",
        funnels={"default": DEFAULT_FUNNEL},
        stage_map=stage_map_from_proposals(propose_stage_map(native, DEFAULT_FUNNEL)),
        native_stages=native,
        retired_pipelines=frozenset(p.id for p in pipelines if not p.active),
        owners={str(o["id"]): o["email"] for o in connector.owners()},
        link_field=PD_FIELD_CRMSYNC_ID,
    )
