"""HubSpot wire details the connector needs, as pure functions: error classification,
rate-limit headers, per-record results of batch writes (200 / 201 / 207 multi-status), and
which ids of a batch read are not live deals; and the SDK's one side effect to undo.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import urllib3.exceptions

from connectors.base import UNCONFIRMED, NativeCreate, NativeUpdate, PushResult
from connectors.http import Failure, FailureKind, connection_failed, header_int

__all__ = [
    "Refusal",
    "classify",
    "create_results",
    "logging_left_alone",
    "may_have_landed",
    "next_after",
    "not_live",
    "query",
    "rate_limit_info",
    "refused_whole",
    "update_results",
]


def next_after(body: Mapping[str, Any]) -> str | None:
    """The `after` of a page's `paging.next` (lists, searches, batch reads): where the next
    page starts; None on the last page, whose `paging` HubSpot leaves out."""
    after = ((body.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after is not None else None


def query(params: Mapping[str, object]) -> list[tuple[str, str]]:
    """Query parameters as hubspot-api-client sends them: a list repeats its key
    (`properties=a&properties=b`), None is left out. A bool is written `true` / `false`, as
    HubSpot's references write them (the SDK's `str()` sent `True`)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            if item is not None:
                pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs


_TRANSIENT_ERRORS = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.MaxRetryError,
    http.client.IncompleteRead,
    ConnectionError,
    TimeoutError,
)


def _api_exception(exc: BaseException) -> bool:
    # Each SDK package (crm.deals, crm.owners, crm.pipelines) has its own ApiException class.
    return (
        type(exc).__name__.endswith("Exception") and hasattr(exc, "status") and hasattr(exc, "body")
    )


def _body(exc: BaseException) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    try:
        data = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


@contextmanager
def logging_left_alone() -> Iterator[None]:
    """Building the SDK's clients sets the shared `urllib3` logger to WARNING (each API's
    Configuration does): `crmsync --verbose` then logged no call to any CRM. Put it back."""
    shared = logging.getLogger("urllib3")
    level = shared.level
    try:
        yield
    finally:
        shared.setLevel(level)


def classify(exc: BaseException) -> Failure:
    """How CallPolicy should treat one exception of hubspot-api-client / urllib3."""
    if _api_exception(exc):
        status = int(getattr(exc, "status", 0) or 0)
        body = _body(exc)
        category = str(body.get("category") or body.get("policyName") or "")
        message = " ".join(str(body.get("message") or getattr(exc, "reason", "") or "").split())
        detail = f"HTTP {status}{' ' + category if category else ''}: {message or 'no message'}"
        headers = getattr(exc, "headers", None)
        if status == 429:
            if body.get("policyName") == "DAILY":
                return Failure(
                    FailureKind.EXHAUSTED,
                    f"daily API limit reached ({detail}); try again tomorrow",
                    status,
                )
            return Failure(FailureKind.RATE_LIMITED, detail, status, _retry_after(headers))
        if status >= 500:
            return Failure(FailureKind.TRANSIENT, detail, status, _retry_after(headers))
        if status == 401:
            return Failure(
                FailureKind.AUTH,
                f"HubSpot rejected the access token ({detail}); "
                "check the private-app access token in the config",
                status,
            )
        if status == 403:
            return Failure(
                FailureKind.PERMISSION,
                f"the access token lacks a scope ({detail}); grant crm.objects.deals.read/write "
                "and crm.objects.owners.read to the private app",
                status,
            )
        if status == 0:
            return Failure(FailureKind.FATAL, f"TLS or transport error: {message}", None)
        return Failure(FailureKind.FATAL, detail, status)
    if isinstance(exc, _TRANSIENT_ERRORS):
        return connection_failed(exc)
    return Failure(FailureKind.FATAL, f"{type(exc).__name__}: {exc}")


