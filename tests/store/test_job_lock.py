from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from sync.locks import Budget, LockBusy, job_lock, lock_key, pull_locks
from sync.store import Store
from tests.lock_holders import ROOT, Holder, held_elsewhere, unique_lock_name


@pytest.fixture
def job() -> str:
    return unique_lock_name("nightly")


# Holds the lock of a job until stopped.
HOLDING = """
import sys
from sync.locks import job_lock
from sync.store import Store
from tests.lock_holders import hold_until_stopped

ready, stop, url, job = sys.argv[1:]
with Store.open(url) as store, job_lock(store, job):
    hold_until_stopped(ready, stop)
"""

# Says whether it could take the lock of a job without waiting: "acquired", or exit 3 with why not.
TRYING = """
import sys
from sync.locks import LockBusy, job_lock
from sync.store import Store

url, job = sys.argv[1:]
try:
    with Store.open(url) as store, job_lock(store, job):
        print("acquired")
except LockBusy as exc:
    print(exc)
    sys.exit(3)
"""


def _holder(url: str, job: str, tmp: Path) -> AbstractContextManager[Holder]:
    return held_elsewhere(tmp, HOLDING, url, job)


def _try(url: str, job: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", TRYING, url, job]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=20)


def test_only_one_process_gets_the_lock(
    store: Store, store_url: str, tmp_path: Path, job: str
) -> None:
    with _holder(store_url, job, tmp_path) as holder:
        with pytest.raises(LockBusy) as caught, job_lock(store, job):
            pytest.fail("took a lock another process holds")
        assert str(caught.value) == (
            f"job {job!r} is already running (lock held by another process); run this again "
            "once it ends (locks end with their process: none is left by a killed one)"
        )
        other = _try(store_url, job)
        assert other.returncode == 3, other.stdout
        assert "already running" in other.stdout
    assert holder.process.returncode == 0
    with job_lock(store, job, wait=True, timeout=10):
        contender = _try(store_url, job)
        assert contender.returncode == 3
    after = _try(store_url, job)
    assert (after.returncode, after.stdout.strip()) == (0, "acquired")


def test_a_killed_holder_releases_the_lock(
    store: Store, store_url: str, tmp_path: Path, job: str
) -> None:
    with _holder(store_url, job, tmp_path) as holder:
        holder.kill()
        with job_lock(store, job, wait=True, timeout=10):
            pass


def test_waiting_gives_up_after_the_timeout(store: Store, job: str) -> None:
    with job_lock(store, job):
        started = time.monotonic()
        with (
            pytest.raises(LockBusy, match=r"still running after waiting 0\.5s"),
            job_lock(store, job, wait=True, timeout=0.5),
        ):
            pass
        assert 0.4 < time.monotonic() - started < 5


def test_a_pull_lock_waited_for_first_is_refused_naming_the_whole_wait_given(
    store: Store, job: str
) -> None:
    """The time a command spent before its first wait (opening its store; tenths of a second
    on a loaded machine) is no wait of its own: the refusal names --wait 0.6, not 0.3."""
    budget = Budget(0.6)
    time.sleep(0.3)
    with (
        pull_locks(store, [job]),
        pytest.raises(LockBusy, match=r"still running after waiting 0\.6s \(lock held"),
        pull_locks(store, [job], wait=True, timeout=budget.left(), budget=budget),
    ):
        pass


def test_jobs_lock_independently_and_locks_are_reusable(store: Store, job: str) -> None:
    with job_lock(store, job), job_lock(store, job + "/eu"):
        pass
    with pytest.raises(RuntimeError), job_lock(store, job):
        raise RuntimeError("job failed")
    with job_lock(store, job):
        pass


def test_sqlite_lock_file_sits_beside_the_database(new_store_url: Callable[[str], str]) -> None:
    with Store.open(new_store_url("sqlite")) as store, job_lock(store, "hourly/eu"):
        assert store.sqlite_path is not None
        lock = store.sqlite_path.with_name(f"{store.sqlite_path.name}.hourly_eu.lock")
        assert lock.exists()


def test_lock_key_is_a_stable_signed_64_bit_number() -> None:
    assert lock_key("nightly") == lock_key("nightly") != lock_key("nightly2")
    assert -(2**63) <= lock_key("nightly") < 2**63
    assert lock_key("nightly", "public") == lock_key("nightly")  # as before per-schema keys
    assert lock_key("nightly", "tenant_a") != lock_key("nightly", "tenant_b")


def test_stores_in_two_schemas_of_one_database_do_not_share_a_lock(
    new_store_url: Callable[[str], str], tmp_path: Path
) -> None:
    # Advisory locks are database-wide; a store is one schema of the database. A reconcile on
    # one store must not report "already running" because another store's reconcile runs.
    first, second = new_store_url("postgresql"), new_store_url("postgresql")
    with _holder(first, "reconcile", tmp_path) as holder:
        with Store.open(second) as other, job_lock(other, "reconcile"):
            pass
        with Store.open(first) as same, pytest.raises(LockBusy), job_lock(same, "reconcile"):
            pytest.fail("took a lock another process holds on the same store")
    assert holder.process.returncode == 0


def test_a_lock_held_past_the_servers_idle_session_timeout_still_holds(
    new_store_url: Callable[[str], str], job: str
) -> None:
    # A job's lock connection sits idle while the job talks to the CRMs. A server (or a proxy,
    # or a firewall) that ends idle sessions would end the lock with it: a second scheduler
    # would run the same job at once, and the first would fail on releasing it.
    url = new_store_url("postgresql").replace(
        "options=", "options=-cidle_session_timeout%3D1500%20"
    )
    with Store.open(url) as store, Store.open(url) as other:
        with job_lock(store, job):
            time.sleep(3.5)
            with pytest.raises(LockBusy), job_lock(other, job):
                pytest.fail("took a lock another job holds")
        with job_lock(other, job):  # released on leaving the block
            pass
