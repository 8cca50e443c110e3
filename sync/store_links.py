"""Links and bases: their reads, and their writes inside a caller's transaction. The store's
own saves and the journal's marks share it, so a created copy's link is stored with the mark
that records it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from sync import schema as t
from sync.schema import chunks, transaction, upsert_rows
from sync.store_records import Link, LinkMethod, check_no_secrets

__all__ = [
    "delete_links",
    "read_bases",
    "read_entities_of",
    "read_link_records",
    "read_links",
    "write_links_and_bases",
]

_BATCH = 1000
_LINK_KEY = ("instance", "deal_id")
_LINK_UPDATED = ("entity_id", "method", "score", "matched_at", "confirmed")
_BASE_WRITTEN = ("payload", "updated_at")


def write_links_and_bases(
    conn: Connection,
    links: Iterable[Link],
    bases: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> int:
    """Upsert links (one per (instance, deal_id)) and bases; their entities are created once.
    Returns the links saved."""
    links = list(links)
    for entity_id, values in bases.items():
        check_no_secrets(values, f"base of entity {entity_id}")
    entities = (
        (entity_id, now) for entity_id in sorted({k.entity_id for k in links} | bases.keys())
    )
    upsert_rows(conn, t.entities, ("id",), (), ("id", "created_at"), entities)
    link_rows = (
        (
            link.instance,
            link.deal_id,
            link.entity_id,
            LinkMethod(link.method).value,
            link.score,
            link.matched_at or now,
            link.confirmed,
        )
        for link in links
    )
    saved = upsert_rows(
        conn, t.links, _LINK_KEY, _LINK_UPDATED, (*_LINK_KEY, *_LINK_UPDATED), link_rows
    )
    base_rows = ((e, dict(v), now) for e, v in bases.items())
    upsert_rows(
        conn, t.base, ("entity_id",), _BASE_WRITTEN, ("entity_id", *_BASE_WRITTEN), base_rows
    )
    return saved


def read_links(engine: Engine) -> dict[tuple[str, str], str]:
    query = select(t.links.c.instance, t.links.c.deal_id, t.links.c.entity_id)
    with transaction(engine, write=False) as conn:
        rows = conn.execute(query, execution_options={"yield_per": _BATCH * 10})
        return {(r.instance, r.deal_id): r.entity_id for r in rows}


def count_links(engine: Engine) -> dict[str, int]:
    """Instance -> how many links the store holds of its deals."""
    query = select(t.links.c.instance, func.count()).group_by(t.links.c.instance)
    with transaction(engine, write=False) as conn:
        return {instance: int(n) for instance, n in conn.execute(query)}


def read_entities_of(engine: Engine, instance: str, deal_ids: Iterable[str]) -> dict[str, str]:
    query = select(t.links.c.deal_id, t.links.c.entity_id).where(t.links.c.instance == instance)
    found: dict[str, str] = {}
    with transaction(engine, write=False) as conn:
        for chunk in chunks(deal_ids, _BATCH):
            rows = conn.execute(query.where(t.links.c.deal_id.in_(chunk)))
            found.update((r.deal_id, r.entity_id) for r in rows)
    return found


def read_link_records(engine: Engine, entity_ids: Iterable[str] | None) -> list[Link]:
    query = select(t.links).order_by(t.links.c.entity_id, t.links.c.instance)
    with transaction(engine, write=False) as conn:
        if entity_ids is None:
            rows = list(conn.execute(query))
        else:
            rows = []
            for chunk in chunks(entity_ids, _BATCH):
                rows.extend(conn.execute(query.where(t.links.c.entity_id.in_(chunk))))
    return [
        Link(
            entity_id=r.entity_id,
            instance=r.instance,
            deal_id=r.deal_id,
            method=LinkMethod(r.method),
            score=r.score,
            matched_at=r.matched_at,
            confirmed=r.confirmed,
        )
        for r in rows
    ]


def delete_links(conn: Connection, instance: str, deal_ids: Iterable[str]) -> int:
    """Drop the links of these deals; returns how many there were."""
    dropped = 0
    for chunk in chunks(deal_ids, _BATCH):
        stmt = t.links.delete().where(t.links.c.instance == instance, t.links.c.deal_id.in_(chunk))
        dropped += conn.execute(stmt).rowcount
    return dropped


def read_bases(engine: Engine, entity_ids: Iterable[str] | None) -> dict[str, dict[str, Any]]:
    query = select(t.base.c.entity_id, t.base.c.payload)
    with transaction(engine, write=False) as conn:
        if entity_ids is None:
            rows = conn.execute(query, execution_options={"yield_per": _BATCH * 10})
            return {r.entity_id: r.payload for r in rows}
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(entity_ids, _BATCH):
            rows = conn.execute(query.where(t.base.c.entity_id.in_(chunk)))
            found.update((r.entity_id, r.payload) for r in rows)
        return found
