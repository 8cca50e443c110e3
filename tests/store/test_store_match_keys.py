"""Match-key digests in the store: a full save leaves exactly the given rows, writing only those
that differ."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select

from sync import schema as t
from sync.store import Store


def _rows(store: Store) -> dict[tuple[str, str], str]:
    table = t.match_keys
    with store.engine.connect() as conn:
        query = select(table.c.instance, table.c.deal_id, table.c.digest)
        return {(i, d): digest for i, d, digest in conn.execute(query)}


def test_a_full_save_leaves_exactly_the_given_digests(store: Store) -> None:
    store.save_match_keys(
        {("hubspot", "1"): "a", ("hubspot", "2"): "b", ("sf", "1"): "c", ("sf", "2"): "d"},
        replace=True,
    )
    store.save_match_keys(
        # 1 kept, 2 changed, sf 1 lost its key, sf 2 absent (gone), sf 3 new
        {("hubspot", "1"): "a", ("hubspot", "2"): "x", ("sf", "1"): None, ("sf", "3"): "e"},
        replace=True,
    )
    assert _rows(store) == {("hubspot", "1"): "a", ("hubspot", "2"): "x", ("sf", "3"): "e"}
    assert store.refs_with_match_keys(["b", "c", "d"]) == set()


def test_a_full_save_of_unchanged_digests_writes_nothing(store: Store) -> None:
    digests: dict[tuple[str, str], str | None] = {("hubspot", str(i)): f"d{i}" for i in range(50)}
    store.save_match_keys(digests, replace=True)
    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        store.save_match_keys(digests, replace=True)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert [w for w in writes if "match_keys" in w] == []
    assert len(_rows(store)) == 50
