"""How a canonical change becomes a native one, for the parts every system shares.

Canonical `stage` and `status` are coupled: a funnel stage implies a status (won / lost / open).
Salesforce and HubSpot express status only through the stage; Pipedrive through its `status`
field with the stage left as is. `resolve_stage_change` turns the requested changes into
"new native stage" / "new status" once, so each system's writer only spells the fields.

A funnel stage may stand for several native stages, and a deal without an amount has no
canonical currency though its currency field holds one. A write that puts a deal back where it
was (a rollback) names the exact native values in `NativeValues`; other writes choose.

A write whose `NativeValues` says it `moves` the deal to a pipeline other than its own puts it
there: a stage change planned under `push.move_between_pipelines` (the deal's pipeline follows a
funnel that lacks the stage; sync/moves.py), or the rollback of one. The apply sends such a
write only while the deal is still in the pipeline the move expects (sync/apply.py). Without
`moves`, a native stage of another pipeline is not written: the deal stays in its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from mapping.context import MappingContext, pipeline_funnel_key, stage_map_key
from mapping.funnel import FunnelStage
from mapping.model import Deal, DealStatus, MappingError
from mapping.values import json_number

__all__ = [
    "NativeValues",
    "StageTarget",
    "create_pipeline",
    "create_stage",
    "create_stage_or_status",
    "funnel_pipeline",
    "held_currency",
    "implied_status",
    "number_read_back_whole",
    "other_funnel_reason",
    "owner_id_for_change",
    "percent_read_back_whole",
    "pipeline_of_funnel",
    "resolve_stage_change",
]


@dataclass(frozen=True, slots=True)
class NativeValues:
    """Native values a write puts back exactly where the canonical change leaves a choice: the
    native stage (of `pipeline`) among those mapped to the funnel stage written, and the code
    in the currency field of a deal left without an amount (`currency: None`). `moves`: the
    write moves the deal to `pipeline` where that is not its own (see the module docstring)."""

    pipeline: str | None = None
    native_stage: str | None = None
    currency: str | None = None
    moves: bool = False

    def merged(self, other: NativeValues | None) -> NativeValues:
        """These values, completed by `other`'s where these have none."""
        if other is None:
            return self
        return NativeValues(
            self.pipeline or other.pipeline,
            self.native_stage or other.native_stage,
            self.currency or other.currency,
            self.moves if self.pipeline else other.moves,
        )


@dataclass(frozen=True, slots=True)
class StageTarget:
    native_stage: str | None = None  # new native stage id; None = leave the stage alone
    status: DealStatus | None = None  # new status; None = unchanged
    pipeline: str | None = None  # the pipeline the deal moves to; None = it stays in its own


def held_currency(deal: Deal) -> str | None:
    """The code in the deal's currency field, with or without an amount."""
    return deal.value.currency if deal.value else deal.extra.get("native_currency")


def implied_status(stage: FunnelStage) -> DealStatus:
    if stage.is_won:
        return DealStatus.WON
    return DealStatus.LOST if stage.is_closed else DealStatus.OPEN


def _status(deal: Deal, value: object) -> DealStatus:
    try:
        return DealStatus(str(value))
    except ValueError:
        raise MappingError(
            deal.system, deal.id, "status", f"unknown status {value!r} (open, won or lost)"
        ) from None


def _no_stage(
    deal: Deal, ctx: MappingContext, key: str, pipeline: str, field: str = "stage"
) -> MappingError:
    """The stage map gives funnel stage `key` no native stage of `pipeline`: the reason names
    the config key that would."""
    where = stage_map_key(ctx.instance, pipeline)
    reason = f"no native stage for {key!r} in pipeline {pipeline} (map one to it in {where})"
    return MappingError(deal.system, deal.id, field, reason)


def other_funnel_reason(ctx: MappingContext, key: str, pipeline: str) -> str:
    """Why a deal in `pipeline` cannot take funnel stage `key` there: a stage of another funnel
    than the one the pipeline follows, naming the config key that sets it."""
    funnel = ctx.funnel_for(pipeline).name
    return (
        f"{key!r} is not a stage of funnel {funnel!r}, which pipeline {pipeline} follows "
        f"({pipeline_funnel_key(ctx.instance, pipeline)})"
    )


