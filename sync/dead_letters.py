"""Dead letters: the changes a CRM kept refusing, no longer sent (sync/apply.py), listed with
the value last tried, and released by a person once the cause is fixed in the CRM.

A released dead letter is forgotten: the next apply of a plan holding its change sends it
again, its attempts counted from the start (`push.max_attempts`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from mapping.model import CANONICAL_FIELDS
from sync.errors import UsageError
from sync.store import Store
from sync.store_records import FailureRecord

__all__ = ["DeadLetter", "check_fields", "check_selection", "dead_letters"]


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
    tried = store.failures.last_tried(failures)
    return [DeadLetter(f, tried.get((f.instance, f.deal_id, f.field))) for f in failures]


def check_fields(fields: Iterable[str]) -> None:
    """Refuse (exit 2) a name that is no canonical deal field: no dead letter could have it."""
    unknown = sorted(set(fields) - set(CANONICAL_FIELDS))
    if unknown:
        raise UsageError(
            f"unknown field {', '.join(map(repr, unknown))}: dead letters are of the deal fields "
            f"{', '.join(CANONICAL_FIELDS)}"
        )


def check_selection(
    store: Store,
    known: Collection[str],
    instance: str,
    ids: Iterable[str],
    fields: Collection[str] = (),
) -> None:
    """Refuse (exit 2) an instance neither configured nor holding failures, or ids that are
    not dead letters of it (of one of `fields`, when given): a typo must not release nothing
    and say it is done."""
    if instance not in known and not store.failures.records(instance=instance):
        names = ", ".join(sorted(known))
        raise UsageError(f"unknown instance {instance!r}: the config names {names}")
    wanted = sorted(set(ids))
    if not wanted:
        return
    dead = {
        f.deal_id
        for f in store.failures.records(dead=True, instance=instance)
        if not fields or f.field in fields
    }
    missing = [i for i in wanted if i not in dead]
    if missing:
        of = f" field {', '.join(sorted(set(fields)))}" if fields else ""
        raise UsageError(
            f"no dead letter for {instance} record {', '.join(missing)}{of}; "
            f"`crmsync dead-letters --instance {instance}` lists them"
        )
