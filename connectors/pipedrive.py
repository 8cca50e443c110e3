"""Pipedrive connector on pipedrive-python-lib 1.2.3, speaking API v2 (deals, pipelines, stages,
organizations, search) through the library's full-URL calls.

API v1's deals, pipelines, stages and organizations endpoints are deprecated (2026-01-01) and
out of support (2026-08-01); two v1 endpoints stay, as v2 has no successor and v1 does not
deprecate them: `GET /v1/users` (owners) and `GET /v1/deals/{id}/flow` (stage history).

Lists page by cursor (`additional_data.next_cursor`) at the maximum of 500. Deals are read
from `/deals` and `/deals/archived`, each once (connectors/pipedrive_deal_lists.py: a full
read reads both again `updated_since` it began, for deals moved between them mid-read).
Incremental reads ask both lists for the deals updated since the cursor (`updated_since`, at
or after), deleted ones included (`status=open,won,lost,deleted`): the deleted ones are what
`deleted_deals(since)` answers, without reading again. The cursor is the newest `update_time`
read, never past the read's start (lists go by id, not by time). A v2 deal names its
organization by id only: the organizations' names are set on each deal as `org_name`
(connectors/pipedrive_names.py): a full read lists the organizations while that pays for
itself, else (and an incremental read always) they are read 100 ids a call; one the list
leaves out is read by id. `read_deals` takes 100 ids a call too, from `/deals` and, for the
ids not found there, `/deals/archived`, then one call per id in neither: only a 404 or 410
says a deal is gone. The re-read before a write (`read_deals_without_accounts`) reads no
organization names: no check before a write compares an account.
Writes are one PATCH / POST / DELETE per deal (v2 has no bulk write), each with its own
PushResult. A copy whose create names an account goes to the organization of that name, found
(or made) once per name and run (connectors/pipedrive_orgs.py); else to `create_org_id`. A run
of more than `org_search_max` (option, default 10) account names lists the organizations once
instead of searching each name (a full read's listing, read to its end, serves it instead
within `org_listing_reuse_s`, option, default 600: connectors/pipedrive_orgs.py). Searches
are paced to Pipedrive's search limit (`search_rate_limit`, option, default 10 per 2 s) on
top of the general one. The v1 connector's option `recents_days` (never a config key) is
ignored. `check` and a full read first list the deal fields (`/dealFields`, once a run) where
the config names custom fields, and refuse a key the account does not define.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

import requests

from connectors.account_names import AccountMatch, with_note
from connectors.base import (
    ConnectorSettings,
    NativeCreate,
    NativePipeline,
    NativeUpdate,
    PushResult,
    change_time,
)
from connectors.batches import chunks, not_found
from connectors.credentials import PipedriveAccessToken, PipedriveApiToken
from connectors.errors import ApiError, ConnectorError
from connectors.http import CallPolicy, Pacer
from connectors.named_fields import named_fields, require_defined
from connectors.pipedrive_deal_lists import (
    ALL,
    DEAL_QUERY,
    LISTS,
    changed_deals,
    every_deal,
    is_deleted,
)
from connectors.pipedrive_names import IDS, OrgNames
from connectors.pipedrive_orgs import REUSE_FOR, SEARCH_MAX, Filing, Organizations, filed_under
from connectors.pipedrive_wire import (
    SessionClient,
    classify,
    from_rfc3339,
    rate_limit_info,
    rfc3339,
)
from connectors.pools import close_session
from mapping.pipedrive import pipelines_from_pipedrive

__all__ = ["PipedriveConnector"]

DEFAULT_DOMAIN = "https://api.pipedrive.com"
PAGE = 500
SEARCH_PACE = (10, 2.0)  # Pipedrive's "Search 10" per rolling 2 s, whatever the plan
# The operations that call a `/search` endpoint, paced under SEARCH_PACE too.
_SEARCHES = ("find organization", "find created deals")
# Refused for this deal only: report it, go on with the next.
_PER_RECORD = (400, 404, 410, 422)
_GONE = frozenset({"404", "410"})  # a delete's deal does not exist, or is deleted already


def _body_list(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    return list(data) if isinstance(data, list) else []


def _search_items(body: Any) -> list[dict[str, Any]]:
    """The found records of a v2 `/search` page (`data.items[].item`)."""
    data = body.get("data") if isinstance(body, dict) else None
    items = data.get("items") if isinstance(data, dict) else None
    return [i["item"] for i in items or () if isinstance(i, dict) and "item" in i]


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
        # None: the copies carry no marker, as in the other connectors (a custom field key is
        # made per account, so there is no key to fall back on)
        self._link_field = settings.link_field
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
        self._domain = (settings.base_url or DEFAULT_DOMAIN).rstrip("/")
        self._client = SessionClient(self._domain, self._session, settings.timeout, self._observe)
        if isinstance(credentials, PipedriveApiToken):
            self._client.set_api_token(credentials.api_token)
        else:
            self._client.set_access_token(credentials.access_token)
        # What each account name of this run's copies came to: one lookup per name, not per copy.
        self._orgs = Organizations(
            self._call,
            self._orgs_named,
            self._every_org,
            self._create_org,
            _PER_RECORD,
            int(options.get("org_search_max", SEARCH_MAX)),
            float(options.get("org_listing_reuse_s", REUSE_FOR)),
        )
        # each organization's name, read once a run
        self._org_names = OrgNames(self._orgs_of, self._org)
        self._cursor: str | None = None
        # Deleted deals met while deals(since) read: deleted_deals(since) answers from them.
        self._gone_since: tuple[datetime, list[str]] | None = None
        # the `field_code` of every deal field the account defines, listed once a run
        self._defined: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"PipedriveConnector(system={self.system!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _v2(self, path: str) -> str:
        return f"{self._domain}/api/v2/{path}"

    def _observe(self, headers: Mapping[str, str]) -> None:
        if self._policy.pacer is not None:
            self._policy.pacer.observe(*rate_limit_info(headers))

    def _call(self, operation: str, request: Callable[[], Any]) -> dict[str, Any]:
        body: dict[str, Any] = self._policy.call(operation, request)
        return body

    def _get(self, operation: str, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(operation, partial(self._client._get, self._v2(path), params=params))

    def _page_lists(
        self,
        operation: str,
        path: str,
        params: Mapping[str, Any],
        items: Callable[[Any], list[dict[str, Any]]] = _body_list,
    ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """The items of each page of a v2 list, one call each, lazily, and whether more pages
        follow. A next cursor equal to the one just asked for would ask the same page for
        ever: an ApiError."""
        cursor: str | None = None
        while True:
            query = {**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
            body = self._get(operation, path, query)
            following = (body.get("additional_data") or {}).get("next_cursor")
            if following is not None and following == cursor:
                raise ApiError(self.system, operation, "the list's next page is this one again")
            yield items(body), bool(following)
            if not following:
                return
            cursor = str(following)

    def _pages(
        self, operation: str, path: str, params: Mapping[str, Any]
    ) -> Iterator[list[dict[str, Any]]]:
        for page, _ in self._page_lists(operation, path, params):
            yield page

    def calls(self) -> dict[str, int]:
        return self._policy.counts()

    def cursor(self) -> str | None:
        return self._cursor

    def close(self) -> None:
        close_session(self._session)

    # -- metadata ---------------------------------------------------------------------------

    def check(self) -> None:
        """Auth and deal-read permission in one cheap call; then that the account defines the
        custom fields the config names (one more: the deal fields' listing)."""
        self._get("check", "deals", {"limit": 1})
        self._require_defined("check")

    def _require_defined(self, operation: str) -> None:
        """A config naming a custom field the account lacks is refused, as Salesforce refuses
        an unknown field (INVALID_FIELD). Keys are made per account, so one copied from another
        account names nothing here, and the v2 docs do not say how a deal read shows one (null,
        as a field without a value, or left out): the account's deal fields are listed (once a
        run, only where the config names any) and their `field_code`s compared."""
        if not named_fields(self._settings):
            return
        if self._defined is None:
            pages = self._pages("deal fields", "dealFields", {})
            self._defined = frozenset(str(f.get("field_code")) for page in pages for f in page)
        remedy = "create it in Pipedrive (Company settings > Data fields > Deal), use its key"
        require_defined(self._settings, operation, self._defined, "field", remedy)

    def pipelines(self) -> list[NativePipeline]:
        pipelines = [p for page in self._pages("pipelines", "pipelines", {}) for p in page]
        stages = [s for page in self._pages("stages", "stages", {}) for s in page]
        return pipelines_from_pipedrive(pipelines, stages)

    def owners(self) -> list[dict[str, Any]]:
        return _body_list(self._call("owners", self._client.users.get_all_users))

    # -- reading deals ----------------------------------------------------------------------

    def deals(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        self._gone_since = None
        if since is None:  # as check: an incremental read trusts the full read before it
            self._require_defined("list deals")
        gone: list[str] = []
        began = datetime.now(UTC)
        pages = (
            every_deal(self._pages, began)
            if since is None
            else changed_deals(self._pages, since, ALL, gone)
        )
        high: datetime | None = since
        # a full read names most organizations: listing them may be cheaper (OrgNames decides)
        listing = self._org_pages() if since is None else None
        for deal in self._org_names.named(pages, listing):
            changed = change_time(from_rfc3339, deal.get("update_time"))
            if changed is not None and (high is None or changed > high):
                high = changed
            yield deal
        # Lists go by id: a deal of a lower id changed mid-read, after its page, is not in
        # this read, though a later change of another deal is. Past the read's start the
        # cursor would step over it.
        if high is not None and high > began:
            high = max(began, since) if since is not None else began
        self._cursor = rfc3339(high) if high is not None else None
        if since is not None:
            self._gone_since = (since, gone)

    def _orgs_of(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        params = {"ids": ",".join(map(str, ids)), "limit": IDS}
        return _body_list(self._get("organization names", "organizations", params))

    def _org_pages(self) -> Iterator[list[dict[str, Any]]]:
        """The listing a full read names its deals from, as far as that reads it. Read to its
        end, it also files this run's copies (`Organizations.listed`): a reconcile that pulls
        everything and then files copies of many accounts lists the organizations once."""
        kept: list[dict[str, Any]] = []  # id and name only: a listing may be long
        began = self._orgs.clock()  # its first page is as old as the listing
        listing = self._page_lists("list organization names", "organizations", {"sort_by": "id"})
        for items, more in listing:
            kept += filed_under(items)
            if not more:
                self._orgs.listed(kept, began)
            yield items

    def _org(self, org_id: int) -> dict[str, Any] | None:
        """One organization by id, deleted ones too; None where it is not found or not
        visible (its deals' account is then unknown: no reason to fail the read)."""
        return self._one("organization name", f"organizations/{org_id}", (403, 404, 410))

    def _one(self, operation: str, path: str, absent: tuple[int, ...]) -> dict[str, Any] | None:
        """The `data` of a GET of one record; None where the answer is one of `absent`."""
        try:
            body = self._get(operation, path, {})
        except ConnectorError as exc:
            if exc.status in absent:
                return None
            raise
        data = body.get("data")
        return data if isinstance(data, dict) else None

    def changed_accounts(self, since: datetime) -> dict[str, str | None]:
        """Id -> name of the organizations updated at or after `since` (`updated_since`). A
        deal names its organization by id, and the name it shows is the organization's:
        renaming the organization updates the organization, not its deals' `update_time`, so
        the deal read never lists them."""
        params = {"updated_since": rfc3339(since), "sort_by": "id"}
        names: dict[str, str | None] = {}
        for page in self._pages("changed organizations", "organizations", params):
            for org in page:
                name = org.get("name")
                names[str(org["id"])] = name if isinstance(name, str) else None
        return names

    def deleted_deals(self, since: datetime) -> Iterator[str]:
        if self._gone_since is not None and self._gone_since[0] == since:
            yield from self._gone_since[1]
            return
        for page in changed_deals(self._pages, since, "deleted"):
            # `status=deleted` "includes" deleted deals (v2 spec): only those are gone
            yield from (str(d["id"]) for d in page if is_deleted(d))

    def read_deals(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """`read_deals_without_accounts`, each deal with its organization's name."""
        return list(self._org_names.named([self.read_deals_without_accounts(ids)]))

    def read_deals_without_accounts(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The deals of `ids` as they are now, deleted ones too (status "deleted"): 100 ids a
        call from `/deals`, those not found there from `/deals/archived`, and those in
        neither one by one (`GET /api/v2/deals/{id}`). An `ids=` list leaves out a deal it
        cannot show (v2 spec: "do not exist or are not visible"), and one unarchived between
        the two lists is in neither: only a 404 or 410 says a deal is gone, and a deal left
        out is what a delete's re-read takes for gone. A deal the token may not see is a
        PermissionDenied, not a deal gone. No organization names (`org_name`): see
        connectors.base.ReadsWithoutAccounts."""
        wanted = list(dict.fromkeys(i for i in ids if i.isdigit()))
        found: list[dict[str, Any]] = []
        for path, operation in LISTS:
            missing = set(wanted) - {str(d["id"]) for d in found}
            operation = f"read {operation.removeprefix('list ')}"
            for chunk in chunks([i for i in wanted if i in missing], IDS):
                params = {**DEAL_QUERY, "ids": ",".join(chunk), "status": ALL, "limit": IDS}
                found += _body_list(self._get(operation, path, params))
        listed = {str(d["id"]) for d in found}
        for deal_id in (i for i in wanted if i not in listed):
            deal = self._one("read deal", f"deals/{deal_id}", (404, 410))
            if deal is not None:
                found.append(deal)
        return found

    def stage_history(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """`/v1/deals/{id}/flow` change items per deal (newest first): one call per deal and
        page (v2 has no successor, and v1 does not deprecate it)."""
        return {deal_id: list(self._flow(deal_id)) for deal_id in dict.fromkeys(ids)}

    def _flow(self, deal_id: str) -> Iterator[dict[str, Any]]:
        """The items of a v1 start/limit list (`more_items_in_collection`, `next_start`)."""
        fetch = self._client.deals.get_deal_updates
        start: int | None = 0
        while start is not None:
            page = {"start": start, "limit": PAGE}
            body = self._call("deal flow", partial(fetch, deal_id, params=page))
            yield from _body_list(body)
            paging = (body.get("additional_data") or {}).get("pagination") or {}
            following = paging.get("next_start") if paging.get("more_items_in_collection") else None
            start = int(following) if following is not None and int(following) > start else None

    def find_created(self, link_ids: Sequence[str]) -> dict[str, str]:
        """Deals carrying our link marker, one exact custom-field search per link id."""
        found: dict[str, str] = {}
        if not self._link_field:  # no marker written, none to find
            return found
        for link_id in dict.fromkeys(link_ids):
            params = {"term": link_id, "fields": "custom_fields", "exact_match": "true"}
            for item in self._search("find created deals", "deals/search", params):
                found.setdefault(link_id, str(item["id"]))
        return found

    def _search(
        self, operation: str, path: str, params: Mapping[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """The found records of a v2 `/search` endpoint's every page."""
        for items, _ in self._page_lists(operation, path, params, _search_items):
            yield from items

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
        patch = self._client._patch
        return [
            self._write(
                "update deal",
                partial(patch, self._v2(f"deals/{update.id}"), json=dict(update.fields)),
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
            results.append(with_note(result, filing.note))
        return results

    def _filing(self, create: NativeCreate) -> Filing:
        """The organization of the copy's account; `Filing(None)` (the fallback) for a copy
        that names no account, or that a person or organization is given already."""
        fields = create.fields
        name = (create.account or "").strip()
        if not name or fields.get("person_id") or fields.get("org_id"):
            return Filing(None)
        return self._orgs.filing(name, fields.get("owner_id"))

    def delete_deals(self, ids: Sequence[str]) -> list[PushResult]:
        """One DELETE per deal (`DeletesDeals` gives the result semantics): 404 and 410 are
        NOT_FOUND. v2 has no bulk delete."""
        delete = self._client._delete
        results = []
        for deal_id in ids:
            request = partial(delete, self._v2(f"deals/{deal_id}"))
            result = self._write("delete deal", request, deal_id, None)
            if not result.ok and result.code in _GONE:
                result = not_found(deal_id, result.error)
            results.append(PushResult(deal_id, result.ok, result.error, result.code))
        return results

    def _idempotent_create(self, create: NativeCreate, org_id: int | None) -> Callable[[], Any]:
        """A POST that, when retried (the first answer was lost), first looks for its deal.

        A connection cut after Pipedrive stored the deal would otherwise create it twice.
        `org_id`: the organization of the copy's account; None: `create_org_id`.
        """
        custom = dict(create.fields.get("custom_fields") or {})
        if self._link_field:
            custom[self._link_field] = create.link_id
        body = {**create.fields, "custom_fields": custom} if custom else dict(create.fields)
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
            return self._client._post(self._v2("deals"), json=body)

        return attempt

    # -- organizations ----------------------------------------------------------------------

    def found_accounts(self, names: Sequence[str]) -> dict[str, AccountMatch]:
        """The organizations bearing each account name (`connectors.base.found_accounts`),
        found as an apply finds them, none made: a dry run's, or what an apply's
        `expect_accounts` found (no call again)."""
        return self._orgs.found(names)

    def expect_accounts(self, names: Iterable[str]) -> None:
        """The account names this run's creates will name, before the first is journaled:
        their organizations found now (a ConnectorError: none was sent), more than
        `org_search_max` of them from one listing instead of a search each."""
        self._orgs.resolve(names)

    def _every_org(self, pages: int) -> list[dict[str, Any]] | None:
        """Every organization, if `/api/v2/organizations` lists them in at most `pages`
        pages; else None, after reading that many."""
        orgs: list[dict[str, Any]] = []
        listing = self._page_lists("list organizations", "organizations", {"sort_by": "id"})
        for items, more in islice(listing, pages):
            orgs += items
            if not more:
                return orgs
        return None

    def _create_org(self, body: dict[str, Any]) -> Any:
        return self._client._post(self._v2("organizations"), json=body)

    def _orgs_named(self, name: str) -> list[dict[str, Any]]:
        """The organizations a whole-name search finds (`exact_match`: "not case sensitive")."""
        params = {"term": name, "fields": "name", "exact_match": "true"}
        return list(self._search("find organization", "organizations/search", params))
