"""`crmsync runs` as printed, wide and on a terminal under 120 columns (two lines per run): the
texts as recorded, and the schedule entry that ran each run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sync.cli import main
from sync.runtime import open_runtime
from sync.store_records import RunKind, RunStatus

CONFIG = """\
version: 1
store: sqlite:///crmsync.db
systems:
  hubspot:
    kind: hubspot
    base_url: http://127.0.0.1:8081
    credentials:
      access_token: hs-dummy-token
    stage_map:
      default: {appointmentscheduled: lead, closedwon: won, closedlost: lost}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "crmsync.yaml"
    path.write_text(CONFIG)
    return path


def test_runs_on_a_narrow_terminal_print_an_error_as_recorded_not_as_emoji_codes(
    config: Path,
) -> None:
    """A CRM's error text naming a deal such as "Expansion :rocket: Q3" is shown as written,
    as the wide table shows it (rich would turn `:rocket:` into an emoji)."""
    error = "hubspot deal 42 'Expansion :rocket: Q3 :x:': stage not mapped"
    with open_runtime(str(config), connect=False) as rt:
        run_id = rt.store.runs.start("reconcile", RunKind.RECONCILE)
        rt.store.runs.finish(run_id, RunStatus.FAILED, error=error)
    for columns in ("80", "200"):
        shown = CliRunner(env={"COLUMNS": columns}).invoke(main, ["runs", "--config", str(config)])
        assert shown.exit_code == 0, shown.output
        text = " ".join(shown.stdout.split())
        assert "Expansion :rocket: Q3 :x:" in text, (columns, shown.stdout)
        assert "\U0001f680" not in shown.stdout, (columns, shown.stdout)


def test_runs_name_the_schedule_entry_that_ran_them(config: Path) -> None:
    """Two entries of one job kind (a nightly apply, a weekly full run) are told apart, as
    `runs --format json` tells them apart by `job`; a command's own run names no entry."""
    with open_runtime(str(config), connect=False) as rt:
        for job in ("nightly-apply", "weekly-full", "reconcile"):
            run_id = rt.store.runs.start(job, RunKind.RECONCILE)
            rt.store.runs.finish(run_id, RunStatus.OK)
    for columns in ("80", "200"):
        shown = CliRunner(env={"COLUMNS": columns}).invoke(main, ["runs", "--config", str(config)])
        assert shown.exit_code == 0, shown.output
        text = " ".join(shown.stdout.split())
        assert "entry nightly-apply" in text and "entry weekly-full" in text, shown.stdout
        assert text.count("entry ") == 2, (columns, shown.stdout)
