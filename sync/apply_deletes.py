"""Delete deals crmsync is asked to: the copies a rolled-back run created, and (with
push.propagate_deletes) the live members of an entity someone deleted in another CRM.

A deal is deleted only if it still holds every value recorded for it: a copy the values it was
created with (`created_values`), a live member the values all CRMs last agreed on (the base).
One a person edited since, or a later run updated, is somebody's record now and is reported as
drifted instead; with nothing recorded to check, nothing is deleted. The CRMs keep deleted
records in their recycle bin (Salesforce), archive (HubSpot) or deleted list (Pipedrive), so
even a wrong delete can be restored there.

Resumable like every write: each delete is journaled as intended before its batch is sent.
A copy that is already gone when the batch re-reads it (a killed run's delete that landed) is
settled as done, and the store forgets it either way. Deletes another plan left in doubt are
settled by the next apply, whatever it writes (sync/apply_doubt.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from connectors.base import NOT_FOUND, Connector, DeletesDeals
from connectors.errors import ConnectorError
from mapping import MappingContext
from mapping.model import Deal, DealStatus, Ref
from sync.apply_report import ChangeResult, Outcome
from sync.connect import read_now
from sync.plan import Plan, current_value, decode_value, encode_value, show_value
from sync.schema import chunks
from sync.shutdown import stop_requested, stopped_on_request
from sync.store import Store
from sync.store_records import AuditEntry, JournalEntry, JournalOp, JournalRecord, JournalState
from sync.stored_owners import values_owners
from sync.writes import write_batch

__all__ = [
    "Delete",
    "agreed_values",
    "apply_deletes",
    "changed_since",
    "delete_change_id",
    "forget",
    "keep_deleted",
    "propagated",
    "refused_where_live",
    "unsent_delete",
    "written_to",
]

_BATCH = 100  # records per journaled batch of a kind with no known batch size (write_batch)
AGREED = "the CRMs last agreed on"  # what a propagated delete's expected values are


@dataclass(frozen=True, slots=True)
class Delete:
    change_id: str
    system: str
    id: str
    entity: str | None
    # canonical field -> the (encoded) value the deal must still hold to be deleted: what it
    # was created with (rollback), or the entity's base (propagated deletes)
    expected: Mapping[str, Any]
    reason: str
    # what `expected` is, as a drift reason names it
    recorded: str = "it was created with"
    # why it is not to be sent whatever the deal holds (reported drifted), or None
    refused: str | None = None
    # the deals deleted elsewhere that a propagated delete follows (read again before it is sent)
    sources: tuple[Ref, ...] = ()


def written_to(plan: Plan, deletes: Sequence[Delete] = ()) -> set[str]:
    """The instances an apply of `plan` writes to: those of its changes and creates, and of
    `deletes` (a rollback's copies, propagated deletes), which go with it."""
    creates = {str(c["system"]) for c in plan.creates}
    return {c.system for c in plan.changes} | creates | {d.system for d in deletes}


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
    in_doubt: Mapping[str, JournalRecord],
) -> list[ChangeResult]:
    results = [_result(d, Outcome.DONE_BEFORE) for d in deletes if d.change_id in done]
    todo = [d for d in deletes if d.change_id not in done]
    if todo and not isinstance(connector, DeletesDeals):
        why = f"the {ctx.kind} connector cannot delete deals; delete them in {ctx.instance}"
        return results + [not_deleted(d, why) for d in todo]
    size = write_batch(ctx.kind, _BATCH)
    for index, chunk in enumerate(chunks(todo, size)):
        store.checkpoint()  # LockLost: the batches sent so far are journaled
        if stop_requested():  # SIGTERM: the batches sent so far are journaled; the rest waits
            results += [unsent_delete(d, stopped_on_request()) for d in todo[index * size :]]
            break
        try:
            results += _batch(store, connector, ctx, chunk, run_id, plan_id, in_doubt)
        except _Stopped as stop:
            results += stop.results
            rest = todo[(index + 1) * size :]
            error = {"error": str(stop.cause)}
            store.journal.mark(run_id, [(d.change_id, JournalState.FAILED, error) for d in rest])
            results += [unsent_delete(d, str(stop.cause)) for d in rest]
            break
    return results


