"""The store's write-side records: the apply journal and the audit log (the dead-letter list is
sync/store_failures.py).

Reached through a :class:`sync.store.Store` as ``store.journal`` and ``store.audit``; each
public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, Select, bindparam, false, func, select
from sqlalchemy.engine import Connection, Engine, Row

from sync import schema as t
from sync.schema import chunks, transaction
from sync.store_links import write_links_and_bases
from sync.store_records import (
    AuditEntry,
    JournalEntry,
    JournalOp,
    JournalRecord,
    JournalState,
    Link,
    check_no_secrets,
    one_line,
)

__all__ = ["AuditLog", "Journal"]

Clock = Callable[[], datetime]
Mark = tuple[str, JournalState, Mapping[str, Any] | None]  # plan change id, state, result
_SETTLED = (JournalState.DONE.value, JournalState.SKIPPED.value)


class Journal:
    """Write-ahead journal of an apply: intended before a batch is sent, marked after."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine, self._clock = engine, clock

    def intend(self, run_id: str, plan_id: str, entries: Sequence[JournalEntry]) -> list[int]:
        """Record a batch as ``intended`` in one transaction; returns the rows' seq numbers.

        ``attempt`` counts how often the same plan change was intended before (any run).
        """
        for entry in entries:
            where = f"journal entry {entry.plan_change_id}"
            check_no_secrets({"before": entry.before, "after": entry.after}, where)
        now = self._clock()
        with transaction(self._engine) as conn:
            last = conn.execute(
                select(func.max(t.journal.c.seq)).where(t.journal.c.run_id == run_id)
            ).scalar()
            seq0 = (last or 0) + 1
            attempts = self._attempts(conn, plan_id, [e.plan_change_id for e in entries])
            rows = [
                {
                    "run_id": run_id,
                    "seq": seq0 + i,
                    "plan_id": plan_id,
                    "plan_change_id": e.plan_change_id,
                    "instance": e.instance,
                    "deal_id": e.deal_id,
                    "op": JournalOp(e.op).value,
                    "field": e.field,
                    "before": e.before,
                    "after": e.after,
                    "state": JournalState.INTENDED.value,
                    "result": None,
                    "attempt": attempts.get(e.plan_change_id, 0) + 1,
                    "updated_at": now,
                }
                for i, e in enumerate(entries)
            ]
            if rows:
                conn.execute(t.journal.insert(), rows)
        return [row["seq"] for row in rows]

    @staticmethod
    def _attempts(conn: Connection, plan_id: str, change_ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(change_ids), 500):
            query = (
                select(t.journal.c.plan_change_id, func.max(t.journal.c.attempt))
                .where(
                    t.journal.c.plan_id == plan_id,
                    t.journal.c.plan_change_id.in_(change_ids[start : start + 500]),
                )
                .group_by(t.journal.c.plan_change_id)
            )
            found.update((cid, int(n)) for cid, n in conn.execute(query))
        return found

    def mark(
        self,
        run_id: str,
        outcomes: Iterable[Mark],
        audit: Iterable[AuditEntry] = (),
        links: Iterable[Link] = (),
    ) -> int:
        """Set (plan_change_id, state, API result) for this run's rows; returns rows changed.
        See :meth:`mark_runs` for `audit` and `links`."""
        return self.mark_runs({run_id: outcomes}, audit, links)

    def mark_runs(
        self,
        outcomes: Mapping[str, Iterable[Mark]],
        audit: Iterable[AuditEntry] = (),
        links: Iterable[Link] = (),
    ) -> int:
        """:meth:`mark` for the rows of several runs (run id -> outcomes), in one transaction
        with the `audit` entries of the writes they record as landed and the `links` of the
        copies they record as created. Stored apart, a process killed in between left a write
        done in the journal (so never in doubt) with no audit entry (out of `rollback`'s
        reach), or a created copy recorded with no link to its entity."""
        now = self._clock()
        audited = _audit_rows(audit, now)
        links = list(links)
        rows = []
        for run_id, marks in outcomes.items():
            for change_id, state, result in marks:
                check_no_secrets(result, f"journal result of {change_id}")
                rows.append(
                    {
                        "b_run": run_id,
                        "b_change": change_id,
                        "state": JournalState(state).value,
                        "result": dict(result) if result is not None else None,
                        "updated_at": now,
                    }
                )
        if not rows and not audited and not links:
            return 0
        stmt = (
            t.journal.update()
            .where(
                t.journal.c.run_id == bindparam("b_run"),
                t.journal.c.plan_change_id == bindparam("b_change"),
            )
            .values(
                state=bindparam("state"),
                result=bindparam("result"),
                updated_at=bindparam("updated_at"),
            )
        )
        with transaction(self._engine) as conn:
            changed = int(conn.execute(stmt, rows).rowcount) if rows else 0
            if audited:
                conn.execute(t.audit.insert(), audited)
            if links:
                write_links_and_bases(conn, links, {}, now)
            return changed

    def done_ids(self, plan_id: str) -> set[str]:
        """Plan changes of ``plan_id`` that some run completed."""
        query = select(t.journal.c.plan_change_id).where(
            t.journal.c.plan_id == plan_id, t.journal.c.state == JournalState.DONE.value
        )
        with transaction(self._engine, write=False) as conn:
            return set(conn.execute(query).scalars())

    def pending(self, plan_id: str) -> list[JournalRecord]:
        """Latest row of each plan change that was intended but neither done nor skipped.

        ``intended``/``sent`` rows are in doubt (the process died around the send): check the
        target's current value before re-sending. ``failed`` rows may be retried.
        """
        query = (
            select(t.journal)
            .where(t.journal.c.plan_id == plan_id)
            .order_by(t.journal.c.plan_change_id, t.journal.c.attempt)
        )
        latest: dict[str, Row[Any]] = {}
        settled: set[str] = set()
        with transaction(self._engine, write=False) as conn:
            for row in conn.execute(query):
                latest[row.plan_change_id] = row
                if row.state in _SETTLED:
                    settled.add(row.plan_change_id)
        records = [_journal_record(r) for cid, r in latest.items() if cid not in settled]
        return sorted(records, key=lambda r: (r.run_id, r.seq))

    def mark_in_doubt(self, run_id: str, change_ids: Iterable[str], error: str) -> int:
        """Mark changes whose call failed after it may have been sent: in doubt (``sent``), for
        the next apply to check by reading the records."""
        return self.mark(run_id, [(cid, JournalState.SENT, {"error": error}) for cid in change_ids])

    def in_doubt_elsewhere(self, plan_id: str) -> list[JournalRecord]:
        """Changes of every kind (field writes, creates, deletes) of plans other than
        ``plan_id`` whose latest row is still in doubt: a killed apply, or a call that failed
        part-way, whose plan is not being applied again. In (run, seq) order."""
        doubt = (JournalState.INTENDED.value, JournalState.SENT.value)
        j = t.journal.c
        with transaction(self._engine, write=False) as conn:
            plans = set(
                conn.execute(
                    select(j.plan_id).where(j.state.in_(doubt), j.plan_id != plan_id).distinct()
                ).scalars()
            )
            latest: dict[tuple[str, str], Row[Any]] = {}
            for plan in sorted(plans):
                query = (
                    select(t.journal).where(j.plan_id == plan).order_by(j.plan_change_id, j.attempt)
                )
                for row in conn.execute(query):
                    latest[plan, row.plan_change_id] = row
        records = [_journal_record(r) for r in latest.values() if r.state in doubt]
        return sorted(records, key=lambda r: (r.run_id, r.seq))

    def deletes_in_doubt(self) -> dict[tuple[str, str], str]:
        """(instance, deal id) -> plan of each delete crmsync sent (a rollback's, a propagated
        one) whose latest row is still in doubt: its call failed part-way, it may have landed."""
        doubt = (JournalState.INTENDED.value, JournalState.SENT.value)
        j = t.journal.c
        deleting = j.op == JournalOp.DELETE.value
        with transaction(self._engine, write=False) as conn:
            plans = set(
                conn.execute(
                    select(j.plan_id).where(j.state.in_(doubt), deleting).distinct()
                ).scalars()
            )
            latest: dict[tuple[str, str], Any] = {}
            for plan in sorted(plans):
                query = (
                    select(j.plan_id, j.plan_change_id, j.instance, j.deal_id, j.state)
                    .where(j.plan_id == plan, deleting)
                    .order_by(j.plan_change_id, j.attempt)
                )
                for row in conn.execute(query):
                    latest[plan, row.plan_change_id] = row
        return {(r.instance, r.deal_id): r.plan_id for r in latest.values() if r.state in doubt}

    def entries(
        self, run_id: str, states: Iterable[JournalState] | None = None
    ) -> list[JournalRecord]:
        """A run's rows in seq order (e.g. its ``done`` rows, to roll them back)."""
        query = select(t.journal).where(t.journal.c.run_id == run_id).order_by(t.journal.c.seq)
        if states is not None:
            query = query.where(t.journal.c.state.in_([JournalState(s).value for s in states]))
        with transaction(self._engine, write=False) as conn:
            return [_journal_record(r) for r in conn.execute(query)]


