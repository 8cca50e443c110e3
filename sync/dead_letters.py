"""Dead letters: the changes a CRM kept refusing, no longer sent (sync/apply.py), listed with
the value last tried, and released by a person once the cause is fixed in the CRM.

A released dead letter is forgotten: the next apply of a plan holding its change sends it
again, its attempts counted from the start (`push.max_attempts`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from sync import schema as t
from sync.errors import UsageError
from sync.schema import chunks, transaction
from sync.store import Store
from sync.store_records import FailureRecord, JournalState

__all__ = ["DeadLetter", "check_selection", "dead_letters", "release"]

_IN_LIMIT = 500


@dataclass(frozen=True)
class DeadLetter:
    """A failure as stored, with the value crmsync last tried to write (as journaled; None when
    the journal holds no failed write of it)."""

    failure: FailureRecord
    tried: Any


def dead_letters(
    store: Store, *, instance: str | None = None, retrying: bool = False
) -> list[DeadLetter]:
    """The dead letters (with `retrying`, also the failures still retried), by instance, record
    and field."""
    failures = store.failures.records(dead=None if retrying else True, instance=instance)
    tried = _tried_values(store, failures)
    return [DeadLetter(f, tried.get((f.instance, f.deal_id, f.field))) for f in failures]


def _tried_values(
    store: Store, failures: Sequence[FailureRecord]
) -> dict[tuple[str, str, str], Any]:
    """(instance, deal id, field) -> the value of its latest failed write in the journal."""
    wanted = {(f.instance, f.deal_id, f.field) for f in failures}
    by_instance: dict[str, set[str]] = {}
    for instance, deal_id, _ in wanted:
        by_instance.setdefault(instance, set()).add(deal_id)
    j = t.journal.c
    found: dict[tuple[str, str, str], tuple[Any, Any]] = {}
    with transaction(store.engine, write=False) as conn:
        for instance, ids in sorted(by_instance.items()):
            query = select(j.deal_id, j.field, j.after, j.updated_at, j.run_id, j.seq).where(
                j.instance == instance, j.state == JournalState.FAILED.value
            )
            # The journal has no index by record: a few ids are one query, more are one read
            # of the instance's failed writes (never a scan per batch of ids).
            if len(ids) <= _IN_LIMIT:
                query = query.where(j.deal_id.in_(ids))
            for row in conn.execute(query):
                key = (instance, row.deal_id, row.field or "")
                order = (row.updated_at, row.run_id, row.seq)
                if key in wanted and (key not in found or found[key][0] < order):
                    found[key] = (order, row.after)
    return {key: value for key, (_, value) in found.items()}


def check_selection(
    store: Store, known: Collection[str], instance: str, ids: Iterable[str]
) -> None:
    """Refuse (exit 2) an instance neither configured nor holding failures, or ids that are
    not dead letters of it: a typo must not release nothing and say it is done."""
    if instance not in known and not store.failures.records(instance=instance):
        names = ", ".join(sorted(known))
        raise UsageError(f"unknown instance {instance!r}: the config names {names}")
    wanted = sorted(set(ids))
    if not wanted:
        return
    dead = {f.deal_id for f in store.failures.records(dead=True, instance=instance)}
    missing = [i for i in wanted if i not in dead]
    if missing:
        raise UsageError(
            f"no dead letter for {instance} record {', '.join(missing)}; "
            f"`crmsync dead-letters --instance {instance}` lists them"
        )


def release(store: Store, selection: Mapping[str, Collection[str] | None]) -> dict[str, int]:
    """Forget the dead letters of each instance (of only the records named, when a collection
    is given), in one transaction; returns how many each instance had released."""
    f = t.failures.c
    released: dict[str, int] = {}
    with transaction(store.engine) as conn:
        for instance, ids in selection.items():
            count = 0
            if ids is None:
                stmt = t.failures.delete().where(f.instance == instance, f.dead.is_(True))
                count = int(conn.execute(stmt).rowcount)
            else:
                for part in chunks(sorted(set(ids)), _IN_LIMIT):
                    stmt = t.failures.delete().where(
                        f.instance == instance, f.dead.is_(True), f.deal_id.in_(part)
                    )
                    count += int(conn.execute(stmt).rowcount)
            released[instance] = count
    return released
