"""Run one schedule entry once: take its lock, skip a firing already served, run, record the run.

A scheduled reconcile is the same engine path as `crmsync reconcile` (pull -> plan -> apply),
recorded under the entry's name so `crmsync runs` shows each job's history. Two schedulers
sharing one store never run an entry twice for one firing: the run happens under the entry's
lock (a PostgreSQL advisory lock or a file lock), and a scheduler that gets the lock after the
other one finished sees a run that started after the firing and skips. Their reconcile entries
take turns (sync.locks.schedule_turn), so only a reconcile, apply or rollback run by hand makes
one skip a firing nobody else runs.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import ScheduleEntry
from config.paths import file_stem
from sync.connect import open_connector
from sync.errors import run_error
from sync.health_model import ReportFilters
from sync.locks import (
    SCHEDULE_TURN,
    LockBusy,
    WaitStopped,
    job_lock,
    reconcile_lock,
    report_job_lock,
    schedule_turn,
)
from sync.outfile import check_directory, check_writable
from sync.reconcile_run import run_reconcile, verdict, write_plan
from sync.report_run import build_report, render_report, write_text
from sync.retention import RUN_ID, UTC_STAMP, own_files, prune
from sync.runtime import Runtime, open_runtime
from sync.shutdown import Stopped, stop_event
from sync.store import RunRecord, RunStatus, Store

__all__ = [
    "SKIPPED", "JobOutcome", "already_served", "last_served_run", "output_path", "run_job",
    "stopped_outcome",
]  # fmt: skip

SKIPPED = "skipped"
REPORT_FORMATS = {".html": "html", ".json": "json", ".csv": "csv"}
# Runs that answer a firing. An interrupted run (SIGTERM) or one left `running` by a killed
# process does not: the next scheduler start catches that firing up.
_SERVED = (RunStatus.OK, RunStatus.PARTIAL, RunStatus.FAILED)

_log = logging.getLogger("crmsync.schedule")


@dataclass(frozen=True, slots=True)
class JobOutcome:
    job: str
    status: str  # a RunStatus value, or SKIPPED
    run_id: str | None
    exit_code: int  # as the CLI command would exit: 0 ok, 1 failed, 3 limits breached
    detail: str = ""
    seconds: float = 0.0
    # Skipped with nobody running it: another process's reconcile, apply or rollback held the
    # store's reconcile lock, so this firing is not run at all.
    unserved: bool = False

    def summary(self) -> str:
        run = f" (run {self.run_id})" if self.run_id else ""
        detail = f": {self.detail}" if self.detail else ""
        # A run that breached its limits did its work (status ok), but it is not what to read
        # first: `schedule --run-now` exits 3 with this line as its error.
        status = "limits breached" if self.exit_code == 3 else self.status
        return f"{self.job}: {status} in {self.seconds:.1f}s{run}{detail}"


def last_served_run(store: Store, job: str) -> RunRecord | None:
    """The newest finished run of ``job`` that counts as having served its firing."""
    return next((r for r in store.runs.recent(limit=50, job=job) if r.status in _SERVED), None)


def already_served(store: Store, job: str, firing: datetime) -> bool:
    last = last_served_run(store, job)
    return last is not None and last.started_at >= firing


def output_path(out: Path, job: str, run_id: str, suffix: str) -> Path:
    """``out`` itself when it names a file (has a suffix), else a new file inside it.

    The job name comes from the config and may hold `/`: it becomes one file name, so the file
    stays in ``out`` (which `config.paths` keeps inside the config's directory)."""
    return out if out.suffix else out / f"{file_stem(job)}-{run_id}{suffix}"


def _keep_newest(entry: ScheduleEntry, out: Path, written: Path, stamp: str) -> None:
    """`keep: N`: the entry's own files in its out: directory beyond the newest N go, now that
    ``written`` is there (a regular expression of its time or run id: ``stamp``)."""
    if entry.keep is None or out.suffix:  # one file, written over each time, piles nothing up
        return
    own = own_files(file_stem(entry.name), stamp, written.suffix)
    deleted = prune(written, own, entry.keep, entry.name)
    _log.debug("%s: deleted %d older files of its out: (keep: %d)", entry.name, len(deleted),
               entry.keep)  # fmt: skip


def run_job(
    config_path: str,
    entry: ScheduleEntry,
    *,
    firing: datetime | None = None,
    stop: threading.Event = stop_event,
    connector_options: dict[str, Any] | None = None,
) -> JobOutcome:
    """Run ``entry`` now unless its lock is busy or (given ``firing``) another run served it.
    An `out:` it could not write to is refused first, before any CRM is read."""
    began = time.monotonic()
    _check_out(entry)
    with open_runtime(config_path, connect=False) as rt:
        try:
            lock = report_job_lock if entry.job == "report" else job_lock
            with lock(rt.store, entry.name):
                if firing is not None and already_served(rt.store, entry.name, firing):
                    detail = f"already ran for the firing at {firing.isoformat()}"
                    return JobOutcome(entry.name, SKIPPED, None, 0, detail)
                if entry.job == "report":
                    _connect(rt, connector_options)
                    return _report(rt, entry, began)
                try:
                    # After the scheduled reconcile another scheduler runs, if any; then the
                    # lock of every reconcile, apply and rollback of this store, which a
                    # command by hand may hold (a firing waits for it while still on time).
                    left = _grace_left(entry, firing)
                    with schedule_turn(rt.store), reconcile_lock(rt.store, bool(left), left):
                        _connect(rt, connector_options)
                        return _reconcile(rt, entry, stop, began)
                except WaitStopped as exc:  # SIGTERM while waiting for the turn
                    return stopped_outcome(entry, exc, began)
        except LockBusy as busy:
            if busy.job == entry.name:
                return JobOutcome(entry.name, SKIPPED, None, 0, "another process is running it")
            detail = f"another process holds the {busy.job!r} lock of this store"
            if busy.job == SCHEDULE_TURN:
                detail = str(busy)
            waited = time.monotonic() - began
            return JobOutcome(entry.name, SKIPPED, None, 0, detail, waited, unserved=True)


def _grace_left(entry: ScheduleEntry, firing: datetime | None) -> float | None:
    """How long a firing may still wait for the store's reconcile lock: what is left of its
    misfire grace, within which it still runs on time. None for a run that is no firing
    (`schedule --run-now`: it reports the lock busy at once)."""
    if firing is None:
        return None
    late = (datetime.now(UTC) - firing).total_seconds()
    return max(0.0, entry.misfire_grace_seconds - late)


def _check_out(entry: ScheduleEntry) -> None:
    """As `reconcile --plan-out` does before its run: a plan or report that could not be
    written at the end would waste the run, and a reconcile's was recorded ok."""
    if entry.out is None:  # a report's default reports/ beside the config is made when written
        return
    what = f"schedule job {entry.name} out:"
    if not entry.out.suffix:
        check_directory(entry.out, what=what)
    check_writable(output_path(entry.out, entry.name, "check", ".tmp"), what=what)


def _connect(rt: Runtime, connector_options: dict[str, Any] | None) -> None:
    # The connectors are opened once the locks are held: a password login is a call.
    for name in rt.config.systems:
        rt.connectors[name] = open_connector(rt.config, name, connector_options)


def _reconcile(
    rt: Runtime, entry: ScheduleEntry, stop: threading.Event, began: float
) -> JobOutcome:
    try:
        outcome = run_reconcile(
            rt,
            job=entry.name,
            dry_run=entry.job == "reconcile-dry-run",
            full=entry.full,
            yes=True,
            stop=stop,
        )
    except Stopped as exc:  # recorded as interrupted by run_reconcile
        return stopped_outcome(entry, exc, began)
    except Exception as exc:  # recorded as failed by run_reconcile
        _log.debug("%s failed", entry.name, exc_info=True)
        code = getattr(exc, "exit_code", 1)
        return JobOutcome(entry.name, RunStatus.FAILED.value, None,
                          code if isinstance(code, int) else 1, run_error(exc),
                          time.monotonic() - began)  # fmt: skip
    if entry.out is not None:
        path = output_path(entry.out, entry.name, outcome.run_id, ".json")
        write_plan(outcome.plan_json, path, what=f"schedule job {entry.name} out:")
        _keep_newest(entry, entry.out, path, RUN_ID)
    exit_code, detail = verdict(rt.config, outcome)
    return JobOutcome(
        entry.name, outcome.status.value, outcome.run_id, exit_code, detail,
        time.monotonic() - began,
    )  # fmt: skip


def _report(rt: Runtime, entry: ScheduleEntry, began: float) -> JobOutcome:
    # `build_report` records its own run under the entry's name; failures are recorded too.

    out = entry.writes_into(rt.config.path.parent)
    assert out is not None  # a report's: reports/ by default
    # UTC, as run ids: local time repeats an hour when the clocks go back.
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    path = output_path(out, entry.name, stamp, ".html")
    try:
        filters = ReportFilters(funnels=entry.funnels, systems=entry.systems)
        report = build_report(rt, job=entry.name, refresh=True, filters=filters)
        fmt = REPORT_FORMATS.get(path.suffix, "html")
        write_text(render_report(report, fmt), path, what=f"schedule job {entry.name} out:")
        _keep_newest(entry, out, path, UTC_STAMP)
    except Stopped as exc:  # recorded as interrupted by build_report
        return stopped_outcome(entry, exc, began)
    except Exception as exc:
        code = getattr(exc, "exit_code", 1)
        return JobOutcome(entry.name, RunStatus.FAILED.value, None,
                          code if isinstance(code, int) else 1, run_error(exc),
                          time.monotonic() - began)  # fmt: skip
    breached = ", ".join(t.name for t in report.breached)
    detail = f"written to {path}" + (f"; thresholds breached: {breached}" if breached else "")
    return JobOutcome(
        entry.name, RunStatus.OK.value, None, 3 if breached else 0, detail,
        time.monotonic() - began,
    )  # fmt: skip


def stopped_outcome(entry: ScheduleEntry, exc: Stopped, began: float) -> JobOutcome:
    """SIGTERM while the job waited for a lock or a turn (it did nothing), or during its pull
    (it planned and wrote nothing); ``began``: its time.monotonic() as it began."""
    return JobOutcome(entry.name, RunStatus.INTERRUPTED.value, None, 1, str(exc),
                      time.monotonic() - began)  # fmt: skip
