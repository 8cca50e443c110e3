"""A HubSpot sandbox per test, seeded from the generator, and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.base import ConnectorSettings
from connectors.credentials import HubSpotToken
from connectors.hubspot import HubSpotConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import Sandbox, start_sandbox
from tests.connectors.contract import connectors_made

# Far above the real 100 / 10 s, so tests run at full speed; rate-limit tests lower it.
FAST = Faults(rate_limit=10_000)


@pytest.fixture(scope="session")
def hs_data() -> dict[str, Any]:
    dataset, _ = generate(150, seed=7)
    return {"hubspot": dataset["hubspot"]}


@pytest.fixture
def sandbox(hs_data: dict[str, Any]) -> Iterator[Sandbox]:
    with start_sandbox(hs_data, systems=["hubspot"], faults=FAST) as running:
        yield running


def settings_for(sandbox: Sandbox, **overrides: Any) -> ConnectorSettings:
    options = {"backoff_base": 0.01, "search_rate": (1000, 1.0), **overrides.pop("options", {})}
    values: dict[str, Any] = {
        "instance": "hubspot",
        "credentials": HubSpotToken(sandbox.tokens["hubspot"]),
        "base_url": sandbox.urls["hubspot"],
        "link_field": "crmsync_id",
        "rate_limit": (10_000, 10.0),
        "options": options,
        **overrides,
    }
    return ConnectorSettings(**values)


@pytest.fixture
def make_connector(sandbox: Sandbox) -> Iterator[Callable[..., HubSpotConnector]]:
    with connectors_made(
        lambda **overrides: HubSpotConnector(settings_for(sandbox, **overrides))
    ) as make:
        yield make


@pytest.fixture
def connector(make_connector: Callable[..., HubSpotConnector]) -> HubSpotConnector:
    return make_connector()
