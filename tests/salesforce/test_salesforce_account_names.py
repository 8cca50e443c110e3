"""A deal read from Salesforce carries its account's name (Account.Name, in the same query: no
call more), which a copy in Pipedrive is filed under; an Opportunity without an Account
carries none, as Salesforce answers `"Account": null`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.salesforce import SalesforceConnector
from connectors.sandbox.launcher import Sandbox, start_sandbox
from mapping import MappingContext, deal_from_salesforce
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_dataset import dataset


@pytest.fixture
def accounts_sandbox() -> Iterator[tuple[Sandbox, dict[str, Any]]]:
    data = dataset(deals=12, deleted=0)
    opportunities = data["salesforce"]["Opportunity"]
    named = {o["AccountId"] for o in opportunities[:6]}
    data["salesforce"]["Account"] = [
        {"attributes": {"type": "Account"}, "Id": account, "Name": f"Company {n}"}
        for n, account in enumerate(sorted(named))
    ]
    opportunities[-1]["AccountId"] = None
    with start_sandbox(data, systems=["salesforce"], faults=FAST) as running:
        yield running, data


def test_deals_read_with_their_account_name_in_the_same_query(accounts_sandbox) -> None:
    sandbox, data = accounts_sandbox
    connector = SalesforceConnector(settings_for(sandbox))
    try:
        records = list(connector.deals())
        calls = connector.calls()
    finally:
        connector.close()
    names = {a["Id"]: a["Name"] for a in data["salesforce"]["Account"]}
    ctx = MappingContext(instance="salesforce", kind="salesforce")
    for record in records:
        account = record["Account"]
        expected = names.get(record["AccountId"])
        assert (account or {}).get("Name") == expected, record["Id"]
        if expected is not None:
            assert deal_from_salesforce(record, ctx).extra["account"] == expected
    assert records[-1]["AccountId"] is None and records[-1]["Account"] is None
    assert calls == {"describe": 1, "deals": 1}  # one query page, as without the names
