"""The Salesforce emulator's data: tables, field schemas, ids, modstamps and record writes.

Writes behave as the org would: they bump LastModifiedDate/SystemModstamp (wall clock, UTC,
strictly increasing), derive IsClosed/IsWon/Probability/ForecastCategory from the stage, and
append an OpportunityHistory row when a record is created or its stage changes. In a
multi-currency org (the dataset's Opportunities carry CurrencyIsoCode), a record created without
a CurrencyIsoCode gets the personal currency of the user the API session runs as
(`User.DefaultCurrencyIsoCode`, else the corporate currency), as Salesforce stamps it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.sandbox.salesforce_record_types import RecordTypes
from connectors.sandbox.soql import datetime_key
from mapping.salesforce_ids import case_safe_id

__all__ = [
    "CORPORATE_CURRENCY",
    "READ_ONLY",
    "Change",
    "RecordError",
    "SalesforceStore",
    "format_stamp",
    "sf_id",
]

TABLES = (
    "OpportunityStage", "User", "Account", "Opportunity", "OpportunityHistory", "RecordType",
    "BusinessProcess",
)  # fmt: skip
_CUSTOM_LINKS = ("HubSpot_Deal_Id__c", "Pipedrive_Deal_Id__c", "Crmsync_Id__c")
_STANDARD: dict[str, dict[str, str]] = {
    "Opportunity": {
        "Id": "id", "Name": "string", "AccountId": "reference", "OwnerId": "reference",
        "StageName": "picklist", "Amount": "currency", "CloseDate": "date",
        "Probability": "percent", "ForecastCategory": "picklist",
        "ForecastCategoryName": "picklist", "IsClosed": "boolean", "IsWon": "boolean",
        "IsDeleted": "boolean", "CreatedDate": "datetime", "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime", "CreatedById": "reference",
        "LastModifiedById": "reference", "Description": "textarea", "Type": "picklist",
        "LeadSource": "picklist", "NextStep": "string", "ExpectedRevenue": "currency",
        **dict.fromkeys(_CUSTOM_LINKS, "string"),
    },
    "OpportunityStage": {
        "Id": "id", "ApiName": "string", "MasterLabel": "string", "IsActive": "boolean",
        "IsClosed": "boolean", "IsWon": "boolean", "DefaultProbability": "percent",
        "ForecastCategory": "picklist", "ForecastCategoryName": "string", "SortOrder": "int",
        "Description": "string", "CreatedDate": "datetime", "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "User": {
        "Id": "id", "Name": "string", "FirstName": "string", "LastName": "string",
        "Email": "email", "Username": "string", "IsActive": "boolean",
        "CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime",
    },
    # An Opportunity's AccountId names one. Its own stamps: an Account's edit stamps the
    # Account, never its Opportunities (Salesforce's SystemModstamp reflects a change of the
    # record itself, not of a parent whose field a query reads through the relationship).
    "Account": {
        "Id": "id", "Name": "string", "CreatedDate": "datetime", "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "RecordType": {
        "Id": "id", "DeveloperName": "string", "Name": "string", "SobjectType": "string",
        "IsActive": "boolean", "BusinessProcessId": "reference",
    },
    "BusinessProcess": {
        "Id": "id", "Name": "string", "TableEnumOrId": "string", "IsActive": "boolean",
    },
    "OpportunityHistory": {
        "Id": "id", "OpportunityId": "reference", "StageName": "picklist",
        "Amount": "currency", "CloseDate": "date", "Probability": "percent",
        "ForecastCategory": "picklist", "ExpectedRevenue": "currency",
        "CreatedById": "reference", "CreatedDate": "datetime", "IsDeleted": "boolean",
        "SystemModstamp": "datetime",
    },
}  # fmt: skip
# Derived or system fields a client may not write.
READ_ONLY = frozenset(
    {"Id", "IsClosed", "IsWon", "IsDeleted", "CreatedDate", "LastModifiedDate",
     "SystemModstamp", "CreatedById", "LastModifiedById", "ExpectedRevenue", "ForecastCategory"}
)  # fmt: skip
_REQUIRED_ON_CREATE = ("Name", "StageName", "CloseDate")
# Text field lengths (Salesforce field reference: Opportunity.Name string(120), NextStep
# string(255); the custom text fields a link lives in, Text(255)). Longer is STRING_TOO_LONG.
_LENGTHS = {"Name": 120, "NextStep": 255, **dict.fromkeys(_CUSTOM_LINKS, 255)}
_LABELS = {"Name": "Opportunity Name", "NextStep": "Next Step"}
# Digits before the decimal point a number field keeps (precision - scale: Amount is
# currency(18, 2)); more is NUMBER_OUTSIDE_VALID_RANGE.
_INTEGER_DIGITS = {"Amount": 16, "ExpectedRevenue": 16}
_PREFIX = {"Opportunity": "006", "OpportunityHistory": "008", "User": "005"}
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_API_USER = "005000000000000AAA"
# The emulated org's corporate currency: a user's personal currency until someone changes it.
CORPORATE_CURRENCY = "USD"


class RecordError(Exception):
    """One record's failure inside a write, as a SaveResult error."""

    def __init__(self, code: str, message: str, fields: Iterable[str] = ()):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, list(fields)

    def as_json(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def sf_id(prefix: str, number: int) -> str:
    """An 18-character id with Salesforce's case-safe checksum suffix."""
    return case_safe_id(f"{prefix}{number:012d}")


def format_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "+0000"


def _infer(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "double"
    if isinstance(value, str) and _DATE_RE.match(value):
        return "date"
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", value):
        return "datetime"
    return "string"


@dataclass(frozen=True)
class Change:
    """A validated write to one Opportunity (record None = a create)."""

    record: dict[str, Any] | None
    values: dict[str, Any]


class SalesforceStore:
    """The org's tables (deep-copied from the dataset), their schemas and indexes."""

    def __init__(self, data: Mapping[str, Any]):
        self.tables: dict[str, list[dict[str, Any]]] = {
            name: [dict(r) for r in data.get(name, [])] for name in TABLES
        }
        self.schemas = self._schemas()
        self._parents: dict[str, dict[str, Mapping[str, Any]]] = {}  # sobject -> id -> record
        self.by_id = {r["Id"]: r for r in self.tables["Opportunity"]}
        self.users = {r["Id"] for r in self.tables["User"]}
        # The user the API session runs as (the dataset's first User): it makes every write,
        # and Salesforce makes it the owner of a record created without an OwnerId.
        self.api_user = next((r["Id"] for r in self.tables["User"]), _API_USER)
        # StageName holds a stage's picklist API name; its label (MasterLabel, which an admin
        # may rename) is no value of it, and a write giving one is refused.
        self.stages = {
            r.get("ApiName") or r["MasterLabel"]: r for r in self.tables["OpportunityStage"]
        }
        self.record_types = RecordTypes(self.tables["RecordType"], self.tables["BusinessProcess"])
        if self.record_types:  # the field exists only in an org with Opportunity record types
            self.schemas["Opportunity"]["RecordTypeId"] = "reference"
        stamps = [r.get("SystemModstamp") for t in self.tables.values() for r in t]
        self._last = max((datetime_key(s) for s in stamps if isinstance(s, str)), default="")
        self._ids = itertools.count(len(self.tables["Opportunity"]) + 1_000_000)
        self._history_ids = itertools.count(len(self.tables["OpportunityHistory"]) + 1_000_000)

    def parent(self, sobject: str, record_id: Any) -> Mapping[str, Any] | None:
        """The `sobject` record `record_id` names (an Opportunity's Account), if any."""
        if not record_id:
            return None
        index = self._parents.get(sobject)
        if index is None:
            index = self._parents[sobject] = {r["Id"]: r for r in self.tables.get(sobject, [])}
        return index.get(record_id)

    def _schemas(self) -> dict[str, dict[str, str]]:
        schemas = {}
        for name in TABLES:
            schema = dict(_STANDARD[name])
            for record in self.tables[name]:
                for key, value in record.items():
                    if key not in schema and key != "attributes" and value is not None:
                        schema[key] = _infer(value)
            schemas[name] = schema
        # CurrencyIsoCode exists only in multi-currency orgs: here, when the data carries it;
        # there every user has a personal currency too.
        if any("CurrencyIsoCode" in r for r in self.tables["Opportunity"][:1000]):
            schemas["Opportunity"]["CurrencyIsoCode"] = "picklist"
            schemas["User"]["DefaultCurrencyIsoCode"] = "picklist"
        return schemas

    @property
    def multi_currency(self) -> bool:
        return "CurrencyIsoCode" in self.schemas["Opportunity"]

    def personal_currency(self) -> str:
        """The currency of the API session's user, which Salesforce gives a record created
        without a CurrencyIsoCode in a multi-currency org."""
        user = next((r for r in self.tables["User"] if r.get("Id") == self.api_user), {})
        return str(user.get("DefaultCurrencyIsoCode") or CORPORATE_CURRENCY)

    # -- clock and ids ----------------------------------------------------------------------

    def stamp(self) -> str:
        """Now, strictly after every modstamp handed out or loaded so far."""
        now = format_stamp(datetime.now(UTC))
        if datetime_key(now) <= self._last:
            last = datetime.strptime(self._last, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
            now = format_stamp(last + timedelta(milliseconds=1))
        self._last = datetime_key(now)
        return now

    def new_id(self) -> str:
        while True:
            candidate = sf_id("006", next(self._ids))
            if candidate not in self.by_id:
                return candidate

    # -- validation -------------------------------------------------------------------------

    def check_update(self, record_id: Any, values: Mapping[str, Any]) -> Change:
        record = self._live(
            record_id, f"Opportunity ID: id value of incorrect type: {record_id}", ["Id"]
        )
        return Change(record, self._check_values(values, create=False, record=record))

    def check_delete(self, record_id: Any) -> dict[str, Any]:
        """The live record a delete would move to the recycle bin (DeleteResult errors)."""
        return self._live(record_id, f"malformed id {record_id}", [])

    def _live(self, record_id: Any, malformed: str, fields: list[str]) -> dict[str, Any]:
        if not isinstance(record_id, str) or not _ID_RE.match(record_id):
            raise RecordError("MALFORMED_ID", malformed, fields)
        record = self.by_id.get(record_id) or self._by_short_id(record_id)
        if record is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields)
        if record.get("IsDeleted"):
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
        return record

    def _by_short_id(self, record_id: str) -> dict[str, Any] | None:
        if len(record_id) != 15:
            return None
        return next((r for i, r in self.by_id.items() if i[:15] == record_id), None)

    def check_create(self, values: Mapping[str, Any]) -> Change:
        checked = self._check_values(values, create=True)
        missing = [f for f in _REQUIRED_ON_CREATE if checked.get(f) in (None, "")]
        if missing:
            raise RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        return Change(None, checked)

    def _check_values(
        self,
        values: Mapping[str, Any],
        *,
        create: bool,
        record: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        schema = self.schemas["Opportunity"]
        lower = {k.lower(): k for k in schema}
        out: dict[str, Any] = {}
        for raw_name, value in values.items():
            if raw_name in ("attributes", "id") or (raw_name == "Id" and not create):
                continue
            name = lower.get(raw_name.lower())
            if name is None:
                raise RecordError(
                    "INVALID_FIELD",
                    f"No such column '{raw_name}' on sobject of type Opportunity",
                    [raw_name],
                )
            if name in READ_ONLY:
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security settings "
                    "of this field and verify that it is read/write for your profile or "
                    "permission set.",
                    [name],
                )
            out[name] = _check_value(name, schema[name], value)
        if out.get("StageName") is not None and out["StageName"] not in self.stages:
            raise RecordError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Stage: bad value for restricted picklist field: {out['StageName']}",
                ["StageName"],
            )
        self._check_record_type(out, record or {})
        for name in ("Name", "StageName", "CloseDate"):
            if name in out and out[name] in (None, "") and not create:
                raise RecordError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name]
                )
        owner = out.get("OwnerId")
        if owner is not None and self.users and owner not in self.users:
            raise RecordError(
                "INVALID_CROSS_REFERENCE_KEY", "Owner ID: owner cannot be blank", ["OwnerId"]
            )
        if owner is not None and owner in self.inactive_users():
            # An Opportunity cannot be given to a deactivated user (without the org permission
            # "Update Records with Inactive Owners"); one it already has it keeps.
            raise RecordError(
                "INACTIVE_OWNER_OR_USER",
                f"operation performed with inactive user [{owner[:15]}] as owner of opportunity",
                ["OwnerId"],
            )
        return out

    def _check_record_type(self, out: Mapping[str, Any], record: Mapping[str, Any]) -> None:
        """A record type must be one of the org's, and the stage one its sales process holds
        (the process of the record type written, else of the one the record has)."""
        record_type = out.get("RecordTypeId", record.get("RecordTypeId"))
        # A record keeps a record type deactivated since; a write giving one to a record is
        # refused as for an unknown one (Salesforce's answer to a record type not assignable).
        given = "RecordTypeId" in out and out["RecordTypeId"] != record.get("RecordTypeId")
        usable = self.record_types.active if given else self.record_types.known
        if record_type and not usable(str(record_type)):
            raise RecordError(
                "INVALID_CROSS_REFERENCE_KEY",
                f"Record Type ID: this ID value isn't valid for the user: {record_type}",
                ["RecordTypeId"],
            )
        stage = out.get("StageName", record.get("StageName"))
        changed = "StageName" in out or "RecordTypeId" in out
        if changed and stage and not self.record_types.allows(record_type, str(stage)):
            raise RecordError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Stage: bad value for restricted picklist field: {stage}",
                ["StageName"],
            )

    def inactive_users(self) -> set[str]:
        """The ids of the deactivated Users (IsActive false), as the User table holds them now."""
        return {r["Id"] for r in self.tables["User"] if r.get("IsActive") is False}

    # -- applying ---------------------------------------------------------------------------

    def apply(self, change: Change) -> str:
        stamp = self.stamp()
        values = dict(change.values)
        record = change.record
        if record is None:
            record = {
                "Id": self.new_id(),
                "IsDeleted": False,
                "CreatedDate": stamp,
                "CreatedById": self.api_user,
                "OwnerId": self.api_user,
            }
            if self.multi_currency and values.get("CurrencyIsoCode") is None:
                values["CurrencyIsoCode"] = self.personal_currency()
            self.tables["Opportunity"].append(record)
            self.by_id[record["Id"]] = record
            old_stage = None
        else:
            old_stage = record.get("StageName")
        stage = self.stages.get(values.get("StageName") or record.get("StageName") or "")
        if values.get("StageName", old_stage) != old_stage and stage is not None:
            values.setdefault("Probability", stage.get("DefaultProbability"))
        record.update(values)
        if stage is not None:
            record["IsClosed"] = bool(stage.get("IsClosed"))
            record["IsWon"] = bool(stage.get("IsWon"))
            record["ForecastCategoryName"] = stage.get("ForecastCategoryName")
            record["ForecastCategory"] = stage.get("ForecastCategory")
        record["LastModifiedDate"] = record["SystemModstamp"] = stamp
        record["LastModifiedById"] = self.api_user
        if record.get("StageName") != old_stage:
            self._history(record, stamp)
        return str(record["Id"])

    def delete(self, record: dict[str, Any]) -> str:
        """Into the recycle bin: still in the table (queryAll, the deleted endpoint, the dump)
        with IsDeleted set and a fresh SystemModstamp, the deletedDate Salesforce reports."""
        stamp = self.stamp()
        record["IsDeleted"] = True
        record["LastModifiedDate"] = record["SystemModstamp"] = stamp
        record["LastModifiedById"] = self.api_user
        return str(record["Id"])

    def undelete(self, record_id: str) -> str:
        """Out of the recycle bin (the UI's Undelete, SOAP `undelete()`, Apex `undelete`; REST
        has no call for it): the same Id, `IsDeleted` false again, so `query` lists it again,
        and a fresh SystemModstamp (LastModifiedDate with it, as `delete` stamps both), so a
        read by SystemModstamp sees it come back. INVALID_CROSS_REFERENCE_KEY if the record is
        not in the recycle bin."""
        record = self.by_id.get(record_id)
        if record is None or not record.get("IsDeleted"):
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        stamp = self.stamp()
        record["IsDeleted"] = False
        record["LastModifiedDate"] = record["SystemModstamp"] = stamp
        record["LastModifiedById"] = self.api_user
        return str(record["Id"])

    def rename_account(self, account_id: str, name: str) -> str:
        """An Account renamed, as a person does in the org: the Account is stamped, and its
        Opportunities, which read `Account.Name` through AccountId, keep their SystemModstamp
        (a read by it does not see them change). INVALID_CROSS_REFERENCE_KEY if no such
        Account."""
        account = next((r for r in self.tables["Account"] if r["Id"] == account_id), None)
        if account is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        stamp = self.stamp()
        account.update(Name=_saved(name), LastModifiedDate=stamp, SystemModstamp=stamp)
        return stamp

    def add_account(self, name: str) -> str:
        """An Account made in the org (as a person makes one: crmsync never does), stamped;
        its Id, which an Opportunity's AccountId may name from then on."""
        stamp = self.stamp()
        account_id = sf_id("001", len(self.tables["Account"]) + 2_000_000)
        account = {
            "Id": account_id,
            "Name": _saved(name),
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
        }
        self.tables["Account"].append(account)
        self._parents.get("Account", {})[account_id] = account
        return account_id

    def purge_deleted(self) -> int:
        """The recycle bin emptied, as Salesforce does 15 days after a delete: the records
        leave queryAll and the deleted endpoint too."""
        rows = self.tables["Opportunity"]
        kept = [r for r in rows if not r.get("IsDeleted")]
        for record in rows:
            if record.get("IsDeleted"):
                del self.by_id[record["Id"]]
        self.tables["Opportunity"] = kept
        return len(rows) - len(kept)

    def _history(self, record: Mapping[str, Any], stamp: str) -> None:
        self.tables["OpportunityHistory"].append(
            {
                "Id": sf_id("008", next(self._history_ids)),
                "OpportunityId": record["Id"],
                "StageName": record.get("StageName"),
                "Amount": record.get("Amount"),
                "CloseDate": record.get("CloseDate"),
                "Probability": record.get("Probability"),
                "ForecastCategory": record.get("ForecastCategory"),
                "CreatedById": self.api_user,
                "CreatedDate": stamp,
                "SystemModstamp": stamp,
                "IsDeleted": False,
            }
        )


