"""A long SOQL read survives its cursor being released.

"A user can have up to 10 query cursors open at a time. If 10 QueryLocator cursors are open
when a client application, logged in as the same user, attempts to open a new one, then the
oldest of the 10 cursors is released", and a locator expires after 15 minutes of inactivity
(SOAP API guide, QueryLocator; Help 000004410). Another crmsync worker or any integration that
shares the API user can so release a read's cursor between two of its pages.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from simple_salesforce import Salesforce

from connectors.errors import ApiError
from connectors.salesforce import CURSOR_GONE, SalesforceConnector, sf_time
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_dataset import LIVE


def _open_ten_cursors(sf: Salesforce) -> None:
    for _ in range(10):  # each a first page of 200 of a longer result: a cursor left open
        sf.query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=200"})


def test_a_full_read_whose_cursor_is_released_reads_on_from_where_it_was(
    connector: SalesforceConnector, sf: Salesforce
) -> None:
    read = connector.deals()
    first = [next(read)["Id"] for _ in range(2000)]  # the first page
    _open_ten_cursors(sf)
    ids = first + [d["Id"] for d in read]
    assert len(ids) == len(set(ids)) == LIVE


def test_an_incremental_read_whose_cursor_is_released_reads_on_too(
    connector: SalesforceConnector, sf: Salesforce
) -> None:
    everything = list(connector.deals())
    since = min(sf_time(d["SystemModstamp"]) for d in everything)
    read = connector.deals(since)
    first = [next(read)["Id"] for _ in range(2000)]
    _open_ten_cursors(sf)
    ids = first + [d["Id"] for d in read]
    assert len(ids) == len(set(ids)) == LIVE - 1  # all but the one at `since` itself


def test_a_read_whose_every_cursor_is_released_reads_on_while_it_gets_further(
    sandbox: Sandbox, connector: SalesforceConnector
) -> None:
    # Each resumed query reads on from the newest second read: with distinct stamps every one
    # brings new deals, so the read ends with all of them.
    sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, cursors_released=True))
    ids = [d["Id"] for d in connector.deals()]
    assert len(ids) == len(set(ids)) == LIVE


def test_a_read_stuck_in_one_second_fails_when_its_cursor_is_released_again(
    sf_data: dict[str, Any], make_connector: Callable[..., SalesforceConnector]
) -> None:
    # A bulk load stamps thousands of deals in one second: a read resumed from that second
    # starts with a page of deals it already read. Released again there, resuming once more
    # could go on for ever (a call each time, no deal read): the pull fails as it did before
    # resuming existed, and the next run reads again.
    data = copy.deepcopy(sf_data)
    for row in data["salesforce"]["Opportunity"]:
        row["SystemModstamp"] = "2024-05-01T00:00:00.000+0000"
    with start_sandbox(data, systems=["salesforce"], faults=FAST) as sandbox:
        sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, cursors_released=True))
        connector = SalesforceConnector(settings_for(sandbox, call_budget=50))
        try:
            with pytest.raises(ApiError, match=CURSOR_GONE):
                list(connector.deals())
            assert connector.calls()["deals"] <= 4
        finally:
            connector.close()
