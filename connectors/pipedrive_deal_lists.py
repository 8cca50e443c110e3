"""Which Pipedrive API v2 deal lists a read takes, and how it gives each deal once.

`GET /api/v2/deals` lists the deals not archived and `GET /api/v2/deals/archived` the archived
ones; both page by cursor, sorted by id, so a deal that stays in its list is never skipped (the
cursor names the last id read, and one that leaves moves no other). A deal that moves between
the two mid-read (archived, unarchived) may land in a list read past it already: a full read
reads both again `updated_since` it began. `pages(operation, path, params)` is the
connector's lazy page generator (one call a page).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from connectors.pipedrive_wire import rfc3339

__all__ = ["ALL", "DEAL_QUERY", "LISTS", "changed_deals", "every_deal", "is_deleted"]

Pages = Callable[[str, str, Mapping[str, Any]], Iterator[list[dict[str, Any]]]]

# (path, operation) of the two lists every read takes.
LISTS = (("deals", "list deals"), ("deals/archived", "list archived deals"))
ALL = "open,won,lost,deleted"  # `status`: every deal, the deleted ones (30 days) included
# first_won_time is left out of v2 deals unless asked for; mapping.pipedrive reads it.
DEAL_QUERY = {"sort_by": "id", "sort_direction": "asc", "include_fields": "first_won_time"}
# How far this machine's clock may be ahead of Pipedrive's: a full read's catch-up starts that
# much before the read began, by this machine's clock.
READ_CLOCK_SKEW = timedelta(minutes=10)


def every_deal(pages: Pages, began: datetime) -> Iterator[list[dict[str, Any]]]:
    """Every deal not deleted, a page at a time, of a read that began at `began`. The
    archived ones are read too: a full read that missed them would report each as deleted,
    and push.propagate_deletes would delete its copies.

    A deal that moved between the lists mid-read is given by both lists `updated_since` the
    read began (one call each, mostly), taking it that moving changes its `update_time` (the
    docs do not say). Each deal is given once. One that moves again while that catch-up runs
    is read by the next pull, which reads from before this one began; one missed all the same
    is not deleted elsewhere for it: a delete's re-read (`read_deals`) asks for it by id.
    """
    read: list[array[int]] = []  # the ids each list gave, ascending (by id); 8 bytes each
    for path, operation in LISTS:
        ids = array("q")
        for page in pages(operation, path, DEAL_QUERY):
            fresh = [d for d in page if not _in_any(read, int(d["id"]))]
            ids.extend(int(d["id"]) for d in fresh)
            yield fresh
        read.append(ids)
    since = {**DEAL_QUERY, "updated_since": rfc3339(began - READ_CLOCK_SKEW)}
    caught: set[int] = set()
    for path, operation in LISTS:
        for page in pages(f"{operation} since the read began", path, since):
            fresh = [d for d in page if not _in_any(read, int(d["id"]))]
            fresh = [d for d in fresh if int(d["id"]) not in caught]
            caught.update(int(d["id"]) for d in fresh)
            yield fresh


def changed_deals(
    pages: Pages, since: datetime, statuses: str, gone: list[str] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The deals of both lists updated at or after `since` with one of `statuses`, each once
    (one archived or unarchived mid-read may be in both), a page at a time; the deleted ones
    go to `gone` instead, when given."""
    params = {**DEAL_QUERY, "status": statuses, "updated_since": rfc3339(since)}
    seen: set[int] = set()
    for path, operation in LISTS:
        for page in pages(f"changed {operation.removeprefix('list ')}", path, params):
            fresh = [d for d in page if int(d["id"]) not in seen]
            seen.update(int(d["id"]) for d in fresh)
            if gone is not None:
                gone += [str(d["id"]) for d in fresh if is_deleted(d)]
                fresh = [d for d in fresh if not is_deleted(d)]
            yield fresh


def is_deleted(deal: Mapping[str, Any]) -> bool:
    return deal.get("is_deleted") is True or deal.get("status") == "deleted"


def _in_any(lists: Iterable[array[int]], deal_id: int) -> bool:
    """Whether any of `lists` (each ascending) holds `deal_id`."""
    for ids in lists:
        at = bisect_left(ids, deal_id)
        if at < len(ids) and ids[at] == deal_id:
            return True
    return False
