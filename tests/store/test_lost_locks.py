"""A PostgreSQL lock is a session advisory lock: it ends with its session (a server restart, a
dropped connection, pg_terminate_backend), and another process can then take it. Its holder
stops at its next checkpoint (before its next write batch) with one clear line, instead of
writing on beside the new holder."""

from __future__ import annotations

import logging

import pytest

from sync.locks import LockLost, job_lock, pull_locks
from sync.store import Store
from tests.fixtures_store import end_lock_session
from tests.lock_holders import unique_lock_name

# The conftest's `store`, on PostgreSQL only (skipped when it is absent)
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("store_url", ["postgresql"], indirect=True),
]


def test_a_holder_whose_lock_session_ended_stops_at_its_next_checkpoint(
    store: Store, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    instance = unique_lock_name("hubspot")
    with pull_locks(store, [instance]):
        store.checkpoint()  # held: goes on
        end_lock_session(store, instance, "pull")
        with pytest.raises(LockLost) as lost:
            store.checkpoint()
        with Store.open(store_url) as other, pull_locks(other, [instance]):
            pass  # free for another process now: why the holder must stop
        with pytest.raises(LockLost):
            store.checkpoint()  # and stays lost
    message = str(lost.value)
    assert message.startswith(f"pull of {instance!r}: lock lost (the PostgreSQL session holding")
    assert "terminating connection" in message and "run it again" in message
    assert "\n" not in message
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # one line: the error
    store.checkpoint()  # released: nothing left to confirm
    with pull_locks(store, [instance]):  # the store takes it again
        store.checkpoint()


def test_a_job_lock_lost_stops_its_holder_but_not_the_holder_of_another_lock(
    store: Store, store_url: str
) -> None:
    job = unique_lock_name("nightly")
    with Store.open(store_url) as other, job_lock(other, job + "-other"):
        with job_lock(store, job):
            end_lock_session(store, job, "job")
            with pytest.raises(LockLost, match=rf"job '{job}': lock lost"):
                store.checkpoint()
        other.checkpoint()
