"""The `/api/v2/...` routes of the Pipedrive emulator: deals, pipelines, stages, organizations
and search, over the same store as the v1 routes (records rendered by pipedrive_v2.py).

Each route carries its operation's `x-token-cost` from the v2 spec, which a call spends of the
daily budget (`daily_limit`). Lists page by cursor (`limit` default 100, above 500 clamped to
500 as v1 does; `next_cursor` null on the last page).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from connectors.sandbox.faults import FaultState
from connectors.sandbox.pipedrive_orgs import OrgError, check_injected, search_item
from connectors.sandbox.pipedrive_store import STATUSES, DealStore, WriteError, deal_filter
from connectors.sandbox.pipedrive_v2 import (
    STANDARD_FIELDS,
    Key,
    custom_field,
    custom_keys,
    deal_v2,
    decode_cursor,
    encode_cursor,
    included,
    org_v2,
    page,
    pd_stamp,
    pipeline_v2,
    stage_v2,
    write_body,
)
from connectors.sandbox.server import BadRequest, Handler, Route, SandboxRequest, SandboxResponse

__all__ = ["V2", "v2_routes"]

V2 = "/api/v2"
MAX_PAGE, DEFAULT_PAGE, MAX_IDS = 500, 100, 100
_DIRECTIONS = ("asc", "desc")
_SORTS = ("id", "update_time", "add_time")
# The store's sort string for each v2 sort, ascending; v2's order is total (ties by id).
_DEAL_VIEWS = {"id": "", "update_time": "update_time ASC", "add_time": "add_time ASC, id ASC"}


class Host(Protocol):
    """What the routes need of the emulator (its store is replaced on reset)."""

    store: DealStore
    fault_state: FaultState
    search_refusal: str | None

    def error(self, status: int, code: str, message: str) -> SandboxResponse: ...
    def injected(self, keys: list[str]) -> bool: ...
    def delete_deal(self, request: SandboxRequest) -> SandboxResponse: ...


def _ok(data: Any, next_cursor: str | None = None, *, listed: bool = False) -> SandboxResponse:
    body: dict[str, Any] = {"success": True, "data": data}
    if listed:
        body["additional_data"] = {"next_cursor": next_cursor}
    return SandboxResponse(200, body)


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name}: {raw!r} is not an integer") from None


def _limit(request: SandboxRequest) -> int:
    raw = request.arg("limit")
    limit = DEFAULT_PAGE if raw in (None, "") else _int(str(raw), "limit")
    if limit < 1:
        raise BadRequest("limit must be >= 1")
    return min(limit, MAX_PAGE)


def _choice(request: SandboxRequest, name: str, options: tuple[str, ...], default: str) -> str:
    value = request.arg(name) or default
    if value not in options:
        raise BadRequest(f"Invalid {name}: {value!r} (one of {', '.join(options)})")
    return value


def _ids(request: SandboxRequest, name: str = "ids") -> set[str] | None:
    values = request.args(name)
    if not values:
        return None
    if len(values) > MAX_IDS:
        raise BadRequest(f"{name} takes up to {MAX_IDS} ids")
    return {str(_int(v, name)) for v in values}


def _updated(request: SandboxRequest) -> Callable[[Mapping[str, Any]], bool]:
    """`updated_since` (update_time >=) and `updated_until` (update_time <)."""
    since, until = request.arg("updated_since"), request.arg("updated_until")
    low = pd_stamp(since, "updated_since") if since else None
    high = pd_stamp(until, "updated_until") if until else None

    def keep(record: Mapping[str, Any]) -> bool:
        stamp = str(record.get("update_time") or "")
        return (low is None or stamp >= low) and (high is None or stamp < high)

    return keep


class _Sorted:
    """A list's `sort_by`, `sort_direction` and `cursor`, read and checked once."""

    def __init__(self, request: SandboxRequest, sorts: tuple[str, ...], shape: tuple[type, ...]):
        self.by = _choice(request, "sort_by", sorts, "id")
        self.descending = _choice(request, "sort_direction", _DIRECTIONS, "asc") == "desc"
        self.shape = (int,) if self.by == "id" else shape
        cursor = request.arg("cursor")
        self.after = decode_cursor(cursor, self.by, self.shape) if cursor else None

    def cursor(self, key: Key | None) -> str | None:
        return None if key is None else encode_cursor(self.by, key)


def _any(_: object) -> bool:
    return True


