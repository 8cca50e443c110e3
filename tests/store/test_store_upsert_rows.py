"""Rows upserted in bulk through the driver (`upsert_rows`) are stored as SQLAlchemy stores them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import String, cast, select

from sync import schema as t
from sync.schema import transaction, upsert, upsert_rows
from sync.store import Store

AT = datetime(2026, 3, 1, 9, 30, 15, 120000, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
LINK = ("instance", "deal_id", "entity_id", "method", "score", "matched_at", "confirmed")
ENTITY = ("id", "created_at")
BASE = ("entity_id", "payload", "updated_at")
# one instant in two zones, a value without microseconds, later ones
MATCHED = [AT, AT.astimezone(PARIS), AT + timedelta(seconds=2), AT + timedelta(seconds=3),
           AT.replace(microsecond=0) + timedelta(days=1)]  # fmt: skip


def _links(instance: str) -> list[dict[str, Any]]:
    return [
        {
            "instance": instance,
            "deal_id": f"d{i}",
            "entity_id": f"e{i % 2}",
            "method": "key",
            "score": 0.5 + i if i % 3 else None,
            "matched_at": MATCHED[i],
            "confirmed": i % 2 == 0,
        }
        for i in range(5)
    ]


def _bases() -> list[dict[str, Any]]:
    payloads = [{"stage": "won", "amount": "1500.00", "marks": [["hubspot", "7"]]}, {"n": "é✓"}]
    return [
        {"entity_id": f"e{i}", "payload": payload, "updated_at": AT}
        for i, payload in enumerate(payloads)
    ]


def _raw_links(store: Store, instance: str) -> list[tuple[Any, ...]]:
    """As stored: datetimes as the database's text, in the order the database sorts them."""
    c = t.links.c
    query = (
        select(c.deal_id, c.entity_id, c.method, c.score, cast(c.matched_at, String), c.confirmed)
        .where(c.instance == instance)
        .order_by(c.matched_at, c.deal_id)
    )
    with transaction(store.engine, write=False) as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_rows_upserted_in_bulk_are_stored_as_sqlalchemy_stores_them(store: Store) -> None:
    with transaction(store.engine) as conn:
        entities = [{"id": "e0", "created_at": AT}, {"id": "e1", "created_at": AT}]
        conn.execute(upsert(conn, t.entities, ("id",), ()), entities)
        update = ("entity_id", "method", "score", "matched_at", "confirmed")
        conn.execute(upsert(conn, t.links, ("instance", "deal_id"), update), _links("one"))
        rows = [tuple(row.values()) for row in _links("bulk")]
        assert upsert_rows(conn, t.links, ("instance", "deal_id"), update, LINK, rows) == 5
    assert _raw_links(store, "bulk") == _raw_links(store, "one")
    (read,) = [r for r in store.link_records(["e1"]) if (r.instance, r.deal_id) == ("bulk", "d1")]
    assert read.matched_at == AT and read.matched_at.tzinfo == UTC  # given in Paris time
    assert (read.score, read.confirmed) == (1.5, False)
    with transaction(store.engine, write=False) as conn:
        query = select(t.links.c.matched_at).where(t.links.c.instance == "bulk")
        assert sorted(conn.scalars(query)) == sorted(MATCHED)


def test_json_upserted_in_bulk_reads_back_and_replaces_as_the_update_says(store: Store) -> None:
    with transaction(store.engine) as conn:
        entities = [("e0", AT), ("e1", AT)]
        assert upsert_rows(conn, t.entities, ("id",), (), ENTITY, entities) == 2
        assert upsert_rows(conn, t.entities, ("id",), (), ENTITY, entities) == 2  # DO NOTHING
        bases = [tuple(row.values()) for row in _bases()]
        upsert_rows(conn, t.base, ("entity_id",), ("payload", "updated_at"), BASE, bases)
        stored = conn.execute(select(cast(t.base.c.payload, String))).scalars().all()
        # the text SQLAlchemy's JSON type writes (the deals' "unchanged" check compares it)
        conn.execute(t.base.delete())
        conn.execute(upsert(conn, t.base, ("entity_id",), ("payload", "updated_at")), _bases())
        assert conn.execute(select(cast(t.base.c.payload, String))).scalars().all() == stored
        later = [("e0", {"stage": "lost"}, AT)]
        upsert_rows(conn, t.base, ("entity_id",), ("payload", "updated_at"), BASE, later)
    assert store.bases() == {"e0": {"stage": "lost"}, "e1": {"n": "é✓"}}


def test_a_naive_datetime_is_refused_in_bulk_too(store: Store) -> None:
    rows = [("e0", AT), ("e1", AT.replace(tzinfo=None))]
    with pytest.raises(ValueError, match="naive datetime"), transaction(store.engine) as conn:
        upsert_rows(conn, t.entities, ("id",), (), ENTITY, rows)
    with transaction(store.engine, write=False) as conn:
        assert conn.execute(select(t.entities.c.id)).all() == []


def test_rows_leaving_out_a_column_with_a_default_are_refused(store: Store) -> None:
    rows = [("a", "1", "e0", "key", None, AT)]
    with pytest.raises(ValueError, match="confirmed"), transaction(store.engine) as conn:
        upsert_rows(conn, t.links, ("instance", "deal_id"), ("method",), LINK[:-1], rows)


def test_columns_given_in_any_order_land_in_their_columns(store: Store) -> None:
    with transaction(store.engine) as conn:
        upsert_rows(conn, t.entities, ("id",), (), ("created_at", "id"), [(AT, "e0")])
        rows = [("k1", "e0", "hubspot"), ("k2", "e0", "salesforce")]
        columns = ("digest", "deal_id", "instance")
        upsert_rows(conn, t.match_keys, ("instance", "deal_id"), ("digest",), columns, rows)
    assert store.refs_with_match_keys(["k1"]) == {("hubspot", "e0")}
    with transaction(store.engine, write=False) as conn:
        assert conn.execute(select(t.entities.c.id, t.entities.c.created_at)).all() == [("e0", AT)]
