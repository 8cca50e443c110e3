"""A long SOQL read survives its cursor being released.

"A user can have up to 10 query cursors open at a time. If 10 QueryLocator cursors are open
when a client application, logged in as the same user, attempts to open a new one, then the
oldest of the 10 cursors is released", and a locator expires after 15 minutes of inactivity
(SOAP API guide, QueryLocator; Help 000004410). Another crmsync worker or any integration that
shares the API user can so release a read's cursor between two of its pages.
"""

from __future__ import annotations

from simple_salesforce import Salesforce

from connectors.salesforce import SalesforceConnector, sf_time
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
