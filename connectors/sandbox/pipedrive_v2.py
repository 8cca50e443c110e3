"""Pipedrive API v2 over the v1-shaped store: records rendered, write bodies translated, cursors.

The store (pipedrive_store.py) and the dataset keep the v1 record shape; these pure functions
turn a stored record into its v2 shape (Pipedrive's v2 OpenAPI document and the v2 migration guide:
ids instead of objects, RFC 3339 timestamps, custom fields under `custom_fields`, booleans for
flags) and a v2 write body into the v1 body the store applies, with v2's strict validation:
booleans only true/false, numbers never taken from strings.

A cursor is the sort key of the last item of its page (base64 JSON), never a position: a deal
that leaves the list between two pages (deleted, archived) cannot make the next page skip one.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from connectors.sandbox.pipedrive_store import CUSTOM_KEY
from connectors.sandbox.server import BadRequest
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID, PD_FIELD_HUBSPOT_ID, PD_FIELD_SALESFORCE_ID

__all__ = [
    "STANDARD_FIELDS",
    "Page",
    "custom_field",
    "custom_fields",
    "custom_keys",
    "deal_v2",
    "decode_cursor",
    "encode_cursor",
    "included",
    "org_v2",
    "page",
    "pd_stamp",
    "pipeline_v2",
    "rfc3339",
    "stage_v2",
    "write_body",
]

T = TypeVar("T")
Key = tuple[Any, ...]
Page = tuple[list[T], Key | None]

_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def rfc3339(stamp: Any) -> str | None:
    """A stored "YYYY-MM-DD HH:MM:SS" (UTC) as v2 writes it: "YYYY-MM-DDTHH:MM:SSZ"."""
    if not isinstance(stamp, str) or not _STAMP.match(stamp):
        return None if stamp in (None, "") else str(stamp)
    return stamp.replace(" ", "T") + "Z"


def pd_stamp(text: str, name: str) -> str:
    """An RFC 3339 query value (`updated_since`) as the store's UTC "YYYY-MM-DD HH:MM:SS"."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid {name}: {text!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:  # RFC 3339 requires an offset; the safe reading is to refuse
        raise BadRequest(f"Invalid {name}: {text!r} has no time zone offset")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ref_id(value: Any) -> int | None:
    if isinstance(value, Mapping):
        value = value.get("value", value.get("id"))
    return None if value in (None, "") else int(value)


def _number(value: Any) -> Any:
    return None if value in (None, "") else Decimal(str(value))


def custom_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """v1's root-level custom fields (40-hex keys) nested as v2 does: text as it is, a
    monetary field (one with a `<key>_currency` sibling) as {value, currency} (migration
    guide, "Custom Fields")."""
    fields: dict[str, Any] = {}
    for key, value in record.items():
        if len(key) != 40 or not CUSTOM_KEY.match(key):
            continue
        currency = f"{key}_currency"
        fields[key] = (
            {"value": _number(value), "currency": record[currency]}
            if currency in record and value not in (None, "")
            else value
        )
    return fields


def _field(code: str, name: str, kind: str, *, custom: bool = False) -> dict[str, Any]:
    """One `GET /api/v2/dealFields` item (the spec's required keys)."""
    return {
        "field_name": name,
        "field_code": code,
        "description": "",
        "field_type": kind,
        "options": None,
        "subfields": None,
        "is_custom_field": custom,
        "is_optional_response_field": False,
    }


# The standard deal fields the sandbox lists (of many: enough to show they are listed too).
STANDARD_FIELDS = tuple(
    _field(code, name, kind)
    for code, name, kind in (
        ("title", "Title", "varchar"),
        ("value", "Value", "monetary"),
        ("owner_id", "Owner", "user"),
        ("org_id", "Organization", "org"),
        ("pipeline_id", "Pipeline", "int"),
        ("stage_id", "Stage", "stage"),
        ("status", "Status", "status"),
        ("expected_close_date", "Expected close date", "date"),
        ("probability", "Probability", "double"),
    )
)
# crmsync's own fields, which the sandbox's account defines whether a deal holds them or not.
_CRMSYNC_FIELDS = {
    PD_FIELD_SALESFORCE_ID: "Salesforce opportunity id",
    PD_FIELD_HUBSPOT_ID: "HubSpot deal id",
    PD_FIELD_CRMSYNC_ID: "crmsync id",
}


