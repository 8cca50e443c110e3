"""`crmsync report` against the HubSpot and Pipedrive emulators (HubSpot first in config
order): which copy of a matched deal counts, where its copies disagree and a policy cannot
decide, and with `--since`.

The generator's five deals per CRM (seed 7), with these changes (days before today):
- "Ironclad LLC — Platform Migration 2026": won in HubSpot 200 days ago (USD 33380.02, closed
  then); reopened in Pipedrive since, updated 20 days ago, USD 30000 at 50 % expected to close
  in 45 days. The stage policy (`newest`) counts Pipedrive's open copy.
- "Gekko LLC — Enterprise License 2026": lost in Pipedrive 100 days ago; still open in HubSpot,
  where it was edited 10 days ago.
The other three deals were last updated before 2026; their close dates have passed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from tests.sandbox_env import SandboxEnv, hubspot_and_pipedrive, run_crmsync

IRONCLAD = "Ironclad LLC — Platform Migration 2026"
GEKKO = "Gekko LLC — Enterprise License 2026"
TODAY = datetime.now(UTC).date()


def _day(days: int) -> date:
    return TODAY + timedelta(days=days)


def _hubspot_stamp(days: int) -> str:
    return f"{_day(days).isoformat()}T09:00:00.000Z"


def _pipedrive_stamp(days: int) -> str:
    return f"{_day(days).isoformat()} 09:00:00"


def _dataset() -> dict[str, Any]:
    dataset = generate(4, 7)[0]
    hubspot, pipedrive = dataset["hubspot"], dataset["pipedrive"]
    [hs_ironclad] = [d for d in hubspot["deals"] if d["properties"]["dealname"] == IRONCLAD]
    won = _hubspot_stamp(-200)
    hs_ironclad["properties"].update(
        dealstage="closedwon", hs_is_closed="true", hs_is_closed_won="true",
        hs_deal_stage_probability="1.0", closedate=won, hs_lastmodifieddate=won,
        hs_date_entered_closedwon=won,
    )  # fmt: skip
    hs_ironclad["updatedAt"] = won
    [pd_ironclad] = [d for d in pipedrive["deals"] if d["title"] == IRONCLAD]
    pd_ironclad.update(
        stage_id=3, stage_order_nr=3, value=30000, probability=50,
        expected_close_date=_day(45).isoformat(), update_time=_pipedrive_stamp(-20),
        stage_change_time=_pipedrive_stamp(-20),
    )  # fmt: skip
    [hs_gekko] = [d for d in hubspot["deals"] if d["properties"]["dealname"] == GEKKO]
    hs_gekko["properties"]["hs_lastmodifieddate"] = hs_gekko["updatedAt"] = _hubspot_stamp(-10)
    [pd_gekko] = [d for d in pipedrive["deals"] if d["title"] == GEKKO]
    lost = _pipedrive_stamp(-100)
    pd_gekko.update(status="lost", lost_time=lost, close_time=lost, update_time=lost)
    return {"hubspot": hubspot, "pipedrive": pipedrive}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    with hubspot_and_pipedrive(tmp_path_factory.mktemp("follow-stage"), _dataset()) as sandbox_env:
        done = _run(sandbox_env.config, "--refresh")
        assert done.returncode in (0, 3), done.stderr
        yield sandbox_env


def _with_policies(env: SandboxEnv, name: str, fields: dict[str, Any]) -> Path:
    document = yaml.safe_load(env.config.read_text())
    document.setdefault("policies", {}).setdefault("fields", {}).update(fields)
    config = env.config.with_name(f"crmsync-{name}.yaml")
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_crmsync("report", "--config", str(config), "--format", "json", *args)


def _report(config: Path, *args: str) -> dict[str, Any]:
    done = _run(config, *args)
    assert done.returncode in (0, 3), done.stderr
    return dict(json.loads(done.stdout))


def _choice(report: dict[str, Any], field: str) -> dict[str, Any]:
    [found] = [f for f in report["consolidated"]["copies_counted"]["fields"] if f["field"] == field]
    return dict(found)


def test_an_undecided_close_date_and_amount_come_with_the_stage_of_a_reopened_deal(
    env: SandboxEnv,
) -> None:
    # amount and close date in conflict: Ironclad counts with Pipedrive's open stage, so with its
    # expected close date and amount, not with the date and amount HubSpot won it at.
    config = _with_policies(env, "undecided", {"amount": "conflict", "close_date": "conflict"})
    report = _report(config)
    month = _day(45).strftime("%Y-%m")
    forecast = report["consolidated"]["forecast"]["months"]
    assert [(m["month"], m["currency"], m["deals"], m["weighted"]) for m in forecast] == [
        (month, "USD", 1, "15000.00")
    ]
    [figures] = report["funnels"].values()
    assert IRONCLAD not in [d["name"] for d in figures["past_due"]["deals"]]
    # Ironclad (30000) and the two other open USD deals, HubSpot's amount first in config order
    assert report["consolidated"]["open_amount"]["USD"] == str(30000 + Decimal("1950.73") + 14375)
    assert _choice(report, "close_date")["with_stage"] == 1
    assert _choice(report, "amount")["with_stage"] == 1


def test_a_deal_in_the_since_window_counts_as_its_copies_outside_it_decide(
    env: SandboxEnv,
) -> None:
    # Pipedrive is the stage's source of truth: Gekko is lost there, though its HubSpot
    # copy (the only one edited in the window) is still open.
    config = _with_policies(env, "pd-stage", {"stage": {"source_of_truth": "pipedrive"}})
    window = _report(config, "--since", _day(-30).isoformat())
    counts = ("deals", "copies_merged", "open", "won", "lost")
    assert [window["consolidated"][k] for k in counts] == [2, 2, 1, 0, 1]
    assert _report(config)["consolidated"]["lost"] == 1  # as without the window
