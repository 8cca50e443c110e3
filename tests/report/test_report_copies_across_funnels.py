"""`crmsync report` against the HubSpot and Pipedrive emulators (HubSpot first in config
order) where a matched deal's copies follow different funnels: HubSpot's Sales Pipeline
(funnel `default`) and Pipedrive's Renewals pipeline (`2`, funnel `renewal`, as
`renewals_on_their_own_funnel` sets them up), as a Salesforce without a Renewal record type
holds renewals. The copy in the default funnel says nothing of the product line: the deal
counts in the renewal funnel, with its renewal copy's stage.

The generator's five deals per CRM (seed 7), with these changes, after one `reconcile`
(stage policy `newest`, as the sandbox config has it):
- "Monarch Ltd — Support Renewal 2025": in both Renewals pipelines, renewed, USD 54300.
- "Ironclad LLC — Platform Migration 2026": HubSpot Sales Pipeline, Presentation Scheduled
  (proposal), updated last; Pipedrive moved to Renewals, Quote Sent (quoted); USD 33380.02.
- "Sterling Cooper SA — Onboarding Package 2026": won in HubSpot's Sales Pipeline (updated
  last) and in Pipedrive's Renewals; USD 2000 in both.
- Gekko and Adventure Works: open in both Sales pipelines (default funnel).

By hand: funnel renewal holds Monarch, Ironclad and Sterling (3 deals: 1 open in quoted,
USD 33380.02; 2 won, USD 54300 and 2000: average and median won size 28150.00); funnel
default holds Gekko and Adventure Works (2 deals, both open). Before, the HubSpot copies of
Ironclad and Sterling (newest) counted, in the default funnel: renewal 1 deal, default 4.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from connectors.sandbox.generator import generate
from tests.integration.product_lines import renewals_on_their_own_funnel
from tests.sandbox_env import SandboxEnv, hubspot_and_pipedrive, run_crmsync

IRONCLAD = "Ironclad LLC — Platform Migration 2026"
STERLING = "Sterling Cooper SA — Onboarding Package 2026"


def _dataset() -> dict[str, Any]:
    dataset = generate(4, 7)[0]
    hubspot = {d["properties"]["dealname"]: d for d in dataset["hubspot"]["deals"]}
    pipedrive = {d["title"]: d for d in dataset["pipedrive"]["deals"]}
    pipedrive[IRONCLAD].update(pipeline_id=2, stage_id=8, stage_order_nr=3)
    won = "2025-12-28T09:00:00.000Z"
    hubspot[STERLING]["properties"].update(
        dealstage="closedwon", hs_is_closed="true", hs_is_closed_won="true", amount="2000",
        hs_deal_stage_probability="1.0", closedate=won, hs_lastmodifieddate=won,
        hs_date_entered_closedwon=won,
    )  # fmt: skip
    hubspot[STERLING]["updatedAt"] = won
    pd_won = "2025-12-20 09:00:00"
    pipedrive[STERLING].update(
        pipeline_id=2, stage_id=9, stage_order_nr=4, status="won", value=2000.0, probability=100,
        won_time=pd_won, first_won_time=pd_won, close_time=pd_won, update_time=pd_won,
        stage_change_time=pd_won, active=False,
    )  # fmt: skip
    return {"hubspot": dataset["hubspot"], "pipedrive": dataset["pipedrive"]}


@contextmanager
def _reconciled(folder: Path) -> Iterator[SandboxEnv]:
    with hubspot_and_pipedrive(folder, _dataset()) as sandbox_env:
        renewals_on_their_own_funnel(sandbox_env)
        done = run_crmsync("reconcile", "--config", str(sandbox_env.config), "--yes")
        assert done.returncode == 0, done.stderr
        yield sandbox_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    with _reconciled(tmp_path_factory.mktemp("funnels")) as sandbox_env:
        yield sandbox_env


def _run(env: SandboxEnv, fmt: str) -> subprocess.CompletedProcess[str]:
    done = run_crmsync("report", "--config", str(env.config), "--format", fmt)
    assert done.returncode in (0, 3), done.stderr  # 3: the sample breaches stale_share
    return done


def _report(env: SandboxEnv) -> dict[str, Any]:
    return dict(json.loads(_run(env, "json").stdout))


def test_a_deal_whose_copies_follow_the_default_and_a_named_funnel_counts_in_the_named_one(
    env: SandboxEnv,
) -> None:
    report = _report(env)
    funnels = report["funnels"]
    renewal, default = funnels["renewal"], funnels["default"]
    assert [renewal[k] for k in ("deals", "open", "won", "lost")] == [3, 1, 2, 0]
    assert [default[k] for k in ("deals", "open", "won", "lost")] == [2, 2, 0, 0]
    assert renewal["won_size"] == [
        {"currency": "USD", "count": 2, "average": "28150.00", "median": "28150.00"}
    ]
    quoted = {s["key"]: s for s in renewal["stages"]}["quoted"]
    assert (quoted["count"], quoted["amount"]) == (1, {"USD": "33380.02"})
    assert report["consolidated"]["deals"] == 5  # each matched deal still counts once


def test_the_report_says_how_many_deals_span_funnels_where_they_counted_and_the_fix(
    env: SandboxEnv,
) -> None:
    across = _report(env)["consolidated"]["copies_counted"]["across_funnels"]
    assert {k: across[k] for k in ("deals", "counted_in", "by_stage_policy")} == {
        "deals": 2,
        "counted_in": {"renewal": 2},
        "by_stage_policy": 0,
    }
    assert "pipeline_funnels" in across["fix"]
    assert "push.move_between_pipelines" in across["fix"]
    table = _run(env, "table").stdout
    assert "copies in different funnels" in table
    assert "2 matched deals" in table and "renewal: 2" in table
    page = _run(env, "html").stdout
    assert "copies in different funnels" in page and "renewal: 2" in page


def test_a_stage_mismatch_between_copies_in_different_funnels_names_both_funnels(
    env: SandboxEnv,
) -> None:
    report = _report(env)
    rows = [m for m in report["cross_system"]["mismatches"] if m["field"] == "stage"]
    assert rows, report["cross_system"]
    for row in rows:
        assert "different funnels" in row["reason"], row
        assert "hubspot: default" in row["reason"] and "pipedrive: renewal" in row["reason"], row
    # still mismatches: the CRMs file the deal under different product lines
    assert report["cross_system"]["mismatches_by_field"]["stage"] == 2
    exported = list(csv.DictReader(io.StringIO(_run(env, "csv").stdout)))
    stage_rows = [r for r in exported if r["field"] == "stage"]
    assert stage_rows and all("different funnels" in r["reason"] for r in stage_rows)


def test_an_edit_of_the_default_funnels_copy_leaves_the_deal_in_the_named_funnel(
    tmp_path: Path,
) -> None:
    # A rep moves HubSpot's Sales Pipeline copy of Ironclad to Contract Sent (negotiation),
    # through the API: the deal is still a renewal, in Pipedrive's stage.
    with _reconciled(tmp_path) as fresh:
        hubspot = yaml.safe_load(fresh.config.read_text())["systems"]["hubspot"]
        deal = next(
            d
            for d in fresh.sandbox.servers["hubspot"].emulator.dump()["deals"]
            if d["properties"]["dealname"] == IRONCLAD
        )
        response = requests.patch(
            f"{hubspot['base_url']}/crm/v3/objects/deals/{deal['id']}",
            json={"properties": {"dealstage": "contractsent"}},
            headers={"Authorization": f"Bearer {hubspot['credentials']['access_token']}"},
            timeout=10,
        )
        response.raise_for_status()
        done = run_crmsync("report", "--config", str(fresh.config), "--format", "json", "--refresh")
        assert done.returncode in (0, 3), done.stderr
        funnels = json.loads(done.stdout)["funnels"]
    assert (funnels["renewal"]["deals"], funnels["default"]["deals"]) == (3, 2)
    quoted = {s["key"]: s for s in funnels["renewal"]["stages"]}["quoted"]
    negotiation = {s["key"]: s for s in funnels["default"]["stages"]}["negotiation"]
    assert (quoted["count"], negotiation["count"]) == (1, 1)  # Gekko alone in negotiation


UPSELL = [
    {"key": "pitch", "phase": "awareness", "probability": 0.2},
    {"key": "offer", "phase": "decision", "probability": 0.6},
    {"key": "signed", "phase": "action", "probability": 1, "closed": True, "won": True},
    {"key": "dropped", "phase": "action", "probability": 0, "closed": True},
]


def test_copies_in_several_named_funnels_are_placed_by_the_stage_policy(tmp_path: Path) -> None:
    # Pipedrive's pipeline 2 follows funnel `upsell` instead: Monarch's copies are in two named
    # funnels (HubSpot renewal, Pipedrive upsell), and HubSpot, the stage's source of truth,
    # places it in renewal. Ironclad and Sterling count in upsell all the same: their HubSpot
    # copies, in the default funnel, say nothing of the product line.
    with hubspot_and_pipedrive(tmp_path, _dataset()) as fresh:
        renewals_on_their_own_funnel(fresh)
        document = yaml.safe_load(fresh.config.read_text())
        document["funnels"]["upsell"] = {"stages": UPSELL}
        pipedrive = document["systems"]["pipedrive"]
        pipedrive["pipeline_funnels"] = {"2": "upsell"}
        pipedrive["stage_map"]["2"] = {"6": "pitch", "7": "pitch", "8": "offer", "9": "offer"}
        del pipedrive["stage_write"]["2"]
        document["policies"]["fields"]["stage"] = {"source_of_truth": "hubspot"}
        fresh.config.write_text(yaml.safe_dump(document, sort_keys=False))
        done = run_crmsync("report", "--config", str(fresh.config), "--format", "json", "--refresh")
        assert done.returncode in (0, 3), done.stderr
        report = json.loads(done.stdout)
    across = report["consolidated"]["copies_counted"]["across_funnels"]
    assert {k: across[k] for k in ("deals", "counted_in", "by_stage_policy")} == {
        "deals": 3,
        "counted_in": {"renewal": 1, "upsell": 2},
        "by_stage_policy": 1,
    }
    funnels = report["funnels"]
    assert [funnels[f]["deals"] for f in ("default", "renewal", "upsell")] == [2, 1, 2]


# --- report --funnel / --system / --since / --until: the filters, in this same world ---------


def _filtered(env: SandboxEnv, *args: str, fmt: str = "json") -> subprocess.CompletedProcess[str]:
    done = run_crmsync("report", "--config", str(env.config), "--format", fmt, *args)
    assert done.returncode in (0, 3), done.stderr
    return done


def test_funnel_filter_shows_only_that_funnels_sections_and_its_deals_consolidated(
    env: SandboxEnv,
) -> None:
    report = json.loads(_filtered(env, "--funnel", "renewal").stdout)

    assert list(report["funnels"]) == ["renewal"]
    assert report["funnels"]["renewal"]["deals"] == 3
    assert report["consolidated"]["deals"] == 3  # Monarch, Ironclad, Sterling: no default deal
    for system in report["systems"].values():
        assert set(system["funnels"]) <= {"renewal"}
    assert report["filters"] == {
        "funnels": ["renewal"], "systems": [], "since": None, "until": None,
    }  # fmt: skip
    default = json.loads(_filtered(env, "--funnel", "default").stdout)
    assert list(default["funnels"]) == ["default"]
    assert default["consolidated"]["deals"] == 2  # Gekko and Adventure Works


def test_system_filter_counts_only_the_named_instances_copies_of_matched_deals(
    env: SandboxEnv,
) -> None:
    report = json.loads(_filtered(env, "--system", "hubspot").stdout)

    assert list(report["systems"]) == ["hubspot"]
    # HubSpot files Ironclad and Sterling under its Sales Pipeline: with Pipedrive's copies
    # left out, they count there, as HubSpot shows them
    funnels = {name: f["deals"] for name, f in report["funnels"].items()}
    assert funnels == {"default": 4, "renewal": 1}
    assert report["cross_system"]["entities"] == 0
    assert [s["instance"] for s in report["cross_system"]["sync"]] == ["hubspot"]
    assert report["filters"]["systems"] == ["hubspot"]


def test_unknown_funnel_or_system_is_a_usage_error_naming_the_configured_ones(
    env: SandboxEnv,
) -> None:
    funnel = run_crmsync("report", "--config", str(env.config), "--funnel", "renewl")
    assert funnel.returncode == 2, funnel.stderr
    assert "did you mean 'renewal'" in funnel.stderr
    assert "default, renewal" in funnel.stderr
    system = run_crmsync("report", "--config", str(env.config), "--system", "salesforce")
    assert system.returncode == 2, system.stderr
    assert "hubspot, pipedrive" in system.stderr


def test_since_after_until_is_a_usage_error(env: SandboxEnv) -> None:
    done = run_crmsync(
        "report", "--config", str(env.config), "--since", "2025-06-02", "--until", "2025-06-01"
    )
    assert done.returncode == 2, done.stderr
    assert "--since 2025-06-02 is after --until 2025-06-01" in done.stderr


def test_since_after_today_warns_once_and_still_exits_as_an_empty_report(
    env: SandboxEnv,
) -> None:
    later = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    done = _filtered(env, "--since", later)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("after today") == 1, done.stderr
    assert json.loads(done.stdout)["consolidated"]["deals"] == 0


def test_the_table_and_the_page_name_the_filters_in_their_title_line(env: SandboxEnv) -> None:
    args = ("--funnel", "renewal", "--system", "pipedrive", "--until", "2030-01-01")
    title = "crmsync pipeline health — funnels renewal; systems pipedrive; "
    title += "created or updated up to 2030-01-01"
    table = _filtered(env, *args, fmt="table").stdout
    assert table.splitlines()[0].strip() == title
    page = _filtered(env, *args, fmt="html").stdout
    assert f"<h1>{title}</h1>" in page
    unfiltered = _run(env, "table").stdout
    assert "crmsync pipeline health" not in unfiltered.splitlines()[0]
