"""The state store: cursors, deal snapshots, links, bases (and, via its parts, runs and journal).

One SQLAlchemy Core implementation for SQLite (default: ``sqlite:///path/crmsync.db``) and
PostgreSQL (``postgresql+psycopg://...``). Every public method is one transaction. Nothing
that looks like a credential is ever written: JSON values are checked on the way in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    create_engine,
    make_url,
    select,
)  # fmt: skip
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from config import redact_url
from sync import schema as t
from sync.schema import (
    MIGRATIONS,
    Migration,
    StoreError,
    StoreUnreachable,
    chunks,
    transaction,
    upsert,
)
from sync.store_accounts import holds_accounts, rename_accounts
from sync.store_apply import AuditLog, Journal
from sync.store_deals import (
    BATCH_SIZE,
    DealRow,
    count_deals,
    deal_rows,
    iter_payloads,
    mark_chunk_deleted,
    read_deals,
    read_deletion_marks,
    read_fingerprints,
    read_live_ids,
    upsert_changed,
)
from sync.store_failures import DeadLetters, forget_failures
from sync.store_forget import Holdings, holdings, known_instances, purge
from sync.store_gaps import clear_gaps, read_gaps, record_gaps
from sync.store_keys import refs_with_digests, save_digests
from sync.store_links import (
    count_links,
    delete_links,
    read_bases,
    read_entities_of,
    read_link_records,
    read_links,
    write_links_and_bases,
)
from sync.store_meta import (
    drop_reconcile_state,
    mapping_key,
    put_meta,
    read_meta,
    read_reconcile_epoch,
    read_reconcile_state,
    record_reconcile_state,
    stage_names_key,
)
from sync.store_pending import flag_deals, read_pending, settle_flags
from sync.store_records import (
    AuditEntry,
    FailureRecord,
    JournalEntry,
    JournalOp,
    JournalRecord,
    JournalState,
    Link,
    LinkMethod,
    RunKind,
    RunRecord,
    RunStatus,
    SecretInPayload,
)
from sync.store_runs import RunLog, insert_run

__all__ = [
    "AuditEntry",
    "DealRow",
    "FailureRecord",
    "Holdings",
    "JournalEntry",
    "JournalOp",
    "JournalRecord",
    "JournalState",
    "Link",
    "LinkMethod",
    "RunKind",
    "RunRecord",
    "RunStatus",
    "SecretInPayload",
    "Store",
    "StoreError",
    "StoreUnreachable",
    "upsert",
]

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """Handle on one state store. Open with :meth:`Store.open`; close (or use ``with``)."""

    __slots__ = (
        "_checkpoints", "_clock", "_engine", "_lock_engine", "audit", "failures", "journal", "runs"
    )  # fmt: skip

    def __init__(self, engine: Engine, clock: Clock = _utcnow) -> None:
        self._engine = engine
        self._lock_engine: Engine | None = None
        self._clock = clock
        self._checkpoints: list[Callable[[], None]] = []
        self.journal = Journal(engine, clock)
        self.audit = AuditLog(engine, clock)
        self.failures = DeadLetters(engine, clock)
        self.runs = RunLog(engine, clock)

    @classmethod
    def open(
        cls, url: str, *, clock: Clock = _utcnow, migrations: Sequence[Migration] = MIGRATIONS
    ) -> Store:
        """Connect, then create / upgrade the schema (or refuse a newer one)."""
        try:
            parsed = make_url(url)
        except Exception:
            raise StoreError(
                "invalid state store URL (expected sqlite:///path/crmsync.db or "
                "postgresql+psycopg://user@host:5432/db)"
            ) from None
        engine = t.connect_engine(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file in the way, a read-only or missing mount
                engine.dispose()
                why = (
                    "a file is in the way"
                    if isinstance(exc, FileExistsError)
                    else exc.strerror or type(exc).__name__
                )
                raise StoreUnreachable(
                    f"cannot open state store {redact_url(url)}: cannot create its folder "
                    f"{folder} ({why})"
                ) from None
        try:
            t.ensure_schema(engine, migrations)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock)

    def close(self) -> None:
        self._engine.dispose()
        if self._lock_engine is not None:
            self._lock_engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({redact_url(str(self._engine.url))})"

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def lock_engine(self) -> Engine:
        """Connections for PostgreSQL's session locks, one per lock, held as long as it is
        (a pull's, for its whole run): outside the pool, which serves the work. A config of
        more instances than the pool has slots (5 + 10) held every slot with its pull locks,
        and the pull's first write waited 30 s for one, then failed."""
        if self._lock_engine is None:
            engine = create_engine(self._engine.url, poolclass=NullPool)
            self._lock_engine = t.named_failures(engine)
        return self._lock_engine

    def now(self) -> datetime:
        """The store's clock: the time every row it writes is stamped with."""
        return self._clock()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite store, else None."""
        database = self._engine.url.database
        return Path(database).resolve() if self.dialect == "sqlite" and database else None

    # -- checkpoints ------------------------------------------------------------------------

    def add_checkpoint(self, check: Callable[[], None]) -> None:
        """Have :meth:`checkpoint` call ``check`` (a lock held on this store, confirming that
        it still holds) until :meth:`remove_checkpoint`."""
        self._checkpoints.append(check)

    def remove_checkpoint(self, check: Callable[[], None]) -> None:
        self._checkpoints.remove(check)

    def checkpoint(self) -> None:
        """Writers call this before each batch (a pull's chunk, an apply's batch): it raises
        when a lock they write under was lost (sync.locks.LockLost), so that nothing more is
        written without it. Run bookkeeping (runs.finish) needs none."""
        for check in list(self._checkpoints):
            check()

    # -- cursors and deals ------------------------------------------------------------------

    def cursor(self, instance: str) -> str | None:
        with transaction(self._engine, write=False) as conn:
            query = select(t.cursors.c.cursor).where(t.cursors.c.instance == instance)
            return conn.execute(query).scalar()

    def save_deals(
        self,
        instance: str,
        payloads: Iterable[DealRow],
        cursor: str | None = None,
        *,
        run_id: str | None = None,
        batch_size: int = BATCH_SIZE,
        gaps: Sequence[Mapping[str, str]] = (),
        replace_gaps: bool = False,
        flag: bool = False,
    ) -> int:
        """Upsert deal snapshots and (if given) the cursor that covers them, in ONE transaction.

        If ``payloads`` raises part-way, nothing of this call is kept and the cursor stays
        where it was. Pass one page (or chunk) per call with the cursor after it.

        A saved deal mapped, so it leaves the instance's data gaps (:meth:`mapping_errors`);
        ``gaps`` (``MappingError.as_dict()`` values) join them, or with ``replace_gaps`` (the
        end of a full pull) become the instance's whole set.

        ``flag``: the deals are also flagged for the next incremental reconcile
        (:meth:`mark_pending`) in the same transaction. Flagged before or after the save, a
        reconcile analysing meanwhile could read the flag with the old snapshot and drop it.

        Rows are written in id order (the page is held in memory): two pulls of one instance
        at once, listing the deals in other orders, would otherwise deadlock.

        A deal stored with the same payload and deleted state is neither written nor flagged
        (an incremental read re-reads its overlap; a full read, everything): returns how many
        deals were written.
        """
        saved = 0
        now = self._clock()
        payloads = sorted(payloads, key=lambda row: row[0])
        with transaction(self._engine) as conn:
            stmt = upsert_changed(conn)
            for chunk in chunks(payloads, batch_size):
                rows = deal_rows(instance, chunk, run_id)
                written = list(conn.scalars(stmt, rows))
                clear_gaps(conn, instance, [row[0] for row in chunk])
                if flag and written:
                    flag_deals(conn, instance, written, now)
                saved += len(written)
            if gaps or replace_gaps:
                record_gaps(conn, instance, gaps, now, replace=replace_gaps)
            if cursor is not None:
                self._save_cursor(conn, instance, cursor)
        return saved

    def cursor_saved_at(self, instance: str) -> datetime | None:
        """When the instance's cursor was last saved: the end of its last complete pull."""
        with transaction(self._engine, write=False) as conn:
            query = select(t.cursors.c.updated_at).where(t.cursors.c.instance == instance)
            return conn.execute(query).scalar()

    def save_cursor(
        self,
        instance: str,
        cursor: str,
        mapping: str | None = None,
        stage_names: Mapping[str, str] | None = None,
    ) -> None:
        """Advance a cursor on its own (a pull: once its last chunk and its deletions are saved),
        with the fingerprint of the mapping the deals it covers were read under (see
        :meth:`mapping_of`) and the names of the native stages it read (:meth:`stage_names`)."""
        with transaction(self._engine) as conn:
            self._save_cursor(conn, instance, cursor)
            if mapping is not None:
                put_meta(conn, mapping_key(instance), mapping)
            if stage_names is not None:
                names = json.dumps(dict(stage_names), sort_keys=True)
                put_meta(conn, stage_names_key(instance), names)

    def stage_names(self, instance: str) -> dict[str, str]:
        """The names of the instance's native stages by `sync.stage_names.stage_key`, as its
        last complete pull read them; empty before one did."""
        names = read_meta(self._engine, stage_names_key(instance))
        return dict(json.loads(names)) if names else {}

    def mapping_of(self, instance: str) -> str | None:
        """The mapping fingerprint (`Config.mapping_fingerprint`) the instance's stored deals
        were read under; None before a pull recorded one."""
        return read_meta(self._engine, mapping_key(instance))

    def _save_cursor(self, conn: Connection, instance: str, cursor: str) -> None:
        stmt = upsert(conn, t.cursors, ("instance",), ("cursor", "updated_at"))
        conn.execute(stmt, {"instance": instance, "cursor": cursor, "updated_at": self._clock()})

    def iter_deals(
        self, instance: str, *, include_deleted: bool = False, batch_size: int = BATCH_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Stream the deals' JSON payloads in id order, ``batch_size`` rows in memory at a time.

        Holds a read transaction (a server-side cursor on PostgreSQL) until exhausted or closed.
        """
        yield from iter_payloads(self._engine, instance, include_deleted, batch_size)

    def get_deals(self, instance: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Payloads of the given ids (deleted ones included); unknown ids are absent."""
        return read_deals(self._engine, instance, ids)

    def deletion_marks(
        self, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str | None, datetime | None]]:
        """(instance, id) -> (run, its start) that marked each deleted deal of `refs` deleted
        (a pull that saw it so, or the apply whose delete it was); (None, None) when no run
        did. Live and unknown deals are absent."""
        return read_deletion_marks(self._engine, refs)

    def fingerprints(self, instance: str) -> dict[str, str]:
        """id -> fingerprint of every stored deal of ``instance`` (deleted ones included)."""
        return read_fingerprints(self._engine, instance)

    def live_ids(self, instance: str) -> set[str]:
        """Ids of the stored deals of ``instance`` not marked deleted."""
        return read_live_ids(self._engine, instance)

    def deal_count(self, instance: str, *, include_deleted: bool = False) -> int:
        return count_deals(self._engine, instance, include_deleted)

    def mark_deleted(
        self, instance: str, ids: Iterable[str], *, run_id: str | None = None, flag: bool = False
    ) -> int:
        """Flag deals deleted at the source; returns how many were live before.

        The snapshot says so too (`extra.deleted`, as a pull of a deleted record maps it): the
        engine reads snapshots, and one still looking live would hide the deletion from every
        later analysis. ``flag``: as in :meth:`save_deals`.
        """
        changed = 0
        now = self._clock()
        # Tables and rows in the order save_deals writes them: two pulls at once never deadlock.
        with transaction(self._engine) as conn:
            for chunk in chunks(sorted(ids), BATCH_SIZE):
                changed += mark_chunk_deleted(conn, instance, chunk, run_id)
                clear_gaps(conn, instance, chunk)  # a deleted record is no gap
                if flag:
                    flag_deals(conn, instance, chunk, now)
        return changed

    def holds_accounts(self, instance: str) -> bool:
        """Whether some live deal of the instance names an account (sync/store_accounts.py)."""
        return holds_accounts(self._engine, instance)

    def rename_accounts(
        self, instance: str, names: Mapping[str, str | None], *, flag: bool = False
    ) -> list[str]:
        """The live deals of the accounts in `names` (account id -> its name now) that name
        it otherwise take that name, in one transaction; returns their ids. ``flag``: as in
        :meth:`save_deals` (the next reconcile matches them by the new name)."""
        with transaction(self._engine) as conn:
            written = rename_accounts(conn, instance, names)
            if flag:
                flag_deals(conn, instance, written, self._clock())
        return written

    def mapping_errors(self, instances: Iterable[str] | None = None) -> list[dict[str, str]]:
        """The records the CRMs hold that cannot be mapped, as of each instance's latest pull:
        ``{"system", "id", "field", "reason"}`` by instance and id."""
        return read_gaps(self._engine, instances)

    # -- entities, links, bases -------------------------------------------------------------

    def links(self) -> dict[tuple[str, str], str]:
        """(instance, deal_id) -> entity_id for every stored link."""
        return read_links(self._engine)

    def link_counts(self) -> dict[str, int]:
        """Instance -> how many links the store holds of its deals."""
        return count_links(self._engine)

    def entities_of(self, instance: str, deal_ids: Iterable[str]) -> dict[str, str]:
        """deal_id -> entity_id of those of the instance's deals that are linked."""
        return read_entities_of(self._engine, instance, deal_ids)

    def link_records(self, entity_ids: Iterable[str] | None = None) -> list[Link]:
        return read_link_records(self._engine, entity_ids)

    def save_links(self, links: Iterable[Link]) -> int:
        """Upsert links (one per (instance, deal_id)); their entities are created as needed."""
        return self.save_links_and_bases(links, {})

    def save_links_and_bases(
        self, links: Iterable[Link], bases: Mapping[str, Mapping[str, Any]]
    ) -> int:
        """:meth:`save_links` and :meth:`save_bases` in one transaction (an analysis's new
        links and agreed values): the entities of both are created once. Returns the links
        saved."""
        with transaction(self._engine) as conn:
            return write_links_and_bases(conn, links, bases, self._clock())

    def unlink(self, instance: str, deal_id: str) -> bool:
        return self.unlink_all(instance, [deal_id]) > 0

    def unlink_all(self, instance: str, deal_ids: Iterable[str]) -> int:
        """Drop the links of these deals (one transaction); returns how many there were."""
        with transaction(self._engine) as conn:
            return delete_links(conn, instance, deal_ids)

    def bases(self, entity_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """entity_id -> the canonical field values all systems last agreed on."""
        return read_bases(self._engine, entity_ids)

    def save_bases(self, bases: Mapping[str, Mapping[str, Any]]) -> int:
        self.save_links_and_bases((), bases)
        return len(bases)

    # -- incremental reconcile --------------------------------------------------------------

    def mark_pending(self, instance: str, ids: Iterable[str]) -> int:
        """Flag deals the next incremental reconcile must look at again (a pull saved them)."""
        now, marked = self._clock(), 0
        with transaction(self._engine) as conn:
            for chunk in chunks(ids, BATCH_SIZE):
                marked += flag_deals(conn, instance, chunk, now)
        return marked

    def pending(self) -> dict[tuple[str, str], datetime]:
        """(instance, deal_id) -> when it was flagged, for every flagged deal."""
        return read_pending(self._engine)

    def settle_pending(
        self,
        consumed: Mapping[tuple[str, str], datetime],
        unsettled: Iterable[tuple[str, str]],
        state: Mapping[str, Any],
        stale: Sequence[FailureRecord] = (),
    ) -> int:
        """End of an analysis, in one transaction: drop the flags it read (unless flagged again
        since), flag what it left unsettled, record the state the next run builds on, and
        forget the `stale` failures (sync/stale_letters.py); returns how many went. One
        transaction: a run cut before it leaves the entities flagged and the failures kept, so
        the next run compares them again."""
        now = self._clock()
        with transaction(self._engine) as conn:
            settle_flags(conn, consumed, unsettled, now)
            record_reconcile_state(conn, state)
            return forget_failures(conn, stale)

    def save_match_keys(
        self, digests: Mapping[tuple[str, str], str | None], *, replace: bool
    ) -> None:
        """Deals' match-key digests (None drops one); `replace`: all deals, drop the rest."""
        save_digests(self._engine, digests, replace=replace)

    def refs_with_match_keys(self, digests: Iterable[str]) -> set[tuple[str, str]]:
        """(instance, deal id) of the stored deals whose match key has one of these digests."""
        return refs_with_digests(self._engine, digests)

    def reconcile_state(self) -> dict[str, Any] | None:
        """What the last remembering analysis recorded (None: the next one must be full).

        None too when a full pull forgot the state after the analysis that recorded it began
        (its `epoch`, see :meth:`reconcile_epoch`, is no longer the store's)."""
        return read_reconcile_state(self._engine)

    def reconcile_epoch(self) -> str | None:
        """Changes whenever a full pull forgets the state: an analysis records the epoch it
        began in with its state, which then holds only while no full pull has run since."""
        return read_reconcile_epoch(self._engine)

    def forget_reconcile_state(self) -> None:
        """A full pull re-saved everything without flagging it: the next analysis is full.

        Also the state an analysis running meanwhile (another process) records at its end:
        a new epoch. A full pull forgets before it saves anything, and again once done."""
        with transaction(self._engine) as conn:
            drop_reconcile_state(conn)

    # -- retired instances ------------------------------------------------------------------

    def known_instances(self) -> set[str]:
        """The instances the store holds state of (sync/store_forget.py)."""
        with transaction(self._engine, write=False) as conn:
            return known_instances(conn)

    def holdings(self, instance: str) -> Holdings:
        """What the store holds of `instance`, counted."""
        with transaction(self._engine, write=False) as conn:
            return holdings(conn, instance)

    def forget(self, instance: str, config_fingerprint: str) -> tuple[str, Holdings]:
        """Remove what the store holds of `instance` and record it as a `forget` run, in one
        transaction (cut short, the store stays as it was, with no such run); the run's id
        and what was removed."""
        with transaction(self._engine) as conn:
            held = purge(conn, instance)
            counts = {"instance": instance, **held.as_dict()}
            run_id = insert_run(
                conn, "forget", RunKind.FORGET, self._clock(), config_fingerprint, RunStatus.OK,
                counts,
            )  # fmt: skip
        return run_id, held
