"""`crmsync check` says when a schedule entry's firing was run by nothing (the daemon, or the
timer running `schedule --run-now`, stopped): one problem line and exit 1, which monitoring
that runs `check` catches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from sync.cli import main
from sync.store import Store

HOURLY = {"name": "hourly-plan", "cron": "0 * * * *", "job": "reconcile-dry-run"}


def _ran(url: str, at: datetime) -> None:
    with Store.open(url, clock=lambda: at) as past:
        past.runs.finish(past.runs.start("hourly-plan", "reconcile-dry-run"), "ok")


def _check(config: Path) -> tuple[int, list[str]]:
    done = CliRunner().invoke(main, ["check", "--config", str(config)])
    lines = [line for line in done.stdout.splitlines() if "schedule hourly-plan" in line]
    return done.exit_code, lines


def test_a_firing_no_run_served_is_a_problem_naming_it_and_the_last_run(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, HOURLY)
    last = datetime.now(UTC).replace(minute=0, second=5, microsecond=0) - timedelta(hours=3)
    _ran(url, last)
    code, lines = _check(config)
    missed = (last + timedelta(hours=1)).replace(second=0).strftime("%Y-%m-%d %H:%M UTC")
    assert code == 1, lines
    assert len(lines) == 1 and lines[0].startswith("problem: schedule hourly-plan: "), lines
    assert f"nothing ran its firing at {missed}" in lines[0], lines
    assert "last run started " + last.strftime("%Y-%m-%d %H:%M UTC") + ", ok" in lines[0], lines


def test_an_entry_whose_firings_all_ran_or_that_never_ran_is_ok(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, HOURLY)
    code, lines = _check(config)
    assert code == 0 and len(lines) == 1, lines
    assert lines[0].startswith("ok: schedule hourly-plan: no run yet; next firing "), lines
    _ran(url, datetime.now(UTC) - timedelta(minutes=1))
    code, lines = _check(config)
    assert code == 0 and len(lines) == 1, lines
    assert lines[0].startswith("ok: schedule hourly-plan: last run started "), lines
    assert " (ok); next firing " in lines[0], lines
