"""Writes that earlier plans left in doubt, and that no one will apply again.

An apply journals each change before sending it and marks it after. A killed process, or a call
that fails part-way (Pipedrive writes one call per deal), leaves changes *in doubt*: sent, and
maybe landed. Applying the same plan again settles them (sync/apply.py), but a nightly job never
does that: it plans anew. So each apply first settles what other plans left in doubt in every
instance it writes to:
- a create made its copy if the CRM holds one with its link marker;
- a field write landed if the record, read again, holds the written value (or someone set the
  same value since: either way the record holds what that run wrote).
What landed is audited under the run that made it, so `rollback` of that run undoes it too; a
created copy is linked as well. The rest is marked skipped, and the new plan decides afresh.
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
from sync.apply_creates import found_copy
from sync.audit_values import audited_after
from sync.connect import read_now
from sync.diff import FunnelFacts
from sync.plan import current_value, decode_value
from sync.store import Store
from sync.store_records import AuditEntry, JournalOp, JournalRecord, JournalState, Link

__all__ = ["holds", "same_value", "settle_in_doubt"]

_BATCH = 100
# run id -> (plan change id, state, result) of its journal rows
_Marks = dict[str, list[tuple[str, JournalState, dict[str, Any]]]]


def same_value(a: Any, b: Any) -> bool:
    return a == b and (a is None) == (b is None)


def holds(deal: Deal, field: str, value: Any, facts: Mapping[str, FunnelFacts]) -> bool:
    """Does the deal hold `value` in plan field `field` now? A closed deal's stage is the
    funnel's won/lost stage, whatever its native stage."""
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
) -> int:
    """Settle `records` (one instance's, from `Journal.in_doubt_elsewhere`); returns how many
    had landed. A read that fails leaves the rest in doubt for the next apply."""
    creates = [r for r in records if r.entry.op is JournalOp.CREATE and _marker(r) is not None]
    writes = [r for r in records if r.entry.op is not JournalOp.CREATE]
    try:
        return _settle_creates(store, connector, ctx, creates, run_id) + _settle_writes(
            store, connector, ctx, writes, run_id, facts
        )
    except ConnectorError:
        return 0


def _settle_creates(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    records: Sequence[JournalRecord],
    run_id: str,
) -> int:
    """A create in doubt made a copy if the CRM holds one carrying its marker."""
    landed = 0
    for chunk in chunks(records, _BATCH):
        found = connector.find_created([str(_marker(r)) for r in chunk])
        links, audit = [], []
        marks: _Marks = defaultdict(list)
        for record in chunk:
            new_id = found.get(str(_marker(record)))
            if new_id is not None:
                link, entry = found_copy(store, ctx, record.run_id, record.entry.after, new_id)
                links.append(link)
                audit.append(entry)
                outcome = (JournalState.DONE, {"id": new_id, "found": True, "settled_by": run_id})
            else:
                outcome = (JournalState.SKIPPED, {"not_created": True, "settled_by": run_id})
            marks[record.run_id].append((record.entry.plan_change_id, *outcome))
        _save(store, marks, audit, links)
        landed += len(audit)
    return landed


def _settle_writes(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    records: Sequence[JournalRecord],
    run_id: str,
    facts: Mapping[str, FunnelFacts],
) -> int:
    landed = 0
    for chunk in chunks(records, _BATCH):
        deals, _ = read_now(connector, ctx, sorted({str(r.entry.deal_id) for r in chunk}))
        audit: list[AuditEntry] = []
        marks: _Marks = defaultdict(list)
        for record in chunk:
            entry, wrote = record.entry, record.run_id
            deal = deals.get(str(entry.deal_id))
            if deal is not None and _wrote(deal, record, facts):
                why = f"in doubt when run {wrote} stopped; found written by run {run_id}"
                audit.append(
                    AuditEntry(
                        run_id=wrote,
                        instance=entry.instance,
                        deal_id=entry.deal_id,
                        field=entry.field,
                        before=entry.before,
                        after=audited_after(str(entry.field), entry.after, deal),
                        reason=why,
                    )
                )
                state, result = JournalState.DONE, {"already": True, "settled_by": run_id}
            else:
                state, result = JournalState.SKIPPED, {"not_written": True, "settled_by": run_id}
            marks[wrote].append((entry.plan_change_id, state, result))
        _save(store, marks, audit)
        landed += len(audit)
    return landed


def _save(store: Store, marks: _Marks, audit: list[AuditEntry], links: Sequence[Link] = ()) -> None:
    if links:
        store.save_links(links)
    store.audit.append(audit)
    for wrote, outcomes in marks.items():
        store.journal.mark(wrote, outcomes)


def _wrote(deal: Deal, record: JournalRecord, facts: Mapping[str, FunnelFacts]) -> bool:
    field = record.entry.field
    if field is None:
        return False
    try:
        value = decode_value(field, record.entry.after)
    except ValueError:  # a journal written by another version: leave the field to the new plan
        return False
    return holds(deal, field, value, facts)


def _marker(record: JournalRecord) -> str | None:
    """The link marker a journaled create carried (None: not a create as this version
    journals them, left to the new plan)."""
    after = record.entry.after
    if isinstance(after, dict) and after.get("link_id") and after.get("source"):
        return str(after["link_id"])
    return None
