"""Pipedrive connector on pipedrive-python-lib 1.2.3 (API v1: deals, pipelines, stages, users).

Reads page with start/limit at the maximum of 500; a full read lists archived deals as well
(`/v1/deals` leaves them out), then the recents feed since the read began (a deal unarchived
mid-read may have moved to where `/v1/deals` was read already). Incremental reads use
`GET /v1/recents` (items=deal), which only reaches back `recents_days` (option, default 89:
one day inside the 90 days the sandbox keeps); for an older cursor the connector scans
`GET /v1/deals` and `GET /v1/deals/archived` sorted by update_time DESC (then id) and stops at
the cursor; both lists page by offset and step back when a deal read leaves them mid-read.
Pipedrive times have 1-second resolution, so the cursor second is read inclusively (a boundary
deal may come twice; none is lost), and the recents feed is read from one second earlier
still, as its docs leave open whether since_timestamp is.
v1 has no bulk write: one PUT / POST / DELETE per deal, each with its own PushResult.
A copy whose create names an account goes to the organization of that name, found (or made)
once per name and run (connectors/pipedrive_orgs.py); else to `create_org_id`. A run of more
than `org_search_max` (option, default 10) account names lists the organizations once instead
of searching each name. Searches are paced to Pipedrive's search limit (`search_rate_limit`,
option, default 10 per 2 s) on top of the general one.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

import requests

from connectors.base import (
    ConnectorSettings,
    NativeCreate,
    NativePipeline,
    NativeUpdate,
    PushResult,
    change_time,
)
from connectors.batches import not_found
from connectors.credentials import PipedriveAccessToken, PipedriveApiToken
from connectors.errors import ApiError
from connectors.http import CallPolicy, Pacer
from connectors.pipedrive_orgs import SEARCH_MAX, Filing, Organizations
from connectors.pipedrive_wire import (
    SessionClient,
    classify,
    from_pd_time,
    pd_time,
    rate_limit_info,
)
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID, pipelines_from_pipedrive

__all__ = ["PipedriveConnector"]

DEFAULT_DOMAIN = "https://api.pipedrive.com"
PAGE = 500
RECENTS_DAYS = 89
SEARCH_PACE = (10, 2.0)  # Pipedrive's "Search 10" per rolling 2 s, whatever the plan
# The operations that call a `/search` endpoint, paced under SEARCH_PACE too.
_SEARCHES = ("find organization", "find created deals")
# How far this machine's clock may be ahead of Pipedrive's: a full read's catch-up on the
# recents feed starts that much before the read began, by this machine's clock.
READ_CLOCK_SKEW = timedelta(minutes=10)
# Refused for this deal only: report it, go on with the next.
_PER_RECORD = (400, 404, 410, 422)
_GONE = frozenset({"404", "410"})  # a delete's deal does not exist, or is deleted already


def _body_list(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    return list(data) if isinstance(data, list) else []


def _second_before(stamp: str) -> str:
    return pd_time(from_pd_time(stamp) - timedelta(seconds=1))


def _next_start(body: Mapping[str, Any], start: int, count: int) -> int | None:
    """Where the next page starts; `/v1/recents` documents no next_start, so then it is
    `start` plus the `count` items of this page."""
    page = (body.get("additional_data") or {}).get("pagination") or {}
    if not page.get("more_items_in_collection"):
        return None
    following = page.get("next_start")
    return int(following) if following is not None else start + count


class PipedriveConnector:
    kind = "pipedrive"
    # Deleted deals are kept (status "deleted") for 30 days, then removed for good.
    deletions_kept = timedelta(days=30)

    def __init__(self, settings: ConnectorSettings) -> None:
        credentials = settings.credentials
        if not isinstance(credentials, PipedriveApiToken | PipedriveAccessToken):
            raise TypeError(f"{settings.instance}: Pipedrive needs an API or access token")
        self.system = settings.instance
        self._settings = settings
        options = settings.options
        self._recents_window = timedelta(days=float(options.get("recents_days", RECENTS_DAYS)))
        self._link_field = settings.link_field or PD_FIELD_CRMSYNC_ID
        # Pipedrive refuses a deal linked to no person or organization (since 2021-09-30):
        # crmsync's copies go to this organization (`systems.<name>.create_org_id`).
        org = options.get("create_org_id")
        self._create_org_id = int(org) if org is not None else None
        self._policy = CallPolicy.for_connector(settings, classify, (80, 2.0))
        # Search has its own limit within the burst limit: 10 per rolling 2 s (API-NOTES §3).
        searches, window = options.get("search_rate_limit", SEARCH_PACE)
        self._policy.pace(_SEARCHES, Pacer(int(searches), float(window)))
        self._session = requests.Session()
        if settings.ca_file is not None:
            self._session.verify = str(settings.ca_file)
        self._client = SessionClient(
            (settings.base_url or DEFAULT_DOMAIN).rstrip("/"),
            self._session,
            settings.timeout,
            self._observe,
        )
        if isinstance(credentials, PipedriveApiToken):
            self._client.set_api_token(credentials.api_token)
        else:
            self._client.set_access_token(credentials.access_token)
        # What each account name of this run's copies came to: one lookup per name, not per copy.
        self._orgs = Organizations(
            self._call,
            self._orgs_named,
            self._every_org,
            self._client.organizations.create_organization,
            _PER_RECORD,
            int(options.get("org_search_max", SEARCH_MAX)),
        )
        self._cursor: str | None = None
        # Deleted deals met while deals(since) read the recents feed: deleted_deals(since)
        # answers from them instead of reading the same feed pages a second time.
        self._gone_since: tuple[datetime, list[str]] | None = None

    def __repr__(self) -> str:
        return f"PipedriveConnector(system={self.system!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _observe(self, headers: Mapping[str, str]) -> None:
        if self._policy.pacer is not None:
            self._policy.pacer.observe(*rate_limit_info(headers))

    def _call(self, operation: str, request: Callable[[], Any]) -> dict[str, Any]:
        body: dict[str, Any] = self._policy.call(operation, request)
        return body

    def _pages(
        self, operation: str, fetch: Callable[[dict[str, Any]], Any], params: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """Every item of a start/limit list, one page per call, lazily."""
        for items, _ in self._page_lists(operation, fetch, params):
            yield from items

    def _page_lists(
        self, operation: str, fetch: Callable[[dict[str, Any]], Any], params: dict[str, Any]
    ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """The items of each page of a start/limit list, one call each, lazily, and whether
        more pages follow."""
        start: int | None = 0
        while start is not None:
            page = {**params, "start": start, "limit": PAGE}
            body = self._call(operation, partial(fetch, page))
            items = _body_list(body)
            start = _next_start(body, start, len(items))
            yield items, start is not None

    def calls(self) -> dict[str, int]:
        return self._policy.counts()

    def cursor(self) -> str | None:
        return self._cursor

    def close(self) -> None:
        self._session.close()

    # -- metadata ---------------------------------------------------------------------------

    def check(self) -> None:
        """Auth and deal-read permission in one cheap call."""
        deals = self._client.deals
        self._call("check", lambda: deals.get_all_deals(params={"limit": 1}))

    def pipelines(self) -> list[NativePipeline]:
        pipelines = _body_list(self._call("pipelines", self._client.pipelines.get_all_pipelines))
        stages = list(self._pages("stages", self._stage_page, {}))
        return pipelines_from_pipedrive(pipelines, stages)

    def owners(self) -> list[dict[str, Any]]:
        return _body_list(self._call("owners", self._client.users.get_all_users))

    # -- reading deals ----------------------------------------------------------------------

    def deals(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        self._gone_since = None
        gone: list[str] | None = None
        if since is None:
            source = self._every_deal()
            high: str | None = None
        elif self._recents_reach(since):
            gone = []
            source = self._split_recents(since, gone)
            high = pd_time(since)
        else:
            source = self._changed(since, deleted=False)
            high = pd_time(since)
        for deal in source:
            stamp = deal.get("update_time")
            # Parsed only when it would move the cursor: rarely (listings come newest first).
            if isinstance(stamp, str) and (high is None or stamp > high):
                high = stamp if change_time(from_pd_time, stamp) else high
            yield deal
        self._cursor = from_pd_time(high).isoformat().replace("+00:00", "Z") if high else None
        if since is not None and gone is not None:
            self._gone_since = (since, gone)

    def _split_recents(self, since: datetime, gone: list[str]) -> Iterator[dict[str, Any]]:
        """Live changed deals of one recents read; the deleted ones are collected in `gone`."""
        seen: set[int] = set()
        for deal in self._recents(pd_time(since)):
            if deal["id"] in seen:
                continue
            seen.add(deal["id"])
            if deal.get("status") == "deleted":
                gone.append(str(deal["id"]))
            else:
                yield deal

    def _every_deal(self) -> Iterator[dict[str, Any]]:
        """Every deal not deleted. GET /v1/deals lists "all not archived deals" (v1 spec), so
        the archived ones (GET /v1/deals/archived) are read too: a full read that missed them
        would report each as deleted, and push.propagate_deletes would delete its copies.

        A deal unarchived mid-read moves the other way, into GET /v1/deals, perhaps where that
        was read already: the recents feed since the read began gives it (one call, mostly).
        """
        began = datetime.now(UTC)
        listed = array("q")  # ascending: the listing is by id; 8 bytes a deal
        by_id = {"status": "all_not_deleted", "sort": "id ASC"}
        for deal in self._in_order("list deals", self._list_deals, by_id, _by_id):
            listed.append(int(deal["id"]))
            yield deal
        shelved = array("q")  # ascending too
        # A deal archived mid-read may have been listed already.
        for deal in self._in_order("list archived deals", self._list_archived, by_id, _by_id):
            shelved.append(int(deal["id"]))
            if not _holds(listed, int(deal["id"])):
                yield deal
        caught: set[int] = set()
        for deal in self._recents(pd_time(began - READ_CLOCK_SKEW)):
            deal_id = int(deal["id"])
            if deal.get("status") == "deleted" or deal_id in caught:
                continue
            if not (_holds(listed, deal_id) or _holds(shelved, deal_id)):
                caught.add(deal_id)
                yield deal

    def _in_order(
        self,
        operation: str,
        fetch: Callable[[dict[str, Any]], Any],
        params: dict[str, Any],
        place: Callable[[Mapping[str, Any]], tuple[int, ...]],
    ) -> Iterator[dict[str, Any]]:
        """Every deal of a list in the order `params` sort it, once, though it pages by offset.

        `place(deal)` grows along that order and tells every deal apart (the sort ends with
        id). A deal of a page already read that leaves the list meanwhile (deleted, archived)
        moves every later one a place up, and the next offset would step over one. So each
        page starts at the last deal seen: when its first deal is a later one, deals before it
        left, and the page is asked again further back until it overlaps. A page read at a
        start read before with no new deal in between gets no further (an answer that never
        overlaps would send the read back and on again for ever): an ApiError.
        """
        last: tuple[int, ...] | None = None
        start, back = 0, 1
        stalled: set[int] = set()  # the starts of the pages read since the last new deal
        while True:
            body = self._call(operation, partial(fetch, {**params, "start": start, "limit": PAGE}))
            items = _body_list(body)
            if start > 0 and (not items or last is None or place(items[0]) > last):
                start, back = max(0, start - back), back * 2
                continue
            if start in stalled:
                raise ApiError(
                    self.system,
                    operation,
                    f"the deal list gets no further than offset {start}: its pages past it never "
                    "overlap the deals read last",
                )
            stalled.add(start)
            for item in items:
                at = place(item)
                if last is None or at > last:
                    last = at
                    stalled.clear()
                    yield item
            following = _next_start(body, start, len(items))
            if following is None:
                return
            start, back = following - 1, 1

    def _list_archived(self, params: dict[str, Any]) -> Any:
        # pipedrive-python-lib has no call for this endpoint: its own GET, as get_all_deals.
        client = self._client
        return client._get(client.BASE_URL + "deals/archived", params=params)

    def _stage_page(self, params: dict[str, Any]) -> Any:
        return self._client.stages.get_all_stages(params=params)

    def _list_deals(self, params: dict[str, Any]) -> Any:
        return self._client.deals.get_all_deals(params=params)

    def _recents_reach(self, since: datetime) -> bool:
        return since >= datetime.now(UTC) - self._recents_window

    def _changed(self, since: datetime, *, deleted: bool) -> Iterator[dict[str, Any]]:
        """Deals (live or deleted) changed at or after `since`, each once."""
        source: Iterator[dict[str, Any]]
        if self._recents_reach(since):
            source = (
                d
                for d in self._recents(pd_time(since))
                if (d.get("status") == "deleted") == deleted
            )
        else:
            source = self._scan_back(pd_time(since), "deleted" if deleted else "all_not_deleted")
        seen: set[int] = set()
        for deal in source:
            if deal["id"] not in seen:
                seen.add(deal["id"])
                yield deal

    def _recents(self, since: str) -> Iterator[dict[str, Any]]:
        """The recents feed from `since`, re-windowed on last_timestamp_on_page.

        Offset paging over a feed that moves (a deal changed mid-read jumps to the end) could
        skip a deal; starting each page at a later timestamp cannot. Whether since_timestamp
        is inclusive is undocumented ("changes occurred after the given timestamp"), so every
        window starts one second early: the deals that share the page's last second are read
        again either way (callers drop repeats). Only while that would not move the window on
        does the offset advance within it; a next page that would be this one again (an empty
        page saying more follow) is an ApiError, not the same call for ever.
        """
        recents, start = self._client.recents, 0
        since = _second_before(since)
        while True:
            params = {"since_timestamp": since, "items": "deal", "start": start, "limit": PAGE}
            body = self._call("recent deals", partial(recents.get_recent_changes, params=params))
            items = _body_list(body)
            yield from (item["data"] for item in items if item.get("item") == "deal")
            following = _next_start(body, start, len(items))
            if following is None:
                return
            last = str((body.get("additional_data") or {}).get("last_timestamp_on_page") or since)
            earlier = _second_before(last)
            if earlier <= since and following <= start:  # the same page asked again, for ever
                raise ApiError(
                    self.system,
                    "recent deals",
                    f"the recents feed gets no further than {since} (offset {start}): its next "
                    "page is this one",
                )
            since, start = (earlier, 0) if earlier > since else (since, following)

    def _scan_back(self, since: str, status: str) -> Iterator[dict[str, Any]]:
        """Newest first until the cursor: for a cursor older than the recents feed reaches.

        GET /v1/deals lists "all not archived deals" (v1 spec), so GET /v1/deals/archived is
        scanned too: a deal archived (or an archived one deleted) while crmsync was not
        running would otherwise not be read, and stay live in the store. A deal archived or
        unarchived mid-scan may be in both lists: the caller keeps the first it reads, and the
        next run, which reads from before this one began, reads it as it is then.
        """
        yield from self._scan_list("scan deals", self._list_deals, since, status)
        yield from self._scan_list("scan archived deals", self._list_archived, since, status)

    def _scan_list(
        self, operation: str, fetch: Callable[[dict[str, Any]], Any], since: str, status: str
    ) -> Iterator[dict[str, Any]]:
        # Pages by offset as the full read does, so it steps back the same way when a deal of
        # a page read leaves the list; id tells apart the deals of one second.
        params = {"status": status, "sort": "update_time DESC, id DESC"}
        for deal in self._in_order(operation, fetch, params, _newest_first):
            if str(deal.get("update_time") or "") < since:
                return
            yield deal

    def changed_accounts(self, since: datetime) -> dict[str, str | None]:
        """Id -> name of the organizations updated at or after `since`: `GET
        /v1/organizations` newest first (`sort=update_time DESC, id DESC`, one page per 500),
        read until the first older one. A deal names its organization by id, and the name it
        shows is the organization's: renaming the organization updates the organization, not
        its deals' `update_time`, so the deal read never lists them. Read this way at any
        cursor age (the recents feed reaches back `recents_days` only)."""
        floor = pd_time(since)
        fetch = self._client.organizations.get_all_organizations
        params = {"sort": "update_time DESC, id DESC"}
        names: dict[str, str | None] = {}
        for org in self._in_order("changed organizations", fetch, params, _newest_first):
            if str(org.get("update_time") or "") < floor:
                break
            name = org.get("name")
            names[str(org["id"])] = str(name) if isinstance(name, str) else None
        return names

    def deleted_deals(self, since: datetime) -> Iterator[str]:
        if self._gone_since is not None and self._gone_since[0] == since:
            yield from self._gone_since[1]
            return
        for deal in self._changed(since, deleted=True):
            yield str(deal["id"])

    def read_deals(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for deal_id in dict.fromkeys(ids):
            try:
                body = self._call("read deal", partial(self._client.deals.get_deal, deal_id))
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            if isinstance(body.get("data"), dict):
                found.append(body["data"])
        return found

    def stage_history(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """`/flow` change items per deal (newest first): costs one call per deal and page."""
        deals = self._client.deals
        return {
            deal_id: list(
                self._pages(
                    "deal flow",
                    partial(_flow_page, deals.get_deal_updates, deal_id),
                    {},
                )
            )
            for deal_id in dict.fromkeys(ids)
        }

    def find_created(self, link_ids: Sequence[str]) -> dict[str, str]:
        """Deals carrying our link marker, one exact custom-field search per link id."""
        found: dict[str, str] = {}
        search = self._client.deals.search_deals
        for link_id in dict.fromkeys(link_ids):
            params = {"term": link_id, "fields": "custom_fields", "exact_match": "true"}
            for item in self._search("find created deals", search, params):
                found.setdefault(link_id, str(item["id"]))
        return found

    def _search(
        self, operation: str, search: Callable[..., Any], params: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """The items of a `/search` endpoint's every page."""
        start: int | None = 0
        while start is not None:
            page = {**params, "start": start, "limit": PAGE}
            body = self._call(operation, partial(search, params=page))
            results = (body.get("data") or {}).get("items") or []
            for result in results:
                yield result["item"]
            start = _next_start(body, start, len(results))

    # -- writing deals ----------------------------------------------------------------------

    def _write(
        self, operation: str, request: Callable[[], Any], record_id: str | None, link: str | None
    ) -> PushResult:
        try:
            body = self._call(operation, request)
        except ApiError as exc:
            if exc.status not in _PER_RECORD:
                raise
            return PushResult(record_id, False, exc.message, str(exc.status), link)
        data = body.get("data") or {}
        return PushResult(str(data.get("id", record_id)), True, link_id=link)

    def update_deals(self, updates: Sequence[NativeUpdate]) -> list[PushResult]:
        deals = self._client.deals
        return [
            self._write(
                "update deal",
                partial(deals.update_deal, update.id, dict(update.fields)),
                update.id,
                None,
            )
            for update in updates
        ]

    def create_deals(self, creates: Sequence[NativeCreate]) -> list[PushResult]:
        results = []
        for create in creates:
            filing = self._filing(create)
            if filing.error is not None:  # its organization was refused: so is the copy
                results.append(PushResult(None, False, filing.error, filing.code, create.link_id))
                continue
            attempt = self._idempotent_create(create, filing.org_id)
            result = self._write("create deal", attempt, None, create.link_id)
            if filing.note and result.ok:
                result = replace(result, note=filing.note)
            elif filing.note:
                result = replace(result, error=f"{result.error} ({filing.note})")
            results.append(result)
        return results

    def _filing(self, create: NativeCreate) -> Filing:
        """The organization of the copy's account; `Filing(None)` (the fallback) for a copy
        that names no account, or that a person or organization is given already."""
        fields = create.fields
        name = (create.organization or "").strip()
        if not name or fields.get("person_id") or fields.get("org_id"):
            return Filing(None)
        return self._orgs.filing(name, fields.get("user_id"))

    # -- organizations ----------------------------------------------------------------------

    def expect_organizations(self, names: Iterable[str]) -> None:
        """The account names this run's creates will name, before the first: more than
        `org_search_max` of them are resolved from one listing instead of a search each."""
        self._orgs.expect(names)

    def _every_org(self, pages: int) -> list[dict[str, Any]] | None:
        """Every organization, if `GET /v1/organizations` lists them in at most `pages`
        pages; else None, after reading that many."""
        orgs: list[dict[str, Any]] = []
        fetch = self._client.organizations.get_all_organizations
        for items, more in islice(self._page_lists("list organizations", fetch, {}), pages):
            orgs += items
            if not more:
                return orgs
        return None

    def _orgs_named(self, name: str) -> list[dict[str, Any]]:
        """The organizations a whole-name search finds (`exact_match`: "not case sensitive")."""
        params = {"term": name, "fields": "name", "exact_match": "true"}
        search = self._client.organizations.search_organizations
        return list(self._search("find organization", search, params))

    def delete_deals(self, ids: Sequence[str]) -> list[PushResult]:
        """One DELETE per deal (`DeletesDeals` gives the result semantics): 404 and 410 are
        NOT_FOUND. The bulk `DELETE /v1/deals?ids=` runs in the background and answers no
        per-deal outcome, so it cannot say which deals were missing or refused.
        """
        deals = self._client.deals
        results = []
        for deal_id in ids:
            result = self._write("delete deal", partial(deals.delete_deal, deal_id), deal_id, None)
            if not result.ok and result.code in _GONE:
                result = not_found(deal_id, result.error)
            results.append(PushResult(deal_id, result.ok, result.error, result.code))
        return results

    def _idempotent_create(self, create: NativeCreate, org_id: int | None) -> Callable[[], Any]:
        """A POST that, when retried (the first answer was lost), first looks for its deal.

        A connection cut after Pipedrive stored the deal would otherwise create it twice.
        `org_id`: the organization of the copy's account; None: `create_org_id`.
        """
        body = {**create.fields, self._link_field: create.link_id}
        org = org_id if org_id is not None else self._create_org_id
        if org is not None and not (body.get("person_id") or body.get("org_id")):
            body["org_id"] = org
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                found = self.find_created([create.link_id]).get(create.link_id)
                if found is not None:
                    return {"success": True, "data": {"id": int(found)}}
            return self._client.deals.create_deal(body)

        return attempt


def _holds(ids: array[int], deal_id: int) -> bool:
    """Whether `ids` (ascending) holds `deal_id`."""
    at = bisect_left(ids, deal_id)
    return at < len(ids) and ids[at] == deal_id


def _by_id(deal: Mapping[str, Any]) -> tuple[int, ...]:
    """A deal's place in a list sorted `id ASC`."""
    return (int(deal["id"]),)


def _newest_first(deal: Mapping[str, Any]) -> tuple[int, ...]:
    """A deal's place in a list sorted `update_time DESC, id DESC` (no time: the oldest)."""
    changed = change_time(from_pd_time, deal.get("update_time"))
    return (-int(changed.timestamp()) if changed else 0, -int(deal["id"]))


def _flow_page(fetch: Callable[..., Any], deal_id: str, params: dict[str, Any]) -> Any:
    return fetch(deal_id, params=params)
