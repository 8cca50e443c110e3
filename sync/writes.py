"""Canonical changes -> native write payloads, by each kind's KindMapping (sync.connect)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from mapping import MappingContext, NativeValues
from mapping.model import Deal, MappingError, Ref
from mapping.writes import (
    StageTarget,
    create_stage_or_status,
    held_currency,
    resolve_stage_change,
)
from sync.connect import kind_mapping
from sync.diff import Create, DealError, DiffResult
from sync.match import ref_order
from sync.plan import Change, Landing, Plan

__all__ = [
    "BATCH_SIZES",
    "ONE_CALL_EACH_BATCH",
    "can_express_for",
    "copy_of",
    "creatable",
    "fields_with_stage",
    "landing",
    "native_create",
    "native_stage_written",
    "native_update",
    "record_write",
    "stage_landing",
    "stage_tied_fields",
    "stage_written",
    "with_kept_currencies",
    "with_stage_landings",
    "write_batch",
]

# Writes per API call: Salesforce composite 200, HubSpot batch 100, Pipedrive one per deal.
BATCH_SIZES = {"salesforce": 200, "hubspot": 100, "pipedrive": 1}
# Records per journaled write batch where each record is its own call (BATCH_SIZES 1): the lock
# and a stop request are checked between batches, so this bounds what still goes out after a
# lost lock or a SIGTERM. Smaller batches cost such an API no extra calls.
ONE_CALL_EACH_BATCH = 10


def write_batch(kind: str, usual: int) -> int:
    """Records per journaled write batch for an instance of `kind`: one full API call where the
    API writes in batches (BATCH_SIZES; a Salesforce create or delete batch of 100 cost twice
    the calls the API needs), ONE_CALL_EACH_BATCH where it writes one record per call, and
    `usual` for a kind not listed (a plugin's)."""
    size = BATCH_SIZES.get(kind, usual)
    return ONE_CALL_EACH_BATCH if size == 1 else size


def native_update(
    deal: Deal,
    changes: Mapping[str, Any],
    ctx: MappingContext,
    native: NativeValues | None = None,
) -> dict[str, Any]:
    """The native payload that applies canonical `changes` to `deal` (MappingError if it can't);
    `native`: the exact native values to put back where the changes leave a choice."""
    return kind_mapping(ctx.kind).update(deal, changes, ctx, native)


def fields_with_stage(kind: str) -> frozenset[str]:
    """The fields this kind of CRM ties to the stage: a status written as a stage (Salesforce,
    HubSpot; Pipedrive's status is a field apart), a probability set from the stage whenever it
    changes (Salesforce). Each goes only with its stage (apply's `_keep_with_stage`, the diff's
    `with_stage`)."""
    return kind_mapping(kind).fields_with_stage


def stage_tied_fields(contexts: Mapping[str, MappingContext]) -> dict[str, frozenset[str]]:
    """Per instance, the fields its CRM ties to the stage (`fields_with_stage`): the diff's
    `with_stage`."""
    return {name: fields_with_stage(ctx.kind) for name, ctx in contexts.items()}


def stage_written(
    deal: Deal,
    changes: Mapping[str, Any],
    ctx: MappingContext,
    native: NativeValues | None = None,
) -> StageTarget:
    """Where `native_update` with these arguments puts `deal`: its new native stage (None: the
    stage stays as it is) and, where it moves the deal to another pipeline, that pipeline."""
    if "stage" not in changes and "status" not in changes:
        return StageTarget()
    in_stage = kind_mapping(ctx.kind).status_in_stage
    return resolve_stage_change(deal, changes, ctx, status_in_stage=in_stage, native=native)


def native_stage_written(
    deal: Deal,
    changes: Mapping[str, Any],
    ctx: MappingContext,
    native: NativeValues | None = None,
) -> str | None:
    """The native stage `native_update` with these arguments moves `deal` to; None when it
    leaves the stage as it is."""
    return stage_written(deal, changes, ctx, native).native_stage


def record_write(changes: Sequence[Change]) -> tuple[dict[str, Any], NativeValues | None]:
    """The canonical values and the native choices of one write of a record's `changes` (apply
    sends a record's changes together): {field: to}, and their native values merged."""
    native = None
    for change in changes:
        if change.native is not None:
            native = change.native.merged(native)
    return {c.field: c.to_value for c in changes}, native


def stage_landing(deal: Deal, changes: Sequence[Change], ctx: MappingContext) -> Landing | None:
    """Where the write of `deal`'s `changes` puts it: the native stage `stage_written` chooses,
    as apply does (the stage map, `stage_write`, a rollback's exact stage), in the deal's
    pipeline, or in the one a move takes it to (push.move_between_pipelines). None when they
    change neither stage nor status, or cannot be written (the apply reports why)."""
    values, native = record_write(changes)
    if "stage" not in values and "status" not in values:
        return None
    try:
        target = stage_written(deal, values, ctx, native)
    except MappingError:
        return None
    pipeline, written = target.pipeline or deal.pipeline, target.native_stage
    stage = ctx.native_stage(pipeline, written) if written else None
    moved_from = (deal.pipeline, ctx.pipeline_label(deal.pipeline)) if target.pipeline else None
    label = ctx.pipeline_label(pipeline)
    return Landing(pipeline, written, stage.label if stage else written, label, moved_from)


def with_stage_landings(
    plan: Plan, deals: Mapping[Ref, Deal], contexts: Mapping[str, MappingContext]
) -> Plan:
    """`plan` whose stage changes name where their target will hold the deal (`stage_landing`),
    and so do status changes its CRM writes as a stage (Salesforce, HubSpot): the funnel stage
    alone does not say which of several native stages mapped to it the deal lands in."""
    by_record: dict[Ref, list[Change]] = defaultdict(list)
    for change in plan.changes:
        by_record[Ref(change.system, change.id)].append(change)
    landings: dict[Ref, Landing] = {}
    for ref, changes in by_record.items():
        ctx, deal = contexts.get(ref.system), deals.get(ref)
        if ctx is None or deal is None:
            continue
        landing = stage_landing(deal, changes, ctx)
        if landing is not None:
            landings[ref] = landing
    if not landings:
        return plan
    named = []
    for change in plan.changes:
        landing = landings.get(Ref(change.system, change.id))
        if landing is not None and (
            change.field == "stage" or (change.field == "status" and landing.native_stage)
        ):
            change = replace(change, landing=landing)
        named.append(change)
    return replace(plan, changes=tuple(named))


def _kept_currency(deal: Deal, ctx: MappingContext) -> str | None:
    """The code `deal`'s currency field keeps when a write takes its amount, and so its
    canonical currency, away: the one it holds, where that write leaves the field as it is
    (Salesforce: a multi-currency org holds a code on every record, a single-currency org its
    one; Pipedrive: every deal holds one); None where the write clears the field (HubSpot) or
    cannot be made."""
    try:
        if native_update(deal, {"currency": None}, ctx):
            return None
    except MappingError:
        return None
    return held_currency(deal)


def with_kept_currencies(
    plan: Plan, deals: Mapping[Ref, Deal], contexts: Mapping[str, MappingContext]
) -> Plan:
    """`plan` whose changes taking a currency away (with its amount) name, as `native_to`, the
    code their target's currency field keeps (`_kept_currency`): the plan says what the CRM
    will hold, not that its code goes, and apply writes exactly that."""
    changes = list(plan.changes)
    for index, change in enumerate(changes):
        if change.field != "currency" or change.to_value is not None or change.native is not None:
            continue
        ctx, deal = contexts.get(change.system), deals.get(Ref(change.system, change.id))
        code = _kept_currency(deal, ctx) if ctx is not None and deal is not None else None
        if code is not None:
            changes[index] = replace(change, native=NativeValues(currency=code))
    return replace(plan, changes=tuple(changes))


def copy_of(deal: Deal, decided: Mapping[str, Any]) -> Deal:
    """The deal a copy is made from: the source with the values its entity's policies decided
    where the members disagree (diff fields, the amount a Money; see `Create.decided`)."""
    if not decided:
        return deal
    changes = {("value" if name == "amount" else name): v for name, v in decided.items()}
    return replace(deal, **changes)


def native_create(deal: Deal, ctx: MappingContext, link_id: str) -> dict[str, Any]:
    return kind_mapping(ctx.kind).create(deal, ctx, link_id)


def can_express_for(
    contexts: Mapping[str, MappingContext], deals: Mapping[Ref, Deal]
) -> Callable[[Ref, str, Any], str | None]:
    """The diff's `can_express`: would the target's native payload for this value map?"""

    def can_express(target: Ref, field: str, value: Any) -> str | None:
        ctx, deal = contexts.get(target.system), deals.get(target)
        if ctx is None or deal is None:
            return f"{target.system} was not pulled in this run"
        if field == "status" and value == "open":
            return None  # reopening travels with the stage change the diff emits beside it
        try:
            native_update(deal, {field: value}, ctx)
        except MappingError as exc:
            return exc.reason
        return None

    return can_express


def landing(copy: Deal, ctx: MappingContext) -> dict[str, str | None]:
    """Where `native_create` puts `copy`: its pipeline and native stage (ids and labels). A won
    or lost copy whose closed stage has no native one (Pipedrive's pipelines hold open stages
    only) has none: its CRM files it by its status. Called once `native_create` took the copy,
    so the lookup the mappers made finds the same answer and raises nothing."""
    pipeline, native = create_stage_or_status(copy, ctx, None)
    stage = ctx.native_stage(pipeline, native) if native else None
    return {
        "pipeline": pipeline,
        "native_stage": native,
        "native_stage_label": stage.label if stage else native,
        "pipeline_label": ctx.pipeline_label(pipeline),
    }


def creatable(
    diffed: DiffResult, deals: Mapping[Ref, Deal], contexts: Mapping[str, MappingContext]
) -> DiffResult:
    """`diffed` without the creates whose copy its target could not hold (an owner the target
    CRM lacks, a stage it cannot express), each listed under errors instead, as an unexpressible
    change is. Planned, each would fail at apply, and again every night."""
    kept: list[Create] = []
    refused: list[DealError] = []
    for create in diffed.creates:
        ctx = contexts.get(create.system)
        if ctx is None:
            kept.append(create)
            continue
        copy = copy_of(deals[create.source], create.decided)
        try:
            native_create(copy, ctx, create.entity)
        except MappingError as exc:
            why = f"no copy can be made in {create.system}: {exc.reason}"
            refused.append(DealError(create.source, exc.field, why))
            continue
        kept.append(replace(create, target=landing(copy, ctx)))
    if not refused:
        return replace(diffed, creates=tuple(kept))
    errors = sorted(
        (*diffed.errors, *refused), key=lambda e: (*ref_order(e.ref), e.field, e.reason)
    )
    return replace(diffed, creates=tuple(kept), errors=tuple(errors))
