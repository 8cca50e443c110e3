"""HubSpot CRM emulator: pipelines, owners, account details, deals (list, get, patch, search,
batch), companies (list, search, batch read) and deal -> company associations (the v4 batch
read). Each is served on its v3 (v4) path and on the date-versioned paths of API_VERSIONS
(`/crm/objects/2026-09/deals`, `/crm/owners/2026-09`, ...) by one handler: the same answers,
the same faults, as HubSpot's references document the same bodies for both.

Speaks the wire format hubspot-api-client 12 expects (see API-NOTES.md §1): bearer auth, the
`{"results", "paging": {"next": {"after"}}}` envelope, HubSpot's error and 429 bodies, its
rate-limit headers (left off search responses, as HubSpot does), search's own per-second
limit and its 10,000-result cap, and 207 multi-status batch answers with per-record errors.
"""

from __future__ import annotations

import collections
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.sandbox.faults import FaultState
from connectors.sandbox.hubspot_companies import (
    ASSOCIATIONS_BATCH,
    ASSOCIATIONS_READ,
    none_found,
    v4_result,
)
from connectors.sandbox.hubspot_search import SearchError, SearchQuery, epoch_ms, parse_search
from connectors.sandbox.hubspot_store import COMPANY_DEFAULTS, DealStore, WriteError
from connectors.sandbox.server import BadRequest, Route, SandboxRequest, SandboxResponse

__all__ = ["HubSpotEmulator"]

# The date versions served besides v3 (and v4's associations): HubSpot's first (2026-03) and
# the one crmsync speaks (2026-09). Each path is its own route, so a version never released is
# a 404 and the request statistics count each version apart.
API_VERSIONS = ("2026-03", "2026-09")
RULES_ENFORCED_FROM = "2026-09"  # the first version to enforce an admin's rules on writes
_DATED = re.compile(r"\d{4}-\d{2}")


def _served(api: str, v3: str) -> tuple[str, ...]:
    """`v3` and its date-versioned forms, `api` followed by the version: ("/crm/objects",
    "/crm/v3/objects") -> "/crm/v3/objects", "/crm/objects/2026-03", "/crm/objects/2026-09"."""
    return (v3, *(f"{api}/{version}" for version in API_VERSIONS))


