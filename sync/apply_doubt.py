"""Field writes that earlier plans left in doubt, and that no one will apply again.

An apply journals each change before sending it and marks it after. A killed process, or a call
that fails part-way (Pipedrive writes one call per deal), leaves changes *in doubt*: sent, and
maybe landed. Applying the same plan again settles them (sync/apply.py), but a nightly job never
does that: it plans anew. So each apply first settles, in every instance it writes to, the field
writes other plans left in doubt. It re-reads the records. A record that holds the written value
counts as written (the write landed, or someone set the same value since: either way the record
holds what that run wrote). Such a write is audited under the run that made it, so `rollback` of
that run undoes it too. A write the record does not hold is marked skipped, and the new plan
decides that field afresh.
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
from sync.connect import read_now
from sync.diff import FunnelFacts
from sync.plan import current_value, decode_value
from sync.store import Store
from sync.store_records import AuditEntry, JournalRecord, JournalState

__all__ = ["holds", "same_value", "settle_in_doubt"]

_BATCH = 100


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
    landed = 0
    for chunk in chunks(records, _BATCH):
        try:
            deals, _ = read_now(connector, ctx, sorted({str(r.entry.deal_id) for r in chunk}))
        except ConnectorError:
            return landed
        audit: list[AuditEntry] = []
        marks: dict[str, list[tuple[str, JournalState, dict[str, Any]]]] = defaultdict(list)
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
                        after=entry.after,
                        reason=why,
                    )
                )
                state, result = JournalState.DONE, {"already": True, "settled_by": run_id}
            else:
                state, result = JournalState.SKIPPED, {"not_written": True, "settled_by": run_id}
            marks[wrote].append((entry.plan_change_id, state, result))
        for wrote, outcomes in marks.items():
            store.journal.mark(wrote, outcomes)
        store.audit.append(audit)
        landed += len(audit)
    return landed


def _wrote(deal: Deal, record: JournalRecord, facts: Mapping[str, FunnelFacts]) -> bool:
    field = record.entry.field
    if field is None:
        return False
    try:
        value = decode_value(field, record.entry.after)
    except ValueError:  # a journal written by another version: leave the field to the new plan
        return False
    return holds(deal, field, value, facts)
