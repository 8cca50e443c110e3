"""One frozen credentials type per auth mode; repr never shows a secret."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = [
    "Credentials",
    "HubSpotToken",
    "PipedriveAccessToken",
    "PipedriveApiToken",
    "SalesforceClientCredentials",
    "SalesforcePassword",
    "SalesforceSession",
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


Credentials = (
    SalesforceSession
    | SalesforcePassword
    | SalesforceClientCredentials
    | HubSpotToken
    | PipedriveApiToken
    | PipedriveAccessToken
)


def secret_values(credentials: Credentials) -> list[str]:
    """The secret strings inside, so log filters and tests can prove they never leak."""
    return [
        getattr(credentials, f.name)
        for f in fields(credentials)
        if f.name in _SECRET and getattr(credentials, f.name)
    ]
