"""An apply killed outright (kill -9) mid-migration cannot record what it wrote; the next run
that takes the reconcile lock records it as interrupted, and now with its journal's counts, as
for one stopped by Ctrl-C. `crmsync runs` showed it with no counts at all, though thousands of
copies it made were audited under it (and `rollback` of it deletes them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import World
from tests.integration.processes import killed
from tests.integration.test_rollback_deletes_creates import _create_missing, _created_by
from tests.sandbox_env import run_crmsync

PIPEDRIVE_CREATE = "POST /api/v2/deals"


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_killed_apply_is_listed_with_the_writes_its_journal_holds(
    small_world: World, tmp_path: Path
) -> None:
    world, saved = small_world, tmp_path / "plan.json"
    config = ("--config", str(world.config))
    _create_missing(world)
    planned = run_crmsync("reconcile", *config, "--dry-run", "--plan-out", str(saved))
    assert planned.returncode == 0, planned.stderr
    killed(world, "pipedrive", PIPEDRIVE_CREATE, "apply", str(saved), "--yes")  # HubSpot's done
    again = run_crmsync("apply", str(saved), *config, "--yes")
    assert again.returncode in (0, 1), again.stderr  # owners some CRMs lack are refused

    listed = run_crmsync("runs", *config, "--format", "json")
    runs = [r for r in json.loads(listed.stdout) if r["kind"] == "apply"]
    killed_run = runs[-1]  # newest first: the first apply
    assert killed_run["status"] == "interrupted", killed_run
    totals = killed_run["counts"]["totals"]
    audited = _created_by(world, killed_run["id"])
    assert audited and totals["applied"] >= len(audited), (totals, len(audited))
    # killed between sending a batch and recording it: what it journaled as intended may have
    # landed (the Pipedrive copy it was killed after did), so none of it counts as not sent
    assert "not_sent" not in totals and totals["in_doubt"], totals
    table = run_crmsync("runs", *config)
    assert f"applied {totals['applied']}" in " ".join(table.stdout.split())
