"""The plan: every intended change of a run, reviewable and applicable later.

Its JSON document (DESIGN.md's `reconcile --format json`) is written and read by
sync/plan_json.py.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mapping import NativeValues
from mapping.currencies import ISO_4217
from mapping.model import (
    Deal,
    DealStatus,
    Money,
    Ref,
    bounded_decimal,
    format_decimal,
    format_utc,
)
from sync.diff import Create, DealError, DiffResult, FieldChange
from sync.match import MatchResult, paused_gc
from sync.unmapped_stage import UnmappedStage

__all__ = [
    "PLAN_VERSION",
    "Change",
    "ConflictItem",
    "Landing",
    "Plan",
    "PlanError",
    "build_plan",
    "current_value",
    "decided_of",
    "decode_held",
    "decode_value",
    "diff_values",
    "encode_value",
    "plan_create",
    "plan_is_empty",
    "show_value",
]

PLAN_VERSION = 1


class PlanError(ValueError):
    """A plan file that cannot be trusted: unreadable, another version, tampered, malformed."""


@dataclass(frozen=True, slots=True)
class Landing:
    """Where a write puts a deal in its CRM, for the people reviewing the plan: its pipeline and
    native stage (id and label). No native stage: the write moves no stage (a won or lost deal
    its CRM files by status, Pipedrive's, keeps the stage it is in). The pipeline's label is
    None where the plan had none (plans saved before labels, a pipeline not read)."""

    pipeline: str
    native_stage: str | None
    native_stage_label: str | None
    pipeline_label: str | None = None
    # The pipeline the write moves the deal out of (id, label), where it moves it to another
    # (push.move_between_pipelines); None: it stays in `pipeline`.
    moved_from: tuple[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class Change:
    change_id: str  # stable hash of what the change does, for journals and resumes
    system: str
    id: str
    field: str
    from_value: Any
    to_value: Any
    reason: str
    entity: str
    base_fingerprint: str | None
    target_updated_at: datetime | None  # the target's updated_at at plan time (staleness)
    # The exact native values to write where `to_value` leaves a choice (a rollback's: what
    # the audit recorded before the rolled-back write); None: the mapping chooses.
    native: NativeValues | None = None
    # The exact native values the target must still hold for the change to be sent, beyond
    # `from_value` (a rollback's: what the rolled-back write left there); None: `from_value`.
    native_from: NativeValues | None = None
    # Where a stage (or a status written as a stage) change puts the deal, as apply chooses it
    # (`stage_landing` in sync/writes.py); shown only: None in plans saved before it, and on
    # changes that move no stage.
    landing: Landing | None = None

    @property
    def pipeline_move(self) -> tuple[str, str] | None:
        """(from, to): the pipelines of a change that moves its deal to another one (its
        `native.moves`), a stage change planned under push.move_between_pipelines or the
        rollback of one: `native_from` names the pipeline the deal must still be in, `native`
        the one it goes to. None for every other change (crmsync moves no deal otherwise)."""
        if self.native is None or not self.native.moves or self.native_from is None:
            return None
        before, after = self.native_from.pipeline, self.native.pipeline
        if before is None or after is None or before == after:
            return None
        return before, after


@dataclass(frozen=True, slots=True)
class ConflictItem:
    entity: str
    field: str
    values: tuple[tuple[str, str, Any], ...]  # (system, id, value)
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    version: int
    created_at: datetime
    config_fingerprint: str
    run_id: str
    summary: Mapping[str, Any]
    changes: tuple[Change, ...]
    # The list sections below hold the JSON shapes (plain dicts) the DESIGN.md contract names.
    creates: tuple[Mapping[str, Any], ...]
    conflicts: tuple[ConflictItem, ...]
    unmatched: tuple[Mapping[str, Any], ...]
    ambiguous: tuple[Mapping[str, Any], ...]
    duplicates: tuple[Mapping[str, Any], ...]
    errors: tuple[Mapping[str, Any], ...]
    deleted: tuple[Mapping[str, Any], ...]
    # Entities whose writes wait for their links to be confirmed (`push.confirmed_only`).
    held: tuple[Mapping[str, Any], ...] = ()
    # Values members of no push target keep while their entity's targets take another
    # ({entity, system, id, field, value}): apply records them in the base (sync/diff.py `Kept`).
    kept: tuple[Mapping[str, Any], ...] = ()


def plan_is_empty(plan: Plan) -> bool:
    """Nothing to write: no changes, no creates, no deletes to propagate."""
    return not plan.changes and not plan.creates and not any(d["propagate"] for d in plan.deleted)


# ---- values ---------------------------------------------------------------------------------


def current_value(deal: Deal, field_name: str) -> Any:
    """The deal's value of a plan field, spelled as the diff spells `from` values."""
    if field_name == "amount":
        return deal.value.amount if deal.value else None
    if field_name == "currency":
        return deal.value.currency if deal.value else None
    if field_name == "owner_email":
        return deal.owner_email.strip().lower() if deal.owner_email else None
    return getattr(deal, field_name)


def encode_value(value: Any) -> Any:
    """A canonical value as plain JSON (Money "1500 USD", Decimal and dates as strings)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)  # DealStatus -> its plain value
    if isinstance(value, UnmappedStage):  # a base's mark of a stage (`held` of a plan's error)
        return value.to_json()
    raise TypeError(f"cannot put {type(value).__name__} into a plan")


def show_value(value: Any) -> str:
    """A canonical value in a message: as the plan spells it, quoted; None is "empty"."""
    return "empty" if value is None else repr(encode_value(value))


def decode_value(field: str, value: Any, money: bool = False) -> Any:
    """The typed value of a canonical field; ValueError when the JSON value does not fit."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string or null, got {type(value).__name__}")
    if field == "amount" and money:
        amount, _, currency = value.partition(" ")
        return Money(_decimal(amount), currency)
    if field in ("amount", "probability"):
        return _decimal(value)
    if field == "status":
        return DealStatus(value)
    if field == "close_date":
        return date.fromisoformat(value)
    if field == "currency" and value not in ISO_4217:
        raise ValueError(f"unknown currency {value[:20]!r}")
    return value


