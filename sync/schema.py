"""Tables of the state store, the engine set-up for SQLite/PostgreSQL, and schema migrations.

One schema serves both dialects. Datetimes are aware UTC on both: PostgreSQL stores
``timestamptz``; SQLite stores naive UTC text that sorts correctly and is re-tagged as UTC when
read. The schema is versioned in ``meta``: an empty database gets the current tables, an older
one is upgraded one step at a time, a newer one is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from config import redact_url
from sync.errors import name_store

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "StoreError",
    "StoreUnreachable",
    "UTCDateTime",
    "chunks",
    "connect_engine",
    "ensure_schema",
    "json_loads",
    "lock_flags",
    "metadata",
    "named_failures",
    "one_snapshot",
    "schema_version",
    "transaction",
    "upsert",
    "upsert_rows",
]


_T = TypeVar("_T")

_log = logging.getLogger("crmsync.store")


class StoreError(RuntimeError):
    """The state store cannot be opened or used; the message is one actionable line."""

    exit_code = 1


class StoreUnreachable(StoreError):
    """The state store cannot be opened (`cannot open state store <URL>: ...`): its URL, its
    server or its folder; who knows where the URL is set adds what to check. `answered`: the
    database was reached and refused the work (a file that is no database, a permission), so
    where the URL points is not in question."""

    def __init__(self, message: str, *, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect; naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the state store")
        utc = value.astimezone(UTC)
        # SQLite keeps text: store naive UTC so values compare and sort as plain strings.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json() -> JSON:
    return JSON(none_as_null=True)


metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("job", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("config_fingerprint", String(128)),
    Column("counts", _json()),
    Column("calls", _json()),
    Column("error", Text),
    Index("ix_runs_kind_status", "kind", "status", "id"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("instance", String(200), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

deals = Table(
    "deals",
    metadata,
    Column("instance", String(200), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("fingerprint", String(128), nullable=False),
    Column("updated_at", UTCDateTime),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("last_seen_run", String(40)),
    Column("payload", _json(), nullable=False),
    # The payload's extra.account_id: the account (Account, company, organization) the deal
    # belongs to, by which a pull finds the deals of a renamed one (sync/store_accounts.py).
    Column("account_id", String(200)),
)
deals_by_account = Index("ix_deals_account", deals.c.instance, deals.c.account_id)

entities = Table(
    "entities",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

links = Table(
    "links",
    metadata,
    Column("instance", String(200), primary_key=True),
    Column("deal_id", String(200), primary_key=True),
    Column("entity_id", String(64), ForeignKey("entities.id"), nullable=False, index=True),
    Column("method", String(16), nullable=False),
    Column("score", Float),
    Column("matched_at", UTCDateTime, nullable=False),
    Column("confirmed", Boolean, nullable=False, default=False),
)

base = Table(
    "base",
    metadata,
    Column("entity_id", String(64), ForeignKey("entities.id"), primary_key=True),
    Column("payload", _json(), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

journal = Table(
    "journal",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("plan_id", String(128), nullable=False),
    Column("plan_change_id", String(128), nullable=False),
    Column("instance", String(200), nullable=False),
    Column("deal_id", String(200)),
    Column("op", String(16), nullable=False),
    Column("field", String(200)),
    Column("before", _json()),
    Column("after", _json()),
    Column("state", String(16), nullable=False),
    Column("result", _json()),
    Column("attempt", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_journal_plan", "plan_id", "plan_change_id"),
)

# The last refused write of each dead letter is read from the journal by instance and state
# (sync/store_failures.py), every night letters stand: failed entries are few, the journal large.
journal_by_state = Index("ix_journal_instance_state", journal.c.instance, journal.c.state)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("instance", String(200), nullable=False),
    Column("deal_id", String(200)),
    Column("field", String(200)),
    Column("before", _json()),
    Column("after", _json()),
    Column("reason", Text, nullable=False),
)
# The health report reads the writes audited since each live snapshot's pull by record and
# time (AuditLog.after_snapshots), not the whole audit.
audit_by_deal = Index("ix_audit_deal_at", audit.c.instance, audit.c.deal_id, audit.c.at)

failures = Table(
    "failures",
    metadata,
    Column("instance", String(200), primary_key=True),
    Column("deal_id", String(200), primary_key=True),
    # "" means the whole record rather than one field (primary keys cannot hold NULL).
    Column("field", String(200), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("dead", Boolean, nullable=False),
)

# Refs whose entity the next incremental reconcile must look at again: deals a pull saved
# since, and members of entities the last analysis left unsettled (sync/incremental.py).
pending = Table(
    "pending",
    metadata,
    Column("instance", String(200), primary_key=True),
    Column("deal_id", String(200), primary_key=True),
    Column("marked_at", UTCDateTime, nullable=False),
)

# The records each instance's CRM holds that cannot be mapped right now (sync/pull.py): a
# record leaves when it maps again or is deleted there; a full pull replaces the instance's set.
mapping_errors = Table(
    "mapping_errors",
    metadata,
    Column("instance", String(200), primary_key=True),
    Column("deal_id", String(200), primary_key=True),
    Column("field", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
)

# The match key (a digest) of each live deal as of the last analysis that loaded it: an
# incremental analysis finds the settled deals sharing a key with a changed one (the same-key
# duplicates a full analysis reports) without loading the whole store (sync/incremental.py).
match_keys = Table(
    "match_keys",
    metadata,
    Column("instance", String(200), primary_key=True),
    Column("deal_id", String(200), primary_key=True),
    Column("digest", String(32), nullable=False, index=True),
)

# Pairs of deals a person said are not the same real deal (`crmsync links split`): matching
# never links them again, whatever their keys, names or id fields say. Stored in ref order.
split_pairs = Table(
    "split_pairs",
    metadata,
    Column("instance_a", String(200), primary_key=True),
    Column("deal_a", String(200), primary_key=True),
    Column("instance_b", String(200), primary_key=True),
    Column("deal_b", String(200), primary_key=True),
    Column("split_at", UTCDateTime, nullable=False),
)

# Ids of entities a person split (`crmsync links split`). CRM records may carry such an id as
# crmsync's marker (copies it created), so no new entity is named so (sync/match.py).
split_entities = Table(
    "split_entities",
    metadata,
    Column("entity_id", String(64), primary_key=True),
    Column("split_at", UTCDateTime, nullable=False),
)

Migration = Callable[[Connection], None]


def _v1_to_v2(conn: Connection) -> None:
    """v2 adds `pending` (incremental reconcile); a v1 store starts without state: one full run."""
    pending.create(conn, checkfirst=True)


def _v2_to_v3(conn: Connection) -> None:
    """v3 adds `mapping_errors`. The records an earlier pull could not map are known only to
    that run's counts, and incremental pulls never read them again: the cursors go, so the
    next pull of each instance is full and finds them all."""
    mapping_errors.create(conn, checkfirst=True)
    conn.execute(cursors.delete())


def _v3_to_v4(conn: Connection) -> None:
    """v4 adds `match_keys`, filled by full analyses: the incremental state goes, so the next
    analysis is full and records every deal's key."""
    match_keys.create(conn, checkfirst=True)
    conn.execute(meta.delete().where(meta.c.key == "reconcile_state"))


