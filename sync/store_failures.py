"""The store's dead-letter list: the records a CRM keeps refusing, ``dead`` once their attempts
reach the caller's maximum.

Reached through a :class:`sync.store.Store` as ``store.failures``; each public method is one
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row

from mapping.model import Ref
from sync import schema as t
from sync.schema import chunks, transaction
from sync.store_records import FailureRecord, JournalOp, JournalState, copied_from, one_line

__all__ = ["DeadLetters", "TriedCopy", "forget_failures"]

Clock = Callable[[], datetime]
_IN_LIMIT = 500


@dataclass(frozen=True, slots=True)
class TriedCopy:
    """A refused create as journaled: the deal it copies, and the digest of what it carried
    (`carried`: `sync.copy_digest.create_digest`), or, journaled before crmsync recorded that,
    of its source and values alone (`content`: `values_digest`); None where neither was."""

    source: Ref
    content: str | None
    carried: str | None = None


class DeadLetters:
    """Records that keep failing; ``dead`` once ``attempts`` reaches the caller's maximum."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine, self._clock = engine, clock

    def record(
        self, instance: str, deal_id: str, field: str | None, reason: str, *, max_attempts: int = 5
    ) -> FailureRecord:
        now = self._clock()
        key = {"instance": instance, "deal_id": deal_id, "field": field or ""}
        line = one_line(reason) or ""
        with transaction(self._engine) as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(t.failures).values(
                **key,
                reason=line,
                attempts=1,
                first_seen=now,
                last_seen=now,
                dead=max_attempts <= 1,
            )
            # Incremented in the database so concurrent workers never lose an attempt.
            stmt = stmt.on_conflict_do_update(
                index_elements=["instance", "deal_id", "field"],
                set_={
                    "reason": stmt.excluded.reason,
                    "attempts": t.failures.c.attempts + 1,
                    "last_seen": stmt.excluded.last_seen,
                    "dead": t.failures.c.attempts + 1 >= max_attempts,
                },
            )
            conn.execute(stmt)
            row = conn.execute(select(t.failures).filter_by(**key)).one()
        return _failure(row)

    def clear(self, instance: str, deal_id: str, field: str | None = None) -> bool:
        """Forget a failure (the record finally went through)."""
        with transaction(self._engine) as conn:
            stmt = t.failures.delete().filter_by(
                instance=instance, deal_id=deal_id, field=field or ""
            )
            return bool(conn.execute(stmt).rowcount)

    def records(
        self, *, dead: bool | None = None, instance: str | None = None
    ) -> list[FailureRecord]:
        query = select(t.failures).order_by(
            t.failures.c.instance, t.failures.c.deal_id, t.failures.c.field
        )
        if dead is not None:
            query = query.where(t.failures.c.dead == dead)
        if instance is not None:
            query = query.where(t.failures.c.instance == instance)
        with transaction(self._engine, write=False) as conn:
            return [_failure(r) for r in conn.execute(query)]

    def last_tried(self, failures: Sequence[FailureRecord]) -> dict[tuple[str, str, str], Any]:
        """(instance, deal id, field) -> the value of the latest failed write of each of
        `failures` the journal holds (none: not in the result)."""
        wanted = {(f.instance, f.deal_id, f.field) for f in failures}
        by_instance: dict[str, set[str]] = {}
        for instance, deal_id, _ in wanted:
            by_instance.setdefault(instance, set()).add(deal_id)
        j = t.journal.c
        found: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        with transaction(self._engine, write=False) as conn:
            for instance, ids in sorted(by_instance.items()):
                query = select(j.deal_id, j.field, j.after, j.updated_at, j.run_id, j.seq).where(
                    j.instance == instance, j.state == JournalState.FAILED.value
                )
                # The journal has no index by record: a few ids are one query, more are one
                # read of the instance's failed writes (never a scan per batch of ids).
                if len(ids) <= _IN_LIMIT:
                    query = query.where(j.deal_id.in_(ids))
                for row in conn.execute(query):
                    key = (instance, row.deal_id, row.field or "")
                    order = (row.updated_at, row.run_id, row.seq)
                    if key in wanted and (key not in found or found[key][0] < order):
                        found[key] = (order, row.after)
        return {key: value for key, (_, value) in found.items()}

    def copies_tried(
        self, creates: Mapping[str, Mapping[str, str]]
    ) -> dict[tuple[str, str], TriedCopy]:
        """instance -> {create change id -> entity id} of refused copies: (instance, entity id)
        -> the latest failed create of each the journal holds."""
        j = t.journal.c
        found: dict[tuple[str, str], tuple[Any, TriedCopy]] = {}
        with transaction(self._engine, write=False) as conn:
            for instance, by_change in sorted(creates.items()):
                query = select(j.plan_change_id, j.after, j.updated_at, j.run_id, j.seq).where(
                    j.instance == instance,
                    j.op == JournalOp.CREATE.value,
                    j.state == JournalState.FAILED.value,
                )
                # As in last_tried: a few ids are one query, more one read of the instance's
                # failed creates (never a scan per batch of ids).
                if len(by_change) <= _IN_LIMIT:
                    query = query.where(j.plan_change_id.in_(sorted(by_change)))
                for row in conn.execute(query):
                    entity = by_change.get(row.plan_change_id)
                    if entity is None or not (row.after or {}).get("source"):
                        continue
                    key, order = (instance, entity), (row.updated_at, row.run_id, row.seq)
                    if key not in found or found[key][0] < order:
                        after = row.after
                        tried = TriedCopy(
                            copied_from(after), after.get("content"), after.get("carried")
                        )
                        found[key] = (order, tried)
        return {key: source for key, (_, source) in found.items()}

    def release(
        self, selection: Mapping[str, Collection[str] | None], fields: Collection[str] = ()
    ) -> dict[str, int]:
        """Forget the dead letters of each instance (of only the records named, when a
        collection is given; of only `fields`, when given), in one transaction; returns how many
        each instance had released. Failures still retried stay."""
        f = t.failures.c
        of_fields = [f.field.in_(sorted(set(fields)))] if fields else []
        released: dict[str, int] = {}
        with transaction(self._engine) as conn:
            for instance, ids in selection.items():
                dead = t.failures.delete().where(
                    f.instance == instance, f.dead.is_(True), *of_fields
                )
                if ids is None:
                    released[instance] = int(conn.execute(dead).rowcount)
                    continue
                count = 0
                for part in chunks(sorted(set(ids)), _IN_LIMIT):
                    count += int(conn.execute(dead.where(f.deal_id.in_(part))).rowcount)
                released[instance] = count
        return released


def forget_failures(conn: Connection, failures: Sequence[FailureRecord]) -> int:
    """Delete `failures` on `conn` (the caller's transaction), each only as it was read: one
    refused again since (its `last_seen` moved) stays. Returns how many went."""
    if not failures:
        return 0
    f = t.failures.c
    stmt = t.failures.delete().where(
        f.instance == bindparam("f_instance"),
        f.deal_id == bindparam("f_deal_id"),
        f.field == bindparam("f_field"),
        f.last_seen == bindparam("f_last_seen"),
    )
    rows = [
        {"f_instance": r.instance, "f_deal_id": r.deal_id, "f_field": r.field or "",
         "f_last_seen": r.last_seen}
        for r in failures
    ]  # fmt: skip
    return int(conn.execute(stmt, rows).rowcount)


def _failure(r: Row[Any]) -> FailureRecord:
    return FailureRecord(
        instance=r.instance,
        deal_id=r.deal_id,
        field=r.field,
        reason=r.reason,
        attempts=r.attempts,
        first_seen=r.first_seen,
        last_seen=r.last_seen,
        dead=bool(r.dead),
    )
