"""The names of the organizations Pipedrive deals name, read at the edge for the pure mapping.

An API v2 deal names its organization by id only (`org_id`; v1 carried `{value, name}`), and
the account name a deal shows is its organization's. `OrgNames` sets it on each deal as
`org_name` (crmsync's key, not Pipedrive's; mapping.pipedrive reads it), reading each
organization once per connector (a run), 100 ids a call (`GET /api/v2/organizations?ids=`):
a deal whose organization is not read yet waits until 100 such ids are gathered (or its list
ends), so that every call but the last is a full one. Past `hold` deals waiting, the ids
gathered so far are read at once: memory stays bounded. An organization the list leaves out
(deleted, or not visible: the v2 spec's `ids`) is read by id (`GET /api/v2/organizations/{id}`,
one call): a deleted organization still names its deals' account, as v1's deal carried it.

A full read may list the organizations instead (`GET /api/v2/organizations`, by id, 500 a page
for the same 10 tokens as an `ids=` call of 100): cheaper where the deals name most of them,
dearer where the account holds far more organizations than its deals name. So the listing is
read while it pays for itself: a page more only while the pages read are at most SPARE more
than the `ids=` calls the organizations it gave to deals so far would have cost. Naming the
deals of a full read so costs at most SPARE + 1 calls more than the `ids=` path would (the
listing's misses go that path); a listed organization's name is kept until a deal names it
or the read ends: at most 500 x (SPARE + hits / 100) names. An organization the listing passed
without giving (deleted, not visible) is read by id at once: an `ids=` list leaves it out too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

__all__ = ["HOLD", "IDS", "SPARE", "OrgNames"]

IDS = 100  # the most ids one `ids=` list request takes
HOLD = 5000  # the most deals held back until their organizations' names are read
SPARE = 2  # listing pages a full read may read beyond what the names they gave paid for


OrgPages = Iterable[Sequence[Mapping[str, Any]]]


class OrgNames:
    """Organization id -> name, read as deals need them. `read(ids)`: the organizations of at
    most IDS ids, one call (those not listed, deleted or not visible, are left out);
    `read_one(id)`: one organization, or None where it is not found."""

    def __init__(
        self,
        read: Callable[[Sequence[int]], Iterable[Mapping[str, Any]]],
        read_one: Callable[[int], Mapping[str, Any] | None],
        hold: int = HOLD,
    ) -> None:
        self._read, self._read_one, self._hold = read, read_one, hold
        self._names: dict[int, str | None] = {}

    def named(
        self, pages: Iterable[list[dict[str, Any]]], listing: OrgPages | None = None
    ) -> Iterator[dict[str, Any]]:
        """The deals of `pages`, each with its organization's name (None when it has none).
        `listing`: the organizations' list pages in id order (a full read's), each read as
        late as a name needs it and only while the listing pays for itself."""
        source = _Listing(listing, self._names) if listing is not None else None
        held: list[dict[str, Any]] = []  # deals whose organization's name is not read yet
        wanted: dict[int, None] = {}  # their organization ids, in the order met
        for page in pages:
            ready: list[dict[str, Any]] = []
            for deal in page:
                org = deal.get("org_id")
                if isinstance(org, int) and not self._known(org, source):
                    wanted.setdefault(org, None)
                    held.append(deal)
                else:
                    ready.append(deal)
            while len(wanted) >= IDS or (wanted and len(held) > self._hold):
                self._settle(wanted, source)
                ready += [d for d in held if d["org_id"] not in wanted]
                held = [d for d in held if d["org_id"] in wanted]
            yield from map(self._with_name, ready)
        while wanted:
            self._settle(wanted, source)
        yield from map(self._with_name, held)

    def _known(self, org_id: int, listing: _Listing | None) -> bool:
        """Whether `org_id`'s name is known, taking it from `listing` where it can: one the
        listing gave, or, read by id now, one it passed without giving."""
        if org_id in self._names:
            return True
        if listing is None:
            return False
        if org_id in listing.names:
            self._names[org_id] = listing.take(org_id)
            return True
        if org_id <= listing.passed:
            self._know(org_id, self._read_one(org_id))
            return True
        return False

    def _settle(self, wanted: dict[int, None], listing: _Listing | None) -> None:
        """Learn some of `wanted`'s names (and drop them from it): a listing page where one
        may be read, else one `ids=` call of the first IDS."""
        if listing is not None and listing.more():
            listing.read_page()
            settled = [org for org in wanted if self._known(org, listing)]
        else:
            settled = list(islice(wanted, IDS))
            self._learn(settled)
        for org in settled:
            del wanted[org]

    def _learn(self, ids: Sequence[int]) -> None:
        """The names of `ids` (at most IDS); one not listed is read by id, and one not found
        then is known as nameless, not asked for again."""
        if not ids:
            return
        for org in self._read(ids):
            self._know(int(org["id"]), org)
        for org_id in ids:
            if org_id not in self._names:
                self._know(org_id, self._read_one(org_id))

    def _know(self, org_id: int, org: Mapping[str, Any] | None) -> None:
        self._names[org_id] = _name(org)

    def _with_name(self, deal: dict[str, Any]) -> dict[str, Any]:
        org = deal.get("org_id")
        return {**deal, "org_name": self._names.get(org)} if isinstance(org, int) else deal


class _Listing:
    """One full read's organization listing (pages by id), read a page at a time while the
    pages read stay within SPARE of the `ids=` calls its hits (names it gave to deals) would
    have cost."""

    def __init__(self, pages: OrgPages, known: Mapping[int, str | None]) -> None:
        self._pages, self._known = iter(pages), known
        self.names: dict[int, str | None] = {}  # listed, named by no deal yet
        self.passed = 0  # the highest id listed: one below it not listed is not listable
        self._ended = False
        self._read = 0  # pages
        self._hits = 0

    def more(self) -> bool:
        return not self._ended and self._read < self._hits // IDS + SPARE

    def read_page(self) -> None:
        page = next(self._pages, None)
        if page is None:
            self._ended = True
            return
        self._read += 1
        for org in page:
            org_id = int(org["id"])
            self.passed = max(self.passed, org_id)
            if org_id not in self._known:
                self.names[org_id] = _name(org)

    def take(self, org_id: int) -> str | None:
        """The name of a listed organization a deal names (a hit), forgotten here."""
        self._hits += 1
        return self.names.pop(org_id)


def _name(org: Mapping[str, Any] | None) -> str | None:
    name = org.get("name") if org is not None else None
    return name if isinstance(name, str) else None
