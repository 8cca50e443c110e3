"""Writing links and bases inside a caller's transaction: the store's own saves and the
journal's marks share it, so a created copy's link is stored with the mark that records it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from sync import schema as t
from sync.schema import upsert_rows
from sync.store_records import Link, LinkMethod, check_no_secrets

__all__ = ["write_links_and_bases"]

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
