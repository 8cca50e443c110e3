"""After `rollback --apply` of a run that created copies, the next reconcile sees the CRMs as
before that run: the deleted copies are linked to nothing (not by their link marker, which
they still carry in the CRM's recycle bin, nor by the ids pointing at their sources), their
sources are planned as missing again (created again only with `push.create_missing`), and
no delete is propagated to the sources."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sync.cli import main
from sync.runtime import open_runtime
from sync.writes import ONE_CALL_EACH_BATCH
from tests.integration.conftest import World, refusing_after
from tests.integration.test_rollback_deletes_creates import _live


def _cli(world: World, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config), "--format", "json"])
    assert out.exit_code in ok, out.output
    return json.loads(out.stdout)


def _push(world: World, **options: Any) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(options)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _created_by(world: World, run_id: str) -> dict[tuple[str, str], str]:
    """(instance, id) -> entity of every copy the run created."""
    with open_runtime(str(world.config), connect=False) as rt:
        entries = rt.store.audit.entries(run_id=run_id)
    return {(e.instance, e.deal_id): e.after["link_id"] for e in entries if e.field is None}


def _sources(
    world: World, created: dict[tuple[str, str], str], entities: set[str]
) -> set[tuple[str, str]]:
    """The deals of `entities` that the copies in `created` were made from (not the copies)."""
    members = world.members()
    return {(s, i) for e in entities for s, i in members[e].items()} - set(created)


def _linked(world: World) -> set[tuple[str, str]]:
    return {(s, i) for ids in world.members().values() for s, i in ids.items()}


def _mentioned(plan: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (instance, id) any section of the plan names."""
    found: set[tuple[str, str]] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("system"), str) and isinstance(value.get("id"), str):
                found.add((value["system"], value["id"]))
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk({k: v for k, v in plan.items() if k != "summary"})
    return found


@pytest.mark.parametrize("pulled", [False, True], ids=["copies-never-pulled", "copies-pulled"])
@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_after_rolling_back_created_copies_the_next_reconcile_plans_them_as_missing_again(
    small_world: World, full: bool, pulled: bool
) -> None:
    world = small_world
    _push(world, create_missing=True, propagate_deletes=True)
    before = _cli(world, "reconcile", "--dry-run")
    planned = {(c["system"], c["entity"]) for c in before["creates"]}
    applied = _cli(world, "reconcile", "--yes", ok=(0, 1))  # 1: owners a target lacks
    created = _created_by(world, applied["run_id"])
    assert created and {(s, e) for (s, _), e in created.items()} <= planned
    assert set(created) <= _linked(world)
    if pulled:  # a night later: the next run read the copies (with their markers) into the store
        _cli(world, "reconcile", "--dry-run", ok=(0, 1))
    members = world.members()
    sources = {(s, i) for e in set(created.values()) for s, i in members[e].items()} - set(created)
    alone = {  # sources no other CRM held before the run: unmatched without their copies
        (s, i)
        for e in set(created.values())
        if len(kept := {(s, i) for s, i in members[e].items()} - set(created)) == 1
        for s, i in kept
    }

    rolled = _cli(world, "rollback", applied["run_id"], "--apply")
    deleted = {(r["system"], r["id"]) for r in rolled["results"] if r["op"] == "delete"}
    assert deleted == set(created)
    assert not set(created) & _linked(world)

    again = _cli(world, "reconcile", "--dry-run", *(["--full"] if full else []), ok=(0, 1))

    assert not set(created) & _mentioned(again), again  # neither linked, listed nor deleted
    assert {(c["system"], c["entity"]) for c in again["creates"]} == planned
    assert again["deleted"] == before["deleted"]  # nothing new, nothing to propagate
    assert not set(created) & _linked(world)

    _push(world, create_missing=False)
    without = _cli(world, "reconcile", "--dry-run", ok=(0, 1, 3))
    assert not without["creates"] and without["deleted"] == before["deleted"]
    assert not set(created) & _mentioned(without)
    unmatched = {(u["system"], u["id"]) for u in without["unmatched"]}
    assert alone <= unmatched, alone - unmatched

    _push(world, create_missing=True)
    recreated = _cli(world, "reconcile", "--yes", ok=(0, 1))
    fresh = _created_by(world, recreated["run_id"])
    assert {(s, e) for (s, _), e in fresh.items()} == {(s, e) for (s, _), e in created.items()}
    assert not fresh.keys() & created.keys() and set(fresh) <= _linked(world)
    assert all(_live(world, *source) for source in sources)  # no delete was propagated


