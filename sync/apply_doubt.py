"""Writes that earlier plans left in doubt, and that no one will apply again.

An apply journals each change before sending it and marks it after. A killed process, or a call
that fails part-way (Pipedrive writes one call per deal), leaves changes *in doubt*: sent, and
maybe landed. Applying the same plan again settles them (sync/apply.py), but a nightly job never
does that: it plans anew. So each apply first settles what other plans left in doubt in every
instance it is connected to (a reconcile: all of them; `apply` and `rollback`: their targets):
- a create made its copy if the CRM holds one with its link marker;
- a field write landed if the record, read again, holds the written value (or someone set the
  same value since: either way the record holds what that run wrote);
- a delete (a rollback's, a propagated one) landed if the CRM no longer holds the deal, or
  holds it deleted; the store then forgets a rollback's copy, and keeps a propagated delete's
  deal in its entity as deleted, as the delete itself would have (sync/apply_deletes.py).
What landed is audited under the run that made it, so `rollback` of that run undoes it too (or,
for a delete, lists it); a created copy is linked as well. The rest is marked skipped, and the
new plan decides afresh. Each instance, run and kind settled is reported (`Settled`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.base import Connector
from connectors.batches import chunks
from connectors.errors import ConnectorError
from mapping import MappingContext
from mapping.model import Deal
from mapping.owners import canonical_owner
from sync.apply_creates import found_copy
from sync.apply_deletes import forget, keep_deleted
from sync.apply_failures import Failures
from sync.apply_report import Settled
from sync.audit_values import audited_after
from sync.connect import read_now
from sync.diff import FunnelFacts
from sync.plan import current_value, decode_value
from sync.store import Store
from sync.store_records import (
    ROLLBACK_PLAN_PREFIX,
    AuditEntry,
    JournalOp,
    JournalRecord,
    JournalState,
)
from sync.unmapped_stage import UnmappedStage

__all__ = ["holds", "same_value", "settle_in_doubt"]

_BATCH = 100
# run id -> (plan change id, state, result) of its journal rows
_Marks = dict[str, list[tuple[str, JournalState, dict[str, Any]]]]
_KINDS = {JournalOp.CREATE: "create", JournalOp.DELETE: "delete"}


def same_value(a: Any, b: Any) -> bool:
    return a == b and (a is None) == (b is None)


def holds(deal: Deal, field: str, value: Any, facts: Mapping[str, FunnelFacts]) -> bool:
    """Does the deal hold `value` in plan field `field` now? A closed deal's stage is the
    funnel's won/lost stage, whatever its native stage. An unmapped native stage a left-out
    member held when the plan was made (`UnmappedStage`) is held while the deal stays in it."""
    if isinstance(value, UnmappedStage):
        return value.held_by(deal)
    if same_value(current_value(deal, field), value):
        return True
    if field != "stage":
        return False
    fact = facts.get(deal.funnel)
    return (fact.effective_stage(deal) if fact else deal.stage) == value


def settle_in_doubt(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    records: Sequence[JournalRecord],
    run_id: str,
    facts: Mapping[str, FunnelFacts],
    failures: Failures,
) -> list[Settled]:
    """Settle `records` (one instance's, from `Journal.in_doubt_elsewhere`); returns what was
    settled, per run and kind. A read that fails leaves the rest in doubt for the next apply.
    `failures`: the instance's dead letters (a copy found made is no longer failing)."""
    creates = [r for r in records if r.entry.op is JournalOp.CREATE and _marker(r) is not None]
    deletes = [r for r in records if r.entry.op is JournalOp.DELETE]
    writes = [r for r in records if r.entry.op not in (JournalOp.CREATE, JournalOp.DELETE)]
    settled: _Marks = defaultdict(list)
    try:
        _settle_creates(store, connector, ctx, creates, run_id, settled, failures)
        _settle_writes(store, connector, ctx, writes, run_id, facts, settled, failures)
        _settle_deletes(store, connector, ctx, deletes, run_id, settled)
    except ConnectorError:
        pass  # what was read before is settled and reported; the rest stays in doubt
    ops = {(r.run_id, r.entry.plan_change_id): r.entry.op for r in records}
    counts: dict[tuple[str, str], list[int]] = {}
    for wrote, outcomes in sorted(settled.items()):
        for change_id, state, _ in outcomes:
            kind = _KINDS.get(ops[wrote, change_id], "write")
            counts.setdefault((wrote, kind), [0, 0])[state is not JournalState.DONE] += 1
    return [
        Settled(ctx.instance, wrote, kind, done, not_done)
        for (wrote, kind), (done, not_done) in counts.items()
    ]


def _settle_creates(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    records: Sequence[JournalRecord],
    run_id: str,
    settled: _Marks,
    failures: Failures,
) -> None:
    """A create in doubt made a copy if the CRM holds one carrying its marker (then a failure
    of it, refusals before, is cleared: it went through). It is audited as a write in doubt
    that landed is (`JournalRecord.landed`)."""
    for chunk in chunks(records, _BATCH):
        found = connector.find_created([str(_marker(r)) for r in chunk])
        links, audit = [], []
        marks: _Marks = defaultdict(list)
        for record in chunk:
            new_id = found.get(str(_marker(record)))
            if new_id is not None:
                link, entry = found_copy(store, ctx, record, new_id)
                links.append(link)
                audit.append(entry)
                outcome = (JournalState.DONE, {"id": new_id, "found": True, "settled_by": run_id})
            else:
                outcome = (JournalState.SKIPPED, {"not_created": True, "settled_by": run_id})
            marks[record.run_id].append((record.entry.plan_change_id, *outcome))
        store.journal.mark_runs(marks, audit=audit, links=links)
        for link in links:
            failures.clear(link.entity_id)
        _merge(settled, marks)


def _settle_writes(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    records: Sequence[JournalRecord],
    run_id: str,
    facts: Mapping[str, FunnelFacts],
    settled: _Marks,
    failures: Failures,
) -> None:
    """A write in doubt landed if the deal holds its value now: it went through, so a failure
    of it (refused before) is no longer one. It is audited under its run, at the time that run
    journaled it (`JournalRecord.landed` says why)."""
    for chunk in chunks(records, _BATCH):
        deals, _ = read_now(connector, ctx, sorted({str(r.entry.deal_id) for r in chunk}))
        audit: list[AuditEntry] = []
        marks: _Marks = defaultdict(list)
        landed: list[tuple[str, str | None]] = []
        for record in chunk:
            entry, wrote = record.entry, record.run_id
            deal = deals.get(str(entry.deal_id))
            if deal is not None and _wrote(deal, record, facts, ctx):
                why = f"in doubt when run {wrote} stopped; found written by run {run_id}"
                after = audited_after(str(entry.field), entry.after, deal)
                audit.append(
                    record.landed(
                        AuditEntry(wrote, entry.instance, entry.deal_id, entry.field,
                                   entry.before, after, why)
                    )
                )  # fmt: skip
                state, result = JournalState.DONE, {"already": True, "settled_by": run_id}
                landed.append((str(entry.deal_id), entry.field))
            else:
                state, result = JournalState.SKIPPED, {"not_written": True, "settled_by": run_id}
            marks[wrote].append((entry.plan_change_id, state, result))
        store.journal.mark_runs(marks, audit=audit)
        for deal_id, name in landed:  # as a copy found made is, once the journal says so
            failures.clear(deal_id, name)
        _merge(settled, marks)


def _settle_deletes(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    records: Sequence[JournalRecord],
    run_id: str,
    settled: _Marks,
) -> None:
    """A delete in doubt landed if the CRM no longer holds the deal, or holds it deleted (in its
    recycle bin, archive or deleted list). A deal that no longer maps is left in doubt."""
    for chunk in chunks(records, _BATCH):
        deals, unreadable = read_now(connector, ctx, sorted({str(r.entry.deal_id) for r in chunk}))
        audit: list[AuditEntry] = []
        marks: _Marks = defaultdict(list)
        # deal id -> the run that sent its delete, and whether it was a rollback's copy (else
        # a propagated delete)
        gone: dict[str, tuple[str, bool]] = {}
        for record in chunk:
            entry, wrote, deal_id = record.entry, record.run_id, str(record.entry.deal_id)
            if deal_id in unreadable:
                continue
            deal = deals.get(deal_id)
            if deal is None or deal.extra.get("deleted"):
                if deal_id not in gone:  # once, should two plans have sent the same delete
                    why = f"in doubt when run {wrote} stopped; found deleted by run {run_id}"
                    audit.append(
                        AuditEntry(wrote, entry.instance, deal_id, None, entry.before,
                                   {"deleted": True}, why)
                    )  # fmt: skip
                gone.setdefault(deal_id, (wrote, record.plan_id.startswith(ROLLBACK_PLAN_PREFIX)))
                state, result = JournalState.DONE, {"already": True, "settled_by": run_id}
            else:
                state, result = JournalState.SKIPPED, {"not_deleted": True, "settled_by": run_id}
            marks[wrote].append((entry.plan_change_id, state, result))
        entities = store.entities_of(ctx.instance, list(gone))
        copies = [i for i, (_, copy) in gone.items() if copy]
        forget(store, ctx.instance, copies, {entities[i] for i in copies if i in entities})
        for run in sorted({wrote for wrote, copy in gone.values() if not copy}):
            ids = [i for i, (w, copy) in gone.items() if w == run and not copy]
            keep_deleted(store, ctx.instance, ids, {entities[i] for i in ids if i in entities}, run)
        store.journal.mark_runs(marks, audit=audit)
        _merge(settled, marks)


def _merge(settled: _Marks, marks: _Marks) -> None:
    for wrote, outcomes in marks.items():
        settled[wrote] += outcomes


def _wrote(
    deal: Deal, record: JournalRecord, facts: Mapping[str, FunnelFacts], ctx: MappingContext
) -> bool:
    """Does `deal` (mapped now, through `ctx`) hold the value `record` journaled? An owner
    journaled before its email became an alias is read through the aliases, as `deal`'s is."""
    field = record.entry.field
    if field is None:
        return False
    try:
        value = decode_value(field, record.entry.after)
    except ValueError:  # a journal written by another version: leave the field to the new plan
        return False
    return holds(deal, field, canonical_owner(field, value, ctx.owner_aliases), facts)


def _marker(record: JournalRecord) -> str | None:
    """The link marker a journaled create carried (None: not a create as this version
    journals them, left to the new plan)."""
    after = record.entry.after
    if isinstance(after, dict) and after.get("link_id") and after.get("source"):
        return str(after["link_id"])
    return None
