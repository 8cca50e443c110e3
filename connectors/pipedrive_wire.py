"""Pipedrive plumbing under the connector: a keep-alive client, error classification, redaction.

pipedrive-python-lib calls bare `requests.request` (a new connection per call, no timeout) and
speaks API v1 only; `SessionClient` keeps the library's request building (its `_get`, `_post`,
`_patch`, `_delete` take full URLs, v2's too), response parsing and exception types but sends
through one `requests.Session` with a timeout. The API token goes in the `x-api-token` header
(API v2's documented way, which v1 takes as well), never in the URL the library would put it
in (`api_token=` query parameter), so no logged URL can carry it; `redact` still masks one
anywhere text could reach a message or log.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests
import urllib3.exceptions
from pipedrive import exceptions
from pipedrive.client import Client

from connectors.credentials import redact as redact_secrets
from connectors.http import Failure, FailureKind, connection_failed, header_int

__all__ = ["SessionClient", "classify", "from_rfc3339", "redact", "rfc3339"]

_TOKEN_IN_URL = re.compile(r"(api_token=)[^&\s'\"]+", re.IGNORECASE)
_CONNECTION_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    http.client.IncompleteRead,
)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """The api_token of any URL in `text` masked, and `secrets` too."""
    return redact_secrets(_TOKEN_IN_URL.sub(r"\1***", text), secrets)


def rfc3339(moment: datetime) -> str:
    """API v2's RFC 3339 UTC time, "2025-01-01T10:20:00Z" (floored to the second: an inclusive
    `updated_since` stays safe)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_rfc3339(text: str) -> datetime:
    """An aware UTC datetime from an API v2 time ("2024-01-01T00:00:00Z", any offset)."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"time without offset: {text[:40]!r}")
    return parsed.astimezone(UTC)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):  # a JSON number; repr of the float is the shortest exact one
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class SessionClient(Client):
    """The library's Client over one keep-alive Session with a timeout."""

    def __init__(
        self,
        domain: str,
        session: requests.Session,
        timeout: float,
        observe: Callable[[Mapping[str, str]], None],
    ) -> None:
        super().__init__(domain=domain)
        self._session, self._timeout, self._observe = session, timeout, observe

    def _request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        _headers: dict[str, str] = {}
        if self.access_token:
            _headers["Authorization"] = f"Bearer {self.access_token}"
        if self.api_token:
            _headers["x-api-token"] = self.api_token
        _headers.update(headers or {})
        _params = dict(params or {})
        if "json" in kwargs:  # requests cannot encode Decimal amounts
            kwargs["data"] = json.dumps(kwargs.pop("json"), default=_json_default)
            _headers["Content-Type"] = "application/json"
        response = self._session.request(
            method, url, headers=_headers, params=_params, timeout=self._timeout, **kwargs
        )
        self._observe(response.headers)
        return self._parse(response)

    def _parse(self, response: requests.Response) -> Any:
        content_type = response.headers.get("Content-Type", "")
        if not response.ok and "application/json" not in content_type:
            # The library would hand back the error page as a "successful" string.
            raise exceptions.UnknownError(f"HTTP {response.status_code}", response)
        parsed = super()._parse(response)
        if response.ok and not isinstance(parsed, dict):
            raise exceptions.UnknownError(f"unexpected {content_type or 'untyped'} body", response)
        return parsed


def _retry_after(response: Any) -> float | None:
    raw = (getattr(response, "headers", None) or {}).get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def rate_limit_info(headers: Mapping[str, str]) -> tuple[int | None, float | None]:
    remaining = header_int(headers, "x-ratelimit-remaining")
    reset = header_int(headers, "x-ratelimit-reset")
    return remaining, float(reset) if reset is not None else None


def classify(exc: BaseException, secrets: Sequence[str] = ()) -> Failure:
    """The library's exceptions and transport errors -> how CallPolicy treats them."""
    if isinstance(exc, exceptions.BaseError):
        response = exc.response
        status = getattr(response, "status_code", None)
        reason = redact(str(exc.args[0] if exc.args and exc.args[0] else f"HTTP {status}"), secrets)
        if status == 401:
            return Failure(
                FailureKind.AUTH,
                f"Pipedrive rejected the API token ({reason}); "
                "check the api_token / access_token in the config",
                401,
            )
        if status == 403:
            return Failure(FailureKind.PERMISSION, f"not allowed: {reason}", 403)
        if status == 429:
            if "daily" in reason.lower():
                return Failure(FailureKind.EXHAUSTED, reason, 429, _retry_after(response))
            return Failure(FailureKind.RATE_LIMITED, reason, 429, _retry_after(response))
        if status is not None and status >= 500:
            return Failure(FailureKind.TRANSIENT, reason, status)
        return Failure(FailureKind.FATAL, reason, status)
    if isinstance(exc, _CONNECTION_ERRORS):
        return connection_failed(exc)
    if isinstance(exc, ValueError) and "JSON" in type(exc).__name__ + str(exc):
        # A body cut short parses as broken JSON: the same as a dropped connection.
        return Failure(FailureKind.TRANSIENT, "truncated response body")
    return Failure(FailureKind.FATAL, redact(f"{type(exc).__name__}: {exc}", secrets))
