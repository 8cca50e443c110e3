"""One frozen credentials type per auth mode; each kind accepts a union of its modes.

Which mode a `credentials:` mapping means is decided by the keys it holds (a callable
discriminator), so an error names the missing or unknown key of that mode instead of listing
failures for every mode. Secret values are SecretStr: reprs and dumps show `**********`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Discriminator, SecretStr, Tag, model_validator
from pydantic_core import PydanticCustomError

from config.base import FrozenMap, Section

__all__ = [
    "AUTH_MODES",
    "Credentials",
    "HubSpotCredentials",
    "PipedriveCredentials",
    "PluginCredentials",
    "SalesforceCredentials",
    "auth_mode_tag",
]


def _one_line(value: SecretStr) -> SecretStr:
    """A credential goes into an HTTP header or a login body: a control character (the `\r`
    a file with Windows line ends leaves in `$(cat token.txt)`) breaks the request, and the
    HTTP library's error quotes the header, secret included."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value.get_secret_value()):
        raise PydanticCustomError(
            "secret",
            "holds a line break, tab or other control character (a file with Windows line "
            "ends?); a credential is one line",
        )
    return value


Secret = Annotated[SecretStr, AfterValidator(_one_line)]

_HOST_LABELS = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


def _login_domain(value: str) -> str:
    """`https://{domain}.salesforce.com` is where the password goes: a `/`, `:`, `?` or `#`
    in it would send it to another host."""
    if not _HOST_LABELS.fullmatch(value):
        raise PydanticCustomError(
            "login_domain",
            "must be login, test or a My Domain prefix such as mycompany.my (letters, digits, "
            "'-' and '.'): it names the host the login goes to",
        )
    return value


LoginDomain = Annotated[str, AfterValidator(_login_domain)]


class _Credentials(Section):
    mode: ClassVar[str]

    def secret_fields(self) -> tuple[str, ...]:
        return tuple(name for name, value in self if isinstance(value, SecretStr))

    def secret(self, name: str) -> str:
        """The plain value of one credential, for a connector; KeyError when absent."""
        value = getattr(self, name, None)
        if value is None:
            raise KeyError(f"no credential {name!r} for auth mode {self.mode}")
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


class SalesforceSession(_Credentials):
    mode: ClassVar[str] = "session"
    session_id: Secret


class SalesforcePassword(_Credentials):
    mode: ClassVar[str] = "password"
    username: str
    password: Secret
    security_token: Secret
    domain: LoginDomain = "login"  # login | test | a My Domain prefix


class SalesforceClientCredentials(_Credentials):
    mode: ClassVar[str] = "client_credentials"
    consumer_key: Secret
    consumer_secret: Secret
    domain: LoginDomain = "login"


class HubSpotToken(_Credentials):
    mode: ClassVar[str] = "access_token"
    access_token: Secret


class PipedriveApiToken(_Credentials):
    mode: ClassVar[str] = "api_token"
    api_token: Secret


class PipedriveOAuth(_Credentials):
    mode: ClassVar[str] = "access_token"
    access_token: Secret


class PluginCredentials(_Credentials):
    """A third-party connector kind: any keys, every value treated as a secret."""

    mode: ClassVar[str] = "custom"
    values: FrozenMap[str, Secret]

    @model_validator(mode="before")
    @classmethod
    def _wrap(cls, data: Any) -> Any:
        return {"values": data} if isinstance(data, dict) else data

    def secret_fields(self) -> tuple[str, ...]:
        return tuple(self.values)

    def secret(self, name: str) -> str:
        if name not in self.values:
            raise KeyError(f"no credential {name!r}")
        return self.values[name].get_secret_value()


# kind -> ((the key that identifies a mode, tag, model), ...); tags start with "~" so that the
# error translator can tell them from real keys in a pydantic error location.
AUTH_MODES: dict[str, tuple[tuple[str, str, type[_Credentials]], ...]] = {
    "salesforce": (
        ("session_id", "~session", SalesforceSession),
        ("username", "~password", SalesforcePassword),
        ("consumer_key", "~client_credentials", SalesforceClientCredentials),
    ),
    "hubspot": (("access_token", "~hubspot_token", HubSpotToken),),
    "pipedrive": (
        ("api_token", "~api_token", PipedriveApiToken),
        ("access_token", "~pipedrive_oauth", PipedriveOAuth),
    ),
}


def auth_mode_tag(kind: str, value: Any) -> str | None:
    for _key, tag, model in AUTH_MODES[kind]:
        if isinstance(value, model):  # serialising a validated model
            return tag
    if isinstance(value, dict):
        for key, tag, _model in AUTH_MODES[kind]:
            if key in value:
                return tag
    return None


def expected_modes(kind: str) -> str:
    """`session_id | {username, password, security_token} | ...` for an error message."""
    shapes = []
    for _key, _tag, model in AUTH_MODES[kind]:
        required = [n for n, f in model.model_fields.items() if f.is_required()]
        shapes.append(required[0] if len(required) == 1 else "{" + ", ".join(required) + "}")
    return " | ".join(shapes)


def _union(kind: str) -> Any:
    members = tuple(Annotated[model, Tag(tag)] for _key, tag, model in AUTH_MODES[kind])
    return Annotated[
        members[0] if len(members) == 1 else _make_union(members),
        Discriminator(
            lambda value: auth_mode_tag(kind, value),
            custom_error_type="auth_mode",
            custom_error_message=f"credentials for kind {kind} must be one of: "
            + expected_modes(kind),
            custom_error_context={"kind": kind},
        ),
    ]


def _make_union(members: tuple[Any, ...]) -> Any:
    from typing import Union

    return Union[members]  # noqa: UP007 - built from a runtime tuple


SalesforceCredentials = _union("salesforce")
HubSpotCredentials = _union("hubspot")
PipedriveCredentials = _union("pipedrive")
Credentials = _Credentials
