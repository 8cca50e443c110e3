"""Pipedrive deal <-> canonical deal, in API v2's shapes (API v1's still read).

Quirks handled here: `status` won/lost overrides the stage (the native stage stays, the funnel
stage becomes the funnel's won / first lost stage); timestamps are RFC 3339 in v2 and UTC
"YYYY-MM-DD HH:MM:SS" in v1; money is `value` + `currency`; the owner is `owner_id`, a bare
int resolved through the owners (v1: `user_id`, an object {id, email, ...} or an int); the
organization is `org_id`, a bare int in v2, whose name the connector adds to the record as
`org_name` (crmsync's key, not Pipedrive's: v2 deals carry no related objects; v1's `org_id`
object carries both); a deleted deal (`is_deleted`, v1 `deleted`, or status "deleted") is
returned with extra["deleted"] = True, an archived one (`is_archived`: out of Pipedrive's
pipeline and list views, not deleted) with extra["archived"] = True; ids are integers natively
and decimal strings canonically; custom fields are keyed by 40-hex hashes, nested under
`custom_fields` in v2 (top-level in v1). Write bodies are v2's (PATCH / POST, strictly typed,
`owner_id`, custom fields nested).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from hashlib import sha1
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
    money_or_none,
)
from mapping.values import (
    field_errors,
    is_blank,
    native_object,
    parse_date,
    parse_decimal,
    parse_timestamp,
    text_or_none,
)
from mapping.writes import (
    NativeValues,
    create_stage_or_status,
    held_currency,
    number_read_back_whole,
    owner_id_for_change,
    percent_read_back_whole,
    resolve_stage_change,
)

__all__ = [
    "PD_FIELD_CRMSYNC_ID",
    "PD_FIELD_HUBSPOT_ID",
    "PD_FIELD_SALESFORCE_ID",
    "PROBABILITY_IN_STAGE",
    "STATUS_IN_STAGE",
    "create_for_pipedrive",
    "deal_from_pipedrive",
    "owner_from_pipedrive",
    "pipelines_from_pipedrive",
    "stage_history_from_pipedrive_flow",
    "update_for_pipedrive",
]

# A Pipedrive deal has a status field of its own (open/won/lost): its stage stays as it is.
STATUS_IN_STAGE = False
# Its probability is a field of the deal's own, which a stage change leaves as it is.
PROBABILITY_IN_STAGE = False

PD_FIELD_SALESFORCE_ID = sha1(b"crmsync:salesforce_opportunity_id").hexdigest()
PD_FIELD_HUBSPOT_ID = sha1(b"crmsync:hubspot_deal_id").hexdigest()
PD_FIELD_CRMSYNC_ID = sha1(b"crmsync:crmsync_id").hexdigest()

_HUNDRED = Decimal(100)
_STATUSES = {"open": DealStatus.OPEN, "won": DealStatus.WON, "lost": DealStatus.LOST}
# Native fields a mapping error can name -> the canonical key they feed (see salesforce).
NATIVE_FIELDS = {
    "title": "name",
    "stage_id": "stage",
    "value": "amount",
    "expected_close_date": "close_date",
    "owner_id": "owner_email",
    "user_id": "owner_email",
    "add_time": "created_at",
    "update_time": "updated_at",
}
# A won/lost status overrides the stage, so the deal entered its (won/lost) stage at that time;
# stage_change_time is when it entered the pipeline stage it still sits in, null while it never
# moved: then it has sat there since it was added.
_ENTERED_AT = {DealStatus.WON: "won_time", DealStatus.LOST: "lost_time"}


def pipelines_from_pipedrive(
    pipelines: Iterable[Mapping[str, Any]], stages: Iterable[Mapping[str, Any]]
) -> list[NativePipelineStages]:
    """Pipelines (by order_nr) with their active stages; Pipedrive stages are all open stages
    (won and lost are the deal's status). A pipeline listed `is_deleted: true` (v1: `active:
    false`) is marked deleted: the deals nobody moved keep it, so it is kept, not `active`, and
    never chosen for a copy. Its stages are kept even when listed deleted (`is_deleted: true`,
    v1 `active_flag: false`, "whether the stage is active or deleted"): nothing documents what
    deleting a pipeline does to its stages, and its deals are still in them."""
    pipelines = list(pipelines)
    retired = {str(p["id"]) for p in pipelines if _deleted_listing(p, "active")}
    per_pipeline: defaultdict[str, list[NativeStage]] = defaultdict(list)
    for raw in stages:
        if _deleted_listing(raw, "active_flag") and str(raw.get("pipeline_id")) not in retired:
            continue
        with field_errors("pipedrive", str(raw.get("id")), "deal_probability"):
            probability = parse_decimal(raw.get("deal_probability"))
        per_pipeline[str(raw["pipeline_id"])].append(
            NativeStage(
                id=str(raw["id"]),
                label=str(raw.get("name") or raw["id"]),
                order=int(raw.get("order_nr") or 0),
                probability=probability / _HUNDRED if probability is not None else None,
            )
        )
    result = []
    for pipeline in sorted(pipelines, key=lambda p: (int(p.get("order_nr") or 0), int(p["id"]))):
        pid = str(pipeline["id"])
        ordered = sorted(per_pipeline.get(pid, ()), key=lambda s: (s.order, int(s.id)))
        label = str(pipeline.get("name") or pid)
        active = not _deleted_listing(pipeline, "active")
        result.append(NativePipelineStages(pid, label, tuple(ordered), active=active))
    return result


def _deleted_listing(record: Mapping[str, Any], v1_flag: str) -> bool:
    """Whether a listed pipeline or stage is deleted: v2 `is_deleted`, v1 `<v1_flag>: false`."""
    return record.get("is_deleted") is True or record.get(v1_flag) is False


def owner_from_pipedrive(record: Mapping[str, Any], instance: str) -> Owner:
    email = text_or_none(record.get("email"))
    return Owner(
        instance,
        str(record["id"]),
        email.lower() if email else None,
        record.get("name"),
        active=record.get("active_flag") is not False and not record.get("is_deleted"),
    )


def _owner_email(user: object, ctx: MappingContext) -> str | None:
    if isinstance(user, Mapping):
        email = text_or_none(user.get("email"))
        if email:
            return ctx.canonical_email(email)
        user = user.get("id", user.get("value"))
    return ctx.owner_email(text_or_none(user))


def _entered_at(status: DealStatus, read: Any, created: datetime) -> datetime | None:
    """When the deal entered its current stage, where the record tells. Winning and reopening
    change the status, not `stage_change_time`: an open deal won after its last stage change
    (`first_won_time`) was reopened since, at a time the record does not keep."""
    closed = _ENTERED_AT.get(status)
    if closed is not None:
        return read(closed, parse_timestamp)
    moved = read("stage_change_time", parse_timestamp) or created
    won = read("first_won_time", parse_timestamp)
    return None if won is not None and won > moved else moved


def _custom_fields(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The record's fields with its custom fields beside them: v2 nests them under
    `custom_fields`, v1 has them at the top level."""
    nested = record.get("custom_fields")
    return {**record, **nested} if isinstance(nested, Mapping) else record


def _organization(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(id, name) of the deal's organization: v2 `org_id` and crmsync's `org_name`, or v1's
    `org_id` object {value, name}."""
    org = record.get("org_id")
    if isinstance(org, Mapping):
        return text_or_none(org.get("value")), text_or_none(org.get("name"))
    return text_or_none(org), text_or_none(record.get("org_name"))


def deal_from_pipedrive(record: Mapping[str, Any], ctx: MappingContext) -> Deal:
    record = native_object(record, ctx.instance)
    rid = text_or_none(record.get("id"))
    if rid is None:
        raise MappingError(ctx.instance, "?", "id", "record has no id")

    def read(field: str, parse: Any) -> Any:
        with field_errors(ctx.instance, rid, field):
            return parse(record.get(field))

    pipeline = text_or_none(record.get("pipeline_id")) or ""
    native_id = text_or_none(record.get("stage_id")) or ""
    raw_status = str(record.get("status") or "open")
    deleted = bool(record.get("is_deleted") or record.get("deleted")) or raw_status == "deleted"
    if raw_status not in _STATUSES and raw_status != "deleted":
        raise MappingError(ctx.instance, rid, "status", f"unknown status {raw_status[:20]!r}")
    status = _STATUSES.get(raw_status, DealStatus.OPEN)
    funnel_key = ctx.key_for_status(pipeline, status)
    if funnel_key is None and native_id:
        funnel_key = ctx.funnel_stage(pipeline, native_id)
    value: Money | None = None
    if not is_blank(record.get("value")):
        read("value", parse_decimal)
        currency = text_or_none(record.get("currency")) or ctx.default_currency
        with field_errors(ctx.instance, rid, "currency"):
            value = money_or_none(record["value"], currency)
    probability = read("probability", parse_decimal)
    created, updated = read("add_time", parse_timestamp), read("update_time", parse_timestamp)
    for field, stamp in (("add_time", created), ("update_time", updated)):
        if stamp is None:
            raise MappingError(ctx.instance, rid, field, "missing")
    external, link_id = read_links(_custom_fields(record), ctx)
    extra: dict[str, Any] = {"deleted": True} if deleted else {}
    if record.get("is_archived") is True:
        extra["archived"] = True
    if value is None and text_or_none(record.get("currency")):
        extra["native_currency"] = str(record["currency"])  # what a rollback restores
    account_id, account = _organization(record)
    if account:
        extra["account"] = account
    if account_id:
        extra["account_id"] = account_id  # which organization (renames)
    return Deal(
        ref=Ref(ctx.instance, rid),
        name=str(record.get("title") or ""),
        pipeline=pipeline,
        stage=funnel_key,
        native_stage=native_id,
        status=status,
        value=value,
        close_date=read("expected_close_date", parse_date),
        owner_email=_owner_email(record.get("owner_id", record.get("user_id")), ctx),
        probability=probability / _HUNDRED if probability is not None else None,
        created_at=created,
        updated_at=updated,
        stage_entered_at=_entered_at(status, read, created),
        funnel=ctx.pipeline_funnels.get(pipeline, "default"),
        external_ids=external,
        link_id=link_id,
        extra=extra,
    )


def stage_history_from_pipedrive_flow(
    items: Iterable[Mapping[str, Any]], ctx: MappingContext
) -> dict[str, tuple[StageChange, ...]]:
    """Stage entries per deal id from GET /v1/deals/{id}/flow items (dealChange of stage_id)."""
    per_deal: defaultdict[str, list[StageChange]] = defaultdict(list)
    for item in items:
        data = item.get("data") or {}
        if item.get("object") != "dealChange" or data.get("field_key") != "stage_id":
            continue
        deal_id = text_or_none(data.get("item_id")) or "?"
        stage_id = text_or_none(data.get("new_value"))
        if stage_id is None:
            continue
        with field_errors(ctx.instance, deal_id, "flow.log_time"):
            entered = parse_timestamp(data.get("log_time") or item.get("timestamp"))
        if entered is None:
            raise MappingError(ctx.instance, deal_id, "flow.log_time", "missing")
        pipeline = ctx.pipeline_of_stage(stage_id)
        key = ctx.funnel_stage(pipeline, stage_id) if pipeline else None
        per_deal[deal_id].append(StageChange(key, stage_id, entered))
    return {deal_id: collapse_history(changes) for deal_id, changes in per_deal.items()}


def _int_id(deal: Deal, field: str, native_id: str) -> int:
    try:
        return int(native_id)
    except ValueError:
        raise MappingError(deal.system, deal.id, field, f"{native_id!r} is not an id") from None


def _probability(deal: Deal, value: object) -> float | int | None:
    return percent_read_back_whole(deal, "probability", value, "Pipedrive")


def _value(deal: Deal, amount: object) -> float | int:
    return number_read_back_whole(deal, "amount", "value", Decimal(str(amount)), "Pipedrive")


def update_for_pipedrive(
    deal: Deal,
    changes: Mapping[str, object],
    ctx: MappingContext,
    native: NativeValues | None = None,
) -> dict[str, Any]:
    """PATCH /api/v2/deals/{id} body for canonical `changes` (won/lost via `status`, stage
    untouched); v2 takes only typed values: ids and amounts are numbers, never text."""
    body: dict[str, Any] = {}
    target = resolve_stage_change(
        deal, changes, ctx, status_in_stage=STATUS_IN_STAGE, native=native
    )
    if target.pipeline is not None:  # with its stage there: Pipedrive files it by the stage
        body["pipeline_id"] = _int_id(deal, "pipeline", target.pipeline)
    if target.native_stage is not None:
        body["stage_id"] = _int_id(deal, "stage", target.native_stage)
    if target.status is not None:
        body["status"] = target.status.value
    for key, value in changes.items():
        if key in ("stage", "status"):
            continue
        if key == "name":
            body["title"] = str(value)
        elif key == "amount":
            # Pipedrive keeps no empty value: a cleared one is 0, which reads as no amount.
            body["value"] = 0 if value is None else _value(deal, value)
        elif key == "currency":
            if value is not None:
                body["currency"] = value
            elif native is not None and native.currency and native.currency != held_currency(deal):
                # No amount, so no canonical currency; Pipedrive holds a code on every deal
                # (never empty): the one to put back, else the one it has (not sent again).
                body["currency"] = native.currency
        elif key == "close_date":
            body["expected_close_date"] = value.isoformat() if isinstance(value, date) else None
        elif key == "owner_email":
            owner_id = owner_id_for_change(deal, ctx, value)
            if owner_id is None:
                raise MappingError(deal.system, deal.id, "owner_email", "Pipedrive requires one")
            body["owner_id"] = _int_id(deal, "owner_email", owner_id)
        elif key == "probability":
            body["probability"] = _probability(deal, value)
        else:
            raise MappingError(deal.system, deal.id, key, "not a writable canonical field")
    return body


def create_for_pipedrive(
    deal: Deal, ctx: MappingContext, link_id: str, pipeline: str | None = None
) -> dict[str, Any]:
    """POST /api/v2/deals body copying `deal`, linked back to it (the link marker and the ids
    pointing back are custom fields, nested under `custom_fields`).

    A won or lost deal whose closed funnel stage has no native stage is created with its
    status and without stage_id, so Pipedrive files it in the pipeline's first stage.
    """
    target_pipeline, native = create_stage_or_status(deal, ctx, pipeline)
    body: dict[str, Any] = {
        "title": deal.name,
        "pipeline_id": _int_id(deal, "pipeline", target_pipeline),
        "status": deal.status.value,
    }
    if native is not None:
        body["stage_id"] = _int_id(deal, "stage", native)
    if deal.value is not None:
        body["value"] = _value(deal, deal.value.amount)
        body["currency"] = deal.value.currency
    if deal.close_date is not None:
        body["expected_close_date"] = deal.close_date.isoformat()
    if deal.owner_email:
        owner_id = owner_id_for_change(deal, ctx, deal.owner_email)
        body["owner_id"] = _int_id(deal, "owner_email", owner_id or "")
    if deal.probability is not None:
        body["probability"] = _probability(deal, deal.probability)
    links = link_fields_for_create(deal, ctx, link_id)
    if links:
        body["custom_fields"] = links
    return body
