"""Which Pipedrive organization a copy crmsync creates belongs to: the one of its account's name.

Names are compared as a person would: the whole name, ignoring case and surrounding
whitespace ("Acme Corp" is " acme corp ", not "Acme Corp." nor "Acme"). Exactly one such
organization: the copy goes there. None: one is made with that name (owned by the copy's
owner). Several: which one is meant cannot be told, so none is guessed: the copy goes to the
fallback (`create_org_id`), and the result says why.

One lookup per name and connector (a run): `OrganizationCache` holds what each name came to,
so a migration of N copies of K accounts searches K times, not N.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Filing", "OrganizationCache", "filing_of", "org_key"]


def org_key(name: str) -> str:
    """What two organization names must share to be the same name."""
    return name.strip().casefold()


@dataclass(frozen=True, slots=True)
class Filing:
    """Where the copies of one account go: `org_id` (None: the fallback, for `note`'s reason),
    or, when its organization could not be made, `error` and `code` (each copy fails so)."""

    org_id: int | None
    note: str | None = None
    error: str | None = None
    code: str | None = None


def filing_of(name: str, found: Iterable[Mapping[str, Any]]) -> Filing | None:
    """The filing of account `name` from the organizations a search `found` (any names: a
    search's matches are looser than ours); None when no organization bears the name."""
    key = org_key(name)
    ids = sorted({int(o["id"]) for o in found if org_key(str(o.get("name") or "")) == key})
    if not ids:
        return None
    if len(ids) == 1:
        return Filing(ids[0])
    listed = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
    return Filing(
        None,
        note=f"{len(ids)} organizations are named {name.strip()!r} ({listed}): not guessed, "
        "filed under create_org_id",
    )


class OrganizationCache:
    """Account name -> Filing, each name resolved once: `resolve(name, owner)` searches, and
    makes the organization when none bears the name."""

    def __init__(self, resolve: Callable[[str, Any], Filing]) -> None:
        self._resolve = resolve
        self._known: dict[str, Filing] = {}

    def filing(self, name: str, owner: Any) -> Filing:
        key = org_key(name)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = self._resolve(name.strip(), owner)
        return known

    def __len__(self) -> int:
        return len(self._known)
