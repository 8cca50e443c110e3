"""Renewals left in a Pipedrive pipeline since marked deleted (`GET /api/v2/pipelines` lists it
with `is_deleted: true`): through the real CLI, `init` proposes that pipeline's stage map as for any
other, and a pull then reads its deals in their renewal stages rather than in unmapped ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connectors.sandbox.generator import generate_full
from connectors.sandbox.launcher import start_sandbox
from sync.sandbox_config import write_sandbox_config
from tests.integration.conftest import World
from tests.integration.product_lines import RENEWAL, renewals_on_their_own_funnel
from tests.sandbox_env import run_crmsync

DELETED = "2"  # the generated Renewals pipeline


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    generated = generate_full(60, 3)
    for pipeline in generated.dataset["pipedrive"]["pipelines"]:
        if str(pipeline["id"]) == DELETED:
            pipeline["active"] = False
    with start_sandbox(generated.dataset, workdir=tmp_path) as sandbox:
        config = tmp_path / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)
        store = f"sqlite:///{tmp_path / 'crmsync.db'}"
        config.write_text(f"allow_absolute_paths: true\nstore: {store}\n" + config.read_text())
        made = World(generated, sandbox, config)
        renewals_on_their_own_funnel(made)
        yield made


def test_renewals_in_a_deleted_pipedrive_pipeline_are_mapped_not_unmapped(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    del document["systems"]["pipedrive"]["stage_map"][DELETED]  # left for init to propose
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    done = run_crmsync("init", "--config", str(world.config))

    assert done.returncode == 0, done.stderr
    proposed = yaml.safe_load(world.config.read_text())["systems"]["pipedrive"]["stage_map"]
    stages = {str(s["id"]) for s in world.generated.dataset["pipedrive"]["stages"]}
    own = {s for s in stages if s in {"6", "7", "8", "9"}}
    assert set(proposed.get(DELETED) or {}) == own, proposed

    pulled = run_crmsync("pull", "--config", str(world.config), "--system", "pipedrive")
    lines = run_crmsync(
        "pull", "--config", str(world.config), "--system", "pipedrive", "--format", "jsonl"
    )

    assert pulled.returncode == 0, pulled.stderr
    assert "unmapped" not in pulled.stderr, pulled.stderr
    deals = [json.loads(line) for line in lines.stdout.splitlines()]
    held = [d for d in deals if d["pipeline"] == DELETED]
    renewal_stages = {s["key"] for s in RENEWAL}
    assert held and all(d["stage"] in renewal_stages for d in held), held[:3]
    assert {d["funnel"] for d in held} == {"renewal"}
    runs = json.loads(run_crmsync("runs", "--config", str(world.config), "--format", "json").stdout)
    counts = [r["counts"]["pipedrive"] for r in runs if "pipedrive" in (r.get("counts") or {})]
    assert counts and all(c["unmapped_deals"] == 0 for c in counts), counts
