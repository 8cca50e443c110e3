"""A config edited while `crmsync schedule` runs: each firing runs its entry as the file now
says, and an entry taken out of the file no longer runs (or writes)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from apscheduler.triggers.date import DateTrigger

from config import ScheduleEntry
from sync.scheduler import run_scheduler
from sync.store import Store

APPLY = {"name": "nightly-apply", "cron": "30 2 * * *", "job": "reconcile"}


def run_edited(config: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Run the scheduler with each entry firing once, 1.5 s after start; ``edit`` changes the
    config file once the scheduler has read it, before that firing."""

    def soon(entry: ScheduleEntry) -> DateTrigger:
        doc = yaml.safe_load(config.read_text())
        edit(doc)
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
        return DateTrigger(datetime.now(UTC) + timedelta(seconds=1.5))

    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(str(config),),
                              kwargs={"stop": stop, "trigger_for": soon}, daemon=True)  # fmt: skip
    thread.start()
    time.sleep(4)
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


def test_an_entry_switched_to_a_dry_run_while_the_scheduler_runs_writes_nothing(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, APPLY)

    def to_dry_run(doc: dict[str, Any]) -> None:
        doc["schedule"][0]["job"] = "reconcile-dry-run"

    run_edited(config, to_dry_run)
    with Store.open(url) as store:
        runs = store.runs.recent(5, job="nightly-apply")
    assert [r.kind.value for r in runs] == ["reconcile-dry-run"], runs
    assert "applied" not in runs[0].counts


def test_an_entry_removed_while_the_scheduler_runs_no_longer_runs(
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, APPLY)

    def remove(doc: dict[str, Any]) -> None:
        doc["schedule"] = []

    with caplog.at_level(logging.INFO, logger="crmsync.schedule"):
        run_edited(config, remove)
    with Store.open(url) as store:
        assert store.runs.recent(5) == []
    said = [r for r in caplog.records if "no longer in" in r.getMessage()]
    assert said and said[0].levelno == logging.WARNING, caplog.text