def custom_keys(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """The custom field keys (40-hex) the stored records carry, crmsync's always among them."""
    keys = set(_CRMSYNC_FIELDS)
    for record in records:
        keys.update(k for k in record if len(k) == 40 and CUSTOM_KEY.match(k))
    return keys


def custom_field(key: str) -> dict[str, Any]:
    """A custom field's `GET /api/v2/dealFields` item (crmsync's named, others by key)."""
    return _field(key, _CRMSYNC_FIELDS.get(key, key), "varchar", custom=True)


# The optional fields GET /deals, /deals/archived and /deals/{id} add where `include_fields`
# names them (v2 spec). The sandbox keeps first_won_time; of the others (activities, products,
# files, mail) it keeps nothing, and answers null.
INCLUDABLE = frozenset(
    {
        "next_activity_id", "last_activity_id", "first_won_time", "products_count",
        "files_count", "notes_count", "followers_count", "email_messages_count",
        "activities_count", "done_activities_count", "undone_activities_count",
        "participants_count", "last_incoming_mail_time", "last_outgoing_mail_time",
        "smart_bcc_email", "source_lead_id",
    }
)  # fmt: skip


def included(text: str | None) -> frozenset[str]:
    """The fields an `include_fields` value names; one outside INCLUDABLE is a 400."""
    names = frozenset(n.strip() for n in (text or "").split(",") if n.strip())
    unknown = sorted(names - INCLUDABLE)
    if unknown:
        raise BadRequest(f"Invalid include_fields: {', '.join(unknown)}")
    return names


def deal_v2(deal: Mapping[str, Any], include: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A stored deal as `GET /api/v2/deals/{id}` answers it, with the `include` fields."""
    extra: dict[str, Any] = dict.fromkeys(include)
    if "first_won_time" in include:
        extra["first_won_time"] = rfc3339(deal.get("first_won_time"))
    return _deal_v2(deal) | extra


def _deal_v2(deal: Mapping[str, Any]) -> dict[str, Any]:
    status = deal.get("status")
    return {
        "id": deal["id"],
        "title": deal.get("title"),
        "owner_id": _ref_id(deal.get("user_id")),
        "person_id": _ref_id(deal.get("person_id")),
        "org_id": _ref_id(deal.get("org_id")),
        "pipeline_id": deal.get("pipeline_id"),
        "stage_id": deal.get("stage_id"),
        "value": _number(deal.get("value")) or 0,
        "currency": deal.get("currency"),
        "add_time": rfc3339(deal.get("add_time")),
        "update_time": rfc3339(deal.get("update_time")),
        "stage_change_time": rfc3339(deal.get("stage_change_time")),
        "close_time": rfc3339(deal.get("close_time")),
        "won_time": rfc3339(deal.get("won_time")),
        "lost_time": rfc3339(deal.get("lost_time")),
        "expected_close_date": deal.get("expected_close_date"),
        # The store keeps v1's "deleted" status (what the deal was is in its flow); v2 names a
        # deleted deal by `is_deleted` and lists it under `status=deleted`, so the status
        # itself is left as stored (unverified: the docs do not say what v2 shows).
        "status": status,
        "is_deleted": status == "deleted",
        "is_archived": bool(deal.get("is_archived")),
        "archive_time": rfc3339(deal.get("archive_time")),
        "probability": _number(deal.get("probability")),
        "lost_reason": deal.get("lost_reason"),
        "visible_to": None if deal.get("visible_to") is None else int(deal["visible_to"]),
        "label_ids": [int(x) for x in str(deal.get("label") or "").split(",") if x.isdigit()],
        "origin": deal.get("origin") or "API",
        "custom_fields": custom_fields(deal),
    }


def pipeline_v2(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """v1's `active` flag is v2's `is_deleted` negated (a pipeline is active or deleted);
    `deal_probability` is `is_deal_probability_enabled`."""
    return {
        "id": pipeline["id"],
        "name": pipeline.get("name"),
        "order_nr": pipeline.get("order_nr"),
        "is_deleted": not pipeline.get("active", True),
        "is_deal_probability_enabled": bool(pipeline.get("deal_probability")),
        "add_time": rfc3339(pipeline.get("add_time")),
        "update_time": rfc3339(pipeline.get("update_time")),
    }


def stage_v2(stage: Mapping[str, Any]) -> dict[str, Any]:
    """v1's `active_flag` ("whether the stage is active or deleted") is `is_deleted` negated;
    `rotten_flag`/`rotten_days` are `is_deal_rot_enabled`/`days_to_rotten`."""
    return {
        "id": stage["id"],
        "order_nr": stage.get("order_nr"),
        "name": stage.get("name"),
        "is_deleted": not stage.get("active_flag", True),
        "deal_probability": stage.get("deal_probability"),
        "pipeline_id": stage.get("pipeline_id"),
        "is_deal_rot_enabled": bool(stage.get("rotten_flag")),
        "days_to_rotten": stage.get("rotten_days"),
        "add_time": rfc3339(stage.get("add_time")),
        "update_time": rfc3339(stage.get("update_time")),
    }


def org_v2(org: Mapping[str, Any]) -> dict[str, Any]:
    address = org.get("address")
    return {
        "id": org["id"],
        "name": org.get("name"),
        "owner_id": _ref_id(org.get("owner_id")),
        "add_time": rfc3339(org.get("add_time")),
        "update_time": rfc3339(org.get("update_time")),
        "is_deleted": not org.get("active_flag", True),
        "visible_to": None if org.get("visible_to") is None else int(org["visible_to"]),
        "address": {"value": address} if isinstance(address, str) else address,
        "label_ids": [],
        "custom_fields": custom_fields(org),
    }


# -- write bodies ---------------------------------------------------------------------------------

_INTS = {"owner_id": "user_id", "person_id": "person_id", "org_id": "org_id"}
_INTS |= {"pipeline_id": "pipeline_id", "stage_id": "stage_id", "visible_to": "visible_to"}
_NULLABLE_INTS = frozenset({"person_id", "org_id"})
_NUMBERS = {"value": False, "probability": True}  # name: nullable
_TEXTS = {"title": False, "currency": False, "lost_reason": True, "expected_close_date": True}
_TEXTS |= {"archive_time": True, "status": False}
_BOOLEANS = frozenset({"is_archived", "is_deleted"})
# Spec fields the store derives itself (times from status changes) or does not keep (labels):
# accepted, as the spec lists them, and left alone.
_IGNORED = frozenset({"close_time", "won_time", "lost_time", "label_ids", "add_time"})
_WRITE_STATUSES = ("open", "won", "lost")  # deleting is DELETE only


def _invalid(name: str, value: Any, kind: str) -> BadRequest:
    return BadRequest(f"Invalid {name}: {value!r} is not {kind}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal | float) and not isinstance(value, bool)


def write_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A v2 deal write body (POST or PATCH) as the store's v1 body, validated as v2 does:
    a boolean is true or false, a number is a JSON number (no string coerced), an unknown
    field is refused (the safe reading of "stricter input validation")."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in _INTS:
            if value is None and name in _NULLABLE_INTS:
                out[_INTS[name]] = None
            elif isinstance(value, int) and not isinstance(value, bool):
                out[_INTS[name]] = str(value) if name == "visible_to" else value
            else:
                raise _invalid(name, value, "an integer")
        elif name in _NUMBERS:
            if not (_is_number(value) or (value is None and _NUMBERS[name])):
                raise _invalid(name, value, "a number")
            out[name] = value
        elif name in _TEXTS:
            if not (isinstance(value, str) or (value is None and _TEXTS[name])):
                raise _invalid(name, value, "a string")
            if name == "status" and value not in _WRITE_STATUSES:
                raise BadRequest(f"Invalid status: {value!r} (one of {', '.join(_WRITE_STATUSES)})")
            out[name] = value
        elif name in _BOOLEANS:
            if not isinstance(value, bool):
                raise _invalid(name, value, "a boolean (true or false)")
            out[name] = value
        elif name == "custom_fields":
            out |= _custom_body(value)
        elif name not in _IGNORED:
            raise BadRequest(f"Unknown field: {name!r}")
    return out


def _custom_body(fields: Any) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        raise _invalid("custom_fields", fields, "an object")
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if not CUSTOM_KEY.match(str(key)):
            raise BadRequest(f"Unknown custom field: {key!r}")
        if isinstance(value, Mapping):  # monetary: {value, currency}
            amount = value.get("value")
            if not (amount is None or _is_number(amount)):
                raise _invalid(f"custom_fields.{key}.value", amount, "a number")
            out[key], out[f"{key}_currency"] = amount, value.get("currency")
        elif value is None or isinstance(value, str) or _is_number(value):
            out[key] = value
        else:
            raise _invalid(f"custom_fields.{key}", value, "a field value")
    return out


# -- cursor paging --------------------------------------------------------------------------------


def encode_cursor(sort_by: str, key: Key) -> str:
    raw = json.dumps({"by": sort_by, "key": list(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, sort_by: str, shape: Sequence[type]) -> Key:
    """The key a cursor carries; 400 if it is not one of ours, or was made for another sort
    (`shape`: the types of the sort key's parts)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        decoded = json.loads(raw)
        key = tuple(decoded["key"])
        ok = decoded["by"] == sort_by and len(key) == len(shape)
        ok = ok and all(type(part) is kind for part, kind in zip(key, shape, strict=True))
    except (binascii.Error, ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise BadRequest("Invalid cursor")
    return key


def page(
    ordered: Sequence[T],
    key: Callable[[T], Key],
    after: Key | None,
    *,
    descending: bool,
    keep: Callable[[T], bool],
    limit: int,
) -> Page[T]:
    """Up to `limit` items of `ordered` (ascending by `key`) that `keep` takes, following the
    item whose key is `after` in the requested direction; and the key to continue from, if
    more follow."""
    walk: Iterator[T]
    if descending:
        end = len(ordered) if after is None else bisect.bisect_left(ordered, after, key=key)
        walk = (ordered[n] for n in range(end - 1, -1, -1))
    else:
        start = 0 if after is None else bisect.bisect_right(ordered, after, key=key)
        walk = (ordered[n] for n in range(start, len(ordered)))
    items = list(itertools.islice((item for item in walk if keep(item)), limit + 1))
    more = len(items) > limit
    items = items[:limit]
    return items, (key(items[-1]) if more else None)
