"""Deal snapshots: the rows a pull writes (only the deals that changed), deletions marked in
the snapshot too, and the reads of the stored deals. The writes run inside the store's own
transactions, with the cursor, gaps and flags that go with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, false, func, or_, select, true
from sqlalchemy.engine import Connection, Engine

from sync import schema as t
from sync.schema import chunks, json_loads, transaction, upsert
from sync.store_accounts import account_id_of
from sync.store_records import check_no_secrets

__all__ = [
    "BATCH_SIZE",
    "DealRow",
    "count_deals",
    "deal_rows",
    "iter_payloads",
    "mark_chunk_deleted",
    "read_deals",
    "read_deletion_marks",
    "read_fingerprints",
    "read_live_ids",
    "upsert_changed",
]

# (id, fingerprint, updated_at, deleted, canonical deal as JSON-able dict)
DealRow = tuple[str, str, datetime | None, bool, Mapping[str, Any]]

BATCH_SIZE = 1000


def _deleted(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {**payload, "extra": {**(payload.get("extra") or {}), "deleted": True}}


def deal_rows(instance: str, chunk: Sequence[DealRow], run_id: str | None) -> list[dict[str, Any]]:
    """The rows of `upsert_changed` for deals of the instance, each checked for secrets."""
    rows = []
    for deal_id, fingerprint, updated_at, deleted, payload in chunk:
        check_no_secrets(payload, f"deal {instance}/{deal_id}")
        rows.append(
            {
                "instance": instance,
                "id": deal_id,
                "fingerprint": fingerprint,
                "updated_at": updated_at,
                "deleted": bool(deleted),
                "last_seen_run": run_id,
                "payload": payload,
                "account_id": account_id_of(payload),
            }
        )
    return rows


def upsert_changed(conn: Connection) -> Any:
    """Upsert deals, returning the ids written: a stored deal whose payload (as written, JSON
    text) and deleted state are the same is left as it is. The database compares: reading the
    rows back first cost PostgreSQL a scan per page of a table without statistics yet."""

    def changed(excluded: Any) -> Any:
        return or_(
            cast(t.deals.c.payload, Text) != cast(excluded.payload, Text),
            t.deals.c.deleted != excluded.deleted,
        )

    written = ("fingerprint", "updated_at", "deleted", "last_seen_run", "payload", "account_id")
    stmt = upsert(conn, t.deals, ("instance", "id"), written, where=changed)
    return stmt.returning(t.deals.c.id)


def mark_chunk_deleted(
    conn: Connection, instance: str, chunk: Sequence[str], run_id: str | None
) -> int:
    """Mark the live deals of `chunk` deleted, in their snapshot too; returns how many."""
    live = (
        select(t.deals.c.id, t.deals.c.payload)
        .where(
            t.deals.c.instance == instance,
            t.deals.c.id.in_(chunk),
            t.deals.c.deleted == false(),
        )
        .order_by(t.deals.c.id)
    )
    rows = [{"p_id": r.id, "p_payload": _deleted(r.payload)} for r in conn.execute(live)]
    if rows:
        stmt = (
            t.deals.update()
            .where(t.deals.c.instance == instance, t.deals.c.id == bindparam("p_id"))
            .values(deleted=true(), last_seen_run=run_id, payload=bindparam("p_payload"))
        )
        conn.execute(stmt, rows)
    return len(rows)


def iter_payloads(
    engine: Engine, instance: str, include_deleted: bool, batch_size: int
) -> Iterator[dict[str, Any]]:
    # Read as text and decoded here, as the JSON type would: its per-row processing took
    # as long as the decoding.
    query = select(cast(t.deals.c.payload, Text)).where(t.deals.c.instance == instance)
    if not include_deleted:
        query = query.where(t.deals.c.deleted == false())
    query = query.order_by(t.deals.c.id)
    with transaction(engine, write=False) as conn:
        result = conn.execute(query, execution_options={"yield_per": batch_size})
        # Whole partitions, not rows: per-row Result iteration costs more than the fetch.
        for partition in result.scalars().partitions():
            yield from map(json_loads, partition)


def read_deals(engine: Engine, instance: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    with transaction(engine, write=False) as conn:
        for chunk in chunks(ids, BATCH_SIZE):
            query = select(t.deals.c.id, t.deals.c.payload).where(
                t.deals.c.instance == instance, t.deals.c.id.in_(chunk)
            )
            found.update((r.id, r.payload) for r in conn.execute(query))
    return found


def read_deletion_marks(
    engine: Engine, refs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str | None, datetime | None]]:
    wanted: dict[str, list[str]] = {}
    for instance, deal_id in sorted(set(refs)):
        wanted.setdefault(instance, []).append(deal_id)
    d, r = t.deals.c, t.runs.c
    found: dict[tuple[str, str], tuple[str | None, datetime | None]] = {}
    with transaction(engine, write=False) as conn:
        for instance, ids in wanted.items():
            for chunk in chunks(ids, BATCH_SIZE):
                query = (
                    select(d.id, d.last_seen_run, r.started_at)
                    .select_from(t.deals.outerjoin(t.runs, r.id == d.last_seen_run))
                    .where(d.instance == instance, d.id.in_(chunk), d.deleted == true())
                )
                for row in conn.execute(query):
                    found[instance, row.id] = (row.last_seen_run, row.started_at)
    return found


def read_fingerprints(engine: Engine, instance: str) -> dict[str, str]:
    query = select(t.deals.c.id, t.deals.c.fingerprint).where(t.deals.c.instance == instance)
    with transaction(engine, write=False) as conn:
        rows = conn.execute(query, execution_options={"yield_per": BATCH_SIZE * 10})
        return {r.id: r.fingerprint for r in rows}


def read_live_ids(engine: Engine, instance: str) -> set[str]:
    d = t.deals.c
    query = select(d.id).where(d.instance == instance, d.deleted == false())
    with transaction(engine, write=False) as conn:
        rows = conn.execute(query, execution_options={"yield_per": BATCH_SIZE * 10})
        return {r.id for r in rows}


def count_deals(engine: Engine, instance: str, include_deleted: bool) -> int:
    query = select(func.count()).select_from(t.deals).where(t.deals.c.instance == instance)
    if not include_deleted:
        query = query.where(t.deals.c.deleted == false())
    with transaction(engine, write=False) as conn:
        return int(conn.execute(query).scalar_one())
