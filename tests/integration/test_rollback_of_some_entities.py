"""`rollback RUN --entity E` undoes the run's writes to E alone, in every CRM, as the whole
rollback would (its rows, checks, journal and bases), and keeps the rest of the run; a later
rollback of the whole run undoes the rest and leaves E alone, saying so."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from mapping.model import Ref
from sync.cli import main
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World
from tests.integration.processes import killed
from tests.integration.test_echo_of_our_writes import _amount
from tests.integration.test_link_review import _configure, _entity_of, _links
from tests.integration.test_link_review import _run as _reconcile
from tests.integration.test_rollback_deletes_creates import _created_by, _live

EDITED = 3


def _run(world: World, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(world.config)], env=env)


def _cli(world: World, *args: str) -> Any:
    out = _run(world, *args, "--format", "json")
    assert out.exit_code in (0, 1), out.output  # 1: owners the generated data cannot map
    return json.loads(out.stdout)


def _refs(entities: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(system, deal_id) for ids in entities for system, deal_id in ids.items()}


def _amounts(world: World, refs: set[tuple[str, str]]) -> dict[tuple[str, str], Decimal]:
    """As the CRMs hold them (each sandbox keeps its own type: a string, a float, a Decimal)."""
    return {ref: Decimal(str(_amount(world, *ref))) for ref in refs}


def _planned(plan: dict[str, Any], refs: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """(system, id) -> (field, to, reason) of every change the plan makes to `refs`."""
    return {
        (c["system"], c["id"]): (c["field"], c["to"], c["reason"])
        for c in plan["changes"]
        if (c["system"], c["id"]) in refs
    }


def _written(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["system"], r["id"]) for r in report["results"]}


def _bases(world: World, entities: list[str]) -> dict[str, Any]:
    with open_runtime(str(world.config), connect=False) as rt:
        return rt.store.bases(entities)


@dataclass(frozen=True)
class Carried:
    """A run that carried HubSpot edits of three entities to Salesforce and Pipedrive."""

    run_id: str
    entities: list[str]
    members: list[dict[str, str]]  # of each entity, in the same order
    before: dict[tuple[str, str], Decimal]  # the members' amounts before the run
    bases: dict[str, Any]  # the entities' bases before the run
    planned: dict[tuple[str, str], Any]  # what the dry run before it planned for them


def _edits_carried(world: World) -> Carried:
    _cli(world, "reconcile", "--yes")  # the first sync: the CRMs agree, bases are stored
    members = world.members()
    entities = [e for e, m in members.items() if len(m) == 3][:EDITED]
    assert len(entities) == EDITED
    ids = [members[e] for e in entities]
    bump_amounts(world, "hubspot", [m["hubspot"] for m in ids], step=7)  # a person edits
    before = _amounts(world, _refs(ids))
    bases = _bases(world, entities)
    planned = _planned(_cli(world, "reconcile", "--dry-run"), _refs(ids))
    run_id = _cli(world, "reconcile", "--yes")["run_id"]
    return Carried(run_id, entities, ids, before, bases, planned)


def test_rolling_back_one_entity_undoes_its_writes_alone_and_the_whole_rollback_the_rest(
    small_world: World,
) -> None:
    world = small_world
    carried = _edits_carried(world)
    run_id, entities, ids = carried.run_id, carried.entities, carried.members
    before_run, planned = carried.before, carried.planned
    after_run = _amounts(world, _refs(ids))
    undone, kept = _refs(ids[:1]), _refs(ids[1:])
    assert {ref for ref in before_run if before_run[ref] != after_run[ref]} == {
        ref for ref in _refs(ids) if ref[0] != "hubspot"
    }

    whole = _cli(world, "rollback", run_id)
    shown = _cli(world, "rollback", run_id, "--entity", entities[0])
    assert shown["entities"] == [entities[0]] and shown["rolled_back_already"] == []
    assert shown["changes"] == [c for c in whole["changes"] if (c["system"], c["id"]) in undone]
    assert {(c["system"], c["id"]) for c in shown["changes"]} == undone - {
        ("hubspot", ids[0]["hubspot"])
    }

    advanced = _bases(world, entities)
    assert all(advanced[e] != carried.bases[e] for e in entities)  # the run's amounts
    partial = _cli(world, "rollback", run_id, "--entity", entities[0], "--apply")
    assert _written(partial) == {(c["system"], c["id"]) for c in shown["changes"]}
    assert {r["outcome"] for r in partial["results"]} == {"applied"}
    assert _amounts(world, undone) == {ref: before_run[ref] for ref in undone}
    assert _amounts(world, kept) == {ref: after_run[ref] for ref in kept}
    rebased = _bases(world, entities)  # the entity's base is back, the others' kept
    assert rebased == {entities[0]: carried.bases[entities[0]]} | {
        e: advanced[e] for e in entities[1:]
    }

    # As after the whole rollback: the entity is as before the run, its restored amounts are
    # no edits (never carried over HubSpot's); the run's edit is planned again, as before it.
    # The two others stay as the run left them, agreed on: nothing is planned for them.
    again = _planned(_cli(world, "reconcile", "--dry-run"), _refs(ids))
    assert again == {ref: change for ref, change in planned.items() if ref in undone}
    assert {why for _, _, why in again.values()} == {"changed in hubspot since last sync"}

    runs = _run(world, "runs", env={"COLUMNS": "80"})
    assert "partly rolled back (1 entity)" in " ".join(runs.output.split()), runs.output
    assert f"of {run_id};" in " ".join(runs.output.split()), runs.output  # the rollback's row
    calls = sum(s["total"] for s in world.stats().values())
    repeated = _run(world, "rollback", run_id, "--entity", entities[0], "--apply")
    assert repeated.exit_code == 0, repeated.output
    assert f"rolled back already: {entities[0]} (1 entity of run {run_id})" in (
        " ".join(repeated.output.split())
    )
    assert sum(s["total"] for s in world.stats().values()) == calls  # no CRM read or written

    rest = _run(world, "rollback", run_id, "--apply", "--format", "json")
    assert rest.exit_code == 0, rest.output
    assert f"rolled back already: {entities[0]} (1 entity of run {run_id})" in (
        " ".join(rest.stderr.split())
    )
    assert not _written(json.loads(rest.stdout)) & undone  # not undone twice
    assert _written(json.loads(rest.stdout)) >= kept - {("hubspot", m["hubspot"]) for m in ids}
    assert _amounts(world, _refs(ids)) == before_run
    recorded = next(r for r in _cli(world, "runs") if r["id"] == run_id)["counts"]
    assert recorded["rolled_back"] == {"entities": [entities[0]], "whole": True}
    runs = _run(world, "runs", env={"COLUMNS": "80"})
    assert "; rolled back" in " ".join(runs.output.split()), runs.output

    calls = sum(s["total"] for s in world.stats().values())
    late = _run(world, "rollback", run_id, "--entity", entities[1], "--apply")
    assert late.exit_code == 0, late.output
    said = " ".join(late.output.split())
    assert f"rolled back already: {entities[1]} (1 entity of run {run_id})" in said, said
    assert sum(s["total"] for s in world.stats().values()) == calls


def test_rolling_back_one_entity_deletes_the_copies_the_run_made_in_it_and_keeps_the_others(
    small_world: World,
) -> None:
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    run_id = _cli(world, "reconcile", "--yes")["run_id"]
    created = _created_by(world, run_id)
    entity = sorted(created.values())[0]
    mine = {copy for copy, e in created.items() if e == entity}
    assert mine and len(mine) < len(created)

    shown = _cli(world, "rollback", run_id, "--entity", entity)
    assert {(d["system"], d["id"]) for d in shown["deletes"]} == mine
    assert {d["entity"] for d in shown["deletes"]} == {entity}
    rolled = _cli(world, "rollback", run_id, "--entity", entity, "--apply")

    assert {(r["system"], r["id"]) for r in rolled["results"] if r["op"] == "delete"} == mine
    assert not any(_live(world, *copy) for copy in mine)
    assert all(_live(world, *copy) for copy in set(created) - mine)
    linked = {(s, i) for m in world.members().values() for s, i in m.items()}
    assert not mine & linked and set(created) - mine <= linked


@pytest.mark.parametrize("write", [False, True], ids=["dry-run", "apply"])
def test_an_entity_unknown_or_not_written_by_the_run_is_a_usage_error_naming_it(
    small_world: World, write: bool
) -> None:
    world = small_world
    carried = _edits_carried(world)
    run_id, written = carried.run_id, carried.entities
    untouched = next(e for e in world.members() if e not in written)
    apply = ["--apply"] if write else []
    calls = sum(s["total"] for s in world.stats().values())

    for entity, says in [
        ("no-such-entity", "unknown entity 'no-such-entity': no deal is linked to it"),
        (untouched, f"run {run_id} wrote nothing to entity {untouched!r}"),
    ]:
        out = _run(world, "rollback", run_id, "--entity", written[0], "--entity", entity, *apply)
        assert out.exit_code == 2, out.output
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and run_id in lines[0], out.stderr
    assert sum(s["total"] for s in world.stats().values()) == calls  # no CRM read or written


def test_a_deal_split_off_the_entity_since_the_run_is_undone_by_the_whole_rollback_alone(
    small_world: World,
) -> None:
    """A person joins two deals by mistake; the run gives the Salesforce deal the HubSpot
    deal's name and copies the entity into Pipedrive; the person splits it. The entity keeps the
    HubSpot deal and its copy, whose rollback deletes the copy; the Salesforce deal, linked to
    no entity now, is undone by the rollback of the whole run only."""
    world = small_world
    _configure(world, create_missing=True)
    first = _reconcile(world, dry_run=True).result
    held = {r for a in first.matched.ambiguous for r in (a.ref, *a.candidates)}
    held |= {Ref(d.instance, i) for d in first.matched.duplicates for i in d.ids}
    sf, hs = (
        next(r for r in first.matched.unmatched[system] if r not in held)
        for system in ("salesforce", "hubspot")
    )
    _links(world, "join", f"{sf.system}:{sf.id}", f"{hs.system}:{hs.id}")
    run_id = _cli(world, "reconcile", "--yes")["run_id"]
    entity = _entity_of(world)[hs]
    [copy] = [r for r, e in _entity_of(world).items() if e == entity and r.system == "pipedrive"]
    whole = _cli(world, "rollback", run_id)
    assert ("salesforce", sf.id, "name") in {
        (c["system"], c["id"], c["field"]) for c in whole["changes"]
    }
    _links(world, "split", entity)

    shown = _cli(world, "rollback", run_id, "--entity", entity)
    assert [(d["system"], d["id"]) for d in shown["deletes"]] == [("pipedrive", copy.id)]
    assert {(c["system"], c["id"]) for c in shown["changes"]} <= {("hubspot", hs.id)}
    later = _cli(world, "rollback", run_id)
    assert [c for c in later["changes"] if c["id"] == sf.id] == [
        {**c, "entity": ""} for c in whole["changes"] if c["id"] == sf.id
    ]


def test_a_partial_rollback_killed_part_way_resumes_and_only_then_counts_as_rolled_back(
    small_world: World,
) -> None:
    """kill -9 after its Pipedrive batch (written before Salesforce's); run again, it writes
    Salesforce alone (Pipedrive's is done before), and then the whole rollback leaves it out."""
    world = small_world
    carried = _edits_carried(world)
    run_id, entities, ids = carried.run_id, carried.entities, carried.members
    partial = ("rollback", run_id, "--entity", entities[0], "--apply", "--yes")
    killed(world, "salesforce", "GET /services/data/{version}/query", *partial)
    recorded = next(r for r in _cli(world, "runs") if r["id"] == run_id)["counts"]
    assert "rolled_back" not in recorded  # Salesforce's half is not undone yet

    resumed = _cli(world, *partial)
    outcomes = {(r["system"], r["outcome"]) for r in resumed["results"]}
    assert outcomes == {("pipedrive", "done_before"), ("salesforce", "applied")}, outcomes
    undone = _refs(ids[:1])
    assert _amounts(world, undone) == {ref: carried.before[ref] for ref in undone}
    rest = _run(world, "rollback", run_id, "--apply", "--format", "json")
    assert rest.exit_code == 0, rest.output
    assert not _written(json.loads(rest.stdout)) & undone
    assert _amounts(world, _refs(ids)) == carried.before


def test_applying_a_partial_rollback_rolled_back_already_prints_an_apply_report_of_nothing(
    small_world: World,
) -> None:
    """A script reads `--apply --format json` as any apply's report: no run was recorded (its
    `run_id` is null, not the plan's id), nothing was written; the line saying why is on
    stderr."""
    world = small_world
    carried = _edits_carried(world)
    run_id, entity = carried.run_id, carried.entities[0]
    assert _run(world, "rollback", run_id, "--apply", "--yes").exit_code == 0
    runs = len(_cli(world, "runs"))
    calls = sum(s["total"] for s in world.stats().values())

    out = _run(world, "rollback", run_id, "--entity", entity, "--apply", "--format", "json")

    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report == {
        "run_id": None,
        "plan_id": f"rollback-{run_id}",
        "totals": {k: 0 for k in report["totals"]},
        "by_system": {},
        "results": [],
        "calls": {},
        "settled": [],
        "rolled_back_already": [entity],
    }
    assert "applied" in report["totals"]
    assert " ".join(out.stderr.split()) == (
        f"rolled back already: {entity} (1 entity of run {run_id}); not undone again"
    )
    assert len(_cli(world, "runs")) == runs
    assert sum(s["total"] for s in world.stats().values()) == calls
