"""HubSpot connector on hubspot-api-client, speaking HubSpot's date-versioned API (deals,
companies, pipelines, owners, account details at `hubspot_paths.API_VERSION`, 2026-09).

hubspot-api-client 12 wraps no dated path (its API classes hard-code /crm/v3), so every call
is a request of a path sent by the SDK's REST client (`_unwrapped`): urllib3, one connection
pool (keep-alive), the SDK's errors, which `classify` reads. Its own retries are switched off
(`retry=False`) so CallPolicy is the one retry policy. Responses are read raw
(`_preload_content=False`): the rate-limit headers feed the pacer and records stay plain
native dicts, without the SDK's model round-trip.

The connector holds that plumbing and the Connector protocol's methods; what they do is in
hubspot_reads (list and search pages), hubspot_writes (batch writes), hubspot_metadata
(pipelines, owners), hubspot_companies (a deal's companies), hubspot_company_lookup (the
company a copy is associated with) and hubspot_wire (pure wire facts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hubspot import HubSpot

from connectors.account_names import AccountMatch, name_key, with_match
from connectors.base import (
    CompanyCurrency,
    ConnectorSettings,
    NativeCreate,
    NativePipeline,
    NativeUpdate,
    PushResult,
    change_time,
)
from connectors.batches import chunks
from connectors.credentials import HubSpotToken
from connectors.errors import ApiError, ConnectorError, PermissionDenied
from connectors.http import CallPolicy, Pacer
from connectors.hubspot_companies import CompanyNames
from connectors.hubspot_company_lookup import Companies
from connectors.hubspot_metadata import pipelines_from_body, read_owners
from connectors.hubspot_paths import (
    ACCOUNT_DETAILS,
    DEAL_COMPANIES_READ,
    OWNERS,
    PIPELINES,
    objects,
)
from connectors.hubspot_reads import (
    IN_VALUES,
    SEARCH_CAP,
    ObjectReads,
    cursor_ms,
    epoch_ms,
    iso_time,
)
from connectors.hubspot_wire import (
    classify,
    logging_left_alone,
    next_after,
    query,
    rate_limit_info,
)
from connectors.hubspot_writes import BATCH, DealWrites
from connectors.named_fields import named_fields, require_defined
from connectors.pools import close_pools

__all__ = ["HubSpotConnector"]

DEFAULT_HOST = "https://api.hubapi.com"
BASE_PROPERTIES = (
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hubspot_owner_id",
    "deal_currency_code",
    "hs_is_closed",
    "hs_is_closed_won",
    "hs_forecast_probability",  # what crmsync writes a probability to (mapping/hubspot.py)
    "hs_deal_stage_probability",  # the stage's, read when the deal has no forecast
)


class HubSpotConnector:
    kind = "hubspot"
    # Archived (deleted) deals are listed, and can be restored, for 90 days.
    deletions_kept = timedelta(days=90)
    company_currency_names = CompanyCurrency(
        "the portal's",
        "company currency",
        "deals without a deal currency",
        "HubSpot's Settings > Account Defaults > Currency",
    )

    def __init__(self, settings: ConnectorSettings) -> None:
        if not isinstance(settings.credentials, HubSpotToken):
            raise TypeError(f"{settings.instance}: HubSpot needs HubSpotToken credentials")
        self.system = settings.instance
        self._settings = settings
        options = settings.options
        search_cap = int(options.get("search_cap", SEARCH_CAP))
        self.lookup_lag = self.lookup_lag_of(options)
        self._policy = CallPolicy.for_connector(settings, classify, (100, 10.0))
        # Search has its own per-second limit (and sends no rate-limit headers to pace by).
        search_limit, search_window = options.get("search_rate", (5, 1.1))
        self._search_pacer = Pacer(int(search_limit), float(search_window))
        config: dict[str, Any] = {"host": (settings.base_url or DEFAULT_HOST).rstrip("/")}
        if settings.ca_file is not None:
            config["ssl_ca_cert"] = str(settings.ca_file)
        with logging_left_alone():
            client = HubSpot(access_token=settings.credentials.access_token, retry=False, **config)
            # Every call goes through one REST client (`_unwrapped`): one pool, kept alive.
            api_client = client.crm.deals.basic_api.api_client
            self._rest = api_client.rest_client
            # as the SDK's own calls named themselves (hubspot-api-client-python; 12.0.0)
            self._user_agent = str(api_client.user_agent)
        self._pool = self._rest.pool_manager
        self._host = config["host"]
        self._deals = ObjectReads("deals", self._unwrapped, self._call, search_cap)
        self._company_objects = ObjectReads("companies", self._unwrapped, self._call, search_cap)
        self._companies = CompanyNames(
            lambda operation, request, body: self._call(operation, request, body),
            self._unwrapped("POST", DEAL_COMPANIES_READ),
            self._company_objects.batch("read"),
        )
        self._company_lookup = Companies(
            self.system,
            lambda groups, offset: self._company_objects.search_page(
                groups, ["name"], offset, "find companies"
            ),
        )
        self._writes = DealWrites(
            self._deals.batch,
            self._policy,
            self._send,
            self._call,
            self.find_created,
            settings.link_field,
        )
        self._pipelines: list[NativePipeline] | None = None
        self._cursor: str | None = None
        self._account: dict[str, Any] | ConnectorError | None = None  # read once, or its refusal

    def __repr__(self) -> str:
        return f"HubSpotConnector(system={self.system!r})"

    @staticmethod
    def lookup_lag_of(options: Mapping[str, Any]) -> timedelta:
        """How long a deal HubSpot stored may stay out of search, and so of `find_created`: its
        index lags its writes (seconds, more on a bad day; the pull re-reads 10 minutes)."""
        return timedelta(seconds=float(options.get("lookup_lag_s", 600)))

    # -- plumbing ---------------------------------------------------------------------------

    def _call(
        self, operation: str, request: Callable[..., Any], *args: Any, search: bool = False
    ) -> Any:
        """One API call through the policy; the parsed JSON body (None when empty)."""
        return self._policy.call(operation, lambda: self._send(request, *args, search=search))

    def _send(self, request: Callable[..., Any], *args: Any, search: bool = False) -> Any:
        """One HTTP exchange (no retry of its own): the parsed JSON body, headers observed."""
        if search:
            self._search_pacer.wait()
        try:
            response = request(
                *args, _preload_content=False, _request_timeout=self._settings.timeout
            )
        except Exception as exc:
            self._observe(getattr(exc, "headers", None) or {})
            raise
        try:
            data = response.data  # read inside the attempt: a cut body is retried
        finally:
            response.release_conn()
        self._observe(response.headers)
        return json.loads(data) if data else None

    def _unwrapped(
        self, method: str, path: str, params: Mapping[str, object] | None = None
    ) -> Callable[..., Any]:
        """A request of `path` (a date-versioned one, which hubspot-api-client 12 wraps no
        method for) with its query `params`, to give `_call` (with its JSON body, if any): sent
        by the SDK's REST client, so on its pool and raising its errors, which `classify` reads
        as it reads every other call's."""
        rest = self._rest
        url = f"{self._host}{path}"
        token = self._settings.credentials
        assert isinstance(token, HubSpotToken)
        auth = {
            "Authorization": f"Bearer {token.access_token}",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        pairs = query(params or {})

        def send(body: Any = None, **options: Any) -> Any:
            # a copy each time: the REST client adds its Content-Type to the headers it is given
            return rest.request(
                method, url, query_params=pairs, headers=dict(auth), body=body, **options
            )

        return send

    def _observe(self, headers: Any) -> None:
        if self._policy.pacer is not None:
            self._policy.pacer.observe(*rate_limit_info(dict(headers)))

    def calls(self) -> dict[str, int]:
        return self._policy.counts()

    def cursor(self) -> str | None:
        return self._cursor

    def close(self) -> None:
        close_pools(self._pool)

    # -- metadata ---------------------------------------------------------------------------

    def check(self) -> None:
        named = named_fields(self._settings)
        params = {"limit": 1, "properties": named or None}
        body = self._call("check", self._unwrapped("GET", objects("deals"), params))
        for deal in ((body or {}).get("results") or [])[:1]:  # without deals: no telling
            self._require_defined(deal, "check")

    def _require_defined(self, deal: Mapping[str, Any], operation: str) -> None:
        """A config naming a property the portal lacks is refused, as Salesforce refuses an
        unknown field (INVALID_FIELD). A deal read asking for it does not carry it: HubSpot
        leaves an undefined property out of a read without a word ("If a requested property
        isn't defined, it won't be included in the response"), where a defined one without a
        value is null."""
        shown = deal.get("properties") or {}
        where = "create it in HubSpot (Settings > Properties > Deal properties)"
        require_defined(self._settings, operation, shown, "property", where)

    def companies_readable(self) -> bool:
        """Whether the token may read the companies a deal's account is named after (one call;
        without `crm.objects.companies.read` the pull reads deals without accounts)."""
        return self._companies.readable()

    def portal_timezone(self) -> str:
        """The account's time zone, as its Settings > Account Defaults name it (`timeZone` of
        GET /account-info/{version}/details)."""
        return self._account_detail("timeZone")

    def company_currency(self) -> str:
        """The account's company currency (`companyCurrency` of the same answer): HubSpot's
        default currency of new deals, and the currency of a deal without `deal_currency_code`
        (a portal without multi-currency sets none)."""
        return self._account_detail("companyCurrency")

    def _account_detail(self, key: str) -> str:
        """One text of the account details, which are read once: the time zone and the
        currency come from the same call, and a refusal is not asked again."""
        if self._account is None:
            try:
                body = self._call("account details", self._unwrapped("GET", ACCOUNT_DETAILS))
                if not isinstance(body, dict):  # a proxy's or a changed API's answer: no crash
                    raise ApiError(self.system, "account details", "the answer is no JSON object")
                self._account = body
            except ConnectorError as exc:
                self._account = exc
        if isinstance(self._account, ConnectorError):
            raise self._account
        value = self._account.get(key)
        if not isinstance(value, str) or not value:
            raise ApiError(self.system, "account details", f"the answer names no {key}")
        return value

    def pipelines(self) -> list[NativePipeline]:
        body = self._call("pipelines", self._unwrapped("GET", PIPELINES))
        self._pipelines = pipelines_from_body(body)
        return self._pipelines

    def owners(self) -> list[dict[str, Any]]:
        """Active owners, then archived ones (`read_owners` says which are left out)."""
        return read_owners(self._call, lambda params: self._unwrapped("GET", OWNERS, params))

    def _properties(self) -> list[str]:
        pipelines = self._pipelines if self._pipelines is not None else self.pipelines()
        names = list(BASE_PROPERTIES)
        names += [f"hs_date_entered_{s.id}" for p in pipelines for s in p.stages]
        return list(dict.fromkeys((*names, *named_fields(self._settings))))

    # -- reading deals ----------------------------------------------------------------------

    def deals(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        properties = self._properties()
        start = epoch_ms(since.astimezone(UTC).isoformat()) if since is not None else None
        source = (
            self._deals.listed(properties, "list deals", companies=self._companies)
            if start is None
            else self._deals.changed(start, properties)
        )
        high = start
        for n, deal in enumerate(self._companies.named(source, asked=start is None)):
            if n == 0 and start is None:  # the list, whose reference says how it answers
                self._require_defined(deal, "list deals")
            modified = (deal.get("properties") or {}).get("hs_lastmodifieddate")
            if (moment := change_time(cursor_ms, modified)) is not None:
                high = max(high or 0, moment)
            yield deal
        self._cursor = iso_time(high) if high is not None else None

    def changed_accounts(self, since: datetime) -> dict[str, str | None]:
        """Id -> name of the companies modified at or after `since`: one companies search
        page per 200 (on hs_lastmodifieddate, as the deals are read). A company renamed is
        modified; its deals are not (an association names the company, the deal holds no
        copy of its name), so the deal search never finds them. A token that may not read
        companies answers none (its deals were read without accounts)."""
        start = epoch_ms(since.astimezone(UTC).isoformat())
        names: dict[str, str | None] = {}
        try:
            properties = ["name", "hs_lastmodifieddate"]  # the windows move on the latter
            for company in self._company_objects.changed(start, properties):
                name = str((company.get("properties") or {}).get("name") or "").strip()
                names[str(company["id"])] = name or None
        except PermissionDenied:
            return {}
        return names

    def deleted_deals(self, since: datetime) -> Iterator[str]:
        start = epoch_ms(since.astimezone(UTC).isoformat())
        for deal in self._deals.listed(["hs_object_id"], "list archived deals", archived=True):
            archived_at = deal.get("archivedAt")
            if archived_at and epoch_ms(archived_at) >= start:
                yield str(deal["id"])

    def read_deals(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        properties = self._properties()
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(list(dict.fromkeys(ids)), BATCH):
            request = {
                "inputs": [{"id": i} for i in chunk],
                "properties": properties,
                "propertiesWithHistory": [],
            }
            body = self._call("read deals", self._deals.batch("read"), request)
            found.update((str(d["id"]), d) for d in body.get("results") or [])
        return [found[i] for i in ids if i in found]

    def find_created(self, link_ids: Sequence[str]) -> dict[str, str]:
        field = self._settings.link_field
        if not field:
            return {}
        found: dict[str, str] = {}
        for chunk in chunks(list(dict.fromkeys(link_ids)), IN_VALUES):
            # HubSpot's IN matches a string property only by its lowercase value; the stored
            # marker comes back in its own case, which is what `found` is keyed by.
            values = [link.lower() for link in chunk]
            filters = [{"propertyName": field, "operator": "IN", "values": values}]
            offset = 0
            while True:
                body = self._deals.search_page([filters], [field], offset, "find created deals")
                for deal in body.get("results") or []:
                    link = (deal.get("properties") or {}).get(field)
                    if link:
                        found.setdefault(str(link), str(deal["id"]))
                after = next_after(body)
                if not after:
                    break
                offset = int(after)
        return found

    # -- writing deals ----------------------------------------------------------------------

    def update_deals(self, updates: Sequence[NativeUpdate]) -> list[PushResult]:
        return self._writes.update(updates)

    def create_deals(self, creates: Sequence[NativeCreate]) -> list[PushResult]:
        """Each copy associated with the company of its account's name, where exactly one
        bears it (connectors/hubspot_company_lookup.py); else with none, its result saying
        why."""
        found = self._company_lookup.matches([c.account for c in creates if c.account])
        matches = {c.link_id: m for c in creates if (m := _match(c, found)) is not None}
        companies = {link: m.account_id for link, m in matches.items() if m.account_id}
        results = self._writes.create(creates, companies)
        return [
            with_match(result, matches.get(c.link_id))
            for c, result in zip(creates, results, strict=True)
        ]

    def found_accounts(self, names: Sequence[str]) -> dict[str, AccountMatch]:
        """What the lookup finds of each account name (`connectors.base.found_accounts`):
        a dry run's, or what an apply's `expect_accounts` found (no call again)."""
        return self._company_lookup.matches(names)

    def expect_accounts(self, names: Iterable[str]) -> None:
        """The account names this run's creates will name, before the first is journaled:
        looked up now, together, 200 a search (a ConnectorError: none was sent)."""
        self._company_lookup.resolve(names)

    def delete_deals(self, ids: Sequence[str]) -> list[PushResult]:
        """Archive, 100 ids a batch, each batch read first (`DealWrites.archive` says why)."""
        return self._writes.archive(ids)


def _match(create: NativeCreate, found: Mapping[str, AccountMatch]) -> AccountMatch | None:
    """The company of the copy's account name; None for a copy that names none."""
    return found.get(name_key(create.account)) if create.account else None