def decode_held(field: str, value: Any) -> Any:
    """A value a base's mark holds (or a plan's left-out member, `held`): a canonical value, or
    for the stage the native stage of a member whose map did not cover it (`UnmappedStage`)."""
    if field == "stage" and isinstance(value, dict):
        return UnmappedStage.from_json(value)
    return decode_value(field, value, money=True)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{text[:40]!r} is not a finite number")
    return bounded_decimal(value)


def _change_id(system: str, id: str, field: str, to_value: Any, entity: str) -> str:
    text = json.dumps([system, id, field, encode_value(to_value), entity])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# ---- building -------------------------------------------------------------------------------


def build_plan(
    matched: MatchResult,
    diffed: DiffResult,
    deals_by_ref: Mapping[Ref, Deal],
    *,
    run_id: str,
    created_at: datetime,
    config_fingerprint: str,
    batch_sizes: Mapping[str, int],
    hold: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
) -> Plan:
    """Assemble the plan of one run; `batch_sizes` is writes per API call, per instance.

    `hold`: entity -> its links not confirmed ({"system", "id", "method"}); the entity's
    changes, creates and deletes are not planned but listed in `held` (push.confirmed_only).
    """
    with paused_gc():
        return _build_plan(
            matched, diffed, deals_by_ref, run_id, created_at, config_fingerprint, batch_sizes,
            hold or {},
        )  # fmt: skip


