"""`limits.max_conflicts` / `max_unmatched` are an alarm, not a guard: reconcile exits 3 above
them, and without --dry-run it has still applied the rest of the plan (README, config table)."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from connectors.sandbox.faults import Faults
from sync.cli import main
from tests.integration.conftest import World


def _writes(plan: dict) -> list[tuple[str, str, str, object]]:  # type: ignore[type-arg]
    return [(c["system"], c["id"], c["field"], c["to"]) for c in plan["changes"]]


def _reconcile(world: World, *extra: str) -> tuple[int, str, str]:
    out = CliRunner().invoke(main, ["reconcile", "--config", str(world.config), *extra])
    return out.exit_code, out.stdout, out.stderr


def _no_unmatched_allowed(world: World) -> World:
    document = yaml.safe_load(world.config.read_text())
    document["limits"] = {"max_unmatched": 0}
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    return world


def test_limits_exit_3_after_applying_the_rest_and_a_dry_run_writes_nothing(
    small_world: World,
) -> None:
    world = _no_unmatched_allowed(small_world)

    code, stdout, stderr = _reconcile(world, "--dry-run", "--format", "json")
    plan = json.loads(stdout)
    assert plan["unmatched"] and plan["changes"], "the generated data should need both"
    assert code == 3
    assert stderr.count("\n") == 1 and "unmatched deals (limit 0)" in stderr, stderr
    # the dry run wrote nothing: the same plan again
    code, stdout, _ = _reconcile(world, "--dry-run", "--format", "json")
    assert code == 3 and _writes(json.loads(stdout)) == _writes(plan)

    code, _, stderr = _reconcile(world, "--yes", "--format", "json")
    assert code == 3 and "unmatched deals (limit 0)" in stderr, stderr
    code, stdout, _ = _reconcile(world, "--dry-run", "--format", "json")
    after = json.loads(stdout)
    assert code == 3 and after["changes"] == [] and after["unmatched"] == plan["unmatched"]


def test_changes_that_failed_to_apply_outrank_the_limits_and_the_line_says_both(
    small_world: World,
) -> None:
    """Exit 3 used to hide that part of the plan was not applied (exit 1, and its line)."""
    world = _no_unmatched_allowed(small_world)
    hubspot = world.sandbox.servers["hubspot"]
    hubspot.faults.set(Faults(record_fail=1.0))  # every HubSpot record refused in its batch
    try:
        code, _, stderr = _reconcile(world, "--yes", "--format", "json")
    finally:
        hubspot.faults.set(Faults())
    assert code == 1, stderr
    line = stderr.splitlines()[-1]  # after the apply's tables (stdout is the plan)
    assert line.startswith("crmsync: error: 5 change(s) not applied (e.g. hubspot "), line
    assert line.endswith("; reconcile limits exceeded: 21 unmatched deals (limit 0)"), line


def test_conflicts_above_max_conflicts_exit_3_and_at_the_limit_exit_0(small_world: World) -> None:
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    document["policies"] = {"default": "conflict"}  # a first sync: every difference conflicts
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, stdout, _ = _reconcile(world, "--dry-run", "--format", "json")
    conflicts = len(json.loads(stdout)["conflicts"])
    assert conflicts >= 1 and code == 0, "no limit set: conflicts alone are no failure"

    for limit, expected in ((conflicts - 1, 3), (conflicts, 0)):
        document["limits"] = {"max_conflicts": limit}
        world.config.write_text(yaml.safe_dump(document, sort_keys=False))
        code, stdout, stderr = _reconcile(world, "--dry-run", "--format", "json")
        assert code == expected, stderr
        assert len(json.loads(stdout)["conflicts"]) == conflicts  # stdout: the plan alone
        assert (f"{conflicts} conflicts (limit {limit})" in stderr) == (expected == 3), stderr


def test_the_run_of_a_reconcile_over_its_limits_says_so_in_crmsync_runs(
    small_world: World,
) -> None:
    """Exit 3 is an alarm a scheduled run's exit code alone would not raise: `runs` says it."""
    world = _no_unmatched_allowed(small_world)
    assert _reconcile(world, "--dry-run", "--format", "json")[0] == 3
    shown = CliRunner().invoke(main, ["runs", "--config", str(world.config), "--format", "json"])
    [run] = json.loads(shown.stdout)
    assert run["status"] == "ok", run
    assert "reconcile limits exceeded: " in run["error"] and "(limit 0)" in run["error"], run
