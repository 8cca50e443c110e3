"""People's corrections of matching: confirm a link, split a wrong match, join deals by hand.

A key or fuzzy match is crmsync's inference; an external-id field, crmsync's own link marker, a
copy crmsync created or a person's join is explicit, and such links are confirmed when saved.
`crmsync links` lists the links with how each was found, and lets a person confirm inferred
ones, split a wrong match (its deals are never matched to each other again, by any evidence;
a copy crmsync created stays with the deal it copies) or join deals matching could not pair
(an ambiguity resolved by hand). Every correction flags the deals for the next reconcile in the
same transaction, so an incremental run looks at them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations, product
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from mapping.model import Ref
from sync import schema as t
from sync.errors import UsageError
from sync.match import entity_id_for, ref_order
from sync.schema import chunks, lock_flags, transaction, upsert
from sync.split_fellows import linked_with, spread
from sync.store import Store
from sync.store_records import Link, LinkMethod, copied_from

__all__ = [
    "EXPLICIT",
    "Split",
    "apart",
    "confirm",
    "corrected_since",
    "join",
    "link_pages",
    "parse_ref",
    "split",
    "split_entity_ids",
]

# Evidence the CRMs or a person gave: links found so are confirmed when saved.
EXPLICIT = frozenset(
    (LinkMethod.EXTERNAL_ID, LinkMethod.LINK_ID, LinkMethod.CREATED, LinkMethod.MANUAL)
)
_BATCH = 500
_PAGE = 10_000


def parse_ref(text: str) -> Ref:
    """`instance:id` (the id may itself hold colons)."""
    instance, sep, deal_id = text.partition(":")
    if not sep or not instance or not deal_id:
        raise UsageError(f"{text!r} is not INSTANCE:ID (e.g. hubspot:10000042)")
    return Ref(instance, deal_id)


def split_entity_ids(store: Store) -> frozenset[str]:
    """The ids of entities people split: no new entity is named so (CRM records may carry one
    as crmsync's marker, on copies it created)."""
    with transaction(store.engine, write=False) as conn:
        return frozenset(conn.execute(select(t.split_entities.c.entity_id)).scalars())


def apart(store: Store) -> frozenset[frozenset[Ref]]:
    """The pairs of deals people split, and of the deals stored as linked with each side
    (sync/split_fellows.py): matching never links them to each other, nor takes them for
    same-key duplicates."""
    sp = t.split_pairs
    query = select(sp.c.instance_a, sp.c.deal_a, sp.c.instance_b, sp.c.deal_b)
    with transaction(store.engine, write=False) as conn:
        pairs = [
            (Ref(r.instance_a, r.deal_a), Ref(r.instance_b, r.deal_b)) for r in conn.execute(query)
        ]
        if not pairs:
            return frozenset()
        return frozenset(spread(pairs, linked_with(conn, {r for pair in pairs for r in pair})))


def corrected_since(store: Store, refs: Iterable[Ref], since: datetime) -> list[str]:
    """The deals among `refs` a person split from another deal or joined to one after
    `since`, as `instance:id split|joined`, in ref order: a plan made before that no longer
    describes their matches."""
    wanted = set(refs)
    found: dict[Ref, str] = {}
    sp, links = t.split_pairs, t.links
    with transaction(store.engine, write=False) as conn:
        query = select(sp.c.instance_a, sp.c.deal_a, sp.c.instance_b, sp.c.deal_b)
        for row in conn.execute(query.where(sp.c.split_at > since)):
            for ref in (Ref(row.instance_a, row.deal_a), Ref(row.instance_b, row.deal_b)):
                if ref in wanted:
                    found.setdefault(ref, "split")
        by_instance: dict[str, list[str]] = defaultdict(list)
        for ref in wanted:
            by_instance[ref.system].append(ref.id)
        for instance, ids in sorted(by_instance.items()):
            for chunk in chunks(sorted(ids), _BATCH):
                query = select(links.c.deal_id).where(
                    links.c.instance == instance,
                    links.c.deal_id.in_(chunk),
                    links.c.method == LinkMethod.MANUAL.value,
                    links.c.matched_at > since,
                )
                for deal_id in conn.execute(query).scalars():
                    found.setdefault(Ref(instance, deal_id), "joined")
    return [
        f"{r.system}:{r.id} {how}"
        for r, how in sorted(found.items(), key=lambda f: ref_order(f[0]))
    ]


def link_pages(
    store: Store, entity_ids: Sequence[str] | None = None, *, unconfirmed: bool = False
) -> Iterator[list[tuple[Link, str | None]]]:
    """The stored links (of these entities; of the entities with an unconfirmed link) with the
    name of each deal, in pages of at most `_PAGE`, by entity, instance and deal id: read as
    they are shown, never all at once."""
    links, deals = t.links, t.deals
    name = deals.c.payload["name"].as_string()
    query = (
        select(links, name.label("name"))
        .outerjoin(deals, (deals.c.instance == links.c.instance) & (deals.c.id == links.c.deal_id))
        .order_by(links.c.entity_id, links.c.instance, links.c.deal_id)
    )
    if unconfirmed:
        doubtful = select(links.c.entity_id).where(~links.c.confirmed)
        query = query.where(links.c.entity_id.in_(doubtful))
    with transaction(store.engine, write=False) as conn:
        if entity_ids is None:
            result = conn.execute(query, execution_options={"yield_per": _PAGE})
            for rows in result.partitions(_PAGE):
                yield [(_link(r), r.name) for r in rows]
            return
        for chunk in chunks(sorted(set(entity_ids)), _BATCH):
            found = conn.execute(query.where(links.c.entity_id.in_(chunk)))
            yield [(_link(r), r.name) for r in found]


def _link(row: Row[Any]) -> Link:
    return Link(
        row.entity_id,
        row.instance,
        row.deal_id,
        LinkMethod(row.method),
        row.score,
        row.matched_at,
        row.confirmed,
    )


def confirm(store: Store, entity_ids: Sequence[str]) -> int:
    """Mark every link of these entities confirmed; returns how many links that is."""
    with transaction(store.engine) as conn:
        _members(conn, entity_ids)  # unknown entities are refused before anything changes
        done = 0
        for chunk in chunks(entity_ids, _BATCH):
            query = update(t.links).where(t.links.c.entity_id.in_(chunk))
            done += conn.execute(query.values(confirmed=True)).rowcount or 0
    return done


@dataclass(frozen=True, slots=True)
class Split:
    """What `split` did to one entity: its deals in the groups that are told apart (each a
    deal and crmsync's copies of it, the deal first), and the group that keeps the entity id
    (the copies carry it as their marker; None: no group does, the entity is gone)."""

    groups: tuple[tuple[Ref, ...], ...]
    kept: tuple[Ref, ...] | None


def split(store: Store, entity_ids: Sequence[str]) -> dict[str, Split]:
    """Undo these matches. Each entity's deals fall into groups: a deal with the copies
    crmsync made of it, every other deal alone. Every pair of deals of different groups is
    recorded as not the same deal; the group holding crmsync's copies keeps the entity (its
    links and base: the copies carry its id as their marker), the other deals lose their link,
    and an entity no group keeps loses its base. All the deals are flagged. An entity holding
    one deal and copies of it only is refused: there is nothing to split."""
    now = store.now()
    with transaction(store.engine) as conn:
        members = _members(conn, entity_ids)
        sources = _copy_sources(conn, members)
        done = {entity: _split_of(entity, refs, sources) for entity, refs in members.items()}
        pairs = [
            {
                "instance_a": a.system,
                "deal_a": a.id,
                "instance_b": b.system,
                "deal_b": b.id,
                "split_at": now,
            }
            for found in done.values()
            for one, other in combinations(found.groups, 2)
            for a, b in (sorted(p, key=ref_order) for p in product(one, other))
        ]
        conn.execute(upsert(conn, t.split_pairs, _PAIR_KEY, ()), pairs)
        split_ids = [{"entity_id": entity, "split_at": now} for entity in done]
        conn.execute(upsert(conn, t.split_entities, ("entity_id",), ()), split_ids)
        gone = [entity for entity, found in done.items() if found.kept is None]
        for chunk in chunks(gone, _BATCH):
            conn.execute(t.links.delete().where(t.links.c.entity_id.in_(chunk)))
            conn.execute(t.base.delete().where(t.base.c.entity_id.in_(chunk)))
        leaving: dict[str, list[str]] = defaultdict(list)
        for entity, found in done.items():
            if found.kept is not None:
                for ref in members[entity]:
                    if ref not in found.kept:
                        leaving[ref.system].append(ref.id)
        for instance, ids in leaving.items():
            for chunk in chunks(ids, _BATCH):
                conn.execute(
                    t.links.delete().where(
                        t.links.c.instance == instance, t.links.c.deal_id.in_(chunk)
                    )
                )
        _flag(conn, [ref for refs in members.values() for ref in refs], now)
    return done


def _split_of(entity: str, refs: Sequence[Ref], sources: Mapping[Ref, Ref]) -> Split:
    by_source: dict[Ref, list[Ref]] = {}
    for ref in refs:
        root, seen = ref, {ref}
        while (source := sources.get(root)) is not None and source not in seen:
            root = source  # a copy of a copy goes with the first one's source
            seen.add(root)
        by_source.setdefault(root, []).append(ref)
    groups = [
        (root, *sorted((r for r in group if r != root), key=ref_order))
        for root, group in sorted(by_source.items(), key=lambda item: ref_order(item[0]))
    ]
    if len(groups) < 2:
        [(root, *copies)] = groups
        shown = ", ".join(f"{r.system}:{r.id}" for r in copies)
        raise UsageError(
            f"cannot split {entity}: it holds {root.system}:{root.id} and crmsync's copies of "
            f"it ({shown}), nothing else; delete a copy in its CRM, or `crmsync rollback` the "
            "run that created it"
        )
    with_copies = [g for g in groups if len(g) > 1]
    kept = max(with_copies, key=len) if with_copies else None  # the first of the largest
    return Split(tuple(groups), kept)


def _copy_sources(conn: Connection, members: Mapping[str, Sequence[Ref]]) -> dict[Ref, Ref]:
    """Copy -> the deal crmsync made it from, for the members that are crmsync's copies (linked
    as created, or carrying the entity id as their marker) whose source is a member of the same
    entity: the audit of the create names it."""
    entity_of = {ref: entity for entity, refs in members.items() for ref in refs}
    by_instance: dict[str, list[str]] = defaultdict(list)
    for ref in entity_of:
        by_instance[ref.system].append(ref.id)
    copies: dict[str, set[str]] = defaultdict(set)
    links, deals = t.links, t.deals
    for instance, ids in by_instance.items():
        for chunk in chunks(sorted(ids), _BATCH):
            created = select(links.c.deal_id).where(
                links.c.instance == instance,
                links.c.deal_id.in_(chunk),
                links.c.method == LinkMethod.CREATED.value,
            )
            copies[instance].update(conn.execute(created).scalars())
            marker = deals.c.payload["link_id"].as_string()
            marked = select(deals.c.id, marker).where(
                deals.c.instance == instance, deals.c.id.in_(chunk)
            )
            copies[instance].update(
                deal_id
                for deal_id, link_id in conn.execute(marked)
                if link_id == entity_of[Ref(instance, deal_id)]
            )
    sources: dict[Ref, Ref] = {}
    audit = t.audit
    for instance, found in copies.items():
        for chunk in chunks(sorted(found), _BATCH):
            query = select(audit.c.deal_id, audit.c.after).where(
                audit.c.instance == instance, audit.c.deal_id.in_(chunk), audit.c.field.is_(None)
            )
            for row in conn.execute(query):
                copy, after = Ref(instance, row.deal_id), row.after
                if not isinstance(after, dict) or after.get("link_id") != entity_of[copy]:
                    continue
                source = copied_from(after)
                if entity_of.get(source) == entity_of[copy] and source != copy:
                    sources.setdefault(copy, source)
    return sources


def join(store: Store, refs: Sequence[Ref], instances: Collection[str], config: str) -> str:
    """Link these deals (one per instance) as one entity, confirmed by hand; returns its id.
    Each must be a live stored deal of one of the config's `instances`, in no entity yet;
    earlier splits between them end."""
    if len(refs) < 2 or len({r.system for r in refs}) != len(refs):
        raise UsageError("join needs deals of at least two instances, one deal per instance")
    for ref in refs:
        if ref.system not in instances:
            raise UsageError(
                f"cannot join {ref.system}:{ref.id}: {ref.system} is not an instance in {config} "
                f"(its instances: {', '.join(sorted(instances))})"
            )
    refs = sorted(refs, key=ref_order)
    now = store.now()
    with transaction(store.engine) as conn:
        for ref in refs:
            _check_joinable(conn, ref)
        entity = _free_id(conn, refs)
        for a, b in combinations(refs, 2):
            sp = t.split_pairs
            conn.execute(
                sp.delete().where(
                    sp.c.instance_a == a.system,
                    sp.c.deal_a == a.id,
                    sp.c.instance_b == b.system,
                    sp.c.deal_b == b.id,
                )
            )
        conn.execute(upsert(conn, t.entities, ("id",), ()), [{"id": entity, "created_at": now}])
        conn.execute(
            t.links.insert(),
            [
                {
                    "instance": r.system,
                    "deal_id": r.id,
                    "entity_id": entity,
                    "method": LinkMethod.MANUAL.value,
                    "score": None,
                    "matched_at": now,
                    "confirmed": True,
                }
                for r in refs
            ],
        )
        _flag(conn, refs, now)
    return entity


_PAIR_KEY = ("instance_a", "deal_a", "instance_b", "deal_b")


def _members(conn: Connection, entity_ids: Sequence[str]) -> dict[str, tuple[Ref, ...]]:
    """Entity -> its linked deals in ref order; an unknown entity id is a usage error."""
    found: dict[str, list[Ref]] = {}
    for chunk in chunks(list(dict.fromkeys(entity_ids)), _BATCH):
        query = select(t.links.c.entity_id, t.links.c.instance, t.links.c.deal_id).where(
            t.links.c.entity_id.in_(chunk)
        )
        for row in conn.execute(query):
            found.setdefault(row.entity_id, []).append(Ref(row.instance, row.deal_id))
    unknown = [e for e in entity_ids if e not in found]
    if unknown:
        raise UsageError(
            f"no links for entity {', '.join(unknown)} in this store (see `crmsync links show`)"
        )
    return {e: tuple(sorted(found[e], key=ref_order)) for e in dict.fromkeys(entity_ids)}


def _free_id(conn: Connection, refs: Sequence[Ref]) -> str:
    """The id of a new entity of `refs`: neither a split entity's nor one in use."""
    taken = set(conn.execute(select(t.split_entities.c.entity_id)).scalars())
    while True:
        entity = entity_id_for(refs, taken)
        used = select(t.links.c.entity_id).where(t.links.c.entity_id == entity).limit(1)
        if conn.execute(used).first() is None:
            return entity
        taken.add(entity)


def _check_joinable(conn: Connection, ref: Ref) -> None:
    deal = conn.execute(
        select(t.deals.c.deleted).where(t.deals.c.instance == ref.system, t.deals.c.id == ref.id)
    ).first()
    if deal is None or deal.deleted:
        why = "is not in the store (pull first?)" if deal is None else "is deleted"
        raise UsageError(f"cannot join {ref.system}:{ref.id}: it {why}")
    linked = conn.execute(
        select(t.links.c.entity_id).where(
            t.links.c.instance == ref.system, t.links.c.deal_id == ref.id
        )
    ).scalar()
    if linked is not None:
        raise UsageError(
            f"cannot join {ref.system}:{ref.id}: it is in entity {linked} already "
            "(`crmsync links split` it first)"
        )


def _flag(conn: Connection, refs: Iterable[Ref], now: datetime) -> None:
    rows = [{"instance": r.system, "deal_id": r.id, "marked_at": now} for r in refs]
    if rows:
        lock_flags(conn)
        conn.execute(upsert(conn, t.pending, ("instance", "deal_id"), ("marked_at",)), rows)
