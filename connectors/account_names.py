"""Which of a CRM's accounts a copy's account name stands for, the same way in every CRM that
files deals under one (Pipedrive's organizations, Salesforce's Accounts).

Names are compared as a person would: the whole name, ignoring case and surrounding
whitespace ("Acme Corp" is " acme corp ", not "Acme Corp." nor "Acme"). Exactly one account
of the name is the copy's; several are never guessed between, and the copy says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from connectors.base import PushResult

__all__ = ["bearing", "name_key", "not_guessed", "with_note"]


def name_key(name: str) -> str:
    """What two account names must share to be the same name."""
    return name.strip().casefold()


def bearing(
    name: str, found: Iterable[Mapping[str, Any]], fields: tuple[str, str] = ("id", "name")
) -> list[Any]:
    """The ids (sorted, each once) of the records of `found` that bear `name` (any names: a
    search's or a query's matches may be looser than ours); `fields`: the records' id and
    name fields (Salesforce's are `Id`, `Name`)."""
    key, (id_field, name_field) = name_key(name), fields
    return sorted({r[id_field] for r in found if name_key(str(r.get(name_field) or "")) == key})


def not_guessed(what: str, name: str, ids: Sequence[Any], then: str) -> str:
    """Why a copy goes under none of the several `what` (accounts) named `name`: "2
    organizations are named 'Acme Corp' (12, 40): not guessed, <then>"."""
    listed = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
    return f"{len(ids)} {what} are named {name.strip()!r} ({listed}): not guessed, {then}"


def with_note(result: PushResult, note: str | None) -> PushResult:
    """A copy's result saying how its account was filed otherwise than by name (`note`): its
    note where it was created, beside the CRM's reason where it was refused."""
    if not note:
        return result
    if result.ok:
        return replace(result, note=note)
    return replace(result, error=f"{result.error} ({note})")