def _other_funnel(deal: Deal, ctx: MappingContext, key: str, pipeline: str) -> MappingError:
    """`key` is a stage of another funnel than the one `pipeline` follows: the deal's copies sit
    in pipelines of different product lines, and this write moves the deal to no other pipeline
    (without `push.move_between_pipelines` crmsync moves none)."""
    reason = f"{other_funnel_reason(ctx, key, pipeline)}; crmsync moves no deal to another pipeline"
    return MappingError(deal.system, deal.id, "stage", reason)


def _native_for_key(
    deal: Deal, ctx: MappingContext, key: str, pipeline: str, exact: str | None
) -> str:
    # The native stage asked for, while the stage map still gives it `key` (after a change of
    # the map, the funnel stage written wins over the native stage once held).
    if exact is not None and ctx.funnel_stage(pipeline, exact) == key:
        return exact
    # Keep the deal's current native stage when it already means `key`: several native stages
    # may map to one funnel stage and a no-op must not move the deal between them.
    if deal.pipeline == pipeline and ctx.funnel_stage(pipeline, deal.native_stage) == key:
        return deal.native_stage
    native = ctx.native_stage_for(pipeline, key)
    if native is None:
        raise _no_stage(deal, ctx, key, pipeline)
    return native


def resolve_stage_change(
    deal: Deal,
    changes: Mapping[str, object],
    ctx: MappingContext,
    *,
    status_in_stage: bool,
    native: NativeValues | None = None,
) -> StageTarget:
    """The native stage / status a `stage` and/or `status` change needs in this system;
    `native.native_stage`, when given and still of the deal's pipeline, is the one to write.
    `native.moves` to a pipeline other than the deal's moves the deal there
    (`StageTarget.pipeline`), into a native stage of that pipeline."""
    if native is not None and native.moves and native.pipeline not in (None, deal.pipeline):
        return _moved(deal, changes, ctx, native.pipeline, native.native_stage, status_in_stage)
    pipeline = deal.pipeline
    exact = native.native_stage if native is not None and native.pipeline == pipeline else None
    key = changes.get("stage")
    status = _status(deal, changes["status"]) if "status" in changes else None
    if "stage" in changes and key is None:
        raise MappingError(deal.system, deal.id, "stage", "a deal's stage cannot be cleared")
    if key is not None:
        funnel_stage = ctx.funnel_stage_def(pipeline, str(key))
        if funnel_stage is None:
            raise _other_funnel(deal, ctx, str(key), pipeline)
        implied = implied_status(funnel_stage)
        if status is not None and status != implied:
            raise MappingError(
                deal.system, deal.id, "status", f"status {status} contradicts stage {key!r}"
            )
        if status_in_stage:
            return StageTarget(_native_for_key(deal, ctx, str(key), pipeline, exact), implied)
        if implied is not DealStatus.OPEN:
            # Closed by its status, the deal keeps a stage of its pipeline: the one asked for.
            if (
                exact is not None
                and exact != deal.native_stage
                and ctx.funnel_stage(pipeline, exact)
            ):
                return StageTarget(exact, implied)
            return StageTarget(None, implied)
        stage_id = _native_for_key(deal, ctx, str(key), pipeline, exact)
        reopen = DealStatus.OPEN if deal.status is not DealStatus.OPEN else None
        return StageTarget(stage_id, reopen)
    if status is None:
        return StageTarget()
    if not status_in_stage:
        return StageTarget(None, status)
    if status is deal.status:
        return StageTarget()
    if status is DealStatus.OPEN:
        raise MappingError(
            deal.system, deal.id, "status", "reopening a closed deal needs a target stage"
        )
    closed = ctx.closed_native_stage(pipeline, won=status is DealStatus.WON)
    if closed is None:  # the status is written as a stage, and the map gives it none
        key = ctx.key_for_status(pipeline, status) or str(status)
        raise _no_stage(deal, ctx, key, pipeline, "status")
    return StageTarget(closed, status)


