"""The audit entries a deal's stored snapshot may not show: crmsync's writes audited since the
pull that saved the snapshot began, and its creates no pull has stored yet (what the report
lays over the snapshots, sync/known_writes.py). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

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
