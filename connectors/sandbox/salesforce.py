"""Salesforce REST emulator: SOQL query/queryAll with cursors, describe, updated/deleted,
sObject reads and writes, sObject Collections (update, create, delete into the recycle bin),
limits and the OAuth token endpoint.

Sandbox logins (POST /services/oauth2/token, documented in the README): grant_type=password
with username `SANDBOX_USERNAME` and password = the sandbox's session token (a security token,
if sent, is appended to the password as Salesforce does, so leave it empty), or
grant_type=client_credentials with client id `SANDBOX_CONSUMER_KEY` and client secret = the
token. Each login issues a fresh session id; the `expire_after=N` fault expires a session after
N API calls made since it was issued, so a fresh login recovers.

Default burst limit: 100 requests per rolling 1 s window (Salesforce publishes no per-second
limit, only ~25 concurrent long requests and a daily allowance; this keeps a runaway client
visible). Daily allowance: `daily_limit` fault, else 100,000 (`Sforce-Limit-Info`).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs

from connectors.sandbox.faults import FaultState
from connectors.sandbox.salesforce_soap import (
    operation_of,
    session_of,
    soap_fault,
    user_info_answer,
)
from connectors.sandbox.salesforce_store import (
    CORPORATE_CURRENCY,
    READ_ONLY,
    Change,
    RecordError,
    SalesforceStore,
    format_stamp,
)
from connectors.sandbox.server import BadRequest, Route, SandboxRequest, SandboxResponse
from connectors.sandbox.soql import SoqlError, datetime_key, parse_soql

__all__ = [
    "SANDBOX_CONSUMER_KEY",
    "SANDBOX_USERNAME",
    "SalesforceEmulator",
]

SANDBOX_USERNAME = "crmsync@sandbox.example.com"
SANDBOX_CONSUMER_KEY = "crmsync-sandbox"
DEFAULT_DAILY_LIMIT = 100_000
DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
MAX_COLLECTION = 200
# "A user can have up to 10 query cursors open at a time": opening an 11th releases the oldest,
# and a locator also expires after 15 minutes of inactivity (SOAP API guide, QueryLocator;
# Help 000004410: INVALID_QUERY_LOCATOR). Every sandbox session runs as the one API user.
MAX_CURSORS, CURSOR_IDLE = 10, 15 * 60.0
# A cursor read to its end is closed; its locators stay valid for a repeat of a lost answer.
_FINISHED_KEPT = 50
_DATA = "/services/data/{version}"
_TOKEN_PATH = "/services/oauth2/token"
_SOAP = "/services/Soap/u/"
_XML = {"Content-Type": "text/xml;charset=UTF-8"}
T = TypeVar("T")


class SalesforceEmulator:
    system = "salesforce"
    rate_limit = 100
    rate_window = 1.0

    def __init__(self, data: Mapping[str, Any], token: str):
        self.lock = threading.RLock()
        self.fault_state = FaultState()
        self._data = data
        self._token = token
        self._local = threading.local()
        self.reset()

    def reset(self) -> None:
        self.store = SalesforceStore(self._data)
        # A single-currency org's currency, which getUserInfo() tells (the dataset's
        # `userInfo.orgDefaultCurrencyIsoCode`, else USD); tests set it to emulate another.
        info = self._data.get("userInfo")
        told = info.get("orgDefaultCurrencyIsoCode") if isinstance(info, Mapping) else None
        self.org_currency = str(told or CORPORATE_CURRENCY)
        # (status, body) getUserInfo answers instead, when set: tests of a proxy's page or an
        # outage in front of the SOAP endpoint.
        self.user_info_answer: tuple[int, bytes] | None = None
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._finished: OrderedDict[str, _Cursor] = OrderedDict()
        self._used: dict[str, float] = {}  # cursor id -> when it last served a page
        self._cursor_seq = 0
        # session id -> API call count when it was issued (the expiry fault counts from there)
        self._sessions: dict[str, int] = {self._token: 0}

    def purge_deleted(self) -> int:
        purged = self.store.purge_deleted()
        return purged

    def restore_deleted(self, ids: Sequence[str]) -> list[str]:
        by_id = self.store.by_id
        restored = [i for i in ids if i in by_id and by_id[i].get("IsDeleted")]
        for record_id in restored:
            self.store.undelete(record_id)
        return restored

    def dump(self) -> dict[str, Any]:
        tables: dict[str, Any] = {
            n: [dict(r) for r in rows] for n, rows in self.store.tables.items()
        }
        return {**tables, "userInfo": {"orgDefaultCurrencyIsoCode": self.org_currency}}

    # -- the Emulator protocol ----------------------------------------------------------------

    def routes(self) -> list[Route]:
        d = _DATA
        return [
            Route("POST", _TOKEN_PATH, self._oauth_token),
            Route("POST", f"{_SOAP}{{version}}", self._soap),
            Route("GET", f"{d}/limits", self._limits),
            Route("GET", f"{d}/query", lambda r: self._query(r, include_deleted=False)),
            Route("GET", f"{d}/queryAll", lambda r: self._query(r, include_deleted=True)),
            Route("GET", f"{d}/query/{{locator}}", self._query_more),
            Route("GET", f"{d}/queryAll/{{locator}}", self._query_more),
            Route("GET", f"{d}/sobjects/Opportunity/describe", self._describe),
            Route(
                "GET",
                f"{d}/ui-api/object-info/Opportunity/picklist-values/{{record_type}}/StageName",
                self._stage_values,
            ),
            Route("GET", f"{d}/sobjects/Opportunity/updated", self._updated),
            Route("GET", f"{d}/sobjects/Opportunity/deleted", self._deleted),
            Route("GET", f"{d}/sobjects/Opportunity/{{id}}", self._get_one),
            Route("PATCH", f"{d}/sobjects/Opportunity/{{id}}", self._patch_one),
            Route("PATCH", f"{d}/composite/sobjects", self._collection_update),
            Route("POST", f"{d}/composite/sobjects", self._collection_create),
            Route("DELETE", f"{d}/composite/sobjects", self._collection_delete),
        ]

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        self._local.login = request.path.rstrip("/") == _TOKEN_PATH
        self._local.soap = request.path.startswith(_SOAP)
        self._local.token = None
        if self._local.login:
            return None
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth[:7].lower() == "bearer " else ""
        if self._local.soap:  # SOAP takes the session from the envelope's SessionHeader
            token = session_of(request.body) or ""
        if token not in self._sessions:
            return self.session_expired_response()
        self._local.token = token
        return None

    def error(self, status: int, code: str, message: str) -> SandboxResponse:
        if getattr(self._local, "soap", False):  # every SOAP refusal is a fault, HTTP 500
            return SandboxResponse(500, soap_fault(code, message), dict(_XML))
        if code == "MALFORMED_REQUEST":
            code = "JSON_PARSER_ERROR" if "JSON" in message else "MALFORMED_QUERY"
        # Salesforce sends its usage header on errors too (401, 403, 429, 5xx).
        return SandboxResponse(
            status, [{"message": message, "errorCode": code}], self.limit_headers(0, 0, 0.0)
        )

    def too_many_requests(self, retry_after: float) -> SandboxResponse:
        # Salesforce REST has no 429: too many requests at once is the concurrent-request
        # limit, a 403 REQUEST_LIMIT_EXCEEDED like the daily cap but told apart by its message,
        # and without Retry-After.
        return self.error(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
        )

    def limit_headers(self, used: int, limit: int, window: float) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.fault_state.api_calls}/{self._daily_max()}"}

    def daily_limit_exceeded(self) -> SandboxResponse:
        return self.error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def session_expired(self) -> SandboxResponse | None:
        if getattr(self._local, "login", False):
            return None
        issued = self._sessions.get(getattr(self._local, "token", None) or "", 0)
        limit = self.fault_state.faults.expire_after
        if limit is not None and self.fault_state.api_calls - issued > limit:
            return self.session_expired_response()
        return None

    def session_expired_response(self) -> SandboxResponse:
        return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _daily_max(self) -> int:
        return self.fault_state.faults.daily_limit or DEFAULT_DAILY_LIMIT

    # -- auth and limits ----------------------------------------------------------------------

    def _oauth_token(self, request: SandboxRequest) -> SandboxResponse:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        grant = form.get("grant_type")
        ok = False
        if grant == "password":
            ok = form.get("username") == SANDBOX_USERNAME and form.get("password") == self._token
        elif grant == "client_credentials":
            key, secret = form.get("client_id"), form.get("client_secret")
            auth = request.headers.get("authorization", "")
            if auth[:6].lower() == "basic ":
                decoded = base64.b64decode(auth[6:]).decode(errors="replace")
                key, _, secret = decoded.partition(":")
            ok = key == SANDBOX_CONSUMER_KEY and secret == self._token
        else:
            return SandboxResponse(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        if not ok:
            return SandboxResponse(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        session = f"00Dsandbox!{secrets.token_urlsafe(24)}"
        self._sessions[session] = self.fault_state.api_calls
        host = request.headers.get("host", "127.0.0.1")
        issued = str(int(datetime.now(UTC).timestamp() * 1000))
        return SandboxResponse(
            200,
            {
                "access_token": session,
                "instance_url": f"https://{host}",
                "id": f"https://{host}/id/00D000000000000AAA/005000000000000AAA",
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            },
        )

    def _soap(self, request: SandboxRequest) -> SandboxResponse:
        operation = operation_of(request.body)
        if operation != "getUserInfo":  # the only SOAP call crmsync makes
            return self.error(500, "INVALID_OPERATION", f"no operation {operation!r} here")
        if self.user_info_answer is not None:
            return SandboxResponse(*self.user_info_answer)
        store = self.store
        me = next((u for u in store.tables["User"] if u.get("Id") == store.api_user), {})
        answer = user_info_answer(
            user_id=str(store.api_user),
            user_name=str(me.get("Username") or SANDBOX_USERNAME),
            multi_currency=store.multi_currency,
            org_currency=self.org_currency,
            personal=store.personal_currency(),
        )
        return SandboxResponse(200, answer, dict(_XML))

    def _limits(self, request: SandboxRequest) -> SandboxResponse:
        top = self._daily_max()
        return SandboxResponse(
            200,
            {
                "DailyApiRequests": {
                    "Max": top,
                    "Remaining": max(0, top - self.fault_state.api_calls),
                },
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            },
        )

    # -- SOQL ---------------------------------------------------------------------------------

    def _query(self, request: SandboxRequest, *, include_deleted: bool) -> SandboxResponse:
        text = request.arg("q")
        if not text:
            return self.error(400, "MALFORMED_QUERY", "A query string (q) is required")
        try:
            query = parse_soql(text, self.store.schemas)
        except SoqlError as exc:
            return self.error(400, exc.code, exc.message)
        if query.sobject in self.fault_state.faults.hidden_sobjects:
            why = f"sObject type '{query.sobject}' is not supported."
            return self.error(400, "INVALID_TYPE", why)
        if query.sobject in self.fault_state.faults.timed_out_sobjects:
            why = "Your query request was running for too long."
            return self.error(400, "QUERY_TIMEOUT", why)
        rows = self.store.tables[query.sobject]
        where = query.where
        if not include_deleted:
            rows = [r for r in rows if not r.get("IsDeleted")]
        matched = [r for r in rows if where(r)] if where is not None else list(rows)
        types = self.store.schemas[query.sobject]
        for key, descending in reversed(query.sort_key(types)):
            matched.sort(key=key, reverse=descending)
        end = None if query.limit is None else query.offset + query.limit
        matched = matched[query.offset : end]
        return self._page(request, _Cursor("", query.sobject, query.fields, matched), 0)

    def _query_more(self, request: SandboxRequest) -> SandboxResponse:
        cursor_id, _, offset = request.params["locator"].rpartition("-")
        cursor = self._cursors.get(cursor_id) or self._finished.get(cursor_id)
        idle = time.monotonic() - self._used.get(cursor_id, 0.0)
        released = self.fault_state.faults.cursors_released
        if cursor is None or not offset.isdigit() or idle > CURSOR_IDLE or released:
            return self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(request, cursor, int(offset))

    def _parent(self, sobject: str, record_id: Any) -> Mapping[str, Any] | None:
        return self.store.parent(sobject, record_id)

    def _page(self, request: SandboxRequest, cursor: _Cursor, offset: int) -> SandboxResponse:
        size = self._batch(request)
        rows = cursor.rows
        version = request.path.split("/")[3]
        body: dict[str, Any] = {
            "totalSize": len(rows),
            "done": offset + size >= len(rows),
            "records": [
                _project(cursor.sobject, version, r, cursor.fields, self._parent)
                for r in rows[offset : offset + size]
            ],
        }
        if not body["done"]:
            if not cursor.id:
                cursor = self._keep(cursor)
            self._used[cursor.id] = time.monotonic()
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{cursor.id}-{offset + size}"
        elif cursor.id in self._cursors:
            self._finished[cursor.id] = self._cursors.pop(cursor.id)
            while len(self._finished) > _FINISHED_KEPT:
                self._used.pop(self._finished.popitem(last=False)[0], None)
        return SandboxResponse(200, body)

    def _keep(self, cursor: _Cursor) -> _Cursor:
        self._cursor_seq += 1
        kept = replace(cursor, id=f"01g{self._cursor_seq:012d}AAA")
        self._cursors[kept.id] = kept
        while len(self._cursors) > MAX_CURSORS:  # released: INVALID_QUERY_LOCATOR from now on
            self._used.pop(self._cursors.popitem(last=False)[0], None)
        return kept

    @staticmethod
    def _batch(request: SandboxRequest) -> int:
        options = request.headers.get("sforce-query-options", "")
        for part in options.split(","):
            name, _, value = part.strip().partition("=")
            if name.lower() == "batchsize" and value.strip().isdigit():
                return min(MAX_BATCH, max(MIN_BATCH, int(value)))
        return DEFAULT_BATCH

    # -- describe, updated, deleted -------------------------------------------------------------

    def _describe(self, request: SandboxRequest) -> SandboxResponse:
        stages = sorted(
            self.store.tables["OpportunityStage"], key=lambda s: s.get("SortOrder") or 0
        )
        fields = []
        for name, kind in self.store.schemas["Opportunity"].items():
            field: dict[str, Any] = {
                "name": name,
                "type": kind,
                "label": name.removesuffix("__c").replace("_", " "),
                "nillable": name not in ("Id", "Name", "StageName", "CloseDate")
                and kind != "boolean",
                "updateable": name not in READ_ONLY,
                "createable": name not in READ_ONLY,
                "custom": name.endswith("__c"),
                "picklistValues": [],
            }
            if name == "StageName":
                field["picklistValues"] = [_picklist_value(s) for s in stages]
            fields.append(field)
        return SandboxResponse(
            200,
            {
                "name": "Opportunity",
                "label": "Opportunity",
                "labelPlural": "Opportunities",
                "keyPrefix": "006",
                "queryable": True,
                "updateable": True,
                "createable": True,
                "custom": False,
                "fields": fields,
                "recordTypeInfos": self.store.record_types.describe_infos(),
            },
        )

    def _stage_values(self, request: SandboxRequest) -> SandboxResponse:
        """UI API: the StageName values a record type's sales process allows."""
        record_type = request.params["record_type"]
        body = self.store.record_types.picklist_values(
            record_type, self.store.tables["OpportunityStage"], request.path
        )
        retired = self.fault_state.faults.retired_record_types_unanswered and not (
            self.store.record_types.active(record_type)
        )
        if body is None:
            return _not_found_record_type(404, record_type)
        if retired:
            status = self.fault_state.faults.retired_record_types_status
            return _not_found_record_type(status, record_type)
        return SandboxResponse(200, body)

    def _window(self, request: SandboxRequest, days: int) -> tuple[str, str, str]:
        try:
            start = _parse_param(request.arg("start"))
            end = _parse_param(request.arg("end"))
        except ValueError as exc:
            raise BadRequest(f"start and end must be ISO 8601 date-times: {exc}") from None
        now = datetime.now(UTC)
        if start < now - timedelta(days=days):
            raise _ReplicationError(f"startDate cannot be more than {days} days ago")
        if end <= start:
            raise _ReplicationError("endDate must be after startDate")
        end = min(end, now).replace(second=0, microsecond=0)
        start = start.replace(second=0, microsecond=0)
        return datetime_key(format_stamp(start)), datetime_key(format_stamp(end)), format_stamp(end)

    def _updated(self, request: SandboxRequest) -> SandboxResponse:
        try:
            low, high, covered = self._window(request, 30)
        except _ReplicationError as exc:
            return self.error(400, "INVALID_REPLICATION_DATE", str(exc))
        ids = [
            r["Id"]
            for r in self.store.tables["Opportunity"]
            if not r.get("IsDeleted") and low <= datetime_key(r.get("SystemModstamp") or "") <= high
        ]
        return SandboxResponse(200, {"ids": ids, "latestDateCovered": covered})

    def _deleted(self, request: SandboxRequest) -> SandboxResponse:
        try:
            low, high, covered = self._window(request, 15)
        except _ReplicationError as exc:
            return self.error(400, "INVALID_REPLICATION_DATE", str(exc))
        earliest = format_stamp(
            (datetime.now(UTC) - timedelta(days=15)).replace(second=0, microsecond=0)
        )
        deleted = [
            {"id": r["Id"], "deletedDate": r.get("SystemModstamp")}
            for r in self.store.tables["Opportunity"]
            if r.get("IsDeleted") and low <= datetime_key(r.get("SystemModstamp") or "") <= high
        ]
        return SandboxResponse(
            200,
            {
                "deletedRecords": deleted,
                "earliestDateAvailable": earliest,
                "latestDateCovered": covered,
            },
        )

    # -- single records -----------------------------------------------------------------------

    def _get_one(self, request: SandboxRequest) -> SandboxResponse:
        record = self.store.by_id.get(request.params["id"])
        if record is None or record.get("IsDeleted"):
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        version = request.path.split("/")[3]
        wanted = request.args("fields") or list(self.store.schemas["Opportunity"])
        return SandboxResponse(200, _project("Opportunity", version, record, tuple(wanted)))

    def _patch_one(self, request: SandboxRequest) -> SandboxResponse:
        body = request.json()
        if not isinstance(body, dict):
            return self.error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        try:
            change = self.store.check_update(request.params["id"], body)
            self._injected_failure(request.params["id"], body)
        except RecordError as exc:
            status = (
                404 if exc.code in ("ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY") else 400
            )
            return SandboxResponse(
                status, [{"message": exc.message, "errorCode": exc.code, "fields": exc.fields}]
            )
        self.store.apply(change)
        return SandboxResponse(204)

    # -- sObject Collections --------------------------------------------------------------------

    def _collection_update(self, request: SandboxRequest) -> SandboxResponse:
        return self._collection(request, create=False)

    def _collection_create(self, request: SandboxRequest) -> SandboxResponse:
        return self._collection(request, create=True)

    def _collection(self, request: SandboxRequest, *, create: bool) -> SandboxResponse:
        body = request.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return self.error(400, "JSON_PARSER_ERROR", "records must be a list of sObjects")
        if len(records) > MAX_COLLECTION:
            return self._over_limit()
        for record in records:
            kind = (record.get("attributes") or {}).get("type")
            if kind != "Opportunity":
                return self.error(
                    400, "INVALID_TYPE", "sObject type must be given in attributes.type"
                )
        ids: list[Any] = []
        outcomes: list[Change | RecordError] = []
        for record in records:
            record_id = record.get("id", record.get("Id"))
            ids.append(None if create else record_id)
            try:
                if create:
                    if record_id is not None:
                        raise RecordError(
                            "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]
                        )
                    change = self.store.check_create(record)
                else:
                    change = self.store.check_update(record_id, record)
                self._injected_failure(record_id, record)
                outcomes.append(change)
            except RecordError as exc:
                outcomes.append(exc)
        all_or_none = bool(body.get("allOrNone", False))
        return SandboxResponse(200, _results(ids, outcomes, all_or_none, self.store.apply))

    def _collection_delete(self, request: SandboxRequest) -> SandboxResponse:
        ids = request.args("ids")
        if not ids:
            return self.error(400, "MISSING_ARGUMENT", "ids: the ids of the records to delete")
        if len(ids) > MAX_COLLECTION:
            return self._over_limit()
        outcomes: list[dict[str, Any] | RecordError] = []
        for record_id in ids:
            try:
                record = self.store.check_delete(record_id)
                self._injected_failure(record_id, {})
                outcomes.append(record)
            except RecordError as exc:
                outcomes.append(exc)
        all_or_none = (request.arg("allOrNone") or "false").lower() == "true"
        return SandboxResponse(200, _results(ids, outcomes, all_or_none, self.store.delete))

    def _over_limit(self) -> SandboxResponse:
        return self.error(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this "
            "call",
        )

    def _injected_failure(self, record_id: Any, values: Mapping[str, Any]) -> None:
        faults = self.fault_state.faults
        keys = [record_id, *(v for v in values.values() if isinstance(v, str))]
        locked = [k for k in keys if isinstance(k, str) and self.fault_state.still_locked(k)]
        if locked:
            raise RecordError(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {locked[0]}",
            )
        marked = bool(faults.fail_ids) and (
            record_id in faults.fail_ids
            or any(str(v) in faults.fail_ids for v in values.values() if isinstance(v, str))
        )
        if marked or self.fault_state.draw(faults.record_fail):
            raise RecordError(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "crmsync sandbox: injected validation failure for this record",
            )


