"""The data behind the Pipedrive emulator: deals, their change flow, and the indexes that page them.

Records are never mutated in place: a write builds a new deal dict and swaps it in, so a
response being serialised outside the lock never sees half a write, and the loaded dataset can
be shared without a deep copy (1M deals fit in memory once, not twice).

Pipedrive timestamps have 1-second resolution; every write also takes the next value of an
internal sequence, and the update-time index is ordered by (update_time, sequence) so that
`recents` and `sort=update_time` list changes in the order they happened.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.sandbox.pipedrive_orgs import OrgError, OrgStore
from mapping.currencies import ISO_4217

__all__ = ["STATUSES", "DealStore", "WriteError", "deal_filter", "pd_time"]

STATUSES = ("open", "won", "lost", "deleted")
CUSTOM_KEY = re.compile(r"^[0-9a-f]{40}$")
# A monetary custom field's currency, beside its amount (v1 "<key>_currency", v2 {value, currency})
CUSTOM_CURRENCY = re.compile(r"^[0-9a-f]{40}_currency$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PLAIN = ("title", "lost_reason", "visible_to", "person_id")
_ARCHIVE_FIELDS = frozenset({"is_archived", "archive_time"})  # all a PUT edits of an archived deal


def pd_time(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))


def deal_filter(wanted: Mapping[str, Collection[str]]) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a deal has, in each field of `wanted` (`stage_id`, `user_id`, `org_id`, ...),
    one of the ids given (as text); the v1 and v2 lists' filters. A field holding an object
    (`user_id`, `org_id`) is compared by the id it names."""

    def ref(value: Any) -> str:
        if isinstance(value, Mapping):
            value = value.get("id", value.get("value"))
        return str(value)

    def keep(deal: Mapping[str, Any]) -> bool:
        return all(ref(deal.get(field)) in ids for field, ids in wanted.items())

    return keep


