"""A pull that stops early (its store fails, Ctrl-C) ends only once its reader threads have:
the caller closes the connectors next (sync/runtime.py), and in `crmsync schedule` the next
firing may start; a reader still in a call to its CRM then ran beside both. The wait is
bounded: a reader stuck in a call its CRM does not answer is left behind with one line."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.exc import OperationalError

from connectors.sandbox.faults import Faults
from sync.pull import pull
from sync.runtime import Runtime, open_runtime
from sync.schema import StoreError
from tests.integration.conftest import World


@contextmanager
def _hubspot_slow(world: World, latency_ms: int) -> Iterator[None]:
    faults = world.sandbox.servers["hubspot"].faults
    faults.set(Faults(latency_ms=latency_ms))
    try:
        yield
    finally:
        faults.set(Faults())


def _store_broken_after_first_chunk(rt: Runtime) -> Callable[[str, int], None]:
    """A pull's progress hook that, once a first chunk is saved, takes tables away from under
    the store (from a connection of its own): the next chunk's save fails, and so does what a
    full pull writes once it stops (its meta)."""
    database = rt.store.engine.url.database
    assert database, "a SQLite store"

    def progress(instance: str, done: int) -> None:
        with sqlite3.connect(database) as conn:
            for table in ("deals", "meta"):
                conn.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")

    return progress


def _readers_left(before: set[threading.Thread]) -> list[str]:
    return [t.name for t in threading.enumerate() if t not in before and t.name.startswith("pull-")]


def test_a_pull_whose_store_fails_mid_way_ends_after_its_readers(small_world: World) -> None:
    before = set(threading.enumerate())
    # HubSpot's reader is still in a call when Salesforce's or Pipedrive's chunk is saved and
    # the next one's save fails.
    with _hubspot_slow(small_world, 400), open_runtime(str(small_world.config)) as rt:
        progress = _store_broken_after_first_chunk(rt)
        with pytest.raises((StoreError, OperationalError)):
            pull(rt.config, rt.store, rt.connectors, full=True, progress=progress)
        left = _readers_left(before)
    assert left == [], f"the pull ended with {left} still reading"


def test_a_reader_stuck_in_a_call_holds_a_stopped_pull_up_a_few_seconds_at_most(
    small_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(threading.enumerate())
    # HubSpot answers its first call after 15 s, well past the wait
    with _hubspot_slow(small_world, 15_000), open_runtime(str(small_world.config)) as rt:
        progress = _store_broken_after_first_chunk(rt)
        with caplog.at_level(logging.WARNING, logger="crmsync.pull"):
            started = time.monotonic()
            with pytest.raises((StoreError, OperationalError)):
                pull(rt.config, rt.store, rt.connectors, full=True, progress=progress)
            took = time.monotonic() - started
        assert _readers_left(before) == ["pull-hubspot"]
    lines = [r.getMessage() for r in caplog.records if r.name == "crmsync.pull"]
    assert len(lines) == 1 and "hubspot" in lines[0], lines
    assert took < 10, f"a stopped pull waited {took:.1f} s for a reader in a call"