def _records_key(by: str) -> Callable[[Mapping[str, Any]], Key]:
    if by == "id":
        return lambda r: (int(r["id"]),)
    return lambda r: (r.get(by) if r.get(by) is not None else "", int(r["id"]))


class V2Api:
    def __init__(self, host: Host) -> None:
        self.host = host

    @property
    def store(self) -> DealStore:
        return self.host.store

    def _guarded(self, handler: Handler) -> Handler:
        """A write handler whose store refusals answer in the error body."""

        def run(request: SandboxRequest) -> SandboxResponse:
            try:
                return handler(request)
            except (WriteError, OrgError) as exc:
                return self.host.error(exc.status, "invalid", exc.message)

        return run

    # -- deals ------------------------------------------------------------------------------

    def list_deals(self, request: SandboxRequest, *, archived: bool = False) -> SandboxResponse:
        include = included(request.arg("include_fields"))
        statuses = request.args("status")
        if any(s not in STATUSES for s in statuses):
            raise BadRequest(f"Invalid status: {request.arg('status')!r}")
        status = ",".join(sorted(set(statuses))) or "all_not_deleted"
        sort = _Sorted(request, _SORTS, (str, int))
        wanted: dict[str, set[str]] = {}
        for param, field in (("ids", "id"), ("owner_id", "user_id"), ("org_id", "org_id")):
            if (given := _ids(request, param)) is not None:
                wanted[field] = given
        for field in ("person_id", "pipeline_id", "stage_id"):
            if (given := _ids(request, field)) is not None:
                wanted[field] = given
        deals = self.store.deals
        hidden = set(self.host.fault_state.faults.hidden_deals)
        fields, updated = deal_filter(wanted), _updated(request)
        ordered = self.store.view(status, _DEAL_VIEWS[sort.by], archived=archived)
        key: Callable[[int], Key]
        if sort.by == "id":
            key = lambda i: (i,)  # noqa: E731
        elif sort.by == "update_time":
            key = self.store.update_key
        else:
            key = lambda i: (deals[i].get("add_time") or "", i)  # noqa: E731
        ids, last = page(
            ordered,
            key,
            sort.after,
            descending=sort.descending,
            keep=lambda i: fields(deals[i]) and updated(deals[i]) and str(i) not in hidden,
            limit=_limit(request),
        )
        if sort.after is not None and self.host.fault_state.faults.pages_past_first_empty:
            ids = []
        return _ok([self._shown(deals[i], include) for i in ids], sort.cursor(last), listed=True)

    def _shown(
        self, deal: Mapping[str, Any], include: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """`deal_v2`, without the custom fields the account does not define (fault)."""
        shown = deal_v2(deal, include)
        if undefined := set(self.host.fault_state.faults.undefined_properties):
            customs = shown["custom_fields"].items()
            shown["custom_fields"] = {k: v for k, v in customs if k not in undefined}
        return shown

    def _deal(self, request: SandboxRequest) -> tuple[int, dict[str, Any]]:
        deal_id = _int(request.params["id"], "id")
        deal = self.store.deals.get(deal_id)
        if deal is None:
            raise WriteError(404, "Deal not found")
        if str(deal_id) in self.host.fault_state.faults.hidden_deals:
            raise WriteError(403, "You do not have permissions to view this deal")
        return deal_id, deal

    def get_deal(self, request: SandboxRequest) -> SandboxResponse:
        include = included(request.arg("include_fields"))
        return _ok(self._shown(self._deal(request)[1], include))

    def _body(self, request: SandboxRequest) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        return write_body(body)

    def patch_deal(self, request: SandboxRequest) -> SandboxResponse:
        deal_id, old = self._deal(request)
        body = self._body(request)
        if self.host.injected([str(deal_id)]):
            return self.host.error(400, "injected", "Injected failure: deal rejected")
        deleted = body.pop("is_deleted", None)
        if deleted is False and old["status"] == "deleted":
            # v2's update body carries `is_deleted`: false restores (the one edit a deleted
            # deal takes, as v1's status-only PUT); with other fields it is refused as v1 does.
            if body:
                raise WriteError(400, "A deleted deal cannot be edited: restore it first")
            return _ok(self._shown(self.store.restore(deal_id)))
        if deleted is True:
            # v2 migration guide: "It is no longer possible to use PATCH (former PUT) requests
            # to delete an entity"; a client that tries must hear so from the sandbox too.
            raise WriteError(400, "A deal cannot be deleted by PATCH: use DELETE")
        refused = self.host.fault_state.faults.close_date_not_nullable
        if refused and "expected_close_date" in body and body["expected_close_date"] is None:
            raise WriteError(400, "Invalid expected_close_date: None is not a string")
        return _ok(self._shown(self.store.api_update(deal_id, body)))

    def post_deal(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        body.pop("is_deleted", None)  # a new deal is not deleted, whatever it says
        if self.host.injected([v for v in body.values() if isinstance(v, str)]):
            return self.host.error(400, "injected", "Injected failure: deal rejected")
        if self.host.fault_state.faults.deal_needs_party and not (
            body.get("person_id") or body.get("org_id")
        ):
            return self.host.error(
                400, "invalid", "Deal must be linked to a person or an organization"
            )
        return _ok(self._shown(self.store.create(body)))

    def search_deals(self, request: SandboxRequest) -> SandboxResponse:
        """Exact match on custom-field values only, as the v1 search of the sandbox."""
        exact = _choice(request, "exact_match", ("true", "false"), "false") == "true"
        term = (request.arg("term") or "").strip()
        if len(term) < (1 if exact else 2):
            raise BadRequest("term must be at least 2 characters long (1 with exact_match)")
        if request.arg("fields") != "custom_fields" or not exact:
            raise BadRequest("the sandbox searches with fields=custom_fields&exact_match=true only")
        return self._search(request, self.store.search_link(term), self._deal_item)

    def _deal_item(self, deal_id: int) -> dict[str, Any]:
        deal = self.store.deals[deal_id]
        item = self.store.search_item(deal)
        org = deal.get("org_id")
        if isinstance(org, Mapping):
            item["organization"] = {"id": org.get("value"), "name": org.get("name")}
        visible = item["visible_to"]  # v1 stores it as text; v2 writes integers
        item["visible_to"] = None if visible is None else int(visible)
        return {**item, "is_archived": bool(deal.get("is_archived"))}

    def _search(
        self, request: SandboxRequest, ids: list[int], item: Callable[[int], dict[str, Any]]
    ) -> SandboxResponse:
        cursor = request.arg("cursor")
        after = decode_cursor(cursor, "id", (int,)) if cursor else None
        found, last = page(
            ids, lambda i: (i,), after, descending=False, keep=bool, limit=_limit(request)
        )
        items = [{"result_score": 1.0, "item": item(i)} for i in found]
        next_cursor = None if last is None else encode_cursor("id", last)
        return _ok({"items": items}, next_cursor, listed=True)

    # -- metadata -----------------------------------------------------------------------------

    def _listed(
        self,
        request: SandboxRequest,
        records: list[Mapping[str, Any]],
        render: Callable[[Mapping[str, Any]], dict[str, Any]],
        sorts: tuple[str, ...],
        shape: tuple[type, ...],
        keep: Callable[[Mapping[str, Any]], bool] = lambda r: True,
    ) -> SandboxResponse:
        sort = _Sorted(request, sorts, shape)
        key = _records_key(sort.by)
        ordered = sorted(records, key=key)
        found, last = page(
            ordered, key, sort.after, descending=sort.descending, keep=keep, limit=_limit(request)
        )
        return _ok([render(r) for r in found], sort.cursor(last), listed=True)

    def pipelines(self, request: SandboxRequest) -> SandboxResponse:
        # v1 lists deleted pipelines (`active` false) too, and no v2 parameter asks for them
        # apart: v2 lists them as well, with `is_deleted` true (unverified).
        return self._listed(request, self.store.pipelines, pipeline_v2, _SORTS, (str, int))

    def stages(self, request: SandboxRequest) -> SandboxResponse:
        stages: list[Mapping[str, Any]] = list(self.store.stages.values())
        if (pipeline := request.arg("pipeline_id")) not in (None, ""):
            wanted = _int(str(pipeline), "pipeline_id")
            stages = [s for s in stages if int(s["pipeline_id"]) == wanted]
        by = request.arg("sort_by")
        shape = (int, int) if by == "order_nr" else (str, int)
        return self._listed(request, stages, stage_v2, (*_SORTS, "order_nr"), shape)

    def deal_fields(self, request: SandboxRequest) -> SandboxResponse:
        """The account's deal fields: a few standard ones, and as custom fields crmsync's
        three and any other key a stored deal carries, less those it does not define (fault).
        Listed by `field_code`, cursor-paged (v2 spec: limit default 100, at most 500)."""
        undefined = set(self.host.fault_state.faults.undefined_properties)
        customs = custom_keys(self.store.deals.values()) - undefined
        fields = [*STANDARD_FIELDS, *(custom_field(k) for k in sorted(customs))]
        cursor = request.arg("cursor")
        after = decode_cursor(cursor, "field_code", (int,)) if cursor else None
        found, last = page(
            range(len(fields)),
            lambda n: (n,),
            after,
            descending=False,
            keep=_any,
            limit=_limit(request),
        )
        next_cursor = None if last is None else encode_cursor("field_code", last)
        return _ok([fields[n] for n in found], next_cursor, listed=True)

    # -- organizations ----------------------------------------------------------------------

    def organizations(self, request: SandboxRequest) -> SandboxResponse:
        wanted: dict[str, set[str]] = {}
        if (ids := _ids(request)) is not None:
            wanted["id"] = ids
        if (owners := _ids(request, "owner_id")) is not None:
            wanted["owner_id"] = owners
        fields, updated = deal_filter(wanted), _updated(request)
        # Deleted organizations are left out, as `ids` says of those that "do not exist"
        # (unverified: the docs do not say what the list does with deleted ones); read by
        # id, one still answers, `is_deleted` true.
        orgs: list[Mapping[str, Any]] = [
            o for o in self.store.orgs.orgs.values() if o.get("active_flag", True)
        ]
        return self._listed(
            request, orgs, org_v2, _SORTS, (str, int), lambda o: fields(o) and updated(o)
        )

    def organization(self, request: SandboxRequest) -> SandboxResponse:
        org = self.store.orgs.orgs.get(_int(request.params["id"], "id"))
        if org is None:
            return self.host.error(404, "not_found", "Organization not found")
        return _ok(org_v2(org))

    def create_organization(self, request: SandboxRequest) -> SandboxResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        if not isinstance(body.get("name"), str):
            raise BadRequest(f"Invalid name: {body.get('name')!r} is not a string")
        owner = body.get("owner_id")
        if owner is not None and (not isinstance(owner, int) or isinstance(owner, bool)):
            raise BadRequest(f"Invalid owner_id: {owner!r} is not an integer")
        check_injected(body, self.host.fault_state.faults.fail_ids)
        return _ok(org_v2(self.store.orgs.create({"name": body["name"], "owner_id": owner})))

    def search_organizations(self, request: SandboxRequest) -> SandboxResponse:
        if self.host.search_refusal is not None:
            raise BadRequest(self.host.search_refusal)
        exact = _choice(request, "exact_match", ("true", "false"), "false") == "true"
        term = (request.arg("term") or "").strip()
        if len(term) < (1 if exact else 2):
            raise BadRequest("term must be at least 2 characters long (1 with exact_match)")
        if (request.arg("fields") or "name") != "name":
            raise BadRequest("the sandbox searches organizations with fields=name only")
        orgs = self.store.orgs.orgs
        return self._search(request, self.store.orgs.named(term), lambda i: search_item(orgs[i]))

    # -- routes -------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The v2 operations, each with its `x-token-cost` (Pipedrive's v2 OpenAPI document)."""
        guarded = self._guarded
        return [
            Route("GET", f"{V2}/pipelines", self.pipelines, 5),
            Route("GET", f"{V2}/stages", self.stages, 5),
            Route("GET", f"{V2}/deals", guarded(self.list_deals), 10),
            Route("POST", f"{V2}/deals", guarded(self.post_deal), 5),
            Route("GET", f"{V2}/deals/search", self.search_deals, 20),
            Route("GET", f"{V2}/deals/archived", lambda r: self.list_deals(r, archived=True), 20),
            Route("GET", f"{V2}/deals/{{id}}", guarded(self.get_deal), 1),
            Route("PATCH", f"{V2}/deals/{{id}}", guarded(self.patch_deal), 5),
            # The answer is v1's ({"id"}); so are its 404 and 410.
            Route("DELETE", f"{V2}/deals/{{id}}", self.host.delete_deal, 3),
            Route("GET", f"{V2}/dealFields", self.deal_fields, 10),
            Route("GET", f"{V2}/organizations", self.organizations, 10),
            Route("POST", f"{V2}/organizations", guarded(self.create_organization), 5),
            Route("GET", f"{V2}/organizations/search", self.search_organizations, 20),
            Route("GET", f"{V2}/organizations/{{id}}", self.organization, 1),
        ]


def v2_routes(host: Host) -> list[Route]:
    return V2Api(host).routes()
