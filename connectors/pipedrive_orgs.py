"""Which Pipedrive organization a copy crmsync creates belongs to: the one of its account's name.

Names are compared as a person would: the whole name, ignoring case and surrounding
whitespace ("Acme Corp" is " acme corp ", not "Acme Corp." nor "Acme"). Exactly one such
organization: the copy goes there. None: one is made with that name (owned by the copy's
owner). Several: which one is meant cannot be told, so none is guessed: the copy goes to the
fallback (`create_org_id`), and the result says why.

One lookup per name and connector (a run): `Organizations` holds what each name came to,
so a migration of N copies of K accounts searches K times, not N.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import ApiError

__all__ = ["Filing", "Organizations", "filing_of", "org_key"]


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


class Organizations:
    """Account name -> Filing, each name resolved once per connector (a run): searched, and the
    organization made when none bears the name.

    `call(operation, request)` is the connector's paced and retried call; `search(name)` the
    organizations a whole-name search finds; `create(body)` the POST; `per_record` the statuses
    that refuse this organization only (its copies fail, the run goes on).
    """

    def __init__(
        self,
        call: Callable[[str, Callable[[], Any]], Mapping[str, Any]],
        search: Callable[[str], Iterable[Mapping[str, Any]]],
        create: Callable[[dict[str, Any]], Any],
        per_record: Collection[int],
    ) -> None:
        self._call, self._search, self._create = call, search, create
        self._per_record = per_record
        self._known: dict[str, Filing] = {}

    def filing(self, name: str, owner: Any) -> Filing:
        key = org_key(name)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = self._find_or_make(name.strip(), owner)
        return known

    def _find_or_make(self, name: str, owner: Any) -> Filing:
        """The organization named `name`, made (owned by `owner`, where given) when none is.

        A POST retried because its answer was lost first searches again: the lost attempt may
        have made the organization, and a second would split the account in two.
        """
        found = filing_of(name, self._search(name))
        if found is not None:
            return found
        body: dict[str, Any] = {"name": name}
        if owner is not None:
            body["owner_id"] = owner
        attempts = 0
        again: Filing | None = None

        def attempt() -> Any:
            nonlocal attempts, again
            attempts += 1
            if attempts > 1:
                again = filing_of(name, self._search(name))
                if again is not None:
                    return {"success": True, "data": {}}
            return self._create(body)

        try:
            made = self._call("create organization", attempt)
        except ApiError as exc:
            if exc.status not in self._per_record:
                raise
            why = f"organization {name!r} could not be made: {exc.message}"
            return Filing(None, error=why, code=str(exc.status))
        if again is not None:
            return again
        return Filing(int((made.get("data") or {})["id"]))