_OBJECTS = _served("/crm/objects", "/crm/v3/objects")
_DEALS = tuple(f"{o}/{n}" for o in _OBJECTS for n in ("deals", "0-3"))  # 0-3: deals' type id
_COMPANIES = tuple(f"{o}/{n}" for o in _OBJECTS for n in ("companies", "0-2"))
# How an object type may be named in a path or an `associations` parameter.
_DEAL_NAMES, _COMPANY_NAMES = {"deals", "deal", "0-3"}, {"companies", "company", "0-2"}
MAX_PAGE, MAX_BATCH, DAILY_LIMIT = 100, 100, 250_000


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class HubSpotEmulator:
    system = "hubspot"
    rate_limit = 100  # Free/Starter: 100 requests per rolling 10 s
    rate_window = 10.0

    def __init__(
        self,
        data: Mapping[str, Any],
        token: str,
        *,
        search_cap: int = 10_000,
        search_rate: tuple[int, float] = (5, 1.0),
    ) -> None:
        self._data, self._token = data, token
        self.search_cap, self.search_rate = search_cap, search_rate
        self.lock = threading.RLock()
        self.fault_state = FaultState()
        self._quiet = threading.local()  # set while answering a search: no rate-limit headers
        self._search_stamps: collections.deque[float] = collections.deque()
        self._search_cache: dict[tuple[object, ...], list[Mapping[str, Any]]] = {}
        # The portal's time zone (Settings > Account Defaults): the dataset's optional
        # `account.timeZone`; tests set it to emulate a portal elsewhere.
        account = data.get("account")
        zone = account.get("timeZone") if isinstance(account, Mapping) else None
        self.time_zone = str(zone or "UTC")
        # The portal's company currency (Settings > Account Defaults > Currency), the currency
        # of a deal without `deal_currency_code`: the dataset's optional
        # `account.companyCurrency`; tests set it to emulate a portal in another currency.
        currency = account.get("companyCurrency") if isinstance(account, Mapping) else None
        self.company_currency = str(currency or "USD")
        self.account_scope = True  # False: the token lacks the scope account-info needs
        # (status, body) account-info answers instead, when set: tests of a malformed or
        # hostile answer (a body that is no object, a message with escape codes).
        self.account_answer: tuple[int, Any] | None = None
        # A message search answers with a 400 when set: tests of a lookup HubSpot refuses.
        self.search_refusal: str | None = None
        # Companies per deal in an associations batch read's answer (then the deal's `paging`);
        # None: all, as HubSpot, which documents no page size, answers hundreds at once.
        self.associations_page: int | None = None
        self.companies_scope = True  # False: the token lacks crm.objects.companies.read
        # What a deals read asking `associations=companies` answers such a token; no document
        # or public thread says: "shown" (the companies' ids; their names are refused),
        # "omitted" (the deals without associations) or "refused" (403 MISSING_SCOPES).
        self.unscoped_associations = "shown"
        # (property, when property, is value): a portal admin's conditional-required rule,
        # which HubSpot enforces on API writes from 2026-09 on, with a 400 VALIDATION_ERROR
        # (changelog "Breaking Change: CRM API Write Validation Enforcement Starting with the
        # 2026-09 API Version"); writes on v3 and 2026-03 ignore it. None: no rule.
        self.required_when: tuple[str, str, str] | None = None
        # The longest request target (path and query) HubSpot's front end takes; a longer one
        # gets 414 and an HTML page, not HubSpot's JSON error. HubSpot documents no limit;
        # integrations met it past 8,000 characters (dlt-hub/verified-sources#305) and "just
        # around 16.2k" (PostHog/posthog#31617). None: no limit.
        self.max_request_target: int | None = 16_000
        self.reset()

    def reset(self) -> None:
        self.store = DealStore(self._data)
        self._search_cache.clear()

    def purge_deleted(self) -> int:
        purged = self.store.purge_deleted()
        self._search_cache.clear()
        return purged

    def restore_deleted(self, ids: Sequence[str]) -> list[str]:
        restored = [i for i in ids if i in self.store.archived]
        for deal_id in restored:
            self.store.restore(deal_id)
        return restored

    def dump(self) -> dict[str, Any]:
        data = self.store.dump()
        # so a dataset dumped from a portal elsewhere, or in another currency, stays so
        account = {"timeZone": self.time_zone, "companyCurrency": self.company_currency}
        changed = {k: v for k, v in account.items() if v != {"timeZone": "UTC"}.get(k, "USD")}
        if changed:
            data["account"] = changed
        return data

    # -- the Emulator protocol ------------------------------------------------------------------

    def routes(self) -> list[Route]:
        routes = [Route("GET", "/crm/v3/owners/", self._owners)]
        for pipelines in _served("/crm/pipelines", "/crm/v3/pipelines"):
            routes += [
                Route("GET", f"{pipelines}/deals", self._pipelines),
                Route("GET", pipelines + "/deals/{pipelineId}", self._pipeline),
            ]
        routes += [
            Route("GET", path, self._owners) for path in _served("/crm/owners", "/crm/v3/owners")
        ]
        accounts = _served("/account-info", "/account-info/v3")
        routes += [Route("GET", f"{path}/details", self._account) for path in accounts]
        associations = _served("/crm/associations", "/crm/v4/associations")
        routes += [
            Route("POST", path + ASSOCIATIONS_READ, self._associations_read)
            for path in associations
        ]
        for base in _COMPANIES:
            routes += [
                Route("GET", base, self._list_companies),
                Route("POST", f"{base}/search", self._search_companies),
                Route("POST", f"{base}/batch/read", self._companies_read),
            ]
        for base in _DEALS:
            routes += [
                Route("GET", base, self._list),
                Route("POST", f"{base}/search", self._search),
                Route("POST", f"{base}/batch/read", self._batch_read),
                Route("POST", f"{base}/batch/update", self._batch_update),
                Route("POST", f"{base}/batch/create", self._batch_create),
                Route("POST", f"{base}/batch/archive", self._batch_archive),
                Route("GET", base + "/{dealId}", self._get),
                Route("PATCH", base + "/{dealId}", self._patch),
            ]
        return routes

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        target = len(request.path) + len(urlencode(request.query, doseq=True)) + 1
        if self.max_request_target is not None and target > self.max_request_target:
            page = b"<html><head><title>414 Request-URI Too Large</title></head><body>"
            page += b"<center><h1>414 Request-URI Too Large</h1></center></body></html>"
            return SandboxResponse(414, page, {"Content-Type": "text/html"})
        if request.headers.get("authorization") == f"Bearer {self._token}":
            return None
        return self.error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )

    def error(self, status: int, code: str, message: str) -> SandboxResponse:
        category = {400: "VALIDATION_ERROR", 404: "OBJECT_NOT_FOUND"}.get(status, code)
        if code in ("INVALID_AUTHENTICATION", "OBJECT_NOT_FOUND", "VALIDATION_ERROR"):
            category = code
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            "errors": [],
            "context": {},
            "links": {},
        }
        return SandboxResponse(status, body)

    def too_many_requests(self, retry_after: float) -> SandboxResponse:
        return self._rate_limited("ten_secondly_rolling", "TEN_SECONDLY_ROLLING", retry_after)

    def window_exceeded(self, retry_after: float) -> SandboxResponse:
        """The real ten-second limit: HubSpot's 429 for it usually has no Retry-After (API-NOTES
        §1, spec TooManyRequests), only X-HubSpot-RateLimit-Remaining: 0 and the interval to
        wait on. Injected 429s (burst429, rate429) keep theirs."""
        response = self.too_many_requests(retry_after)
        response.headers.pop("Retry-After", None)
        return response

    def _rate_limited(self, limit: str, policy: str, retry_after: float) -> SandboxResponse:
        body = {
            "status": "error",
            "message": f"You have reached your {limit} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
        }
        # Whole seconds as HTTP wants them (urllib3 refuses "0.5"); sub-second values only come
        # from test fault settings, which want fast retries more than strict format.
        after = str(math.ceil(retry_after)) if retry_after >= 1 else f"{retry_after:g}"
        return SandboxResponse(429, body, {"Retry-After": after})

    def limit_headers(self, used: int, limit: int, window: float) -> dict[str, str]:
        if getattr(self._quiet, "search", False):
            self._quiet.search = False
            return {}
        secondly = max(1, round(limit / window))
        daily_used = self.fault_state.api_calls
        daily = self.fault_state.faults.daily_limit or DAILY_LIMIT
        return {
            "X-HubSpot-RateLimit-Daily": str(daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily - daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(window * 1000)),
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, limit - used)),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - 1)),
        }

    def daily_limit_exceeded(self) -> SandboxResponse:
        return self._rate_limited("daily", "DAILY", 0)

    def session_expired(self) -> SandboxResponse | None:
        return self.error(
            401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired."
        )

    # -- pipelines and owners ----------------------------------------------------------------

    def _account(self, request: SandboxRequest) -> SandboxResponse:
        if self.account_answer is not None:
            return SandboxResponse(*self.account_answer)
        if not self.account_scope:
            return self.error(
                403, "MISSING_SCOPES", "This app hasn't been granted all required scopes."
            )
        try:
            offset = datetime.now(UTC).astimezone(ZoneInfo(self.time_zone)).utcoffset()
        except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown: answered as it is, +00:00
            offset = None
        ms = int(offset.total_seconds() * 1000) if offset is not None else 0
        sign, minutes = ("-" if ms < 0 else "+"), abs(ms) // 60_000
        body = {
            "portalId": 62515,
            "accountType": "STANDARD",
            "timeZone": self.time_zone,
            "companyCurrency": self.company_currency,
            "additionalCurrencies": [],
            "utcOffset": f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
            "utcOffsetMilliseconds": ms,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }
        return SandboxResponse(200, body)

    def _pipelines(self, request: SandboxRequest) -> SandboxResponse:
        shown = [p for p in self.store.pipelines if not p.get("archived")]
        return SandboxResponse(200, {"results": shown})

    def _pipeline(self, request: SandboxRequest) -> SandboxResponse:
        for pipeline in self.store.pipelines:
            if str(pipeline["id"]) == request.params["pipelineId"]:
                return SandboxResponse(200, pipeline)
        return self.error(
            404, "OBJECT_NOT_FOUND", f"Pipeline {request.params['pipelineId']} not found."
        )

    def _owners(self, request: SandboxRequest) -> SandboxResponse:
        limit = _int(request.arg("limit"), 100, "limit", 1, 500)
        offset = _int(request.arg("after"), 0, "after", 0, None)
        archived = _archived(request)
        email = (request.arg("email") or "").lower()
        owners = [
            o
            for o in self.store.owners
            if bool(o.get("archived")) == archived
            and (not email or str(o.get("email") or "").lower() == email)
        ]
        body: dict[str, Any] = {"results": owners[offset : offset + limit]}
        if offset + limit < len(owners):
            body["paging"] = _next(str(offset + limit), request.path)
        return SandboxResponse(200, body)

    # -- deals: reads -----------------------------------------------------------------------

    def _list(self, request: SandboxRequest) -> SandboxResponse:
        limit = _int(request.arg("limit"), 10, "limit", 1, MAX_PAGE)
        after = _int(request.arg("after"), 0, "after", 0, None)
        archived = _archived(request)
        if _with_companies(request) and self._unscoped() == "refused":
            return self._missing_scope()
        deals, more = self.store.page(archived, after, limit)
        properties = request.args("properties")
        shown = [self._view(d, properties) for d in deals]
        if _with_companies(request) and self._unscoped() != "omitted":
            shown = [self.store.with_companies(d) for d in shown]
        body: dict[str, Any] = {"results": shown}
        if more is not None:
            body["paging"] = _next(str(more), request.path)
        return SandboxResponse(200, body)

    def _get(self, request: SandboxRequest) -> SandboxResponse:
        table = self.store.archived if _archived(request) else self.store.live
        deal = table.get(request.params["dealId"])
        if deal is None:
            return self.error(404, "OBJECT_NOT_FOUND", "resource not found")
        if _with_companies(request) and self._unscoped() == "refused":
            return self._missing_scope()
        shown = self._view(deal, request.args("properties"))
        if _with_companies(request) and self._unscoped() != "omitted":
            shown = self.store.with_companies(shown)
        return SandboxResponse(200, shown)

    def _unscoped(self) -> str | None:
        """How a read asking for companies is answered without the scope (None: it has it)."""
        return None if self.companies_scope else self.unscoped_associations

    def _search(self, request: SandboxRequest) -> SandboxResponse:
        return self._searched(request, "deals", self.store.live.values)

    def _searched(
        self,
        request: SandboxRequest,
        kind: str,
        records: Callable[[], Iterable[Mapping[str, Any]]],
        shown: Sequence[str] = (),
    ) -> SandboxResponse:
        """A search of `kind` (deals, companies) over `records`; `shown`: the properties a
        request naming none gets (the deals' defaults when empty)."""
        self._quiet.search = True
        if self._search_throttled():
            return self._rate_limited("secondly", "SECONDLY", self.search_rate[1])
        if self.search_refusal is not None:
            return self.error(400, "VALIDATION_ERROR", self.search_refusal)
        try:
            query = parse_search(request.json(), self.search_cap)
        except SearchError as exc:
            return self.error(400, "VALIDATION_ERROR", str(exc))
        found = self._indexed(self._matches(query, kind, records))
        end = min(query.offset + query.limit, len(found), self.search_cap)
        page = found[query.offset : end]
        properties = query.properties or tuple(shown)
        body: dict[str, Any] = {
            "total": len(found),
            "results": [self._view(d, properties) for d in page],
        }
        if end < len(found):
            # Handed out even at the cap, as HubSpot does: using it is the 400.
            body["paging"] = _next(str(end), "")
        return SandboxResponse(200, body)

    def _indexed(self, found: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """What search sees with the search_lag fault: a deal changed within the lag is left
        out (not yet indexed) rather than shown as it was; reads and batch/read see it."""
        lag = self.fault_state.faults.search_lag
        if lag <= 0:
            return found
        cutoff = time.time() * 1000 - lag * 1000
        stamps = ((d, d["properties"].get("hs_lastmodifieddate") or "") for d in found)
        return [d for d, stamp in stamps if (epoch_ms(stamp) or 0) <= cutoff]

    def _search_throttled(self) -> bool:
        """Search's own per-second limit, enforced when the rate-limit fault is on."""
        if not self.fault_state.faults.enforce_rate_limit:
            return False
        limit, window = self.search_rate
        now = time.monotonic()
        stamps = self._search_stamps
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if len(stamps) >= limit:
            return True
        stamps.append(now)
        return False

    def _matches(
        self,
        query: SearchQuery,
        kind: str,
        records: Callable[[], Iterable[Mapping[str, Any]]],
    ) -> list[Mapping[str, Any]]:
        # Paging re-runs the same query; cached per data version, so a page is a slice.
        key = (self.store.version, kind, *query.signature)
        found = self._search_cache.get(key)
        if found is None:
            found = query.run(records())
            self._search_cache.clear()
            self._search_cache[key] = found
        return found

    # -- companies --------------------------------------------------------------------------

    def _associations_read(self, request: SandboxRequest) -> SandboxResponse:
        """Batch read of deals' companies (the only pair the emulator holds), v4 or dated."""
        if not self.companies_scope:
            return self._missing_scope()
        pair = (request.params["fromObjectType"].lower(), request.params["toObjectType"].lower())
        if pair[0] not in _DEAL_NAMES or pair[1] not in _COMPANY_NAMES:
            return self.error(400, "VALIDATION_ERROR", f"Unsupported object types {pair}.")
        inputs = _obj(request.json()).get("inputs")
        if not isinstance(inputs, list):
            raise BadRequest("The request body needs an 'inputs' list.")
        if len(inputs) > ASSOCIATIONS_BATCH:
            raise BadRequest(
                f"Batch size {len(inputs)} is over the limit of {ASSOCIATIONS_BATCH} inputs."
            )
        results, missing = [], []
        for item in inputs:
            deal_id, after = str(_obj(item).get("id")), _int(item.get("after"), 0, "after", 0, None)
            companies = list((self.store.companies_of.of.get(deal_id) or {}).items())
            if deal_id not in self.store.live or not companies:
                missing.append(deal_id)
                continue
            end = after + (self.associations_page or len(companies))
            result = v4_result(deal_id, dict(companies[after:end]))
            if end < len(companies):
                result["paging"] = _next(str(end), "")
            results.append(result)
        return _batch(results, none_found(missing), 200)

    def _search_companies(self, request: SandboxRequest) -> SandboxResponse:
        """Companies by the same search semantics as deals (a company renamed is modified,
        its deals are not: their hs_lastmodifieddate stays)."""
        if not self.companies_scope:
            return self._missing_scope()
        return self._searched(request, "companies", self.store.live_companies, COMPANY_DEFAULTS)

    def _list_companies(self, request: SandboxRequest) -> SandboxResponse:
        if not self.companies_scope:
            return self._missing_scope()
        limit = _int(request.arg("limit"), 10, "limit", 1, MAX_PAGE)
        after = _int(request.arg("after"), 0, "after", 0, None)
        companies, more = self.store.companies_page(after, limit)
        properties = request.args("properties") or list(COMPANY_DEFAULTS)
        body: dict[str, Any] = {"results": [self._view(c, properties) for c in companies]}
        if more is not None:
            body["paging"] = _next(str(more), request.path)
        return SandboxResponse(200, body)

    def _missing_scope(self) -> SandboxResponse:
        """HubSpot's 403 for a token without crm.objects.companies.read: the scopes it lacks
        are in `errors[].context.requiredGranularScopes`, as integrations quote it."""
        response = self.error(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
        )
        response.body["errors"] = [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": ["crm.objects.companies.read"]},
            }
        ]
        return response

    def _companies_read(self, request: SandboxRequest) -> SandboxResponse:
        if not self.companies_scope:
            return self._missing_scope()
        body = _obj(request.json())
        inputs = self._inputs(request)
        names = list(body.get("properties") or ()) or ["name", "domain"]
        results, missing = [], []
        for item in inputs:
            company = self.store.companies.get(str(_obj(item).get("id")))
            if company is None or company.get("archived"):
                missing.append(str(_obj(item).get("id")))
                continue
            props = company.get("properties") or {}
            shown = {n: props.get(n) for n in (*names, "createdate", "hs_lastmodifieddate")}
            shown["hs_object_id"] = company["id"]
            results.append({**company, "properties": shown})
        error = _record_error("OBJECT_NOT_FOUND", "Could not get some COMPANY objects", missing)
        return _batch(results, [error] if missing else [], 200)

    # -- deals: writes ----------------------------------------------------------------------

    def _patch(self, request: SandboxRequest) -> SandboxResponse:
        body = request.json()
        try:
            deal = self.store.update(request.params["dealId"], _obj(body).get("properties"))
        except WriteError as exc:
            status = 404 if exc.category == "OBJECT_NOT_FOUND" else 400
            return self.error(status, exc.category, exc.message)
        return SandboxResponse(200, self._view(deal, list(deal["properties"])))

    def _inputs(self, request: SandboxRequest) -> list[Any]:
        inputs = _obj(request.json()).get("inputs")
        if not isinstance(inputs, list):
            raise BadRequest("The request body needs an 'inputs' list.")
        if len(inputs) > MAX_BATCH:
            raise BadRequest(f"Batch size {len(inputs)} is over the limit of {MAX_BATCH} inputs.")
        return inputs

    def _batch_read(self, request: SandboxRequest) -> SandboxResponse:
        body = _obj(request.json())
        inputs = self._inputs(request)
        table = self.store.archived if _archived(request) else self.store.live
        properties = body.get("properties") or ()
        results, missing = [], []
        for item in inputs:
            deal = table.get(str(_obj(item).get("id")))
            if deal is None:
                missing.append(str(_obj(item).get("id")))
            else:
                results.append(self._view(deal, properties))
        errors = [_record_error("OBJECT_NOT_FOUND", "Could not get some DEAL objects", missing)]
        return _batch(results, errors if missing else [], 200)

    def _view(self, record: Mapping[str, Any], properties: Iterable[str] | None) -> dict[str, Any]:
        """`DealStore.view`, leaving out the properties the portal does not define (fault)."""
        undefined = self.fault_state.faults.undefined_properties
        if properties is not None and undefined:
            properties = [p for p in properties if p not in undefined]
        return self.store.view(record, properties)

    def _injected(self, key: str | None) -> bool:
        faults = self.fault_state.faults
        return (key is not None and key in faults.fail_ids) or self.fault_state.draw(
            faults.record_fail
        )

    def _refused_whole(
        self, inputs: list[Any], check: Callable[[dict[str, Any]], object], key: str
    ) -> SandboxResponse | None:
        """With the batch_refused_whole fault: the 400 for the batch's first invalid input."""
        if not self.fault_state.faults.batch_refused_whole:
            return None
        for item in inputs:
            item = _obj(item)
            try:
                if self._injected(None if item.get(key) is None else str(item.get(key))):
                    raise WriteError("VALIDATION_ERROR", "Injected failure: record rejected.")
                check(item)
            except WriteError as exc:
                if exc.category == "VALIDATION_ERROR":
                    return self.error(400, "VALIDATION_ERROR", exc.message)
        return None

    def _ruled(self, request: SandboxRequest, properties: Mapping[str, Any]) -> None:
        """WriteError when `required_when` refuses a deal that would have `properties`, on a
        path of a version that enforces it. HubSpot's wording of the refusal is not published:
        the message is the emulator's, naming the property and the rule."""
        rule = self.required_when
        dated = [p for p in request.path.split("/") if _DATED.fullmatch(p)]
        if rule is None or not dated or dated[0] < RULES_ENFORCED_FROM:
            return
        needed, when, value = rule
        if properties.get(when) == value and not properties.get(needed):
            raise WriteError(
                "VALIDATION_ERROR", f'Property "{needed}" is required when "{when}" is "{value}".'
            )

    def _checked_update(self, request: SandboxRequest, item: Mapping[str, Any]) -> None:
        _, merged = self.store.check_update(str(item.get("id")), item.get("properties"))
        self._ruled(request, merged)

    def _checked_create(self, request: SandboxRequest, item: Mapping[str, Any]) -> None:
        self._ruled(request, self.store.check_create(item.get("properties")))
        self.store.check_associations(item.get("associations"))

    def _batch_update(self, request: SandboxRequest) -> SandboxResponse:
        refused = self._refused_whole(
            self._inputs(request), lambda item: self._checked_update(request, item), "id"
        )
        if refused is not None:
            return refused
        whole = self.fault_state.faults.batch_refused_whole  # injected failures drawn above
        results: list[dict[str, Any]] = []
        failed: dict[tuple[str, str], list[str]] = {}
        unanswered = False
        for item in self._inputs(request):
            item = _obj(item)
            deal_id = str(item.get("id"))
            if deal_id in self.fault_state.faults.unanswered_ids:
                unanswered = True
                continue
            try:
                if not whole and self._injected(deal_id):
                    raise WriteError("VALIDATION_ERROR", "Injected failure: record rejected.")
                self._checked_update(request, item)
                deal = self.store.update(deal_id, item.get("properties"))
            except WriteError as exc:
                failed.setdefault((exc.category, exc.message), []).append(deal_id)
                continue
            results.append(self._view(deal, list(deal["properties"])))
        errors = [_record_error(cat, msg, ids) for (cat, msg), ids in failed.items()]
        return _batch(results, errors, 207 if unanswered else 200)

    def _batch_create(self, request: SandboxRequest) -> SandboxResponse:
        refused = self._refused_whole(
            self._inputs(request),
            lambda item: self._checked_create(request, item),
            "objectWriteTraceId",
        )
        if refused is not None:
            return refused
        whole = self.fault_state.faults.batch_refused_whole  # injected failures drawn above
        results: list[dict[str, Any]] = []
        failed: dict[tuple[str, str], list[str]] = {}
        for item in self._inputs(request):
            item = _obj(item)
            trace = item.get("objectWriteTraceId")
            try:
                if not whole and self._injected(None if trace is None else str(trace)):
                    raise WriteError("VALIDATION_ERROR", "Injected failure: record rejected.")
                self._checked_create(request, item)
                deal = self.store.create(item.get("properties"), item.get("associations"))
            except WriteError as exc:
                failed.setdefault((exc.category, exc.message), []).append(str(trace or ""))
                continue
            shown = self._view(deal, list(deal["properties"]))
            if trace is not None:
                shown["objectWriteTraceId"] = str(trace)
            results.append(shown)
        errors = [
            _record_error(cat, msg, [], {"objectWriteTraceId": [t for t in traces if t]})
            for (cat, msg), traces in failed.items()
        ]
        return _batch(results, errors, 201)

    def _batch_archive(self, request: SandboxRequest) -> SandboxResponse:
        """204 and no body, as HubSpot answers, even for unknown or already-archived ids.

        The archive has no multi-status answer: a record refused (injected failure) refuses
        the whole batch with one error naming it, and no deal of the batch is archived.
        """
        ids = [str(_obj(item).get("id")) for item in self._inputs(request)]
        refused = [i for i in ids if i in self.store.live and self._injected(i)]
        if refused:
            response = self.error(400, "VALIDATION_ERROR", "Injected failure: record rejected.")
            response.body["context"] = {"ids": refused}
            return response
        for deal_id in ids:
            self.store.archive(deal_id)
        return SandboxResponse(204)


