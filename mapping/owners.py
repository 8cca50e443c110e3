"""Owner emails as owners are matched across the CRMs: lower-cased, an email a CRM knows
someone by (`owners.aliases`) read as the email it stands for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_email", "canonical_owner", "local_part"]


def canonical_email(email: str, aliases: Mapping[str, str]) -> str:
    """`email` as owners are matched; `aliases`: lower-cased, as `Config.owner_aliases`. Reading
    an email twice changes nothing: an alias never names another alias (config/references.py)."""
    key = email.strip().lower()
    return aliases.get(key, key)


def canonical_owner(field: str, value: Any, aliases: Mapping[str, str]) -> Any:
    """A value of canonical deal field `field` with an owner email read as `canonical_email`
    gives it; any other field's value, and no owner, unchanged."""
    if field != "owner_email" or not isinstance(value, str) or not aliases:
        return value
    return canonical_email(value, aliases)


def local_part(email: str) -> str | None:
    """The part of `email` before its last `@`, lower-cased; None where there is no such part,
    no domain after it, or a space inside (no email: nothing to name in a one-line message)."""
    name, at, domain = email.strip().lower().rpartition("@")
    spaced = any(c.isspace() for c in name + domain)
    return name if at and name and domain and not spaced else None
