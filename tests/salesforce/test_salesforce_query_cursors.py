"""A long SOQL read survives its cursor being released.

"A user can have up to 10 query cursors open at a time. If 10 QueryLocator cursors are open
when a client application, logged in as the same user, attempts to open a new one, then the
oldest of the 10 cursors is released", and a locator expires after 15 minutes of inactivity
(SOAP API guide, QueryLocator; Help 000004410). Another crmsync worker or any integration that
shares the API user can so release a read's cursor between two of its pages.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from connectors.errors import ApiError
from connectors.salesforce import CURSOR_GONE, SalesforceConnector, sf_time
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from connectors.sandbox.salesforce_store import sf_id
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_dataset import LIVE, STAGES, dataset


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


HISTORY_DEALS, HISTORY_ROWS = 600, 8  # 4,800 OpportunityHistory rows: three pages
GONE = 2500  # deleted opportunities since the cursor: two pages of queryAll


@pytest.fixture(scope="module")
def history_data() -> dict[str, Any]:
    """The test dataset plus GONE deleted opportunities and HISTORY_ROWS stage-history rows
    for each of the first HISTORY_DEALS opportunities."""
    data = dataset(LIVE, GONE)
    opportunities = data["salesforce"]["Opportunity"][:HISTORY_DEALS]
    data["salesforce"]["OpportunityHistory"] = [
        {
            "Id": sf_id("008", n * HISTORY_ROWS + k + 1),
            "OpportunityId": opp["Id"],
            "StageName": STAGES[k % len(STAGES)][0],
            "Amount": opp["Amount"],
            "CloseDate": opp["CloseDate"],
            "Probability": STAGES[k % len(STAGES)][2],
            "CreatedDate": opp["CreatedDate"],
            "SystemModstamp": opp["CreatedDate"],
            "IsDeleted": False,
        }
        for n, opp in enumerate(opportunities)
        for k in range(HISTORY_ROWS)
    ]
    return data


@pytest.fixture
def busy(history_data: dict[str, Any]) -> Iterator[tuple[SalesforceConnector, Salesforce]]:
    """A connector, and another client of the same API user, on a sandbox of history_data."""
    with start_sandbox(history_data, systems=["salesforce"], faults=FAST) as sandbox:
        connector = SalesforceConnector(settings_for(sandbox))
        session = requests.Session()
        session.trust_env = False
        session.verify = str(sandbox.ca_file)
        other = Salesforce(
            instance_url=sandbox.urls["salesforce"],
            session_id=sandbox.tokens["salesforce"],
            session=session,
        )
        try:
            yield connector, other
        finally:
            connector.close()
            session.close()


def _read_across_a_release(ids: Iterator[str], sf: Salesforce) -> list[str]:
    """All of `ids`, the first page read before another client releases the read's cursor."""
    first = [next(ids) for _ in range(2000)]
    _open_ten_cursors(sf)
    return first + list(ids)


def test_a_stage_history_read_whose_cursor_is_released_reads_on_from_where_it_was(
    busy: tuple[SalesforceConnector, Salesforce],
) -> None:
    connector, sf = busy
    ids = _read_across_a_release((r["Id"] for r in connector.stage_history()), sf)
    assert len(ids) == len(set(ids)) == HISTORY_DEALS * HISTORY_ROWS


def test_a_stage_history_read_of_changed_deals_reads_on_after_its_cursor_is_released(
    busy: tuple[SalesforceConnector, Salesforce], history_data: dict[str, Any]
) -> None:
    # 300 deals a query (the IN chunk) with 8 rows each: more than one page per query.
    deals = [d["Id"] for d in history_data["salesforce"]["Opportunity"][:300]]
    connector, sf = busy
    ids = _read_across_a_release((r["Id"] for r in connector.stage_history(deals)), sf)
    assert len(ids) == len(set(ids)) == 300 * HISTORY_ROWS


def test_a_deletions_read_whose_cursor_is_released_reads_on_from_where_it_was(
    busy: tuple[SalesforceConnector, Salesforce], history_data: dict[str, Any]
) -> None:
    gone = [d for d in history_data["salesforce"]["Opportunity"] if d["IsDeleted"]]
    since = sf_time(gone[0]["SystemModstamp"]) - timedelta(seconds=1)
    connector, sf = busy
    ids = _read_across_a_release(iter(connector.deleted_deals(since)), sf)
    assert len(ids) == len(set(ids)) == GONE
