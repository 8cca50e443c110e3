"""The inverse of a run: a plan that puts back the before-values the run's writes replaced.

Built from the audit log, so only what was really written is undone. Each inverse change's
`from` is the value the run wrote: apply's precondition then reports a field someone changed
again since (instead of overwriting it), exactly as for any plan. Each inverse change also
names the native values the audit recorded before the write (sync/audit_values.py), so a deal
goes back to the very native stage it left, not just to a native stage of the same funnel
stage; and, where the audit recorded the native stage the write left the deal in, only while
the deal is still in exactly that one (`native_from`): a person who moved it since to another
native stage of the same funnel stage keeps that move. A write that moved the deal to another
pipeline (push.move_between_pipelines) is undone by moving it back (`NativeValues.moves`).
Records the run created are deleted, each only if it still holds the values it was created with
(see apply_deletes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from sync.apply_deletes import Delete, delete_change_id
from sync.audit_values import moves_to, restorable, stage_labels
from sync.plan import PLAN_VERSION, Change, Plan
from sync.store import Store
from sync.store_records import AuditEntry

__all__ = [
    "BY_FUNNEL_STAGE",
    "CHECKED_BY_FUNNEL_STAGE",
    "Kept",
    "Rollback",
    "RollbackError",
    "rollback_plan",
]

# How a stage change whose audit predates native stages says that it goes back by funnel stage.
BY_FUNNEL_STAGE = (
    "by funnel stage only: the run's audit has no native stage, so the deal goes to the "
    "native stage that funnel stage is written as (stage_write, else the first mapped to it)"
)
# How a stage change whose audit predates native after-values says what its check misses.
CHECKED_BY_FUNNEL_STAGE = (
    "checked by funnel stage only: the run's audit has no native stage it left, so a move "
    "since to another native stage of the same funnel stage is not noticed"
)


class RollbackError(ValueError):
    exit_code = 2


@dataclass(frozen=True, slots=True)
class Kept:
    """A record the run created that the rollback leaves in place, and why."""

    system: str
    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rollback:
    plan: Plan  # its run_id is `rollback-<run id>`: re-running a rollback resumes it
    deletes: tuple[Delete, ...]  # copies the run created, deleted if unchanged since
    kept: tuple[Kept, ...]
    # change id -> (pipeline label, native stage label) of where a stage change puts the deal
    # back, as the CRM showed them when the run wrote (runs audited before labels: none)
    labels: Mapping[str, tuple[str, str]] = dataclass_field(default_factory=dict)


def rollback_plan(store: Store, run_id: str, *, fingerprint: str, now: datetime) -> Rollback:
    entries = store.audit.entries(run_id=run_id)
    if not entries and store.runs.get(run_id) is None:
        raise RollbackError(f"unknown run {run_id!r} (see `crmsync runs`)")
    links = store.links()
    latest: dict[tuple[str, str, str], AuditEntry] = {}
    first: dict[tuple[str, str, str], AuditEntry] = {}
    moved: dict[tuple[str, str, str], set[str]] = {}  # the pipelines the run moved a deal to
    created = []
    for entry in entries:
        if entry.field is None or entry.deal_id is None:
            created.append(entry)
            continue
        key = (entry.instance, entry.deal_id, entry.field)
        first.setdefault(key, entry)
        latest[key] = entry  # a field written twice in one run goes back to its first before
        if (pipeline := moves_to(entry.before)) is not None:
            moved.setdefault(key, set()).add(pipeline)
    deletes, kept = _undo_creates(run_id, created, links)
    changes = []
    labels: dict[str, tuple[str, str]] = {}
    for key, last in sorted(latest.items()):
        instance, deal_id, field = key
        change_id = _change_id(run_id, instance, deal_id, field)
        if (shown := stage_labels(first[key].before)) is not None:
            labels[change_id] = shown
        before, native = restorable(field, first[key].before)
        written, left = restorable(field, last.after)
        if native is not None and left is not None and left.pipeline in moved.get(key, ()):
            native = replace(native, moves=True)  # the run moved the deal: it goes back
        reason = f"rollback of run {run_id}"
        if field == "stage" and native is None:
            reason += f" ({BY_FUNNEL_STAGE})"
        if field == "stage" and (left is None or left.native_stage is None):
            reason += f" ({CHECKED_BY_FUNNEL_STAGE})"
        changes.append(
            Change(
                change_id,
                instance,
                deal_id,
                field,
                written,
                before,
                reason,
                links.get((instance, deal_id), ""),
                None,
                None,
                native,
                left if field == "stage" else None,
            )
        )
    plan = Plan(
        PLAN_VERSION, now, fingerprint, f"rollback-{run_id}",
        {"rollback_of": run_id, "changes": len(changes), "deletes": len(deletes),
         "created_not_undone": len(kept)},
        tuple(changes), (), (), (), (), (), (), (),
    )  # fmt: skip
    return Rollback(plan, deletes, kept, labels)


def _undo_creates(
    run_id: str, entries: list[AuditEntry], links: dict[tuple[str, str], str]
) -> tuple[tuple[Delete, ...], tuple[Kept, ...]]:
    deletes: dict[tuple[str, str], Delete] = {}
    kept: dict[tuple[str, str], Kept] = {}
    for entry in entries:
        if entry.deal_id is None:
            continue
        key = (entry.instance, entry.deal_id)
        after = entry.after if isinstance(entry.after, dict) else {}
        values = after.get("values")
        if after.get("deleted"):
            why = "deleted by this run; restore it from the CRM's recycle bin if it is wanted"
            kept[key] = Kept(*key, why)
        elif not isinstance(values, dict):
            why = "created before crmsync recorded what it created records with; check it by hand"
            kept[key] = Kept(*key, why)
        else:
            entity = links.get(key) or after.get("link_id")
            deletes[key] = Delete(
                delete_change_id(run_id, *key), *key, entity, values,
                f"rollback of run {run_id}: delete the copy it created",
            )  # fmt: skip
    return tuple(deletes[k] for k in sorted(deletes)), tuple(kept[k] for k in sorted(kept))


def _change_id(run_id: str, instance: str, deal_id: str, field: str) -> str:
    text = json.dumps(["rollback", run_id, instance, deal_id, field])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def describe(value: Any) -> str:
    return "empty" if value is None else str(value)
