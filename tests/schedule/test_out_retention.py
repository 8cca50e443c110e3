"""`keep: N` on an entry whose `out:` is a directory: after each firing only the newest N of the
entry's own files stay there; every other file of the directory stays, another entry's too."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config import load_config
from sync.jobs import JobOutcome, run_job
from sync.retention import UTC_STAMP, own_files, to_delete

# Files already there: the entry's own, oldest first, and others that only look alike.
OWN_REPORTS = [f"health-2026010{d}T020000Z.html" for d in (1, 2, 3)]
OWN_PLANS = [f"nightly-2026010{d}T020000Z-0000000{d}.json" for d in (1, 2, 3)]
FOREIGN = [
    "notes.txt",
    "health-20260101T020000Z.json",  # another suffix: a file a person saved there
    "health-weekly-20260101T020000Z.html",  # an entry whose name begins with `health-`
    "nightly-apply-20260101T020000Z-00000001.json",  # an entry whose name begins with `nightly`
    "nightly-latest.json",
    "health-20260101T020000Z.html.bak",
]


def fire(config: Path) -> JobOutcome:
    return run_job(str(config), load_config(config).schedule[0], stop=threading.Event())


def with_files(directory: Path, names: list[str]) -> None:
    directory.mkdir()
    for name in names:
        (directory / name).write_text("{}")


def new_files(directory: Path, before: list[str]) -> set[str]:
    return {p.name for p in directory.iterdir()} - set(before)


def test_a_report_entry_keeps_its_newest_files_and_leaves_any_other_file_alone(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    entry: dict[str, Any] = {"name": "health", "cron": "0 6 * * 1", "job": "report"}
    config = write_config(new_store_url("sqlite"), {**entry, "out": "reports/", "keep": 2})
    reports = config.parent / "reports"
    with_files(reports, OWN_REPORTS + FOREIGN)
    outcome = fire(config)
    assert outcome.status == "ok", outcome.summary()
    [written] = new_files(reports, OWN_REPORTS + FOREIGN)
    assert {p.name for p in reports.iterdir()} == {written, OWN_REPORTS[-1], *FOREIGN}


def test_a_plan_entry_keeps_its_newest_files_and_leaves_any_other_file_alone(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    entry = {"name": "nightly", "cron": "0 2 * * *", "job": "reconcile-dry-run"}
    config = write_config(new_store_url("sqlite"), {**entry, "out": "plans/", "keep": 1})
    plans = config.parent / "plans"
    with_files(plans, OWN_PLANS + FOREIGN)
    outcome = fire(config)
    assert outcome.status == "ok", outcome.summary()
    [written] = new_files(plans, OWN_PLANS + FOREIGN)
    assert {p.name for p in plans.iterdir()} == {written, *FOREIGN}


def test_without_keep_an_out_directory_keeps_every_file(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    entry = {"name": "health", "cron": "0 6 * * 1", "job": "report", "out": "reports/"}
    config = write_config(new_store_url("sqlite"), entry)
    reports = config.parent / "reports"
    with_files(reports, OWN_REPORTS)
    fire(config)
    assert set(OWN_REPORTS) < {p.name for p in reports.iterdir()}


def test_keep_beyond_the_files_there_deletes_none() -> None:
    own = own_files("health", UTC_STAMP, ".html")
    assert to_delete(OWN_REPORTS, own, 4, "health-20260104T020000Z.html") == []
    assert to_delete(OWN_REPORTS, own, 3, "health-20260104T020000Z.html") == [OWN_REPORTS[0]]
