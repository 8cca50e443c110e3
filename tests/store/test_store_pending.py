"""Incremental-reconcile state in the store: flagged deals, last analysis, v1 -> v2 upgrade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from sync.apply_deletes import forget
from sync.schema import MIGRATIONS
from sync.store import Link, LinkMethod, Store


def test_a_v1_store_upgrades_to_v2_keeping_its_data_and_starting_without_state(
    store_url: str,
) -> None:
    with Store.open(store_url, migrations=()) as old:  # as crmsync v1 created it
        old.save_deals("hubspot", [("1", "fp", None, False, {"id": "1"})], "c1")
        old.save_links([Link("E1", "hubspot", "1", LinkMethod.KEY)])
        old.save_bases({"E1": {"name": "Acme"}})
    with Store.open(store_url, migrations=MIGRATIONS[:1]) as store:  # the v1 -> v2 step
        with store.engine.connect() as conn:
            version = conn.execute(text("select value from meta where key = 'schema_version'"))
            assert int(version.scalar() or 0) == 2
        assert store.cursor("hubspot") == "c1"
        assert list(store.iter_deals("hubspot")) == [{"id": "1"}]
        assert store.links() == {("hubspot", "1"): "E1"}
        assert store.bases() == {"E1": {"name": "Acme"}}
        assert store.pending() == {}
        assert store.reconcile_state() is None  # so the first run after the upgrade is full
        store.mark_pending("hubspot", ["1"])
        assert set(store.pending()) == {("hubspot", "1")}


def test_settling_drops_what_was_read_keeps_what_was_flagged_again_and_records_state(
    store_url: str,
) -> None:
    now = [datetime(2026, 1, 5, 10, 0, tzinfo=UTC)]
    with Store.open(store_url, clock=lambda: now[0]) as store:
        store.mark_pending("hubspot", ["1", "2", "3"])
        read = store.pending()
        now[0] += timedelta(seconds=1)
        store.mark_pending("hubspot", ["2"])  # a pull saved it again while we analysed
        store.settle_pending(read, [("salesforce", "9")], {"config_fingerprint": "f"})
        assert set(store.pending()) == {("hubspot", "2"), ("salesforce", "9")}
        assert store.reconcile_state() == {"config_fingerprint": "f"}
        store.forget_reconcile_state()
        assert store.reconcile_state() is None


def test_forgetting_deleted_deals_flags_their_entities_other_members_before_unlinking(
    tmp_path: Path,
) -> None:
    """A crash between the two (here the database refuses to drop links) leaves the other
    members flagged for the next incremental reconcile, never unlinked from the deleted deal
    with nothing to make that reconcile look at them."""
    with Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}") as store:
        store.save_deals("hubspot", [("1", "fp", None, False, {"id": "1"})])
        store.save_links([Link("E1", "hubspot", "1", LinkMethod.KEY),
                          Link("E1", "pipedrive", "7", LinkMethod.KEY)])  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(text(
                "CREATE TRIGGER keep_links BEFORE DELETE ON links "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END"
            ))  # fmt: skip
        with pytest.raises(Exception, match="disk I/O error"):
            forget(store, "hubspot", ["1"], ["E1"])
        assert set(store.pending()) == {("pipedrive", "7")}
        assert store.links() == {("hubspot", "1"): "E1", ("pipedrive", "7"): "E1"}
