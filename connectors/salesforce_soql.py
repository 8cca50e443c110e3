"""SOQL text and the paging calls of the Salesforce connector, as pure functions: the queries
by SystemModstamp then Id (deals, deletions, accounts) and by Id (stage history), the orders a
read resumes in (`salesforce_cursors`), and the library calls that read a query's pages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from connectors.base import change_time
from connectors.salesforce_cursors import Order

__all__ = [
    "PAGE",
    "QUERY_OPTIONS",
    "by_id",
    "by_modstamp",
    "first_page",
    "history_soql",
    "modstamp_soql",
    "next_page",
    "rest_get",
    "sf_time",
]

PAGE = 2000
QUERY_OPTIONS = {"Sforce-Query-Options": f"batchSize={PAGE}"}
HISTORY_FIELDS = "Id, OpportunityId, StageName, Amount, CloseDate, Probability, CreatedDate"


def sf_time(value: str) -> datetime:
    """A Salesforce datetime ("2024-06-01T12:34:56.000+0000") as an aware UTC datetime."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def modstamp_soql(
    fields: str,
    since: datetime | None,
    after: tuple[datetime, str] | None,
    *,
    deleted: bool = False,
    sobject: str = "Opportunity",
) -> str:
    """Opportunities (or `sobject` records) by SystemModstamp then Id (only deleted ones if
    `deleted`, for queryAll): all or changed after `since`, or, reading on, those after the
    record `after` (its
    SystemModstamp and Id). SOQL datetime literals have whole seconds, as Salesforce's stamps
    do: ask from the second; the caller drops what it saw before or at `since`."""
    where = ["IsDeleted = true"] if deleted else []
    if after is not None:
        # A keyset: the Id goes on where a bulk write's second holds more than a page.
        stamp, last_id = after
        where.append(
            format_soql(
                "(SystemModstamp > {t} OR (SystemModstamp = {t} AND Id > {id}))",
                t=_second(stamp),
                id=last_id,
            )
        )
    elif since is not None:
        where.append(format_soql("SystemModstamp > {}", _second(since)))
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {fields} FROM {sobject}{condition} ORDER BY SystemModstamp, Id"


def by_modstamp(
    query_from: Callable[[tuple[datetime, str] | None], str],
) -> Order[tuple[datetime, str]]:
    """The order of a query by SystemModstamp then Id, whose literals tell whole seconds
    apart."""
    return Order(_modstamp_id, _stamp_second, query_from)


def _modstamp_id(record: Mapping[str, Any]) -> tuple[datetime, str] | None:
    stamp = change_time(sf_time, record.get("SystemModstamp"))
    return None if stamp is None else (stamp, str(record["Id"]))


def _stamp_second(place: tuple[datetime, str]) -> datetime:
    return _second(place[0])


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def history_soql(ids: Sequence[str] | None, after: str | None) -> str:
    """Stage history rows by Id, of the deals `ids` (or all), from the row `after` on."""
    where = [] if ids is None else [format_soql("OpportunityId IN {}", list(ids))]
    if after is not None:
        where.append(format_soql("Id >= {}", after))
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {HISTORY_FIELDS} FROM OpportunityHistory{condition} ORDER BY Id"


def by_id(query_from: Callable[[str | None], str]) -> Order[str]:
    """The order of a query by Id."""
    return Order(_row_id, _itself, query_from)


def _row_id(record: Mapping[str, Any]) -> str:
    return str(record["Id"])


def _itself(row_id: str) -> str:
    """An id literal tells every row apart: each row ties with itself alone."""
    return row_id


def first_page(soql: str, include_deleted: bool) -> Callable[[Salesforce], Any]:
    return lambda sf: sf.query(soql, include_deleted=include_deleted, headers=QUERY_OPTIONS)


def rest_get(path: str) -> Callable[[Salesforce], Any]:
    return lambda sf: sf.restful(path)


def next_page(url: str) -> Callable[[Salesforce], Any]:
    return lambda sf: sf.query_more(url, identifier_is_url=True, headers=QUERY_OPTIONS)