def _moved(
    deal: Deal,
    changes: Mapping[str, object],
    ctx: MappingContext,
    pipeline: str,
    exact: str | None,
    status_in_stage: bool,
) -> StageTarget:
    """A write moving `deal` to `pipeline`: the funnel stage it takes there, always in a native
    stage of that pipeline (the one `exact` names while the stage map still gives it the stage,
    else the one the stage is written as). A won or lost deal its CRM files by status
    (Pipedrive, whose pipelines hold open stages only) goes to the stage `exact` names, else to
    the pipeline's first stage, as the CRM files a copy created there without one."""
    key = changes.get("stage")
    if key is None:
        raise MappingError(
            deal.system, deal.id, "stage", f"a move to pipeline {pipeline} needs a stage there"
        )
    funnel_stage = ctx.funnel_stage_def(pipeline, str(key))
    if funnel_stage is None:
        raise MappingError(
            deal.system, deal.id, "stage", other_funnel_reason(ctx, str(key), pipeline)
        )
    implied = implied_status(funnel_stage)
    if "status" in changes and _status(deal, changes["status"]) != implied:
        raise MappingError(
            deal.system, deal.id, "status", f"status {changes['status']} contradicts stage {key!r}"
        )
    if not status_in_stage and implied is not DealStatus.OPEN:
        # Closed by its status, the deal still needs a stage of the pipeline: the one asked for
        # (a rollback's), else the one the stage is written as, else the first.
        stages = [stage.id for stage in ctx.native_stages.get(pipeline) or ()]
        known = exact is not None and (exact in stages or ctx.funnel_stage(pipeline, exact))
        native = exact if known else None
        native = native or ctx.native_stage_for(pipeline, str(key)) or next(iter(stages), None)
    else:
        mapped = exact is not None and ctx.funnel_stage(pipeline, exact) == key
        native = exact if mapped else ctx.native_stage_for(pipeline, str(key))
    if native is None:
        raise _no_stage(deal, ctx, str(key), pipeline)
    status = implied if implied is not deal.status else None
    return StageTarget(native, status, pipeline)


def owner_id_for_change(
    deal: Deal, ctx: MappingContext, email: object, *, active_only: bool = False
) -> str | None:
    """The native owner id for an owner email; None clears; an unknown email is an error, and
    so is a deactivated user's where the CRM refuses to give them a deal (`active_only`)."""
    if email is None:
        return None
    owner_id = ctx.owner_id_for(str(email))
    if owner_id is None:
        # "after owners.aliases" only where the config sets some; a user of the same name at
        # another domain is the lead to follow where it sets none yet
        matched = "by email, after owners.aliases" if ctx.owner_aliases else "by email"
        fix = (
            f"add one with that email in {ctx.instance} (owners are matched {matched}), "
            f"or give the deal an owner {ctx.instance} has"
        )
        lead = _namesake_lead(ctx, str(email), active_only)
        raise MappingError(
            deal.system,
            deal.id,
            "owner_email",
            f"no {ctx.instance} user with email {email}{lead}: {fix}",
        )
    if active_only and owner_id in ctx.inactive_owners:
        raise MappingError(
            deal.system,
            deal.id,
            "owner_email",
            f"the {ctx.instance} user with email {email} is deactivated and cannot own a deal",
        )
    return owner_id


def _namesake_lead(ctx: MappingContext, email: str, active_only: bool) -> str:
    """` (hubspot has zoe@acme-eu.com: if that is the same person, add owners.aliases: {...})`
    where the CRM has a user of `email`'s local part at another domain that could own the deal
    (several: counted, the first by email named); else nothing."""
    wanted = email.strip().lower()
    found = sorted(
        {
            other
            for other, owner_id in ctx.owners_named_like(wanted)
            if other != wanted and not (active_only and owner_id in ctx.inactive_owners)
        }
    )
    if not found:
        return ""
    first, name = found[0], wanted.rpartition("@")[0]
    has = f"{len(found)} users named {name} at other domains, the first " if found[1:] else ""
    return (
        f" ({ctx.instance} has {has}{first}: if that is the same person, add owners.aliases: "
        f"{{{first}: {wanted}}})"
    )


def create_pipeline(deal: Deal, ctx: MappingContext, pipeline: str | None) -> str:
    """The target pipeline for a created copy: given, else the first one of the deal's funnel
    that takes new deals (a deactivated Salesforce record type only keeps the ones it has)."""
    if pipeline is not None:
        return pipeline
    return pipeline_of_funnel(deal, ctx, deal.funnel)


