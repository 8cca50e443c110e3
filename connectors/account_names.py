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
    "too_long",
    "with_match",
    "with_note",
]


@dataclass(frozen=True, slots=True)
class AccountMatch:
    """The account a copy goes under (`account_id`), or None and why: `note`, for a copy
    created ("no Account is named 'Acme': created without an Account"), and `tried`, for one
    the CRM refused, which was sent under none ("no Account: none is named 'Acme'").
    `found`: the ids of every account bearing the name, as the lookup found them (sorted);
    None where none was looked for (a name too long, accounts not readable): `note` says why.
    """

    account_id: str | None
    note: str | None = None
    tried: str | None = None
    found: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class AccountWords:
    """How a CRM's notes name its accounts: "Account", "Accounts", what a copy under none of
    its name gets ("created without an Account"), and the most characters its accounts' name
    field holds (`longest`): a longer name names none, and is never sent."""

    one: str
    many: str
    instead: str
    longest: int

    def none(self, why: str, tried: str | None = None) -> AccountMatch:
        """No account, because `why` ("Accounts are not readable ..."); `tried`: the reason
        as a refused copy's error words it, after "no Account: " (default `why`)."""
        return AccountMatch(None, f"{why}: {self.instead}", f"no {self.one}: {tried or why}")

    def fits(self, name: str) -> bool:
        """Whether an account can bear `name` (trimmed): a longer one is looked up never."""
        return len(name.strip()) <= self.longest


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


def not_guessed(what: str, name: str, ids: Sequence[Any], then: str | None = None) -> str:
    """Why a copy goes under none of the several `what` (accounts) named `name`: "2
    organizations are named 'Acme Corp' (12, 40): not guessed, <then>"."""
    listed = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
    said = f"{len(ids)} {what} are named {name.strip()!r} ({listed}): not guessed"
    return f"{said}, {then}" if then else said


def with_note(result: PushResult, note: str | None, tried: str | None = None) -> PushResult:
    """A copy's result saying how its account was filed otherwise than by name: its `note`
    where it was created; beside the CRM's reason where it was refused, `tried` (what it was
    sent with), else `note`."""
    said = note if result.ok else tried or note
    if not said:
        return result
    if result.ok:
        return replace(result, note=said)
    return replace(result, error=f"{result.error} ({said})")


def with_match(result: PushResult, match: AccountMatch | None) -> PushResult:
    """`with_note` of the copy's account `match` (None: it named none)."""
    return with_note(result, match.note, match.tried) if match is not None else result


def matched(name: str, ids: Sequence[Any], words: AccountWords) -> AccountMatch:
    """The account of the `ids` bearing `name`: the only one, else none and why ("no Account
    is named 'Acme Corp': created without an Account", or several `not_guessed`)."""
    found = tuple(str(i) for i in ids)
    if len(ids) == 1:
        return AccountMatch(str(ids[0]), found=found)
    named = repr(name.strip())
    if not ids:
        none = words.none(f"no {words.one} is named {named}", f"none is named {named}")
        return replace(none, found=found)
    several = not_guessed(words.many, name, ids, words.instead)
    tried = f"no {words.one}: {not_guessed(words.many, name, ids)}"
    return AccountMatch(None, several, tried, found)


def too_long(name: str, words: AccountWords) -> AccountMatch:
    """No account for a name longer than any account's can be (never looked up: one such
    name would fail the lookup of every other name sent with it)."""
    shown = repr(name.strip()[:40] + "...")
    over = f"can be named {shown} (over {words.longest} characters)"
    return words.none(f"no {words.one} {over}", f"none {over}")


class AccountLookup:
    """Account name -> AccountMatch, each name looked up once per connector (a run).

    `look_up(names)` asks the CRM about names (distinct, trimmed) in as few calls as it can,
    answering name_key -> AccountMatch for each. Names `expect`ed before the first `matches`
    (or `resolve`) are looked up with it, together.
    """

    def __init__(
        self, look_up: Callable[[list[str]], Mapping[str, AccountMatch]], words: AccountWords
    ) -> None:
        self._look_up, self._words = look_up, words
        self._known: dict[str, AccountMatch] = {}
        self._expected: dict[str, str] = {}  # name_key -> name

    def expect(self, names: Iterable[str]) -> None:
        """The account names the run will create copies under, looked up together (one
        longer than any account's can be, never: `too_long`)."""
        for name in names:
            key = name_key(name)
            if not key or key in self._known:
                continue
            if self._words.fits(name):
                self._expected.setdefault(key, name.strip())
            else:
                self._known[key] = too_long(name, self._words)

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
