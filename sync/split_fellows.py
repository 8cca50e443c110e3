"""The deals a split tells apart beyond its own pair: those linked with each side.

A person's split (`crmsync links split`) says two deals are different real deals; the deals
linked with each (crmsync's copies of it first) are then different deals too. Matching derives
that from the entities of the deals it loads, but a retired instance's deals are not loaded,
and a forgotten one's links are gone: the copy crmsync made of a retired CRM's deal would then
be taken for a same-key duplicate of the deal that one was split from. So the pairs are spread
over the stored links when read (`apart`), and carried onto the other members before a forget.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from itertools import product

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mapping.model import Ref
from sync import schema as t
from sync.schema import chunks

__all__ = ["linked_with", "spread"]

_BATCH = 500


def linked_with(conn: Connection, refs: Collection[Ref]) -> dict[Ref, frozenset[Ref]]:
    """Ref -> the deals stored as one entity with it (itself included; alone: itself)."""
    entity_of: dict[Ref, str] = {}
    links = t.links.c
    by_instance: dict[str, list[str]] = defaultdict(list)
    for ref in refs:
        by_instance[ref.system].append(ref.id)
    for instance, ids in sorted(by_instance.items()):
        for chunk in chunks(sorted(ids), _BATCH):
            query = select(links.deal_id, links.entity_id).where(
                links.instance == instance, links.deal_id.in_(chunk)
            )
            entity_of.update((Ref(instance, d), e) for d, e in conn.execute(query))
    members: dict[str, set[Ref]] = defaultdict(set)
    for chunk in chunks(sorted(set(entity_of.values())), _BATCH):
        query = select(links.instance, links.deal_id, links.entity_id)
        for row in conn.execute(query.where(links.entity_id.in_(chunk))):
            members[row.entity_id].add(Ref(row.instance, row.deal_id))
    return {
        ref: frozenset(members[entity_of[ref]]) if ref in entity_of else frozenset((ref,))
        for ref in refs
    }


def spread(
    pairs: Iterable[tuple[Ref, Ref]], fellows: Mapping[Ref, Collection[Ref]]
) -> set[frozenset[Ref]]:
    """Each pair, and every pair of a deal linked with one side and a deal linked with the
    other (`fellows`: as `linked_with` gives)."""
    out: set[frozenset[Ref]] = set()
    for a, b in pairs:
        mine, theirs = fellows.get(a) or (a,), fellows.get(b) or (b,)
        out.update(frozenset((x, y)) for x, y in product(mine, theirs) if x != y)
    return out