def may_have_landed(exc: BaseException) -> bool:
    """Whether a write that raised `exc` may have been carried out: not when HubSpot answered
    with a refusal (4xx, 429 included) or the connection never opened; yes for a 5xx (a
    gateway may answer after the write) and a connection lost with the request sent."""
    if _api_exception(exc):
        return int(getattr(exc, "status", 0) or 0) >= 500
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return not isinstance(
        exc, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def rate_limit_info(headers: Mapping[str, str]) -> tuple[int | None, float | None]:
    """(remaining in the window, window length in seconds) from HubSpot's headers."""
    remaining = header_int(headers, "X-HubSpot-RateLimit-Remaining")
    interval = header_int(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
    return remaining, (interval / 1000 if interval else None)


@dataclass(frozen=True)
class Refusal:
    """HubSpot's refusal of a write: its error category (the result's code), and the reason a
    user reads, its category and message. Alike for a deal refused in a 207 and a batch refused
    whole (a 400): the HTTP status says nothing more."""

    category: str | None
    reason: str

    @classmethod
    def of(cls, error: Mapping[str, Any]) -> Refusal:
        # HubSpot's error fields are all optional ("should all be treated as optional in any
        # error parsing", its error-responses reference).
        category = str(error.get("category") or "") or None
        message = " ".join(str(error.get("message") or "no message").split())
        return cls(category, f"{category}: {message}" if category else message)


def refused_whole(exc: BaseException) -> Refusal | None:
    """HubSpot's refusal of a whole batch write (a 400, nothing written); None for any other
    failure."""
    if not _api_exception(exc) or int(getattr(exc, "status", 0) or 0) != 400:
        return None
    return Refusal.of({"message": getattr(exc, "reason", None)} | _body(exc))


def _failures(errors: Iterable[Mapping[str, Any]], key: str) -> dict[str, Mapping[str, Any]]:
    """key value (an id or a write trace id) -> the error naming it."""
    failed: dict[str, Mapping[str, Any]] = {}
    for error in errors:
        context = error.get("context") or {}
        for value in context.get(key) or ():
            failed[str(value)] = error
    return failed


def update_results(updates: Sequence[NativeUpdate], body: Mapping[str, Any]) -> list[PushResult]:
    """One result per update, in input order: failed if an error names its id, ok if HubSpot
    returned the deal, else unconfirmed (failed). HubSpot returns every deal it updated; a 207
    has been seen to leave ids it did not update out of both lists, with no error at all."""
    failed = _failures(body.get("errors") or (), "ids")
    updated = {str(record.get("id")) for record in body.get("results") or ()}
    out = []
    for update in updates:
        if update.id in failed:
            refusal = Refusal.of(failed[update.id])
            out.append(PushResult(update.id, False, refusal.reason, refusal.category))
        elif update.id in updated:
            out.append(PushResult(update.id, True))
        else:
            message = "HubSpot did not confirm this update (not in its results nor its errors)"
            out.append(PushResult(update.id, False, message, UNCONFIRMED))
    return out


def create_results(
    creates: Sequence[NativeCreate], body: Mapping[str, Any], link_field: str | None
) -> list[PushResult]:
    """One result per create, in input order, matched by write trace id or link field."""
    created: dict[str, str] = {}
    for record in body.get("results") or ():
        trace = record.get("objectWriteTraceId")
        if trace is None and link_field:
            trace = (record.get("properties") or {}).get(link_field)
        if trace is not None:
            created[str(trace)] = str(record["id"])
    failed = _failures(body.get("errors") or (), "objectWriteTraceId")
    out = []
    for create in creates:
        link = create.link_id
        if link in created:
            out.append(PushResult(created[link], True, link_id=link))
        elif link in failed:
            refusal = Refusal.of(failed[link])
            out.append(PushResult(None, False, refusal.reason, refusal.category, link_id=link))
        else:
            message = "HubSpot did not confirm this create (its answer left it out, or was lost)"
            out.append(PushResult(None, False, message, UNCONFIRMED, link_id=link))
    return out


def not_live(ids: Sequence[str], body: Mapping[str, Any]) -> dict[str, str]:
    """id -> HubSpot's message, for each of `ids` a batch read did not return (archived, or
    never existed: the read does not tell the two apart)."""
    live = {str(record.get("id")) for record in body.get("results") or ()}
    failed = _failures(body.get("errors") or (), "ids")
    return {
        i: str(failed[i].get("message")) if i in failed else "HubSpot did not return this deal"
        for i in ids
        if i not in live
    }
