"""What the store holds of one CRM instance, and its removal (`crmsync forget`).

A retired instance's state is keyed by its name: deals, links, cursor, dead letters, data gaps,
the flags and match keys of the incremental reconcile, people's splits, its mapping
fingerprint. Removed, the name is free for another account. Entities the instance shared with
others stay with their other members and their bases (less the marks of its deals); those it
alone was in go with their bases. The audit log, the journal and the run history stay: they
are the record of what crmsync did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.engine import Connection

from mapping.model import Ref
from sync import schema as t
from sync.base_marks import LEFT_OUT, LEFT_OUT_WHY, PICKED
from sync.schema import chunks, upsert
from sync.split_fellows import linked_with, spread
from sync.store_meta import drop_reconcile_state, mapping_key, stage_names_key

__all__ = ["Holdings", "holdings", "known_instances", "purge", "without_marks_of"]

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Holdings:
    """Counts of what the store holds of one instance (nothing of a secret: names and counts)."""

    deals: int  # snapshots, those seen deleted included
    links: int
    entities_kept: int  # entities left with members of other instances: they stay
    entities_dropped: int  # entities of this instance alone: they go
    bases: int  # the bases of the entities that go
    dead_letters: int
    failing: int  # records still retried (failures not dead yet)
    data_gaps: int  # records its CRM held that could not be mapped
    pending: int  # deals flagged for the next incremental reconcile
    match_keys: int
    splits: int  # pairs of its deals a person split from others
    cursor: int  # 1: the instance has one
    mapping: int  # 1: it has the fingerprint of the mapping its deals were read under
    stage_names: int  # 1: it has the names of its stages its last pull read (`sync.stage_names`)
    audit: int  # entries of writes to it: kept

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def known_instances(conn: Connection) -> set[str]:
    """The instances the store holds state of (the audit alone, kept by a forget, is none)."""
    names: set[str] = set()
    for table in (t.deals, t.links, t.cursors, t.failures, t.mapping_errors, t.pending):
        names.update(conn.execute(select(table.c.instance).distinct()).scalars())
    return names


def _count(conn: Connection, table: t.Table, *where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0)


def without_marks_of(payload: Mapping[str, Any], instance: str) -> dict[str, Any]:
    """A stored base without its marks (sync/base_marks.py) of the instance's deals: a deal
    of another account given the name, joining the entity, would take them for its own."""
    out = dict(payload)
    for key in (LEFT_OUT, LEFT_OUT_WHY, PICKED):
        marks = payload.get(key)
        if not isinstance(marks, Mapping):
            continue
        kept = {f: [m for m in held if m[0] != instance] for f, held in marks.items()}
        kept = {f: held for f, held in kept.items() if held}
        if kept:
            out[key] = kept
        else:
            del out[key]
    return out


def _entities(conn: Connection, instance: str) -> tuple[list[str], list[str]]:
    """The entities the instance alone is in (they go), and those it shares (they stay)."""
    links = t.links.c
    mine = select(links.entity_id).where(links.instance == instance).distinct()
    shared = set(
        conn.execute(
            select(links.entity_id)
            .where(links.instance != instance, links.entity_id.in_(mine))
            .distinct()
        ).scalars()
    )
    alone = sorted(set(conn.execute(mine).scalars()) - shared)
    return alone, sorted(shared)


def holdings(conn: Connection, instance: str) -> Holdings:
    return _holdings(conn, instance, *_entities(conn, instance))


def _holdings(conn: Connection, instance: str, alone: list[str], shared: list[str]) -> Holdings:
    bases = 0
    for chunk in chunks(alone, _BATCH):
        bases += _count(conn, t.base, t.base.c.entity_id.in_(chunk))
    failures = t.failures.c
    splits = t.split_pairs.c
    mapped = select(t.meta.c.key).where(t.meta.c.key == mapping_key(instance))
    named = select(t.meta.c.key).where(t.meta.c.key == stage_names_key(instance))
    return Holdings(
        deals=_count(conn, t.deals, t.deals.c.instance == instance),
        links=_count(conn, t.links, t.links.c.instance == instance),
        entities_kept=len(shared),
        entities_dropped=len(alone),
        bases=bases,
        dead_letters=_count(conn, t.failures, failures.instance == instance, failures.dead),
        failing=_count(conn, t.failures, failures.instance == instance, ~failures.dead),
        data_gaps=_count(conn, t.mapping_errors, t.mapping_errors.c.instance == instance),
        pending=_count(conn, t.pending, t.pending.c.instance == instance),
        match_keys=_count(conn, t.match_keys, t.match_keys.c.instance == instance),
        splits=_count(
            conn, t.split_pairs, or_(splits.instance_a == instance, splits.instance_b == instance)
        ),
        cursor=_count(conn, t.cursors, t.cursors.c.instance == instance),
        mapping=int(conn.execute(mapped).first() is not None),
        stage_names=int(conn.execute(named).first() is not None),
        audit=_count(conn, t.audit, t.audit.c.instance == instance),
    )


def purge(conn: Connection, instance: str) -> Holdings:
    """Remove what the store holds of `instance` in the caller's transaction (one: cut short,
    nothing is removed); returns what there was."""
    alone, shared = _entities(conn, instance)
    held = _holdings(conn, instance, alone, shared)
    _carry_splits(conn, instance)  # before its links go: they say what its deals were linked to
    for table in (t.deals, t.links, t.cursors, t.failures, t.mapping_errors, t.pending):
        conn.execute(table.delete().where(table.c.instance == instance))
    conn.execute(t.match_keys.delete().where(t.match_keys.c.instance == instance))
    splits = t.split_pairs.c
    conn.execute(
        t.split_pairs.delete().where(
            or_(splits.instance_a == instance, splits.instance_b == instance)
        )
    )
    named = (mapping_key(instance), stage_names_key(instance))
    conn.execute(t.meta.delete().where(t.meta.c.key.in_(named)))
    # The next analysis is full: the incremental one builds on entities some of which are gone.
    drop_reconcile_state(conn)
    # after the links that named them (foreign keys), bases before their entities
    for chunk in chunks(alone, _BATCH):
        conn.execute(t.base.delete().where(t.base.c.entity_id.in_(chunk)))
        conn.execute(t.entities.delete().where(t.entities.c.id.in_(chunk)))
    _drop_marks(conn, instance, shared)
    return held


def _carry_splits(conn: Connection, instance: str) -> None:
    """The splits between a deal of `instance` and another's, onto the deals of other instances
    linked with each (sync/split_fellows.py): crmsync's copy of a forgotten deal stays told
    apart from the deal a person split that one from."""
    sp = t.split_pairs.c
    rows = conn.execute(
        select(sp.instance_a, sp.deal_a, sp.instance_b, sp.deal_b, sp.split_at).where(
            or_(sp.instance_a == instance, sp.instance_b == instance)
        )
    ).all()
    pairs = [(Ref(r.instance_a, r.deal_a), Ref(r.instance_b, r.deal_b)) for r in rows]
    if not pairs:
        return
    fellows = linked_with(conn, {ref for pair in pairs for ref in pair})
    carried: dict[tuple[Ref, Ref], datetime] = {}
    for (a, b), row in zip(pairs, rows, strict=True):
        for pair in spread([(a, b)], fellows):
            x, y = sorted(pair)
            if instance not in (x.system, y.system):
                carried.setdefault((x, y), row.split_at)
    spread_pairs = [
        {"instance_a": x.system, "deal_a": x.id, "instance_b": y.system, "deal_b": y.id,
         "split_at": at}
        for (x, y), at in sorted(carried.items())
    ]  # fmt: skip
    if carried:
        key = ("instance_a", "deal_a", "instance_b", "deal_b")
        conn.execute(upsert(conn, t.split_pairs, key, ()), spread_pairs)


def _drop_marks(conn: Connection, instance: str, entities: list[str]) -> None:
    """The bases of the entities that stay, without their marks of the instance's deals."""
    b = t.base.c
    for chunk in chunks(entities, _BATCH):
        rows = conn.execute(select(b.entity_id, b.payload).where(b.entity_id.in_(chunk)))
        changed = [
            {"p_id": r.entity_id, "p_payload": cleaned}
            for r in rows
            if (cleaned := without_marks_of(r.payload, instance)) != r.payload
        ]
        if changed:
            stmt = t.base.update().where(b.entity_id == bindparam("p_id"))
            conn.execute(stmt.values(payload=bindparam("p_payload")), changed)
