"""Native records of one deal copy (or owner, or pipeline) in each CRM's own wire format.

A `Copy` is what one system believes about a real deal, in canonical terms; the builders here
only translate it, so every cross-system difference in a generated dataset is one the generator
put into a `Copy` on purpose. Datetimes are naive and mean UTC (second precision), which keeps
formatting to a cheap `isoformat()` for datasets of hundreds of thousands of deals.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.sandbox.dataset import (
    PD_FIELD_CRMSYNC_ID,
    PD_FIELD_HUBSPOT_ID,
    PD_FIELD_SALESFORCE_ID,
)
from connectors.sandbox.dataset_catalog import FUNNEL_PROBABILITY, LINES, STAGES, NativeStage
from mapping.salesforce_ids import case_safe_id

__all__ = [
    "Copy",
    "Person",
    "hs_company",
    "hs_company_id",
    "hs_deal",
    "hs_deal_companies",
    "hs_owner",
    "hs_pipelines",
    "pd_deal",
    "pd_flow",
    "pd_pipelines_and_stages",
    "pd_user",
    "salesforce_id",
    "sf_history",
    "sf_opportunity",
    "sf_stages",
    "sf_user",
]

SF_API = "/services/data/v59.0/sobjects"
_FORECAST = {  # funnel key -> (ForecastCategory, ForecastCategoryName)
    "lead": ("Pipeline", "Pipeline"),
    "qualified": ("Pipeline", "Pipeline"),
    "proposal": ("BestCase", "Best Case"),
    "negotiation": ("Forecast", "Commit"),
    "won": ("Closed", "Closed"),
    "lost": ("Omitted", "Omitted"),
}
_LOST_REASONS = ("Price too high", "Went with a competitor", "No budget", "No decision")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class Person:
    first: str
    last: str
    emails: Mapping[str, str | None]  # system -> email as stored there; no key = not there
    sf_id: str
    hs_id: str
    pd_id: int

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def email(self) -> str | None:
        """The canonical (lower-cased) email, the key owners are matched by."""
        found = [e for e in self.emails.values() if e]
        return found[0].lower() if found else None


@dataclass(frozen=True, slots=True)
class Copy:
    entity: str
    line: str  # product line, one of dataset_catalog.LINES
    name: str
    company: str
    account_id: str  # Salesforce Account
    org_id: int  # Pipedrive organization
    history: tuple[tuple[str, datetime], ...]  # (funnel key, entered at), oldest first
    status: str  # open | won | lost
    amount: Decimal
    currency: str
    close_date: date
    owner: Person
    created_at: datetime
    updated_at: datetime  # of the truth; each system's copy is stamped a little later
    deleted: bool = False

    @property
    def stage(self) -> str:
        return self.history[-1][0]


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: 15 case-sensitive chars plus the real checksum suffix."""
    digits = ""
    for _ in range(9):
        number, rest = divmod(number, 62)
        digits = _B62[rest] + digits
    return case_safe_id(f"{prefix}5g0{digits}")


def _native(system: str, line: str, key: str, variant: int) -> NativeStage:
    options = _BY_KEY[system, line, key]
    return options[variant % len(options)]


_BY_KEY: dict[tuple[str, str, str], tuple[NativeStage, ...]] = {}
for _system, _lines in STAGES.items():
    for _line, _stages in _lines.items():
        for _stage in _stages:
            _BY_KEY[_system, _line, _stage.funnel_key] = (
                *_BY_KEY.get((_system, _line, _stage.funnel_key), ()),
                _stage,
            )


def _sf_time(t: datetime) -> str:
    return t.isoformat() + ".000+0000"


def _hs_time(t: datetime, ms: int) -> str:
    return f"{t.isoformat()}.{ms:03d}Z"


