"""Ops review a migration's plan before the copies are made: each create names where the copy
lands in its CRM (pipeline and native stage, as `crmsync init` maps them; a Pipedrive renewal
may land in HubSpot's Sales Pipeline when both pipelines share a funnel) and its owner. The plan
said only the funnel stage, and the table not even the owner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import World
from tests.sandbox_env import run_crmsync


def _landed(world: World, system: str, deal_id: str) -> tuple[str, str | None]:
    """(pipeline, native stage) of a deal in its CRM, as the plan names them."""
    em: Any = world.sandbox.servers[system].emulator
    with em.lock:
        if system == "salesforce":
            return "default", em.store.by_id[deal_id]["StageName"]
        if system == "hubspot":
            properties = em.store.live[deal_id]["properties"]
            return properties["pipeline"], properties["dealstage"]
        deal = em.store.deals[int(deal_id)]
        return str(deal["pipeline_id"]), str(deal["stage_id"])


def test_each_create_of_the_plan_names_the_pipeline_stage_and_owner_its_copy_gets(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, saved = small_world, tmp_path / "plan.json"
    monkeypatch.setenv("COLUMNS", "250")  # no email folded over two lines of its cell
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    config = ("--config", str(world.config))
    table = run_crmsync("reconcile", *config, "--dry-run", "--plan-out", str(saved))
    assert table.returncode == 0, table.stderr
    creates = json.loads(saved.read_text())["creates"]
    per_system = json.loads(saved.read_text())["summary"]["creates_by_system"]
    said = ", ".join(f"{system} {count}" for system, count in sorted(per_system.items()))
    assert f"copies to create: {said}" in table.stdout  # how many where, before the rows
    assert {c["system"] for c in creates} == {"salesforce", "hubspot", "pipedrive"}
    for create in creates:
        target = create["target"]
        assert target["pipeline"] and "native_stage" in target, create
        owner = create["values"]["owner_email"]
        if owner:
            assert f"owner {owner}" in " ".join(table.stdout.split()), owner
        if target["native_stage"]:
            label = target["native_stage_label"]
            pipeline = target["pipeline_label"]  # as the CRM shows it; the id stays in pipeline
            assert pipeline and f"{pipeline} / {label}" in " ".join(table.stdout.split())

    applied = run_crmsync("apply", str(saved), *config, "--yes")
    assert applied.returncode in (0, 1), applied.stderr  # owners some CRMs lack are refused
    members = world.members()
    landed = 0
    for create in creates:
        copy = members.get(create["entity"], {}).get(create["system"])
        if copy is None:
            continue
        landed += 1
        pipeline, stage = _landed(world, create["system"], copy)
        assert pipeline == create["target"]["pipeline"], create
        if create["target"]["native_stage"] is not None:
            assert stage == create["target"]["native_stage"], create
    assert landed