def _batch(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    chunk: Sequence[Delete],
    run_id: str,
    plan_id: str,
    in_doubt: Mapping[str, JournalRecord],
) -> list[ChangeResult]:
    store.journal.intend(run_id, plan_id, [_entry(d) for d in chunk])
    try:
        now, unreadable = read_now(connector, ctx, [d.id for d in chunk])
    except ConnectorError as exc:  # nothing of the batch was sent
        error = {"error": str(exc)}
        store.journal.mark(run_id, [(d.change_id, JournalState.FAILED, error) for d in chunk])
        raise _Stopped([unsent_delete(d, str(exc)) for d in chunk], exc) from exc
    settled: list[tuple[Delete, Outcome, str | None]] = []
    sendable: list[Delete] = []
    for delete in chunk:
        deal = now.get(delete.id)
        if delete.refused is not None:
            settled.append((delete, Outcome.DRIFTED, delete.refused))
        elif delete.id in unreadable:
            settled.append((delete, Outcome.DRIFTED, unreadable[delete.id]))
        elif deal is None or deal.extra.get("deleted"):
            settled.append((delete, Outcome.ALREADY, None))
        elif (moved := changed_since(deal, delete.expected, delete.recorded)) is not None:
            settled.append((delete, Outcome.DRIFTED, moved))
        else:
            sendable.append(delete)
    assert isinstance(connector, DeletesDeals)  # apply_deletes checked it
    try:
        pushed = connector.delete_deals([d.id for d in sendable]) if sendable else []
    except ConnectorError as exc:
        # Pipedrive sends one call per deal: some of the batch may be deleted already. They
        # stay in doubt (sent): the next apply (sync/apply_doubt.py), or re-running the plan or
        # rollback, reads, settles and audits them.
        results = _settle(store, ctx, settled, run_id, in_doubt)
        store.journal.mark_in_doubt(run_id, [d.change_id for d in sendable], str(exc))
        why = f"in doubt: {exc}; the next reconcile or apply checks whether it was deleted"
        raise _Stopped(results + [not_deleted(d, why) for d in sendable], exc) from exc
    for delete, result in zip(sendable, pushed, strict=True):
        if result.ok:
            settled.append((delete, Outcome.APPLIED, None))
        elif result.code == NOT_FOUND:
            settled.append((delete, Outcome.ALREADY, None))
        else:
            settled.append((delete, Outcome.FAILED, result.error or "refused without a reason"))
    return _settle(store, ctx, settled, run_id, in_doubt)


def _settle(
    store: Store,
    ctx: MappingContext,
    settled: Sequence[tuple[Delete, Outcome, str | None]],
    run_id: str,
    in_doubt: Mapping[str, JournalRecord],
) -> list[ChangeResult]:
    """Forget what is gone, audit what we deleted (a killed run's too), journal every one."""
    gone = [d for d, o, _ in settled if o in (Outcome.APPLIED, Outcome.ALREADY)]
    # what this run deleted, and what a stopped run's delete did (audited under that run)
    ours = [
        (run_id if o is Outcome.APPLIED else in_doubt[d.change_id].run_id, d)
        for d, o, _ in settled
        if o is Outcome.APPLIED or (o is Outcome.ALREADY and d.change_id in in_doubt)
    ]
    # A rollback's copies crmsync made are forgotten; a propagated delete's deals are kept,
    # marked deleted by the run it is audited under (found deleted already: by none).
    copies = [d for d in gone if not d.sources]
    forget(store, ctx.instance, [d.id for d in copies], {d.entity for d in copies if d.entity})
    by_run: dict[str | None, list[Delete]] = {}
    audited = {d.change_id: run for run, d in ours}
    for delete in (d for d in gone if d.sources):
        by_run.setdefault(audited.get(delete.change_id), []).append(delete)
    for run, spread in sorted(by_run.items(), key=lambda item: item[0] or ""):
        entities = {d.entity for d in spread if d.entity}
        keep_deleted(store, ctx.instance, [d.id for d in spread], entities, run)
    store.journal.mark(
        run_id,
        [(d.change_id, *_journal_state(o, why)) for d, o, why in settled],
        audit=[
            AuditEntry(run, d.system, d.id, None, dict(d.expected), {"deleted": True}, d.reason)
            for run, d in ours
        ],
    )
    return [_result(d, o, why) for d, o, why in settled]


class _Stopped(Exception):
    """A whole call failed: the results so far, and the connector's error."""

    def __init__(self, results: list[ChangeResult], cause: ConnectorError) -> None:
        super().__init__(str(cause))
        self.results, self.cause = results, cause


def changed_since(
    deal: Deal, expected: Mapping[str, Any], recorded: str = "it was created with"
) -> str | None:
    """Why the deal is no longer as recorded, or None when it still is; `recorded` says what
    `expected` is (a copy's creation values, or the values the CRMs last agreed on)."""
    if not expected:
        return "no values recorded to check it against, so not deleted"
    for field, then in sorted(expected.items()):
        now = current_value(deal, field)
        if now != decode_value(field, then):
            return (
                f"{field} is now {show_value(now)}, {recorded} "
                f"{show_value(decode_value(field, then))}: changed since, so not deleted"
            )
    return None


