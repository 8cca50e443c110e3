"""A HubSpot sandbox per test, seeded from the generator, and connectors pointed at it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# tests/ is not an installed package; make `tests.connectors.contract` importable.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from connectors.base import ConnectorSettings  # noqa: E402
from connectors.credentials import HubSpotToken  # noqa: E402
from connectors.hubspot import HubSpotConnector  # noqa: E402
from connectors.sandbox.faults import Faults  # noqa: E402
from connectors.sandbox.generator import generate  # noqa: E402
from connectors.sandbox.launcher import Sandbox, start_sandbox  # noqa: E402

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
    made: list[HubSpotConnector] = []

    def make(**overrides: Any) -> HubSpotConnector:
        connector = HubSpotConnector(settings_for(sandbox, **overrides))
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def connector(make_connector: Callable[..., HubSpotConnector]) -> HubSpotConnector:
    return make_connector()
