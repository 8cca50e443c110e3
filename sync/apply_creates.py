"""Apply the plan's creates: copies of a deal in an instance that lacks it.

A create carries our idempotency marker (the entity id) in the target's link field. Before a
create an earlier attempt may have sent is sent again, the target is searched for records that
already carry its marker: a create whose response was lost (process killed, connection cut) is
found there instead of duplicated. One never sent is not looked up (see `_batch`).
A copy the target refuses, or cannot hold when it is applied (a mapping error: its owner
deactivated since the plan, say), is a failed record (sync/apply_failures.py): retried on later
runs up to `push.max_attempts`, then dead-lettered and not sent again until
`crmsync dead-letters retry` releases it. A create left in doubt (its answer lost) was not
refused: it counts toward nothing.
A create whose entity a run linked to a deal of the target since the plan was made (another
plan's apply made that copy, or a reconcile matched one) is not sent either: see `_linked_since`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from connectors.base import (
    UNCONFIRMED,
    Connector,
    NativeCreate,
    expect_accounts,
    found_accounts,
    lookup_lag,
)
from connectors.errors import ConnectorError
from mapping import MappingContext, deal_from_json
from mapping.model import Deal, MappingError
from sync.apply_failures import Failures
from sync.apply_report import ChangeResult, Outcome
from sync.copy_digest import create_digest, values_digest
from sync.create_accounts import account_name_of, filing_note
from sync.plan import current_value, decided_of, encode_value
from sync.plan_accounts import found_in_plan, found_since
from sync.shutdown import stop_requested, stopped_on_request
from sync.store import Store
from sync.store_records import (
    AuditEntry,
    JournalEntry,
    JournalOp,
    JournalRecord,
    JournalState,
    Link,
    LinkMethod,
    copied_from,
)
from sync.writes import copy_of, native_create, write_batch

__all__ = [
    "CREATED_FIELDS",
    "apply_creates",
    "create_change_id",
    "created_values",
    "found_copy",
    "too_recent",
]

_BATCH = 100  # records per journaled batch of a kind with no known batch size (write_batch)
_IN_DOUBT = "in doubt: {}; the next apply looks for the copy by its link marker"
_TOO_RECENT = (
    "in doubt: sent by an apply moments ago, and {}'s lookup may not show the copy yet; "
    "an apply from {} UTC on looks for it by its link marker"
)
# The fields a create sets from its source deal (probability is the target's own, from stage).
CREATED_FIELDS = ("name", "stage", "status", "amount", "currency", "close_date", "owner_email")


def create_change_id(create: Mapping[str, Any]) -> str:
    text = json.dumps(["create", create["system"], create["entity"]])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def too_recent(
    records: Iterable[JournalRecord], connector: Connector, now: datetime
) -> dict[str, datetime]:
    """Creates in doubt sent so recently that the CRM's lookup may not show their copy yet
    (an optional `lookup_lag` of the connector: HubSpot's search lags its writes): change id
    -> when a lookup can tell. Neither settled nor sent again before then: not found is no
    proof that nothing was created, and a second send would make a duplicate."""
    lag = lookup_lag(connector)
    if not lag:
        return {}
    return {
        r.entry.plan_change_id: r.updated_at + lag
        for r in records
        if r.entry.op is JournalOp.CREATE and r.updated_at + lag > now
    }


def apply_creates(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    creates: Sequence[Mapping[str, Any]],
    run_id: str,
    plan_id: str,
    done: set[str],
    in_doubt: Mapping[str, JournalRecord],
    held: Mapping[str, datetime] | None = None,
    planned_at: datetime | None = None,
    *,
    failures: Failures,
) -> list[ChangeResult]:
    """`in_doubt`: this plan's creates an earlier, stopped attempt may have sent (its journal
    rows). `held`: creates in doubt too recent to look up (`too_recent`), left in doubt for a
    later apply.
    `planned_at`: when the plan was made (its entities' links since are checked). `failures`:
    the target's dead letters, where refused copies are counted."""
    results = []
    todo: list[tuple[str, Mapping[str, Any]]] = []
    for create in creates:
        cid = create_change_id(create)
        if cid in done:
            results.append(_result(cid, create, None, Outcome.DONE_BEFORE))
        elif held and cid in held:
            why = _TOO_RECENT.format(ctx.kind, f"{held[cid]:%Y-%m-%d %H:%M:%S}")
            results.append(_result(cid, create, None, Outcome.FAILED, why))
        else:
            todo.append((cid, create))
    # Every account name up front, before any create is journaled: the connector looks them
    # up together, the cheapest way, and a lookup that fails has sent nothing (not in doubt).
    names = [n for _, c in todo if (n := account_name_of(c))]
    try:
        expect_accounts(connector, names)
        # what the plan's dry run found, compared (no call: the names were just looked up)
        since = _found_since(connector, [c for _, c in todo], names, ctx.kind)
    except ConnectorError as exc:
        return results + [not_created(c, str(exc)) for _, c in todo]
    size = write_batch(ctx.kind, _BATCH)
    for start in range(0, len(todo), size):
        chunk = todo[start : start + size]
        store.checkpoint()  # LockLost: the batches sent so far are journaled
        if stop_requested():  # SIGTERM: the batches sent so far are journaled; the rest waits
            results += [not_created(c, stopped_on_request()) for _, c in todo[start:]]
            break
        try:
            results += _batch(
                store, connector, ctx, chunk, run_id, plan_id, in_doubt, planned_at, failures
            )
            continue
        except _Stopped as stop:
            results += stop.results
            cause, rest = stop.cause, todo[start + size :]
        except ConnectorError as exc:  # the search for earlier copies failed: nothing was sent
            cause, rest = exc, todo[start:]
        error = {"error": str(cause)}
        store.journal.mark(run_id, [(cid, JournalState.FAILED, error) for cid, _ in rest])
        results += [
            _result(cid, c, None, Outcome.NOT_SENT, f"not attempted: {cause}") for cid, c in rest
        ]
        break
    return [_noted(r, since.get(r.change_id)) for r in results]


def _found_since(
    connector: Connector, todo: Sequence[Mapping[str, Any]], names: Sequence[str], kind: str
) -> dict[str, str]:
    """change id -> what the apply's lookup found of a create's account name otherwise than
    the dry run that made its plan (`found_since`), for the creates whose plan says."""
    if not any(found_in_plan(c) for c in todo):
        return {}
    looked = found_accounts(connector, names) or {}
    return {create_change_id(c): note for c in todo if (note := found_since(c, looked, kind))}


def _noted(result: ChangeResult, note: str | None) -> ChangeResult:
    if note is None:
        return result
    return replace(result, reason="; ".join(filter(None, (result.reason, note))))


def not_created(create: Mapping[str, Any], why: str) -> ChangeResult:
    why = f"not attempted: {why}"
    return _result(create_change_id(create), create, None, Outcome.NOT_SENT, why)


class _Stopped(Exception):
    """A create call failed for good; `results` are the batch's, as far as they are known."""

    def __init__(self, results: list[ChangeResult], cause: ConnectorError) -> None:
        super().__init__(str(cause))
        self.results, self.cause = results, cause


def _batch(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    chunk: Sequence[tuple[str, Mapping[str, Any]]],
    run_id: str,
    plan_id: str,
    in_doubt: Mapping[str, JournalRecord],
    planned_at: datetime | None,
    failures: Failures,
) -> list[ChangeResult]:
    system = ctx.instance
    entities = [str(c["entity"]) for _, c in chunk]
    linked = _linked_since(store, system, entities, planned_at) if planned_at else {}
    # A refused copy is counted under (the target, its entity id, no field): it has no record
    # id in the target yet, and the entity id is what the plan shows, what stays the same
    # across plans and sources, and what `dead-letters retry --id` then takes.
    # A dead copy is not sent, so not journaled (as a dead field change is not); one an earlier
    # run may have sent is looked up first all the same: found, it is no longer dead.
    dead = {
        cid: why
        for cid, c in chunk
        if cid not in in_doubt
        and str(c["entity"]) not in linked
        and (why := failures.dead(str(c["entity"]))) is not None
    }
    store.journal.intend(
        run_id,
        plan_id,
        [
            JournalEntry(cid, system, None, JournalOp.CREATE, None, None, _journaled(c))
            for cid, c in chunk
            if cid not in dead
        ],
    )
    # Every send is journaled as intended first, so only a create in doubt can have a copy
    # already. Looking up the others too cost Pipedrive, which searches one marker per call, a
    # search per copy: twice a migration's calls there.
    maybe_sent = [str(c["entity"]) for cid, c in chunk if cid in in_doubt]
    unlinked = [e for e in maybe_sent if e not in linked]
    found = connector.find_created(unlinked) if unlinked else {}
    results: list[ChangeResult] = []
    marks: list[tuple[str, JournalState, Mapping[str, Any] | None]] = []
    links: list[Link] = []
    audits: list[AuditEntry] = []
    sends: list[tuple[str, Mapping[str, Any], NativeCreate, dict[str, Any]]] = []
    unmappable: list[tuple[str, Mapping[str, Any], str]] = []
    for cid, create in chunk:
        entity = str(create["entity"])
        if cid in dead:
            results.append(_result(cid, create, None, Outcome.DEAD, dead[cid]))
            continue
        if entity in linked or entity in found:  # the copy exists: no longer failing
            failures.clear(entity)
        if entity in linked:  # the run that linked it audited it, if it made it
            marks.append((cid, JournalState.DONE, {"id": linked[entity], "linked": True}))
            results.append(_result(cid, create, linked[entity], Outcome.ALREADY))
            continue
        if entity in found:
            new_id = found[entity]
            marks.append((cid, JournalState.DONE, {"id": new_id, "found": True}))
            links.append(Link(entity, system, new_id, LinkMethod.CREATED, confirmed=True))
            # Ours only if this plan sent it before; else another plan's apply made the copy
            # and audited it under its own run (which `rollback` of this run must not undo).
            if cid in in_doubt:  # audited as that run's (JournalRecord.landed)
                sent, values = in_doubt[cid], _values_or_none(store, ctx, create)
                audits.append(sent.landed(_audit(sent.run_id, create, new_id, values)))
            results.append(_result(cid, create, new_id, Outcome.ALREADY))
            continue
        why = failures.dead(entity)
        if why is not None:  # in doubt, not found: never created, and dead since
            marks.append((cid, JournalState.FAILED, {"error": why}))
            results.append(_result(cid, create, None, Outcome.DEAD, why))
            continue
        try:
            fields, values = _native(store, ctx, create)
        except _SourceDeleted as exc:
            marks.append((cid, JournalState.SKIPPED, {"drifted": str(exc)}))
            results.append(_result(cid, create, None, Outcome.DRIFTED, str(exc)))
            continue
        except MappingError as exc:
            # The target cannot hold the copy now (its owner deactivated since the plan, say):
            # refused before the call, it counts as the CRM's refusal does, as an unmappable
            # field change does (sync/apply.py); else it failed every night for good.
            why = f"{exc.field}: {exc.reason}"
            marks.append((cid, JournalState.FAILED, {"error": why}))
            unmappable.append((cid, create, why))
            continue
        except LookupError as exc:  # the store lacks the source: no refusal of the target's
            marks.append((cid, JournalState.FAILED, {"error": str(exc)}))
            results.append(_result(cid, create, None, Outcome.FAILED, str(exc)))
            continue
        sends.append((cid, create, NativeCreate(entity, fields, account_name_of(create)), values))
    store.journal.mark(run_id, marks, audit=audits, links=links)
    results += _counted(failures, unmappable)
    marks, links, audits = [], [], []
    try:
        pushed = connector.create_deals([n for _, _, n, _ in sends]) if sends else []
    except ConnectorError as exc:
        # Part of the batch may exist now (Pipedrive creates one call per deal): in doubt
        # (sent). The next apply finds those copies by their marker and audits them.
        store.journal.mark_in_doubt(run_id, [cid for cid, *_ in sends], str(exc))
        why = _IN_DOUBT.format(exc)
        doubt = [_result(cid, c, None, Outcome.FAILED, why) for cid, c, *_ in sends]
        raise _Stopped(results + doubt, exc) from exc
    created: list[str] = []
    refused: list[tuple[str, Mapping[str, Any], str]] = []
    for (cid, create, _, values), result in zip(sends, pushed, strict=True):
        if result.ok and result.id:
            marks.append((cid, JournalState.DONE, {"id": result.id, "ok": True}))
            links.append(
                Link(str(create["entity"]), system, result.id, LinkMethod.CREATED, confirmed=True)
            )
            audits.append(_audit(run_id, create, result.id, values))
            created.append(str(create["entity"]))
            note = result.note or filing_note(create, ctx.kind)
            results.append(_result(cid, create, result.id, Outcome.APPLIED, note))
        elif result.code == UNCONFIRMED:  # may exist: settled as a create cut short is
            why = result.error or "not confirmed"
            marks.append((cid, JournalState.SENT, {"error": why, "code": result.code}))
            results.append(_result(cid, create, None, Outcome.FAILED, _IN_DOUBT.format(why)))
        else:
            why = result.error or "refused without a reason"
            marks.append((cid, JournalState.FAILED, {"error": why, "code": result.code}))
            refused.append((cid, create, why))
    store.journal.mark(run_id, marks, audit=audits, links=links)
    for entity in created:  # a copy that went through after refusals: no longer failing
        failures.clear(entity)
    return results + _counted(failures, refused)


def _counted(
    failures: Failures, refused: Sequence[tuple[str, Mapping[str, Any], str]]
) -> list[ChangeResult]:
    """The results of copies refused (by the CRM, or unmappable in the target), each counted
    under its entity id. Called once the journal holds the refusals, as a field change's are
    (sync/apply.py)."""
    results = []
    for cid, create, why in refused:
        outcome, reason = failures.fail(str(create["entity"]), None, why)
        results.append(_result(cid, create, None, outcome, reason))
    return results


def _linked_since(
    store: Store, system: str, entities: Sequence[str], since: datetime
) -> dict[str, str]:
    """Entity -> the deal of `system` a run linked it to after `since` (the plan was made).

    Its copy exists, though the marker lookup may not show it yet (HubSpot's search lags its
    writes by minutes): a saved plan applied by hand after the nightly reconcile made the same
    copies created every one of them again. A link older than the plan the plan knew of (a
    copy deleted before any pull read it is created again on purpose)."""
    return {
        link.entity_id: link.deal_id
        for link in store.link_records(entities)
        if link.instance == system and link.matched_at is not None and link.matched_at > since
    }


def found_copy(
    store: Store, ctx: MappingContext, record: JournalRecord, new_id: str
) -> tuple[Link, AuditEntry]:
    """The link and audit entry of a copy the run of `record` (its journaled create) created
    but could not record, found by its marker."""
    journaled = record.entry.after
    source = copied_from(journaled)
    entity = str(journaled["link_id"])
    create = {
        "system": ctx.instance,
        "entity": entity,
        "source": {"system": source.system, "id": source.id},
    }
    values = _values_or_none(store, ctx, create)
    link = Link(entity, ctx.instance, new_id, LinkMethod.CREATED, confirmed=True)
    return link, record.landed(_audit(record.run_id, create, new_id, values))


class _SourceDeleted(LookupError):
    """The create's source deal was deleted since its plan was made (a pull saw it go)."""


def _native(
    store: Store, ctx: MappingContext, create: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The native payload, and the canonical values the copy is created with."""
    source = create["source"]
    payload = store.get_deals(source["system"], [source["id"]]).get(source["id"])
    if payload is None:
        raise LookupError(f"source deal {source['system']}:{source['id']} is not in the store")
    if (payload.get("extra") or {}).get("deleted"):
        # A saved plan applied after that copied a deal its CRM no longer holds.
        raise _SourceDeleted(
            f"source deal {source['system']}:{source['id']} was deleted since the plan was "
            "made: not copied"
        )
    deal = copy_of(deal_from_json(payload), decided_of(create))
    return native_create(deal, ctx, str(create["entity"])), created_values(deal, ctx)


def _values_or_none(
    store: Store, ctx: MappingContext, create: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The values of a create an earlier, killed run sent (found by its marker)."""
    try:
        return _native(store, ctx, create)[1]
    except (MappingError, LookupError):
        return None  # `rollback` then lists the copy as kept, to be checked by hand


def created_values(deal: Deal, ctx: MappingContext) -> dict[str, Any]:
    """What a rollback compares before deleting a copy: a copy whose values moved since it was
    created is someone's record now. The owner counts only where the target knows them (else
    the CRM picks one)."""
    fields = [f for f in CREATED_FIELDS if f != "owner_email" or _known_owner(deal, ctx)]
    return {f: encode_value(current_value(deal, f)) for f in fields}


def _known_owner(deal: Deal, ctx: MappingContext) -> bool:
    return deal.owner_email is not None and ctx.owner_id_for(deal.owner_email) is not None


def _journaled(create: Mapping[str, Any]) -> dict[str, Any]:
    """A create as journaled: its audit entry's, and the digest of what it carries (a refused
    copy is of that content: sync/stale_letters.py). Under a key of its own, beside `content`,
    of the source and values alone, which crmsync journaled before and still reads there: an
    older crmsync of the same schema on this store compares its letters as it did."""
    return {
        **_after(create),
        "content": values_digest(create),
        "carried": create_digest(create),
    }


def _after(create: Mapping[str, Any]) -> dict[str, Any]:
    source = create["source"]
    return {"source": f"{source['system']}:{source['id']}", "link_id": create["entity"]}


def _audit(
    run_id: str, create: Mapping[str, Any], new_id: str, values: dict[str, Any] | None
) -> AuditEntry:
    after = _after(create)
    if values is not None:
        after["values"] = values  # what `rollback` checks before deleting the copy
    return AuditEntry(
        run_id, str(create["system"]), new_id, None, None, after, f"created from {after['source']}"
    )


def _result(
    cid: str,
    create: Mapping[str, Any],
    new_id: str | None,
    outcome: Outcome,
    why: str | None = None,
) -> ChangeResult:
    return ChangeResult(
        cid, str(create["system"]), new_id, None, outcome, why, str(create["entity"])
    )
