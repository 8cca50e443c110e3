"""The HubSpot emulator's data: deals (live and archived), pipelines, owners, and deal writes.

Writes behave as HubSpot's do: every value is stored as a string, hs_lastmodifieddate and
updatedAt move to the (strictly increasing) wall clock, a stage change stamps
hs_date_entered_<stage> and recomputes hs_is_closed / hs_is_closed_won /
hs_deal_stage_probability from the pipeline's stage metadata, and a stage must belong to the
deal's pipeline.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.sandbox.hubspot_companies import (
    Associations,
    created_associations,
    v3_associations,
)
from connectors.sandbox.hubspot_search import epoch_ms, is_date_property, iso_from_ms

__all__ = ["COMPANY_DEFAULTS", "DEFAULT_PROPERTIES", "READ_ONLY", "DealStore", "WriteError"]

# What HubSpot returns when a request names no properties.
DEFAULT_PROPERTIES = (
    "amount",
    "closedate",
    "createdate",
    "dealname",
    "dealstage",
    "hs_lastmodifieddate",
    "hs_object_id",
    "pipeline",
)
# What HubSpot returns of a company when a request names no properties.
COMPANY_DEFAULTS = ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name")
# Always returned, whatever the request names.
ALWAYS = ("createdate", "hs_lastmodifieddate", "hs_object_id")
READ_ONLY = frozenset(
    {
        "hs_object_id",
        "hs_lastmodifieddate",
        "createdate",
        "hs_is_closed",
        "hs_is_closed_won",
        "hs_deal_stage_probability",
    }
)


class WriteError(ValueError):
    """One record's write refused: (category, message), reported per record in batches."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category, self.message = category, message


@dataclass(frozen=True)
class _Stage:
    pipeline: str
    closed: bool
    probability: str

    @property
    def won(self) -> bool:
        return self.closed and Decimal(self.probability or "0") == 1


