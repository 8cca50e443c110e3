"""A Pipedrive sandbox per test, seeded from the generator, and connectors pointed at it."""

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
from connectors.credentials import PipedriveApiToken  # noqa: E402
from connectors.pipedrive import PipedriveConnector  # noqa: E402
from connectors.sandbox.faults import Faults  # noqa: E402
from connectors.sandbox.generator import generate  # noqa: E402
from connectors.sandbox.launcher import Sandbox, start_sandbox  # noqa: E402

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
    options = {"backoff_base": 0.01, **overrides.pop("options", {})}
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
    made: list[PipedriveConnector] = []

    def make(**overrides: Any) -> PipedriveConnector:
        connector = PipedriveConnector(settings_for(sandbox, **overrides))
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def connector(make_connector: Callable[..., PipedriveConnector]) -> PipedriveConnector:
    return make_connector()