def _build_plan(
    matched: MatchResult,
    diffed: DiffResult,
    deals_by_ref: Mapping[Ref, Deal],
    run_id: str,
    created_at: datetime,
    config_fingerprint: str,
    batch_sizes: Mapping[str, int],
    hold: Mapping[str, Sequence[Mapping[str, str]]],
) -> Plan:
    changes = tuple(
        Change(
            _change_id(c.target.system, c.target.id, c.field, c.to_value, c.entity),
            c.target.system,
            c.target.id,
            c.field,
            c.from_value,
            c.to_value,
            c.reason,
            c.entity,
            c.base_fingerprint,
            c.target_updated_at,
            *_moved(c, deals_by_ref),
        )
        for c in diffed.changes
    )
    creates: tuple[Mapping[str, Any], ...] = tuple(map(plan_create, diffed.creates))
    conflicts = tuple(
        ConflictItem(c.entity, c.field, tuple((r.system, r.id, v) for r, v in c.values), c.reason)
        for c in diffed.conflicts
    )
    unmatched = tuple(
        {"system": r.system, "id": r.id, "name": deals_by_ref[r].name}
        for system in sorted(matched.unmatched)
        for r in matched.unmatched[system]
    )
    ambiguous = tuple(
        {
            "system": a.ref.system,
            "id": a.ref.id,
            "instance": a.instance,
            "candidates": [r.id for r in a.candidates],
            "reason": a.reason,
        }
        for a in matched.ambiguous
    )
    duplicates = tuple(
        {"system": d.instance, "ids": list(d.ids), "reason": d.reason} for d in matched.duplicates
    )
    errors = tuple(_error(e) for e in diffed.errors)
    kept = tuple(
        {
            "entity": k.entity,
            "system": k.ref.system,
            "id": k.ref.id,
            "field": k.field,
            "value": encode_value(k.value),
            # the instances whose change it keeps its value against (see `Kept`)
            **({} if k.changed_in is None else {"changed_in": list(k.changed_in)}),
        }
        for k in diffed.kept
    )
    deleted: tuple[Mapping[str, Any], ...] = tuple(
        {
            "entity": d.entity,
            "deleted": [{"system": r.system, "id": r.id} for r in d.deleted],
            "live": [{"system": r.system, "id": r.id} for r in d.live],
            "propagate": d.propagate,
        }
        for d in diffed.deleted
    )
    changes, creates, deleted, held = _hold(hold, changes, creates, deleted)
    summary = _summary(matched, diffed, changes, creates, conflicts, unmatched, batch_sizes)
    summary.update(ambiguous=len(ambiguous), duplicates=len(duplicates), errors=len(errors))
    summary.update(deleted=len(deleted), held=len(held))
    return Plan(
        PLAN_VERSION,
        created_at,
        config_fingerprint,
        run_id,
        summary,
        tuple(sorted(changes, key=lambda c: (c.system, c.id, c.field, c.entity))),
        creates,
        tuple(sorted(conflicts, key=lambda c: (c.values[0][:2], c.field, c.entity))),
        unmatched,
        ambiguous,
        duplicates,
        errors,
        deleted,
        held,
        kept,
    )


def _moved(
    change: FieldChange, deals: Mapping[Ref, Deal]
) -> tuple[NativeValues, NativeValues] | tuple[()]:
    """A change moving its target to another pipeline (`FieldChange.pipeline`): the pipeline it
    goes to (`native`) and the one it must still be in when written (`native_from`)."""
    if change.pipeline is None:
        return ()
    here = deals[change.target].pipeline
    return NativeValues(pipeline=change.pipeline, moves=True), NativeValues(pipeline=here)


_Sections = tuple[
    tuple[Change, ...],
    tuple[Mapping[str, Any], ...],
    tuple[Mapping[str, Any], ...],
    tuple[Mapping[str, Any], ...],
]


def _hold(
    hold: Mapping[str, Sequence[Mapping[str, str]]],
    changes: tuple[Change, ...],
    creates: tuple[Mapping[str, Any], ...],
    deleted: tuple[Mapping[str, Any], ...],
) -> _Sections:
    """(changes, creates, deleted, held): the writes of the `hold` entities taken out of the
    first three and counted per entity in the last."""
    if not hold:
        return changes, creates, deleted, ()
    writes: dict[str, Counter[str]] = defaultdict(Counter)
    writes_of = [
        *(("changes", c.entity) for c in changes),
        *(("creates", c["entity"]) for c in creates),
        *(("deletes", d["entity"]) for d in deleted if d["propagate"]),
    ]
    for kind, entity in writes_of:
        if entity in hold:
            writes[entity][kind] += 1
    held = tuple(
        {
            "entity": entity,
            "links": [dict(link) for link in hold[entity]],
            **{kind: writes[entity][kind] for kind in ("changes", "creates", "deletes")},
            "reason": _HELD,
        }
        for entity in sorted(writes)
    )
    return (
        tuple(c for c in changes if c.entity not in hold),
        tuple(c for c in creates if c["entity"] not in hold),
        tuple(
            {**d, "propagate": False, "reason": _HELD_DELETE}
            if d["propagate"] and d["entity"] in hold else d
            for d in deleted
        ),
        held,
    )  # fmt: skip


