"""A linked deal someone deletes in one CRM after crmsync linked it is reported as deleted in
one system and live in the others, by the next incremental reconcile and by a full one; it is
neither mistaken for a live deal nor re-created."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sync.cli import main
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World


def _plan(world: World, *extra: str) -> Any:
    args = ["reconcile", "--dry-run", "--config", str(world.config), "--format", "json", *extra]
    out = CliRunner().invoke(main, args)
    assert out.exit_code in (0, 3), out.output
    return json.loads(out.stdout)


@pytest.mark.parametrize("system", ["salesforce", "hubspot", "pipedrive"])
def test_a_linked_deal_deleted_in_one_crm_is_reported_by_the_next_runs(
    small_world: World, system: str
) -> None:
    out = CliRunner().invoke(main, ["reconcile", "--config", str(small_world.config), "--yes"])
    assert out.exit_code in (0, 1), out.output
    entity, ids = next((e, i) for e, i in small_world.members().items() if len(i) == 3)
    with open_runtime(str(small_world.config)) as rt:  # a person deletes it, through the API
        assert rt.connectors[system].delete_deals([ids[system]])[0].ok  # type: ignore[attr-defined]

    for extra in ((), ("--full",)):
        plan = _plan(small_world, *extra)
        reported = [d for d in plan["deleted"] if d["entity"] == entity]
        assert reported, f"{extra}: the deletion of {system} {ids[system]} is not reported"
        assert reported[0]["deleted"] == [{"system": system, "id": ids[system]}]
        assert {(r["system"], r["id"]) for r in reported[0]["live"]} == {
            (s, i) for s, i in ids.items() if s != system
        }
        assert not [c for c in plan["creates"] if c["entity"] == entity]
        assert not [c for c in plan["changes"] if c["entity"] == entity]


def test_propagate_deletes_deletes_the_other_members_that_still_hold_the_agreed_values(
    small_world: World,
) -> None:
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["propagate_deletes"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    runner = CliRunner()
    out = runner.invoke(main, ["reconcile", "--config", str(world.config), "--yes"])
    assert out.exit_code in (0, 1), out.output
    assert not _plan(world)["changes"]  # converged: every member holds the agreed values
    full = [ids for ids in world.members().values() if len(ids) == 3]
    kept, edited = full[0], full[1]
    with open_runtime(str(world.config)) as rt:  # people delete two deals in Salesforce
        connector: Any = rt.connectors["salesforce"]
        assert all(r.ok for r in connector.delete_deals([kept["salesforce"], edited["salesforce"]]))
    bump_amounts(world, "hubspot", [edited["hubspot"]], step=5)  # and work on one copy

    plan = _plan(world)
    assert sum(1 for d in plan["deleted"] if d["propagate"]) == 2
    assert all(_live(world, s, i) for s, i in (*kept.items(), *edited.items()) if s != "salesforce")

    out = runner.invoke(
        main, ["reconcile", "--config", str(world.config), "--yes"], env={"COLUMNS": "400"}
    )
    assert out.exit_code in (0, 1), out.output
    assert not _live(world, "hubspot", kept["hubspot"])
    assert not _live(world, "pipedrive", kept["pipedrive"])
    assert not _live(world, "pipedrive", edited["pipedrive"])
    assert _live(world, "hubspot", edited["hubspot"]), "edited since the last sync: not deleted"
    assert "amount is now" in out.output  # reported as drifted, with why
    assert "the CRMs last agreed on" in out.output  # its base, not values it was created with
    assert "created with" not in out.output

    # The next run reports the edited copy again and deletes nothing more.
    plan = _plan(world)
    [left] = [d for d in plan["deleted"] if d["propagate"]]
    assert left["live"] == [{"system": "hubspot", "id": edited["hubspot"]}]


def _live(world: World, system: str, deal_id: str) -> bool:
    em: Any = world.sandbox.servers[system].emulator
    with em.lock:
        if system == "hubspot":
            return deal_id in em.store.live
        deal = em.store.deals[int(deal_id)]
        return not deal.get("deleted") and deal.get("status") != "deleted"


def test_a_mass_deletion_meets_max_changes_before_it_spreads(small_world: World) -> None:
    world = small_world
    out = CliRunner().invoke(main, ["reconcile", "--config", str(world.config), "--yes"])
    assert out.exit_code in (0, 1), out.output
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(propagate_deletes=True, max_changes=5)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    full = [ids for ids in world.members().values() if len(ids) == 3][:3]
    with open_runtime(str(world.config)) as rt:  # 3 deals gone: 6 copies to delete
        connector: Any = rt.connectors["salesforce"]
        assert all(r.ok for r in connector.delete_deals([ids["salesforce"] for ids in full]))

    out = CliRunner().invoke(main, ["reconcile", "--config", str(world.config), "--yes"])
    assert out.exit_code == 3 and "push.max_changes (5)" in out.output, out.output
    assert all(_live(world, s, i) for ids in full for s, i in ids.items() if s != "salesforce")


def test_a_deal_deleted_before_the_first_run_is_not_created_again_by_create_missing(
    small_world: World,
) -> None:
    world = small_world
    [planted] = [p for p in world.generated.planted if p["kind"] == "deleted"]
    gone = {"system": planted["system"], "id": planted["refs"][planted["system"]]}
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    for extra in ((), ("--full",)):
        plan = _plan(world, *extra)
        [reported] = [d for d in plan["deleted"] if d["deleted"] == [gone]]
        again = [c for c in plan["creates"] if c["entity"] == reported["entity"]]
        assert not again, f"{extra}: the deleted {gone} would be created again: {again}"
        assert plan["summary"]["creates"] == len(plan["creates"])
