"""Salesforce Opportunity <-> canonical deal.

Quirks handled here: StageName holds the stage's picklist API name (OpportunityStage.ApiName),
never its label, which an admin may rename while the API name stays; it is resolved through the
OpportunityStage rows, whose IsClosed/IsWon give the status. CurrencyIsoCode exists only in
multi-currency orgs (a single-currency org's amounts are in `ctx.default_currency`); Probability
is 0-100; datetimes look like "2024-06-01T12:34:56.000+0000".

Pipelines: an Opportunity without a record type (RecordTypeId null, or an org without record
types) is in pipeline "default", which holds every stage. In an org with Opportunity record
types each one is a pipeline of its own, named by its DeveloperName (the same in every sandbox
and org the record type is deployed to, unlike its Id), holding the stages its sales process
allows; a deal is written in, and a copy created in, its record type's stages only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from mapping.context import MappingContext, NativePipelineStages, NativeStage, stage_map_key
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
    parse_flag,
    parse_timestamp,
    text_or_none,
)
from mapping.writes import (
    NativeValues,
    create_stage,
    held_currency,
    number_read_back_whole,
    owner_id_for_change,
    percent_read_back_whole,
    resolve_stage_change,
)

__all__ = [
    "PIPELINE",
    "PROBABILITY_IN_STAGE",
    "STATUS_IN_STAGE",
    "create_for_salesforce",
    "deal_from_salesforce",
    "owner_from_salesforce",
    "pipelines_from_salesforce",
    "stage_history_from_salesforce",
    "update_for_salesforce",
]

# An Opportunity is won or lost by its StageName (IsWon/IsClosed follow the stage): a
# status is written as a stage.
STATUS_IN_STAGE = True
# Salesforce sets an Opportunity's Probability to its stage's DefaultProbability whenever the
# stage changes (unless the same write gives one): a probability goes with its stage.
PROBABILITY_IN_STAGE = True

PIPELINE = "default"
# Native fields a mapping error can name -> the canonical key they feed (plans and reports
# name the canonical key; the native one stays in the reason, for whoever fixes the record).
NATIVE_FIELDS = {
    "Name": "name",
    "StageName": "stage",
    "Amount": "amount",
    "CurrencyIsoCode": "currency",
    "CloseDate": "close_date",
    "OwnerId": "owner_email",
    "Probability": "probability",
    "CreatedDate": "created_at",
    "LastModifiedDate": "updated_at",
    "SystemModstamp": "updated_at",
    "IsClosed": "status",
    "IsWon": "status",
}
_HUNDRED = Decimal(100)
# Opportunity.Name is string(120): Salesforce refuses a longer one (STRING_TOO_LONG).
NAME_MAX_LENGTH = 120
# Opportunity.Amount is currency(18, 2): 16 digits before the point (NUMBER_OUTSIDE_VALID_RANGE).
AMOUNT_INTEGER_DIGITS = 16


def pipelines_from_salesforce(
    stage_rows: Iterable[Mapping[str, Any]], label: str = "Opportunities"
) -> list[NativePipelineStages]:
    """Pipeline `default` (every stage) from OpportunityStage rows, in SortOrder (unsorted rows
    last); the connector adds one pipeline per record type."""
    stages = []
    for row in stage_rows:
        api_name = str(row.get("ApiName") or row.get("MasterLabel"))
        with field_errors("salesforce", api_name, "DefaultProbability"):
            probability = parse_decimal(row.get("DefaultProbability"))
        stages.append(
            NativeStage(
                id=api_name,
                label=str(row.get("MasterLabel") or api_name),
                order=int(row["SortOrder"]) if row.get("SortOrder") is not None else 1 << 30,
                probability=probability / _HUNDRED if probability is not None else None,
                is_closed=bool(row.get("IsClosed")),
                is_won=bool(row.get("IsWon")),
            )
        )
    stages.sort(key=lambda s: (s.order, s.id))
    return [NativePipelineStages(PIPELINE, label, tuple(stages))]


def owner_from_salesforce(record: Mapping[str, Any], instance: str) -> Owner:
    email = text_or_none(record.get("Email"))
    return Owner(
        instance,
        str(record["Id"]),
        email.lower() if email else None,
        record.get("Name"),
        active=record.get("IsActive") is not False,
    )


def _resolve_stage(ctx: MappingContext, stage_name: str, pipeline: str) -> NativeStage | None:
    """The OpportunityStage a StageName names; of the record type's pipeline first, else of all
    (a stage its process no longer allows still says whether the deal is closed)."""
    for where in dict.fromkeys((pipeline, PIPELINE)):
        stage = ctx.native_stage(where, stage_name) or ctx.native_stage_by_label(where, stage_name)
        if stage is not None:
            return stage
    return None


def _pipeline(record: Mapping[str, Any], ctx: MappingContext) -> str:
    """The deal's pipeline: its record type's DeveloperName (read with the deal), else the
    pipeline whose RecordTypeId it holds; "default" without a record type."""
    record_type = record.get("RecordType")
    if isinstance(record_type, Mapping) and text_or_none(record_type.get("DeveloperName")):
        return str(record_type["DeveloperName"])
    record_type_id = text_or_none(record.get("RecordTypeId"))
    if record_type_id is None:
        return PIPELINE
    return ctx.pipeline_of_native_id(record_type_id) or record_type_id


def _status(
    record: Mapping[str, Any], stage: NativeStage | None, instance: str, rid: str
) -> DealStatus:
    if stage is not None:
        closed, won = stage.is_closed, stage.is_won
    else:  # a stage missing from OpportunityStage: the record's own formula flags still say
        with field_errors(instance, rid, "IsClosed"):
            closed = bool(parse_flag(record.get("IsClosed")))
            won = bool(parse_flag(record.get("IsWon")))
    if won:
        return DealStatus.WON
    return DealStatus.LOST if closed else DealStatus.OPEN


def _owner_email(record: Mapping[str, Any], ctx: MappingContext) -> str | None:
    owner = record.get("Owner")
    if isinstance(owner, Mapping) and text_or_none(owner.get("Email")):
        return ctx.canonical_email(str(owner["Email"]))
    return ctx.owner_email(text_or_none(record.get("OwnerId")))


def deal_from_salesforce(record: Mapping[str, Any], ctx: MappingContext) -> Deal:
    record = native_object(record, ctx.instance)
    rid = text_or_none(record.get("Id"))
    if rid is None:
        raise MappingError(ctx.instance, "?", "Id", "record has no Id")

    def read(field: str, parse: Any) -> Any:
        with field_errors(ctx.instance, rid, field):
            return parse(record.get(field))

    pipeline = _pipeline(record, ctx)
    stage_name = text_or_none(record.get("StageName")) or ""
    stage = _resolve_stage(ctx, stage_name, pipeline) if stage_name else None
    native_id = stage.id if stage else stage_name
    status = _status(record, stage, ctx.instance, rid)
    funnel_key = (
        ctx.funnel_stage(pipeline, native_id) if native_id else ctx.key_for_status(pipeline, status)
    )

    currency_field = "CurrencyIsoCode" in record
    currency = text_or_none(record.get("CurrencyIsoCode")) or ctx.default_currency
    value: Money | None = None
    if not is_blank(record.get("Amount")):
        field = "CurrencyIsoCode" if currency_field else "Amount"
        with field_errors(ctx.instance, rid, "Amount"):
            parse_decimal(record["Amount"])  # name the amount, not the currency, when it is bad
        with field_errors(ctx.instance, rid, field):
            value = money_or_none(record["Amount"], currency)
    probability = read("Probability", parse_decimal)
    created = read("CreatedDate", parse_timestamp)
    updated = read("LastModifiedDate", parse_timestamp) or read("SystemModstamp", parse_timestamp)
    for field, stamp in (("CreatedDate", created), ("LastModifiedDate", updated)):
        if stamp is None:
            raise MappingError(ctx.instance, rid, field, "missing")
    external, link_id = read_links(record, ctx)
    extra: dict[str, Any] = {}
    if not currency_field:
        extra["single_currency"] = True  # writes must not send CurrencyIsoCode
    elif value is None and text_or_none(record.get("CurrencyIsoCode")):
        extra["native_currency"] = str(record["CurrencyIsoCode"])  # what a rollback restores
    if read("IsDeleted", parse_flag):
        extra["deleted"] = True
    account = record.get("Account")
    if isinstance(account, Mapping) and text_or_none(account.get("Name")):
        extra["account"] = str(account["Name"])
    if text_or_none(record.get("AccountId")):
        # which Account: a rename (a change of the Account, not of its Opportunities) reaches
        # the stored deals of that Account by it (sync/pull.py)
        extra["account_id"] = str(record["AccountId"])
    return Deal(
        ref=Ref(ctx.instance, rid),
        name=str(record.get("Name") or ""),
        pipeline=pipeline,
        stage=funnel_key,
        native_stage=native_id,
        status=status,
        value=value,
        close_date=read("CloseDate", parse_date),
        owner_email=_owner_email(record, ctx),
        probability=probability / _HUNDRED if probability is not None else None,
        created_at=created,
        updated_at=updated,
        funnel=ctx.pipeline_funnels.get(pipeline, "default"),
        external_ids=external,
        link_id=link_id,
        extra=extra,
    )


def stage_history_from_salesforce(
    rows: Iterable[Mapping[str, Any]], ctx: MappingContext
) -> dict[str, tuple[StageChange, ...]]:
    """OpportunityHistory rows (OpportunityId, StageName, CreatedDate) -> history per deal."""
    per_deal: defaultdict[str, list[StageChange]] = defaultdict(list)
    for row in rows:
        opp = text_or_none(row.get("OpportunityId")) or "?"
        stage_name = text_or_none(row.get("StageName"))
        if stage_name is None:
            continue
        with field_errors(ctx.instance, opp, "OpportunityHistory.CreatedDate"):
            entered = parse_timestamp(row.get("CreatedDate"))
        if entered is None:
            raise MappingError(ctx.instance, opp, "OpportunityHistory.CreatedDate", "missing")
        stage = _resolve_stage(ctx, stage_name, PIPELINE)
        native_id = stage.id if stage else stage_name
        per_deal[opp].append(StageChange(ctx.funnel_stage(PIPELINE, native_id), native_id, entered))
    return {opp: collapse_history(changes) for opp, changes in per_deal.items()}


def _probability(deal: Deal, value: object) -> float | int | None:
    return percent_read_back_whole(deal, "Probability", value, "Salesforce")


def _name(deal: Deal, value: object) -> str:
    """The Opportunity Name for `value`, which Salesforce would refuse (and crmsync retry every
    night) when longer than it keeps: never cut short, a value either arrives whole or not."""
    name = str(value)
    if len(name) > NAME_MAX_LENGTH:
        raise MappingError(
            deal.system,
            deal.id,
            "name",
            f"Name: {len(name)} characters, Salesforce keeps at most {NAME_MAX_LENGTH}",
        )
    return name


def _amount(deal: Deal, value: object) -> float | int | None:
    if value is None:
        return None
    return number_read_back_whole(
        deal,
        "amount",
        "Amount",
        Decimal(str(value)),
        "Salesforce",
        integer_digits=AMOUNT_INTEGER_DIGITS,
    )


def update_for_salesforce(
    deal: Deal,
    changes: Mapping[str, object],
    ctx: MappingContext,
    native: NativeValues | None = None,
) -> dict[str, Any]:
    """Opportunity fields for canonical `changes`; numbers as `values.json_number` spells them."""
    fields: dict[str, Any] = {}
    target = resolve_stage_change(
        deal, changes, ctx, status_in_stage=STATUS_IN_STAGE, native=native
    )
    pipeline = target.pipeline or deal.pipeline
    if target.pipeline is not None:
        fields["RecordTypeId"] = _record_type(deal, ctx, target.pipeline)
    if target.native_stage is not None:
        _allowed(deal, ctx, pipeline, target.native_stage)
        fields["StageName"] = target.native_stage  # the API name: a label is no value
        # Salesforce would set the new stage's default probability, which the next run takes
        # for an edit made here: a move to another open stage keeps the probability the CRMs
        # agree on. A close takes Salesforce's own (100% won, 0% lost).
        stage = ctx.native_stage(pipeline, target.native_stage)
        kept = deal.probability if "probability" not in changes else None
        if kept is not None and stage is not None and not stage.is_closed:
            fields["Probability"] = _probability(deal, kept)
    for key, value in changes.items():
        if key in ("stage", "status"):
            continue
        if key == "name":
            fields["Name"] = _name(deal, value)
        elif key == "amount":
            fields["Amount"] = _amount(deal, value)
        elif key == "currency":
            if value is None:
                # No amount, so no canonical currency; a multi-currency org holds a code on every
                # record (never null): the one to put back, else the one it has (not sent again).
                if (
                    native is not None
                    and native.currency
                    and native.currency != held_currency(deal)
                    and not deal.extra.get("single_currency")
                ):
                    fields["CurrencyIsoCode"] = native.currency
            elif deal.extra.get("single_currency"):
                if value != ctx.default_currency:
                    raise MappingError(
                        deal.system,
                        deal.id,
                        "currency",
                        f"single-currency org uses {ctx.default_currency} only",
                    )
            else:
                fields["CurrencyIsoCode"] = value
        elif key == "close_date":
            if not isinstance(value, date):
                raise MappingError(deal.system, deal.id, "close_date", "Salesforce requires one")
            fields["CloseDate"] = value.isoformat()
        elif key == "owner_email":
            owner_id = owner_id_for_change(deal, ctx, value, active_only=True)
            if owner_id is None:
                raise MappingError(deal.system, deal.id, "owner_email", "Salesforce requires one")
            fields["OwnerId"] = owner_id
        elif key == "probability":
            fields["Probability"] = _probability(deal, value)
        else:
            raise MappingError(deal.system, deal.id, key, "not a writable canonical field")
    return fields


def create_for_salesforce(
    deal: Deal, ctx: MappingContext, link_id: str, pipeline: str | None = None
) -> dict[str, Any]:
    """A new Opportunity copying `deal` (from another instance), linked back to it.

    CurrencyIsoCode always comes with an amount: a multi-currency org would otherwise stamp the
    API user's personal currency, which need not be the configured one. The connector, which
    knows whether the org has the field, leaves out the configured currency in a single-currency
    org (a foreign one there is refused by Salesforce itself). The copy goes to the first
    pipeline of the deal's funnel: a record type's (RecordTypeId set), or "default" (none set);
    an org with no pipeline of that funnel gets no copy, even where the funnels share the
    stage's key.
    """
    target, native = create_stage(deal, ctx, pipeline)
    _allowed(deal, ctx, target, native)
    if deal.close_date is None:
        raise MappingError(deal.system, deal.id, "close_date", "Salesforce requires one")
    fields: dict[str, Any] = {
        "Name": _name(deal, deal.name),
        "StageName": native,
        "CloseDate": deal.close_date.isoformat(),
    }
    if deal.value is not None:
        fields["Amount"] = _amount(deal, deal.value.amount)
        fields["CurrencyIsoCode"] = deal.value.currency
    if deal.owner_email:
        fields["OwnerId"] = owner_id_for_change(deal, ctx, deal.owner_email, active_only=True)
    if deal.probability is not None:
        fields["Probability"] = _probability(deal, deal.probability)
    record_type = ctx.pipeline_native_id(target)
    if record_type is not None:
        fields["RecordTypeId"] = record_type
    fields.update(link_fields_for_create(deal, ctx, link_id))
    return fields


def _record_type(deal: Deal, ctx: MappingContext, pipeline: str) -> str | None:
    """The RecordTypeId that puts an Opportunity in `pipeline`: its record type's id, none for
    `default` (the Opportunities without a record type)."""
    if pipeline == PIPELINE:
        return None
    record_type = ctx.pipeline_native_id(pipeline)
    if record_type is None:
        raise MappingError(
            deal.system,
            deal.id,
            "stage",
            f"record type {pipeline}'s id was not read from {ctx.instance}",
        )
    return record_type


def _allowed(deal: Deal, ctx: MappingContext, pipeline: str, native: str) -> None:
    """Salesforce refuses a stage the record type's sales process does not allow
    (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST): such a write is never planned."""
    if pipeline == PIPELINE or ctx.native_stage(pipeline, native) is not None:
        return
    if not ctx.native_stages.get(pipeline):
        return  # the record type's stages were not read: Salesforce itself will say
    where = stage_map_key(ctx.instance, pipeline)
    raise MappingError(
        deal.system,
        deal.id,
        "stage",
        f"{native!r} is not a stage of record type {pipeline}'s sales process ({where})",
    )
