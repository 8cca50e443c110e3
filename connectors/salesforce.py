"""Salesforce connector on simple-salesforce (REST: SOQL, sObject Collections).

Every request goes through CallPolicy: SOQL pages are read with `sf.query` + `sf.query_more`
(one counted call per page of up to 2,000 records), writes and deletes with `composite/sobjects`
at 200 records per call. The daily allowance from `Sforce-Limit-Info` is watched: once used up the
connector stops with RateLimitExhausted instead of hammering the org.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from connectors.account_names import name_key, with_match
from connectors.base import (
    CompanyCurrency,
    ConnectorSettings,
    NativeCreate,
    NativePipeline,
    NativeUpdate,
    PushResult,
    change_time,
)
from connectors.batches import chunks, not_found
from connectors.errors import ApiError, AuthError, PermissionDenied, RateLimitExhausted
from connectors.http import CallPolicy, Failure
from connectors.named_fields import named_fields
from connectors.pools import close_session
from connectors.salesforce_accounts import AccountMatch, Accounts, read_changed_accounts
from connectors.salesforce_auth import LoginFailed, PinnedSession, can_login, login
from connectors.salesforce_cursors import CURSOR_GONE, ReadOn
from connectors.salesforce_soql import (
    by_id,
    by_modstamp,
    first_page,
    history_soql,
    modstamp_soql,
    next_page,
    sf_time,
)
from connectors.salesforce_stages import read_pipelines, record_type_stages
from connectors.salesforce_userinfo import user_info
from connectors.salesforce_wire import classify, missing_column
from connectors.salesforce_writes import GONE, Creates, Saves, jsonable, push_result

__all__ = ["CURSOR_GONE", "SalesforceConnector", "record_type_stages", "sf_time"]

API_VERSION = "59.0"
BATCH, IN_CHUNK = 200, 300
DEFAULT_PACE = (100, 1.0)  # requests per second: well under what an org tolerates
DEAL_FIELDS = (
    "Id", "Name", "AccountId", "OwnerId", "StageName", "Amount", "CurrencyIsoCode", "CloseDate",
    "Probability", "ForecastCategoryName", "IsClosed", "IsWon", "IsDeleted", "CreatedDate",
    "LastModifiedDate", "SystemModstamp",
)  # fmt: skip
# The Opportunity's account, by name: what a copy in Pipedrive is filed under (its organization).
ACCOUNT_NAME = "Account.Name"
# In an org with Opportunity record types (and only there the field exists) a deal's record type
# is its pipeline, named by DeveloperName: read in the deals' own query, no call more.
RECORD_TYPE_FIELDS = ("RecordTypeId", "RecordType.DeveloperName")
LOCK_TRIES = 3  # sends of a collection write while some of its records are locked
LOCK_WAIT = 5.0  # seconds before a resend: the lock has already been held for 10


class SalesforceConnector:
    kind = "salesforce"
    # The recycle bin: queryAll and the deleted endpoint show a delete for 15 days.
    deletions_kept = timedelta(days=15)
    # A single-currency org's admin sets it as the Currency Locale of the Company Information.
    company_currency_names = CompanyCurrency(
        "the org's",
        "currency",
        "its Opportunities",
        "Setup > Company Information > Currency Locale",
    )

    def __init__(self, settings: ConnectorSettings) -> None:
        self.system = settings.instance
        self._settings = settings
        self._http = PinnedSession(settings.ca_file, settings.timeout)
        options = settings.options
        self._policy = CallPolicy.for_connector(settings, self._classify, DEFAULT_PACE)
        self._reserve = int(options.get("daily_reserve", 0))
        self._lock_wait = float(options.get("lock_wait", LOCK_WAIT))
        self._sf: Salesforce | None = None
        self._describe: dict[str, Any] | None = None
        self._cursor: str | None = None
        self._usage: tuple[int, int] | None = None
        self._accounts = Accounts(self.system, lambda soql: self._query("find accounts", soql))

    def __repr__(self) -> str:
        credentials = self._settings.credentials
        return f"SalesforceConnector(system={self.system!r}, credentials={credentials!r})"

    # -- session and policy ---------------------------------------------------------------------

    def _classify(self, exc: BaseException) -> Failure:
        return classify(exc, self._lock_wait, self._retry_after)

    def _retry_after(self) -> float | None:
        value = self._http.last_headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def _connect(self) -> Salesforce:
        if self._sf is None:
            self._login()
        assert self._sf is not None
        return self._sf

    def _login(self) -> None:
        s = self._settings
        if can_login(s.credentials):
            fresh = self._policy.call(
                "login", lambda: login(self._http, s.credentials, s.base_url, s.options)
            )
        else:  # a session id is taken as it is: no call, nothing for the policy to count
            try:
                fresh = login(self._http, s.credentials, s.base_url, s.options, s.instance_url)
            except LoginFailed as exc:
                raise AuthError(self.system, "login", exc.description) from None
        self._policy.add_secret(fresh.session_id)
        self._sf = Salesforce(
            instance_url=fresh.instance_url,
            session_id=fresh.session_id,
            session=self._http,
            version=API_VERSION,
        )

    def _call(self, operation: str, fn: Callable[[Salesforce], Any]) -> Any:
        """One API request under the policy; the library object is re-read after a renewal."""
        if self._usage is not None and self._usage[0] >= self._usage[1] - self._reserve:
            used, total = self._usage
            raise RateLimitExhausted(
                self.system,
                operation,
                f"daily API allowance used up ({used}/{total} calls); try after it resets",
            )
        renew = self._login if can_login(self._settings.credentials) else None
        self._connect()
        result = self._policy.call(operation, lambda: fn(self._connect()), renew_session=renew)
        usage = getattr(self._sf, "api_usage", {}).get("api-usage")
        if usage is not None:
            self._usage = (usage.used, usage.total)
        return result

    def _query(
        self,
        operation: str,
        soql: str,
        *,
        include_deleted: bool = False,
        resume: ReadOn[Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Records of a SOQL query, lazily, one counted call per page.

        A cursor is released when the API user opens an 11th, or left 15 minutes idle
        (INVALID_QUERY_LOCATOR); `resume`, where the read is in the query's order, then gives
        the query that reads on from there and drops the records read before, or None when
        it may not (the error then stands).
        """
        page = self._call(operation, first_page(soql, include_deleted))
        while True:
            for record in page["records"]:
                record.pop("attributes", None)
                if resume is None or resume.fresh(record):
                    yield record
            if page["done"]:
                return
            try:
                page = self._call(operation, next_page(page["nextRecordsUrl"]))
            except ApiError as exc:
                again = (
                    resume.query() if resume is not None and CURSOR_GONE in exc.message else None
                )
                if again is None:
                    raise
                page = self._call(operation, first_page(again, include_deleted))

    # -- the Connector protocol -------------------------------------------------------------------

    def calls(self) -> dict[str, int]:
        return self._policy.counts()

    def cursor(self) -> str | None:
        return self._cursor

    def close(self) -> None:
        close_session(self._http)

    def check(self) -> None:
        # With the id and link fields every deal read selects: one the org lacks (or hides from
        # the API user) fails each pull with INVALID_FIELD, so check says so first.
        fields = ", ".join(dict.fromkeys(("Id", *named_fields(self._settings))))
        try:
            soql = format_soql("SELECT {:literal} FROM Opportunity LIMIT 1", fields)
            next(self._query("check", soql), None)
        except AuthError as exc:
            raise AuthError(
                self.system, exc.operation, f"credentials rejected: {exc.message}", exc.status
            ) from None
        except PermissionDenied as exc:
            raise PermissionDenied(
                self.system, "check", f"no read access to Opportunity: {exc.message}", exc.status
            ) from None
        except ApiError as exc:
            if not exc.message.startswith("INVALID_FIELD"):
                raise
            raise PermissionDenied(
                self.system,
                "check",
                f"{missing_column(exc.message)}: a field the config names (external_ids, "
                "link_field); create it, grant the API user read access to it, or correct the "
                "config",
                exc.status,
            ) from None

    def pipelines(self) -> list[NativePipeline]:
        return read_pipelines(self.system, self._query, self._call, self._org_describe)

    def owners(self) -> list[dict[str, Any]]:
        return list(self._query("owners", "SELECT Id, Name, Email, IsActive FROM User"))

    def company_currency(self) -> str | None:
        """The currency of every amount in a single-currency org, whose Opportunities carry no
        CurrencyIsoCode (getUserInfo's orgDefaultCurrencyIsoCode: one call); None in a
        multi-currency org, where each record names its own. The Opportunity describe, which
        `check` and `init` read for the pipelines anyway, tells the two apart first: a
        multi-currency org costs no call more."""
        if "CurrencyIsoCode" in self._org_fields():
            return None
        org = self._call("user info", user_info)
        if org.multi_currency:
            return None
        if org.default_code is None:
            raise ApiError(
                self.system, "user info", "the answer names no orgDefaultCurrencyIsoCode"
            )
        return org.default_code

    def _org_describe(self) -> dict[str, Any]:
        """The Opportunity's describe (one call, kept): its fields and record types."""
        if self._describe is None:
            self._describe = self._call(
                "describe", lambda sf: sf.restful("sobjects/Opportunity/describe")
            )
        return self._describe

    def _org_fields(self) -> frozenset[str]:
        """The Opportunity's fields in this org: CurrencyIsoCode is among them only in a
        multi-currency org, RecordTypeId only in one with Opportunity record types."""
        return frozenset(f["name"] for f in self._org_describe()["fields"])

    def _deal_fields(self) -> list[str]:
        wanted = [f for f in DEAL_FIELDS if f in self._org_fields()]
        if "AccountId" in wanted:  # the account's name, in the same query (no call more)
            wanted.insert(wanted.index("AccountId") + 1, ACCOUNT_NAME)
        if RECORD_TYPE_FIELDS[0] in self._org_fields():
            wanted.extend(RECORD_TYPE_FIELDS)
        return list(dict.fromkeys((*wanted, *named_fields(self._settings))))

    def deals(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        fields = ", ".join(self._deal_fields())
        high = (
            since.astimezone(UTC)
            if since and since.tzinfo
            else (since.replace(tzinfo=UTC) if since else None)
        )
        floor = high
        # A read whose cursor is released reads on after the last deal it saw.
        query_from = partial(modstamp_soql, fields, high)
        read_on = ReadOn(by_modstamp(query_from))
        for record in self._query("deals", query_from(None), resume=read_on):
            stamp = change_time(sf_time, record.get("SystemModstamp"))
            if stamp is not None:
                if floor is not None and stamp <= floor:
                    continue
                high = stamp if high is None or stamp > high else high
            yield record
        if high is not None:
            self._cursor = high.isoformat().replace("+00:00", "Z")

    def deleted_deals(self, since: datetime) -> Iterator[str]:
        """Opportunities deleted after `since`, from the recycle bin (queryAll); a read whose
        cursor is released reads on after the last deletion it saw, as the deal read does."""
        moment = since if since.tzinfo else since.replace(tzinfo=UTC)
        query_from = partial(modstamp_soql, "Id, SystemModstamp", moment, deleted=True)
        read_on = ReadOn(by_modstamp(query_from))
        soql = query_from(None)
        for record in self._query("deleted_deals", soql, include_deleted=True, resume=read_on):
            if sf_time(record["SystemModstamp"]) > moment:
                yield record["Id"]

    def changed_accounts(self, since: datetime) -> dict[str, str | None]:
        """Id -> Name of the Accounts changed after `since` (SystemModstamp, as the deals are
        read), one query page per 2,000. Renaming an Account stamps the Account only: its
        Opportunities keep their SystemModstamp ("if object A pulls a value from object B, a
        change to B's record is reflected in B's SystemModstamp, not A's": the object
        reference's System Fields), so the deal read never sees it. An org whose
        Opportunities name no Account field answers none, without a query."""
        if "AccountId" not in self._org_fields():
            return {}
        return read_changed_accounts(
            self.system, lambda op, soql, read_on: self._query(op, soql, resume=read_on), since
        )

    def stage_history(self, ids: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """OpportunityHistory rows in Id order (the mapping orders each deal's by time): one
        query (per 300 ids if given). Ids are unique and stable, so a read whose cursor is
        released reads on from the last row it saw."""
        for chunk in [None] if ids is None else chunks(list(ids), IN_CHUNK):
            query_from = partial(history_soql, chunk)
            read_on = ReadOn(by_id(query_from))
            yield from self._query("stage_history", query_from(None), resume=read_on)

    def read_deals(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        fields = ", ".join(self._deal_fields())
        out: list[dict[str, Any]] = []
        for chunk in chunks(list(ids), IN_CHUNK):
            soql = format_soql(
                "SELECT {:literal} FROM Opportunity WHERE Id IN {}", fields, list(chunk)
            )
            out.extend(self._query("read_deals", soql))
        return out

    def find_created(self, link_ids: Sequence[str]) -> dict[str, str]:
        link = self._settings.link_field
        if not link or not link_ids:
            return {}
        found: dict[str, str] = {}
        for chunk in chunks(list(link_ids), IN_CHUNK):
            soql = format_soql(
                "SELECT Id, {:literal} FROM Opportunity WHERE {:literal} IN {}",
                link,
                link,
                list(chunk),
            )
            for record in self._query("find_created", soql):
                found.setdefault(str(record[link]), str(record["Id"]))
        return found

    def update_deals(self, updates: Sequence[NativeUpdate]) -> list[PushResult]:
        results: list[PushResult] = []
        for chunk in chunks(list(updates), BATCH):
            records = [
                {
                    "attributes": {"type": "Opportunity"},
                    "id": u.id,
                    **{k: jsonable(v) for k, v in u.fields.items()},
                }
                for u in chunk
            ]
            saved = self._call("update_deals", Saves("PATCH", records, self._lock_tries()).send)
            for update, result in zip(chunk, saved, strict=True):
                results.append(push_result(result, update.id))
        return self._policy.redacted(results)

    def create_deals(self, creates: Sequence[NativeCreate]) -> list[PushResult]:
        """Each copy under the Account of its account's name, where exactly one bears it
        (connectors/salesforce_accounts.py); else without one, its result saying why."""
        link = self._settings.link_field
        accounts = self._accounts.matches([c.account for c in creates if c.account])
        results: list[PushResult] = []
        for chunk in chunks(list(creates), BATCH):
            records, matched = [], []
            for create in chunk:
                values = {k: jsonable(v) for k, v in self._for_org(create.fields).items()}
                if link:
                    values[link] = create.link_id
                match = _match(create, accounts)
                if match is not None and match.account_id is not None:
                    values["AccountId"] = match.account_id
                records.append({"attributes": {"type": "Opportunity"}, **values})
                matched.append(match)
            creating = Creates(records, link, self._lock_tries() if link else 1)
            saved = self._call("create_deals", creating.send)
            for create, match, result in zip(chunk, matched, saved, strict=True):
                pushed = replace(push_result(result, None), link_id=create.link_id)
                results.append(with_match(pushed, match))
        return self._policy.redacted(results)

    def found_accounts(self, names: Sequence[str]) -> dict[str, AccountMatch]:
        """What the lookup finds of each account name (`connectors.base.found_accounts`):
        a dry run's, or what an apply's `expect_accounts` found (no call again)."""
        return self._accounts.matches(names)

    def expect_accounts(self, names: Iterable[str]) -> None:
        """The account names this run's creates will name, before the first is journaled:
        looked up now, together, in as few queries as fit (a ConnectorError: none was sent)."""
        self._accounts.resolve(names)

    def _lock_tries(self) -> int:
        """Sends of one collection write while records of it are locked: never more than the
        policy's attempts, so the last answer is returned, locked records reported in it."""
        return max(1, min(LOCK_TRIES, self._policy.max_attempts))

    def _for_org(self, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        """A create's fields as this org takes them. A single-currency org has no CurrencyIsoCode
        and holds every amount in the configured currency, so that code is left out; any other
        is sent, for Salesforce to refuse (INVALID_FIELD) rather than file it in the wrong
        currency. A multi-currency org gets the code as it is: left out, Salesforce would stamp
        the API user's personal currency instead."""
        code = fields.get("CurrencyIsoCode")
        if code != self._settings.currency or "CurrencyIsoCode" in self._org_fields():
            return fields
        return {k: v for k, v in fields.items() if k != "CurrencyIsoCode"}

    def delete_deals(self, ids: Sequence[str]) -> list[PushResult]:
        """Into the recycle bin, 200 ids a call (`DeletesDeals` gives the result semantics).

        ENTITY_IS_DELETED (in the recycle bin) and INVALID_CROSS_REFERENCE_KEY (no such record)
        are NOT_FOUND; MALFORMED_ID and other refusals keep Salesforce's code.
        """
        results: list[PushResult] = []
        for chunk in chunks(list(ids), BATCH):
            deleted = self._call("delete_deals", Saves("DELETE", chunk, self._lock_tries()).send)
            for record_id, result in zip(chunk, deleted, strict=True):
                pushed = push_result(result, record_id)
                if not pushed.ok and pushed.code in GONE:
                    pushed = not_found(record_id, pushed.error)
                results.append(PushResult(record_id, pushed.ok, pushed.error, pushed.code))
        return self._policy.redacted(results)


def _match(create: NativeCreate, accounts: Mapping[str, AccountMatch]) -> AccountMatch | None:
    """The Account of the copy's account name; None for a copy that names none, or that is
    given an Account already."""
    if not create.account or "AccountId" in create.fields:
        return None
    return accounts.get(name_key(create.account))
