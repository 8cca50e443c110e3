"""The deal fields a config names for matching (`external_ids`, `link_field`), and the refusal
of those the CRM account does not define.

HubSpot leaves an undefined property out of every read without a word, and Pipedrive's custom
fields are keyed per account (a key copied from another account names nothing here): either
way the ids matching relies on would be lost silently, and `push.create_missing` would copy
those deals again. Salesforce needs no refusal of its own: an unknown field fails the query
that selects it (INVALID_FIELD).
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from connectors.base import ConnectorSettings
from connectors.errors import PermissionDenied

__all__ = ["named_fields", "require_defined"]


def named_fields(settings: ConnectorSettings) -> list[str]:
    """The native deal fields the config names: the external-id fields, then the link field."""
    link = (settings.link_field,) if settings.link_field else ()
    return list(dict.fromkeys((*settings.extra_fields, *link)))


def _config_keys(settings: ConnectorSettings, fields: Sequence[str]) -> str:
    """Which config keys name `fields`: external_ids, link_field or both."""
    keys = ["external_ids"] if set(fields) & set(settings.extra_fields) else []
    keys += ["link_field"] if settings.link_field in fields else []
    return ", ".join(keys)


def require_defined(
    settings: ConnectorSettings,
    operation: str,
    defined: Container[str],
    noun: str,
    remedy: str,
) -> None:
    """Refuse, in one line naming each, the fields the config names that are not `defined`
    (`noun`: what the CRM calls a deal field; `remedy`: where to create one)."""
    missing = [name for name in named_fields(settings) if name not in defined]
    if missing:
        raise PermissionDenied(
            settings.instance,
            operation,
            f"no deal {noun} {', '.join(missing)}: a {noun} the config names "
            f"({_config_keys(settings, missing)}); {remedy}, or correct the config",
            None,
        )
