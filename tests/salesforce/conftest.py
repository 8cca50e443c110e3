"""A Salesforce sandbox per test (TLS, hand-built data) and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from connectors.base import ConnectorSettings
from connectors.credentials import SalesforceSession
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from tests.connectors.contract import connectors_made
from tests.salesforce.sf_dataset import DELETED, LIVE, dataset

FAST = Faults(rate_limit=10_000)  # far above the default 100/s, so tests run at full speed


@pytest.fixture(scope="session")
def sf_data() -> dict[str, Any]:
    return dataset(LIVE, DELETED)


@pytest.fixture
def sandbox(sf_data: dict[str, Any]) -> Iterator[Sandbox]:
    with start_sandbox(sf_data, systems=["salesforce"], faults=FAST) as running:
        yield running


def settings_for(sandbox: Sandbox, **overrides: Any) -> ConnectorSettings:
    values: dict[str, Any] = {
        "instance": "salesforce",
        "credentials": SalesforceSession(sandbox.tokens["salesforce"]),
        "base_url": sandbox.urls["salesforce"],
        "ca_file": sandbox.ca_file,
        "link_field": "Crmsync_Id__c",
        "rate_limit": (10_000, 1.0),
        "options": {"backoff_base": 0.01, **overrides.pop("options", {})},
        **overrides,
    }
    return ConnectorSettings(**values)


@pytest.fixture
def make_connector(sandbox: Sandbox) -> Iterator[Callable[..., SalesforceConnector]]:
    with connectors_made(
        lambda **overrides: SalesforceConnector(settings_for(sandbox, **overrides))
    ) as make:
        yield make


@pytest.fixture
def connector(make_connector: Callable[..., SalesforceConnector]) -> SalesforceConnector:
    return make_connector()


@pytest.fixture
def sf(sandbox: Sandbox) -> Salesforce:
    """simple-salesforce exactly as its docs show, plus a session trusting the sandbox CA."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override `verify`
    session.verify = str(sandbox.ca_file)
    return Salesforce(
        instance_url=sandbox.urls["salesforce"],
        session_id=sandbox.tokens["salesforce"],
        session=session,
    )
