"""The Salesforce Accounts changed since a time: what a rename reaches only through them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from connectors.base import change_time
from connectors.errors import ApiError
from connectors.salesforce_cursors import ReadOn
from connectors.salesforce_soql import by_modstamp, modstamp_soql, sf_time

__all__ = ["read_changed_accounts"]

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
