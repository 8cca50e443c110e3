from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text

from config import redact_url
from sync.link_review import apart, split_entity_ids
from sync.schema import MIGRATIONS, SCHEMA_VERSION, connect_engine, ensure_schema, metadata
from sync.store import Store, StoreError
from sync.store_records import Link, LinkMethod, RunKind, RunStatus


def _version(store: Store) -> int:
    with store.engine.connect() as conn:
        value = conn.execute(text("select value from meta where key = 'schema_version'")).scalar()
    return int(value)


def test_empty_database_gets_every_table_at_the_current_version(store: Store) -> None:
    assert _version(store) == SCHEMA_VERSION
    with store.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert set(metadata.tables) <= tables


def test_reopening_keeps_data_and_version(store_url: str) -> None:
    with Store.open(store_url) as first:
        first.save_deals("hubspot", [("1", "fp", None, False, {"id": "1"})], "c1")
    with Store.open(store_url) as again:
        assert again.cursor("hubspot") == "c1"
        assert again.deal_count("hubspot") == 1
        assert _version(again) == SCHEMA_VERSION


def test_newer_schema_is_refused_with_one_line(store_url: str) -> None:
    with Store.open(store_url) as store, store.engine.begin() as conn:
        newer = SCHEMA_VERSION + 1
        conn.execute(text(f"update meta set value = '{newer}' where key = 'schema_version'"))
    with pytest.raises(StoreError) as caught:
        Store.open(store_url)
    assert str(caught.value) == (
        f"state store schema v{SCHEMA_VERSION + 1} is newer than this crmsync (v{SCHEMA_VERSION}): "
        "upgrade crmsync"
    )


def _add_region(conn: Connection) -> None:
    conn.execute(text("alter table deals add column region varchar(40)"))
    conn.execute(text("update deals set region = 'emea'"))


def test_older_schema_is_migrated_step_by_step_once(store_url: str) -> None:
    calls: list[str] = []

    def v1_to_v2(conn: Connection) -> None:
        calls.append("v1->v2")
        _add_region(conn)

    with Store.open(store_url, migrations=()) as store:
        store.save_deals("hubspot", [("1", "fp", None, False, {"id": "1"})])
        assert ensure_schema(store.engine, migrations=[v1_to_v2]) == 2
        assert ensure_schema(store.engine, migrations=[v1_to_v2]) == 2
        assert calls == ["v1->v2"]
        assert _version(store) == 2
        with store.engine.connect() as conn:
            assert conn.execute(text("select region from deals")).scalar() == "emea"
        assert list(store.iter_deals("hubspot")) == [{"id": "1"}]
    with pytest.raises(StoreError, match="v2 is newer than this crmsync \\(v1\\)"):
        Store.open(store_url, migrations=())


def test_failed_migration_leaves_the_store_at_its_old_version(store_url: str) -> None:
    def broken(conn: Connection) -> None:
        _add_region(conn)
        raise RuntimeError("migration bug")

    with Store.open(store_url, migrations=()) as store:
        with pytest.raises(RuntimeError, match="migration bug"):
            ensure_schema(store.engine, migrations=[broken])
        assert _version(store) == 1
        with store.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("deals")}
        assert "region" not in columns


def test_unreachable_database_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        Store.open("postgresql+psycopg://crm:hunter2@127.0.0.1:1/nowhere?connect_timeout=2")
    message = str(caught.value)
    assert "\n" not in message
    assert "hunter2" not in message
    assert message.startswith("cannot open state store postgresql+psycopg://crm:***@127.0.0.1:1")


@pytest.mark.parametrize("query", ["password=hunter2", "sslmode=prefer&sslpassword=hunter2"])
def test_a_password_in_the_url_query_is_not_shown_when_the_database_is_unreachable(
    query: str,
) -> None:
    """libpq takes `?password=` (and `sslpassword=`) as well as `user:password@`."""
    with pytest.raises(StoreError) as caught:
        Store.open(f"postgresql+psycopg://crm@127.0.0.1:1/nowhere?connect_timeout=2&{query}")
    message = str(caught.value)
    assert "hunter2" not in message
    assert "password=***" in message


