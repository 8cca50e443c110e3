"""Data gaps: the records each CRM holds that crmsync cannot map, as of the latest pulls.

Kept per (instance, record id), so a bad record stays reported until it is fixed or deleted in
its CRM, however many incremental pulls (which read only changed records) pass over it. The
writes run inside the store's own transactions: the set moves together with the deals and the
cursor a pull saves, so a crash never loses a gap the next incremental pull would not see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from sync import schema as t
from sync.schema import chunks, transaction, upsert
from sync.store_records import check_no_secrets, one_line

__all__ = ["clear_gaps", "read_gaps", "record_gaps"]

_BATCH = 1000


def clear_gaps(conn: Connection, instance: str, ids: Iterable[str]) -> None:
    """These records mapped (or were deleted): they are no longer gaps."""
    table = t.mapping_errors
    for chunk in chunks(ids, _BATCH):
        conn.execute(table.delete().where(table.c.instance == instance, table.c.deal_id.in_(chunk)))


def record_gaps(
    conn: Connection,
    instance: str,
    errors: Sequence[Mapping[str, str]],
    now: datetime,
    *,
    replace: bool,
) -> None:
    """Add (or, `replace`: make these the whole set of) the instance's unmappable records.

    `errors` are `MappingError.as_dict()` values; one record keeps its latest error."""
    table = t.mapping_errors
    latest: dict[str, dict[str, object]] = {}
    for error in errors:
        check_no_secrets(error, f"mapping error of {instance}")
        deal_id = str(error.get("id") or "?")
        latest[deal_id] = {
            "instance": instance,
            "deal_id": deal_id,
            "field": one_line(str(error.get("field") or ""), 200) or "",
            "reason": one_line(str(error.get("reason") or "")) or "",
            "seen_at": now,
        }
    if replace:
        conn.execute(table.delete().where(table.c.instance == instance))
    stmt = upsert(conn, table, ("instance", "deal_id"), ("field", "reason", "seen_at"))
    for rows in chunks([latest[i] for i in sorted(latest)], _BATCH):  # id order: no deadlock
        conn.execute(stmt, rows)


def read_gaps(engine: Engine, instances: Iterable[str] | None = None) -> list[dict[str, str]]:
    """The current gaps as `{"system", "id", "field", "reason"}`, by instance then id."""
    table = t.mapping_errors
    query = select(table.c.instance, table.c.deal_id, table.c.field, table.c.reason)
    if instances is not None:
        query = query.where(table.c.instance.in_(list(instances)))
    query = query.order_by(table.c.instance, table.c.deal_id)
    with transaction(engine, write=False) as conn:
        return [
            {"system": r.instance, "id": r.deal_id, "field": r.field, "reason": r.reason}
            for r in conn.execute(query)
        ]
