"""One frozen credentials type per auth mode; repr never shows a secret, and `redact` takes
the secret values out of any text bound for a message, a log or the state store."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from urllib.parse import quote, quote_plus

__all__ = [
    "Credentials",
    "HubSpotToken",
    "PipedriveAccessToken",
    "PipedriveApiToken",
    "PluginSecrets",
    "SalesforceClientCredentials",
    "SalesforcePassword",
    "SalesforceSession",
    "redact",
    "secret_values",
]

_SECRET = {
    "session_id",
    "password",
    "security_token",
    "consumer_secret",
    "access_token",
    "api_token",
}


class _Redacted:
    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.name in _SECRET else getattr(self, f.name)!r}"
            for f in fields(self)  # type: ignore[arg-type]
        )
        return f"{type(self).__name__}({shown})"

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class SalesforceSession(_Redacted):
    session_id: str


@dataclass(frozen=True, repr=False)
class SalesforcePassword(_Redacted):
    username: str
    password: str
    security_token: str = ""
    domain: str = "login"


@dataclass(frozen=True, repr=False)
class SalesforceClientCredentials(_Redacted):
    consumer_key: str
    consumer_secret: str
    domain: str = "login"


@dataclass(frozen=True, repr=False)
class HubSpotToken(_Redacted):
    access_token: str


@dataclass(frozen=True, repr=False)
class PipedriveApiToken(_Redacted):
    api_token: str


@dataclass(frozen=True, repr=False)
class PipedriveAccessToken(_Redacted):
    access_token: str


@dataclass(frozen=True, repr=False)
class PluginSecrets:
    """A third-party connector kind's credentials, as its config names them (`credentials:
    {refresh_token: ${ZOHO_TOKEN}}`): every value is a secret, kept out of messages as the
    built-in kinds' are."""

    values: Mapping[str, str]

    def __repr__(self) -> str:
        return f"PluginSecrets({', '.join(f'{k}=***' for k in self.values)})"

    __str__ = __repr__


Credentials = (
    SalesforceSession
    | SalesforcePassword
    | SalesforceClientCredentials
    | HubSpotToken
    | PipedriveApiToken
    | PipedriveAccessToken
    | PluginSecrets
)


_MASK = "***"
_AUTHORIZATION = re.compile(
    r"\b(Bearer|Basic)\s+(?!\*\*\*)([A-Za-z0-9._~+/=!-]{4,})", re.IGNORECASE
)


def secret_values(credentials: Credentials) -> list[str]:
    """The secret strings inside, so log filters and tests can prove they never leak."""
    if isinstance(credentials, PluginSecrets):
        return [value for value in credentials.values.values() if value]
    return [
        getattr(credentials, f.name)
        for f in fields(credentials)
        if f.name in _SECRET and getattr(credentials, f.name)
    ]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (longest first, so one inside another goes whole) masked, as
    written and as a URL or a login form carries it (`p@ss word` is `p%40ss+word` there).
    Values under 4 characters are left: masking them would garble every message, not hide."""
    forms = {f for s in secrets for f in (s, quote(s, safe=""), quote_plus(s))}
    for secret in sorted({f for f in forms if len(f) >= 4}, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    # An Authorization header quoted back: Basic is `key:secret` in base64, no secret's form
    return _AUTHORIZATION.sub(_masked_authorization, text)


def _masked_authorization(found: re.Match[str]) -> str:
    """Bearer's value whatever it is; Basic's only when it is `user:password` in base64, so an
    ordinary message ("Basic validation failed") keeps its words."""
    scheme, value = found.group(1), found.group(2)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True)
        except ValueError:
            return found.group(0)
        if b":" not in decoded:
            return found.group(0)
    return f"{scheme} {_MASK}"
