"""Per-job run locks, so two schedulers (or a scheduler and a person) never run one job at once.

PostgreSQL: a session advisory lock held on a dedicated connection for the lock's life; it is
released by the server if the process dies. Advisory locks are database-wide while a store is
one schema of a database (the URL's search_path), so the key names the store's schema.
SQLite: an OS file lock (``flock``) on ``<db>.<job>.lock`` beside the database, released by the
kernel if the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from sync.schema import StoreError
from sync.store import Store
from sync.store_records import RunKind

__all__ = [
    "RECONCILE_LOCK", "LockBusy", "job_lock", "lock_key", "reconcile_lock", "report_job_lock",
]  # fmt: skip

# Held by a reconcile from its pull to its end, and by every apply or rollback outside one: a
# plan made from a pull must not meet writes (to the CRMs and to the bases) made after it.
RECONCILE_LOCK = "reconcile"
_UNDER_RECONCILE_LOCK = (
    RunKind.RECONCILE, RunKind.RECONCILE_DRY_RUN, RunKind.APPLY, RunKind.ROLLBACK,
)  # fmt: skip
_ABANDONED = "its process ended without recording the end of the run (killed?); rerun to resume"
_POLL_SECONDS = 0.2
_KEEPALIVE_SECONDS = 1.0  # below any idle-session timeout in use

_log = logging.getLogger("crmsync.locks")


class LockBusy(StoreError):
    """Another process holds the job's lock."""

    def __init__(self, job: str, waited: float | None = None) -> None:
        self.job = job
        if waited is None:
            message = f"job {job!r} is already running (lock held by another process)"
        else:
            message = (
                f"job {job!r} is still running after waiting {waited:g}s "
                "(lock held by another process)"
            )
        super().__init__(message)


def lock_key(job: str, schema: str | None = None) -> int:
    """Stable signed 64-bit key for ``pg_advisory_lock`` (same on every machine and run).

    Per store schema: stores side by side in one database never hold each other's locks. The
    default schema (``public``) keeps the key of earlier versions, which lock stores there too.
    """
    scope = "" if schema in (None, "public") else f"{schema}:"
    digest = hashlib.blake2b(f"crmsync:job:{scope}{job}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def job_lock(
    store: Store, job: str, wait: bool = False, timeout: float | None = None
) -> Iterator[None]:
    """Hold the lock of ``job`` for the ``with`` body, or raise :class:`LockBusy`.

    ``wait=False`` fails at once when busy; ``wait=True`` polls until the lock is free or
    ``timeout`` seconds have passed (``None``: wait for ever).
    """
    deadline = None if (not wait or timeout is None) else time.monotonic() + timeout
    lock = _pg_lock if store.dialect == "postgresql" else _file_lock
    with lock(store, job, wait, deadline, timeout):
        yield


@contextmanager
def reconcile_lock(
    store: Store, wait: bool = False, timeout: float | None = None
) -> Iterator[None]:
    """The store's reconcile lock (see RECONCILE_LOCK). Runs of the kinds that only ever run
    under it and are still `running` are dead once it is taken: they are recorded as such."""
    with job_lock(store, RECONCILE_LOCK, wait, timeout):
        store.end_abandoned_runs(_UNDER_RECONCILE_LOCK, _ABANDONED)
        yield


@contextmanager
def report_job_lock(store: Store, job: str) -> Iterator[None]:
    """The lock of the scheduled report job ``job`` (see job_lock). Only its holder records
    report runs of ``job`` (entries cannot take the names of crmsync's own commands, see
    RESERVED_ENTRY_NAMES), so those still `running` once it is taken are dead: they are
    recorded as such."""
    with job_lock(store, job):
        store.end_abandoned_runs((RunKind.REPORT,), _ABANDONED, job=job)
        yield


def _retry_until(deadline: float | None, wait: bool) -> bool:
    if not wait or (deadline is not None and time.monotonic() >= deadline):
        return False
    time.sleep(_POLL_SECONDS)
    return True


@contextmanager
def _pg_lock(
    store: Store, job: str, wait: bool, deadline: float | None, timeout: float | None
) -> Iterator[None]:
    # AUTOCOMMIT: a session lock must not leave the connection idle in a transaction for hours.
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        key = lock_key(job, conn.execute(select(text("current_schema()"))).scalar())
        try_lock = select(text(f"pg_try_advisory_lock({key})"))
        while not conn.execute(try_lock).scalar():
            if not _retry_until(deadline, wait):
                raise LockBusy(job, timeout if wait else None)
        # The lock lives as long as its session: keep the session busy, or a server (or a
        # proxy) that ends idle sessions ends the lock while the job still runs.
        done = threading.Event()
        keepalive = threading.Thread(target=_keep_alive, args=(conn, done), daemon=True)
        keepalive.start()
        try:
            yield
        finally:
            done.set()
            keepalive.join()
            # The pooled connection outlives this block: release explicitly, and discard the
            # connection if that fails so the lock cannot linger in the pool (the server
            # releases a session's locks when it ends).
            try:
                conn.execute(select(text(f"pg_advisory_unlock({key})")))
            except Exception as exc:
                _log.warning("job %r: lock connection lost: %s", job, str(exc).splitlines()[0])
                conn.invalidate()


def _keep_alive(conn: Connection, done: threading.Event) -> None:
    while not done.wait(_KEEPALIVE_SECONDS):
        try:
            conn.execute(select(text("1")))
        except Exception as exc:  # the session (and the lock) is gone; release says so
            _log.debug("lock keep-alive failed: %s", exc)
            return


def _lock_path(store: Store, job: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", job)
    db = store.sqlite_path
    if db is None:
        raise StoreError("file locks need a SQLite store")
    return db.with_name(f"{db.name}.{safe}.lock")


@contextmanager
def _file_lock(
    store: Store, job: str, wait: bool, deadline: float | None, timeout: float | None
) -> Iterator[None]:
    path = _lock_path(store, job)
    # The file is left in place on release: unlinking it would let a waiter lock a stale inode.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not _retry_until(deadline, wait):
                    raise LockBusy(job, timeout if wait else None) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