_HELD = (
    "push.confirmed_only: matched by key or fuzzily, not confirmed; check the deals "
    "(`crmsync links show --unconfirmed`), then `crmsync links confirm ENTITY` or "
    "`crmsync links split ENTITY`"
)
_HELD_DELETE = "not propagated: " + _HELD


def plan_create(c: Create) -> dict[str, Any]:
    """A create of the diff as the plan holds it."""
    return {
        "system": c.system,
        "entity": c.entity,
        "source": {"system": c.source.system, "id": c.source.id},
        "values": _create_values(c.values),
        **({"decided": _create_values(c.decided, only=True)} if c.decided else {}),
        **({"target": dict(c.target)} if c.target else {}),
    }


def _create_values(values: Mapping[str, Any], only: bool = False) -> dict[str, Any]:
    """Diff fields as canonical ones (amount and currency apart); `only`: just those given."""
    out = dict(values)
    if only and "amount" not in out:
        return out
    money: Money | None = out.pop("amount", None)
    out["amount"] = money.amount if money else None
    out["currency"] = money.currency if money else None
    return out


def diff_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical values (amount and currency apart, as a plan create holds them) as diff
    fields, the amount a Money: the inverse of `_create_values`."""
    out = dict(values)
    if "amount" in out or "currency" in out:
        amount, currency = out.pop("amount", None), out.pop("currency", None)
        out["amount"] = Money(amount, currency) if amount is not None and currency else None
    return out


def decided_of(create: Mapping[str, Any]) -> dict[str, Any]:
    """A plan create's `decided` values (canonical, as read) as diff fields (amount a Money)."""
    return diff_values(create.get("decided") or {})


def _summary(
    matched: MatchResult,
    diffed: DiffResult,
    changes: tuple[Change, ...],
    creates: tuple[Mapping[str, Any], ...],
    conflicts: tuple[ConflictItem, ...],
    unmatched: tuple[Mapping[str, Any], ...],
    batch_sizes: Mapping[str, int],
) -> dict[str, Any]:
    by_system: dict[str, Counter[str]] = defaultdict(Counter)
    records: dict[str, set[str]] = defaultdict(set)
    for c in changes:
        by_system[c.system][c.field] += 1
        records[c.system].add(c.id)
    created = Counter(c["system"] for c in creates)
    calls = {
        system: math.ceil(len(records.get(system, ())) / max(1, batch_sizes.get(system, 1)))
        + math.ceil(created.get(system, 0) / max(1, batch_sizes.get(system, 1)))
        for system in sorted(set(records) | set(created))
    }
    return {
        "entities": len(matched.entities) - matched.dead,
        "matched": sum(1 for members in matched.entities.values() if len(members) > 1),
        "changes": len(changes),
        "changes_by_system": {s: dict(sorted(by_system[s].items())) for s in sorted(by_system)},
        "records_to_update": {s: len(records[s]) for s in sorted(records)},
        "creates": len(creates),
        "creates_by_system": dict(sorted(created.items())),
        "conflicts": len(conflicts),
        "conflicts_by_field": dict(sorted(Counter(c.field for c in conflicts).items())),
        "mismatches_by_field": dict(diffed.mismatches),
        "unmatched": dict(sorted(Counter(u["system"] for u in unmatched).items())),
        "api_calls": calls,
    }


def _error(error: DealError) -> dict[str, Any]:
    ref = error.ref
    item: dict[str, Any] = {
        "system": ref.system, "id": ref.id, "field": error.field, "reason": error.reason
    }  # fmt: skip
    if error.entity is not None:  # a deal left out of its entity's new value: apply records it
        item["entity"] = error.entity
        item["base_field"] = error.base_field
        item["held"] = encode_value(error.held)
    return item