def _v4_to_v5(conn: Connection) -> None:
    """v5 adds `split_pairs` (people's corrections of matches). Links the CRMs vouch for are
    confirmed from now on (sync/link_review.py EXPLICIT): so are those saved before."""
    split_pairs.create(conn, checkfirst=True)
    explicit = ("external_id", "link_id", "created", "manual")
    conn.execute(links.update().where(links.c.method.in_(explicit)).values(confirmed=True))


def _v5_to_v6(conn: Connection) -> None:
    """v6 adds `split_entities`, filled from the splits in the run history (each `links` run
    records the entities it split)."""
    split_entities.create(conn, checkfirst=True)
    query = select(runs.c.started_at, runs.c.counts).where(runs.c.kind == "links")
    done: dict[str, datetime] = {}
    for row in conn.execute(query):
        counts = row.counts if isinstance(row.counts, dict) else {}
        entities = counts.get("entities") if "split" in counts else None
        if isinstance(entities, dict):
            for entity in entities:
                done.setdefault(str(entity), row.started_at)
    if done:
        rows = [{"entity_id": e, "split_at": at} for e, at in sorted(done.items())]
        conn.execute(split_entities.insert(), rows)


def _v6_to_v7(conn: Connection) -> None:
    """v7 indexes the audit by record and time: the health report reads the writes since each
    snapshot without reading the whole audit."""
    audit_by_deal.create(conn, checkfirst=True)


