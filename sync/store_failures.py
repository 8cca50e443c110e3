"""The store's dead-letter list: the records a CRM keeps refusing, ``dead`` once their attempts
reach the caller's maximum.

Reached through a :class:`sync.store.Store` as ``store.failures``; each public method is one
transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, Row

from sync import schema as t
from sync.schema import transaction
from sync.store_records import FailureRecord, one_line

__all__ = ["DeadLetters"]

Clock = Callable[[], datetime]


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