@pytest.mark.slow  # default suite time: in `pytest -m slow`
@pytest.mark.parametrize("pulled", [False, True], ids=["copies-never-pulled", "copies-pulled"])
def test_a_rollback_stopped_mid_deletes_does_not_make_the_next_reconcile_delete_the_sources(
    small_world: World, pulled: bool
) -> None:
    """Pipedrive deletes one call per deal: a rollback the CRM stops part-way leaves the copies
    it deleted in doubt, still linked. The next reconcile, run before the rollback is run again,
    does not take them for deals a person deleted: it reports them, propagates nothing to their
    sources, and says to run the rollback again; after that they are gone from the plan."""
    world = small_world
    _push(world, create_missing=True, propagate_deletes=True)
    before = _cli(world, "reconcile", "--dry-run")
    applied = _cli(world, "reconcile", "--yes", ok=(0, 1))
    created = _created_by(world, applied["run_id"])
    copies = sorted(c for c in created if c[0] == "pipedrive")
    assert len(copies) > 3
    sources = _sources(world, created, {created[c] for c in copies})
    assert sources
    if pulled:
        _cli(world, "reconcile", "--dry-run", ok=(0, 1))
    with refusing_after(world, "pipedrive", "DELETE /api/v2/deals/{id}", 2):
        _cli(world, "rollback", applied["run_id"], "--apply", ok=(1,))
    gone = {c for c in copies if not _live(world, *c)}
    assert gone and gone != set(copies)

    for full in ([], ["--full"]):
        again = _cli(world, "reconcile", "--dry-run", *full, ok=(0, 1))
        ours = [d for d in again["deleted"] if d not in before["deleted"]]
        assert not any(d["propagate"] for d in ours), ours
        assert all(f"crmsync rollback {applied['run_id']} --apply" in d["reason"] for d in ours)
        # a run that read the copies sees them deleted and reports them; one that never did,
        # never knew them in Pipedrive
        reported = {(g["system"], g["id"]) for d in ours for g in d["deleted"]}
        assert reported == (gone if pulled else set()), ours
        assert not gone & _mentioned({k: v for k, v in again.items() if k != "deleted"})

    _cli(world, "rollback", applied["run_id"], "--apply")  # the CRM is well again
    settled = _cli(world, "reconcile", "--yes", ok=(0, 1))
    assert settled["deleted"] == before["deleted"], settled["deleted"]
    assert not set(copies) & _mentioned(settled)
    assert all(_live(world, *source) for source in sources)  # no delete was propagated


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_reconcile_that_applies_settles_a_stopped_rollbacks_deletes_and_deletes_no_source(
    small_world: World,
) -> None:
    """The rollback the CRM stopped part-way is not run again; the next `reconcile --yes`
    settles its deletes: the copies found deleted are audited under the rollback and forgotten
    (no later plan takes them for a person's deletion to spread to their sources), the others
    stay linked, and running the rollback again deletes them, each audited once."""
    world = small_world
    _push(world, create_missing=True, propagate_deletes=True)
    applied = _cli(world, "reconcile", "--yes", ok=(0, 1))
    created = _created_by(world, applied["run_id"])
    copies = sorted(c for c in created if c[0] == "pipedrive")
    with refusing_after(world, "pipedrive", "DELETE /api/v2/deals/{id}", 2):
        stopped = _cli(world, "rollback", applied["run_id"], "--apply", ok=(1,))
    gone = {c for c in copies if not _live(world, *c)}
    assert gone and gone != set(copies)

    out = CliRunner().invoke(main, ["reconcile", "--config", str(world.config), "--yes"])
    assert out.exit_code in (0, 1), out.output
    # In doubt: the batch the CRM stopped (Pipedrive deletes one call per deal, journaled
    # ONE_CALL_EACH_BATCH at a time); the batches after it never went out.
    doubt = min(len(copies), ONE_CALL_EACH_BATCH)
    line = (
        f"pipedrive: settled {doubt} deletes left in doubt by run {stopped['run_id']}: "
        f"{len(gone)} deleted (audited under that run), {doubt - len(gone)} not deleted"
    )
    assert line in out.output, out.output
    with open_runtime(str(world.config), connect=False) as rt:
        audited = {
            (e.instance, e.deal_id)
            for e in rt.store.audit.entries(run_id=stopped["run_id"])
            if e.field is None and isinstance(e.after, dict) and e.after.get("deleted")
        }
    assert gone <= audited and not (set(copies) - gone) & audited
    assert not gone & _linked(world) and set(copies) - gone <= _linked(world)
    for full in ([], ["--full"]):
        again = _cli(world, "reconcile", "--dry-run", *full, ok=(0, 1))
        assert not gone & _mentioned(again), again
        assert not any(d["propagate"] for d in again["deleted"]), again["deleted"]
    sources = _sources(world, created, set(created.values()))
    assert all(_live(world, *s) for s in sources)

    _cli(world, "rollback", applied["run_id"], "--apply")
    assert not any(_live(world, *c) for c in copies)
    with open_runtime(str(world.config), connect=False) as rt:
        deletes = [
            (e.instance, e.deal_id)
            for e in rt.store.audit.entries()
            if e.field is None and isinstance(e.after, dict) and e.after.get("deleted")
        ]
    assert sorted(d for d in deletes if d in set(copies)) == copies  # each once


def test_a_rollback_that_undid_writes_says_the_next_reconcile_plans_them_again(
    small_world: World,
) -> None:
    """The restored values are the bases, so the edits the run copied read as new in the CRMs
    holding them: a nightly reconcile would write them again. The rollback says so when it
    undid something (on stderr: JSON stdout stays the report), and not when it undid nothing."""
    world = small_world
    _push(world, create_missing=True)
    applied = _cli(world, "reconcile", "--yes", ok=(0, 1))
    args = ["rollback", applied["run_id"], "--apply", "--config", str(world.config)]
    first = CliRunner().invoke(main, [*args, "--format", "json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["totals"]["applied"] > 0
    assert "note: the next reconcile plans again what this rollback undid" in first.stderr
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "plans again" not in again.output