def pipeline_of_funnel(deal: Deal, ctx: MappingContext, funnel: str) -> str:
    """The pipeline of this instance a deal of `funnel` goes to (a copy created, a deal moved
    to that product line): `funnel_pipeline`'s. MappingError (field `pipeline`) naming the
    config key when there is none."""
    pipeline, why = funnel_pipeline(ctx, funnel)
    if pipeline is None:
        raise MappingError(deal.system, deal.id, "pipeline", why)
    return pipeline


def funnel_pipeline(ctx: MappingContext, funnel: str) -> tuple[str | None, str]:
    """(the first pipeline in the CRM's order that follows `funnel` and takes new deals, "");
    (None, why there is none, naming the config key that would give one)."""
    following = ctx.pipelines_for_funnel(funnel)
    candidates = [p for p in following if ctx.takes_new_deals(p)]
    if candidates:
        return candidates[0], ""
    where = f"systems.{ctx.instance}.pipeline_funnels"
    if not following:
        return None, f"no pipeline of {ctx.instance} follows funnel {funnel!r} ({where})"
    retired = f"{', '.join(following)} {'is' if len(following) == 1 else 'are'}"
    return None, (
        f"no pipeline of {ctx.instance} that takes new deals follows funnel "
        f"{funnel!r}: {retired} deactivated or deleted there (its deals stay, no "
        f"new one goes there); give a live pipeline that funnel "
        f"({where})"
    )


def create_stage(deal: Deal, ctx: MappingContext, pipeline: str | None) -> tuple[str, str]:
    """The pipeline (`create_pipeline`) and native stage a created copy of `deal` lands in."""
    target, native = _create_landing(deal, ctx, pipeline)
    if native is None:
        raise _no_native_stage(deal, ctx, target)
    return target, native


def create_stage_or_status(
    deal: Deal, ctx: MappingContext, pipeline: str | None
) -> tuple[str, str | None]:
    """`create_stage`, for a CRM that files a won or lost deal by its status: such a deal whose
    closed stage has no native one (Pipedrive's pipelines hold open stages only) gets None."""
    target, native = _create_landing(deal, ctx, pipeline)
    if native is None and deal.status is DealStatus.OPEN:
        raise _no_native_stage(deal, ctx, target)
    return target, native


def _create_landing(
    deal: Deal, ctx: MappingContext, pipeline: str | None
) -> tuple[str, str | None]:
    target = create_pipeline(deal, ctx, pipeline)
    if deal.stage is None:
        raise MappingError(deal.system, deal.id, "stage", "unmapped stage cannot be created")
    return target, ctx.native_stage_for(target, deal.stage)


def _no_native_stage(deal: Deal, ctx: MappingContext, pipeline: str) -> MappingError:
    reason = f"no native stage for {deal.stage!r} in {ctx.instance} pipeline {pipeline}"
    return MappingError(deal.system, deal.id, "stage", reason)


def number_read_back_whole(
    deal: Deal,
    field: str,
    native_field: str,
    value: Decimal,
    crm: str,
    *,
    integer_digits: int | None = None,
) -> float | int:
    """`value` as the JSON number a CRM whose client reads numbers back as doubles (Salesforce,
    Pipedrive) is sent; MappingError when it cannot come back as written: more significant
    digits than a double holds (it would read back otherwise, and be written again every night)
    or, given `integer_digits`, more digits before the point than the field keeps."""
    if integer_digits is not None and abs(value) >= Decimal(10) ** integer_digits:
        digits = value.adjusted() + 1  # 1E+20 too: 21 digits, not the 5 characters
        raise MappingError(
            deal.system,
            deal.id,
            field,
            f"{native_field}: {digits} digits before the decimal point, {crm} keeps at most "
            f"{integer_digits}",
        )
    number = json_number(value)
    if isinstance(number, str) or (isinstance(number, int) and abs(number) > 2**53):
        raise MappingError(
            deal.system,
            deal.id,
            field,
            f"{native_field}: {value} has more significant digits than {crm} reads back "
            "(a double: about 15)",
        )
    return number


def percent_read_back_whole(
    deal: Deal, native_field: str, probability: object, crm: str
) -> float | int | None:
    """A canonical probability (0..1) as the percent a CRM keeps (Salesforce, Pipedrive), under
    `number_read_back_whole`'s rule; None stays None."""
    if probability is None:
        return None
    percent = Decimal(str(probability)) * 100
    return number_read_back_whole(deal, "probability", native_field, percent, crm)
