"""Two schedulers sharing one store (one per machine, the same config), each with a plan and an
apply entry on one cron line: at each firing one runs the apply, and the other's plan waits for
it instead of taking it for a reconcile by hand. Each firing of each entry runs once, and
nothing is logged as a warning: alerting on warnings stays for what needs reading."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger

from config import ScheduleEntry
from sync.scheduler import run_scheduler
from sync.store import RunStatus, Store

PLAN = {"name": "nightly-plan", "cron": "0 2 * * *", "job": "reconcile-dry-run"}
APPLY = {"name": "nightly-apply", "cron": "0 2 * * *", "job": "reconcile"}
EVERY = 4  # seconds between firings: both entries run well within one


def every_few_seconds(entry: ScheduleEntry) -> CronTrigger:
    return CronTrigger(second=f"*/{EVERY}", timezone="UTC")


@pytest.mark.parametrize(
    "dialect",
    ["sqlite", pytest.param("postgresql", marks=(pytest.mark.postgres, pytest.mark.slow))],
)
def test_two_schedulers_on_one_store_run_a_plan_and_an_apply_of_one_firing_without_warnings(
    dialect: str,
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = new_store_url(dialect)
    config = str(write_config(url, PLAN, APPLY))
    stop = threading.Event()
    schedulers = [
        threading.Thread(target=run_scheduler, args=(config,), daemon=True,
                         kwargs={"stop": stop, "trigger_for": every_few_seconds})
        for _ in range(2)
    ]  # fmt: skip
    deadline = time.monotonic() + 30
    with caplog.at_level(logging.INFO), Store.open(url) as store:
        for scheduler in schedulers:
            scheduler.start()
        while not all(store.runs.recent(5, job=e["name"]) for e in (PLAN, APPLY)) or any(
            r.finished_at is None for r in store.runs.recent(10)
        ):
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.1)
        stop.set()
        for scheduler in schedulers:
            scheduler.join(30)
            assert not scheduler.is_alive()
        runs = store.runs.recent(20)
    # crmsync's own warnings; APScheduler skipping a firing while its run goes on is no fault
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("crmsync")
    ]
    assert warned == [], warned
    assert {r.status for r in runs} == {RunStatus.OK}, [(r.job, r.status, r.error) for r in runs]
    firings = Counter((r.job, int(r.started_at.timestamp()) // EVERY) for r in runs)
    assert set(firings.values()) == {1}, firings