def test_store_repr_hides_the_password() -> None:
    store = Store(connect_engine("postgresql+psycopg://crm:hunter2@db.example:5432/crm"))
    assert repr(store) == "Store(postgresql+psycopg://crm:***@db.example:5432/crm)"
    store.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://", "in-memory SQLite cannot hold the state store"),
        ("sqlite:///:memory:", "in-memory SQLite cannot hold the state store"),
        ("mysql://root:pw@localhost/crm", "unsupported state store 'mysql'"),
        ("not a url", "invalid state store URL"),
    ],
)
def test_unusable_urls_are_refused_with_one_line(url: str, says: str) -> None:
    with pytest.raises(StoreError, match=says) as caught:
        Store.open(url)
    assert "\n" not in str(caught.value) and "pw@" not in str(caught.value)


def test_sqlite_store_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nested" / "crmsync.db"
    with Store.open(f"sqlite:///{path}") as store:
        assert store.sqlite_path == path.resolve()
    assert path.exists()


def test_workers_opening_an_empty_store_at_once_all_succeed(store_url: str) -> None:
    barrier = threading.Barrier(6)

    def open_store() -> int:
        barrier.wait()
        with Store.open(store_url) as store:
            return _version(store)

    with ThreadPoolExecutor(6) as pool:
        versions = list(pool.map(lambda _: open_store(), range(6)))
    assert versions == [SCHEMA_VERSION] * 6


def test_a_v2_store_gets_an_empty_mapping_error_set_and_pulls_in_full_next(
    store_url: str,
) -> None:
    # Before v3 the unmappable records were only in one run's counts: the next pull must be
    # full to find them again, while the deals stay.
    with Store.open(store_url, migrations=MIGRATIONS[:1]) as old:
        old.save_deals("pipedrive", [("1", "fp", None, False, {"id": "1"})], "c1")
        with old.engine.begin() as conn:  # as a v2 crmsync created it
            conn.execute(text("drop table mapping_errors"))
            conn.execute(text("drop table match_keys"))
        assert _version(old) == 2
    with Store.open(store_url) as upgraded:
        assert _version(upgraded) == SCHEMA_VERSION
        assert upgraded.cursor("pipedrive") is None
        assert upgraded.deal_count("pipedrive") == 1
        assert upgraded.mapping_errors() == []


def test_a_v3_store_gets_match_keys_and_analyses_everything_next(store_url: str) -> None:
    # The keys are recorded by full analyses: a v3 store has none, so it must have one first.
    with Store.open(store_url, migrations=MIGRATIONS[:2]) as old:
        old.settle_pending({}, [], {"config_fingerprint": "abc", "run_id": "r1"})
        with old.engine.begin() as conn:  # as a v3 crmsync created it
            conn.execute(text("drop table match_keys"))
        assert _version(old) == 3 and old.reconcile_state() is not None
    with Store.open(store_url) as upgraded:
        assert _version(upgraded) == SCHEMA_VERSION
        assert upgraded.reconcile_state() is None
        upgraded.save_match_keys({("hubspot", "1"): "d1", ("hubspot", "2"): None}, replace=False)
        assert upgraded.refs_with_match_keys(["d1", "d2"]) == {("hubspot", "1")}


def test_a_v4_store_gets_split_pairs_and_its_explicit_links_confirmed(store_url: str) -> None:
    links = [
        Link("E1", "hubspot", "1", LinkMethod.EXTERNAL_ID),
        Link("E1", "salesforce", "006A", LinkMethod.EXTERNAL_ID),
        Link("E2", "hubspot", "2", LinkMethod.KEY),
        Link("E2", "salesforce", "006B", LinkMethod.KEY),
    ]
    with Store.open(store_url, migrations=MIGRATIONS[:3]) as old:
        old.save_links(links)  # as a v4 crmsync saved them: never confirmed
        with old.engine.begin() as conn:
            conn.execute(text("drop table split_pairs"))
        assert _version(old) == 4
    with Store.open(store_url) as upgraded:
        assert _version(upgraded) == SCHEMA_VERSION
        confirmed = {(r.instance, r.deal_id): r.confirmed for r in upgraded.link_records()}
        assert confirmed == {
            ("hubspot", "1"): True, ("salesforce", "006A"): True,
            ("hubspot", "2"): False, ("salesforce", "006B"): False,
        }  # fmt: skip
        assert apart(upgraded) == frozenset()


