"""Delete the copies a rolled-back run created, when nobody has changed them since.

A copy is deleted only if it still holds every value it was created with (`created_values`):
one a person edited, or a later run updated, is somebody's record now and is reported as
drifted instead. The CRMs keep deleted records in their recycle bin (Salesforce), archive
(HubSpot) or deleted list (Pipedrive), so even a wrong delete can be restored there.

Resumable like every write: each delete is journaled as intended before its batch is sent.
A copy that is already gone when the batch re-reads it (a killed run's delete that landed) is
settled as done, and the store forgets it either way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import Connector, DeletesDeals
from connectors.errors import ConnectorError
from mapping import MappingContext
from mapping.model import Deal, MappingError
from sync.apply_report import ChangeResult, Outcome
from sync.connect import kind_mapping
from sync.plan import current_value, decode_value, show_value
from sync.schema import chunks
from sync.store import Store
from sync.store_records import AuditEntry, JournalEntry, JournalOp, JournalState

__all__ = ["Delete", "apply_deletes", "delete_change_id", "not_deleted"]

_BATCH = 100
_NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class Delete:
    change_id: str
    system: str
    id: str
    entity: str | None
    created: Mapping[str, Any]  # canonical field -> the (encoded) value it was created with
    reason: str


def delete_change_id(run_id: str, system: str, deal_id: str) -> str:
    text = json.dumps(["delete", run_id, system, deal_id])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def apply_deletes(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    deletes: Sequence[Delete],
    run_id: str,
    plan_id: str,
    done: set[str],
    in_doubt: set[str],
) -> list[ChangeResult]:
    results = [_result(d, Outcome.DONE_BEFORE) for d in deletes if d.change_id in done]
    todo = [d for d in deletes if d.change_id not in done]
    if todo and not isinstance(connector, DeletesDeals):
        why = f"the {ctx.kind} connector cannot delete deals; delete them in {ctx.instance}"
        return results + [not_deleted(d, why) for d in todo]
    for index, chunk in enumerate(chunks(todo, _BATCH)):
        try:
            results += _batch(store, connector, ctx, chunk, run_id, plan_id, in_doubt)
        except ConnectorError as exc:
            rest = todo[index * _BATCH :]
            error = {"error": str(exc)}
            store.journal.mark(run_id, [(d.change_id, JournalState.FAILED, error) for d in rest])
            results += [not_deleted(d, f"not attempted: {exc}") for d in rest]
            break
    return results


def _batch(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    chunk: Sequence[Delete],
    run_id: str,
    plan_id: str,
    in_doubt: set[str],
) -> list[ChangeResult]:
    store.journal.intend(run_id, plan_id, [_entry(d) for d in chunk])
    now = _read(connector, ctx, [d.id for d in chunk])
    settled: list[tuple[Delete, Outcome, str | None]] = []
    sendable: list[Delete] = []
    for delete in chunk:
        deal = now.get(delete.id)
        if deal is None:
            settled.append((delete, Outcome.ALREADY, None))
        elif isinstance(deal, str):
            settled.append((delete, Outcome.DRIFTED, deal))
        elif (moved := _moved(deal, delete.created)) is not None:
            settled.append((delete, Outcome.DRIFTED, moved))
        else:
            sendable.append(delete)
    if sendable:
        assert isinstance(connector, DeletesDeals)
        pushed = connector.delete_deals([d.id for d in sendable])
        for delete, result in zip(sendable, pushed, strict=True):
            if result.ok:
                settled.append((delete, Outcome.APPLIED, None))
            elif result.code == _NOT_FOUND:
                settled.append((delete, Outcome.ALREADY, None))
            else:
                settled.append((delete, Outcome.FAILED, result.error or "refused without a reason"))
    gone = [d for d, o, _ in settled if o in (Outcome.APPLIED, Outcome.ALREADY)]
    _forget(store, ctx.instance, gone)
    ours = [
        d
        for d, o, _ in settled
        if o is Outcome.APPLIED or (o is Outcome.ALREADY and d.change_id in in_doubt)
    ]
    store.audit.append(
        AuditEntry(run_id, d.system, d.id, None, dict(d.created), {"deleted": True}, d.reason)
        for d in ours
    )
    store.journal.mark(run_id, [(d.change_id, *_journal_state(o, why)) for d, o, why in settled])
    return [_result(d, o, why) for d, o, why in settled]


def _read(connector: Connector, ctx: MappingContext, ids: list[str]) -> dict[str, Deal | str]:
    """id -> the copy as it is now, or why it cannot be judged; absent ids are gone."""
    to_deal = kind_mapping(ctx.kind).deal
    found: dict[str, Deal | str] = {}
    for native in connector.read_deals(ids):
        try:
            deal = to_deal(native, ctx)
        except MappingError as exc:
            found[exc.id] = f"cannot read the record now: {exc.field}: {exc.reason}"
            continue
        if not deal.extra.get("deleted"):
            found[deal.id] = deal
    return found


def _moved(deal: Deal, created: Mapping[str, Any]) -> str | None:
    """Why the copy is no longer as it was created, or None when it still is."""
    for field, then in sorted(created.items()):
        now = current_value(deal, field)
        if now != decode_value(field, then):
            return (
                f"{field} is now {show_value(now)}, it was created with "
                f"{show_value(decode_value(field, then))}: changed since, so not deleted"
            )
    return None


def _forget(store: Store, instance: str, deletes: Sequence[Delete]) -> None:
    """The store as if the copies had never been made: unlinked, gone from the snapshot, and
    their entities' other members re-examined by the next incremental reconcile."""
    if not deletes:
        return
    ids = [d.id for d in deletes]
    store.mark_deleted(instance, ids)
    gone = {(instance, i) for i in ids}
    others: dict[str, list[str]] = {}
    for link in store.link_records({d.entity for d in deletes if d.entity}):
        if (link.instance, link.deal_id) not in gone:
            others.setdefault(link.instance, []).append(link.deal_id)
    for deal_id in ids:
        store.unlink(instance, deal_id)
    for name, members in sorted(others.items()):
        store.mark_pending(name, members)


def _journal_state(outcome: Outcome, why: str | None) -> tuple[JournalState, dict[str, Any]]:
    if outcome is Outcome.APPLIED:
        return JournalState.DONE, {"deleted": True}
    if outcome is Outcome.ALREADY:
        return JournalState.DONE, {"already": True}
    if outcome is Outcome.DRIFTED:
        return JournalState.SKIPPED, {"drifted": why}
    return JournalState.FAILED, {"error": why}


def _entry(delete: Delete) -> JournalEntry:
    return JournalEntry(
        delete.change_id, delete.system, delete.id, JournalOp.DELETE, None, dict(delete.created),
        None,
    )  # fmt: skip


def _result(delete: Delete, outcome: Outcome, why: str | None = None) -> ChangeResult:
    return ChangeResult(
        delete.change_id, delete.system, delete.id, None, outcome, why, delete.entity, "delete"
    )


def not_deleted(delete: Delete, why: str) -> ChangeResult:
    return _result(delete, Outcome.FAILED, why)
