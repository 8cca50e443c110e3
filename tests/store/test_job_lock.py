from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sync.locks import LockBusy, job_lock, lock_key
from sync.store import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def job() -> str:
    # Advisory locks are database-wide: a unique name keeps parallel test runs apart.
    return f"nightly-{uuid.uuid4().hex[:8]}"


# Runs in a separate interpreter: "hold" keeps the lock until the stop file appears,
# "try" reports whether it could take the lock without waiting.
CHILD = """
import sys, time
from pathlib import Path
from sync.locks import LockBusy, job_lock
from sync.store import Store

url, job, mode, ready, stop = sys.argv[1:6]
store = Store.open(url)
try:
    with job_lock(store, job):
        if mode == "try":
            print("acquired")
            sys.exit(0)
        Path(ready).write_text("locked")
        while not Path(stop).exists():
            time.sleep(0.05)
except LockBusy as exc:
    print(exc)
    sys.exit(3)
"""


def _child(url: str, job: str, mode: str, tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, job, mode, str(tmp / "ready"), str(tmp / "stop")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def _holder(url: str, job: str, tmp: Path) -> Iterator[subprocess.Popen[str]]:
    proc = _child(url, job, "hold", tmp)
    try:
        deadline = time.monotonic() + 20
        while not (tmp / "ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"lock holder did not start: {proc.communicate()}")
            time.sleep(0.05)
        yield proc
    finally:
        (tmp / "stop").touch()
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()


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
        other = _child(store_url, job, "try", tmp_path)
        out, _ = other.communicate(timeout=20)
        assert other.returncode == 3, out
        assert "already running" in out
    assert holder.returncode == 0
    with job_lock(store, job, wait=True, timeout=10):
        contender = _child(store_url, job, "try", tmp_path)
        contender.communicate(timeout=20)
        assert contender.returncode == 3
    after = _child(store_url, job, "try", tmp_path)
    out, _ = after.communicate(timeout=20)
    assert (after.returncode, out.strip()) == (0, "acquired")


def test_a_killed_holder_releases_the_lock(
    store: Store, store_url: str, tmp_path: Path, job: str
) -> None:
    with _holder(store_url, job, tmp_path) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
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
    assert holder.returncode == 0


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
