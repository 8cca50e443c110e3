"""Salesforce transport and logins: a TLS-pinned requests session and the OAuth token call.

simple-salesforce builds its login URLs from `https://{domain}.salesforce.com`, which would
bypass a base-URL override (the sandbox), so we call the token endpoint ourselves with the
same session and hand the library the resulting instance URL and session id.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from connectors.credentials import (
    Credentials,
    SalesforceClientCredentials,
    SalesforcePassword,
    SalesforceSession,
)

__all__ = ["Login", "LoginFailed", "PinnedSession", "can_login", "login", "login_base"]


class LoginFailed(Exception):
    """The token endpoint refused the credentials (or failed); never carries a secret."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.status, self.error, self.description = status, error, description


@dataclass(frozen=True, repr=False)
class Login:
    instance_url: str
    session_id: str

    def __repr__(self) -> str:
        return f"Login(instance_url={self.instance_url!r}, session_id=***)"


class PinnedSession(requests.Session):
    """One keep-alive session per connector, verifying TLS against `ca_file` when given.

    requests lets REQUESTS_CA_BUNDLE override `Session.verify` unless `verify` is passed per
    request, so it is passed per request. The headers of the latest response (per thread) are
    kept for Retry-After and Sforce-Limit-Info, which the library's exceptions do not carry.
    """

    def __init__(self, ca_file: Path | None, timeout: float):
        super().__init__()
        self._ca_file = str(ca_file) if ca_file else None
        self._timeout = timeout
        self._local = threading.local()
        if self._ca_file:
            self.verify = self._ca_file

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if self._ca_file:
            kwargs.setdefault("verify", self._ca_file)
        kwargs.setdefault("timeout", self._timeout)
        self._local.headers = {}
        response = super().request(method, url, *args, **kwargs)
        self._local.headers = dict(response.headers)
        return response

    @property
    def last_headers(self) -> Mapping[str, str]:
        headers: Mapping[str, str] = getattr(self._local, "headers", {})
        return headers


def can_login(credentials: Credentials) -> bool:
    return isinstance(credentials, (SalesforcePassword, SalesforceClientCredentials))


def login_base(credentials: Credentials, base_url: str | None) -> str:
    domain = getattr(credentials, "domain", "login")
    return (base_url or f"https://{domain}.salesforce.com").rstrip("/")


def login(
    session: requests.Session,
    credentials: Credentials,
    base_url: str | None,
    options: Mapping[str, Any],
    instance_url: str | None = None,
) -> Login:
    """A fresh session via POST /services/oauth2/token (password or client-credentials); a
    session id is used as it is, against base_url or else the org's instance_url."""
    if isinstance(credentials, SalesforceSession):
        host = base_url or instance_url
        if not host:
            raise LoginFailed(0, "config", "session-id auth needs instance_url (the org's URL)")
        return Login(host.rstrip("/"), credentials.session_id)
    data: dict[str, str]
    auth: tuple[str, str] | None = None
    if isinstance(credentials, SalesforcePassword):
        data = {
            "grant_type": "password",
            "username": credentials.username,
            "password": credentials.password + credentials.security_token,
        }
        for key in ("client_id", "client_secret"):
            if options.get(key):
                data[key] = str(options[key])
    elif isinstance(credentials, SalesforceClientCredentials):
        data = {"grant_type": "client_credentials"}
        auth = (credentials.consumer_key, credentials.consumer_secret)
    else:
        raise LoginFailed(0, "config", f"{type(credentials).__name__} is not a Salesforce login")
    url = login_base(credentials, base_url) + "/services/oauth2/token"
    response = session.post(url, data=data, auth=auth)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = str(body.get("error", "login_failed")) if isinstance(body, dict) else "login_failed"
        description = (
            str(body.get("error_description", f"HTTP {response.status_code}"))
            if isinstance(body, dict)
            else f"HTTP {response.status_code}"
        )
        raise LoginFailed(response.status_code, error, description)
    return Login(
        str(body.get("instance_url") or login_base(credentials, base_url)), body["access_token"]
    )
