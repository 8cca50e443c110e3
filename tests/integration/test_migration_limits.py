"""`push.max_changes` counts every write of a plan, the copies `push.create_missing` makes among
them. A migration's plan has few field changes and thousands of creates: the refusal says how
many of each it counted (it said "N changes" of a plan whose summary read "M changes, K
creates"), and the dry run ops review says so already, instead of the apply being the first to
tell."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.integration.conftest import World
from tests.sandbox_env import count_writes, run_crmsync


def _limit(world: World, max_changes: int) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, max_changes=max_changes)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _summary(stdout: str) -> tuple[int, int]:
    """(changes, creates) of the plan table's summary line."""
    found = re.search(r"(\d+) changes?, (\d+) creates?,", stdout)
    assert found, stdout
    return int(found[1]), int(found[2])


def test_a_plan_over_max_changes_by_its_creates_says_so_at_the_dry_run_and_the_refusal(
    small_world: World, tmp_path: Path
) -> None:
    world, saved = small_world, tmp_path / "plan.json"
    _limit(world, 5)
    dry = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(saved)
    )
    assert dry.returncode == 0, dry.stderr  # a dry run writes nothing: no refusal
    changes, creates = _summary(dry.stdout)
    assert changes and creates > 5, "the generated world lacks the writes this test needs"
    counted = f"{changes + creates} changes ({changes} field changes, {creates} creates)"
    assert f"plan writes {counted}, more than push.max_changes (5)" in dry.stderr
    assert "crmsync apply refuses it" in dry.stderr

    applied = run_crmsync("apply", str(saved), "--config", str(world.config), "--yes")
    assert applied.returncode == 3
    assert f"plan writes {counted}, more than push.max_changes (5); nothing written" in (
        applied.stderr
    )
    stats = [s.stats.snapshot() for s in world.sandbox.servers.values()]
    assert sum(count_writes(s) for s in stats) == 0