def forget(store: Store, instance: str, ids: Sequence[str], entities: Collection[str]) -> None:
    """The store as if the deleted deals had never been there: unlinked, gone from the
    snapshot, and their `entities`' other members re-examined by the next incremental
    reconcile."""
    # Flagged before the links go: a crash in between leaves them flagged (harmless), never
    # unlinked with nothing left to make the next incremental reconcile look at them.
    keep_deleted(store, instance, ids, entities)
    if ids:
        store.unlink_all(instance, ids)


def keep_deleted(
    store: Store,
    instance: str,
    ids: Sequence[str],
    entities: Collection[str],
    run_id: str | None = None,
) -> None:
    """The deals a propagated delete removed, kept in their entities as deleted members: they
    were somebody's deals, not crmsync's copies. Should the deal whose deletion they followed
    be restored, its entity still knows them, so the next reconcile neither takes the restored
    deal for a new one (unmatched, copied again by push.create_missing) nor deletes it again
    (sync/reconcile.py: the plan reports them, to restore from their recycle bins). `run_id`:
    the run the delete is audited under, as the one that marked them deleted, which tells this
    deletion from a later one someone makes after restoring them."""
    if not ids:
        return
    store.mark_deleted(instance, ids, run_id=run_id)
    gone = {(instance, i) for i in ids}
    others: dict[str, list[str]] = {}
    for link in store.link_records(entities):
        if (link.instance, link.deal_id) not in gone:
            others.setdefault(link.instance, []).append(link.deal_id)
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
        delete.change_id, delete.system, delete.id, JournalOp.DELETE, None, dict(delete.expected),
        None,
    )  # fmt: skip


def _result(delete: Delete, outcome: Outcome, why: str | None = None) -> ChangeResult:
    return ChangeResult(
        delete.change_id, delete.system, delete.id, None, outcome, why, delete.entity, "delete"
    )


def not_deleted(delete: Delete, why: str) -> ChangeResult:
    return _result(delete, Outcome.FAILED, why)


def unsent_delete(delete: Delete, why: str) -> ChangeResult:
    """A delete a stop or a failed call kept from being sent: the next run sends it."""
    return _result(delete, Outcome.NOT_SENT, f"not attempted: {why}")


def propagated(store: Store, plan: Plan, aliases: Mapping[str, str]) -> tuple[Delete, ...]:
    """The deletes a plan propagates: each live member of an entity deleted in another CRM
    (plan `deleted` entries with `propagate`), checked against the entity's base, its owner
    read through `aliases` (`owners.aliases`, sync/stored_owners.py)."""
    wanted = [d for d in plan.deleted if d["propagate"]]
    if not wanted:
        return ()
    bases = store.bases([str(d["entity"]) for d in wanted])
    out = []
    for item in wanted:
        entity = str(item["entity"])
        expected = values_owners(agreed_values(bases.get(entity)), aliases)
        gone = ", ".join(f"{g['system']} {g['id']}" for g in item["deleted"])
        why = f"deleted in {gone}; propagated (push.propagate_deletes)"
        # read in their CRM right before the copies go (sync/apply.py): restored since, they
        # keep them, whether a pull saw them back or not
        sources = tuple(Ref(str(g["system"]), str(g["id"])) for g in item["deleted"])
        for live in item["live"]:
            system, deal_id = str(live["system"]), str(live["id"])
            change_id = delete_change_id(plan.run_id, system, deal_id)
            out.append(
                Delete(change_id, system, deal_id, entity, expected, why, AGREED, None, sources)
            )
    return tuple(out)


def refused_where_live(deletes: Sequence[Delete], live: Mapping[Ref, str]) -> list[Delete]:
    """`deletes`, each propagated one refused (with the reason `live` gives) when a deal it
    follows is in `live`: the deals deleted elsewhere that their CRM holds again, or that
    could not be read to tell."""
    out = []
    for delete in deletes:
        why = next((live[r] for r in delete.sources if r in live), None)
        out.append(delete if why is None or delete.refused else replace(delete, refused=why))
    return out


def agreed_values(base: Mapping[str, Any] | None) -> dict[str, Any]:
    """The base's values as `changed_since` compares them (encoded; amount split from currency).
    The stage only for open deals: a closed one compares by its status, its native stage may
    legitimately differ. Empty without a base: such a deal is never deleted."""
    if not base:
        return {}
    out = {f: base[f] for f in ("name", "status", "close_date", "owner_email") if f in base}
    if base.get("status") == DealStatus.OPEN.value and "stage" in base:
        out["stage"] = base["stage"]
    if "amount" in base:
        money = decode_value("amount", base["amount"], money=True)
        out["amount"] = encode_value(money.amount) if money else None
        out["currency"] = money.currency if money else None
    return out
