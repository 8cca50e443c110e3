"""Salesforce Accounts by name and by change: the Account a copy crmsync creates goes under,
and the Accounts changed since a time (what a rename reaches only through them).

A copy goes under the Account whose Name is its account's (compared as
connectors/account_names.py says): exactly one such Account gives the copy its `AccountId`;
none or several, the copy is created without one and says why. crmsync never makes an
Account: in Salesforce it is a governed master record (duplicate rules, required fields,
validation rules, territory assignment), not a label as a Pipedrive organization is.

The names a run's copies expect (`Accounts.expect`) are looked up once each, in as few
queries as fit (`account_queries`): SOQL `Name IN (...)` compares as case-insensitively as
we do, and the whole names we compare are picked from what it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote_plus

from simple_salesforce.format import format_soql

from connectors.account_names import (
    AccountLookup,
    AccountMatch,
    AccountWords,
    bearing,
    matched,
    name_key,
)
from connectors.base import change_time
from connectors.errors import ApiError
from connectors.salesforce_cursors import ReadOn
from connectors.salesforce_soql import by_modstamp, modstamp_soql, sf_time

__all__ = [
    "QUERY_BYTES",
    "WITHOUT_ACCOUNT",
    "WORDS",
    "AccountMatch",
    "Accounts",
    "account_calls",
    "account_queries",
    "read_changed_accounts",
]

# The most bytes a lookup's SOQL takes URL-encoded (simple-salesforce sends it as the `q` of
# GET /query). Salesforce answers 414 or 431 past 16,384 bytes of URI and headers together,
# and refuses a statement past 100,000 characters; this leaves the headers room, as the id
# lookups of 300 ids a query do.
QUERY_BYTES = 8000
_LOOKUP = "SELECT Id, Name FROM Account WHERE Name IN {}"
# What a copy under no Account of its account's name gets instead, as its note says.
WITHOUT_ACCOUNT = "created without an Account"
# Account.Name holds 255 characters (the Account object reference: Name, string(255)).
WORDS = AccountWords("Account", "Accounts", WITHOUT_ACCOUNT, 255)

_log = logging.getLogger("crmsync.salesforce")

# The connector's counted SOQL read: (operation, soql, resume) -> records.
Query = Callable[[str, str, ReadOn[Any]], Iterator[dict[str, Any]]]


def read_changed_accounts(system: str, query: Query, since: datetime) -> dict[str, str | None]:
    """Id -> Name of the Accounts changed after `since` (SystemModstamp, as the deals are
    read), one query page per 2,000; none when the API user may not read Accounts."""
    moment = since if since.tzinfo else since.replace(tzinfo=UTC)
    fields = "Id, Name, SystemModstamp"
    query_from = partial(modstamp_soql, fields, moment, sobject="Account")
    read_on = ReadOn(by_modstamp(query_from))
    names: dict[str, str | None] = {}
    try:
        for record in query("accounts", query_from(None), read_on):
            stamp = change_time(sf_time, record.get("SystemModstamp"))
            if stamp is not None and stamp > moment:
                name = record.get("Name")
                names[str(record["Id"])] = str(name) if isinstance(name, str) else None
    except ApiError as exc:
        if "INVALID_TYPE" not in exc.message:
            raise
        # The API user may not read Accounts (its profile hides the object): its deals
        # were read without Account.Name too, and a rename can be read by no one.
        _log.warning(
            "%s: Accounts are not readable (%s): renames are not read", system, exc.message
        )
        return {}
    return names


def account_queries(names: Iterable[str]) -> list[str]:
    """The queries that look up `names` (trimmed, each name once, none longer than an
    Account's can be), as few as keep each within QUERY_BYTES URL-encoded (a name of 255
    characters takes at most 3,100 bytes); values escaped by simple-salesforce's quoting."""
    distinct: dict[str, str] = {}
    for name in names:
        if name.strip() and WORDS.fits(name):
            distinct.setdefault(name_key(name), name.strip())
    base = len(quote_plus(format_soql(_LOOKUP, [""]))) - len(quote_plus("''"))
    queries: list[str] = []
    chunk: list[str] = []
    size = base
    for name in distinct.values():
        # a value costs its encoded literal and, after the first, an encoded comma (%2C)
        cost = len(quote_plus(format_soql("{}", name))) + (3 if chunk else 0)
        if chunk and size + cost > QUERY_BYTES:
            queries.append(format_soql(_LOOKUP, chunk))
            chunk, size, cost = [], base, cost - 3
        chunk.append(name)
        size += cost
    if chunk:
        queries.append(format_soql(_LOOKUP, chunk))
    return queries


def account_calls(names: Iterable[str]) -> int:
    """The calls looking up `names` costs (a query each of `account_queries`, whose matches
    fit one page)."""
    return len(account_queries(names))


class Accounts(AccountLookup):
    """Account name -> AccountMatch, each name looked up once per connector (a run), in as
    few queries as fit (`account_queries`). `query(soql)` is the connector's counted, paged
    read."""

    def __init__(self, system: str, query: Callable[[str], Iterable[dict[str, Any]]]) -> None:
        super().__init__(self._looked_up, WORDS)
        self._system, self._query = system, query

    def _looked_up(self, names: list[str]) -> dict[str, AccountMatch]:
        try:
            found = [r for soql in account_queries(names) for r in self._query(soql)]
        except ApiError as exc:
            if "INVALID_TYPE" not in exc.message:
                raise
            # The API user may not read Accounts (its profile hides the object): no copy can
            # be told its Account, and none is guessed.
            match = WORDS.none(f"Accounts are not readable by the API user ({exc.message})")
            _log.warning("%s: %s", self._system, match.note)
            return {name_key(n): match for n in names}
        return {name_key(n): matched(n, bearing(n, found, ("Id", "Name")), WORDS) for n in names}
