"""Which Pipedrive organization a copy crmsync creates belongs to: the one of its account's name.

Names are compared as in every CRM that files copies by account
(connectors/account_names.py). Exactly one such organization: the copy goes there. None: one
is made with that name (owned by the copy's owner). Several: which one is meant cannot be
told, so none is guessed: the copy goes to the fallback (`create_org_id`), and the result
says why.

One lookup per name and connector (a run): `Organizations` holds what each name came to,
so a migration of N copies of K accounts looks up K names, not N. How, it decides per run from
the K names the run expects (`expect`):
- K <= `search_max` (default 10): a search per name. Ten searches fit in one window of
  Pipedrive's search limit (10 per rolling 2 s) and cost at most 200 tokens (20 each).
- more: one listing of every organization (`GET /api/v2/organizations`, 500 a page, 10 tokens
  a page), every name resolved from it by the same rules. Past ten, each search waits 0.2 s
  for the search limit and costs what two list pages (1,000 organizations) do. v2 says no total
  (only `next_cursor`), so the listing stops after K pages: it never costs more calls than the
  K searches, nor more than half their tokens. A company with more than 500 x K
  organizations gets the searches after all (the K pages read are lost: at most 1.5 times
  the tokens, twice the calls).
Organizations made during the run join the listing's index.

A full read of the deals may have listed every organization already, to name its deals
(connectors/pipedrive_names.py): read to its end, that listing (`listed`) serves the run's
lookups instead of a second one, if they begin within `reuse_for` (default 10 minutes) of
it. Older, it is dropped and the run lists (or searches) afresh, as before: a person may have
made or deleted organizations meanwhile (a run that waited at the confirmation question).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.account_names import (
    AccountMatch,
    AccountWords,
    bearing,
    name_key,
    not_guessed,
    too_long,
)
from connectors.errors import ApiError

__all__ = [
    "REUSE_FOR",
    "SEARCH_MAX",
    "Filing",
    "Organizations",
    "filed_under",
    "filing_of",
]

# A run of at most this many account names searches each; more are resolved from a listing.
SEARCH_MAX = 10
# Seconds a listing the run read for another purpose serves its lookups: a full reconcile's
# pull, analysis and apply begin within it; a person who let the confirmation question wait
# longer gets a fresh listing.
REUSE_FOR = 600.0
# Pipedrive's text fields hold 255 characters (a longer value takes a "Long Text" custom
# field), an organization's name among them: a longer account name is no organization's, and
# its search (a URL past the limit) failed the lookup of the run's every copy, every night.
WORDS = AccountWords("organization", "organizations", "filed under create_org_id", 255)


@dataclass(frozen=True, slots=True)
class Filing:
    """Where the copies of one account go: `org_id` (None: the fallback, for `note`'s reason),
    or, when its organization could not be made, `error` and `code` (each copy fails so).
    `found`: the organizations bearing the name as found (several: none is guessed)."""

    org_id: int | None
    note: str | None = None
    error: str | None = None
    code: str | None = None
    found: tuple[int, ...] = ()


def filed_under(orgs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The organizations of a listing a copy may be filed under, as lookups keep them (id and
    name): a deleted one is none (a search finds none)."""
    return [{"id": o["id"], "name": o.get("name")} for o in orgs if o.get("is_deleted") is not True]


def filing_of(name: str, found: Iterable[Mapping[str, Any]]) -> Filing | None:
    """The filing of account `name` from the organizations a search `found` (any names: a
    search's matches are looser than ours); None when no organization bears the name."""
    ids = sorted({int(i) for i in bearing(name, found)})
    if not ids:
        return None
    if len(ids) == 1:
        return Filing(ids[0], found=(ids[0],))
    why = not_guessed("organizations", name, ids, "filed under create_org_id")
    return Filing(None, note=why, found=tuple(ids))


class Organizations:
    """Account name -> Filing, each name resolved once per connector (a run): searched or
    looked up in a listing, and the organization made when none bears the name.

    `call(operation, request)` is the connector's paced and retried call; `search(name)` the
    organizations a whole-name search finds; `listing(pages)` every organization if they fit
    in `pages` list pages, else None; `create(body)` the POST; `per_record` the statuses that
    refuse this organization only (its copies fail, the run goes on); `search_max` the most
    names a run searches one by one; `reuse_for` how long (seconds of `clock`) a listing
    the run read for another purpose (`listed`) serves its lookups.
    """

    def __init__(
        self,
        call: Callable[[str, Callable[[], Any]], Mapping[str, Any]],
        search: Callable[[str], Iterable[Mapping[str, Any]]],
        listing: Callable[[int], list[dict[str, Any]] | None],
        create: Callable[[dict[str, Any]], Any],
        per_record: Collection[int],
        search_max: int = SEARCH_MAX,
        reuse_for: float = REUSE_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._call, self._search, self._create = call, search, create
        self._listing, self._search_max = listing, search_max
        self._per_record = per_record
        self._reuse_for, self._clock = reuse_for, clock
        self._known: dict[str, Filing] = {}
        self._absent: set[str] = set()  # name_keys `resolve` found no organization of
        self._index: dict[str, list[Mapping[str, Any]]] | None = None  # name_key -> orgs
        self._list_pages = 0  # the most pages a listing may read; 0: search
        # every organization `filed_under` (name_key -> orgs), as listed at a `clock` time
        self._listed: tuple[float, dict[str, list[Mapping[str, Any]]]] | None = None

    def listed(self, orgs: Iterable[Mapping[str, Any]], began: float) -> None:
        """Every organization, as a listing read to its end for another purpose (a full
        read's, naming its deals), which began at `began` (of `clock`): the run's lookups that
        would list them use it instead, if they begin within `reuse_for` of its first page."""
        if self._index is None:
            self._listed = (began, _by_name(orgs))

    def clock(self) -> float:
        """The time by which a listing's age is told."""
        return self._clock()

    def expect(self, names: Iterable[str]) -> None:
        """The account names the run will file copies under: more than `search_max` not
        resolved yet are looked up in one listing (read at the first lookup), not searched."""
        fresh = {name_key(n) for n in names if n.strip() and WORDS.fits(n)} - self._known.keys()
        if self._index is None and len(fresh) > self._search_max:
            self._list_pages = len(fresh)

    def resolve(self, names: Iterable[str]) -> None:
        """`expect` `names`, and find the organizations of each now (in the listing, or a
        search each): an apply does so before it journals any create as sent, so a lookup
        that fails has sent nothing. A name no organization bears is made at its first
        `filing`, as a write of the run's."""
        named = [n.strip() for n in names if n.strip() and WORDS.fits(n)]
        self.expect(named)
        for name in named:
            key = name_key(name)
            if key not in self._known and key not in self._absent:
                found = self._found(name)
                if found is None:
                    self._absent.add(key)
                else:
                    self._known[key] = found

    def found(self, names: Sequence[str]) -> dict[str, AccountMatch]:
        """name_key -> the organizations bearing each of `names` (`resolve`d: none is made;
        names resolved already cost no call): `found` empty for one made at apply."""
        self.resolve(names)
        out = {}
        for name in names:
            key = name_key(name)
            if not WORDS.fits(name):
                out[key] = too_long(name, WORDS)
            elif key in self._absent:
                out[key] = AccountMatch(None, found=())
            elif (known := self._known.get(key)) is not None:
                ids = known.found or ((known.org_id,) if known.org_id is not None else ())
                org = str(known.org_id) if known.org_id is not None else None
                out[key] = AccountMatch(org, known.note, found=tuple(str(i) for i in ids))
        return out

    def filing(self, name: str, owner: Any) -> Filing:
        key = name_key(name)
        known = self._known.get(key)
        if known is None and not WORDS.fits(name):
            known = self._known[key] = Filing(None, note=too_long(name, WORDS).note)
        if known is None:
            known = self._known[key] = self._find_or_make(name.strip(), owner)
            if self._index is not None and known.org_id is not None:  # made: now listed too
                self._index.setdefault(key, [{"id": known.org_id, "name": name.strip()}])
        return known

    def _found(self, name: str) -> Filing | None:
        """`filing_of` the organizations the listing holds of `name`, else a search finds."""
        index = self._indexed()
        if index is None:
            return filing_of(name, self._search(name))
        return filing_of(name, index.get(name_key(name), ()))

    def _indexed(self) -> dict[str, list[Mapping[str, Any]]] | None:
        """The listing by name, read once when `expect` asked for one; None: search."""
        if self._index is None and self._list_pages:
            pages, self._list_pages = self._list_pages, 0  # a cut listing is not read again
            read, self._listed = self._listed, None
            if read is not None and self._clock() - read[0] <= self._reuse_for:
                self._index = read[1]
            else:
                listed = self._listing(pages)
                self._index = _by_name(listed) if listed is not None else None
        return self._index

    def _find_or_make(self, name: str, owner: Any) -> Filing:
        """The organization named `name`, made (owned by `owner`, where given) when none is.

        A POST retried because its answer was lost first searches again: the lost attempt may
        have made the organization, and a second would split the account in two.
        """
        found = None if name_key(name) in self._absent else self._found(name)
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


def _by_name(orgs: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The organizations a copy may be filed under, by `name_key` of their name."""
    index: dict[str, list[Mapping[str, Any]]] = {}
    for org in filed_under(orgs):
        index.setdefault(name_key(str(org.get("name") or "")), []).append(org)
    return index
