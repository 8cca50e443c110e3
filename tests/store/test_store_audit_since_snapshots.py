"""The audit entries a deal's stored snapshot may not show: crmsync's writes audited since the
pull that saved the snapshot began, and its creates no pull has stored yet (what the report
lays over the snapshots, sync/known_writes.py). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from sync.store import AuditEntry, Link, LinkMethod, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: int) -> datetime:
        self.now = T0 + timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed_store(store_url: str, clock: Clock) -> Iterator[Store]:
    opened = Store.open(store_url, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def _pull(store: Store, ids: list[str], version: int) -> None:
    run = store.runs.start("pull", "pull")
    rows = [(i, f"fp{version}", T0, False, {"name": f"{i} v{version}"}) for i in ids]
    store.save_deals("hubspot", rows, run_id=run)
    store.runs.finish(run, "ok")


def _write(store: Store, deal_id: str, field: str | None, after: object, at: datetime) -> None:
    store.audit.append([AuditEntry("apply-1", "hubspot", deal_id, field, None, after, "x", at)])


def _seen(store: Store) -> list[tuple[str | None, str | None, object]]:
    return [(e.deal_id, e.field, e.after) for e in store.audit.after_snapshots(["hubspot"])]


def test_only_writes_audited_since_the_pull_that_saved_a_snapshot_began_are_newer(
    timed_store: Store, clock: Clock
) -> None:
    store = timed_store
    _write(store, "1", "amount", "100", clock.at(0))  # before any pull: the pull read it
    clock.at(1)
    _pull(store, ["1", "2", "3"], 1)
    _write(store, "1", "stage", "won", clock.at(2))
    _write(store, "1", "amount", "200", clock.now)  # same time: in sequence
    _write(store, "1", "amount", "150", clock.now)
    _write(store, "3", "amount", "300", clock.now)
    store.mark_deleted("hubspot", ["3"])  # a deleted deal is not analysed
    _write(store, "2", None, {"deleted": True}, clock.now)  # no field write

    assert _seen(store) == [
        ("1", "stage", "won"),
        ("1", "amount", "200"),
        ("1", "amount", "150"),
    ]

    clock.at(3)
    _pull(store, ["1"], 2)  # the snapshot now shows those writes
    assert _seen(store) == []
    _write(store, "1", "amount", "100", clock.at(4))  # a rollback's, say
    assert _seen(store) == [("1", "amount", "100")]


def test_a_create_counts_until_a_pull_stores_the_copy_or_a_rollback_unlinks_it(
    timed_store: Store, clock: Clock
) -> None:
    store = timed_store
    created = {"source": "salesforce:006A", "link_id": "entity-1"}
    _write(store, "9", None, created, clock.at(1))
    _write(store, "8", None, created | {"link_id": "entity-2"}, clock.now)
    store.save_links([Link("entity-1", "hubspot", "9", LinkMethod.CREATED, confirmed=True)])
    store.save_links([Link("entity-2", "hubspot", "8", LinkMethod.CREATED, confirmed=True)])

    def unread() -> list[str | None]:
        return [e.deal_id for e in store.audit.unread_creates(["hubspot"])]

    assert unread() == ["9", "8"]
    store.unlink_all("hubspot", ["8"])
    assert unread() == ["9"]
    _pull(store, ["9"], 1)
    assert unread() == []


def test_the_writes_a_snapshot_may_not_show_are_read_by_index_not_by_reading_the_audit(
    tmp_path: Path,
) -> None:
    # The audit grows with every apply: the report reads each record's entries by index,
    # never all of it (SQLite's plan; PostgreSQL plans by its statistics).
    plans: list[str] = []
    with Store.open(f"sqlite:///{tmp_path / 'plans.db'}") as store:

        @event.listens_for(store.engine, "before_cursor_execute")
        def explain(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "audit" in statement:
                found = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
                plans.append(" / ".join(row[-1] for row in found))

        store.audit.after_snapshots(["hubspot"])
        store.audit.unread_creates(["hubspot"])
    assert len(plans) == 2
    for plan in plans:
        assert "SCAN audit" not in plan, plan
        assert "INDEX ix_audit_deal_at (instance=? AND deal_id=?" in plan, plan
