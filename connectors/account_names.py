"""Which of a CRM's accounts a copy's account name stands for, the same way in every CRM that
files deals under one (Pipedrive's organizations, Salesforce's Accounts, HubSpot's companies).

Names are compared as a person would: the whole name, ignoring case and surrounding
whitespace ("Acme Corp" is " acme corp ", not "Acme Corp." nor "Acme"). Exactly one account
of the name is the copy's; several are never guessed between, and the copy says which.
A CRM whose accounts crmsync never makes (Salesforce, HubSpot) looks the names of a run up
once each (`AccountLookup`), and a copy under none of its name says why (`matched`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from connectors.base import PushResult

__all__ = [
    "AccountLookup",
    "AccountMatch",
    "AccountWords",
    "bearing",
    "matched",
    "name_key",
    "not_guessed",
    "with_note",
]


@dataclass(frozen=True, slots=True)
class AccountMatch:
    """The account a copy goes under (`account_id`), or None and why (`note`)."""

    account_id: str | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class AccountWords:
    """How a CRM's notes name its accounts: "Account", "Accounts", and what a copy under none
    of its name gets ("created without an Account")."""

    one: str
    many: str
    instead: str


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


def matched(name: str, ids: Sequence[Any], words: AccountWords) -> AccountMatch:
    """The account of the `ids` bearing `name`: the only one, else none and why ("no Account
    is named 'Acme Corp': created without an Account", or several `not_guessed`)."""
    if len(ids) == 1:
        return AccountMatch(str(ids[0]))
    if not ids:
        return AccountMatch(None, f"no {words.one} is named {name.strip()!r}: {words.instead}")
    return AccountMatch(None, not_guessed(words.many, name, ids, words.instead))


class AccountLookup:
    """Account name -> AccountMatch, each name looked up once per connector (a run).

    `look_up(names)` asks the CRM about names (distinct, trimmed) in as few calls as it can,
    answering name_key -> AccountMatch for each. Names `expect`ed before the first `matches`
    (or `resolve`) are looked up with it, together.
    """

    def __init__(self, look_up: Callable[[list[str]], Mapping[str, AccountMatch]]) -> None:
        self._look_up = look_up
        self._known: dict[str, AccountMatch] = {}
        self._expected: dict[str, str] = {}  # name_key -> name

    def expect(self, names: Iterable[str]) -> None:
        """The account names the run will create copies under, looked up together."""
        for name in names:
            key = name_key(name)
            if key and key not in self._known:
                self._expected.setdefault(key, name.strip())

    def resolve(self, names: Iterable[str]) -> None:
        """Look `names` (and every name expected) up now: an apply does so before it journals
        any create as sent, so a lookup that fails has sent nothing, and says so."""
        self.matches(list(names))

    def matches(self, names: Sequence[str]) -> dict[str, AccountMatch]:
        """name_key -> AccountMatch of each of `names`, those not known yet (and every name
        expected) looked up first."""
        self.expect(names)
        pending, self._expected = list(self._expected.values()), {}
        if pending:
            self._known.update(self._look_up(pending))
        return {k: self._known[k] for n in names if (k := name_key(n)) in self._known}
