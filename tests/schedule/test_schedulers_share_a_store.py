"""Schedulers against the real PostgreSQL store and the sandbox: one run per firing, catch-up."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger

from config import ScheduleEntry
from sync.scheduler import run_scheduler
from sync.store import RunStatus, Store
from sync.store_records import RunRecord

pytestmark = pytest.mark.postgres

NIGHTLY = {"name": "nightly-plan", "cron": "0 * * * *", "job": "reconcile-dry-run"}


def every_two_seconds(entry: ScheduleEntry) -> CronTrigger:
    return CronTrigger(second="*/2", timezone=UTC)


def start(config: str, stop: threading.Event, **kwargs: object) -> threading.Thread:
    thread = threading.Thread(target=run_scheduler, args=(config,),
                              kwargs={"stop": stop, **kwargs}, daemon=True)  # fmt: skip
    thread.start()
    return thread


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _firings(runs: list[RunRecord]) -> Counter[datetime]:
    """Runs per firing: each run's start rounded down to its two-second firing."""
    return Counter(r.started_at.replace(microsecond=0) - timedelta(
        seconds=r.started_at.second % 2) for r in runs)  # fmt: skip


def test_two_schedulers_on_one_database_run_each_firing_exactly_once(
    new_store_url: Callable[[str], str], write_config: Callable[..., object]
) -> None:
    url = new_store_url("postgresql")
    config = str(write_config(url, {**NIGHTLY, "misfire_grace_seconds": 1}))
    stop = threading.Event()
    schedulers = [start(config, stop, trigger_for=every_two_seconds) for _ in range(2)]
    with Store.open(url) as store:
        # Until three firings ran (a busy machine misses some within their 1 s of grace: the
        # count of firings is no measure here; that each ran once is).
        wait_for(lambda: len(_firings(store.runs.recent(100, job="nightly-plan"))) >= 3, 60)
    stop.set()
    for thread in schedulers:
        thread.join(30)
        assert not thread.is_alive()
    with Store.open(url) as store:
        runs = store.runs.recent(100, job="nightly-plan")
    assert all(r.status == RunStatus.OK for r in runs), [(r.status, r.error) for r in runs]
    firings = _firings(runs)
    assert len(firings) >= 3
    assert set(firings.values()) == {1}, firings
    assert all(r.counts.get("changes") is not None and r.calls for r in runs)


@pytest.mark.parametrize("before", [RunStatus.OK, RunStatus.INTERRUPTED])
def test_a_missed_firing_runs_once_after_a_restart_not_once_per_firing(
    before: RunStatus, new_store_url: Callable[[str], str], write_config: Callable[..., object]
) -> None:
    """`before`: the last run served its firing, or was stopped (SIGTERM) and served none."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second > 40:  # keep the top of the hour out of the test
        time.sleep(61 - now.second)
    url = new_store_url("postgresql")
    config = str(write_config(url, NIGHTLY))
    ten_hours_ago = datetime.now(UTC) - timedelta(hours=10)
    with Store.open(url, clock=lambda: ten_hours_ago) as past:  # the scheduler ran back then
        past.runs.finish(past.runs.start("nightly-plan", "reconcile-dry-run"), before.value)

    stop = threading.Event()
    scheduler = start(config, stop)
    with Store.open(url) as store:
        recent = store.runs.recent
        wait_for(lambda: any(r.status == RunStatus.OK for r in recent(5, job="nightly-plan")
                             if r.started_at > ten_hours_ago), 30)  # fmt: skip
        stop.set()
        scheduler.join(30)
        again = threading.Event()
        restarted = start(config, again)
        time.sleep(2)
        again.set()
        restarted.join(30)
        runs = store.runs.recent(10, job="nightly-plan")
    assert [r.status for r in runs] == [RunStatus.OK, before]
    assert runs[0].started_at.replace(minute=0, second=0, microsecond=0) > ten_hours_ago


def test_a_scheduled_apply_is_recorded_under_its_entry_with_counts_and_calls(
    new_store_url: Callable[[str], str], write_config: Callable[..., object]
) -> None:
    from config import load_config
    from sync.jobs import run_job

    url = new_store_url("postgresql")
    config = str(write_config(url, {"name": "nightly-apply", "cron": "30 2 * * *",
                                    "job": "reconcile"}))  # fmt: skip
    outcome = run_job(config, load_config(config).schedule[0], stop=threading.Event())
    with Store.open(url) as store:
        run = store.runs.get(outcome.run_id or "")
    assert run is not None and (run.job, run.kind.value) == ("nightly-apply", "reconcile")
    assert run.status.value == outcome.status and outcome.status in ("ok", "partial"), outcome
    assert run.finished_at is not None and set(run.calls) == {"salesforce", "hubspot", "pipedrive"}
    assert run.counts["changes"] >= 1  # the generated data plants discrepancies


def test_a_scheduled_reconcile_waits_for_no_other_reconcile_of_the_store(
    new_store_url: Callable[[str], str], write_config: Callable[..., object]
) -> None:
    # A reconcile (or an apply, a rollback) by hand holds the store's reconcile lock: a
    # scheduled reconcile under its own name would otherwise plan from a pull that those
    # writes overtake. It skips the firing, as when another scheduler runs the entry.
    from config import load_config
    from sync.jobs import SKIPPED, run_job
    from sync.locks import job_lock

    url = new_store_url("postgresql")
    config = str(write_config(url, {"name": "nightly-apply", "cron": "30 2 * * *",
                                    "job": "reconcile"}))  # fmt: skip
    with Store.open(url) as store, job_lock(store, "reconcile"):
        outcome = run_job(config, load_config(config).schedule[0], stop=threading.Event())
        assert outcome.status == SKIPPED and "'reconcile' lock" in outcome.detail, outcome
        assert store.runs.recent(10) == []


def test_a_full_reconcile_entry_pulls_everything_where_a_nightly_one_reads_changes(
    new_store_url: Callable[[str], str], write_config: Callable[..., object]
) -> None:
    from config import load_config
    from sync.jobs import run_job

    url = new_store_url("sqlite")
    nightly = {"name": "nightly", "cron": "0 2 * * *", "job": "reconcile-dry-run"}
    weekly = {**nightly, "name": "weekly-full", "cron": "0 3 * * 0", "full": True}
    config = str(write_config(url, nightly, weekly))
    entries = {e.name: e for e in load_config(config).schedule}
    for name in ("nightly", "nightly", "weekly-full"):  # the first run is full anyway
        run_job(config, entries[name], stop=threading.Event())
    with Store.open(url) as store:
        incremental = store.runs.recent(1, job="nightly")[0]
        full = store.runs.recent(1, job="weekly-full")[0]
    # HubSpot's incremental read is a search by modification time; a full one lists every deal
    assert "search deals" in incremental.calls["hubspot"], incremental.calls
    assert "search deals" not in full.calls["hubspot"], full.calls
    assert "list deals" in full.calls["hubspot"], full.calls
