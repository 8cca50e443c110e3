"""A scheduled report job killed outright (kill -9, a crash, a power cut) cannot record the end
of its run: the next holder of the job's lock records it as interrupted, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sync.locks import LockBusy, report_job_lock
from sync.store import RunKind, RunStatus, Store

ROOT = Path(__file__).resolve().parents[2]

# Takes the job's lock, starts a report run as a scheduled report job does, and waits for the
# stop file (then records the run as done) or for its death.
CHILD = """
import sys, time
from pathlib import Path
from sync.locks import report_job_lock
from sync.store import Store

url, job, ready, stop = sys.argv[1:5]
store = Store.open(url)
with report_job_lock(store, job):
    run_id = store.runs.start(job, "report")
    Path(ready).write_text(run_id)
    while not Path(stop).exists():
        time.sleep(0.05)
    store.runs.finish(run_id, "ok")
"""


@pytest.fixture
def job() -> str:
    # Advisory locks are database-wide: a unique name keeps parallel test runs apart.
    return f"weekly-health-{uuid.uuid4().hex[:8]}"


@contextmanager
def _reporting(url: str, job: str, tmp: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A process running report job ``job`` under its lock, and the id of its run."""
    ready, stop = tmp / "ready", tmp / "stop"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, url, job, str(ready), str(stop)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"report job did not start: {proc.communicate()}")
            time.sleep(0.05)
        yield proc, ready.read_text()
    finally:
        stop.touch()
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_a_killed_report_jobs_run_is_interrupted_when_the_job_next_takes_its_lock(
    store: Store, store_url: str, tmp_path: Path, job: str
) -> None:
    with _reporting(store_url, job, tmp_path) as (proc, run_id):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
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
    with _reporting(store_url, job, tmp_path) as (proc, run_id):
        with pytest.raises(LockBusy), report_job_lock(store, job):
            pytest.fail("took a lock another process holds")
        run = store.runs.get(run_id)
        assert run is not None and run.status is RunStatus.RUNNING, run
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
