"""What a three-way diff returns (`sync.diff.diff`): changes, conflicts, errors, deletions,
creates and values kept, each a frozen record."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mapping.model import Ref

__all__ = [
    "CanExpress",
    "Conflict",
    "Create",
    "DealError",
    "Deletion",
    "DiffResult",
    "FieldChange",
    "Kept",
    "Mismatch",
    "MoveTo",
    "PipelineMove",
    "Unwritten",
]

# (target ref, canonical field, value) -> None when the target can hold it, else the reason.
CanExpress = Callable[[Ref, str, Any], "str | None"]


@dataclass(frozen=True, slots=True)
class PipelineMove:
    """Where a member whose pipeline's funnel lacks a stage moves to take it
    (`push.move_between_pipelines`): `pipeline`, and `reason` saying so; or, `pipeline` None,
    `reason` why it cannot."""

    pipeline: str | None
    reason: str


# (target ref, stage key, the funnel of a member holding that stage, or None) -> the move.
MoveTo = Callable[[Ref, str, "str | None"], PipelineMove]


@dataclass(frozen=True, slots=True)
class FieldChange:
    entity: str
    target: Ref
    field: str  # a canonical key: amount and currency are separate here
    from_value: Any
    to_value: Any
    reason: str
    target_updated_at: datetime
    base_fingerprint: str | None  # None on a first sync (no base yet)
    # A stage change that moves the target to this pipeline, of the stage's funnel (its own
    # pipeline's funnel lacks the stage; push.move_between_pipelines); None: it stays there.
    pipeline: str | None = None


@dataclass(frozen=True, slots=True)
class Conflict:
    entity: str
    field: str
    values: tuple[tuple[Ref, Any], ...]
    reason: str


@dataclass(frozen=True, slots=True)
class DealError:
    ref: Ref
    field: str
    reason: str
    # Set when the deal keeps `held` while its entity's other members take a new value of the
    # diff field `base_field`: the base records it (see `sync.base_marks.left_out`), so later
    # runs know that value is no change of the deal's own.
    entity: str | None = None
    base_field: str | None = None
    held: Any = None


@dataclass(frozen=True, slots=True)
class Kept:
    """A member of no push target (`push.targets` leaves its instance out) keeping its own
    value of diff field `field` while the entity's targets take another: the base records it
    (see `sync.base_marks.left_out`), so later runs know that value is no change of the deal's
    own."""

    entity: str
    ref: Ref
    field: str
    value: Any
    # The instances whose change the targets take (empty: the copies first agree on it), so a
    # later run can say why the member was left out; None where unknown (a plan made before).
    changed_in: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Unwritten:
    """A copy holding `value` where its entity takes `to` (None where no value is decided; for
    a copy of no push target, the value all the others hold, None where they disagree too),
    and getting no change: `reason` says why (no push target, a `never` policy, a value its
    CRM cannot hold, ...)."""

    ref: Ref
    value: Any
    to: Any
    reason: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The copies `refs` of an entity hold different values of `field`, whether or not the plan
    writes the difference. `field` is named as the plan names it: the amount and the currency
    apart, except where the amount is in conflict (the conflict names the amount alone).
    `unwritten`: the copies that differ from the value decided (all of them, where none is)
    and that no change is planned into; a conflict's copies are in the conflict instead."""

    entity: str
    field: str
    refs: tuple[Ref, ...]
    unwritten: tuple[Unwritten, ...] = ()


@dataclass(frozen=True, slots=True)
class Deletion:
    entity: str
    deleted: tuple[Ref, ...]
    live: tuple[Ref, ...]
    propagate: bool  # True only when the config asks deletes to spread


@dataclass(frozen=True, slots=True)
class Create:
    entity: str
    system: str
    source: Ref
    values: Mapping[str, Any]  # comparable values of the copy, by DIFF_FIELDS
    # The values the entity's policies decided where its members disagree, where they differ
    # from the source's: the copy takes them instead (see `copy_of` in sync/writes.py).
    decided: Mapping[str, Any] = field(default_factory=dict)
    # Where the copy lands in its CRM, for the people reviewing the plan (see `landing` in
    # sync/writes.py); empty where the plan had no mapping context of the target.
    target: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DiffResult:
    changes: tuple[FieldChange, ...]
    conflicts: tuple[Conflict, ...]
    errors: tuple[DealError, ...]  # unexpressible values and unmapped stages
    deleted: tuple[Deletion, ...]
    creates: tuple[Create, ...]
    # Per entity, the fields whose agreed value differs from the stored base: store these.
    agreed: Mapping[str, Mapping[str, Any]]
    mismatches: Mapping[str, int] = field(default_factory=dict)  # entities differing, per field
    kept: tuple[Kept, ...] = ()  # values members of no push target keep (see `Kept`)
    # Every field on which an entity's copies disagree, written or not (see `Mismatch`).
    mismatched: tuple[Mismatch, ...] = ()
