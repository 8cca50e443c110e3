"""Ops read `reconcile --dry-run` before a migration: a stage change names the native stage (and
pipeline) its target CRM will be written in, chosen as apply chooses it (the stage map and
`stage_write`), not only the canonical funnel stage. Creates named theirs already; a change
said `qualified -> proposal`, which in Pipedrive's default pipeline is either "Demo Scheduled"
or "Proposal Made"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, set_stage, stages
from tests.plans import signed
from tests.sandbox_env import run_crmsync

QUALIFIED = {"salesforce": "Needs Analysis", "hubspot": "qualifiedtobuy", "pipedrive": "2"}
PROPOSAL_MADE = "4"  # over "Demo Scheduled" (3), the first proposal stage in pipeline order


def _synced_in_qualified(world: World) -> dict[str, str]:
    """A deal all three CRMs hold, in `qualified` everywhere and agreed on; its ids."""
    document = yaml.safe_load(world.config.read_text())
    document["systems"]["pipedrive"]["stage_write"] = {"1": {"proposal": PROPOSAL_MADE}}
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    cli_json(world, "reconcile", "--yes")  # the first sync: bases are stored
    ids: dict[str, str] = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        set_stage(world, system, ids[system], stage)
    cli_json(world, "reconcile", "--yes")  # all three moved alike: agreed, nothing to write
    return ids


def _dry_run(world: World, saved: Path) -> tuple[dict[str, Any], str]:
    """The plan saved by a dry run, and its table (wide enough for whole cells)."""
    config = ("--config", str(world.config))
    table = run_crmsync("reconcile", *config, "--dry-run", "--plan-out", str(saved))
    assert table.returncode == 0, table.stderr
    return json.loads(saved.read_text()), table.stdout


def _shown_under(table: str, change: dict[str, Any]) -> str:
    """The line of the table under the change's row (in its system and field's section): the
    rest of its cells."""
    lines = table.splitlines()
    section = next(i for i, line in enumerate(lines) if f"{change['system']}: stage (" in line)
    row = next(i for i in range(section, len(lines)) if f" {change['id']} " in lines[i])
    assert f" {change['to']} " in lines[row], lines[row]
    return lines[row + 1]


def _of(plan: dict[str, Any], ids: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["system"], c["field"]): c for c in plan["changes"] if c["id"] in ids.values()}


def test_a_stage_change_shows_the_pipedrive_stage_it_will_be_written_in(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, saved = small_world, tmp_path / "plan.json"
    monkeypatch.setenv("COLUMNS", "300")
    ids = _synced_in_qualified(world)
    set_stage(world, "hubspot", ids["hubspot"], "presentationscheduled")  # proposal

    plan, table = _dry_run(world, saved)

    changes = _of(plan, ids)
    target = changes["pipedrive", "stage"]["target"]
    assert target == {
        "pipeline": "1",
        "native_stage": PROPOSAL_MADE,
        "native_stage_label": "Proposal Made",
        "pipeline_label": "Sales",
    }
    salesforce = changes["salesforce", "stage"]["target"]
    assert salesforce["pipeline"] == "default" and salesforce["native_stage"], salesforce
    for change in (changes["pipedrive", "stage"], changes["salesforce", "stage"]):
        where = f"{change['target']['pipeline_label']} / {change['target']['native_stage_label']}"
        assert where in _shown_under(table, change), table

    applied = run_crmsync("apply", str(saved), "--config", str(world.config), "--yes")
    assert applied.returncode in (0, 1), applied.stderr
    landed = stages(world, ids)  # each where the plan said
    assert landed["pipedrive"] == ("1", PROPOSAL_MADE)
    assert landed["salesforce"] == ("default", salesforce["native_stage"])


def test_a_won_deal_shows_the_closed_stage_salesforce_and_hubspot_write_its_status_in(
    small_world: World, tmp_path: Path
) -> None:
    """Salesforce and HubSpot write a won status as a stage: both the stage and the status
    change name it. Pipedrive files a won deal by its status and keeps its stage: its stage
    change names the pipeline and no native stage (as a create does), its status change none."""
    world, saved = small_world, tmp_path / "plan.json"
    ids = _synced_in_qualified(world)
    set_stage(world, "hubspot", ids["hubspot"], "closedwon")

    plan, _ = _dry_run(world, saved)

    changes = _of(plan, ids)
    assert changes["salesforce", "stage"]["target"] == {
        "pipeline": "default",
        "native_stage": "Closed Won",
        "native_stage_label": "Closed Won",
        "pipeline_label": "Opportunities",
    }
    assert changes["salesforce", "status"]["target"] == changes["salesforce", "stage"]["target"]
    assert changes["pipedrive", "stage"]["target"] == {
        "pipeline": "1",
        "native_stage": None,
        "native_stage_label": None,
        "pipeline_label": "Sales",
    }
    assert "target" not in changes["pipedrive", "status"]


def test_a_plan_saved_before_changes_named_their_native_stage_still_applies(
    small_world: World, tmp_path: Path
) -> None:
    """Plans saved by an older crmsync have no `target` on their changes: they load and apply."""
    world, saved = small_world, tmp_path / "plan.json"
    ids = _synced_in_qualified(world)
    set_stage(world, "hubspot", ids["hubspot"], "presentationscheduled")
    plan, _ = _dry_run(world, saved)
    for change in plan["changes"]:
        change.pop("target", None)
    saved.write_text(json.dumps(signed(plan)))

    applied = run_crmsync("apply", str(saved), "--config", str(world.config), "--yes")

    assert applied.returncode in (0, 1), applied.stderr
    assert stages(world, ids)["pipedrive"] == ("1", PROPOSAL_MADE)


def test_the_table_names_each_pipeline_by_its_label_and_the_plan_keeps_its_id(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRMs' pipelines are read with their labels already (no extra call): a review reads
    "Sales / Proposal Made", not Pipedrive's pipeline id "1". The JSON keeps the id in
    `target.pipeline`, which apply and scripts use, and adds `pipeline_label`."""
    world, saved = small_world, tmp_path / "plan.json"
    monkeypatch.setenv("COLUMNS", "300")
    ids = _synced_in_qualified(world)
    set_stage(world, "hubspot", ids["hubspot"], "presentationscheduled")  # proposal

    plan, table = _dry_run(world, saved)

    change = _of(plan, ids)["pipedrive", "stage"]
    assert change["target"]["pipeline"] == "1"
    assert change["target"]["pipeline_label"] == "Sales"
    shown = _shown_under(table, change)
    assert "Sales / Proposal Made" in shown and "1 / Proposal Made" not in shown, shown
