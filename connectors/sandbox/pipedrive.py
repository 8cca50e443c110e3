"""Pipedrive API v1 and v2 emulator: pipelines, stages, users, deals (list, get, put, post,
delete, flow, search), organizations (list, get, post, search by name) and the `recents` change
feed under `/v1/...`; deals, pipelines, stages, organizations and search under `/api/v2/...`
(pipedrive_v2_routes.py, records rendered from the same store by pipedrive_v2.py).

Speaks the wire format pipedrive-python-lib 1.2.3 expects (API-NOTES.md §3): `api_token` query
parameter (or `Authorization: Bearer`, or `x-api-token`), the `{success, data, additional_data:
{pagination}, related_objects}` envelope, the `{success: false, error, error_info}` error body,
x-ratelimit-* headers over a rolling 2 s window and 429 with Retry-After.

Documented choices where the public docs are silent:
- `limit` above 500 is clamped to 500 (the page then reports limit 500); below 1 is a 400.
- `recents` keeps `recents_window` of history (default 90 days): changes older than that are
  silently left out, even when `since_timestamp` asks for them, so a client has to know the
  window and fall back to a full scan for an older cursor.
- A deleted deal stays readable (status "deleted") and shows up in `recents`; a PUT edits
  none of its fields but its restore (`status` alone; changelog 2024-03-18).
- A PUT edits no field of an archived deal but its archive flag (`is_archived`, with
  `archive_time`): its unarchiving (changelog 2025-07-15: archived deals "will not be
  editable through the API"; the spec keeps `is_archived` in the update body). The refusal's
  status is undocumented (400 here). A DELETE (an endpoint the change does not name)
  deletes it.
- An archived deal (`is_archived`, set by PUT) leaves `GET /v1/deals`, which lists "all not
  archived deals" (v1 spec), for `GET /v1/deals/archived`; it stays readable by id and shows
  up in `recents`, as the docs do not say otherwise. `/v1/deals/archived` takes the same
  status and sort as `/v1/deals` (v1 spec, getArchivedDeals: status `deleted` includes
  "deals that have been deleted up to 30 days ago"), so a deleted archived deal is listed
  there, not in `/v1/deals?status=deleted`.
- An organization renamed (`DealStore.rename_org`) changes its `update_time` only: its deals
  show the new name (Pipedrive reads it from the organization) with their `update_time` as it
  was. `/v1/organizations` takes `sort` over `id` and `update_time`, as `/v1/deals` does.
- Organization search (`/v1/organizations/search`) searches names only (`fields=name`) and
  answers whole-name matches, case-insensitive, with or without `exact_match`; a deal written
  with an `org_id` of no organization is refused with a 400.
- Deleting a deal that is already deleted answers 410 Gone ("Deal is already deleted"); an
  unknown id answers 404 ("Deal not found").

API v2 (Pipedrive's v2 OpenAPI document, the v2 migration guide), where the docs leave it open:
- The token goes in the `x-api-token` header or `Authorization: Bearer`; `api_token` in the
  query is a 401 on /api/v2 (the auth docs: "must be provided in the x-api-token header for
  all requests"). Bearer is taken with the API token too, as the sandbox has one token.
- A cursor is the sort key of its page's last item, so a deal that leaves the list between
  pages skips no other; one that is not ours, or was made for another sort_by, is a 400.
  `limit` above 500 is clamped, as in v1. `sort_by=update_time` lists the deals of one
  second in the order they changed; `add_time` ties go by id.
- Pipelines and stages are listed deleted ones included, `is_deleted` true (v1's `active` /
  `active_flag` false), as v1 lists them; no v2 parameter asks for them apart.
- A deleted deal keeps status "deleted" beside `is_deleted` true; PATCH `is_deleted: false`
  (a field of the v2 update body) is its restore, the one edit it takes, as v1's status-only
  PUT. An archived deal takes no PATCH but `is_archived: false` (changelog 2025-07-15).
- Validation is strict: a boolean is true/false, a number or id is a JSON number (no string
  coerced), an unknown field or custom-field key is a 400; the error body is v1's (the v2
  spec documents none). POST answers 200, as the v2 spec lists.
- `include_fields` on a deal read adds the fields it names: `first_won_time` as stored, the
  spec's others (activity, product, file and mail counts) null, as the sandbox keeps none of
  those; a name outside the spec's list is a 400.
- Each route spends its `x-token-cost` of the daily budget (`daily_limit`); the v1 routes
  spend one each as before. `x-daily-requests-left` counts that budget for every method, so
  v2's POST and PATCH count as v1's POST and PUT do against the 10,000 a day (changelog
  2019-06-25, "all POST/PUT endpoints"; it predates v2 and PATCH).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from connectors.sandbox.faults import FaultState
from connectors.sandbox.pipedrive_orgs import OrgError, check_injected, search_item
from connectors.sandbox.pipedrive_store import (
    STATUSES,
    DealStore,
    WriteError,
    deal_filter,
    pd_time,
)
from connectors.sandbox.pipedrive_v2_routes import V2, v2_routes
from connectors.sandbox.server import BadRequest, Route, SandboxRequest, SandboxResponse

__all__ = ["PipedriveEmulator"]

MAX_PAGE, DEFAULT_PAGE, DAILY_POST_PUT = 500, 100, 10_000
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
_SORT_FIELDS = frozenset({"id", "update_time"})  # the fields the sync sorts deals by


def _sort(text: str | None) -> str:
    """A deal list's `sort` ("field names with optional ASC/DESC, comma-separated", v1 spec)
    as the store takes it: "field ASC|DESC" items joined by ", ", or "" for id order."""
    if not (text or "").strip():
        return ""
    items = [_sort_item(part) for part in (text or "").split(",")]
    if None in items:
        raise BadRequest(f"Invalid sort: {text!r}")
    return "" if items == ["id ASC"] else ", ".join(i for i in items if i)


def _sort_item(part: str) -> str | None:
    """One "field [ASC|DESC]" of a sort, or None if it is none the emulator knows."""
    words = part.split()
    field = words[0].lower() if words else ""
    direction = words[1].upper() if len(words) == 2 else "ASC"
    if field not in _SORT_FIELDS or direction not in ("ASC", "DESC") or len(words) > 2:
        return None
    return f"{field} {direction}"


def _ok(data: Any, additional: Any = None, related: Any = None, status: int = 200) -> Any:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional is not None:
        body["additional_data"] = additional
    if related is not None:
        body["related_objects"] = related
    return SandboxResponse(status, body)


def _int_arg(request: SandboxRequest, name: str, default: int) -> int:
    raw = request.arg(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid parameter {name}: {raw!r} is not an integer") from None


def _paging(request: SandboxRequest) -> tuple[int, int]:
    start, limit = _int_arg(request, "start", 0), _int_arg(request, "limit", DEFAULT_PAGE)
    if start < 0 or limit < 1:
        raise BadRequest("start must be >= 0 and limit >= 1")
    return start, min(limit, MAX_PAGE)


def _pagination(start: int, limit: int, more: bool, *, next_start: bool = True) -> dict[str, Any]:
    page: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more and next_start:
        page["next_start"] = start + limit
    return page


def _deal_id(request: SandboxRequest) -> int:
    try:
        return int(request.params["id"])
    except ValueError:
        raise BadRequest(f"Invalid deal id: {request.params['id']!r}") from None


class PipedriveEmulator:
    system = "pipedrive"
    rate_limit = 80  # Professional plan, api_token: 80 requests per rolling 2 s
    rate_window = 2.0

    def __init__(
        self,
        data: Mapping[str, Any],
        token: str,
        *,
        recents_window: timedelta = timedelta(days=90),
    ) -> None:
        self._data, self._token = data, token
        self.recents_window = recents_window
        # A message the organizations search (v2) answers with a 400 when set: tests of a
        # lookup Pipedrive refuses.
        self.search_refusal: str | None = None
        self.lock = threading.RLock()
        self.fault_state = FaultState()
        self.reset()

    def reset(self) -> None:
        self.store = DealStore(self._data)

    def purge_deleted(self) -> int:
        purged = self.store.purge_deleted()
        return purged

    def restore_deleted(self, ids: Sequence[str]) -> list[str]:
        deals = self.store.deals
        restored = [
            i for i in ids if i.isdigit() and deals.get(int(i), {}).get("status") == "deleted"
        ]
        for deal_id in restored:
            self.store.restore(int(deal_id))
        return restored

    def dump(self) -> dict[str, Any]:
        return self.store.dump()

    # -- the Emulator protocol ------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v1/pipelines", self._pipelines),
            Route("GET", "/v1/stages", self._stages),
            Route("GET", "/v1/users", self._users),
            Route("GET", "/v1/users/me", self._me),
            Route("GET", "/v1/recents", self._recents),
            Route("GET", "/v1/deals", self._list),
            Route("POST", "/v1/deals", self._create),
            Route("GET", "/v1/deals/search", self._search),
            Route("GET", "/v1/deals/archived", lambda r: self._list(r, archived=True)),
            Route("GET", "/v1/deals/{id}", self._get),
            Route("PUT", "/v1/deals/{id}", self._update),
            Route("DELETE", "/v1/deals/{id}", self.delete_deal),
            Route("GET", "/v1/deals/{id}/flow", self._flow),
            Route("GET", "/v1/organizations", self._organizations),
            Route("POST", "/v1/organizations", self._create_organization),
            Route("GET", "/v1/organizations/search", self._search_organizations),
            Route("GET", "/v1/organizations/{id}", self._organization),
            *v2_routes(self),
        ]

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        offered = (
            # v2 takes the token in a header only ("must be provided in the x-api-token
            # header for all requests", docs: core-api-concepts-authentication).
            None if request.path.startswith(f"{V2}/") else request.arg("api_token"),
            request.headers.get("x-api-token"),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        )
        if self._token in offered:
            return None
        response = self.error(401, "unauthorized", "unauthorized access")
        response.body["errorCode"] = 401
        response.body["error_info"] = "Please provide a valid api_token or access token."
        return response

    def error(self, status: int, code: str, message: str) -> SandboxResponse:
        body = {
            "success": False,
            "error": message,
            "error_info": ERROR_INFO,
            "data": None,
            "additional_data": None,
        }
        return SandboxResponse(status, body)

    def too_many_requests(self, retry_after: float) -> SandboxResponse:
        response = self.error(429, "rate_limited", "Request over limit")
        # Whole seconds, as HTTP wants them; sub-second values only come from test faults.
        after = str(math.ceil(retry_after)) if retry_after >= 1 else f"{retry_after:g}"
        response.headers["Retry-After"] = after
        return response

    def limit_headers(self, used: int, limit: int, window: float) -> dict[str, str]:
        daily = self.fault_state.faults.daily_limit or DAILY_POST_PUT
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - used)),
            "x-ratelimit-reset": str(max(1, math.ceil(window))),
            "x-daily-requests-left": str(max(0, daily - self.fault_state.api_calls)),
        }

    def daily_limit_exceeded(self) -> SandboxResponse:
        response = self.error(429, "daily_limit", "Daily API token budget exceeded")
        seconds_to_midnight = 86_400 - int(time.time()) % 86_400
        response.headers["Retry-After"] = str(seconds_to_midnight)
        return response

    def session_expired(self) -> SandboxResponse | None:
        return None  # api tokens do not expire

    # -- metadata --------------------------------------------------------------------------------

    def _pipelines(self, request: SandboxRequest) -> SandboxResponse:
        return _ok(self.store.pipelines or None)

    def _stages(self, request: SandboxRequest) -> SandboxResponse:
        pipeline = request.arg("pipeline_id")
        stages = sorted(self.store.stages.values(), key=lambda s: (s["pipeline_id"], s["order_nr"]))
        if pipeline:
            stages = [s for s in stages if str(s["pipeline_id"]) == pipeline]
        # Stages page with start/limit like deals (v1 spec: GET /stages start, limit).
        start, limit = _paging(request)
        more = start + limit < len(stages)
        return _ok(
            stages[start : start + limit] or None, {"pagination": _pagination(start, limit, more)}
        )

    def _users(self, request: SandboxRequest) -> SandboxResponse:
        return _ok(list(self.store.users.values()))

    def _me(self, request: SandboxRequest) -> SandboxResponse:
        users = list(self.store.users.values())
        return _ok(next((u for u in users if u.get("is_you")), users[0] if users else None))

    # -- deals -----------------------------------------------------------------------------------

    def _related(self, deals: list[dict[str, Any]]) -> dict[str, Any]:
        users: dict[str, Any] = {}
        stages: dict[str, Any] = {}
        for deal in deals:
            owner = deal.get("user_id") or {}
            if owner.get("id") is not None:
                users[str(owner["id"])] = {k: v for k, v in owner.items() if k != "value"}
            stage = self.store.stages.get(int(deal.get("stage_id") or 0))
            if stage is not None:
                stages[str(stage["id"])] = stage
        pipelines = {str(p["id"]): p for p in self.store.pipelines}
        return {"user": users, "stage": stages, "pipeline": pipelines}

    def _list(self, request: SandboxRequest, *, archived: bool = False) -> SandboxResponse:
        start, limit = _paging(request)
        status = request.arg("status") or "all_not_deleted"
        if status not in (*STATUSES, "all_not_deleted"):
            raise BadRequest(f"Invalid status: {status!r}")
        ids = self.store.view(status, _sort(request.arg("sort")), archived=archived)
        wanted = {n: {v} for n in ("stage_id", "user_id", "pipeline_id") if (v := request.arg(n))}
        if wanted:  # filters scan; the sync itself never uses them
            keep = deal_filter(wanted)
            ids = [i for i in ids if keep(self.store.deals[i])]
        deals = [self.store.deals[i] for i in ids[start : start + limit]]
        more = start + limit < len(ids)
        if start > 0 and self.fault_state.faults.pages_past_first_empty:
            deals = []
        additional = {"pagination": _pagination(start, limit, more)}
        return _ok(deals or None, additional, self._related(deals))

    def _found(self, request: SandboxRequest) -> dict[str, Any] | SandboxResponse:
        deal = self.store.deals.get(_deal_id(request))
        return deal if deal is not None else self.error(404, "not_found", "Deal not found")

    def _get(self, request: SandboxRequest) -> SandboxResponse:
        deal = self._found(request)
        if isinstance(deal, SandboxResponse):
            return deal
        return _ok(deal, {}, self._related([deal]))

    def injected(self, keys: list[str]) -> bool:
        faults = self.fault_state.faults
        return any(k in faults.fail_ids for k in keys) or self.fault_state.draw(faults.record_fail)

    def _body(self, request: SandboxRequest) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        return body

    def _write(self, status: int, write: Any) -> SandboxResponse:
        try:
            deal = write()
        except WriteError as exc:
            return self.error(exc.status, "invalid", exc.message)
        return _ok(deal, {}, self._related([deal]), status)

    def _update(self, request: SandboxRequest) -> SandboxResponse:
        deal_id, body = _deal_id(request), self._body(request)
        if self.injected([str(deal_id)]):
            return self.error(400, "injected", "Injected failure: deal rejected")
        return self._write(200, lambda: self.store.api_update(deal_id, body))

    def _create(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if self.injected([v for v in body.values() if isinstance(v, str)]):
            return self.error(400, "injected", "Injected failure: deal rejected")
        if self.fault_state.faults.deal_needs_party and not (
            body.get("person_id") or body.get("org_id")
        ):
            # The wording is ours: the docs give the rule, not the message.
            return self.error(400, "invalid", "Deal must be linked to a person or an organization")
        return self._write(201, lambda: self.store.create(body))

    def delete_deal(self, request: SandboxRequest) -> SandboxResponse:
        deal_id = _deal_id(request)
        if self.injected([str(deal_id)]):
            return self.error(400, "injected", "Injected failure: deal rejected")
        try:
            self.store.delete(deal_id)
        except WriteError as exc:
            return self.error(exc.status, "invalid", exc.message)
        return _ok({"id": deal_id})

    def _flow(self, request: SandboxRequest) -> SandboxResponse:
        found = self._found(request)
        if isinstance(found, SandboxResponse):
            return found
        start, limit = _paging(request)
        items = self.store.flows.get(int(found["id"]), [])
        page = items[start : start + limit]
        more = start + limit < len(items)
        return _ok(page or None, {"pagination": _pagination(start, limit, more)})

    def _search(self, request: SandboxRequest) -> SandboxResponse:
        """Exact match on custom-field values only: what the sync needs to find its creates."""
        term = (request.arg("term") or "").strip()
        if len(term) < 2:
            raise BadRequest("term must be at least 2 characters long")
        if request.arg("fields") != "custom_fields" or request.arg("exact_match") != "true":
            raise BadRequest("the sandbox searches with fields=custom_fields&exact_match=true only")
        start, limit = _paging(request)
        ids = self.store.search_link(term)
        items = [
            {"result_score": 1.0, "item": self.store.search_item(self.store.deals[i])}
            for i in ids[start : start + limit]
        ]
        more = start + limit < len(ids)
        return _ok({"items": items}, {"pagination": _pagination(start, limit, more)})

    # -- organizations ---------------------------------------------------------------------------

    def _organizations(self, request: SandboxRequest) -> SandboxResponse:
        start, limit = _paging(request)
        orgs = self.store.orgs.listing(_sort(request.arg("sort")))
        more = start + limit < len(orgs)
        page = orgs[start : start + limit]
        return _ok(page or None, {"pagination": _pagination(start, limit, more)})

    def _organization(self, request: SandboxRequest) -> SandboxResponse:
        raw = request.params["id"]
        org = self.store.orgs.orgs.get(int(raw)) if raw.isdigit() else None
        return _ok(org, {}) if org else self.error(404, "not_found", "Organization not found")

    def _create_organization(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        try:
            check_injected(body, self.fault_state.faults.fail_ids)
            org = self.store.orgs.create(body)
        except OrgError as exc:
            return self.error(exc.status, "invalid", exc.message)
        return _ok(org, {}, status=201)

    def _search_organizations(self, request: SandboxRequest) -> SandboxResponse:
        term = (request.arg("term") or "").strip()
        exact = request.arg("exact_match") == "true"
        if len(term) < (1 if exact else 2):
            raise BadRequest("term must be at least 2 characters long (1 with exact_match)")
        if (request.arg("fields") or "name") != "name":
            raise BadRequest("the sandbox searches organizations with fields=name only")
        start, limit = _paging(request)
        ids = self.store.orgs.named(term)
        items = [
            {"result_score": 1.0, "item": search_item(self.store.orgs.orgs[i])}
            for i in ids[start : start + limit]
        ]
        more = start + limit < len(ids)
        return _ok({"items": items}, {"pagination": _pagination(start, limit, more)})

    def _recents(self, request: SandboxRequest) -> SandboxResponse:
        since = request.arg("since_timestamp")
        if not since or len(since) != 19:
            raise BadRequest("since_timestamp is required as YYYY-MM-DD HH:MM:SS")
        items = request.arg("items") or "deal"
        start, limit = _paging(request)
        oldest = pd_time(time.time() - self.recents_window.total_seconds())
        ids: list[int] = []
        more = False
        if "deal" in items.split(","):
            ids, more = self.store.changed_since(max(since, oldest), start, limit)
        deals = [self.store.deals[i] for i in ids]
        if start > 0 and self.fault_state.faults.pages_past_first_empty:
            deals = []
        additional = {
            "since_timestamp": since,
            "last_timestamp_on_page": deals[-1]["update_time"] if deals else since,
            # The v1 spec's recents pagination (schema and example) has no next_start.
            "pagination": _pagination(start, limit, more, next_start=False),
        }
        data = [{"item": "deal", "id": d["id"], "data": d} for d in deals]
        return _ok(data or None, additional)
