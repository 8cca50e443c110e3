"""The run log: one row per crmsync run (pull, reconcile, apply, report, links, rollback,
forget), what it counted and how it ended. Part of the state store (`Store.runs`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from sync import schema as t
from sync.schema import StoreError, transaction
from sync.store_records import (
    RunKind,
    RunRecord,
    RunStatus,
    check_no_secrets,
    new_run_id,
    one_line,
)

# Run ids sort by second only; runs of one second (a scheduler and a person) by their start.
_NEWEST_FIRST = (t.runs.c.started_at.desc(), t.runs.c.id.desc())
_INSTANCES = "instances"  # in a running run's counts: the instances whose pull locks it holds


def _ran_with(counts: Mapping[str, Any] | None, held: set[str]) -> bool:
    recorded = (counts or {}).get(_INSTANCES)
    return not isinstance(recorded, list) or bool(held.intersection(recorded))


def insert_run(
    conn: Connection,
    job: str,
    kind: RunKind | str,
    now: datetime,
    config_fingerprint: str | None,
    status: RunStatus,
    counts: Mapping[str, Any],
) -> str:
    """Record a run in the caller's transaction; its id. A run finished at once (`status` not
    running) is one whose change is that transaction: recorded if and only if it is made."""
    check_no_secrets(counts, f"{kind} run counts")
    run_id = new_run_id(now)
    done = None if status is RunStatus.RUNNING else now
    conn.execute(
        t.runs.insert().values(
            id=run_id, job=job, kind=RunKind(kind).value, status=status.value, started_at=now,
            finished_at=done, config_fingerprint=config_fingerprint, counts=dict(counts),
            calls={},
        )
    )  # fmt: skip
    return run_id


class RunLog:
    """The runs table. Every method is one transaction."""

    __slots__ = ("_clock", "_engine")

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def start(
        self,
        job: str,
        kind: RunKind | str,
        config_fingerprint: str | None = None,
        *,
        instances: Sequence[str] | None = None,
    ) -> str:
        """Record a run as `running`. ``instances``: the CRM instances it holds the pull locks
        of for its whole life (see :meth:`end_abandoned`); its `counts` say so until it
        finishes."""
        counts = {} if instances is None else {_INSTANCES: sorted(set(instances))}
        with transaction(self._engine) as conn:
            return insert_run(
                conn, job, kind, self._clock(), config_fingerprint, RunStatus.RUNNING, counts
            )

    def finish(
        self,
        run_id: str,
        status: RunStatus | str,
        *,
        counts: Mapping[str, Any] | None = None,
        calls: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        for name, value in (("counts", counts), ("calls", calls)):
            check_no_secrets(value, f"run {run_id} {name}")
        values: dict[str, Any] = {
            "status": RunStatus(status).value,
            "finished_at": self._clock(),
            "error": one_line(error),
        }
        if counts is not None:
            values["counts"] = dict(counts)
        if calls is not None:
            values["calls"] = dict(calls)
        with transaction(self._engine) as conn:
            done = conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))
            if done.rowcount != 1:
                raise StoreError(f"unknown run {run_id!r} (see `crmsync runs`)")

    def end_abandoned(
        self,
        kinds: Iterable[RunKind | str],
        reason: str,
        *,
        job: str | None = None,
        instances: Iterable[str] | None = None,
    ) -> list[str]:
        """Record the runs of ``kinds`` (of ``job`` only, if given) still `running` as
        interrupted: the caller holds the lock each of them held while it ran, so their process
        ended without recording it (kill -9, a crash, a power cut). Their ids.

        ``instances``: the caller holds those instances' pull locks; only runs started with
        one of them (see :meth:`start`), or with none recorded (an older crmsync's), end.
        """
        values = {"status": RunStatus.INTERRUPTED.value, "finished_at": self._clock()}
        running = (
            t.runs.c.status == RunStatus.RUNNING.value,
            t.runs.c.kind.in_([RunKind(k).value for k in kinds]),
            *(() if job is None else (t.runs.c.job == job,)),
        )
        held = None if instances is None else set(instances)
        with transaction(self._engine) as conn:
            found = conn.execute(select(t.runs.c.id, t.runs.c.counts).where(*running))
            ids = [r.id for r in found if held is None or _ran_with(r.counts, held)]
            if ids:
                query = t.runs.update().where(*running, t.runs.c.id.in_(ids))
                conn.execute(query.values(**values, error=one_line(reason)))
            return ids

    def add_counts(self, run_id: str, counts: Mapping[str, Any]) -> None:
        """Counts learnt after a run ended (what the journal of a killed apply holds), over
        those it recorded."""
        check_no_secrets(counts, f"run {run_id} counts")
        with transaction(self._engine) as conn:
            row = conn.execute(select(t.runs.c.counts).where(t.runs.c.id == run_id)).first()
            if row is None:
                raise StoreError(f"unknown run {run_id!r} (see `crmsync runs`)")
            merged = {**(row.counts or {}), **counts}
            conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(counts=merged))

    def get(self, run_id: str) -> RunRecord | None:
        found = self._read(select(t.runs).where(t.runs.c.id == run_id))
        return found[0] if found else None

    def recent(
        self, limit: int | None = 20, *, job: str | None = None, kind: RunKind | str | None = None
    ) -> list[RunRecord]:
        """Newest first (`limit` None: all)."""
        query = select(t.runs).order_by(*_NEWEST_FIRST).limit(limit)
        if job is not None:
            query = query.where(t.runs.c.job == job)
        if kind is not None:
            query = query.where(t.runs.c.kind == RunKind(kind).value)
        return self._read(query)

    def last_successful(self, kind: RunKind | str, job: str | None = None) -> RunRecord | None:
        query = (
            select(t.runs)
            .where(t.runs.c.kind == RunKind(kind).value, t.runs.c.status == RunStatus.OK.value)
            .order_by(*_NEWEST_FIRST)
            .limit(1)
        )
        if job is not None:
            query = query.where(t.runs.c.job == job)
        found = self._read(query)
        return found[0] if found else None

    def _read(self, query: Any) -> list[RunRecord]:
        with transaction(self._engine, write=False) as conn:
            return [
                RunRecord(
                    id=r.id,
                    job=r.job,
                    kind=RunKind(r.kind),
                    status=RunStatus(r.status),
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    config_fingerprint=r.config_fingerprint,
                    counts=r.counts or {},
                    calls=r.calls or {},
                    error=r.error,
                )
                for r in conn.execute(query)
            ]
