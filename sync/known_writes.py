"""The deals as crmsync last knows them: each stored snapshot with the writes crmsync made to
that record after the snapshot was read laid over it (no CRM calls).

An apply (and `rollback --apply`) updates the bases but not the snapshots: until the next pull,
a snapshot shows the record as it was before the write, and an analysis of the store alone
(the health report) would take crmsync's own write for a difference between the CRMs. The audit
log holds every write; the ones audited since the pull that saved a snapshot began
(`AuditLog.after_snapshots`) are applied over it in order, the latest write of a field winning.
Only the written values and the record's modification time (the write's) change: what the CRM
records about a write on its own (stage history, the time a stage was entered, a probability it
derives) comes with the next pull, which replaces the snapshot anyway.

A pull re-saves (and so moves past the writes of) only the snapshots whose record changed. That
suffices because each CRM moves a record's modification time, which the snapshot holds, on every
edit: a user putting back the value crmsync wrote over makes the record differ from the snapshot
taken before the write, though its fields are that snapshot's again.

A copy crmsync created and no pull has stored yet (still linked: a rollback that deleted it
unlinked it) is known as crmsync created it: its source deal's snapshot with the values the
audit says the copy was created with, in the native stage the config writes its stage as (its
`stage_write`, else the first native stage the stage map maps to it). So it counts as its
entity's copy there, not as a deal missing in that CRM. What the CRM chose itself (an owner it
did not know, a derived probability) comes with the pull.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from mapping.model import Deal, DealStatus, Money, Ref
from sync.audit_values import moves_to, restorable
from sync.store import Store
from sync.store_records import AuditEntry, copied_from

__all__ = ["created_copy", "overlaid", "with_known_writes"]

_PLAIN = ("name", "close_date", "owner_email", "probability")


def with_known_writes(
    store: Store,
    by_instance: Mapping[str, list[Deal]],
    written: Mapping[str, Mapping[str, Mapping[str, str]]],
    unread_since: Mapping[str, datetime] | None = None,
    funnels: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[Deal]]:
    """`by_instance` with the audited writes newer than each snapshot applied, and the copies
    created and not yet pulled added. `written`: instance -> pipeline -> funnel stage -> the
    native stage a write of it lands in (`Config.stages_written`).

    `unread_since` (instance -> moment): only copies created from then on are added. A pull
    that did not find an older one will not (deleted before it was read); left out, its entity
    lacks it again, as it does in the CRM. Every copy in an instance it does not name is
    added (no pull has read that instance since crmsync created its copies).

    `funnels` (instance -> pipeline -> funnel name, `pipeline_funnels`): the funnel of a deal a
    write moved to another pipeline (push.move_between_pipelines) is that pipeline's."""
    writes: dict[Ref, list[AuditEntry]] = defaultdict(list)
    for entry in store.audit.after_snapshots(list(by_instance)):
        if entry.deal_id is not None:
            writes[Ref(entry.instance, entry.deal_id)].append(entry)
    out = {
        instance: [
            overlaid(d, writes[d.ref], (funnels or {}).get(instance)) if d.ref in writes else d
            for d in deals
        ]
        if writes
        else list(deals)
        for instance, deals in by_instance.items()
    }
    creates = store.audit.unread_creates(list(by_instance))
    if unread_since is not None:
        creates = [
            e
            for e in creates
            if e.instance not in unread_since
            or (e.at is not None and e.at >= unread_since[e.instance])
        ]
    if creates:
        sources = {d.ref: d for deals in out.values() for d in deals}
        copies: dict[Ref, Deal] = {}  # one copy per record, should its create be audited twice
        for entry in creates:
            copy = created_copy(entry, sources, written.get(entry.instance, {}))
            if copy is not None:
                copies[copy.ref] = copy
        for ref, copy in copies.items():
            out[ref.system].append(copy)
    return out


