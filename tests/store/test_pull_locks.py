"""Pull locks: one per CRM instance and store, held by every pull while it reads and saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.locks import LockBusy, job_lock, pull_locks
from sync.store import RunKind, Store
from tests.lock_holders import held_elsewhere, unique_lock_name

# Holds the pull locks of the instances named until stopped.
PULLING = """
import sys
from sync.locks import pull_locks
from sync.store import Store
from tests.lock_holders import hold_until_stopped

ready, stop, url, *instances = sys.argv[1:]
with Store.open(url) as store, pull_locks(store, instances):
    hold_until_stopped(ready, stop)
"""


@pytest.fixture
def instance() -> str:
    return unique_lock_name("hubspot")


def test_a_pull_lock_is_held_per_instance(
    store: Store, store_url: str, tmp_path: Path, instance: str
) -> None:
    other = f"{instance}-eu"
    with held_elsewhere(tmp_path, PULLING, store_url, instance) as holder:
        with pytest.raises(LockBusy) as caught, pull_locks(store, [instance]):
            pytest.fail("took a pull lock another process holds")
        assert str(caught.value) == (
            f"pull of {instance!r} is already running (lock held by another process); run this "
            "again once it ends (locks end with their process: none is left by a killed one)"
        )
        with pull_locks(store, [other]):  # another instance: pulled side by side
            pass
        with pytest.raises(LockBusy), pull_locks(store, [other, instance]):
            pytest.fail("took a pull lock another process holds")
        with pull_locks(store, [other]):  # not left held by the refused attempt
            pass
        with (
            pytest.raises(LockBusy, match=r"still running after waiting 0\.3s"),
            pull_locks(store, [instance], wait=True, timeout=0.3),
        ):
            pass
    assert holder.process.returncode == 0
    with pull_locks(store, [instance, other]):
        pass


def test_a_pull_lock_waited_for_by_a_caller_without_wait_does_not_ask_for_a_longer_wait(
    store: Store, store_url: str, tmp_path: Path, instance: str
) -> None:
    """A scheduled job waits DEFAULT_WAIT for another process's pull: `crmsync schedule` has
    no --wait to give, so its run's error must not ask for one."""
    with held_elsewhere(tmp_path, PULLING, store_url, instance):
        with pytest.raises(LockBusy) as caught, pull_locks(store, [instance], True, 0.3):
            pytest.fail("took a pull lock another process holds")
        with (
            pytest.raises(LockBusy, match=r"or give a longer --wait$"),
            pull_locks(store, [instance], True, 0.3, wait_option=True),
        ):
            pass
    assert str(caught.value) == (
        f"pull of {instance!r} is still running after waiting 0.3s (lock held by another "
        "process); let it finish (`crmsync runs` shows it) and run this again"
    )


def test_no_schedule_entry_name_shares_an_instances_pull_lock(store: Store, instance: str) -> None:
    names = [f"pull:{instance}", f"pull@{instance}", f"pull_{instance}", f"pull.{instance}"]
    for name in names:
        with job_lock(store, name), pull_locks(store, [instance]):
            pass


def test_instances_whose_names_differ_only_in_odd_characters_have_their_own_locks(
    store: Store, instance: str
) -> None:
    with pull_locks(store, [f"{instance}/eu", f"{instance}_eu", f"{instance} eu"]):
        pass


def test_taking_pull_locks_ends_only_the_pull_runs_that_held_one_of_them(store: Store) -> None:
    """No process holds a lock here, so every run still `running` is one a killed process
    left: those that held one of the locks taken are recorded as interrupted."""
    started = {
        "hubspot": store.runs.start("pull", RunKind.PULL, instances=["hubspot"]),
        "both": store.runs.start("pull", RunKind.PULL, instances=["pipedrive", "hubspot"]),
        "older crmsync": store.runs.start("pull", RunKind.PULL),  # recorded no instances
        "pipedrive": store.runs.start("pull", RunKind.PULL, instances=["pipedrive"]),
        "other job": store.runs.start("bench", RunKind.PULL, instances=["hubspot"]),
        "reconcile": store.runs.start("reconcile", RunKind.RECONCILE),
        "report": store.runs.start("report", RunKind.REPORT),
    }
    with pull_locks(store, ["hubspot"]):
        pass
    statuses = {name: store.runs.get(run_id) for name, run_id in started.items()}
    assert {name: run.status.value for name, run in statuses.items() if run} == {
        "hubspot": "interrupted",
        "both": "interrupted",
        "older crmsync": "interrupted",
        "pipedrive": "running",
        "other job": "running",
        "reconcile": "running",
        "report": "running",
    }


def test_more_instances_than_the_connection_pool_holds_are_pulled_with_the_store_usable(
    store: Store, instance: str
) -> None:
    """Each lock holds a session of its own for the whole pull; the pool (5 + 10 overflow)
    must still serve the pull's work. A config of 20 instances waited 30 s for a pooled
    connection, then failed."""
    many = [f"{instance}-{n}" for n in range(20)]
    with job_lock(store, unique_lock_name("reconcile")), pull_locks(store, many):
        run = store.runs.start("pull", RunKind.PULL, "fp")
        store.checkpoint()  # every lock's session still there
    assert any(r.id == run for r in store.runs.recent(limit=5))