def _pd_time(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat(" ")


def _sf_attributes(kind: str, record_id: str) -> dict[str, str]:
    return {"type": kind, "url": f"{SF_API}/{kind}/{record_id}"}


# --- Salesforce ----------------------------------------------------------------------------


def sf_stages() -> list[dict[str, Any]]:
    return [
        {
            "attributes": _sf_attributes("OpportunityStage", salesforce_id("01J", i + 1)),
            "Id": salesforce_id("01J", i + 1),
            "ApiName": s.id,
            "MasterLabel": s.label,
            "IsActive": True,
            "IsClosed": s.is_closed,
            "IsWon": s.funnel_key == "won",
            "DefaultProbability": s.probability,
            "ForecastCategory": _FORECAST[s.funnel_key][0],
            "ForecastCategoryName": _FORECAST[s.funnel_key][1],
            "SortOrder": i + 1,
        }
        for i, s in enumerate(STAGES["salesforce"]["sales"])
    ]


def sf_user(p: Person, created: datetime) -> dict[str, Any]:
    return {
        "attributes": _sf_attributes("User", p.sf_id),
        "Id": p.sf_id,
        "Name": p.name,
        "Email": p.emails["salesforce"],
        "IsActive": True,
        "CreatedDate": _sf_time(created),
    }


def sf_account(c: Copy) -> dict:
    """The Account an Opportunity's AccountId names: its company, as Pipedrive's organization
    of the same company is named."""
    stamp = _sf_time(c.created_at)
    return {"attributes": _sf_attributes("Account", c.account_id), "Id": c.account_id,
            "Name": c.company, "CreatedDate": stamp, "LastModifiedDate": stamp,
            "SystemModstamp": stamp}  # fmt: skip


def sf_opportunity(
    c: Copy, opp_id: str, links: Mapping[str, str | None], variant: int, updated: datetime
) -> dict:
    stage = _native("salesforce", c.line, c.stage, variant)
    forecast, forecast_name = _FORECAST[c.stage]
    return {
        "attributes": _sf_attributes("Opportunity", opp_id),
        "Id": opp_id,
        "IsDeleted": c.deleted,
        "AccountId": c.account_id,
        "Name": c.name,
        "Type": "Existing Customer - Renewal" if c.line == "renewals" else "New Customer",
        "StageName": stage.id,  # the picklist API name, as SOQL returns it
        "Amount": float(c.amount),
        "Probability": float(stage.probability),
        "CloseDate": c.close_date.isoformat(),
        "ForecastCategory": forecast,
        "ForecastCategoryName": forecast_name,
        "CurrencyIsoCode": c.currency,
        "IsClosed": stage.is_closed,
        "IsWon": c.stage == "won",
        "OwnerId": c.owner.sf_id,
        "CreatedDate": _sf_time(c.created_at),
        "LastModifiedDate": _sf_time(updated),
        "SystemModstamp": _sf_time(updated),
        "HubSpot_Deal_Id__c": links.get("hubspot"),
        "Pipedrive_Deal_Id__c": links.get("pipedrive"),
        "Crmsync_Id__c": None,
    }


def sf_history(c: Copy, opp_id: str, first_id: int, variant: int) -> list[dict[str, Any]]:
    """One OpportunityHistory row per stage the opportunity entered, oldest first."""
    rows = []
    for n, (key, entered) in enumerate(c.history):
        stage = _native("salesforce", c.line, key, variant)
        row_id = salesforce_id("008", first_id + n)
        rows.append(
            {
                "attributes": _sf_attributes("OpportunityHistory", row_id),
                "Id": row_id,
                "OpportunityId": opp_id,
                "StageName": stage.id,  # the picklist API name, as SOQL returns it
                "Amount": float(c.amount),
                "CloseDate": c.close_date.isoformat(),
                "Probability": float(stage.probability),
                "ForecastCategory": _FORECAST[key][0],
                "CreatedDate": _sf_time(entered),
                "IsDeleted": False,
            }
        )
    return rows


# --- HubSpot -------------------------------------------------------------------------------


def hs_pipelines(created: datetime) -> list[dict[str, Any]]:
    labels = {"sales": "Sales Pipeline", "renewals": "Renewals"}
    return [
        {
            "id": STAGES["hubspot"][line][0].pipeline,
            "label": labels[line],
            "displayOrder": order,
            "archived": False,
            "createdAt": _hs_time(created, 0),
            "updatedAt": _hs_time(created, 0),
            "stages": [
                {
                    "id": s.id,
                    "label": s.label,
                    "displayOrder": i,
                    "metadata": {
                        "isClosed": "true" if s.is_closed else "false",
                        "probability": str(s.probability / 100),
                    },
                    "archived": False,
                    "createdAt": _hs_time(created, 0),
                    "updatedAt": _hs_time(created, 0),
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                }
                for i, s in enumerate(STAGES["hubspot"][line])
            ],
        }
        for order, line in enumerate(LINES)
    ]


def hs_owner(p: Person, created: datetime, kind: str = "PERSON") -> dict[str, Any]:
    owner: dict[str, Any] = {"id": p.hs_id}
    if p.emails.get("hubspot"):
        owner["email"] = p.emails["hubspot"]
    user_id = int(p.hs_id) // 7
    owner |= {
        "firstName": p.first,
        "lastName": p.last,
        "userId": user_id,
        "userIdIncludingInactive": user_id,
        "type": kind,
        "teams": [{"id": "4501", "name": "Sales", "primary": True}] if kind == "PERSON" else [],
        "createdAt": _hs_time(created, 0),
        "updatedAt": _hs_time(created, 0),
        "archived": False,
    }
    return owner


def hs_company_id(company_no: int) -> str:
    """The HubSpot company of a generated company (the one Pipedrive's organization
    `company_no` and a Salesforce Account also stand for)."""
    return str(8_200_000_000 + company_no * 13)


def hs_company(c: Copy, company_id: str) -> dict[str, Any]:
    """A company as GET /crm/v3/objects/companies returns it, named as the deal's company."""
    created = _hs_time(c.created_at, 0)
    domain = "".join(ch for ch in c.company.lower() if ch.isalnum()) + ".example"
    return {"id": company_id,
            "properties": {"name": c.company, "domain": domain, "createdate": created,
                           "hs_lastmodifieddate": created, "hs_object_id": company_id},
            "createdAt": created, "updatedAt": created, "archived": False}  # fmt: skip


def hs_deal_companies(company_id: str) -> dict[str, Any]:
    """A deal's `associations` as `?associations=companies` shows its one, primary, company."""
    return {"companies": {"results": [
        {"id": company_id, "type": "deal_to_company"},
        {"id": company_id, "type": "deal_to_company_unlabeled"},
    ]}}  # fmt: skip


def hs_deal(
    c: Copy, deal_id: str, links: Mapping[str, str | None], variant: int, updated_at: datetime
) -> dict:
    stage = _native("hubspot", c.line, c.stage, variant)
    ms = int(deal_id) % 1000  # HubSpot stamps carry milliseconds
    updated = _hs_time(updated_at, ms)
    props: dict[str, str | None] = {
        "amount": str(c.amount),
        "closedate": f"{c.close_date.isoformat()}T00:00:00Z",
        "createdate": _hs_time(c.created_at, ms),
        "deal_currency_code": c.currency,
        "dealname": c.name,
        "dealstage": stage.id,
        "hs_deal_stage_probability": str(stage.probability / 100),
        "hs_is_closed": "true" if stage.is_closed else "false",
        "hs_is_closed_won": "true" if c.stage == "won" else "false",
        "hs_lastmodifieddate": updated,
        "hs_object_id": deal_id,
        "hubspot_owner_id": c.owner.hs_id,
        "pipeline": stage.pipeline,
        "salesforce_opportunity_id": links.get("salesforce"),
        "pipedrive_deal_id": links.get("pipedrive"),
        "crmsync_id": None,
    }
    for key, entered in c.history:
        props[f"hs_date_entered_{_native('hubspot', c.line, key, variant).id}"] = _hs_time(
            entered, ms
        )
    deal: dict[str, Any] = {
        "id": deal_id,
        "properties": props,
        "createdAt": props["createdate"],
        "updatedAt": updated,
        "archived": c.deleted,
    }
    if c.deleted:
        deal["archivedAt"] = updated
    return deal


# --- Pipedrive -----------------------------------------------------------------------------


def pd_pipelines_and_stages(created: datetime) -> tuple[list[dict], list[dict]]:
    pipelines, stages = [], []
    for order, line in enumerate(LINES):
        native = STAGES["pipedrive"][line]
        name = {"sales": "Sales", "renewals": "Renewals"}[line]
        pipelines.append(
            {
                "id": int(native[0].pipeline),
                "name": name,
                "url_title": name.lower(),
                "order_nr": order,
                "active": True,
                "deal_probability": True,
                "add_time": _pd_time(created),
                "update_time": _pd_time(created),
                "selected": order == 0,
            }
        )
        stages += [
            {
                "id": int(s.id),
                "order_nr": i + 1,
                "name": s.label,
                "active_flag": True,
                "deal_probability": s.probability,
                "pipeline_id": int(s.pipeline),
                "rotten_flag": False,
                "rotten_days": None,
                "add_time": _pd_time(created),
                "update_time": _pd_time(created),
                "pipeline_name": name,
                "pipeline_deal_probability": True,
            }
            for i, s in enumerate(native)
        ]
    return pipelines, stages


def pd_user(p: Person, created: datetime, is_you: bool) -> dict[str, Any]:
    return {
        "id": p.pd_id,
        "name": p.name,
        "email": p.emails["pipedrive"],
        "active_flag": True,
        "is_deleted": False,
        "is_you": is_you,
        "default_currency": "USD",
        "timezone_name": "Europe/Berlin",
        "lang": 1,
        "locale": "en_US",
        "created": _pd_time(created),
        "modified": _pd_time(created),
    }


def _pd_user_ref(p: Person) -> dict[str, Any]:
    return {
        "id": p.pd_id,
        "name": p.name,
        "email": p.emails["pipedrive"],
        "has_pic": False,
        "pic_hash": None,
        "active_flag": True,
        "value": p.pd_id,
    }


def _pd_open_part(c: Copy, variant: int) -> list[tuple[NativeStage, datetime]]:
    """Pipedrive closes a deal by status, in place: only open stages are stage changes."""
    return [
        (_native("pipedrive", c.line, key, variant), t)
        for key, t in c.history
        if key not in ("won", "lost")
    ]


def pd_organization(org_id: int, name: str, owner: Person, created: datetime) -> dict:
    """A company's organization, as GET /v1/organizations lists it."""
    stamp = _pd_time(created)
    return {"id": org_id, "name": name, "owner_id": _pd_user_ref(owner), "owner_name": owner.name,
            "people_count": 0, "open_deals_count": 0, "address": None, "active_flag": True,
            "cc_email": None, "label": None, "visible_to": "3", "add_time": stamp,
            "update_time": stamp}  # fmt: skip


def pd_deal(
    c: Copy,
    deal_id: int,
    links: Mapping[str, str | None],
    variant: int,
    updated: datetime,
    org_owner: Person | None = None,
) -> dict:
    """`org_owner`: the owner of the deal's organization (its `org_id` object says so)."""
    open_part = _pd_open_part(c, variant)
    stage = open_part[-1][0]
    closed_at = c.history[-1][1] if c.status != "open" else None
    weighted = {"open": c.amount * stage.probability / 100, "won": c.amount}.get(c.status, 0)
    owner = _pd_user_ref(c.owner)
    return {
        "id": deal_id,
        "creator_user_id": owner,
        "user_id": owner,
        "person_id": None,
        "org_id": {"name": c.company, "people_count": 0,
                   "owner_id": (org_owner or c.owner).pd_id,
                   "address": None, "active_flag": True, "cc_email": None, "value": c.org_id},
        "stage_id": int(stage.id),
        "title": c.name,
        "value": float(c.amount),
        "currency": c.currency,
        "add_time": _pd_time(c.created_at),
        "update_time": _pd_time(updated),
        "stage_change_time": _pd_time(open_part[-1][1]) if len(open_part) > 1 else None,
        "active": c.status == "open" and not c.deleted,
        "deleted": c.deleted,
        "status": "deleted" if c.deleted else c.status,
        # set on every deal (Pipedrive leaves it null unless a user sets it) so that copies
        # agree on probability whatever a reader falls back to
        "probability": FUNNEL_PROBABILITY[c.stage],
        "lost_reason": _LOST_REASONS[deal_id % len(_LOST_REASONS)] if c.status == "lost" else None,
        "visible_to": "3",
        "close_time": _pd_time(closed_at),
        "pipeline_id": int(stage.pipeline),
        "won_time": _pd_time(closed_at) if c.status == "won" else None,
        "first_won_time": _pd_time(closed_at) if c.status == "won" else None,
        "lost_time": _pd_time(closed_at) if c.status == "lost" else None,
        "products_count": 0,
        "expected_close_date": c.close_date.isoformat(),
        "stage_order_nr": int(stage.id) - int(STAGES["pipedrive"][c.line][0].id) + 1,
        "org_name": c.company,
        "owner_name": c.owner.name,
        "weighted_value": round(float(weighted), 2),
        "weighted_value_currency": c.currency,
        "is_archived": False,
        PD_FIELD_SALESFORCE_ID: links.get("salesforce"),
        PD_FIELD_HUBSPOT_ID: links.get("hubspot"),
        PD_FIELD_CRMSYNC_ID: None,
    }  # fmt: skip


def pd_flow(c: Copy, deal_id: int, first_id: int, variant: int) -> list[dict[str, Any]]:
    """`/v1/deals/{id}/flow` change items (stage and status), newest first like the API."""
    changes: list[tuple[str, str, str, str, str, datetime]] = []
    open_part = _pd_open_part(c, variant)
    for (old, _), (new, t) in itertools.pairwise(open_part):
        changes.append(("stage_id", old.id, new.id, old.label, new.label, t))
    if c.status != "open":
        t = c.history[-1][1]
        changes.append(("status", "open", c.status, "open", c.status, t))
    items = []
    for n, (field, old_v, new_v, old_label, new_label, t) in enumerate(changes):
        stamp = _pd_time(t)
        items.append(
            {
                "object": "dealChange",
                "timestamp": stamp,
                "data": {
                    "id": first_id + n,
                    "item_id": deal_id,
                    "user_id": c.owner.pd_id,
                    "field_key": field,
                    "old_value": old_v,
                    "new_value": new_v,
                    "is_bulk_update_flag": None,
                    "log_time": stamp,
                    "change_source": "app",
                    "change_source_user_agent": None,
                    "additional_data": {
                        "old_value_formatted": old_label,
                        "new_value_formatted": new_label,
                    },
                },
            }
        )
    items.reverse()
    return items