def created_copy(
    entry: AuditEntry, sources: Mapping[Ref, Deal], stages: Mapping[str, Mapping[str, str]]
) -> Deal | None:
    """The copy an audited create made, from its source deal as stored (None when `entry` is no
    create, or its source is not stored); `stages`: pipeline -> funnel stage -> native stage."""
    after = entry.after
    if not isinstance(after, Mapping) or entry.deal_id is None or entry.at is None:
        return None
    source = sources.get(copied_from(after))
    if source is None or not isinstance(after.get("link_id"), str):
        return None
    values = after.get("values")
    written = [
        AuditEntry(entry.run_id, entry.instance, entry.deal_id, field, None, value, "", entry.at)
        for field, value in (values.items() if isinstance(values, Mapping) else ())
    ]
    copy = overlaid(source, written)
    if isinstance(values, Mapping) and "owner_email" not in values:
        copy = dataclasses.replace(copy, owner_email=None)  # the CRM chose one
    pipeline, native = _native_stage(stages, copy.stage)
    return dataclasses.replace(
        copy,
        ref=Ref(entry.instance, entry.deal_id),
        pipeline=pipeline,
        native_stage=native,
        created_at=entry.at,
        updated_at=entry.at,
        stage_entered_at=entry.at,
        stage_history=(),
        external_ids={source.system: source.id},
        link_id=str(after["link_id"]),
        extra={},
    )


def _native_stage(stages: Mapping[str, Mapping[str, str]], stage: str | None) -> tuple[str, str]:
    """(pipeline, native stage): where the first pipeline writes `stage`, else empty."""
    for pipeline, keys in stages.items():
        if stage is not None and stage in keys:
            return pipeline, keys[stage]
    return "", ""


def overlaid(
    deal: Deal, writes: Sequence[AuditEntry], funnels: Mapping[str, str] | None = None
) -> Deal:
    """`deal` with the after-values of `writes` (oldest first) over it. An entry whose value
    cannot be read is left out: the snapshot keeps that field until the next pull. A stage
    write that moved the deal to another pipeline takes it to that pipeline's funnel, where
    `funnels` (pipeline -> funnel name) is given."""
    changes: dict[str, Any] = {}
    money: dict[str, Any] = {}
    native_currency: str | None = None
    latest = deal.updated_at
    for entry in writes:
        field = entry.field or ""
        try:
            value, native = restorable(field, entry.after)
        except ValueError:
            continue
        if field in _PLAIN:
            changes[field] = value
        elif field == "status":
            changes["status"] = DealStatus(value) if value is not None else deal.status
        elif field == "stage":
            changes["stage"] = value
            if native is not None and native.native_stage is not None:
                changes["native_stage"] = native.native_stage
                changes["pipeline"] = native.pipeline or deal.pipeline
                if funnels is not None and _moved_by(entry) == changes["pipeline"]:
                    changes["funnel"] = funnels.get(changes["pipeline"], "default")
        elif field in ("amount", "currency"):
            money[field] = value
            if field == "currency" and native is not None:
                native_currency = native.currency
        else:
            continue
        if entry.at is not None and entry.at > latest:
            latest = entry.at
    if money:
        changes["value"] = _money(deal.value, money)
    if native_currency is not None and changes.get("value") is None:
        changes["extra"] = {**deal.extra, "native_currency": native_currency}
    return dataclasses.replace(deal, **changes, updated_at=latest)


def _moved_by(entry: AuditEntry) -> str | None:
    """The pipeline the audited stage write moved its deal to (push.move_between_pipelines, or
    the rollback of such a move); None: it moved it to no other one."""
    try:
        return moves_to(entry.before)
    except ValueError:
        return None


def _money(held: Money | None, written: Mapping[str, Any]) -> Money | None:
    """The deal's Money once its amount and/or currency were written (no amount: no Money)."""
    amount: Decimal | None = written.get("amount", held.amount if held else None)
    currency: str | None = written.get("currency", held.currency if held else None)
    if amount is None:
        return None
    if currency is None:  # an amount written without a currency keeps the one the deal has
        return None if held is None else Money(amount, held.currency)
    return Money(amount, currency)
