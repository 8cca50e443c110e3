"""The files a report entry writes into an `out:` directory are named in UTC, as run ids are:
local time repeats an hour when the clocks go back, and an hourly report would then write
over the one of the hour before."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config import load_config
from sync.jobs import run_job

HOURLY = {"name": "hourly-health", "cron": "0 * * * *", "job": "report", "out": "reports/"}


@pytest.fixture
def berlin_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_report_entry_names_its_files_in_utc_not_local_time(
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
    berlin_local_time: None,
) -> None:
    config = write_config(new_store_url("sqlite"), HOURLY)
    before = datetime.now(UTC).replace(microsecond=0)
    run_job(str(config), load_config(config).schedule[0], stop=threading.Event())
    after = datetime.now(UTC)
    [written] = (config.parent / "reports").iterdir()
    match = re.fullmatch(r"hourly-health-(\d{8}T\d{6})Z\.html", written.name)
    assert match, written.name
    stamp = datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    assert before <= stamp <= after


def test_a_report_entry_with_filters_writes_the_report_they_narrow(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    entry = {**HOURLY, "out": "deck.json", "funnels": ["default"], "systems": ["hubspot"]}
    config = write_config(new_store_url("sqlite"), entry)
    run_job(str(config), load_config(config).schedule[0], stop=threading.Event())
    report = json.loads((config.parent / "deck.json").read_text())
    assert report["filters"]["funnels"] == ["default"]
    assert report["filters"]["systems"] == ["hubspot"]
    assert list(report["systems"]) == ["hubspot"]