def _string(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _copy_deal(deal: Mapping[str, Any]) -> dict[str, Any]:
    # Two levels are enough: property values are immutable strings, shared with the dataset.
    props = {k: _string(v) for k, v in (deal.get("properties") or {}).items()}
    # Associations are kept apart (DealStore.companies_of): a read shows them only when asked.
    shown = {k: v for k, v in deal.items() if k != "associations"}
    copy = {**shown, "id": str(deal["id"]), "properties": props}
    props.setdefault("hs_object_id", copy["id"])
    return copy


class DealStore:
    """Deals kept by id with a sorted id list, so a cursor page is a bisect, not a scan."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.pipelines: list[dict[str, Any]] = [dict(p) for p in data.get("pipelines") or ()]
        self.owners: list[dict[str, Any]] = [dict(o) for o in data.get("owners") or ()]
        self.companies: dict[str, dict[str, Any]] = {
            str(c["id"]): {**c, "id": str(c["id"])} for c in data.get("companies") or ()
        }
        self.companies_of = Associations(data.get("deals") or ())
        self.live: dict[str, dict[str, Any]] = {}
        self.archived: dict[str, dict[str, Any]] = {}
        for raw in data.get("deals") or ():
            deal = _copy_deal(raw)
            (self.archived if deal.get("archived") else self.live)[deal["id"]] = deal
        self.order: list[int] = sorted(int(i) for i in self.live)
        self.archived_order: list[int] = sorted(int(i) for i in self.archived)
        self._next_id = max([*self.order, *self.archived_order, 10_000_000]) + 1
        self._last_ms = 0
        self.version = 0  # bumped by every write: search results are cached per version
        self._stages = {
            str(s["id"]): _Stage(
                str(p["id"]),
                str((s.get("metadata") or {}).get("isClosed", "false")).lower() == "true",
                str((s.get("metadata") or {}).get("probability", "")),
            )
            for p in self.pipelines
            for s in p.get("stages") or ()
        }
        self._pipeline_stages = {
            str(p["id"]): {str(s["id"]) for s in p.get("stages") or ()} for p in self.pipelines
        }

    # -- reading ----------------------------------------------------------------------------

    def page(
        self, archived: bool, after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Up to `limit` deals with id >= after, in id order, and the next cursor (or None)."""
        order, table = (self.archived_order, self.archived) if archived else (self.order, self.live)
        start = bisect.bisect_left(order, after)
        ids = order[start : start + limit + 1]
        more = ids[limit] if len(ids) > limit else None
        return [table[str(i)] for i in ids[:limit]], more

    def live_companies(self) -> list[dict[str, Any]]:
        return [c for c in self.companies.values() if not c.get("archived")]

    def companies_page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Up to `limit` live companies with id >= after, in id order, and the next cursor."""
        ids = sorted(int(c["id"]) for c in self.live_companies() if int(c["id"]) >= after)
        more = ids[limit] if len(ids) > limit else None
        return [self.companies[str(i)] for i in ids[:limit]], more

    @staticmethod
    def view(deal: Mapping[str, Any], properties: Iterable[str] | None) -> dict[str, Any]:
        """The deal as the API shows it: only the requested (or default) properties."""
        props = deal["properties"]
        names = list(properties or ()) or list(DEFAULT_PROPERTIES)
        shown = {name: props.get(name) for name in (*names, *ALWAYS)}
        out = {k: v for k, v in deal.items() if k != "properties"}
        out["properties"] = shown
        return out

    def with_companies(self, shown: dict[str, Any], after: int = 0) -> dict[str, Any]:
        """`shown` (a deal's view) with its companies, as `?associations=companies` asks."""
        entries = self.companies_of.v3_entries(shown["id"])
        associations = v3_associations(entries, shown["id"], after)
        return {**shown, "associations": associations} if associations else shown

    # -- writing ----------------------------------------------------------------------------

    def associate(
        self, deal_id: str, companies: Mapping[str, bool], touch: bool = True
    ) -> dict[str, Any]:
        """The deal's companies set to `companies` (id -> primary?), as a person edits them in
        the deal's sidebar. `touch`: the deal is modified now (its `hs_lastmodifieddate`).
        Not verified either way: HubSpot defines that property as the "most recent timestamp
        of any property update", and documents no deal property that follows its companies
        (`num_associated_contacts` follows its contacts); `touch=False` emulates a move
        that stamps nothing."""
        deal = self.live[str(deal_id)]
        self.companies_of.set(deal["id"], companies)
        if touch:
            self._stamp(deal, deal["properties"].get("dealstage"), self._now())
        else:
            self.version += 1  # no property changed, but what a read shows did
        return deal

    def add_company(self, name: str) -> str:
        """A company made in the portal, as a person makes one (crmsync never does); its id,
        which a deal may be associated with from then on."""
        stamp = iso_from_ms(self._now())
        company_id = str(max([int(i) for i in self.companies] + [9_000_000_000]) + 1)
        properties = {"name": name, "createdate": stamp, "hs_lastmodifieddate": stamp}
        self.companies[company_id] = {
            "id": company_id,
            "properties": {**properties, "hs_object_id": company_id},
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        self.version += 1
        return company_id

    def rename_company(self, company_id: str, name: str) -> dict[str, Any]:
        """A company renamed, as a person does on its record: the company is modified now
        (hs_lastmodifieddate, updatedAt), its deals are not (an association names the
        company; the deal holds no copy of its name), so a search of deals by
        hs_lastmodifieddate does not find them."""
        company = self.companies[str(company_id)]
        stamp = iso_from_ms(self._now())
        properties = {**(company.get("properties") or {}), "name": name}
        properties["hs_lastmodifieddate"] = stamp
        company.update(properties=properties, updatedAt=stamp)
        self.version += 1
        return company

    def _now(self) -> int:
        # Strictly increasing, so an incremental read at ">= last seen" never misses a write.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def _values(self, properties: object) -> dict[str, str | None]:
        if not isinstance(properties, Mapping):
            raise WriteError("VALIDATION_ERROR", "'properties' must be an object.")
        values: dict[str, str | None] = {}
        for name, raw in properties.items():
            if name in READ_ONLY:
                raise WriteError(
                    "VALIDATION_ERROR", f'Property "{name}" is read-only and cannot be set.'
                )
            value = _string(raw)
            if value and is_date_property(name):
                ms = epoch_ms(value)
                if ms is None:
                    raise WriteError(
                        "VALIDATION_ERROR",
                        f'Property "{name}" needs an ISO 8601 or epoch-millis date, got {value!r}.',
                    )
                if value.lstrip("-").isdigit():
                    value = iso_from_ms(ms)
            values[name] = value
        return values

    def _check_stage(self, props: Mapping[str, str | None]) -> _Stage:
        pipeline, stage_id = props.get("pipeline"), props.get("dealstage")
        if pipeline not in self._pipeline_stages:
            raise WriteError("VALIDATION_ERROR", f"{pipeline!r} is not a valid pipeline id.")
        if stage_id not in self._pipeline_stages[str(pipeline)]:
            raise WriteError(
                "VALIDATION_ERROR",
                f"{stage_id!r} is not a valid deal stage of pipeline {pipeline!r}.",
            )
        return self._stages[str(stage_id)]

    def _stamp(self, deal: dict[str, Any], old_stage: str | None, ms: int) -> None:
        props = deal["properties"]
        stamp = iso_from_ms(ms)
        stage_id = props.get("dealstage")
        if stage_id != old_stage and stage_id:
            props[f"hs_date_entered_{stage_id}"] = stamp
            if old_stage:
                props[f"hs_date_exited_{old_stage}"] = stamp
        stage = self._stages.get(str(stage_id))
        if stage is not None:
            props["hs_is_closed"] = "true" if stage.closed else "false"
            props["hs_is_closed_won"] = "true" if stage.won else "false"
            props["hs_deal_stage_probability"] = stage.probability
        props["hs_lastmodifieddate"] = stamp
        deal["updatedAt"] = stamp
        self.version += 1

    def check_update(
        self, deal_id: str, properties: object
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The live deal and its properties after the update; WriteError if refused."""
        deal = self.live.get(str(deal_id))
        if deal is None:
            raise WriteError("OBJECT_NOT_FOUND", f"Could not find deal with id {deal_id}.")
        values = self._values(properties)
        merged = {**deal["properties"], **values}
        if "dealstage" in values or "pipeline" in values:
            self._check_stage(merged)
        return deal, merged

    def update(self, deal_id: str, properties: object) -> dict[str, Any]:
        deal, merged = self.check_update(deal_id, properties)
        old_stage = deal["properties"].get("dealstage")
        deal["properties"] = merged
        self._stamp(deal, old_stage, self._now())
        return deal

    def check_create(self, properties: object) -> dict[str, str | None]:
        """The new deal's properties; WriteError if refused."""
        values = self._values(properties)
        if not values.get("pipeline"):
            values["pipeline"] = (
                "default"
                if "default" in self._pipeline_stages
                else str(self.pipelines[0]["id"])
                if self.pipelines
                else None
            )
        if not values.get("dealstage"):
            raise WriteError("VALIDATION_ERROR", 'Property "dealstage" is required.')
        self._check_stage(values)
        return values

    def check_associations(self, associations: object) -> dict[str, bool]:
        """The companies (id -> primary?) a create's `associations` name; WriteError if
        refused."""
        try:
            return created_associations(associations, self._is_company)
        except ValueError as exc:
            raise WriteError("VALIDATION_ERROR", str(exc)) from None

    def _is_company(self, company_id: str) -> bool:
        company = self.companies.get(company_id)
        return company is not None and not company.get("archived")

    def create(self, properties: object, associations: object = None) -> dict[str, Any]:
        """A deal, with the companies its `associations` name (in the same call, as HubSpot's
        create takes them)."""
        values = self.check_create(properties)
        companies = self.check_associations(associations)
        deal_id = str(self._next_id)
        self._next_id += 1
        ms = self._now()
        stamp = iso_from_ms(ms)
        values.update(hs_object_id=deal_id, createdate=stamp)
        deal = {
            "id": deal_id,
            "properties": values,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        self._stamp(deal, None, ms)
        self.live[deal_id] = deal
        self.order.append(int(deal_id))  # new ids are the largest: the list stays sorted
        self.companies_of.set(deal_id, companies)
        return deal

    def archive(self, deal_id: str) -> None:
        deal = self.live.pop(str(deal_id), None)
        if deal is None:
            return  # HubSpot ignores ids that are already gone
        del self.order[bisect.bisect_left(self.order, int(deal_id))]
        stamp = iso_from_ms(self._now())
        deal.update(archived=True, archivedAt=stamp)
        self.archived[deal["id"]] = deal
        bisect.insort(self.archived_order, int(deal["id"]))
        self.version += 1

    def restore(self, deal_id: str) -> dict[str, Any]:
        """Out of the archive, as HubSpot's "Restore records" tool does within 90 days (there
        is no API call for it): the same id, live again (`archived` false, no `archivedAt`),
        listed by `/deals` and no longer by `?archived=true`, and modified now, so the search
        an incremental read uses finds it (the modification date is set on a restore)."""
        deal = self.archived.pop(str(deal_id), None)
        if deal is None:
            raise WriteError("OBJECT_NOT_FOUND", f"Could not find archived deal {deal_id}.")
        del self.archived_order[bisect.bisect_left(self.archived_order, int(deal_id))]
        deal.update(archived=False)
        deal.pop("archivedAt", None)
        self.live[deal["id"]] = deal
        bisect.insort(self.order, int(deal["id"]))
        self._stamp(deal, deal["properties"].get("dealstage"), self._now())
        return deal

    def purge_deleted(self) -> int:
        """Archived deals gone for good, as HubSpot does 90 days after the delete."""
        gone = len(self.archived)
        self.archived.clear()
        self.archived_order.clear()
        self.version += 1
        return gone

    def dump(self) -> dict[str, Any]:
        deals = [self.live[str(i)] for i in self.order]
        deals += [self.archived[str(i)] for i in self.archived_order]
        data: dict[str, Any] = {"pipelines": self.pipelines, "owners": self.owners}
        data["deals"] = [self.with_companies(d) for d in deals]
        if self.companies:
            data["companies"] = list(self.companies.values())
        return data