def _check_value(name: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    ok = True
    if kind in ("currency", "percent", "double", "int"):
        ok = isinstance(value, (int, Decimal, float)) and not isinstance(value, bool)
        if ok and name == "Probability" and not 0 <= value <= 100:
            raise RecordError(
                "NUMBER_OUTSIDE_VALID_RANGE", "Probability: value outside of valid range", [name]
            )
        digits = _INTEGER_DIGITS.get(name)
        if ok and digits is not None and abs(Decimal(str(value))) >= Decimal(10) ** digits:
            raise RecordError(
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{name}: value outside of valid range on numeric field: {value}",
                [name],
            )
    elif kind == "date":
        ok = isinstance(value, str) and bool(_DATE_RE.match(value)) and _valid_date(value)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, str)
        if ok and len(value) > _LENGTHS.get(name, len(value)):
            raise RecordError(
                "STRING_TOO_LONG",
                f"{_LABELS.get(name, name)}: data value too large: {value} "
                f"(max length={_LENGTHS[name]})",
                [name],
            )
    if not ok:
        raise RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            f"{name}: value not of required type: {value}",
            [name],
        )
    return value


def _valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# What Java's String.trim strips: every character up to the space (U+0020), no other (a
# no-break space, U+00A0, is kept, as Salesforce keeps it).
_TRIMMED = "".join(chr(c) for c in range(0x21))


def _saved(text: str) -> str:
    """A string field's value as Salesforce saves it: never with whitespace around (the SOAP
    API's rule, which sObject fields follow: "they can never include leading and trailing
    whitespace"), so an Account a person typed as "Acme Corp " is named "Acme Corp"."""
    return text.strip(_TRIMMED)
