"""A long SOQL read survives its cursor being released.

"A user can have up to 10 query cursors open at a time. If 10 QueryLocator cursors are open
when a client application, logged in as the same user, attempts to open a new one, then the
oldest of the 10 cursors is released", and a locator expires after 15 minutes of inactivity
(SOAP API guide, QueryLocator; Help 000004410). Another crmsync worker or any integration that
shares the API user can so release a read's cursor between two of its pages.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from math import ceil
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
    # Each resumed query reads on after the last deal read: every one brings new deals, so
    # the read ends with all of them.
    sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, cursors_released=True))
    ids = [d["Id"] for d in connector.deals()]
    assert len(ids) == len(set(ids)) == LIVE


BULK_SECOND = "2024-05-01T00:00:00.000+0000"  # Salesforce keeps whole seconds: no fraction


def _in_one_second(data: dict[str, Any], deleted: bool) -> dict[str, Any]:
    """`data` with every live (or every deleted) opportunity stamped in the same second, as a
    bulk update (or bulk delete) through Data Loader or the Bulk API stamps thousands."""
    changed = copy.deepcopy(data)
    for row in changed["salesforce"]["Opportunity"]:
        if row["IsDeleted"] == deleted:
            row["SystemModstamp"] = BULK_SECOND
    return changed


@contextmanager
def _connected(data: dict[str, Any]) -> Iterator[tuple[Sandbox, SalesforceConnector, Salesforce]]:
    """A sandbox of `data`, a connector to it, and another client of the same API user."""
    with start_sandbox(data, systems=["salesforce"], faults=FAST) as sandbox:
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
            yield sandbox, connector, other
        finally:
            connector.close()
            session.close()


def test_a_read_of_more_deals_in_one_second_than_a_page_reads_on_from_the_last_deal_read(
    sf_data: dict[str, Any],
) -> None:
    # Resumed after the first page, the read asks for the deals after the last one it read,
    # not for that second again: each deal is read once, and no page is read twice.
    with _connected(_in_one_second(sf_data, deleted=False)) as (_, connector, sf):
        ids = _read_across_a_release((d["Id"] for d in connector.deals()), sf)
        assert len(ids) == len(set(ids)) == LIVE
        # The first page, the refused queryMore, the resumed query and its next page.
        assert connector.calls()["deals"] == 4


def test_a_read_of_one_second_whose_every_cursor_is_released_reads_every_deal_once(
    sf_data: dict[str, Any],
) -> None:
    # Other clients of the API user release the read's cursor between each two pages. A
    # resume from the start of the second read the same first page again every time, and the
    # pull failed; from the last deal read, each resume brings the next page.
    with _connected(_in_one_second(sf_data, deleted=False)) as (sandbox, connector, _):
        sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, cursors_released=True))
        ids = [d["Id"] for d in connector.deals()]
        assert len(ids) == len(set(ids)) == LIVE
        # Each page after the first: a refused queryMore and a resumed query.
        assert connector.calls()["deals"] == 1 + 2 * (ceil(LIVE / 2000) - 1)


def test_a_read_stuck_among_stamps_its_query_cannot_tell_apart_fails_when_released_again(
    sf_data: dict[str, Any],
) -> None:
    # SOQL datetime literals have whole seconds. Salesforce keeps no more, but stamps with
    # milliseconds (the sandbox's writes make them) tie within their second: a resume brings
    # those read already again, and with more of them than a page it brings nothing new.
    # Released again there, resuming once more could go on for ever (a call each time, no
    # deal read): the pull fails, and the next run reads again.
    data = copy.deepcopy(sf_data)
    for n, row in enumerate(data["salesforce"]["Opportunity"]):
        row["SystemModstamp"] = f"2024-05-01T00:00:00.{n % 1000:03d}+0000"
    with _connected(data) as (sandbox, connector, _):
        sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, cursors_released=True))
        with pytest.raises(ApiError, match=CURSOR_GONE):
            list(connector.deals())
        # The first page, then per resume a refused queryMore and the query: the first
        # resume brings the few deals past the first page's last millisecond, the second none.
        assert connector.calls()["deals"] == 6


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
    with _connected(history_data) as (_, connector, other):
        yield connector, other


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


def test_a_deletions_read_of_a_bulk_delete_reads_on_from_the_last_deletion_read(
    history_data: dict[str, Any],
) -> None:
    # A bulk delete stamps more deletions in one second than a page holds.
    since = sf_time(BULK_SECOND) - timedelta(seconds=1)
    with _connected(_in_one_second(history_data, deleted=True)) as (sandbox, connector, _):
        sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, cursors_released=True))
        ids = list(connector.deleted_deals(since))
        assert len(ids) == len(set(ids)) == GONE
