"""HubSpot deal <-> canonical deal.

Quirks handled here: every property value is a string or null ("1500.50", "" = empty, "true" /
"false", dates ISO or epoch millis); status comes from the stage metadata (isClosed,
probability 1.0 = won) or, for a stage not discovered, hs_is_closed / hs_is_closed_won; stage
history comes from the hs_date_entered_<stage id> properties. Writes send strings too ("" clears
a property).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

from mapping.context import MappingContext, NativePipelineStages, NativeStage
from mapping.history import collapse_history
from mapping.links import link_fields_for_create, read_links
from mapping.model import (
    Deal,
    DealStatus,
    MappingError,
    Money,
    Owner,
    Ref,
    StageChange,
    format_decimal,
    money_or_none,
)
from mapping.values import (
    field_errors,
    is_blank,
    native_object,
    parse_decimal,
    parse_flag,
    parse_timestamp,
    text_or_none,
)
from mapping.writes import (
    NativeValues,
    StageTarget,
    create_stage,
    owner_id_for_change,
    resolve_stage_change,
)

__all__ = [
    "ENTERED_PREFIX",
    "PROBABILITY_IN_STAGE",
    "STATUS_IN_STAGE",
    "account_from_companies",
    "close_date_for_hubspot",
    "close_date_from_hubspot",
    "create_for_hubspot",
    "deal_from_hubspot",
    "owner_from_hubspot",
    "pipelines_from_hubspot",
    "update_for_hubspot",
]

# A HubSpot deal is won or lost by its dealstage (closedwon/closedlost): a status is
# written as a stage.
STATUS_IN_STAGE = True
# crmsync reads and writes hs_forecast_probability, which a stage change leaves as it is (HubSpot
# derives only hs_deal_stage_probability, the fallback, from the stage).
PROBABILITY_IN_STAGE = False

ENTERED_PREFIX = "hs_date_entered_"
# Native properties a mapping error can name -> the canonical key they feed (see salesforce).
NATIVE_FIELDS = {
    "dealname": "name",
    "dealstage": "stage",
    "amount": "amount",
    "deal_currency_code": "currency",
    "closedate": "close_date",
    "hubspot_owner_id": "owner_email",
    "hs_forecast_probability": "probability",
    "hs_deal_stage_probability": "probability",
    "createdAt": "created_at",
    "createdate": "created_at",
    "updatedAt": "updated_at",
    "hs_lastmodifieddate": "updated_at",
    "hs_is_closed": "status",
}
_ONE = Decimal(1)


def _order(value: object) -> tuple[int, str]:
    return (int(value), "") if isinstance(value, int) else (1 << 30, str(value))


def pipelines_from_hubspot(results: Iterable[Mapping[str, Any]]) -> list[NativePipelineStages]:
    """Pipelines (GET /crm/pipelines/{version}/deals `results`) in displayOrder, archived ones
    left out."""
    pipelines = []
    for pipeline in sorted(results, key=lambda p: (_order(p.get("displayOrder")), str(p["id"]))):
        if pipeline.get("archived"):
            continue
        stages = []
        for raw in pipeline.get("stages") or ():
            if raw.get("archived"):
                continue
            metadata = raw.get("metadata") or {}
            with field_errors("hubspot", str(raw["id"]), "metadata"):
                closed = bool(parse_flag(metadata.get("isClosed")))
                probability = parse_decimal(metadata.get("probability"))
            stages.append(
                NativeStage(
                    id=str(raw["id"]),
                    label=str(raw.get("label") or raw["id"]),
                    order=_order(raw.get("displayOrder"))[0],
                    probability=probability,
                    is_closed=closed,
                    is_won=closed and probability == _ONE,
                )
            )
        stages.sort(key=lambda s: (s.order, s.id))
        label = str(pipeline.get("label") or pipeline["id"])
        pipelines.append(NativePipelineStages(str(pipeline["id"]), label, tuple(stages)))
    return pipelines


def owner_from_hubspot(record: Mapping[str, Any], instance: str) -> Owner:
    email = text_or_none(record.get("email"))
    name = " ".join(p for p in (record.get("firstName"), record.get("lastName")) if p) or None
    active = not record.get("archived")
    return Owner(instance, str(record["id"]), email.lower() if email else None, name, active)


def _status(
    props: Mapping[str, Any], stage: NativeStage | None, ctx: MappingContext, rid: str
) -> DealStatus:
    # The pipeline's stage definition is the source HubSpot computes hs_is_closed* from, and it
    # cannot lag behind a stage change; the flags decide only for a stage we do not know.
    closed: bool | None
    won: bool | None
    if stage is not None:
        closed, won = stage.is_closed, stage.is_won
    else:
        with field_errors(ctx.instance, rid, "hs_is_closed"):
            closed = parse_flag(props.get("hs_is_closed"))
            won = parse_flag(props.get("hs_is_closed_won"))
    if won:
        return DealStatus.WON
    return DealStatus.LOST if closed else DealStatus.OPEN


def _history(
    props: Mapping[str, Any], pipeline: str, ctx: MappingContext, rid: str
) -> tuple[StageChange, ...]:
    changes = []
    for name, raw in props.items():
        if not name.startswith(ENTERED_PREFIX) or is_blank(raw):
            continue
        stage_id = name[len(ENTERED_PREFIX) :]
        with field_errors(ctx.instance, rid, name):
            entered = parse_timestamp(raw)
        assert entered is not None
        home = pipeline if ctx.native_stage(pipeline, stage_id) else ctx.pipeline_of_stage(stage_id)
        changes.append(StageChange(ctx.funnel_stage(home or pipeline, stage_id), stage_id, entered))
    return collapse_history(changes)


def close_date_from_hubspot(value: object, zone: tzinfo) -> date | None:
    """The day a HubSpot `closedate` stands for, in the portal's time zone `zone`.

    closedate is a datetime property: HubSpot keeps an instant and shows its day in the
    account's time zone, and a day picked in its UI is stored as an instant of that day there,
    not as midnight UTC (a close date of 31 March picked one afternoon in Arizona came back as
    2023-04-01T01:09:44Z, fivetran/dbt_hubspot#101). Its UTC date is then a day off: west of
    UTC for a day picked late, east of it for one picked early or stored as local midnight.
    An instant at exactly midnight UTC is a day an integration wrote as HubSpot documents date
    values (crmsync did so before it wrote midnight in the portal's zone): that UTC day, so a
    value written so far keeps the day it was written for.
    """
    stamp = parse_timestamp(value)  # "YYYY-MM-DD" is midnight UTC
    if stamp is None:
        return None
    if stamp.time() == time(0):
        return stamp.date()
    return stamp.astimezone(zone).date()


def close_date_for_hubspot(day: date, zone: tzinfo) -> str:
    """`day` as a HubSpot `closedate`: its midnight in the portal's zone, which the portal shows
    as `day` and `close_date_from_hubspot` reads back as `day` (midnight UTC would show as the
    day before west of UTC). A midnight the clocks skip is the first moment of that day."""
    moment = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def deal_from_hubspot(record: Mapping[str, Any], ctx: MappingContext) -> Deal:
    record = native_object(record, ctx.instance)
    rid = text_or_none(record.get("id"))
    if rid is None:
        raise MappingError(ctx.instance, "?", "id", "record has no id")
    props = native_object(record.get("properties") or {}, ctx.instance, rid, "properties")

    def read(field: str, parse: Any, value: object = None) -> Any:
        with field_errors(ctx.instance, rid, field):
            return parse(props.get(field) if value is None else value)

    pipeline = text_or_none(props.get("pipeline")) or "default"
    native_id = text_or_none(props.get("dealstage")) or ""
    stage = ctx.native_stage(pipeline, native_id) if native_id else None
    status = _status(props, stage, ctx, rid)
    funnel_key = (
        ctx.funnel_stage(pipeline, native_id) if native_id else ctx.key_for_status(pipeline, status)
    )
    value: Money | None = None
    if not is_blank(props.get("amount")):
        read("amount", parse_decimal)
        currency = text_or_none(props.get("deal_currency_code")) or ctx.default_currency
        value = read(
            "deal_currency_code", lambda raw: money_or_none(raw, currency), props["amount"]
        )
    probability = read("hs_forecast_probability", parse_decimal)
    if probability is None:
        probability = read("hs_deal_stage_probability", parse_decimal)
    created: datetime | None = read("createdAt", parse_timestamp, record.get("createdAt"))
    created = created or read("createdate", parse_timestamp)
    updated: datetime | None = read("updatedAt", parse_timestamp, record.get("updatedAt"))
    updated = updated or read("hs_lastmodifieddate", parse_timestamp)
    for field, stamp in (("createdAt", created), ("updatedAt", updated)):
        if stamp is None:
            raise MappingError(ctx.instance, rid, field, "missing")
    history = _history(props, pipeline, ctx, rid)
    entered = read(ENTERED_PREFIX + native_id, parse_timestamp) if native_id else None
    external, link_id = read_links(props, ctx)
    owner_id = text_or_none(props.get("hubspot_owner_id"))
    return Deal(
        ref=Ref(ctx.instance, rid),
        name=str(props.get("dealname") or ""),
        pipeline=pipeline,
        stage=funnel_key,
        native_stage=native_id,
        status=status,
        value=value,
        close_date=read("closedate", lambda raw: close_date_from_hubspot(raw, ctx.zone)),
        owner_email=ctx.owner_email(owner_id),
        probability=probability,
        created_at=created,
        updated_at=updated,
        stage_entered_at=entered,
        funnel=ctx.pipeline_funnels.get(pipeline, "default"),
        external_ids=external,
        link_id=link_id,
        stage_history=history,
        extra=_extra(record, props, value),
    )


def _extra(
    record: Mapping[str, Any], props: Mapping[str, Any], value: Money | None
) -> dict[str, Any]:
    extra: dict[str, Any] = {"deleted": True} if record.get("archived") else {}
    if value is None and text_or_none(props.get("deal_currency_code")):
        extra["native_currency"] = str(props["deal_currency_code"])  # what a rollback restores
    account, unresolved = account_from_companies(record.get("companies"))
    unreadable = text_or_none(record.get("companies_unreadable"))
    if account is not None:
        extra["account"] = account
    elif unresolved is not None or unreadable:
        # the connector's reason when the token could not read companies at all
        extra["account_unresolved"] = unresolved or str(record["companies_unreadable"])
    company = _account_company(record.get("companies"))
    if company is not None and not unreadable and text_or_none(company.get("id")):
        extra["account_id"] = text_or_none(company["id"])  # which company (renames)
    return extra


def account_from_companies(companies: object) -> tuple[str | None, str | None]:
    """A deal's account from its companies (what the connector adds to the record as
    `companies`: `[{"id", "name", "primary"}]`): the primary company's name, else that of its
    only company. Several companies and none primary: which one is the account cannot be told,
    so none is guessed: (None, why). No company (or a record read without them): (None, None).
    """
    if not isinstance(companies, list) or not companies:
        return None, None
    chosen = _account_company(companies)
    if chosen is not None:
        return text_or_none(chosen.get("name")), None
    names = sorted(str(c.get("name") or c.get("id")) for c in companies)
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return None, f"{len(companies)} companies are associated ({shown}), none primary: not guessed"


def _account_company(companies: object) -> Mapping[str, Any] | None:
    """The company a deal's account is: its primary company, else its only one; else none."""
    if not isinstance(companies, list) or not companies:
        return None
    primary = [c for c in companies if isinstance(c, Mapping) and c.get("primary")]
    chosen = primary[0] if primary else companies[0] if len(companies) == 1 else None
    return chosen if isinstance(chosen, Mapping) else None


def _text(value: object) -> str:
    """A property value as HubSpot takes it: strings only, "" clears the property."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format_decimal(value)
    return str(value)


def _stage_probability(deal: Deal, target: StageTarget, ctx: MappingContext) -> Decimal | None:
    """The probability of the stage the deal holds after a write (`target`: where it goes)."""
    stage = ctx.native_stage(
        target.pipeline or deal.pipeline, target.native_stage or deal.native_stage
    )
    return stage.probability if stage is not None else None


def update_for_hubspot(
    deal: Deal,
    changes: Mapping[str, object],
    ctx: MappingContext,
    native: NativeValues | None = None,
) -> dict[str, Any]:
    """The deal properties to write for canonical `changes` (status is expressed via dealstage).

    Like the other kinds' payloads this is flat (property -> string value); the connector puts
    it under `properties` in the batch request.
    """
    props: dict[str, str] = {}
    target = resolve_stage_change(
        deal, changes, ctx, status_in_stage=STATUS_IN_STAGE, native=native
    )
    if target.pipeline is not None:  # HubSpot refuses a dealstage of another pipeline
        props["pipeline"] = target.pipeline
    if target.native_stage is not None:
        props["dealstage"] = target.native_stage
    for key, value in changes.items():
        if key in ("stage", "status"):
            continue
        if key == "name":
            props["dealname"] = _text(value)
        elif key == "amount":
            props["amount"] = _text(value)
        elif key == "currency":
            # None: no amount, so no canonical currency; "" clears the property, unless the
            # code it held is to be put back.
            restore = native.currency if native is not None and value is None else None
            props["deal_currency_code"] = _text(restore or value)
        elif key == "close_date":
            if value is not None and not isinstance(value, date):
                raise MappingError(deal.system, deal.id, key, f"not a date: {value!r}")
            with field_errors(deal.system, deal.id, key):  # a day at the edge of datetime's range
                day = "" if value is None else close_date_for_hubspot(value, ctx.zone)
            props["closedate"] = day
        elif key == "owner_email":
            props["hubspot_owner_id"] = _text(owner_id_for_change(deal, ctx, value))
        elif key == "probability":
            if value is None and _stage_probability(deal, target, ctx) is not None:
                # Cleared, the forecast would read back as the stage's probability.
                raise MappingError(
                    deal.system,
                    deal.id,
                    "probability",
                    "HubSpot cannot clear a probability (a deal without a forecast has its "
                    "stage's)",
                )
            props["hs_forecast_probability"] = _text(value)
        else:
            raise MappingError(deal.system, deal.id, key, "not a writable canonical field")
    return props


def create_for_hubspot(
    deal: Deal, ctx: MappingContext, link_id: str, pipeline: str | None = None
) -> dict[str, Any]:
    """The properties of a new deal copying `deal`, linked back to it (flat, as for updates)."""
    target_pipeline, native = create_stage(deal, ctx, pipeline)
    props = {"dealname": deal.name, "pipeline": target_pipeline, "dealstage": native}
    if deal.value is not None:
        props["amount"] = _text(deal.value.amount)
        props["deal_currency_code"] = deal.value.currency
    if deal.close_date is not None:
        with field_errors(deal.system, deal.id, "close_date"):
            props["closedate"] = close_date_for_hubspot(deal.close_date, ctx.zone)
    if deal.owner_email:
        props["hubspot_owner_id"] = _text(owner_id_for_change(deal, ctx, deal.owner_email))
    if deal.probability is not None:
        props["hs_forecast_probability"] = _text(deal.probability)
    props.update(link_fields_for_create(deal, ctx, link_id))
    return props
