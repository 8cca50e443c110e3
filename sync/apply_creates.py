"""Apply the plan's creates: copies of a deal in an instance that lacks it.

A create carries our idempotency marker (the entity id) in the target's link field. Before
anything is sent, the target is searched for records that already carry the marker: a create
whose response was lost (process killed, connection cut) is found there instead of duplicated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.base import Connector, NativeCreate
from connectors.errors import ConnectorError
from mapping import MappingContext, deal_from_json
from mapping.model import MappingError
from sync.apply_report import ChangeResult, Outcome
from sync.store import Store
from sync.store_records import AuditEntry, JournalEntry, JournalOp, JournalState, Link, LinkMethod
from sync.writes import native_create

__all__ = ["apply_creates", "create_change_id"]

_BATCH = 100


def create_change_id(create: Mapping[str, Any]) -> str:
    text = json.dumps(["create", create["system"], create["entity"]])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def apply_creates(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    creates: Sequence[Mapping[str, Any]],
    run_id: str,
    plan_id: str,
    done: set[str],
) -> list[ChangeResult]:
    system = ctx.instance
    results = []
    todo: list[tuple[str, Mapping[str, Any]]] = []
    for create in creates:
        cid = create_change_id(create)
        if cid in done:
            results.append(_result(cid, create, None, Outcome.DONE_BEFORE))
        else:
            todo.append((cid, create))
    for start in range(0, len(todo), _BATCH):
        chunk = todo[start : start + _BATCH]
        try:
            results += _batch(store, connector, ctx, chunk, run_id, plan_id)
        except ConnectorError as exc:
            error = {"error": str(exc)}
            rest = todo[start:]
            store.journal.mark(run_id, [(cid, JournalState.FAILED, error) for cid, _ in rest])
            results += [
                _result(cid, c, None, Outcome.FAILED, f"not attempted: {exc}") for cid, c in rest
            ]
            break
    del system
    return results


def _batch(
    store: Store,
    connector: Connector,
    ctx: MappingContext,
    chunk: Sequence[tuple[str, Mapping[str, Any]]],
    run_id: str,
    plan_id: str,
) -> list[ChangeResult]:
    system = ctx.instance
    store.journal.intend(
        run_id,
        plan_id,
        [
            JournalEntry(cid, system, None, JournalOp.CREATE, None, None, _after(c))
            for cid, c in chunk
        ],
    )
    found = connector.find_created([str(c["entity"]) for _, c in chunk])
    results: list[ChangeResult] = []
    marks: list[tuple[str, JournalState, Mapping[str, Any] | None]] = []
    links: list[Link] = []
    audits: list[AuditEntry] = []
    sends: list[tuple[str, Mapping[str, Any], NativeCreate]] = []
    for cid, create in chunk:
        entity = str(create["entity"])
        if entity in found:
            new_id = found[entity]
            marks.append((cid, JournalState.DONE, {"id": new_id, "found": True}))
            links.append(Link(entity, system, new_id, LinkMethod.CREATED))
            audits.append(_audit(run_id, create, new_id))
            results.append(_result(cid, create, new_id, Outcome.ALREADY))
            continue
        try:
            fields = _native(store, ctx, create)
        except (MappingError, LookupError) as exc:
            why = exc.reason if isinstance(exc, MappingError) else str(exc)
            marks.append((cid, JournalState.FAILED, {"error": why}))
            results.append(_result(cid, create, None, Outcome.FAILED, why))
            continue
        sends.append((cid, create, NativeCreate(entity, fields)))
    store.journal.mark(run_id, marks)
    marks = []
    if sends:
        pushed = connector.create_deals([n for _, _, n in sends])
        for (cid, create, _), result in zip(sends, pushed, strict=True):
            if result.ok and result.id:
                marks.append((cid, JournalState.DONE, {"id": result.id, "ok": True}))
                links.append(Link(str(create["entity"]), system, result.id, LinkMethod.CREATED))
                audits.append(_audit(run_id, create, result.id))
                results.append(_result(cid, create, result.id, Outcome.APPLIED))
            else:
                why = result.error or "refused without a reason"
                marks.append((cid, JournalState.FAILED, {"error": why, "code": result.code}))
                results.append(_result(cid, create, None, Outcome.FAILED, why))
    store.journal.mark(run_id, marks)
    if links:
        store.save_links(links)
    store.audit.append(audits)
    return results


def _native(store: Store, ctx: MappingContext, create: Mapping[str, Any]) -> dict[str, Any]:
    source = create["source"]
    payload = store.get_deals(source["system"], [source["id"]]).get(source["id"])
    if payload is None:
        raise LookupError(f"source deal {source['system']}:{source['id']} is not in the store")
    return native_create(deal_from_json(payload), ctx, str(create["entity"]))


def _after(create: Mapping[str, Any]) -> dict[str, Any]:
    source = create["source"]
    return {"source": f"{source['system']}:{source['id']}", "link_id": create["entity"]}


def _audit(run_id: str, create: Mapping[str, Any], new_id: str) -> AuditEntry:
    return AuditEntry(
        run_id, str(create["system"]), new_id, None, None, _after(create),
        f"created from {_after(create)['source']}",
    )  # fmt: skip


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
