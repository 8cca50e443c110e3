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
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from mapping.model import Deal, DealStatus, Money, Ref
from sync.audit_values import restorable
from sync.store import Store
from sync.store_records import AuditEntry

__all__ = ["overlaid", "with_known_writes"]

_PLAIN = ("name", "close_date", "owner_email", "probability")


def with_known_writes(store: Store, by_instance: Mapping[str, list[Deal]]) -> dict[str, list[Deal]]:
    """`by_instance` with the audited writes newer than each snapshot applied."""
    writes: dict[Ref, list[AuditEntry]] = defaultdict(list)
    for entry in store.audit.after_snapshots(list(by_instance)):
        if entry.deal_id is not None:
            writes[Ref(entry.instance, entry.deal_id)].append(entry)
    if not writes:
        return dict(by_instance)
    return {
        instance: [overlaid(d, writes[d.ref]) if d.ref in writes else d for d in deals]
        for instance, deals in by_instance.items()
    }


def overlaid(deal: Deal, writes: Sequence[AuditEntry]) -> Deal:
    """`deal` with the after-values of `writes` (oldest first) over it. An entry whose value
    cannot be read is left out: the snapshot keeps that field until the next pull."""
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


def _money(held: Money | None, written: Mapping[str, Any]) -> Money | None:
    """The deal's Money once its amount and/or currency were written (no amount: no Money)."""
    amount: Decimal | None = written.get("amount", held.amount if held else None)
    currency: str | None = written.get("currency", held.currency if held else None)
    if amount is None:
        return None
    if currency is None:  # an amount written without a currency keeps the one the deal has
        return None if held is None else Money(amount, held.currency)
    return Money(amount, currency)
