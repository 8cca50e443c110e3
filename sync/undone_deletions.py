"""Deletions crmsync spread (push.propagate_deletes) that someone undid since, by restoring a
deal from its CRM's recycle bin: the plan propagates nothing onto a restored deal and says
which deals to restore where."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from sync.plan import Plan
from sync.store_records import AuditEntry

__all__ = ["undone_deletions"]


def undone_deletions(
    plan: Plan,
    ours: Mapping[tuple[str, str], AuditEntry],
    marks: Mapping[tuple[str, str], tuple[str | None, datetime | None]],
) -> Plan:
    """Entities where a deletion crmsync spread (push.propagate_deletes) was undone since,
    restored from a recycle bin: the deal whose deletion it followed (every deleted member is
    one crmsync deleted), or one crmsync deleted (a live member it deleted, while the deletion
    it followed stands). Nothing is propagated onto a restored deal; the entry says which
    deals to restore where.

    `ours`: (instance, deal id) -> crmsync's audited delete of it; `marks`: the run (and its
    start) that marked each deleted member deleted (Store.deletion_marks). A deleted member is
    crmsync's deletion only while the run that deleted it is the one that marked it: restored
    and deleted again by someone, it is theirs. Only entries the diff made (no reason yet):
    their deals are linked members, which a propagated delete keeps and a rollback's forgets,
    so none of them is a copy a rollback deleted."""

    def ours_now(ref: tuple[str, str]) -> bool:
        return ref in ours and marks.get(ref, (None, None))[0] == ours[ref].run_id

    def seen_by(ref: tuple[str, str], moment: datetime | None) -> bool:
        seen = marks.get(ref, (None, None))[1]
        return seen is not None and moment is not None and seen <= moment

    deleted = []
    for item in plan.deleted:
        gone = [(str(g["system"]), str(g["id"])) for g in item["deleted"]]
        live = [(str(r["system"]), str(r["id"])) for r in item["live"]]
        # deleted by crmsync following these very deletions (seen before it deleted them)
        back = [
            ref
            for ref in live
            if ref in ours and all(ours_now(g) or seen_by(g, ours[ref].at) for g in gone)
        ]
        if "reason" in item or not gone or not (back or all(ours_now(g) for g in gone)):
            deleted.append(item)
            continue
        runs = ", ".join(sorted({ours[ref].run_id for ref in (*gone, *back) if ref in ours}))
        named = ", ".join(f"{system} {deal_id}" for system, deal_id in gone)
        undone = (
            f"crmsync deleted {', '.join(f'{s} {i}' for s, i in back)} (run {runs}), restored since"
            if back
            else f"deleted by crmsync (run {runs}) after a deletion that was undone since"
        )
        why = (
            f"{undone}; not propagated: restore {named} from the recycle bin, or delete the "
            "live deals"
        )
        deleted.append({**item, "propagate": False, "reason": why})
    return dataclasses.replace(plan, deleted=tuple(deleted))
