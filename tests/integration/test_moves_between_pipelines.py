"""`push.move_between_pipelines`: a deal someone moves to another product line's pipeline (HubSpot's
Sales Pipeline to its Renewals, a stage of funnel `renewal`) takes its copies along, each to its
own CRM's pipeline of that funnel (Pipedrive's Renewals, Salesforce's record type Renewal),
through the real CLI against the sandboxes: the dry run shows each move, a saved plan's apply
makes it, the next reconcile is clean, and `rollback --apply` puts each copy back in the very
pipeline and native stage it left. Without the key nothing of this happens (the copies are
listed in `errors`, tests/integration/test_product_line_moves.py)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, set_stage, stages
from tests.integration.record_types import RECORD_TYPE, renewal_world
from tests.sandbox_env import crmsync_env, run_crmsync, warm_crmsync

# Seed 3, 60 deals: an open new-business deal in negotiation in all three CRMs (default funnel:
# Salesforce without a record type, HubSpot's and Pipedrive's sales pipelines).
NEW_BUSINESS = {"salesforce": "0065g000000000KAAQ", "hubspot": "9100000140", "pipedrive": "22"}
WHERE_BEFORE = {"salesforce": (None, "Negotiation/Review"), "pipedrive": ("1", "5")}
HUBSPOT_QUOTED = "75210933"  # Renewals pipeline, "Quote Sent": funnel renewal's `quoted`


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    for made in renewal_world(tmp_path):
        document = yaml.safe_load(made.config.read_text())
        document["push"]["move_between_pipelines"] = True
        made.config.write_text(yaml.safe_dump(document, sort_keys=False))
        yield made


def _crmsync(world: World, *args: str) -> str:
    done = run_crmsync(*args, "--config", str(world.config))
    assert done.returncode in (0, 1), done.stderr  # 1: owners the generated data cannot map
    return done.stdout


def _table(world: World, *args: str) -> str:
    """`crmsync ARGS` with table output on a terminal wide enough for a cell to keep one line."""
    done = subprocess.run(
        [*warm_crmsync(), *args, "--config", str(world.config)],
        env={**crmsync_env(), "COLUMNS": "220"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def _where(world: World) -> dict[str, tuple[str | None, str]]:
    """(record type id, StageName) of the Opportunity; (pipeline_id, stage_id) of the Pipedrive
    deal, as the CRMs hold them."""
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        record = em.store.by_id[NEW_BUSINESS["salesforce"]]
        salesforce = (record.get("RecordTypeId"), record["StageName"])
    pipedrive = stages(world, {"pipedrive": NEW_BUSINESS["pipedrive"]})["pipedrive"]
    return {"salesforce": salesforce, "pipedrive": pipedrive}


def _mine(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["system"], i["field"]): i for i in items if i["id"] in NEW_BUSINESS.values()}


def test_a_deal_moved_to_the_renewals_pipeline_takes_its_copies_along_and_back(
    world: World, tmp_path: Path
) -> None:
    cli_json(world, "reconcile", "--yes")  # the first sync: the CRMs agree, bases are stored
    assert _where(world) == WHERE_BEFORE
    set_stage(world, "hubspot", NEW_BUSINESS["hubspot"], HUBSPOT_QUOTED, "renewals")

    # The dry run shows each move, in JSON and in the table.
    plan_path = tmp_path / "plan.json"
    plan = json.loads(
        _crmsync(world, "reconcile", "--dry-run", "--format", "json", "--plan-out", str(plan_path))
    )
    changes = _mine(plan["changes"])  # the stage, and the probability HubSpot's stage gave
    assert {k for k in changes if k[1] == "stage"} == {
        ("salesforce", "stage"),
        ("pipedrive", "stage"),
    }
    assert not _mine(plan["errors"])
    pipedrive, salesforce = changes["pipedrive", "stage"], changes["salesforce", "stage"]
    assert (pipedrive["from"], pipedrive["to"]) == ("negotiation", "quoted")
    assert pipedrive["native_to"] == {"pipeline": "2", "moves": True}
    assert pipedrive["native_from"] == {"pipeline": "1"}
    assert pipedrive["target"]["pipeline"] == "2"
    assert pipedrive["target"]["native_stage"] == "8"  # the renewals' stage_write for quoted
    assert pipedrive["target"]["moved_from"]["pipeline"] == "1"
    assert "push.move_between_pipelines" in pipedrive["reason"]
    assert "funnel 'renewal'" in pipedrive["reason"]
    assert salesforce["native_to"] == {"pipeline": "Renewal", "moves": True}
    assert salesforce["native_from"] == {"pipeline": "default"}
    assert salesforce["target"]["native_stage"] == "Renewal Quoted"
    table = _table(world, "reconcile", "--dry-run")
    assert "Renewals / Quote Sent" in table and "(moved from pipeline Sales)" in table
    assert "Renewal / Renewal Quoted" in table and "(moved from pipeline Opportunities)" in table
    assert _where(world) == WHERE_BEFORE  # a dry run writes nothing

    # The saved plan's apply moves both copies.
    _crmsync(world, "apply", str(plan_path), "--yes")
    assert _where(world) == {"salesforce": (RECORD_TYPE, "Renewal Quoted"), "pipedrive": ("2", "8")}
    runs = json.loads(_crmsync(world, "runs", "--format", "json"))
    run_id = next(r["id"] for r in runs if r["kind"] == "apply")
    with open_runtime(str(world.config), connect=False) as rt:
        audited = {
            (e.instance, e.field): e
            for e in rt.store.audit.entries(run_id=run_id)
            if e.deal_id in NEW_BUSINESS.values()
        }
    before, after = audited["pipedrive", "stage"].before, audited["pipedrive", "stage"].after
    assert (before["pipeline"], before["native_stage"], before["moves_to"]) == ("1", "5", "2")
    assert (after["pipeline"], after["native_stage"]) == ("2", "8")

    # The next reconcile finds every copy in the renewals' `quoted`: nothing to do.
    again = cli_json(world, "reconcile", "--dry-run")
    assert not _mine(again["changes"]) and not _mine(again["errors"])

    # The rollback puts each copy back in the very pipeline and native stage it left.
    shown = json.loads(_crmsync(world, "rollback", run_id, "--format", "json"))
    back = _mine(shown["changes"])
    assert back["pipedrive", "stage"]["native_to"] == {
        "pipeline": "1",
        "native_stage": "5",
        "moves": True,
    }
    assert back["pipedrive", "stage"]["native_from"] == {"pipeline": "2", "native_stage": "8"}
    # where it goes back as Pipedrive shows pipeline 1 and its native stage 5
    shown_back = "negotiation (Sales / Negotiations Started, back in that pipeline)"
    assert shown_back in _table(world, "rollback", run_id)
    _crmsync(world, "rollback", run_id, "--apply", "--yes")
    assert _where(world) == WHERE_BEFORE
    assert stages(world, {"hubspot": NEW_BUSINESS["hubspot"]})["hubspot"] == (
        "renewals",
        HUBSPOT_QUOTED,
    )  # the person's move, which the run carried, stays


def test_a_crm_without_a_pipeline_of_the_stages_funnel_keeps_the_copy_and_names_the_key(
    world: World,
) -> None:
    document = yaml.safe_load(world.config.read_text())
    salesforce = document["systems"]["salesforce"]
    salesforce["pipeline_funnels"] = {"default": "default"}  # no Renewal pipeline any more
    del salesforce["stage_map"]["Renewal"]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    cli_json(world, "reconcile", "--yes")
    set_stage(world, "hubspot", NEW_BUSINESS["hubspot"], HUBSPOT_QUOTED, "renewals")

    plan = cli_json(world, "reconcile", "--yes")

    assert {k for k in _mine(plan["changes"]) if k[1] == "stage"} == {("pipedrive", "stage")}
    refused = _mine(plan["errors"])["salesforce", "stage"]["reason"]
    assert "no pipeline of salesforce follows funnel 'renewal'" in refused
    assert "systems.salesforce.pipeline_funnels" in refused
    assert "push.move_between_pipelines" in refused
    assert _where(world) == {"salesforce": WHERE_BEFORE["salesforce"], "pipedrive": ("2", "8")}


def test_a_pipedrive_deal_moved_back_to_sales_moves_the_hubspot_copy_back_too(
    world: World,
) -> None:
    # In the three CRMs' renewals pipelines (Salesforce's record type Renewal), at renewal_due.
    renewal = {"salesforce": "0065g000000000VAAQ", "hubspot": "9100000231", "pipedrive": "38"}
    cli_json(world, "reconcile", "--yes")
    set_stage(world, "pipedrive", renewal["pipedrive"], "3", "1")  # Sales, "Demo Scheduled"

    plan = cli_json(world, "reconcile", "--yes")

    moved = {
        c["system"]: (c["from"], c["to"], c["native_to"])
        for c in plan["changes"]
        if c["id"] in renewal.values() and c["field"] == "stage"
    }
    assert moved == {
        "salesforce": ("renewal_due", "proposal", {"pipeline": "default", "moves": True}),
        "hubspot": ("renewal_due", "proposal", {"pipeline": "default", "moves": True}),
    }, plan["errors"]
    assert stages(world, {"hubspot": renewal["hubspot"]})["hubspot"][0] == "default"
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        assert em.store.by_id[renewal["salesforce"]].get("RecordTypeId") is None
    # (HubSpot gave its copy the new stage's probability: the next run carries it, as after any
    # stage crmsync writes there; README "What crmsync guarantees under faults".)
    again = cli_json(world, "reconcile", "--dry-run")
    left = [c for c in again["changes"] + again["errors"] if c["id"] in renewal.values()]
    assert {c["field"] for c in left} <= {"probability"}, left


def test_rollback_leaves_a_copy_someone_moved_again_since_and_reports_it_drifted(
    world: World,
) -> None:
    cli_json(world, "reconcile", "--yes")
    set_stage(world, "hubspot", NEW_BUSINESS["hubspot"], HUBSPOT_QUOTED, "renewals")
    run_id = cli_json(world, "reconcile", "--yes")["run_id"]
    assert _where(world)["pipedrive"] == ("2", "8")
    # A person moves the Pipedrive copy on, within its new pipeline ("Verbal Commit").
    set_stage(world, "pipedrive", NEW_BUSINESS["pipedrive"], "9", "2")

    result = cli_json(world, "rollback", run_id, "--apply", "--yes")

    assert _where(world) == {"salesforce": WHERE_BEFORE["salesforce"], "pipedrive": ("2", "9")}
    [drifted] = [
        r
        for r in result["results"]
        if r["id"] == NEW_BUSINESS["pipedrive"] and r["field"] == "stage"
    ]
    assert drifted["outcome"] == "drifted", drifted


def test_copies_left_out_before_the_key_was_set_move_on_the_next_run(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"]["move_between_pipelines"] = False
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    cli_json(world, "reconcile", "--yes")
    set_stage(world, "hubspot", NEW_BUSINESS["hubspot"], HUBSPOT_QUOTED, "renewals")
    left_out = cli_json(world, "reconcile", "--yes")
    assert {k for k in _mine(left_out["errors"]) if k[1] == "stage"} == {
        ("salesforce", "stage"),
        ("pipedrive", "stage"),
    }
    assert _where(world) == WHERE_BEFORE

    document["push"]["move_between_pipelines"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    moved = cli_json(world, "reconcile", "--yes")

    assert {k for k in _mine(moved["changes"]) if k[1] == "stage"} == {
        ("salesforce", "stage"),
        ("pipedrive", "stage"),
    }
    assert _where(world) == {"salesforce": (RECORD_TYPE, "Renewal Quoted"), "pipedrive": ("2", "8")}


def test_check_says_where_each_crms_copies_move_and_warns_of_a_funnel_without_a_pipeline(
    world: World,
) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["systems"]["salesforce"]["pipeline_funnels"] = {"default": "default"}
    del document["systems"]["salesforce"]["stage_map"]["Renewal"]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    done = run_crmsync("check", "--config", str(world.config))
    lines = done.stdout.splitlines()

    assert (
        "ok: pipedrive: push.move_between_pipelines moves copies here to: funnel default -> "
        "pipeline 1, funnel renewal -> pipeline 2" in lines
    ), done.stdout
    [warning] = [line for line in lines if line.startswith("warning: salesforce:")]
    assert "no pipeline of salesforce follows funnel 'renewal'" in warning
    assert "(systems.salesforce.pipeline_funnels)" in warning