class _ReplicationError(Exception):
    pass


_ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header",
)


def _results(
    ids: Sequence[Any],
    outcomes: Sequence[T | RecordError],
    all_or_none: bool,
    apply: Callable[[T], str],
) -> list[dict[str, Any]]:
    """SaveResults / DeleteResults in input order; `apply` runs only for rows that succeed.

    With allOrNone one failed row fails every row and nothing is written.
    """
    failed = any(isinstance(o, RecordError) for o in outcomes)
    results: list[dict[str, Any]] = []
    for record_id, outcome in zip(ids, outcomes, strict=True):
        if not isinstance(outcome, RecordError) and not (all_or_none and failed):
            results.append({"id": apply(outcome), "success": True, "errors": []})
            continue
        error = outcome if isinstance(outcome, RecordError) else _ROLLED_BACK
        results.append({"id": record_id, "success": False, "errors": [error.as_json()]})
    return results


@dataclass(frozen=True)
class _Cursor:
    """A query's result set; kept under its id while more pages remain to be fetched."""

    id: str
    sobject: str
    fields: tuple[str, ...]
    rows: list[dict[str, Any]]


def _parse_param(value: str | None) -> datetime:
    if not value:
        raise ValueError("missing")
    text = value.strip().replace(" ", "+").replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _project(
    sobject: str,
    version: str,
    record: Mapping[str, Any],
    fields: tuple[str, ...],
    parent: Callable[[str, Any], Mapping[str, Any] | None] = lambda _s, _i: None,
) -> dict[str, Any]:
    """`record` as a query returns it; a parent's fields (`Account.Name`) nested under the
    parent's name, which is null when the reference is empty (as Salesforce answers)."""
    out: dict[str, Any] = {
        "attributes": {
            "type": sobject,
            "url": f"/services/data/{version}/sobjects/{sobject}/{record.get('Id')}",
        }
    }
    for name in fields:
        relation, dot, child = name.partition(".")
        if not dot:
            out[name] = record.get(name)
            continue
        if relation not in out:
            found = parent(relation, record.get(f"{relation}Id"))
            out[relation] = None if found is None else _project(relation, version, found, ())
        if out[relation] is not None:
            out[relation][child] = (parent(relation, record.get(f"{relation}Id")) or {}).get(child)
    return out


def _picklist_value(stage: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "value": stage["ApiName"],
        "label": stage["MasterLabel"],
        "active": bool(stage.get("IsActive", True)),
        "defaultValue": False,
    }


_RECORD_TYPE_REFUSALS = {400: "INVALID_ID_FIELD", 403: "INSUFFICIENT_ACCESS", 404: "NOT_FOUND"}


def _not_found_record_type(status: int, record_type: str) -> SandboxResponse:
    """The UI API's refusal of a record type's stage values (an error array, as REST's)."""
    code = _RECORD_TYPE_REFUSALS.get(status, "NOT_FOUND")
    return SandboxResponse(
        status, [{"errorCode": code, "message": f"Invalid record type id: {record_type}"}]
    )