def test_a_v5_store_learns_the_entities_people_split_from_its_run_history(store_url: str) -> None:
    with Store.open(store_url, migrations=MIGRATIONS[:4]) as old:
        for counts in (
            {"split": 1, "entities": {"E1": ["hubspot:1", "salesforce:006A"]}, "kept": {}},
            {"confirmed": 2, "entities": ["E2"]},
            {"joined": 1, "entities": {"E3": ["hubspot:2", "salesforce:006B"]}},
        ):
            run_id = old.runs.start("links", RunKind.LINKS, "fingerprint")
            old.runs.finish(run_id, RunStatus.OK, counts=counts)
        with old.engine.begin() as conn:  # as a v5 crmsync created it
            conn.execute(text("drop table split_entities"))
        assert _version(old) == 5
    with Store.open(store_url) as upgraded:
        assert _version(upgraded) == SCHEMA_VERSION
        assert split_entity_ids(upgraded) == {"E1"}


@pytest.mark.parametrize(
    ("version", "table", "index", "columns"),
    [
        pytest.param(6, "audit", "ix_audit_deal_at", ["instance", "deal_id", "at"], id="v6-audit"),
        pytest.param(
            9, "journal", "ix_journal_instance_state", ["instance", "state"], id="v9-journal"
        ),
    ],
)
def test_an_older_store_gets_the_index_its_version_lacked(
    store_url: str, version: int, table: str, index: str, columns: list[str]
) -> None:
    """v6 stores get their audit indexed by record and time, v9 stores their journal by
    instance and state."""
    with Store.open(store_url, migrations=MIGRATIONS[: version - 1]) as old:
        with old.engine.begin() as conn:  # as a crmsync of that version created it
            conn.execute(text(f"drop index {index}"))
        assert _version(old) == version
    with Store.open(store_url) as upgraded:
        assert _version(upgraded) == SCHEMA_VERSION
        with upgraded.engine.connect() as conn:
            indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes(table)}
        assert indexes[index] == columns


def test_a_crmsync_of_v7_refuses_a_store_whose_bases_may_mark_unmapped_stages(
    store_url: str,
) -> None:
    """v8 changes no table, but its bases may hold a mark v7 cannot read: a v7 crmsync run
    against it (after a downgrade) must say so in one line, not fail on some base later."""
    with Store.open(store_url, migrations=MIGRATIONS[:6]) as old:
        old.save_links([Link("E1", "hubspot", "1", LinkMethod.KEY)])
        assert _version(old) == 7
    with Store.open(store_url) as upgraded:
        assert _version(upgraded) == SCHEMA_VERSION >= 8
        assert [r.deal_id for r in upgraded.link_records()] == ["1"]
    with pytest.raises(StoreError) as caught:
        Store.open(store_url, migrations=MIGRATIONS[:6])
    assert str(caught.value) == (
        f"state store schema v{SCHEMA_VERSION} is newer than this crmsync (v7): upgrade crmsync"
    )


@pytest.mark.postgres
def test_a_search_path_schema_that_does_not_exist_is_named_with_how_to_make_it() -> None:
    # PostgreSQL only says "no schema has been selected to create in": the README's
    # `?options=-csearch_path%3Dcrmsync` needs `CREATE SCHEMA crmsync` first.
    from tests.fixtures_store import PG_ADMIN_URL, _sqlalchemy_url, pg_unavailable_reason

    if reason := pg_unavailable_reason():
        pytest.skip(reason)
    missing = f"crmsync_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(StoreError) as caught:
        Store.open(_sqlalchemy_url(PG_ADMIN_URL, missing))
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith(
        f"no schema has been selected to create in (is schema {missing} of the URL's "
        f"search_path made? create it first: CREATE SCHEMA {missing})"
    ), message


def test_an_upgrade_says_once_which_versions_it_upgraded_the_store_between(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Any command opens (so upgrades) the store, a `crmsync check` of the new version too,
    while the scheduler of the old one may still run: from then on, that one refuses the
    store. Upgraded in silence, nothing told why."""
    with caplog.at_level(logging.INFO, logger="crmsync"):
        with Store.open(store_url, migrations=MIGRATIONS[:7]):
            assert not caplog.records  # a new store is no upgrade
        with Store.open(store_url):
            pass
        with Store.open(store_url):
            pass
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            f"state store {redact_url(store_url)} upgraded from schema v8 to v{SCHEMA_VERSION}: "
            "the crmsync that used it before (schema v8) refuses it from now on",
        )
    ]