def _v7_to_v8(conn: Connection) -> None:
    """v8 changes no table: bases may now mark the native stage a deal stayed in while its map
    did not cover it (sync/unmapped_stage.py), which a crmsync of v7 cannot read. The version
    makes such a crmsync refuse the store ("upgrade crmsync") instead of failing on a base."""


def _v8_to_v9(conn: Connection) -> None:
    """v9 keeps each deal's account id in a column of its own (`deals.account_id`, indexed),
    taken here from the snapshots that name one: a pull finds the deals of a renamed account
    by it. (Snapshots of older mappers name none; their first pull reads them all again.)"""
    if "account_id" not in {c["name"] for c in inspect(conn).get_columns("deals")}:
        conn.execute(text("ALTER TABLE deals ADD COLUMN account_id VARCHAR(200)"))
    named = deals.c.payload["extra"]["account_id"].as_string()
    conn.execute(deals.update().where(named.is_not(None)).values(account_id=named))
    deals_by_account.create(conn, checkfirst=True)


def _v9_to_v10(conn: Connection) -> None:
    """v10 indexes the journal by instance and state: a reconcile reads the last refusal of
    each dead letter it compared without reading the whole journal."""
    journal_by_state.create(conn, checkfirst=True)


# MIGRATIONS[i] upgrades a store from schema v(i+1) to v(i+2). When a table changes, edit its
# definition above (so a new store is created at the latest version) AND append a step here.
MIGRATIONS: tuple[Migration, ...] = (
    _v1_to_v2, _v2_to_v3, _v3_to_v4, _v4_to_v5, _v5_to_v6, _v6_to_v7, _v7_to_v8, _v8_to_v9,
    _v9_to_v10,
)  # fmt: skip
SCHEMA_VERSION = 1 + len(MIGRATIONS)

# Serialises concurrent first-time set-up by several PostgreSQL workers.
_SCHEMA_LOCK_KEY = int.from_bytes(
    hashlib.blake2b(b"crmsync:schema", digest_size=8).digest(), "big", signed=True
)


