"""Salesforce failures as the call policy takes them: simple-salesforce's exceptions, a failed
login, locked records and dropped connections classified into a Failure.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable

import requests
import urllib3.exceptions
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from connectors.http import Failure, FailureKind, connection_failed
from connectors.salesforce_auth import LoginFailed
from connectors.salesforce_writes import LOCKED, RecordsLocked

__all__ = ["EXPIRED", "classify", "missing_column"]

EXPIRED = "session expired: provide a fresh session id or use password/client-credentials auth"
_CONNECTION_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,
    http.client.IncompleteRead,
)


def _api_message(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in content)
    return f"HTTP {exc.status}"


def _codes(exc: SalesforceError) -> set[str]:
    content = exc.content
    if isinstance(content, list):
        return {str(e.get("errorCode")) for e in content if isinstance(e, dict)}
    return set()


def classify(
    exc: BaseException, lock_wait: float, retry_after: Callable[[], float | None]
) -> Failure:
    """`exc` as a Failure: `lock_wait` is the backoff before locked records are sent again,
    `retry_after` reads the last answer's Retry-After."""
    if isinstance(exc, RecordsLocked):
        message = f"{LOCKED}: records held by another write"
        return Failure(FailureKind.TRANSIENT, message, retry_after=lock_wait)
    if isinstance(exc, SalesforceExpiredSession):
        return Failure(FailureKind.EXPIRED_SESSION, EXPIRED, 401)
    if isinstance(exc, SalesforceRefusedRequest):
        if "REQUEST_LIMIT_EXCEEDED" not in _codes(exc):
            return Failure(FailureKind.PERMISSION, _api_message(exc), 403)
        if "Concurrent" in _api_message(exc):
            # Too many long-running requests at once (ConcurrentRequests,
            # ConcurrentPerOrgLongTxn): it passes, unlike the daily TotalRequests cap.
            return Failure(FailureKind.RATE_LIMITED, _api_message(exc), 403)
        return Failure(FailureKind.EXHAUSTED, _api_message(exc), 403)
    if isinstance(exc, SalesforceGeneralError) and exc.status == 429:
        return Failure(FailureKind.RATE_LIMITED, _api_message(exc), 429, retry_after())
    if isinstance(exc, SalesforceGeneralError) and exc.status >= 500:
        return Failure(FailureKind.TRANSIENT, _api_message(exc), exc.status, retry_after())
    if isinstance(exc, SalesforceError):
        return Failure(FailureKind.FATAL, _api_message(exc), exc.status)
    if isinstance(exc, LoginFailed):
        if exc.status == 429:
            return Failure(FailureKind.RATE_LIMITED, "login rate limited", 429, retry_after())
        if exc.status >= 500:
            return Failure(FailureKind.TRANSIENT, f"login failed: HTTP {exc.status}", exc.status)
        return Failure(
            FailureKind.AUTH, f"login failed: {exc.description} ({exc.error})", exc.status
        )
    if isinstance(exc, _CONNECTION_ERRORS):
        return connection_failed(exc)
    return Failure(FailureKind.FATAL, f"unexpected {type(exc).__name__}")


_NO_SUCH_COLUMN = re.compile(r"No such column '[^']*' on (?:entity|sobject of type) '?\w+'?")


def missing_column(message: str) -> str:
    """What an INVALID_FIELD query error says is missing, in one short line: Salesforce puts
    the query, a caret and "ERROR at Row:1:Column:12" before "No such column 'X' on entity
    'Opportunity'", and a long hint after it."""
    found = _NO_SUCH_COLUMN.search(message)
    return found.group(0) if found else " ".join(message.split()).partition(". ")[0]
