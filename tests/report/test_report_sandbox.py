"""`crmsync report` end to end: hand-made native records served by the sandbox, pulled through
the official client library, and every checked figure computed by hand here."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from sync.runtime import open_runtime
from sync.store import Store
from tests.sandbox_env import SandboxEnv, make_env, run_crmsync


def _pipedrive_deal(template: dict[str, Any], id: int, **fields: Any) -> dict[str, Any]:
    record = copy.deepcopy(template)
    record.update(id=id, title=f"Deal {id}", value=1000, currency="USD", pipeline_id=1)
    record.update(fields)
    return record


def _pipedrive_dataset() -> dict[str, Any]:
    """The generator's Pipedrive pipelines, stages and users; these deals only (no flow).

    1: created 01-01, entered stage 5 on 01-11, won 03-01 -> 60 days to won
    2: created 02-01, entered stage 5 on 02-02, won 02-21 -> 20 days to won
    3: a close date no calendar has: a mapping error, skipped (API v2 types amounts as
       numbers, so an amount that is no number cannot be served)
    """
    pipedrive = generate(3, 1)[0]["pipedrive"]
    template = pipedrive["deals"][0]
    won = {"status": "won", "stage_id": 5, "expected_close_date": None, "probability": None}
    pipedrive["deals"] = [
        _pipedrive_deal(template, 1, **won, add_time="2024-01-01 00:00:00",
                        stage_change_time="2024-01-11 00:00:00", won_time="2024-03-01 00:00:00",
                        update_time="2024-03-01 00:00:00"),
        _pipedrive_deal(template, 2, **won, add_time="2024-02-01 00:00:00",
                        stage_change_time="2024-02-02 00:00:00", won_time="2024-02-21 00:00:00",
                        update_time="2024-02-21 00:00:00"),
        _pipedrive_deal(template, 3, expected_close_date="2024-13-01"),
    ]  # fmt: skip
    pipedrive["deal_flows"] = {}
    return {"pipedrive": pipedrive}


@pytest.fixture(scope="module")
def pipedrive_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    folder = tmp_path_factory.mktemp("report")
    env = make_env(
        folder, _pipedrive_dataset(), f"sqlite:///{folder}/store.db", systems=("pipedrive",)
    )
    try:
        yield env
    finally:
        env.sandbox.stop()


@pytest.fixture
def pipedrive_config(pipedrive_env: SandboxEnv) -> Path:
    return pipedrive_env.config


def _report(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_crmsync("report", "--config", str(config), "--format", "json", *args)


def _report_json(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = _report(config, *args)
    assert done.returncode in (0, 3), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_pipedrive_sales_cycle_ends_at_the_won_time_not_at_the_last_stage_change(
    pipedrive_config: Path,
) -> None:
    _, report = _report_json(pipedrive_config, "--refresh")
    cycle = report["systems"]["pipedrive"]["funnels"]["default"]["sales_cycle"]
    assert (cycle["deals"], cycle["median_days"], cycle["p90_days"]) == (2, "40.0", "60.0")


def test_since_is_a_day_of_the_configured_report_timezone(pipedrive_env: SandboxEnv) -> None:
    """Deal 2 was last updated 2024-02-21 00:00 UTC, 19:00 on the 20th in New York; deal 1 on
    2024-03-01 (both zones: 19:00 on 02-29 in New York is still after the 21st)."""
    _, in_utc = _report_json(pipedrive_env.config, "--refresh", "--since", "2024-02-21")
    assert (in_utc["timezone"], in_utc["systems"]["pipedrive"]["deals"]) == ("UTC", 2)
    document = yaml.safe_load(pipedrive_env.config.read_text())
    document.setdefault("report", {})["timezone"] = "America/New_York"
    new_york = pipedrive_env.config.with_name("crmsync-new-york.yaml")
    new_york.write_text(yaml.safe_dump(document))
    _, there = _report_json(new_york, "--since", "2024-02-21")
    assert (there["timezone"], there["systems"]["pipedrive"]["deals"]) == ("America/New_York", 1)


def test_a_refreshed_report_counts_its_own_pull_as_the_last_sync(pipedrive_config: Path) -> None:
    _, report = _report_json(pipedrive_config, "--refresh")
    [sync] = report["cross_system"]["sync"]
    assert sync["instance"] == "pipedrive"
    assert sync["last_success"] is not None and sync["api_calls"] > 0


def test_a_refresh_whose_pull_fails_is_a_failed_run_not_a_report_of_old_data(
    pipedrive_env: SandboxEnv,
) -> None:
    pipedrive_env.faults(daily_limit=0)
    try:
        done = _report(pipedrive_env.config, "--refresh")
    finally:
        pipedrive_env.faults()
    assert done.returncode == 1, done.stdout
    assert done.stdout == "" and "pipedrive" in done.stderr


def test_many_plain_reports_do_not_push_the_last_sync_and_its_errors_out_of_the_report(
    pipedrive_env: SandboxEnv,
) -> None:
    synced = run_crmsync("reconcile", "--dry-run", "--config", str(pipedrive_env.config))
    assert synced.returncode in (0, 3), synced.stderr  # the nightly sync
    seconds = itertools.count(1)
    with open_runtime(str(pipedrive_env.config), connect=False) as rt:
        url = rt.config.store_url
    # A dashboard running `crmsync report` (no --refresh) every few minutes since that sync.
    store = Store.open(url, clock=lambda: datetime.now(UTC) + timedelta(seconds=next(seconds)))
    try:
        for _ in range(200):
            store.runs.finish(store.runs.start("report", "report", "x"), "ok", calls={})
    finally:
        store.close()
    _, report = _report_json(pipedrive_env.config)
    [sync] = report["cross_system"]["sync"]
    assert sync["last_success"] is not None and sync["api_calls"] > 0
    [error] = report["data_quality"]["mapping_errors"]  # recorded by that reconcile
    assert (error["id"], error["field"]) == ("3", "close_date")  # the canonical key
    assert error["reason"].startswith("expected_close_date: ")  # and pipedrive's own field
