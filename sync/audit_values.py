"""What the audit log records as a field write's before-value, and how a rollback reads it.

The before-value is the canonical value the write replaced, as a plan spells it. Where that
value leaves a native choice open, the entry records the native value too, read from the
record just before the write, so that a rollback puts back exactly what was there:
`{"value": "qualified", "pipeline": "default", "native_stage": "qualifiedtobuy"}` for a stage
(several native stages may map to one funnel stage), `{"value": null, "native_currency": "EUR"}`
for the currency of a deal without an amount (no canonical currency, but the CRM's currency
field holds a code). Entries written before crmsync recorded native values hold the plain
value; they roll back by the canonical value alone.

The after-value of a stage write names the native stage (and pipeline) the write left the deal
in, in the same form: a rollback writes only while the deal still holds exactly that, so a
person's move since between two native stages of one funnel stage is not overwritten. A write
that moved the deal to another pipeline (push.move_between_pipelines) names that pipeline in
its before-value too (`"moves_to"`), and its after-value is of that pipeline: its rollback moves
the deal back. A before and an after of different pipelines without it (a person moved the deal
between a write left in doubt and the run that settled it) is no move of crmsync's. Entries
written before crmsync recorded it hold the plain funnel stage; their rollback checks that alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapping import Deal, MappingContext, NativeValues
from sync.plan import Change, decode_value, encode_value

__all__ = ["audited_after", "audited_before", "moves_to", "restorable", "stage_labels"]


def audited_before(change: Change, deal: Deal, ctx: MappingContext | None = None) -> Any:
    """The before-value to journal and audit for `change`, `deal` as read before the write; a
    stage change moving the deal to another pipeline names it (`moves_to`): the deal found in
    that pipeline after the write was moved there by crmsync, not by a person. With `ctx`, a
    stage's before-value also holds the labels the CRM shows for its pipeline and native stage
    (`pipeline_label`, `native_stage_label`), for a rollback to show where the deal goes back:
    it reads no CRM before `--apply`."""
    value = encode_value(change.from_value)
    if change.field == "stage":
        before = {"value": value, "pipeline": deal.pipeline, "native_stage": deal.native_stage}
        before.update(_labels(ctx, deal.pipeline, deal.native_stage) if ctx else {})
        moving = change.pipeline_move
        return before if moving is None else {**before, "moves_to": moving[1]}
    if change.field == "currency" and value is None and "native_currency" in deal.extra:
        return {"value": value, "native_currency": deal.extra["native_currency"]}
    return value


def audited_after(
    field: str,
    value: Any,
    deal: Deal,
    native_stage: str | None = None,
    pipeline: str | None = None,
) -> Any:
    """The after-value to audit for a write of `value` (encoded) to `field` of `deal`: for a
    stage, with the native stage the write moved the deal to, `native_stage` (None: the write
    left it where `deal` has it, as the write of a status in Pipedrive does, or `deal` was read
    after the write), in `pipeline` where the write moved the deal to another one
    (push.move_between_pipelines; its rollback moves it back)."""
    if field == "stage":
        return {
            "value": value,
            "pipeline": pipeline or deal.pipeline,
            "native_stage": native_stage or deal.native_stage,
        }
    return value


def restorable(field: str, before: Any) -> tuple[Any, NativeValues | None]:
    """An audited before- or after-value -> (the canonical value, the native values recorded
    with it or None when the entry has none); ValueError when it is neither form."""
    if not isinstance(before, Mapping):
        return decode_value(field, before), None
    if "value" not in before:
        raise ValueError(f"no 'value' in the audited before-value of {field}")
    native = NativeValues(
        _text(before, "pipeline"), _text(before, "native_stage"), _text(before, "native_currency")
    )
    return decode_value(field, before["value"]), None if native == NativeValues() else native


def stage_labels(before: Any) -> tuple[str, str] | None:
    """(pipeline label, native stage label) an audited stage before-value names (see
    `audited_before`); None where the entry has none (written without them, or by an older
    crmsync)."""
    if not isinstance(before, Mapping):
        return None
    pipeline, stage = _text(before, "pipeline_label"), _text(before, "native_stage_label")
    return (pipeline, stage) if pipeline and stage else None


def _labels(ctx: MappingContext, pipeline: str, native_stage: str | None) -> dict[str, str]:
    stage = ctx.native_stage(pipeline, native_stage) if native_stage else None
    pipeline_label = ctx.pipeline_label(pipeline)
    if stage is None or not stage.label or not pipeline_label:
        return {}
    return {"pipeline_label": pipeline_label, "native_stage_label": stage.label}


def moves_to(before: Any) -> str | None:
    """The pipeline an audited (or journaled) stage write moved its deal to, as its before-value
    names it (`audited_before`); None for a write that moved it to no other pipeline."""
    if not isinstance(before, Mapping):
        return None
    return _text(before, "moves_to")


def _text(before: Mapping[str, Any], key: str) -> str | None:
    value = before.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"audited {key} must be a string, not {type(value).__name__}")
    return value
