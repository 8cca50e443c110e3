"""A scheduled report job killed outright leaves its run `running`: the entry's next run, which
holds the entry's lock, records it as interrupted; a run whose process holds that lock is not."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from config import load_config
from sync.jobs import SKIPPED, run_job
from sync.locks import job_lock
from sync.store import RunKind, RunStatus, Store

WEEKLY = {"name": "weekly-health", "cron": "0 6 * * 1", "job": "report"}
DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_next_run_of_a_report_entry_records_its_killed_run_as_interrupted(
    dialect: str, new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    url = new_store_url(dialect)
    config = str(write_config(url, WEEKLY))
    with Store.open(url) as store:  # as a scheduler killed with kill -9 mid-report left it
        killed = store.runs.start("weekly-health", RunKind.REPORT)
        manual = store.runs.start("report", RunKind.REPORT)  # `crmsync report`: its own lock
    outcome = run_job(config, load_config(config).schedule[0], stop=threading.Event())
    assert outcome.status == RunStatus.OK.value, outcome
    with Store.open(url) as store:
        old, new = store.runs.get(killed), store.runs.recent(1, job="weekly-health")[0]
        by_hand = store.runs.get(manual)
    assert old is not None and old.status is RunStatus.INTERRUPTED, old
    assert old.finished_at is not None and "killed" in (old.error or "")
    assert new.id != killed and new.status is RunStatus.OK
    assert by_hand is not None and by_hand.status is RunStatus.RUNNING


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_report_entry_run_by_a_live_process_is_skipped_and_left_running(
    dialect: str, new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    url = new_store_url(dialect)
    config = str(write_config(url, WEEKLY))
    with Store.open(url) as store, job_lock(store, "weekly-health"):  # another scheduler
        running = store.runs.start("weekly-health", RunKind.REPORT)
        outcome = run_job(config, load_config(config).schedule[0], stop=threading.Event())
        assert outcome.status == SKIPPED, outcome
        run = store.runs.get(running)
        assert run is not None and run.status is RunStatus.RUNNING, run
        assert [r.id for r in store.runs.recent(10)] == [running]