def _journal_record(r: Row[Any]) -> JournalRecord:
    entry = JournalEntry(
        plan_change_id=r.plan_change_id,
        instance=r.instance,
        deal_id=r.deal_id,
        op=JournalOp(r.op),
        field=r.field,
        before=r.before,
        after=r.after,
    )
    return JournalRecord(
        run_id=r.run_id,
        seq=r.seq,
        plan_id=r.plan_id,
        entry=entry,
        state=JournalState(r.state),
        result=r.result,
        attempt=r.attempt,
        updated_at=r.updated_at,
    )


class AuditLog:
    """Append-only record of every value crmsync changed in a CRM."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine, self._clock = engine, clock

    def append(self, entries: Iterable[AuditEntry]) -> int:
        rows = _audit_rows(entries, self._clock())
        if rows:
            with transaction(self._engine) as conn:
                conn.execute(t.audit.insert(), rows)
        return len(rows)

    def entries(
        self,
        *,
        run_id: str | None = None,
        instance: str | None = None,
        deal_id: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Oldest first."""
        query = select(t.audit).order_by(t.audit.c.id)
        if run_id is not None:
            query = query.where(t.audit.c.run_id == run_id)
        if instance is not None:
            query = query.where(t.audit.c.instance == instance)
        if deal_id is not None:
            query = query.where(t.audit.c.deal_id == deal_id)
        if limit is not None:
            query = query.limit(limit)
        with transaction(self._engine, write=False) as conn:
            return [_audit_entry(r) for r in conn.execute(query)]

    def deletes_of(self, refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AuditEntry]:
        """(instance, deal id) -> the latest delete crmsync audited for each of `refs` (a
        propagated one, a rollback's), for those it deleted; read through the audit's index by
        record, 500 ids a query."""
        wanted: dict[str, list[str]] = {}
        for instance, deal_id in sorted(set(refs)):
            wanted.setdefault(instance, []).append(deal_id)
        a = t.audit.c
        found: dict[tuple[str, str], AuditEntry] = {}
        with transaction(self._engine, write=False) as conn:
            for instance, ids in wanted.items():
                for chunk in chunks(ids, 500):
                    query = (
                        select(t.audit)
                        .where(a.instance == instance, a.deal_id.in_(chunk), a.field.is_(None))
                        .order_by(a.at, a.id)
                    )
                    for row in conn.execute(query):
                        if row.after == {"deleted": True}:  # not a create's values
                            found[instance, str(row.deal_id)] = _audit_entry(row)
        return found

    def after_snapshots(self, instances: Sequence[str]) -> list[AuditEntry]:
        """The field writes to live stored deals of `instances` audited since the pull that
        saved each deal's snapshot began (its `last_seen_run`), oldest first (by time, then
        sequence): writes that snapshot may not show. A write audited while that pull ran is
        included (the pull may have read the deal before it). A snapshot saved by no run (a
        store older than run ids) gets none."""
        a, d, r = t.audit.c, t.deals.c, t.runs.c
        snapshots = (
            select(d.instance, d.id, r.started_at)
            .join(t.runs, r.id == d.last_seen_run)
            .where(d.instance.in_(list(instances)), d.deleted == false())
        )
        with transaction(self._engine, write=False) as conn:
            cte = _by_deal(conn, snapshots, "snapshots")
            query = (
                select(t.audit)
                .join(cte, (a.instance == cte.c.instance) & (a.deal_id == cte.c.id))
                .where(a.field.is_not(None), a.at >= cte.c.started_at)
                .order_by(a.at, a.id)
            )
            return [_audit_entry(row) for row in conn.execute(query)]

    def unread_creates(self, instances: Sequence[str]) -> list[AuditEntry]:
        """The audited creates (and other whole-record entries) of deals of `instances` that no
        pull has stored yet and that are still linked (a rollback that deleted a copy unlinked
        it), oldest first. The caller tells creates by their after-value."""
        a, d, links = t.audit.c, t.deals.c, t.links.c
        stored = select(d.id).where(d.instance == links.instance, d.id == links.deal_id).exists()
        unread = select(links.instance, links.deal_id.label("id")).where(
            links.instance.in_(list(instances)), ~stored
        )
        with transaction(self._engine, write=False) as conn:
            cte = _by_deal(conn, unread, "unread")
            query = (
                select(t.audit)
                .join(cte, (a.instance == cte.c.instance) & (a.deal_id == cte.c.id))
                .where(a.field.is_(None))
                .order_by(a.at, a.id)
            )
            return [_audit_entry(row) for row in conn.execute(query)]


def _by_deal(conn: Connection, deals: Select[Any], name: str) -> CTE:
    """`deals` (instance, id, ...) as the CTE a query of their audit entries starts from: each
    deal's entries are read by index (`audit_by_deal`), never the whole audit."""
    cte = deals.cte(name)
    version = conn.dialect.server_version_info or ()
    if conn.dialect.name == "sqlite" and tuple(version) >= (3, 35):
        # Else SQLite carries the filters over to the audit and reads all of it (PostgreSQL
        # plans by its statistics; SQLite before 3.35 knows no MATERIALIZED).
        cte = cte.prefix_with("MATERIALIZED")
    return cte


def _audit_entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        row.run_id, row.instance, row.deal_id, row.field, row.before, row.after, row.reason,
        at=row.at,
    )  # fmt: skip


def _audit_rows(entries: Iterable[AuditEntry], now: datetime) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        check_no_secrets({"before": e.before, "after": e.after}, f"audit of {e.instance}")
        rows.append(
            {
                "run_id": e.run_id,
                "at": e.at or now,
                "instance": e.instance,
                "deal_id": e.deal_id,
                "field": e.field,
                "before": e.before,
                "after": e.after,
                "reason": one_line(e.reason) or "",
            }
        )
    return rows
