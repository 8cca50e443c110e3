"""Reading a SOQL query on after Salesforce released its cursor.

"A user can have up to 10 query cursors open at a time": opening an 11th releases the oldest,
and one left idle for 15 minutes expires (SOAP API guide, QueryLocator; Help 000004410). The
next queryMore of that read is answered 400 INVALID_QUERY_LOCATOR, which simple-salesforce
raises as SalesforceMalformedRequest with the error list as its content. Another process of
the same API user can so release a read's cursor between two of its pages.

A query in a stable order can be asked again from where its read was: `ReadOn` keeps that
place, gives the query that reads on from it, and drops the records of that place the read
gave already. Every read that pages through cursors uses it, each with its own `Order`: one
that tells every record apart (SystemModstamp then Id, or Id), so that a resume always starts
after the last record read, however many records share a SystemModstamp second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = ["CURSOR_GONE", "Order", "ReadOn"]

CURSOR_GONE = "INVALID_QUERY_LOCATOR"
# A record's place in a query's order: its (SystemModstamp, Id), or its Id.
P = TypeVar("P", tuple[datetime, str], str)


@dataclass(frozen=True)
class Order(Generic[P]):
    """A query's ORDER BY, as a read that resumes needs it.

    `place(record)`: where the record is in that order (None: nowhere, it cannot be told);
    `tie(place)`: what the query's literals tell apart, so what a resume may give again (SOQL
    datetime literals have whole seconds, as Salesforce's stamps do; stamps with a fraction,
    which only the sandbox's writes make, tie within their second); `query_from(place)`: the
    same query reading on after that place, in the same order, records of its tie perhaps
    again (None: the query from its start).
    """

    place: Callable[[Mapping[str, Any]], P | None]
    tie: Callable[[P], Any]
    query_from: Callable[[P | None], str]


class ReadOn(Generic[P]):
    """Where a read in `order` is.

    The place kept is the last record's the read gave, not the greatest by Python's
    comparison: the records come in the API's order, whose collation of ids is its own.
    """

    def __init__(self, order: Order[P]) -> None:
        self._order: Order[P] = order
        self._last: P | None = None
        self._had: dict[str, P] = {}  # id -> place, of the records given in the last tie
        # Records given, and how many when the read last resumed: a resume that brought none
        # (more records in one tie than a page, which only sub-second stamps make) is not
        # resumed again, which could go on for ever (a call each time, no record read).
        self._given, self._resumed_at = 0, -1

    def query(self) -> str | None:
        """The query reading on from the last place, or None when it may not (the error then
        stands: the pull fails as it would without resuming, and the next run reads again)."""
        if self._given == self._resumed_at:
            return None
        self._resumed_at = self._given
        return self._order.query_from(self._last)

    def fresh(self, record: Mapping[str, Any]) -> bool:
        """Whether the read gives `record`: not when it gave it before its cursor was released
        (at the same place, or later: a record changed since is given again)."""
        place = self._order.place(record)
        if place is not None:
            key = str(record.get("Id"))
            had = self._had.get(key)
            if had is not None and place <= had:
                return False
            if self._last is None or self._order.tie(place) != self._order.tie(self._last):
                self._had.clear()
            self._had[key] = place
            self._last = place
        self._given += 1
        return True
