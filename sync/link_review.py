"""People's corrections of matching: confirm a link, split a wrong match, join deals by hand.

A key or fuzzy match is crmsync's inference; an external-id field, crmsync's own link marker, a
copy crmsync created or a person's join is explicit, and such links are confirmed when saved.
`crmsync links` lists the links with how each was found, and lets a person confirm inferred
ones, split a wrong match (its deals are never matched to each other again, by any evidence)
or join deals matching could not pair (an ambiguity resolved by hand). Every correction flags
the deals for the next reconcile in the same transaction, so an incremental run looks at them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import combinations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from mapping.model import Ref
from sync import schema as t
from sync.errors import UsageError
from sync.match import entity_id_for, ref_order
from sync.schema import chunks, transaction, upsert
from sync.store import Store
from sync.store_records import LinkMethod

__all__ = ["EXPLICIT", "apart", "confirm", "join", "parse_ref", "split"]

# Evidence the CRMs or a person gave: links found so are confirmed when saved.
EXPLICIT = frozenset(
    (LinkMethod.EXTERNAL_ID, LinkMethod.LINK_ID, LinkMethod.CREATED, LinkMethod.MANUAL)
)
_BATCH = 500


def parse_ref(text: str) -> Ref:
    """`instance:id` (the id may itself hold colons)."""
    instance, sep, deal_id = text.partition(":")
    if not sep or not instance or not deal_id:
        raise UsageError(f"{text!r} is not INSTANCE:ID (e.g. hubspot:10000042)")
    return Ref(instance, deal_id)


def apart(store: Store) -> frozenset[frozenset[Ref]]:
    """The pairs of deals people split: matching never links them to each other."""
    sp = t.split_pairs
    query = select(sp.c.instance_a, sp.c.deal_a, sp.c.instance_b, sp.c.deal_b)
    with transaction(store.engine, write=False) as conn:
        return frozenset(
            frozenset((Ref(r.instance_a, r.deal_a), Ref(r.instance_b, r.deal_b)))
            for r in conn.execute(query)
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


def split(store: Store, entity_ids: Sequence[str]) -> dict[str, tuple[Ref, ...]]:
    """Undo these matches: the entities' links and bases go, each pair of their deals is
    recorded as not the same deal, and the deals are flagged. Returns entity -> its deals."""
    now = datetime.now(UTC)
    with transaction(store.engine) as conn:
        members = _members(conn, entity_ids)
        pairs = [
            {
                "instance_a": a.system,
                "deal_a": a.id,
                "instance_b": b.system,
                "deal_b": b.id,
                "split_at": now,
            }
            for refs in members.values()
            for a, b in combinations(refs, 2)
        ]
        if pairs:
            conn.execute(upsert(conn, t.split_pairs, _PAIR_KEY, ()), pairs)
        for chunk in chunks(list(members), _BATCH):
            conn.execute(t.links.delete().where(t.links.c.entity_id.in_(chunk)))
            conn.execute(t.base.delete().where(t.base.c.entity_id.in_(chunk)))
        _flag(conn, [ref for refs in members.values() for ref in refs], now)
    return members


def join(store: Store, refs: Sequence[Ref]) -> str:
    """Link these deals (one per instance) as one entity, confirmed by hand; returns its id.
    Each must be a live stored deal in no entity yet; earlier splits between them end."""
    if len(refs) < 2 or len({r.system for r in refs}) != len(refs):
        raise UsageError("join needs deals of at least two instances, one deal per instance")
    refs = sorted(refs, key=ref_order)
    entity = entity_id_for(refs)
    now = datetime.now(UTC)
    with transaction(store.engine) as conn:
        for ref in refs:
            _check_joinable(conn, ref)
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
        conn.execute(upsert(conn, t.pending, ("instance", "deal_id"), ("marked_at",)), rows)
