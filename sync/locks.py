"""Per-job run locks, so two schedulers (or a scheduler and a person) never run one job at once,
and per-instance pull locks, so two processes never pull one CRM instance at once.

PostgreSQL: a session advisory lock held on a dedicated connection for the lock's life; it is
released by the server if the process dies. Advisory locks are database-wide while a store is
one schema of a database (the URL's search_path), so the key names the store's schema.
SQLite: an OS file lock (``flock``) on ``<db>.<job>.lock`` (``<db>.pull@<instance>.lock``)
beside the database, released by the kernel if the process dies.

A wait for a busy lock has a deadline, and ends at once when a stop is asked for
(sync.shutdown: SIGTERM in `crmsync reconcile` and `crmsync schedule`) with :class:`WaitStopped`.

A PostgreSQL lock ends with its session (a server restart, a dropped connection, an idle-session
timeout, pg_terminate_backend), and then another process can take it. So its holder confirms
the session at every checkpoint (:meth:`Store.checkpoint`, before each write batch) and stops
there with :class:`LockLost` once it is gone: no two processes ever write under one lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from sync.journal_counts import killed_run_counts
from sync.schema import StoreError
from sync.shutdown import Stopped, stop_event, stopped_on_request, waiting_for_another_process
from sync.store import Store
from sync.store_records import RunKind

__all__ = [
    "DEFAULT_WAIT", "PULL_JOB", "RECONCILE_LOCK", "REPORT_JOB", "SCHEDULE_TURN", "Budget",
    "LockBusy", "LockLost", "WaitStopped", "job_lock", "lock_key", "pull_locks", "reconcile_lock",
    "report_job_lock", "schedule_turn", "sibling_turn_stopped",
]  # fmt: skip

# The job of `crmsync pull` runs: each holds the pull locks of its instances for its whole life.
PULL_JOB = "pull"
# The job of `crmsync report` runs: each holds the lock of that job for its whole life.
REPORT_JOB = "report"
# Held by a reconcile from its pull to its end, and by every apply or rollback outside one: a
# plan made from a pull must not meet writes (to the CRMs and to the bases) made after it.
RECONCILE_LOCK = "reconcile"
# The `job` of a LockBusy for schedule_turn (a pull lock's is `pull:<instance>`).
SCHEDULE_TURN = f"turn:{RECONCILE_LOCK}"
_TURN_LABEL = "scheduled reconcile"  # how lines name the turn of schedule_turn
_UNDER_RECONCILE_LOCK = (
    RunKind.RECONCILE, RunKind.RECONCILE_DRY_RUN, RunKind.APPLY, RunKind.ROLLBACK,
)  # fmt: skip
_ABANDONED = "its process ended without recording the end of the run (killed?); rerun to resume"
_POLL_SECONDS = 0.2
# How long a reconcile, a report or a scheduled job waits for a lock it is not told (--wait) to
# wait for some other time: the pull of one of its instances another process runs, the report
# lock. Long enough for an incremental pull; a hung one is reported rather than waited for.
DEFAULT_WAIT = 600.0
_KEEPALIVE_SECONDS = 1.0  # below any idle-session timeout in use

_log = logging.getLogger("crmsync.locks")

# The locks this process holds, by store URL, namespace and name: the jobs of one scheduler
# wait for each other's locks too, and a wait for one of those must not blame another process.
_held_here: Counter[tuple[str, str, str]] = Counter()
_held_mutex = threading.Lock()


class LockBusy(StoreError):
    """Another process holds the lock (of a job, or of an instance's pull).

    Refused at once, the one line also says what to do: wait for the other process, or
    (``wait_option``: the command has `--wait S` for this lock) let the command wait for it.
    A lock is never left behind by a dead process (see the module), so nothing is to be
    cleared by hand. ``given`` and ``after``: the command's `--wait` (seconds) was shared with
    the waits for those earlier locks, and was used up (``waited`` None) or cut to ``waited``
    by them: the line then says so, never to pass a --wait it was passed."""

    def __init__(
        self,
        job: str,
        waited: float | None = None,
        *,
        label: str | None = None,
        wait_option: bool = False,
        given: float | None = None,
        after: Sequence[str] = (),
    ) -> None:
        self.job = job
        what = label or f"job {job!r}"
        finish = "let it finish (`crmsync runs` shows it) or give a longer --wait"
        before = f" waiting for the {' and the '.join(after)}" if after else ""
        if given and waited is None:
            message = (
                f"{what} is already running (lock held by another process), and --wait "
                f"{given:g} ran out{before} first; {finish}"
            )
        elif given and after and waited is not None:
            message = (
                f"{what} is still running after waiting {round(waited, 1):g}s, what was left "
                f"of --wait {given:g} after{before} (lock held by another process); {finish}"
            )
        elif waited is None:
            how = "wait for it to end or pass --wait SECONDS"
            if given == 0:  # passed, to wait for nothing
                how = "wait for it to end or give a --wait longer than 0"
            if not wait_option:
                how = "run this again once it ends"
            message = (
                f"{what} is already running (lock held by another process); {how} "
                "(locks end with their process: none is left by a killed one)"
            )
        else:
            if not wait_option:  # waited for by default (a scheduled job): there is no --wait
                finish = "let it finish (`crmsync runs` shows it) and run this again"
            message = (
                f"{what} is still running after waiting {round(waited, 1):g}s "
                f"(lock held by another process); {finish}"
            )
        super().__init__(message)


class LockLost(StoreError):
    """The session holding a PostgreSQL lock ended while its holder ran: another process may
    hold the lock now, so the holder writes nothing more."""

    def __init__(self, label: str, cause: str) -> None:
        super().__init__(
            f"{label}: lock lost (the PostgreSQL session holding it ended: {cause}); stopped "
            "before writing more: run it again, it resumes"
        )


class WaitStopped(StoreError, Stopped):
    """A stop was asked for (SIGTERM) while waiting for a lock: nothing was done under it."""

    def __init__(self, label: str, holder: str = "another process") -> None:
        super().__init__(
            f"{stopped_on_request()} while waiting for the {label} {holder} is running; "
            "nothing was done: run it again"
        )


class Budget:
    """A command's ``--wait SECONDS``: how long it waits for busy locks, all of them together.

    Not given (None), a command fails at once when its own lock is busy (reconcile) and waits
    up to DEFAULT_WAIT for any other (the pull locks, the report lock). ``option``: whether the
    command has `--wait` at all (a scheduled job has not: its refusals do not name it). A lock
    taken with the budget (``budget=``) that had to be waited for is listed in ``waited_for``,
    so the refusal of a later one can say where the time went."""

    def __init__(self, seconds: float | None, *, option: bool = True) -> None:
        self.seconds = seconds
        self.option = option
        self.waited_for: list[str] = []  # labels, in the order they were waited for
        self._began = time.monotonic()

    @property
    def waits(self) -> bool:
        """Whether to wait for the command's own lock (only when told to)."""
        return bool(self.seconds)

    def left(self) -> float:
        """Seconds still to wait for a lock taken now."""
        if self.seconds is None:
            return DEFAULT_WAIT
        return max(0.0, self.seconds - (time.monotonic() - self._began))


@dataclass(frozen=True, slots=True)
class _Lock:
    namespace: str  # "job" or "pull": no job name can take a pull lock's key or file
    name: str  # the job, or the pulled instance
    label: str  # how messages name it
    wait_option: bool = False  # the command has `--wait S` for this lock (LockBusy says so)
    budget: Budget | None = field(default=None, compare=False)  # the --wait it shares
    after: tuple[str, ...] = ()  # the locks that budget waited for before this wait began
    wait_level: int = logging.WARNING  # of the line saying that a wait for it began

    @property
    def job(self) -> str:
        """What :class:`LockBusy` names (``pull:<instance>`` for a pull lock)."""
        return self.name if self.namespace == "job" else f"{self.namespace}:{self.name}"

    def key(self, schema: str | None) -> int:
        return lock_key(self.name, schema, namespace=self.namespace)

    def file(self) -> str:
        """The lock file's part of its name (``<db>.<file>.lock``)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)
        if self.namespace == "job":
            return safe
        if safe != self.name:  # two instance names never share one file
            safe += "-" + hashlib.blake2b(self.name.encode(), digest_size=4).hexdigest()
        return f"{self.namespace}@{safe}"  # '@' is never in a job's file name


def lock_key(job: str, schema: str | None = None, *, namespace: str = "job") -> int:
    """Stable signed 64-bit key for ``pg_advisory_lock`` (same on every machine and run).

    Per store schema: stores side by side in one database never hold each other's locks. The
    default schema (``public``) keeps the key of earlier versions, which lock stores there too.
    """
    scope = "" if schema in (None, "public") else f"{schema}:"
    text = f"crmsync:{namespace}:{scope}{job}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def job_lock(
    store: Store,
    job: str,
    wait: bool = False,
    timeout: float | None = None,
    *,
    wait_option: bool = False,
    budget: Budget | None = None,
) -> Iterator[None]:
    """Hold the lock of ``job`` for the ``with`` body, or raise :class:`LockBusy`.

    ``wait=False`` fails at once when busy; ``wait=True`` polls until the lock is free or
    ``timeout`` seconds have passed (``None``: wait for ever). ``wait_option``: the command
    has `--wait S` for this lock, which the refusal then names. ``budget``: the command's
    `--wait` this wait is part of (``timeout`` is what is left of it), for the refusal to say.
    """
    deadline = None if (not wait or timeout is None) else time.monotonic() + timeout
    lock = _Lock("job", job, f"job {job!r}", wait_option, budget, _waited_before(budget))
    with _hold(store, lock, wait, deadline, timeout):
        yield


@contextmanager
def pull_locks(
    store: Store,
    instances: Iterable[str],
    wait: bool = False,
    timeout: float | None = None,
    *,
    wait_option: bool = False,
    budget: Budget | None = None,
) -> Iterator[None]:
    """Hold the pull lock of each of ``instances`` for the ``with`` body, or raise
    :class:`LockBusy` (``wait``, ``timeout``, ``wait_option`` and ``budget`` as in
    :func:`job_lock`, for all of them).

    Every pull holds them while it reads and saves: two pulls of one instance at once would
    save their reads in any order, an older one last, with its cursor. They are taken in name
    order, so two waiting pulls of overlapping instances never wait on each other.

    A `crmsync pull` holds them for its whole run (PULL_JOB), so its runs still `running` with
    one of these instances once they are taken are dead: they are recorded as such."""
    names = sorted(set(instances))
    deadline = None if (not wait or timeout is None) else time.monotonic() + timeout
    after = _waited_before(budget)  # the waits for these locks share one deadline
    with ExitStack() as held:
        for instance in names:
            lock = _Lock("pull", instance, f"pull of {instance!r}", wait_option, budget, after)
            held.enter_context(_hold(store, lock, wait, deadline, timeout))
        if names:
            store.runs.end_abandoned((RunKind.PULL,), _ABANDONED, job=PULL_JOB, instances=names)
        yield


def _waited_before(budget: Budget | None) -> tuple[str, ...]:
    return () if budget is None else tuple(budget.waited_for)


@contextmanager
def _hold(
    store: Store, lock: _Lock, wait: bool, deadline: float | None, timeout: float | None
) -> Iterator[None]:
    take = _pg_lock if store.dialect == "postgresql" else _file_lock
    held = (store.engine.url.render_as_string(), lock.namespace, lock.name)
    with take(store, lock, wait, deadline, timeout):
        with _held_mutex:
            _held_here[held] += 1
        try:
            yield
        finally:
            with _held_mutex:
                _held_here[held] -= 1


def _holder(store: Store, lock: _Lock) -> str:
    """Who holds the busy ``lock``, as a waiter's lines say it."""
    with _held_mutex:
        here = _held_here[(store.engine.url.render_as_string(), lock.namespace, lock.name)] > 0
    return _SIBLING if here else "another process"


_SIBLING = "another job of this scheduler"


@contextmanager
def reconcile_lock(
    store: Store,
    wait: bool = False,
    timeout: float | None = None,
    *,
    wait_option: bool = False,
    budget: Budget | None = None,
) -> Iterator[None]:
    """The store's reconcile lock (see RECONCILE_LOCK). Runs of the kinds that only ever run
    under it and are still `running` are dead once it is taken: they are recorded as such."""
    with job_lock(store, RECONCILE_LOCK, wait, timeout, wait_option=wait_option, budget=budget):
        for run_id in store.runs.end_abandoned(_UNDER_RECONCILE_LOCK, _ABANDONED):
            _count_killed(store, run_id)
        yield


def _count_killed(store: Store, run_id: str) -> None:
    """What a killed run's journal holds becomes its counts: `crmsync runs` listed a migration
    killed mid-apply with none, though the copies it made were audited under it."""
    run = store.runs.get(run_id)
    counts = killed_run_counts(run.kind, store.journal.entries(run_id)) if run else {}
    if counts:
        store.runs.add_counts(run_id, counts)


@contextmanager
def report_job_lock(
    store: Store,
    job: str,
    wait: bool = False,
    timeout: float | None = None,
    *,
    wait_option: bool = False,
    budget: Budget | None = None,
) -> Iterator[None]:
    """The lock of the report job ``job``: a scheduled report entry's, or REPORT_JOB for
    `crmsync report` (see job_lock). Only its holder records report runs of ``job`` (entries
    cannot take the names of crmsync's own commands, see RESERVED_ENTRY_NAMES), so those still
    `running` once it is taken are dead: they are recorded as such."""
    with job_lock(store, job, wait, timeout, wait_option=wait_option, budget=budget):
        store.runs.end_abandoned((RunKind.REPORT,), _ABANDONED, job=job)
        yield


@contextmanager
def schedule_turn(store: Store, timeout: float = DEFAULT_WAIT) -> Iterator[None]:
    """The turn of a scheduled reconcile entry, taken before the store's reconcile lock.

    Schedulers sharing a store (one per machine, the same config) fire together: without
    turns, one's reconcile entry would find another's nightly apply holding the reconcile lock,
    skip its firing as if a person's reconcile held it, and warn, while the other scheduler
    runs that firing after its apply. So their reconcile entries take turns, as the entries of
    one scheduler do (sync.scheduler); the wait is logged at info. It ends after ``timeout``
    seconds with :class:`LockBusy` (``job`` SCHEDULE_TURN): a turn held that long may be a
    session of a machine that went down, and a firing skipped for it is worth a warning."""
    lock = _Lock("turn", RECONCILE_LOCK, _TURN_LABEL, wait_level=logging.INFO)
    with _hold(store, lock, True, time.monotonic() + timeout, timeout):
        yield


def sibling_turn_stopped() -> WaitStopped:
    """The stop of a scheduled reconcile entry waiting for the turn a sibling entry of its
    scheduler holds (sync.scheduler), said as a stop waiting for another scheduler's is."""
    return WaitStopped(_TURN_LABEL, _SIBLING)


class _Waiting:
    """Polls for a busy lock until its deadline; says once, one poll on, that it waits and who
    holds the lock (a job of this process registers its lock just after taking it). A stop
    asked for (sync.shutdown's event, set on SIGTERM) ends the wait with :class:`WaitStopped`.
    From its first poll to the end of its ``with`` block it counts as waiting for another
    process (so the signal's own line promises no batch for it)."""

    def __init__(self, store: Store, lock: _Lock, wait: bool, deadline: float | None) -> None:
        self._store, self._lock, self._wait, self._deadline = store, lock, wait, deadline
        self._polls = 0
        self._counted = ExitStack()

    def __enter__(self) -> _Waiting:
        return self

    def __exit__(self, *exc: object) -> None:
        self._counted.close()

    def again(self) -> bool:
        if not self._wait:
            return False
        left = None if self._deadline is None else self._deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        if stop_event.is_set():
            raise WaitStopped(self._lock.label, _holder(self._store, self._lock))
        if self._polls == 0:
            self._counted.enter_context(waiting_for_another_process())
            if self._lock.budget is not None:
                self._lock.budget.waited_for.append(self._lock.label)
        elif self._polls == 1:  # one poll on: a job of this process that just took it says so
            holder = _holder(self._store, self._lock)
            # A sibling job of this scheduler is routine where entries share CRMs: info, as
            # waiting for a sibling's turn is; another process's job is worth a warning.
            level = logging.INFO if holder == _SIBLING else self._lock.wait_level
            _log.log(level, "waiting for the %s %s is running", self._lock.label, holder)
        self._polls += 1
        if stop_event.wait(_POLL_SECONDS if left is None else min(_POLL_SECONDS, left)):
            raise WaitStopped(self._lock.label, _holder(self._store, self._lock))
        return True

    def busy(self, timeout: float | None) -> LockBusy:
        lock = self._lock
        given = lock.budget.seconds if lock.budget is not None else None
        # Waited for first, this lock had all of --wait but what the command spent getting to
        # it (tenths of a second on a loaded machine): the user gave it the whole --wait.
        whole = given is not None and not lock.after
        waited = (given if whole else timeout) if self._wait else None
        return LockBusy(lock.job, waited, label=lock.label, wait_option=lock.wait_option,
                        given=given, after=lock.after)  # fmt: skip


@contextmanager
def _pg_lock(
    store: Store, lock: _Lock, wait: bool, deadline: float | None, timeout: float | None
) -> Iterator[None]:
    # AUTOCOMMIT: a session lock must not leave the connection idle in a transaction for hours.
    with store.lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        key = lock.key(conn.execute(select(text("current_schema()"))).scalar())
        try_lock = select(text(f"pg_try_advisory_lock({key})"))
        with _Waiting(store, lock, wait, deadline) as waiting:
            while not conn.execute(try_lock).scalar():
                if not waiting.again():
                    raise waiting.busy(timeout)
        session = _Session(conn, lock.label)
        # The lock lives as long as its session: keep the session busy, or a server (or a
        # proxy) that ends idle sessions ends the lock while the job still runs.
        keepalive = threading.Thread(target=session.keep_alive, daemon=True)
        keepalive.start()
        store.add_checkpoint(session.confirm)
        try:
            yield
        finally:
            store.remove_checkpoint(session.confirm)
            session.done.set()
            keepalive.join()
            session.release(key)


class _Session:
    """The connection whose session holds one PostgreSQL lock, used by one thread at a time
    (the keep-alive's and the holder's checkpoints). Once a use of it fails, the lock counts
    as lost, and the connection is never used again: SQLAlchemy would quietly open a new
    session in its place, one without the lock."""

    def __init__(self, conn: Connection, label: str) -> None:
        self._conn, self._label = conn, label
        self._mutex = threading.Lock()
        self._lost: str | None = None  # why, once lost
        self.done = threading.Event()

    def _alive(self) -> bool:
        with self._mutex:
            if self._lost is None:
                try:
                    self._conn.execute(select(text("1")))
                except Exception as exc:
                    self._lost = _first_line(exc)
                    _log.debug("%s: lock session ended: %s", self._label, exc)
            return self._lost is None

    def keep_alive(self) -> None:
        while not self.done.wait(_KEEPALIVE_SECONDS) and self._alive():
            pass

    def confirm(self) -> None:
        """A checkpoint: the session (and so the lock) is still there, or :class:`LockLost`."""
        if not self._alive():
            raise LockLost(self._label, self._lost or "unknown cause")

    def release(self, key: int) -> None:
        # Release explicitly, and discard the connection if that fails (or the session is
        # gone): the server releases a session's locks when it ends.
        if self._lost is None:
            try:
                self._conn.execute(select(text(f"pg_advisory_unlock({key})")))
                return
            except Exception as exc:
                _log.warning("%s: lock connection lost: %s", self._label, _first_line(exc))
        self._conn.invalidate()


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc  # the driver's error, not SQLAlchemy's wrapping
    return (str(cause).splitlines() or [type(cause).__name__])[0]


def _lock_path(store: Store, lock: _Lock) -> Path:
    db = store.sqlite_path
    if db is None:
        raise StoreError("file locks need a SQLite store")
    return db.with_name(f"{db.name}.{lock.file()}.lock")


@contextmanager
def _file_lock(
    store: Store, lock: _Lock, wait: bool, deadline: float | None, timeout: float | None
) -> Iterator[None]:
    path = _lock_path(store, lock)
    # The file is left in place on release: unlinking it would let a waiter lock a stale inode.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with _Waiting(store, lock, wait, deadline) as waiting:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waiting.again():
                        raise waiting.busy(timeout) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
