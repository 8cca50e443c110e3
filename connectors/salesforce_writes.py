"""Salesforce collection writes (`composite/sobjects`, 200 records a call) and their results:
updates and deletes whose locked records are sent again, creates that look up what an
unanswered attempt already created, and the per-record answers as PushResults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from connectors.base import PushResult

__all__ = [
    "GONE",
    "LOCKED",
    "Creates",
    "RecordsLocked",
    "Saves",
    "jsonable",
    "push_result",
]

GONE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"})  # deletes: NOT_FOUND
# A record another save, flow or bulk load holds (or its parent Account): only that record's
# write failed, and goes through once the lock is released (Salesforce waits 10 s for one).
LOCKED = "UNABLE_TO_LOCK_ROW"


class RecordsLocked(Exception):
    """Records of a collection write were answered UNABLE_TO_LOCK_ROW: the policy backs off
    and the same write sends only those again."""


def _locked(result: Mapping[str, Any] | None) -> bool:
    if result is None or result.get("success"):
        return False
    return any(e.get("statusCode") == LOCKED for e in result.get("errors") or [])


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class Saves:
    """One update (PATCH records) or delete (DELETE ids) collection write whose locked records
    are sent again, alone, after the policy's backoff; both writes are idempotent, so a repeat
    after a lost answer re-sends what is not answered yet. Results come in input order."""

    def __init__(self, method: str, items: Sequence[Any], tries: int):
        self.method, self.items, self.tries, self.attempts = method, list(items), tries, 0
        self.results: list[dict[str, Any] | None] = [None] * len(self.items)

    def send(self, sf: Salesforce) -> list[dict[str, Any]]:
        self.attempts += 1
        pending = [i for i, r in enumerate(self.results) if r is None or _locked(r)]
        answered = self._write(sf, [self.items[i] for i in pending])
        for i, result in zip(pending, answered, strict=True):
            self.results[i] = result
        if self.attempts < self.tries and any(_locked(self.results[i]) for i in pending):
            raise RecordsLocked()
        return [r for r in self.results if r is not None]

    def _write(self, sf: Salesforce, items: list[Any]) -> list[dict[str, Any]]:
        if self.method == "DELETE":
            params = {"ids": ",".join(items), "allOrNone": "false"}
            return list(sf.restful("composite/sobjects", method="DELETE", params=params) or [])
        body = {"allOrNone": False, "records": items}
        return list(sf.restful("composite/sobjects", method="PATCH", json=body) or [])


class Creates:
    """One create batch; a retry first looks up what an unanswered attempt already created.

    A dropped connection can lose the response of a create that succeeded; re-sending blindly
    would duplicate those records, so a repeat attempt sends only the records whose link
    marker is not found yet (the lookup is part of the same counted operation). Records
    answered UNABLE_TO_LOCK_ROW were not created: with a link field they are sent again that
    way (`tries` sends in all), the created ones found by their markers.
    """

    def __init__(self, records: list[dict[str, Any]], link: str | None, tries: int = 1):
        self.records, self.link, self.tries, self.attempts = records, link, tries, 0

    def send(self, sf: Salesforce) -> list[dict[str, Any]]:
        self.attempts += 1
        existing: dict[str, str] = {}
        if self.attempts > 1 and self.link:
            marks = [r[self.link] for r in self.records]
            soql = format_soql(
                "SELECT Id, {:literal} FROM Opportunity WHERE {:literal} IN {}",
                self.link,
                self.link,
                marks,
            )
            existing = {r[self.link]: r["Id"] for r in sf.query_all(soql)["records"]}
        pending = [r for r in self.records if not self.link or r[self.link] not in existing]
        body = {"allOrNone": False, "records": pending}
        answered = sf.restful("composite/sobjects", method="POST", json=body) if pending else []
        if self.attempts < self.tries and any(_locked(r) for r in answered or []):
            raise RecordsLocked()
        saved = iter(answered or [])
        return [
            {"id": existing[r[self.link]], "success": True, "errors": []}
            if self.link and r[self.link] in existing
            else next(saved)
            for r in self.records
        ]


def push_result(result: Mapping[str, Any], fallback_id: str | None) -> PushResult:
    if result.get("success"):
        return PushResult(str(result.get("id") or fallback_id), True)
    errors = result.get("errors") or [{}]
    first = errors[0]
    message = "; ".join(str(e.get("message")) for e in errors)
    return PushResult(result.get("id") or fallback_id, False, message, str(first.get("statusCode")))
