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


def test_the_reviewed_plan_applies_once_max_changes_is_raised_as_the_dry_run_advises(
    small_world: World, tmp_path: Path
) -> None:
    """The dry run's warning says: review the plan, then raise the limit. The limits are
    checked at apply against the config then, so raising one does not make the reviewed plan
    one "made with a different config" (it did: ops had to plan and review it all again)."""
    world, saved = small_world, tmp_path / "plan.json"
    _limit(world, 5)
    dry = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(saved)
    )
    assert dry.returncode == 0, dry.stderr
    assert "raise the limit in the config" in dry.stderr
    changes, creates = _summary(dry.stdout)

    document = yaml.safe_load(world.config.read_text())
    document["push"].update(max_changes=changes + creates, confirm_above=1, plan_max_age="2d")
    document["limits"] = {"max_unmatched": 1000, "max_conflicts": 1000}
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    applied = run_crmsync("apply", str(saved), "--config", str(world.config), "--yes")

    assert applied.returncode == 0, applied.stderr
    stats = [s.stats.snapshot() for s in world.sandbox.servers.values()]
    assert sum(count_writes(s) for s in stats) > 0
