"""Dead letters: the changes a CRM kept refusing, no longer sent (sync/apply.py), and the
copies it kept refusing to create (sync/apply_creates.py: under the entity id, no field),
listed with the value last tried (a copy: the deal it copies), and released by a person once
the cause is fixed in the CRM.

A released dead letter is forgotten: the next apply of a plan holding its change sends it
again, its attempts counted from the start (`push.max_attempts`). One whose write a reconcile's
plan no longer holds (the CRMs agree now) is forgotten by that reconcile (sync/stale_letters.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from mapping.links import api_id
from mapping.model import CANONICAL_FIELDS, Ref
from sync.apply_creates import create_change_id
from sync.errors import UsageError
from sync.store import Store
from sync.store_failures import TriedCopy
from sync.store_records import FailureRecord

__all__ = ["DeadLetter", "check_fields", "check_selection", "copies_tried", "dead_letters"]


@dataclass(frozen=True)
class DeadLetter:
    """A failure as stored, with the value crmsync last tried to write (as journaled; None when
    the journal holds no failed write of it); of a copy refused (a whole record's failure), the
    deal it copies (`copy_of`, as journaled; None when the journal holds no failed create)."""

    failure: FailureRecord
    tried: Any
    copy_of: Ref | None = None


def dead_letters(
    store: Store, *, instance: str | None = None, retrying: bool = False
) -> list[DeadLetter]:
    """The dead letters (with `retrying`, also the failures still retried), by instance, record
    and field."""
    failures = store.failures.records(dead=None if retrying else True, instance=instance)
    tried = store.failures.last_tried(failures)
    copies = copies_tried(store, failures)
    return [
        DeadLetter(
            f,
            tried.get((f.instance, f.deal_id, f.field)),
            copy.source if (copy := copies.get((f.instance, f.deal_id))) else None,
        )
        for f in failures
    ]


def copies_tried(
    store: Store, failures: Iterable[FailureRecord]
) -> dict[tuple[str, str], TriedCopy]:
    """(instance, entity id) -> the latest refused create the journal holds, of the `failures`
    of copies (a whole record's, under its entity id)."""
    creates: dict[str, dict[str, str]] = {}
    for f in failures:
        if not f.field:
            cid = create_change_id({"system": f.instance, "entity": f.deal_id})
            creates.setdefault(f.instance, {})[cid] = f.deal_id
    return store.failures.copies_tried(creates) if creates else {}


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
    *,
    kind: str = "",
) -> list[str]:
    """Refuse (exit 2) an instance neither configured nor holding failures, or ids that are
    not dead letters of it (of one of `fields`, when given): a typo must not release nothing
    and say it is done. Returns the ids as the store holds the letters: a deal id of a CRM of
    `kind` as a person typed it (a Salesforce one as its screens show it, 15 characters) names
    the letter of its API form (`mapping.links.api_id`), unless it names a letter as it is (a
    copy's, under its entity id)."""
    if instance not in known and not store.failures.records(instance=instance):
        names = ", ".join(sorted(known))
        raise UsageError(f"unknown instance {instance!r}: the config names {names}")
    wanted = sorted(set(ids))
    if not wanted:
        return []
    dead = {
        f.deal_id
        for f in store.failures.records(dead=True, instance=instance)
        if not fields or f.field in fields
    }
    stored = {i: i if i in dead else api_id(kind, i) for i in wanted}
    missing = [i for i in wanted if stored[i] not in dead]
    if missing:
        of = f" field {', '.join(sorted(set(fields)))}" if fields else ""
        raise UsageError(
            f"no dead letter for {instance} record {', '.join(missing)}{of}; "
            f"`crmsync dead-letters --instance {instance}` lists them"
        )
    return sorted(set(stored.values()))