def _with_companies(request: SandboxRequest) -> bool:
    # The SDK repeats the parameter (`associations=a&associations=b`); people write CSV.
    asked = {n.strip().lower() for v in request.args("associations") for n in v.split(",")}
    return bool(asked & _COMPANY_NAMES)


def _archived(request: SandboxRequest) -> bool:
    # The SDK sends Python's True as "True": read it as the list and owners handlers do.
    return (request.arg("archived") or "false").lower() == "true"


def _obj(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("Expected a JSON object.")
    return value


def _int(raw: str | None, default: int, name: str, low: int, high: int | None) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}.") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise BadRequest(f"{name} must be {bound}, got {value}.")
    return value


def _next(after: str, path: str) -> dict[str, Any]:
    return {"next": {"after": after, "link": f"https://api.hubapi.com{path}?after={after}"}}


def _record_error(
    category: str, message: str, ids: list[str], context: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context if context is not None else {"ids": ids},
        "errors": [],
        "links": {},
    }


def _batch(results: list[dict[str, Any]], errors: list[dict[str, Any]], ok: int) -> SandboxResponse:
    now = _iso_now()
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": now,
        "completedAt": now,
    }
    if errors:
        body["numErrors"] = sum(
            len(e["context"].get("ids") or e["context"].get("objectWriteTraceId") or [1])
            for e in errors
        )
        body["errors"] = errors
    return SandboxResponse(207 if errors else ok, body)
