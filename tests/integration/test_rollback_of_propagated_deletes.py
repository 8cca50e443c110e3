"""A run whose only writes spread a deletion (`push.propagate_deletes`) has nothing a rollback
can write: the deals it deleted are kept, listed for the user to restore from the CRMs' recycle
bins. No rollback of it, whole or of the entity, counts as done, and the list stays shown."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from sync.cli import main
from tests.integration.conftest import World
from tests.integration.test_deals_restored import _settled

RESTORE = "deleted by this run; restore it from the CRM's recycle bin if it is wanted"


def _run(world: World, *args: str) -> Result:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config)])
    assert out.exit_code == 0, (args, out.output)
    return out


def _json(world: World, *args: str) -> Any:
    return json.loads(_run(world, *args, "--format", "json").stdout)


def _spread_deletion(world: World) -> tuple[str, str, set[tuple[str, str]]]:
    """A person deletes an entity's HubSpot deal; the run deletes its other two deals: the run,
    the entity and the deals it deleted."""
    entity, ids, people = _settled(world, propagate_deletes=True, create_missing=True)
    people.delete("hubspot", ids["hubspot"])
    run_id = _json(world, "reconcile", "--yes")["run_id"]
    deleted = {(s, i) for s, i in ids.items() if s != "hubspot"}
    assert not any(people.is_live(s, i) for s, i in deleted)
    shown = _json(world, "rollback", run_id)
    assert (shown["changes"], shown["deletes"]) == ([], [])  # nothing a rollback can write
    assert _kept(shown) == deleted
    return run_id, entity, deleted


def _kept(shown: dict[str, Any]) -> set[tuple[str, str]]:
    assert {k["reason"] for k in shown["created_not_undone"]} <= {RESTORE}
    return {(k["system"], k["id"]) for k in shown["created_not_undone"]}


def _recorded(world: World, run_id: str) -> Any:
    return next(r for r in _json(world, "runs") if r["id"] == run_id)["counts"]


def test_the_rollback_of_a_run_that_only_spread_a_deletion_is_not_recorded_as_rolled_back(
    small_world: World,
) -> None:
    world = small_world
    run_id, _, deleted = _spread_deletion(world)

    _run(world, "rollback", run_id, "--apply", "--yes")

    assert "rolled_back" not in _recorded(world, run_id)
    listed = " ".join(_run(world, "runs").output.split())
    assert "rolled back" not in listed, listed
    again = _json(world, "rollback", run_id)
    assert _kept(again) == deleted and again["rolled_back_already"] == []


def test_a_partial_rollback_that_undid_nothing_leaves_the_entity_and_its_deleted_deals_listed(
    small_world: World,
) -> None:
    world = small_world
    run_id, entity, deleted = _spread_deletion(world)

    _run(world, "rollback", run_id, "--entity", entity, "--apply", "--yes")

    assert "rolled_back" not in _recorded(world, run_id)
    for scope in ([], ["--entity", entity]):
        shown = _json(world, "rollback", run_id, *scope)
        assert _kept(shown) == deleted and shown["rolled_back_already"] == [], scope
    table = " ".join(_run(world, "rollback", run_id).output.split())
    for system, deal_id in sorted(deleted):
        assert f"kept {system} {deal_id}: {RESTORE}" in table, table
    assert "rolled back already" not in table, table


def test_rollback_apply_says_which_deals_it_keeps_and_why_as_the_dry_view_does(
    small_world: World,
) -> None:
    world = small_world
    run_id, _, deleted = _spread_deletion(world)
    dry = " ".join(_run(world, "rollback", run_id).output.split())

    applied = _run(world, "rollback", run_id, "--apply", "--yes")

    table = " ".join(applied.stdout.split())
    for system, deal_id in sorted(deleted):
        line = f"kept {system} {deal_id}: {RESTORE}"
        assert line in dry and line in table, table
    as_json = CliRunner().invoke(
        main,
        ["rollback", run_id, "--apply", "--yes", "--config", str(world.config), "--format", "json"],
    )
    assert as_json.exit_code == 0, as_json.output
    json.loads(as_json.stdout)  # stdout holds the apply's report alone
    said = " ".join(as_json.stderr.split())
    assert all(f"kept {s} {i}: {RESTORE}" in said for s, i in deleted), said