def json_loads(text: str | bytes) -> Any:
    # orjson reads a JSON column several times faster than json; it refuses the NaN/Infinity
    # that json.dumps (the writer) can emit, so those rare values fall back to json.
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def connect_engine(url: str) -> Engine:
    """An engine configured for the store: WAL + real transactions on SQLite, pre-ping on PG."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # Each pooled connection would see its own empty database; streams and writes
            # overlap on separate connections, so a shared one cannot serve either.
            raise StoreError(
                "in-memory SQLite cannot hold the state store: use a file URL such as "
                "sqlite:///path/crmsync.db"
            )
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False}, json_deserializer=json_loads
        )
        _sqlite_transactions(engine)
        return named_failures(engine)
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(
            f"unsupported state store {parsed.get_backend_name()!r}: use "
            "sqlite:///path/crmsync.db or postgresql+psycopg://user@host:5432/db"
        )
    try:
        # READ COMMITTED whatever the server's default_transaction_isolation: the store's
        # writers are built on it (set-up under an advisory lock reads what the lock's last
        # holder created; writers of one row wait for each other instead of failing). On a
        # server defaulting to SERIALIZABLE, two workers opening a new store at once both
        # created its tables ("relation already exists"), and writers at once failed with
        # "could not serialize access".
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            isolation_level="READ COMMITTED",
            json_deserializer=json_loads,
        )
    except Exception as exc:  # e.g. the driver is not installed
        raise StoreUnreachable(f"cannot open state store {redact_url(url)}: {exc}") from None
    return named_failures(engine)


def named_failures(engine: Engine) -> Engine:
    """`engine`, each database error it raises carrying the store's URL (password masked) for
    the line a run that failed on it ends with (`sync.errors.store_failure`)."""
    name = redact_url(engine.url.render_as_string(hide_password=True))

    @event.listens_for(engine, "handle_error")
    def _name(context: ExceptionContext) -> None:
        if context.sqlalchemy_exception is not None:
            name_store(context.sqlalchemy_exception, name)

    return engine


def _sqlite_transactions(engine: Engine) -> None:
    # pysqlite's implicit transactions skip DDL and SELECT; take control so every
    # transaction (migrations included) is atomic, and writers start IMMEDIATE so two
    # writers queue on busy_timeout instead of failing on a lock upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")  # first: switching to WAL may wait too
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # 64 MB of pages (default 2 MB): a first run's links, bases and keys go into indexes
        # far larger than 2 MB in random order, and each miss is a read from the OS.
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("crmsync_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# The read transaction of a `one_snapshot` block, by engine, in this thread (a new thread starts
# without: a pull's reader threads never share it).
_snapshot: ContextVar[tuple[Engine, Connection] | None] = ContextVar("snapshot", default=None)


@contextmanager
def one_snapshot(engine: Engine) -> Iterator[None]:
    """Within the block, every read transaction (``transaction(engine, write=False)``) of this
    thread is one: they all read the store as it was at the first of them. A reader of several
    tables (an analysis) taking one transaction each saw a run that wrote meanwhile half done:
    an apply (the deals and crmsync's writes read before a batch, the bases after), a pull (a
    deal's snapshot loaded before it saved the deal again, crmsync's writes since the snapshot
    after, so none of them).
    Writes still commit on their own connections. Within a block of the same engine, a block
    is that block."""
    shared = _snapshot.get()
    if shared is not None and shared[0] is engine:
        yield
        return
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # READ COMMITTED reads anew at each statement
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        conn.execution_options(crmsync_write=False)  # SQLite: a read transaction is a snapshot
        with conn.begin():
            if conn.dialect.name == "postgresql":
                # An analysis computes for minutes between two reads (a million deals): a
                # server ending sessions idle in a transaction would end it.
                conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
            token = _snapshot.set((engine, conn))
            try:
                yield
            finally:
                _snapshot.reset(token)


@contextmanager
def transaction(engine: Engine, write: bool = True) -> Iterator[Connection]:
    """One transaction on a fresh connection: committed on success, rolled back on error (a
    read within `one_snapshot`: that block's)."""
    shared = None if write else _snapshot.get()
    if shared is not None and shared[0] is engine:
        yield shared[1]
        return
    try:
        with engine.connect() as conn:
            conn.execution_options(crmsync_write=write)
            with conn.begin():
                yield conn
    except (KeyboardInterrupt, SystemExit) as stop:
        # Ctrl-C mid-statement: SQLAlchemy takes it for a lost connection and closes it, but
        # SQLite keeps that connection's locks until its statement is freed, and the frames
        # of this traceback hold the statement's cursor. Freed here; else the clean-up after
        # the interrupt (recording the run, forgetting the reconcile state) waits on our own
        # lock for 30 s and fails with "database is locked".
        traceback.clear_frames(stop.__traceback__)
        raise


def chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """Consecutive lists of ``size`` items (the last may be shorter), lazily."""
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def upsert(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    update: Sequence[str],
    where: Callable[[Any], Any] | None = None,
) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET update`` (DO NOTHING if update is empty);
    ``where(excluded)``: update only the rows for which it holds (the others stay as stored)."""
    return _upsert(conn.dialect.name, table, keys, update, where)


def _upsert(
    dialect: str,
    table: Table,
    keys: Sequence[str],
    update: Sequence[str],
    where: Callable[[Any], Any] | None = None,
) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: stmt.excluded[name] for name in update},
        where=where(stmt.excluded) if where is not None else None,
    )


def upsert_rows(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    update: Sequence[str],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    batch_size: int = 1000,
) -> int:
    """The :func:`upsert` of many rows (tuples of the `columns`' values), sent through the
    driver's executemany; returns how many rows were given.

    Each value is converted as its column's type binds it (a datetime once per distinct
    value: rows written together mostly share one), so the store holds exactly what
    ``conn.execute(upsert(...), rows)`` writes. That path processed every row's parameters
    in SQLAlchemy: a first analysis's tens of thousands of links, bases and keys took longer
    to prepare than to write."""
    plan = _prepared(conn.dialect, table, tuple(keys), tuple(update), tuple(columns))
    done = 0
    for chunk in chunks(rows, batch_size):
        params: list[Any] = chunk
        if not plan.as_given:
            given = list(zip(*chunk, strict=True))
            values = [
                given[i] if to_driver is None else to_driver(given[i])
                for i, to_driver in zip(plan.at, plan.convert, strict=True)
            ]
            params = list(zip(*values, strict=True))
            if plan.names is not None:
                params = [dict(zip(plan.names, row, strict=True)) for row in params]
        conn.exec_driver_sql(plan.sql, params)
        done += len(chunk)
    return done


@dataclass(frozen=True)
class _Prepared:
    sql: str
    at: tuple[int, ...]  # the driver's parameters in order, as positions in a given row
    convert: tuple[Callable[[Sequence[Any]], list[Any]] | None, ...]  # by parameter
    names: tuple[str, ...] | None  # the parameters' names, for a driver taking dicts
    as_given: bool  # rows go to the driver as they are


# Where a dialect keeps the upsert_rows statements compiled for it.
_PREPARED_ON_DIALECT = "_crmsync_upserts"


def _prepared(
    dialect: Dialect,
    table: Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    columns: tuple[str, ...],
) -> _Prepared:
    """An :func:`upsert_rows` statement, compiled once per engine (a pull flags each chunk's
    deals, an apply saves bases after each batch). Kept on the engine's dialect, so it goes
    with the engine: a process-wide cache keyed by the dialect kept the dialect of every
    store ever opened alive, and `crmsync schedule` opens one for each firing."""
    cache: dict[tuple[Any, ...], _Prepared] = vars(dialect).setdefault(_PREPARED_ON_DIALECT, {})
    key = (table, keys, update, columns)
    if key not in cache:
        cache[key] = _compile_upsert(dialect, table, keys, update, columns)
    return cache[key]


def _compile_upsert(
    dialect: Dialect,
    table: Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    columns: tuple[str, ...],
) -> _Prepared:
    compiled = _upsert(dialect.name, table, keys, update).compile(
        dialect=dialect, column_keys=list(columns)
    )
    names = list(compiled.positiontup or () if compiled.positional else compiled.binds)
    if sorted(names) != sorted(columns):  # a column default SQLAlchemy would fill in
        raise ValueError(f"{table.name}: rows must give {sorted(names)}, not {list(columns)}")
    at = tuple(columns.index(name) for name in names)
    convert = tuple(_converter(table.c[name].type, dialect) for name in names)
    return _Prepared(
        sql=compiled.string,
        at=at,
        convert=convert,
        names=None
        if compiled.positional
        else tuple(compiled.escaped_bind_names.get(name, name) for name in names),
        as_given=compiled.positional and at == tuple(sorted(at)) and not any(convert),
    )


def _converter(type_: Any, dialect: Dialect) -> Callable[[Sequence[Any]], list[Any]] | None:
    """A column's values -> what the driver takes, as the type's bind processor makes them;
    None: as they are."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return None
    if not isinstance(type_, UTCDateTime):
        return lambda values: list(map(process, values))

    def shared(values: Sequence[Any]) -> list[Any]:
        # Equal instants convert alike whatever their zone; a naive value equals no aware
        # one, so it still reaches the processor, which refuses it.
        seen: dict[Any, Any] = {}
        out = []
        for value in values:
            if value not in seen:
                seen[value] = process(value)
            out.append(seen[value])
        return out

    return shared


def lock_flags(conn: Connection) -> None:
    """Wait for the other transactions that write this store's flags for the next incremental
    reconcile (``pending``) to end; held to the end of the caller's. PostgreSQL only: SQLite
    runs one writer at a time. Pulls lock the rows by deal id, a reconcile settling the flags
    its analysis read in the order it read them: one of two such at once (a `crmsync pull`
    takes no reconcile lock) was ended by PostgreSQL as deadlocked."""
    if conn.dialect.name == "postgresql":  # per store schema, as the run locks are
        conn.execute(
            select(
                text(
                    "pg_advisory_xact_lock(hashtext('crmsync:pending'), hashtext(current_schema()))"
                )
            )
        )


def schema_version(conn: Connection) -> int:
    if not _has_meta(conn):
        return 0
    value = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 0


def _has_meta(conn: Connection) -> bool:
    """Whether the store's tables exist (its `meta` table, as the URL's search path finds it).
    Not `inspect(conn).has_table`: SQLAlchemy's PostgreSQL dialect caches that query in an
    lru_cache keyed by the dialect, which keeps every opened engine's dialect alive (up to
    128), and `crmsync schedule` opens the store (an engine) anew at each firing."""
    if conn.dialect.name == "postgresql":
        return conn.execute(select(text("to_regclass('meta')"))).scalar() is not None
    query = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
    return conn.execute(query).first() is not None


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(meta.delete().where(meta.c.key == "schema_version"))
    conn.execute(meta.insert().values(key="schema_version", value=str(version)))


def ensure_schema(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Create, upgrade or refuse the store's schema; returns the version now in place."""
    for attempt in range(6):
        try:
            return _ensure_schema(engine, migrations)
        except OperationalError as exc:
            # Workers opening a brand-new SQLite file at once can meet it mid-switch to WAL,
            # where SQLite answers 'locked' without waiting: the switch is over in moments.
            if engine.dialect.name != "sqlite" or "locked" not in str(exc) or attempt == 5:
                _refuse_store(engine, exc)
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def _refuse_store(engine: Engine, exc: SQLAlchemyError) -> NoReturn:
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).splitlines() or [""])[0]
    if type(cause).__name__ == "InvalidSchemaName":  # PostgreSQL names no schema: say which
        options = str(engine.url.query.get("options") or "")
        named = re.search(r"search_path\s*=\s*([^\s,]+)", options)
        schema = named.group(1) if named else "<schema>"
        first += (
            f" (is schema {schema} of the URL's search_path made? create it first: "
            f"CREATE SCHEMA {schema})"
        )
    raise StoreUnreachable(
        f"cannot open state store {redact_url(str(engine.url))}: {type(cause).__name__}: {first}",
        answered=not isinstance(exc, OperationalError),  # reached, but refused
    ) from None


def _ensure_schema(engine: Engine, migrations: Sequence[Migration]) -> int:
    latest = 1 + len(migrations)
    try:
        with transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(text(f"pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")))
            found = schema_version(conn)
            if found > latest:
                raise StoreError(
                    f"state store schema v{found} is newer than this crmsync (v{latest}): "
                    "upgrade crmsync"
                )
            if found == 0:
                metadata.create_all(conn)
                _stamp(conn, latest)
                return latest
            for version in range(found, latest):
                # Each step is stamped in the same transaction, so a failed upgrade leaves
                # the store exactly at the old version.
                migrations[version - 1](conn)
                _stamp(conn, version + 1)
    except OperationalError:
        raise  # ensure_schema may retry it
    except SQLAlchemyError as exc:
        _refuse_store(engine, exc)
    if found < latest:
        # Any command upgrades the store, a `crmsync check` of a new version tried beside the
        # scheduler of the old one too: from now on that one refuses the store; say so once.
        _log.warning(
            "state store %s upgraded from schema v%d to v%d: the crmsync that used it before "
            "(schema v%d) refuses it from now on",
            redact_url(str(engine.url)),
            found,
            latest,
            found,
        )
    return latest
