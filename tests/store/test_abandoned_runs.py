"""A scheduled report job killed outright (kill -9, a crash, a power cut) cannot record the end
of its run: the next holder of the job's lock records it as interrupted, and nothing else."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from sync.locks import LockBusy, report_job_lock
from sync.store import RunKind, RunStatus, Store
from tests.lock_holders import Holder, held_elsewhere, unique_lock_name

# Takes the job's lock, starts a report run as a scheduled report job does, and holds until
# stopped (then records the run as done) or killed.
REPORTING = """
import sys
from sync.locks import report_job_lock
from sync.store import Store
from tests.lock_holders import hold_until_stopped

ready, stop, url, job = sys.argv[1:]
store = Store.open(url)
with report_job_lock(store, job):
    run_id = store.runs.start(job, "report")
    hold_until_stopped(ready, stop, note=run_id)
    store.runs.finish(run_id, "ok")
"""


@pytest.fixture
def job() -> str:
    return unique_lock_name("weekly-health")


def _reporting(url: str, job: str, tmp: Path) -> AbstractContextManager[Holder]:
    """A process running report job ``job`` under its lock; its note is the id of its run."""
    return held_elsewhere(tmp, REPORTING, url, job)


def test_a_killed_report_jobs_run_is_interrupted_when_the_job_next_takes_its_lock(
    store: Store, store_url: str, tmp_path: Path, job: str
) -> None:
    with _reporting(store_url, job, tmp_path) as holder:
        holder.kill()
    run_id = holder.note
    left = store.runs.get(run_id)
    assert left is not None and left.status is RunStatus.RUNNING  # nothing could record its end
    with report_job_lock(store, job):
        run = store.runs.get(run_id)
    assert run is not None and run.status is RunStatus.INTERRUPTED, run
    assert run.finished_at is not None
    assert run.error == (
        "its process ended without recording the end of the run (killed?); rerun to resume"
    )


def test_a_report_job_running_in_a_live_process_is_left_running(
    store: Store, store_url: str, tmp_path: Path, job: str
) -> None:
    with _reporting(store_url, job, tmp_path) as holder:
        with pytest.raises(LockBusy), report_job_lock(store, job):
            pytest.fail("took a lock another process holds")
        run_id = holder.note
        run = store.runs.get(run_id)
        assert run is not None and run.status is RunStatus.RUNNING, run
    proc = holder.process
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else None
    done = store.runs.get(run_id)
    assert done is not None and (done.status, done.error) == (RunStatus.OK, None)


def test_a_report_jobs_lock_ends_no_run_it_does_not_prove_dead(store: Store, job: str) -> None:
    # Other entries, `crmsync pull` (pull locks) and `crmsync report` (job "report") run under
    # their own locks, `crmsync demo` under none: their runs may be live whoever holds this one.
    others = [
        store.runs.start(f"{job}-eu", RunKind.REPORT),
        store.runs.start(job, RunKind.PULL),
        store.runs.start("pull", RunKind.PULL),
        store.runs.start("report", RunKind.REPORT),
        store.runs.start("demo", RunKind.REPORT),
    ]
    with report_job_lock(store, job):
        pass
    left = [store.runs.get(run_id) for run_id in others]
    assert [r.status if r else None for r in left] == [RunStatus.RUNNING] * len(others), left
