"""Flags of the deals the next incremental reconcile must look at again: set by the writes
that change a deal (in their own transaction), read and settled by an analysis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Engine

from sync import schema as t
from sync.schema import lock_flags, transaction, upsert_rows

__all__ = ["flag_deals", "read_pending", "settle_flags"]

# keys, columns updated, columns given: a flag is (instance, deal id, when it was flagged)
_PENDING = (("instance", "deal_id"), ("marked_at",), ("instance", "deal_id", "marked_at"))


def flag_deals(conn: Connection, instance: str, ids: Sequence[str], now: datetime) -> int:
    if ids:
        lock_flags(conn)
        rows = ((instance, i, now) for i in ids)
        upsert_rows(conn, t.pending, *_PENDING, rows)
    return len(ids)


def read_pending(engine: Engine) -> dict[tuple[str, str], datetime]:
    query = select(t.pending.c.instance, t.pending.c.deal_id, t.pending.c.marked_at)
    with transaction(engine, write=False) as conn:
        return {(r.instance, r.deal_id): r.marked_at for r in conn.execute(query)}


def settle_flags(
    conn: Connection,
    consumed: Mapping[tuple[str, str], datetime],
    unsettled: Iterable[tuple[str, str]],
    now: datetime,
) -> None:
    """Drop the flags an analysis read (unless flagged again since), flag what it left
    unsettled."""
    # Flags that stay are left as they are: a run re-flagging most of what it read
    # (permanently unmatched deals) then writes next to nothing.
    keep = set(unsettled)
    drop = [(ref, m) for ref, m in consumed.items() if ref not in keep]
    add = sorted(keep - consumed.keys())
    lock_flags(conn)
    if drop:
        conn.execute(
            t.pending.delete().where(
                t.pending.c.instance == bindparam("p_instance"),
                t.pending.c.deal_id == bindparam("p_deal_id"),
                t.pending.c.marked_at == bindparam("p_marked_at"),
            ),
            [{"p_instance": i, "p_deal_id": d, "p_marked_at": m} for (i, d), m in drop],
        )
    upsert_rows(conn, t.pending, *_PENDING, ((i, d, now) for i, d in add))
