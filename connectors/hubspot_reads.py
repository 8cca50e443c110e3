"""Reading a HubSpot CRM object type (deals, companies) page by page, and HubSpot's times.

What the API does that these rely on:
- the list pages by `paging.next.after`, 100 a page; it lists archived objects
  instead when asked (`archived`), and a deal's companies with it (`associations`).
- search takes up to 200 a page, and `after` is an offset: a query returns at most 10,000
  results (SEARCH_CAP), and its offset moves while it is read (see `ObjectReads.changed`).
  Search has its own per-second limit, so its calls are paced apart (`search=True`).
- a search filters `hs_lastmodifieddate` by epoch milliseconds; records give their times as
  ISO 8601 text (`epoch_ms` takes either).
- the list is a GET, its properties in the query; HubSpot's front end refuses a long request
  line with a 414 (an HTML page). HubSpot documents no limit: integrations met it past 8,000
  characters (dlt-hub/verified-sources#305) and "just around 16.2k" (PostHog/posthog#31617).
  So a list whose properties would make its query longer than MAX_QUERY asks for none, and
  reads them for each page by id (batch read, a POST whose body holds them): one call more a
  page, only in portals whose many pipelines give deals hundreds of stage-entered dates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from connectors.errors import PermissionDenied
from connectors.hubspot_companies import ASSOCIATIONS, CompanyNames
from connectors.hubspot_paths import objects
from connectors.hubspot_wire import next_after, query

__all__ = [
    "IN_VALUES",
    "SEARCH_CAP",
    "SEARCH_PAGE",
    "ObjectReads",
    "Request",
    "cursor_ms",
    "epoch_ms",
    "iso_time",
]

LIST_PAGE, SEARCH_PAGE = 100, 200
IN_VALUES = 100  # values crmsync gives one IN filter
MAX_QUERY = 7_000  # characters: under the lowest limit reported, with room for path and host
SEARCH_CAP = 10_000  # HubSpot's hard limit of results per search query


class Call(Protocol):
    """The connector's call: one API call through its policy, the parsed JSON body."""

    def __call__(
        self, operation: str, request: Callable[..., Any], *args: Any, search: bool = False
    ) -> Any: ...


class Request(Protocol):
    """The connector's request of a path with query parameters, for `Call` to send."""

    def __call__(
        self, method: str, path: str, params: Mapping[str, object] | None = None
    ) -> Callable[..., Any]: ...


def epoch_ms(value: object) -> int:
    text = str(value or "")
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def cursor_ms(value: str) -> int:
    ms = epoch_ms(value)
    iso_time(ms)  # a time no datetime holds (year 300000) is as malformed as text
    return ms


def iso_time(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True)
class ObjectReads:
    """One CRM object type's objects API (`noun`, also its name in operations), and the
    connector's `request` and `call` to read it with."""

    noun: str
    request: Request
    call: Call
    search_cap: int = SEARCH_CAP

    def batch(self, action: str) -> Callable[..., Any]:
        """The batch `action` (read, update, create, archive): a request given its body."""
        return self.request("POST", f"{objects(self.noun)}/batch/{action}")

    def listed(
        self,
        properties: list[str],
        operation: str,
        archived: bool = False,
        companies: CompanyNames | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The objects in pages of 100; with `companies`, each deal with its companies (no
        extra call), `companies` told when the token may not read them."""
        asked = ASSOCIATIONS if companies is not None else None
        fits = len(urlencode(query({"properties": properties}))) <= MAX_QUERY
        listed = properties if fits else ["hs_object_id"]
        after: str | None = None
        while True:
            try:
                body = self._list_page(operation, listed, archived, after, asked)
            except PermissionDenied:
                if companies is None or asked is None:
                    raise
                # Refused for the companies asked for (a token without their scope): the deals
                # are read without them, as a company read refused leaves them.
                companies.refused()
                asked = None
                continue
            results = body.get("results") or []
            yield from results if fits else self._read(results, properties, archived, operation)
            after = next_after(body)
            if not after:
                return

    def _list_page(
        self,
        operation: str,
        properties: list[str],
        archived: bool,
        after: str | None,
        asked: list[str] | None,
    ) -> dict[str, Any]:
        params = {
            "limit": LIST_PAGE,
            "after": after,
            "properties": properties,
            "archived": archived,
            "associations": asked,
        }
        body: dict[str, Any] = self.call(operation, self.request("GET", objects(self.noun), params))
        return body

    def _read(
        self, listed: list[dict[str, Any]], properties: list[str], archived: bool, operation: str
    ) -> list[dict[str, Any]]:
        """The `listed` objects with their `properties`, read by id in one batch call; each
        keeps what the list gave beside (its associations). One deleted in between is left
        out (the batch names it among its errors), as a list read a moment later would."""
        if not listed:
            return []
        read = self.request(
            "POST", f"{objects(self.noun)}/batch/read", {"archived": archived or None}
        )
        body = {"properties": properties, "inputs": [{"id": str(o["id"])} for o in listed]}
        found = {
            str(o["id"]): o for o in (self.call(operation, read, body) or {}).get("results") or []
        }
        return [{**o, **found[str(o["id"])]} for o in listed if str(o["id"]) in found]

    def search_page(
        self,
        groups: list[list[dict[str, Any]]],
        properties: list[str],
        offset: int,
        operation: str,
    ) -> dict[str, Any]:
        """One page of the objects matching any of `groups` (each group's filters all)."""
        request = {
            "filterGroups": [{"filters": filters} for filters in groups],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": properties,
            "limit": SEARCH_PAGE,
            "after": str(offset),
        }
        search = self.request("POST", f"{objects(self.noun)}/search")
        body: dict[str, Any] = self.call(operation, search, request, search=True)
        return body

    def changed(self, start: int, properties: list[str]) -> Iterator[dict[str, Any]]:
        """The objects modified at or after `start` (ms), across HubSpot's 10,000-result
        search cap.

        `after` is an offset into a result list that moves while it is read: a deal changed
        after it was read goes to the end and every deal behind it moves up one, so the next
        offset would skip one. So each page starts a new window at the last modification time
        seen (ids already yielded at that instant are skipped); only while a window stays in
        one instant does it page by offset, up to the cap.
        """
        boundary: set[str] = set()  # ids yielded whose hs_lastmodifieddate == start
        while True:
            filters = [
                {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(start)}
            ]
            offset, last, at_last = 0, start, set(boundary)
            while True:
                operation = f"search {self.noun}"
                body = self.search_page([filters], properties, offset, operation)
                for deal in body.get("results") or []:
                    if deal["id"] in boundary:
                        continue
                    modified = epoch_ms(deal["properties"]["hs_lastmodifieddate"])
                    if modified != last:
                        last, at_last = modified, set()
                    at_last.add(deal["id"])
                    yield deal
                after = next_after(body)
                if not after:
                    return
                offset = int(after)
                if last != start or offset + SEARCH_PAGE > self.search_cap:
                    break
            if last == start:
                # More deals share one instant than a query can return: scan them instead.
                yield from self._scan_from(start, at_last, properties)
                return
            start, boundary = last, at_last

    def _scan_from(
        self, start: int, seen: set[str], properties: list[str]
    ) -> Iterator[dict[str, Any]]:
        for deal in self.listed(properties, f"scan {self.noun}"):
            modified = epoch_ms(deal["properties"].get("hs_lastmodifieddate") or 0)
            if modified > start or (modified == start and deal["id"] not in seen):
                yield deal
