"""A rollback of a run that wrote to an instance `crmsync forget` removed since: the whole run
is refused (a run is undone whole); a partial one (`--entity E`) undoes E's writes to the CRMs
crmsync still knows, leaving those to the forgotten one alone (forget unlinked its deals, and
left none of its writes in doubt), unless it would write there itself. The dry view says what
--apply does, in JSON too, whatever its plan holds."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from sync.cli import main
from tests.integration.conftest import World, retire
from tests.integration.crm_users import Editors
from tests.integration.test_deals_restored import _settled
from tests.integration.test_rollback_deletes_creates import _created_by, _live
from tests.integration.test_rollback_of_some_entities import _amounts, _edits_carried, _refs
from tests.sandbox_env import count_writes


def _run(world: World, *args: str, code: int = 0) -> Result:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config)])
    assert out.exit_code == code, (args, out.output)
    return out


def _json(world: World, *args: str) -> Any:
    return json.loads(_run(world, *args, "--format", "json").stdout)


def _forget_pipedrive(world: World) -> str:
    retire(world, "pipedrive")
    return str(_json(world, "forget", "pipedrive", "--apply", "--yes")["run_id"])


def _writes(world: World) -> int:
    return sum(map(count_writes, world.stats().values()))


def test_a_partial_rollback_after_a_forget_undoes_the_entity_in_the_crms_still_known(
    small_world: World,
) -> None:
    world = small_world
    carried = _edits_carried(world)  # HubSpot edits carried to Salesforce and Pipedrive
    run_id, entity, ids = carried.run_id, carried.entities[0], carried.members[0]
    after_run = _amounts(world, _refs([ids]))
    forgot = _forget_pipedrive(world)
    note = (
        f"run {run_id} wrote to pipedrive, whose state crmsync forgot since (run {forgot}): this "
        "rollback leaves its writes there alone (their deals are in no entity now); undo them "
        "by hand"
    )

    shown = _json(world, "rollback", run_id, "--entity", entity)
    table = " ".join(_run(world, "rollback", run_id, "--entity", entity).output.split())
    undo = _run(world, "rollback", run_id, "--entity", entity, "--apply", "--yes")

    assert (shown["refused"], shown["forgotten"]) == (None, {"pipedrive": forgot})
    assert {(c["system"], c["id"]) for c in shown["changes"]} == {("salesforce", ids["salesforce"])}
    assert note in table and "add --apply to write these changes" in table, table
    assert note in " ".join(undo.output.split()), undo.output
    sf, pd = ("salesforce", ids["salesforce"]), ("pipedrive", ids["pipedrive"])
    assert _amounts(world, {sf, pd}) == {sf: carried.before[sf], pd: after_run[pd]}
    whole = _run(world, "rollback", run_id, "--apply", "--yes", code=2)
    assert "a run is undone whole" in whole.stderr, whole.stderr


def _copied(world: World) -> tuple[str, str]:
    """A deal someone made in HubSpot, copied by the run into Salesforce and Pipedrive: the run
    and the entity, the only one it wrote to."""
    _settled(world, create_missing=True)
    Editors(world, 1)._create("hubspot", "Copied Then Forgotten", None, None)
    run_id = str(_json(world, "reconcile", "--yes")["run_id"])
    created = _created_by(world, run_id)
    [entity] = set(created.values())
    assert {system for system, _ in created} == {"salesforce", "pipedrive"}
    assert _json(world, "rollback", run_id)["changes"] == []
    return run_id, entity


def test_a_partial_rollback_that_would_delete_a_copy_in_a_forgotten_instance_is_refused(
    small_world: World,
) -> None:
    world = small_world
    run_id, entity = _copied(world)
    forgot = _forget_pipedrive(world)
    writes = _writes(world)

    shown = _json(world, "rollback", run_id, "--entity", entity)
    table = _run(world, "rollback", run_id, "--entity", entity).output
    undo = _run(world, "rollback", run_id, "--entity", entity, "--apply", "--yes", code=2)

    why = (
        f"run {run_id} wrote to pipedrive, whose state crmsync forgot since (run {forgot}), and "
        f"the rollback of {entity} would write there"
    )
    assert (
        shown["refused"]
        == f"dry run: nothing written; --apply refuses it: {why}: undo those writes by hand"
    )
    assert " ".join(table.split()).endswith(shown["refused"]), table
    assert undo.stderr.strip() == (
        f"crmsync: error: {why}; nothing written: crmsync no longer knows the deals it wrote "
        f"to there: undo those writes by hand (`crmsync rollback {run_id} --entity {entity}` "
        "lists them)"
    )
    assert _writes(world) == writes


def test_the_dry_view_of_a_run_rolled_back_already_but_refused_says_so_in_every_format(
    small_world: World,
) -> None:
    """Its one entity was rolled back before the forget: the plan is empty, and --apply is
    still refused (the run wrote to the forgotten instance)."""
    world = small_world
    run_id, entity = _copied(world)
    _run(world, "rollback", run_id, "--entity", entity, "--apply", "--yes")
    assert not any(_live(world, *copy) for copy in _created_by(world, run_id))
    forgot = _forget_pipedrive(world)

    shown = _json(world, "rollback", run_id)
    table = " ".join(_run(world, "rollback", run_id).output.split())

    refused = (
        f"dry run: nothing written; --apply refuses it: run {run_id} wrote to pipedrive, whose "
        f"state crmsync forgot since (run {forgot}): undo those writes by hand"
    )
    assert table == (
        f"rolled back already: {entity} (1 entity of run {run_id}); not undone again {refused}"
    )
    assert (shown["changes"], shown["deletes"], shown["rolled_back_already"]) == ([], [], [entity])
    assert shown["refused"] == refused
