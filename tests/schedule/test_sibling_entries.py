"""Entries of one scheduler that fire together: a reconcile entry waits for its sibling's
reconcile instead of losing its firing to it; what needs reading is logged as a warning."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger

from config import ScheduleEntry
from connectors.sandbox.launcher import Sandbox
from sync.locks import job_lock
from sync.scheduler import run_scheduler
from sync.store import RunStatus, Store
from tests.sandbox_env import run_crmsync
from tests.schedule.conftest import slowed

PLAN = {"name": "nightly-plan", "cron": "0 2 * * *", "job": "reconcile-dry-run"}
APPLY = {"name": "nightly-apply", "cron": "0 2 * * *", "job": "reconcile"}
HEALTH = {"name": "health", "cron": "0 6 * * 1", "job": "report", "out": "health.html"}


def every_three_seconds(entry: ScheduleEntry) -> CronTrigger:
    return CronTrigger(second="*/3", timezone="UTC")


def run_until_each_ran(config: Path, url: str, *jobs: str) -> None:
    """Run the scheduler until each of ``jobs`` has finished a run (20 s at most)."""
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(str(config),),
                              kwargs={"stop": stop, "trigger_for": every_three_seconds},
                              daemon=True)  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 20
    try:
        with Store.open(url) as store:
            while not all(
                any(r.finished_at for r in store.runs.recent(5, job=job)) for job in jobs
            ):
                assert time.monotonic() < deadline, f"not every one of {jobs} ran"
                time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def test_two_reconcile_entries_firing_together_both_run_one_after_the_other(
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, PLAN, APPLY)
    with caplog.at_level(logging.INFO, logger="crmsync.schedule"):
        run_until_each_ran(config, url, "nightly-plan", "nightly-apply")  # one firing, both
    ours = [r for r in caplog.records if r.name == "crmsync.schedule"]  # not APScheduler's
    skipped = [r.getMessage() for r in ours if "skipped" in r.getMessage()]
    assert skipped == []
    with Store.open(url) as store:
        plans = store.runs.recent(10, job="nightly-plan")
        applies = store.runs.recent(10, job="nightly-apply")
    assert plans and applies, (plans, applies)
    assert {r.status for r in [*plans, *applies]} == {RunStatus.OK}


def test_a_report_that_breaches_its_thresholds_is_logged_as_a_warning(
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, HEALTH)  # the sample data is mostly stale
    with caplog.at_level(logging.INFO, logger="crmsync.schedule"):
        run_until_each_ran(config, url, "health")
    breached = [r for r in caplog.records if "health: limits breached" in r.getMessage()]
    assert breached and {r.levelno for r in breached} == {logging.WARNING}, caplog.text


def test_a_firing_waits_for_a_command_by_hand_that_holds_the_reconcile_lock_then_runs(
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A `links confirm` or a `reconcile --dry-run` by hand as the nightly apply fires: the
    firing was skipped, and nothing was applied until the next night."""
    url = new_store_url("sqlite")
    config = write_config(url, APPLY)
    with caplog.at_level(logging.INFO, logger="crmsync.schedule"):
        with Store.open(url) as store, job_lock(store, "reconcile"):  # the command by hand
            stop = threading.Event()
            scheduler = threading.Thread(target=run_scheduler, args=(str(config),),
                                         kwargs={"stop": stop,
                                                 "trigger_for": every_three_seconds},
                                         daemon=True)  # fmt: skip
            scheduler.start()
            time.sleep(4)  # a firing came, and waits
        try:
            with Store.open(url) as store:
                deadline = time.monotonic() + 20
                while not any(r.finished_at for r in store.runs.recent(5, job="nightly-apply")):
                    assert time.monotonic() < deadline, caplog.text
                    time.sleep(0.1)
                [run] = store.runs.recent(5, job="nightly-apply")[-1:]
        finally:
            stop.set()
            scheduler.join(30)
    assert run.status is RunStatus.OK
    # crmsync skipped no firing. APScheduler may skip a later one of these 3-second firings
    # while the first still runs (max_instances=1), on a loaded machine: not the behaviour here.
    ours = [r for r in caplog.records if r.name == "crmsync.schedule"]
    assert [r.getMessage() for r in ours if "skipped" in r.getMessage()] == []


