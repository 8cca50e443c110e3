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

A partial rollback (`entities`) is the whole one's changes and deletes of those entities alone,
with the same change ids under the same journal plan: the whole rollback run later finds them
done, and skips the entities a partial one finished (recorded on the run, `ROLLED_BACK`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from mapping.owners import canonical_owner
from sync.apply_deletes import Delete, delete_change_id
from sync.audit_values import moves_to, restorable, stage_labels
from sync.plan import PLAN_VERSION, Change, Plan
from sync.store import Store
from sync.store_records import AuditEntry, rollback_plan_id
from sync.stored_owners import values_owners

__all__ = [
    "BY_FUNNEL_STAGE",
    "CHECKED_BY_FUNNEL_STAGE",
    "ROLLED_BACK",
    "Kept",
    "Rollback",
    "RollbackError",
    "RolledBack",
    "finished",
    "rollback_plan",
    "rolled_back",
    "rolled_back_json",
]

# The key, in a run's counts, of what its rollbacks finished (`RolledBack`).
ROLLED_BACK = "rolled_back"

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
    entity: str = ""  # "" when the copy is linked to none (and its audit names none)


@dataclass(frozen=True, slots=True)
class RolledBack:
    """What the rollbacks of a run finished, as its run record keeps it: every write of
    `entities` undone by a partial rollback (`--entity`), or all of its writes (`whole`)."""

    entities: frozenset[str] = frozenset()
    whole: bool = False


def rolled_back_json(done: RolledBack) -> dict[str, Any]:
    """`done` as the rolled-back run's record keeps it under `ROLLED_BACK`."""
    return {"entities": sorted(done.entities), "whole": done.whole}


def rolled_back(counts: Mapping[str, Any]) -> RolledBack:
    """A run's `RolledBack`, from its run record's counts (a run never rolled back: none)."""
    recorded = counts.get(ROLLED_BACK)
    if not isinstance(recorded, dict):
        return RolledBack()
    return RolledBack(frozenset(recorded.get("entities") or ()), bool(recorded.get("whole")))


@dataclass(frozen=True, slots=True)
class Rollback:
    plan: Plan  # its run_id is `rollback-<run id>`: re-running a rollback resumes it
    deletes: tuple[Delete, ...]  # copies the run created, deleted if unchanged since
    kept: tuple[Kept, ...]
    # change id -> (pipeline label, native stage label) of where a stage change puts the deal
    # back, as the CRM showed them when the run wrote (runs audited before labels: none)
    labels: Mapping[str, tuple[str, str]] = dataclass_field(default_factory=dict)
    entities: tuple[str, ...] = ()  # those a partial rollback covers; (): the whole run
    # entities an earlier rollback of the run finished (`_already`): left out, not undone twice
    already: tuple[str, ...] = ()

    def entity_ids(self) -> dict[str, str]:
        """Change or delete id -> the entity it belongs to ("": a deal linked to none)."""
        return {c.change_id: c.entity for c in self.plan.changes} | {
            d.change_id: d.entity or "" for d in self.deletes
        }


def rollback_plan(
    store: Store,
    run_id: str,
    *,
    fingerprint: str,
    now: datetime,
    aliases: Mapping[str, str],
    entities: Collection[str] = (),
) -> Rollback:
    """The inverse of run `run_id`; of its writes to `entities` alone when some are named. Its
    audited owner emails are read through `aliases` (the config's `owners.aliases`,
    sync/stored_owners.py): a write of `ana@acme.com` made before that email became an alias of
    `ana@acme-eu.com` is checked and undone as one of `ana@acme-eu.com`, the email the deal's
    owner reads as now."""
    entries = store.audit.entries(run_id=run_id)
    run = store.runs.get(run_id)
    if not entries and run is None:
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
    deletes, kept = _undo_creates(run_id, created, links, aliases)
    changes: list[Change] = []
    labels: dict[str, tuple[str, str]] = {}
    for key, last in sorted(latest.items()):
        instance, deal_id, field = key
        change_id = _change_id(run_id, instance, deal_id, field)
        if (shown := stage_labels(first[key].before)) is not None:
            labels[change_id] = shown
        before, native = restorable(field, first[key].before)
        written, left = restorable(field, last.after)
        before = canonical_owner(field, before, aliases)
        written = canonical_owner(field, written, aliases)
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
    written = {c.entity for c in changes} | {d.entity or "" for d in deletes}
    written |= {k.entity for k in kept}
    chosen = _chosen(run_id, entities, written - {""}, set(links.values()))
    already = _already(chosen, rolled_back(run.counts if run is not None else {}), entities)
    wanted = chosen - already
    changes = [c for c in changes if c.entity in wanted]
    deletes = tuple(d for d in deletes if (d.entity or "") in wanted)
    # The copies the rollback cannot delete are listed whatever earlier rollbacks finished:
    # the user restores them by hand, and no rollback counts them as undone (`finished`).
    kept = tuple(k for k in kept if k.entity in chosen)
    summary: dict[str, Any] = {
        "rollback_of": run_id,
        "changes": len(changes),
        "deletes": len(deletes),
        "created_not_undone": len(kept),
    }
    plan = Plan(
        PLAN_VERSION, now, fingerprint, rollback_plan_id(run_id), summary,
        tuple(changes), (), (), (), (), (), (), (),
    )  # fmt: skip
    listed = {c.change_id for c in changes}
    labels = {change_id: names for change_id, names in labels.items() if change_id in listed}
    return Rollback(plan, deletes, kept, labels, tuple(sorted(entities)), tuple(sorted(already)))


def finished(rollback: Rollback, done: Collection[str], earlier: RolledBack) -> RolledBack:
    """What the run's record keeps once `rollback` was applied (`done`: the change and delete ids
    its journal holds as done), over what `earlier` rollbacks finished: a partial one adds each
    of its entities whose changes and deletes are all done (one drifted or refused is checked
    again by the next rollback); a whole one all done marks the run rolled back whole. Never an
    entity with a `Kept` record (a deal the run deleted, a copy it cannot check), nor the whole
    run while it has one: the rollback did not undo those, and would stop listing them."""
    by_entity: dict[str, set[str]] = {}
    for item, entity in rollback.entity_ids().items():
        by_entity.setdefault(entity, set()).add(item)
    if not rollback.entities:
        whole = not rollback.kept and all(items <= set(done) for items in by_entity.values())
        return replace(earlier, whole=earlier.whole or whole)
    held = {k.entity for k in rollback.kept}
    complete = {
        e for e in rollback.entities if e not in held and by_entity.get(e, set()) <= set(done)
    }
    return replace(earlier, entities=earlier.entities | complete)


def _already(chosen: set[str], done: RolledBack, entities: Collection[str]) -> set[str]:
    """The `chosen` entities rolled back already, which this rollback leaves out: those a
    partial rollback finished; for a partial one, all once a whole rollback finished (a whole
    one run again resumes itself instead, its done rows marked)."""
    return (chosen if done.whole and entities else chosen & done.entities) - {""}


def _chosen(run_id: str, entities: Collection[str], written: set[str], known: set[str]) -> set[str]:
    """The entities a rollback covers: `entities`, each of which the run must have written to,
    or (none named) every one it wrote to, "" (deals linked to none) included."""
    if not entities:
        return written | {""}
    for entity in sorted(entities):
        if entity in written:
            continue
        if entity not in known:
            raise RollbackError(
                f"unknown entity {entity!r}: no deal is linked to it (see `crmsync links show`); "
                f"nothing of run {run_id} to roll back"
            )
        raise RollbackError(
            f"run {run_id} wrote nothing to entity {entity!r}: nothing to roll back of it "
            f"(`crmsync rollback {run_id}` lists the entities it wrote to)"
        )
    return set(entities)


def _undo_creates(
    run_id: str,
    entries: list[AuditEntry],
    links: dict[tuple[str, str], str],
    aliases: Mapping[str, str],
) -> tuple[tuple[Delete, ...], tuple[Kept, ...]]:
    deletes: dict[tuple[str, str], Delete] = {}
    kept: dict[tuple[str, str], Kept] = {}
    for entry in entries:
        if entry.deal_id is None:
            continue
        key = (entry.instance, entry.deal_id)
        after = entry.after if isinstance(entry.after, dict) else {}
        values = after.get("values")
        # the entity the copy is in now, else the one it was created into (a deleted copy)
        entity = links.get(key) or after.get("link_id")
        if after.get("deleted"):
            why = "deleted by this run; restore it from the CRM's recycle bin if it is wanted"
            kept[key] = Kept(*key, why, entity or "")
        elif not isinstance(values, dict):
            why = "created before crmsync recorded what it created records with; check it by hand"
            kept[key] = Kept(*key, why, entity or "")
        else:
            deletes[key] = Delete(
                delete_change_id(run_id, *key), *key, entity, values_owners(values, aliases),
                f"rollback of run {run_id}: delete the copy it created",
            )  # fmt: skip
    return tuple(deletes[k] for k in sorted(deletes)), tuple(kept[k] for k in sorted(kept))


def _change_id(run_id: str, instance: str, deal_id: str, field: str) -> str:
    text = json.dumps(["rollback", run_id, instance, deal_id, field])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def describe(value: Any) -> str:
    return "empty" if value is None else str(value)
