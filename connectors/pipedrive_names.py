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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

__all__ = ["HOLD", "IDS", "OrgNames"]

IDS = 100  # the most ids one `ids=` list request takes
HOLD = 5000  # the most deals held back until their organizations' names are read


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

    def named(self, pages: Iterable[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        """The deals of `pages`, each with its organization's name (None when it has none)."""
        held: list[dict[str, Any]] = []  # deals whose organization's name is not read yet
        wanted: dict[int, None] = {}  # their organization ids, in the order met
        for page in pages:
            ready: list[dict[str, Any]] = []
            for deal in page:
                org = deal.get("org_id")
                if isinstance(org, int) and org not in self._names:
                    wanted.setdefault(org, None)
                    held.append(deal)
                else:
                    ready.append(deal)
            while len(wanted) >= IDS or (wanted and len(held) > self._hold):
                batch = list(islice(wanted, IDS))
                self._learn(batch)
                for org in batch:
                    del wanted[org]
                ready += [d for d in held if d["org_id"] not in wanted]
                held = [d for d in held if d["org_id"] in wanted]
            yield from map(self._with_name, ready)
        ids = list(wanted)
        for at in range(0, len(ids), IDS):
            self._learn(ids[at : at + IDS])
        yield from map(self._with_name, held)

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
        name = org.get("name") if org is not None else None
        self._names[org_id] = name if isinstance(name, str) else None

    def _with_name(self, deal: dict[str, Any]) -> dict[str, Any]:
        org = deal.get("org_id")
        return {**deal, "org_name": self._names.get(org)} if isinstance(org, int) else deal