def test_a_firing_skipped_for_a_reconcile_by_hand_past_its_grace_is_logged_as_a_warning(
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, {**APPLY, "misfire_grace_seconds": 1})
    stop = threading.Event()
    scheduler = threading.Thread(target=run_scheduler, args=(str(config),),
                                 kwargs={"stop": stop, "trigger_for": every_three_seconds},
                                 daemon=True)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="crmsync.schedule"):
        with Store.open(url) as store, job_lock(store, "reconcile"):  # `crmsync reconcile`
            scheduler.start()
            deadline = time.monotonic() + 10
            while not [
                r
                for r in caplog.records
                if r.name == "crmsync.schedule" and "skipped" in r.getMessage()
            ]:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.1)
            stop.set()
        scheduler.join(30)
    skipped = [
        r for r in caplog.records if r.name == "crmsync.schedule" and "skipped" in r.getMessage()
    ]
    assert {r.levelno for r in skipped} == {logging.WARNING}, caplog.text
    # it waited out the firing's grace (1 s) first, and says how long
    assert all(float(r.getMessage().split(" in ")[1].split("s")[0]) >= 0.5 for r in skipped)


@pytest.mark.parametrize(
    ("held", "exit_code", "said"),
    [
        ("reconcile", 1, "another process holds the 'reconcile' lock of this store"),
        ("nightly-apply", 0, "another process is running it"),
    ],
)
def test_run_now_fails_when_another_process_keeps_its_job_from_running_at_all(
    held: str,
    exit_code: int,
    said: str,
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
) -> None:
    """A oneshot (`--run-now` from a systemd timer) that ran nothing must not look served; the
    same entry running elsewhere is its work being done."""
    url = new_store_url("sqlite")
    config = write_config(url, APPLY)
    with Store.open(url) as store, job_lock(store, held):
        done = run_crmsync("schedule", "--config", str(config), "--run-now", "nightly-apply")
    assert done.returncode == exit_code, done.stderr
    assert "nightly-apply: skipped in " in done.stderr and said in done.stderr, done.stderr


@pytest.fixture
def slow_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    """Every API answer takes 200 ms: two jobs that fire together meet in their pulls."""
    yield from slowed(sandbox, 200)


def test_a_job_waiting_for_a_sibling_jobs_pull_does_not_blame_another_process(
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    slow_sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, APPLY, HEALTH)
    with caplog.at_level(logging.INFO):
        run_until_each_ran(config, url, "nightly-apply", "health")
    waits = [r for r in caplog.records if "waiting for the pull" in r.getMessage()]
    assert waits, caplog.text  # one of the two pulls waited for the other
    said = [w.getMessage() for w in waits]
    assert all(w.endswith("another job of this scheduler is running") for w in said), said
    # routine in a daemon whose entries share CRMs, as waiting for a sibling's turn is: not a
    # warning that wakes whoever alerts on them at every shared firing
    assert {w.levelno for w in waits} == {logging.INFO}


def test_a_reconcile_entry_stopped_while_waiting_for_its_siblings_turn_says_so_as_it_ends(
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    slow_sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """README (Stopping): each job that only waits says `stopped on request (SIGTERM) while
    waiting for ...` as it ends; this one ended without a line."""
    url = new_store_url("sqlite")
    config = write_config(url, PLAN, APPLY)
    stop = threading.Event()
    scheduler = threading.Thread(target=run_scheduler, args=(str(config),),
                                 kwargs={"stop": stop, "trigger_for": every_three_seconds},
                                 daemon=True)  # fmt: skip
    jobs = {"nightly-plan", "nightly-apply"}
    with caplog.at_level(logging.INFO, logger="crmsync.schedule"):
        scheduler.start()
        try:
            with Store.open(url) as store:
                deadline = time.monotonic() + 20
                while not (started := [r for j in jobs for r in store.runs.recent(1, job=j)]):
                    assert time.monotonic() < deadline, caplog.text
                    time.sleep(0.05)
            time.sleep(0.5)  # its sibling fired with it, and waits for its turn
        finally:
            stop.set()  # as SIGTERM does
            scheduler.join(30)
    [running] = started
    [waiter] = jobs - {running.job}
    said = [
        r.getMessage()
        for r in caplog.records
        if r.name == "crmsync.schedule"
        and r.getMessage().startswith(f"{waiter}: ")
        and "next run at" not in r.getMessage()
    ]
    ending = (
        rf"{waiter}: interrupted in \d+\.\ds: stopped on request \(SIGTERM\) while waiting for "
        r"the scheduled reconcile another job of this scheduler is running; nothing was done: "
        r"run it again"
    )
    assert len(said) == 1 and re.fullmatch(ending, said[0]), (said, caplog.text)
    with Store.open(url) as store:
        assert store.runs.recent(5, job=waiter) == []  # it did nothing: no run to record