class WriteError(ValueError):
    """A write refused with the API's status and message (400 invalid, 404 missing)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _user_ref(user: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": user["id"],
        "name": user.get("name"),
        "email": user.get("email"),
        "has_pic": False,
        "pic_hash": None,
        "active_flag": bool(user.get("active_flag", True)),
        "value": user["id"],
    }


def _int(value: Any, what: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise WriteError(400, f"Invalid {what}: {value!r}") from None


def _number(value: Any, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise WriteError(400, f"Invalid {what}: {value!r} is not a number") from None
    if not number.is_finite():
        raise WriteError(400, f"Invalid {what}: {value!r} is not a number")
    return number


class DealStore:
    """Deals, flows, users, pipelines and stages of one emulated Pipedrive company."""

    def __init__(self, data: Mapping[str, Any], clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.pipelines = sorted(data.get("pipelines") or [], key=lambda p: p["id"])
        self.stages = {int(s["id"]): s for s in data.get("stages") or []}
        self.users = {int(u["id"]): u for u in data.get("users") or []}
        self.deals: dict[int, dict[str, Any]] = {int(d["id"]): d for d in data.get("deals") or []}
        self.flows: dict[int, list[dict[str, Any]]] = {
            int(k): list(v) for k, v in (data.get("deal_flows") or {}).items()
        }
        self.orgs = OrgStore(
            data.get("organizations"), self.deals.values(), self.users, lambda: pd_time(clock())
        )
        self._ids = sorted(self.deals)
        ordered = sorted(self.deals.values(), key=lambda d: (d["update_time"], d["id"]))
        self._keys: list[tuple[str, int]] = [(d["update_time"], n) for n, d in enumerate(ordered)]
        self._order: list[int] = [int(d["id"]) for d in ordered]
        self._key_of = {deal_id: key for deal_id, key in zip(self._order, self._keys, strict=True)}
        self._seq = len(self._keys)
        self._flow_id = max(
            (item["data"]["id"] for items in self.flows.values() for item in items), default=0
        )
        self._views: dict[tuple[str, str, bool], list[int]] = {}
        # value -> ids of custom-field values, built on the first search (few runs search)
        self._links: dict[str, set[int]] | None = None

    # -- reading ------------------------------------------------------------------------------

    def view(self, status: str, sort: str, *, archived: bool = False) -> list[int]:
        """Deal ids with `status` in `sort` order, archived ones (GET /v1/deals/archived) or
        the others (GET /v1/deals lists "all not archived deals"); built once per data
        generation, then sliced."""
        key = (status, sort, archived)
        ids = self._views.get(key)
        if ids is None:
            base = self._sorted(sort)
            ids = [
                i
                for i in base
                if self._matches(self.deals[i], status)
                and bool(self.deals[i].get("is_archived")) == archived
            ]
            self._views[key] = ids
        return ids

    def _sorted(self, sort: str) -> list[int]:
        """Every deal id in `sort` order ("field ASC|DESC" items joined by ", ", "" for id).
        By update_time alone, deals of one second come in the order they changed."""
        keys = [item.split() for item in sort.split(", ")] if sort else []
        if len(keys) <= 1:
            field, direction = keys[0] if keys else ("id", "ASC")
            base = self._order if field == "update_time" else self._ids
            return base[::-1] if direction == "DESC" else base
        ids = list(self._order)
        for field, direction in reversed(keys):  # stable sorts, the last key first
            values = {i: self.deals[i][field] for i in ids}
            ids.sort(key=values.__getitem__, reverse=direction == "DESC")
        return ids

    @staticmethod
    def _matches(deal: Mapping[str, Any], status: str) -> bool:
        """`status`: "all_not_deleted", one status or several joined by "," (v2 lists)."""
        if status == "all_not_deleted":
            return deal["status"] != "deleted"
        return bool(deal["status"] in status.split(","))

    def update_key(self, deal_id: int) -> tuple[str, int]:
        """The deal's place in update-time order: (update_time, write sequence)."""
        return self._key_of[deal_id]

    def changed_since(self, since: str, start: int, limit: int) -> tuple[list[int], bool]:
        """Ids changed at or after `since` ("YYYY-MM-DD HH:MM:SS"), oldest change first."""
        first = bisect.bisect_left(self._keys, (since, -1)) + start
        ids = self._order[first : first + limit]
        return ids, first + limit < len(self._order)

    def search_link(self, term: str) -> list[int]:
        if self._links is None:
            self._links = {}
            for deal in self.deals.values():
                self._index_links(deal, add=True)
        return sorted(i for i in self._links.get(term, ()) if self.deals[i]["status"] != "deleted")

    def search_item(self, deal: Mapping[str, Any]) -> dict[str, Any]:
        """A deal as the deal search (v1 and v2) answers it."""
        stage = self.stages.get(int(deal.get("stage_id") or 0), {})
        return {
            "id": deal["id"],
            "type": "deal",
            "title": deal.get("title"),
            "value": deal.get("value"),
            "currency": deal.get("currency"),
            "status": deal.get("status"),
            "visible_to": deal.get("visible_to"),
            "owner": {"id": (deal.get("user_id") or {}).get("id")},
            "stage": {"id": stage.get("id"), "name": stage.get("name")},
            "person": None,
            "organization": None,
            "custom_fields": [],
            "notes": [],
        }

    # -- writing ------------------------------------------------------------------------------

    def _index_links(self, deal: Mapping[str, Any], *, add: bool) -> None:
        if self._links is None:
            return
        for key, value in deal.items():
            if len(key) == 40 and isinstance(value, str) and value and CUSTOM_KEY.match(key):
                ids = self._links.setdefault(value, set())
                (ids.add if add else ids.discard)(int(deal["id"]))

    def _store(self, deal: dict[str, Any], old: Mapping[str, Any] | None) -> None:
        deal_id = int(deal["id"])
        if old is not None:
            self._index_links(old, add=False)
            position = bisect.bisect_left(self._keys, self._key_of[deal_id])
            del self._keys[position], self._order[position]
        else:
            self._ids.append(deal_id)  # new ids are always the largest
        self._seq += 1
        key = (deal["update_time"], self._seq)
        position = bisect.bisect_right(self._keys, key)
        self._keys.insert(position, key)
        self._order.insert(position, deal_id)
        self._key_of[deal_id] = key
        self.deals[deal_id] = deal
        self._index_links(deal, add=True)
        self._views.clear()

    def _flow(
        self, deal_id: int, user: int | None, field: str, old: Any, new: Any, now: str
    ) -> None:
        def label(value: Any) -> Any:
            if field == "stage_id" and value is not None:
                return self.stages.get(int(value), {}).get("name", value)
            return value

        self._flow_id += 1
        item = {
            "object": "dealChange",
            "timestamp": now,
            "data": {
                "id": self._flow_id,
                "item_id": deal_id,
                "user_id": user,
                "field_key": field,
                "old_value": None if old is None else str(old),
                "new_value": None if new is None else str(new),
                "is_bulk_update_flag": None,
                "log_time": now,
                "change_source": "api",
                "change_source_user_agent": None,
                "additional_data": {
                    "old_value_formatted": label(old),
                    "new_value_formatted": label(new),
                },
            },
        }
        self.flows.setdefault(deal_id, []).insert(0, item)  # newest first, as the API lists

    def _first_stage(self, pipeline_id: int) -> dict[str, Any]:
        stages = [s for s in self.stages.values() if int(s["pipeline_id"]) == pipeline_id]
        if not stages:
            raise WriteError(400, f"Pipeline with id {pipeline_id} was not found")
        return min(stages, key=lambda s: (s.get("order_nr", 0), s["id"]))

    def _apply(self, deal: dict[str, Any], body: Mapping[str, Any], now: str) -> None:
        """Validate `body` and apply it to `deal` (a fresh copy): stage, status, owner, fields."""
        old_stage, old_status = deal.get("stage_id"), deal.get("status")
        for key, value in body.items():
            if key in _PLAIN or CUSTOM_KEY.match(key) or CUSTOM_CURRENCY.match(key):
                deal[key] = value
        if "title" in body and not str(body["title"] or "").strip():
            raise WriteError(400, "Title must be given")
        if "org_id" in body:  # an id written, the organization's object read back
            try:
                deal["org_id"] = self.orgs.ref(body["org_id"])
            except OrgError as exc:
                raise WriteError(exc.status, exc.message) from None
            deal["org_name"] = deal["org_id"]["name"] if deal["org_id"] else None
        if "value" in body:
            deal["value"] = _number(body["value"], "value") or Decimal(0)
        if "currency" in body:
            if body["currency"] not in ISO_4217:
                raise WriteError(400, f"Invalid currency code: {body['currency']!r}")
            deal["currency"] = body["currency"]
        if "probability" in body:
            probability = _number(body["probability"], "probability")
            if probability is not None and not 0 <= probability <= 100:
                raise WriteError(400, "Probability must be between 0 and 100")
            deal["probability"] = probability
        if "expected_close_date" in body:
            day = body["expected_close_date"]
            if day is not None and not (isinstance(day, str) and _DATE.match(day)):
                raise WriteError(400, f"Invalid expected_close_date: {day!r}")
            deal["expected_close_date"] = day
        if "user_id" in body:
            user = self.users.get(_int(body["user_id"], "user_id"))
            if user is None:
                raise WriteError(400, f"User with id {body['user_id']} was not found")
            deal["user_id"], deal["owner_name"] = _user_ref(user), user.get("name")
        if "stage_id" in body:
            stage = self.stages.get(_int(body["stage_id"], "stage_id"))
            if stage is None:
                raise WriteError(400, f"Stage with id {body['stage_id']} was not found")
            if "pipeline_id" in body and _int(body["pipeline_id"], "pipeline_id") != int(
                stage["pipeline_id"]
            ):
                raise WriteError(400, "Stage does not belong to the given pipeline")
        elif "pipeline_id" in body:
            pipeline_id = _int(body["pipeline_id"], "pipeline_id")
            current = self.stages.get(int(deal.get("stage_id") or 0))
            stage = current if current and int(current["pipeline_id"]) == pipeline_id else None
            stage = stage or self._first_stage(pipeline_id)
        else:
            stage = None
        if stage is not None:
            deal["stage_id"], deal["pipeline_id"] = int(stage["id"]), int(stage["pipeline_id"])
            deal["stage_order_nr"] = stage.get("order_nr")
        if "is_archived" in body:
            if not isinstance(body["is_archived"], bool):
                raise WriteError(400, f"Invalid is_archived: {body['is_archived']!r}")
            deal["is_archived"] = body["is_archived"]
            deal["archive_time"] = (
                (body.get("archive_time") or now) if deal["is_archived"] else None
            )
        if "status" in body:
            if body["status"] not in STATUSES:
                raise WriteError(400, f"Invalid status: {body['status']!r}")
            deal["status"] = body["status"]
        self._settle(deal, old_stage, old_status, now)

    def _settle(self, deal: dict[str, Any], old_stage: Any, old_status: Any, now: str) -> None:
        """Derived fields and flow items after a write, as Pipedrive keeps them."""
        deal_id, user = int(deal["id"]), (deal.get("user_id") or {}).get("id")
        status = deal["status"]
        if old_stage is not None and deal["stage_id"] != old_stage:
            deal["stage_change_time"] = now
            self._flow(deal_id, user, "stage_id", old_stage, deal["stage_id"], now)
        if old_status is not None and status != old_status:
            self._flow(deal_id, user, "status", old_status, status, now)
            if status == "won":
                deal["won_time"] = deal["close_time"] = now
                deal["first_won_time"] = deal.get("first_won_time") or now
                deal["lost_time"] = None
            elif status == "lost":
                deal["lost_time"] = deal["close_time"] = now
                deal["won_time"] = None
            elif status == "open":
                deal["won_time"] = deal["lost_time"] = deal["close_time"] = None
        deal["deleted"] = status == "deleted"
        deal["active"] = status == "open"
        value = Decimal(str(deal.get("value") or 0))
        stage = self.stages.get(int(deal["stage_id"]), {})
        share = {"won": Decimal(1), "open": Decimal(stage.get("deal_probability") or 0) / 100}
        deal["weighted_value"] = value * share.get(status, Decimal(0))
        deal["weighted_value_currency"] = deal.get("currency")
        deal["update_time"] = now

    def update(self, deal_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        old = self.deals.get(deal_id)
        if old is None:
            raise WriteError(404, "Deal not found")
        if old["status"] == "deleted" and (set(body) != {"status"} or body["status"] == "deleted"):
            # Since 2024-03-18 no field of a deleted deal is edited but its restore (changelog
            # "update to the behavior of PUT deals/{id} endpoint for soft-deleted deals"); the
            # answer's status and wording are not documented: a 400, as other refusals.
            raise WriteError(400, "A deleted deal cannot be edited: restore it first")
        deal = dict(old)
        self._apply(deal, body, pd_time(self.clock()))
        self._store(deal, old)
        return deal

    def api_update(self, deal_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /v1/deals/{id}`: `update`, except that an archived deal takes nothing but its
        archive flag (its unarchiving) since 2025-07-15 (changelog "Breaking change: archived
        deals and leads will not be returned in existing endpoints and will not be editable").
        The answer's status and wording are not documented: a 400, as other refusals. `update`
        itself stands for a person's edit in the app, which the change does not restrict."""
        old = self.deals.get(deal_id)
        archived = old is not None and old.get("is_archived") and old["status"] != "deleted"
        if archived and not set(body) <= _ARCHIVE_FIELDS:
            raise WriteError(400, "An archived deal cannot be edited: unarchive it first")
        return self.update(deal_id, body)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if not str(body.get("title") or "").strip():
            raise WriteError(400, "Title must be given")
        now = pd_time(self.clock())
        you = next((u for u in self.users.values() if u.get("is_you")), None)
        you = you or next(iter(self.users.values()), {"id": 1, "name": "API"})
        first_pipeline = (self.pipelines or [{"id": 1}])[0]["id"]
        defaults = {} if "stage_id" in body else {"pipeline_id": first_pipeline}
        deal: dict[str, Any] = {
            "id": (self._ids[-1] if self._ids else 0) + 1,
            "creator_user_id": _user_ref(you),
            "user_id": _user_ref(you),
            "owner_name": you.get("name"),
            "person_id": None,
            "org_id": None,
            "title": None,
            "value": Decimal(0),
            "currency": you.get("default_currency") or "USD",
            "stage_id": None,
            "pipeline_id": None,
            "stage_order_nr": None,
            "status": "open",
            "probability": None,
            "lost_reason": None,
            "visible_to": "3",
            "add_time": now,
            "stage_change_time": None,
            "won_time": None,
            "first_won_time": None,
            "lost_time": None,
            "close_time": None,
            "expected_close_date": None,
            "products_count": 0,
            "is_archived": False,
            "archive_time": None,
        }
        self._apply(deal, {**defaults, **body}, now)
        self._store(deal, None)
        return deal

    def delete(self, deal_id: int) -> None:
        deal = self.deals.get(deal_id)
        if deal is not None and deal["status"] == "deleted":
            raise WriteError(410, "Deal is already deleted")
        self.update(deal_id, {"status": "deleted"})

    def restore(self, deal_id: int) -> dict[str, Any]:
        """Back from the deleted deals (the app's Restore, within 30 days): the same id with
        the status it had before the delete (open, won or lost; its won/lost times kept),
        `deleted` false, and a fresh `update_time`, so `recents` and `sort=update_time` list it
        as changed. 404 if the deal is unknown, 400 if it is not deleted."""
        old = self.deals.get(deal_id)
        if old is None:
            raise WriteError(404, "Deal not found")
        if old["status"] != "deleted":
            raise WriteError(400, "Deal is not deleted")
        now = pd_time(self.clock())
        before = next(
            (
                item["data"]["old_value"]
                for item in reversed(self.flows.get(deal_id, []))
                if item["data"].get("field_key") == "status"
                and item["data"].get("new_value") == "deleted"
            ),
            "open",
        )
        deal = dict(old)
        deal["status"] = before
        self._flow(deal_id, (deal.get("user_id") or {}).get("id"), "status", "deleted", before, now)
        deal["deleted"] = False
        deal["active"] = before == "open"
        value = Decimal(str(deal.get("value") or 0))
        stage = self.stages.get(int(deal["stage_id"]), {})
        share = {"won": Decimal(1), "open": Decimal(stage.get("deal_probability") or 0) / 100}
        deal["weighted_value"] = value * share.get(before, Decimal(0))
        deal["update_time"] = now
        self._store(deal, old)
        return deal

    def rename_org(self, org_id: int, name: str) -> dict[str, Any]:
        """An organization renamed: its deals show the new name (`org_id.name`, `org_name`),
        which Pipedrive reads from the organization, but keep their `update_time`, so neither
        `recents` (items=deal) nor `sort=update_time` lists them as changed."""
        org = self.orgs.rename(org_id, name)
        for deal_id, deal in list(self.deals.items()):
            ref = deal.get("org_id")
            if isinstance(ref, Mapping) and ref.get("value") == org["id"]:
                self.deals[deal_id] = {**deal, "org_id": {**ref, "name": name}, "org_name": name}
        return org

    def purge_deleted(self) -> int:
        """Deleted deals gone for good, as Pipedrive does 30 days after the delete."""
        gone = {i for i, deal in self.deals.items() if deal["status"] == "deleted"}
        for deal_id in gone:
            self._index_links(self.deals.pop(deal_id), add=False)
            self.flows.pop(deal_id, None)
            del self._key_of[deal_id]
        kept = [n for n, deal_id in enumerate(self._order) if deal_id not in gone]
        self._keys = [self._keys[n] for n in kept]
        self._order = [self._order[n] for n in kept]
        self._ids = [i for i in self._ids if i not in gone]
        self._views.clear()
        return len(gone)

    def dump(self) -> dict[str, Any]:
        return {
            "pipelines": list(self.pipelines),
            "stages": list(self.stages.values()),
            "users": list(self.users.values()),
            "organizations": self.orgs.listing(),
            "deals": [self.deals[i] for i in self._ids],
            "deal_flows": {str(k): v for k, v in self.flows.items()},
        }
